//! `grail bench`: verification cost next to generation ([`crate::bench`]).
use std::path::PathBuf;

use anyhow::anyhow;
use grail_chain::devnet::default_generation;

use super::{print_out, Failure};

/// Flags of `grail bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory [default: the bundled stories260K under tests/fixtures].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Problems (groups of 16 rollouts) to generate and verify.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub problems: u32,
    /// Completion cap (the devnet's by default).
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<u32>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `grail bench`.
pub fn run(args: &Args) -> Result<(), Failure> {
    if args.problems == 0 {
        return Err(Failure::Usage(anyhow!("--problems must be at least 1")));
    }
    let model = args.model.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/stories260K"
        ))
    });
    let mut generation = default_generation();
    if let Some(n) = args.max_new_tokens {
        generation.max_new_tokens = n;
        generation.context_limit = Some(grail_core::params::MAX_PROMPT_TOKENS + n);
    }
    generation
        .validate()
        .map_err(|e| Failure::Usage(anyhow!("--max-new-tokens: {e}")))?;
    let report = crate::bench::run(&model, &generation, args.problems).map_err(Failure::Usage)?;
    if args.json {
        print_out(&serde_json::to_string_pretty(&report).expect("JSON"))
    } else {
        print_out(&report.text())
    }
}
