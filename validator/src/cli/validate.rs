//! `grail validate`: the validator service. Follows the chain, scores each
//! window after its deadline and challenge beacon, writes
//! `OUT/weights/window-{w}.json`, and keeps every result in
//! `OUT/validator.sqlite` (a restart resumes after the last scored window).
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use grail_core::generation::GenerationParams;
use grail_miner::args::{process_env, NodeArgs};
use grail_miner::store::StoreTuning;
use grail_miner::{Follower, NetworkSource, Shutdown, StoreArgs, WindowStore};

use super::Failure;
use crate::context::ContextCache;
use crate::devnet::window_table;
use crate::score::{Burn, ScoreParams};
use crate::service::{Validator, ValidatorOptions};
use crate::state::ValidatorDb;
use crate::verify::Verifier;

/// Flags of `grail validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subnet's model (Hugging Face directory).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Subnet id (ignored with --devnet, which announces its own).
    #[arg(long, default_value_t = 81)]
    pub netuid: u16,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Follow a `grail devnet` chain at URL.
    #[arg(long, value_name = "URL", conflicts_with_all = ["endpoint", "network", "drand_relay"])]
    pub devnet: Option<String>,
    /// drand quicknet relay (repeatable; default the public relays).
    #[arg(long, value_name = "URL")]
    pub drand_relay: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output directory: weights/, validator.sqlite, context/ (window values and beacons).
    #[arg(long, value_name = "DIR", default_value = "grail-validator")]
    pub out: PathBuf,
    /// Stop after scoring this many windows.
    #[arg(long, value_name = "N")]
    pub windows: Option<u64>,
    /// Give this uid a fixed share of the weight (--burn-fraction).
    #[arg(long, value_name = "UID", requires = "burn_fraction")]
    pub burn_uid: Option<u16>,
    /// Share of the weight for --burn-uid, 0..=1.
    #[arg(long, value_name = "F", requires = "burn_uid")]
    pub burn_fraction: Option<f64>,
}

/// Run `grail validate`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let usage = Failure::Usage;
    let source = match &args.devnet {
        Some(url) => NetworkSource::Devnet { url: url.clone() },
        None => NetworkSource::Subtensor {
            endpoint: args
                .node
                .endpoint(&process_env)
                .map_err(|e| usage(e.into()))?,
            relays: args.drand_relay.clone(),
            netuid: args.netuid,
            generation: GenerationParams::default(),
        },
    };
    let score = ScoreParams {
        burn: match (args.burn_uid, args.burn_fraction) {
            (Some(uid), Some(fraction)) => {
                Some(Burn::new(uid, fraction).map_err(|e| usage(e.into()))?)
            }
            _ => None,
        },
        ..ScoreParams::default()
    };
    let store =
        WindowStore::open(&args.store, StoreTuning::default()).map_err(|e| usage(e.into()))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| usage(anyhow!("creating {}: {e}", args.out.display())))?;
    let db = ValidatorDb::open(&args.out.join("validator.sqlite")).map_err(|e| usage(e.into()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| usage(anyhow!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let shutdown = Shutdown::default();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::warn!(
                "stopping: the window being scored is dropped and scored again on restart"
            );
            sd.request();
        });
        #[cfg(unix)]
        {
            let sd = shutdown.clone();
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                tokio::spawn(async move {
                    term.recv().await;
                    sd.request();
                });
            }
        }
        let follower = Follower::connect(&source, &shutdown)
            .await
            .map_err(usage)?
            .ok_or_else(|| usage(anyhow!("stopped before the chain answered")))?;
        let verifier = Verifier::load(&args.model, follower.generation.context_limit)
            .map_err(|e| usage(e.into()))?;
        let mut validator = Validator::new(
            Arc::new(verifier),
            follower,
            store,
            db,
            Some(ContextCache::new(&args.out.join("context"))),
            ValidatorOptions {
                out: args.out.clone(),
                windows: args.windows,
                first_window: None,
                score,
            },
        )
        .map_err(usage)?;
        let started = std::time::Instant::now();
        validator
            .run(&shutdown, |r| {
                let _ = super::print_out(&window_table(r, started.elapsed()));
            })
            .await
            .map_err(usage)
    })
}
