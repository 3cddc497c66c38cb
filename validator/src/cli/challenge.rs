//! `grail challenge`: print a generated problem, or score a completion.
//!
//! ```text
//! grail challenge --kind sat|math --seed HEX [--difficulty D] [--json | --dimacs]
//! grail challenge score --kind sat|math --seed HEX [--difficulty D] --completion FILE
//! ```
//! Without `--difficulty` the protocol's assignment for the seed is used
//! (PROTOCOL.md §13.2).
use std::io::Read;
use std::path::PathBuf;

use anyhow::anyhow;
use grail_challenges::{assignment, Difficulty, Kind, Problem, MAX_DIFFICULTY, MIN_DIFFICULTY};
use serde_json::{json, Value};

use super::{print_out, Failure};

/// Largest completion file `score` reads (16 MiB).
pub const MAX_COMPLETION_FILE_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Sat,
    Math,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Sat => Kind::Sat,
            KindArg::Math => Kind::Math,
        }
    }
}

/// Which problem: kind, seed and difficulty.
#[derive(Debug, clap::Args)]
pub struct ProblemArgs {
    /// Problem kind.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// 32-byte problem seed as 64 hex digits (the protocol's problem seed).
    #[arg(long)]
    pub seed: String,
    /// Difficulty level 1..=10; default: the protocol's assignment for the seed.
    #[arg(long)]
    pub difficulty: Option<u8>,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<ChallengeCommand>,
    #[command(flatten)]
    pub problem: Option<ProblemArgs>,
    /// Print the problem as JSON (kind, parameters, messages, reference answer).
    #[arg(long, conflicts_with = "dimacs")]
    pub json: bool,
    /// Print a SAT problem's formula in DIMACS CNF.
    #[arg(long)]
    pub dimacs: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ChallengeCommand {
    /// Score a completion against a problem; prints the reward components as JSON.
    Score(ScoreArgs),
}

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub problem: ProblemArgs,
    /// File holding the completion text (UTF-8).
    #[arg(long)]
    pub completion: PathBuf,
}

fn problem(args: &ProblemArgs) -> Result<(Problem, Difficulty), Failure> {
    let bytes = hex::decode(args.seed.trim_start_matches("0x"))
        .map_err(|e| Failure::Usage(anyhow!("--seed {:?} is not hex: {e}", args.seed)))?;
    let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        Failure::Usage(anyhow!(
            "--seed must be 32 bytes (64 hex digits), got {}",
            b.len()
        ))
    })?;
    let difficulty = match args.difficulty {
        Some(level) => Difficulty::new(level).ok_or_else(|| {
            Failure::Usage(anyhow!(
                "--difficulty {level} outside {MIN_DIFFICULTY}..={MAX_DIFFICULTY}"
            ))
        })?,
        None => assignment(&seed).1,
    };
    Ok((
        Problem::generate(args.kind.into(), &seed, difficulty),
        difficulty,
    ))
}

fn to_json(p: &Problem, difficulty: Difficulty, seed: &str) -> Value {
    json!({
        "kind": p.kind(),
        "seed": seed,
        "difficulty": difficulty.level(),
        "parameters": p.parameters_json(),
        "messages": p.messages(),
        "reference_answer": p.reference_answer(),
    })
}

fn print_problem(args: &Args, pa: &ProblemArgs) -> Result<(), Failure> {
    if args.dimacs && !matches!(pa.kind, KindArg::Sat) {
        return Err(Failure::Usage(anyhow!("--dimacs needs --kind sat")));
    }
    let (p, difficulty) = problem(pa)?;
    if args.dimacs {
        let Problem::Sat(s) = &p else {
            return Err(Failure::Usage(anyhow!("--dimacs needs --kind sat")));
        };
        print_out(s.to_dimacs().trim_end())
    } else if args.json {
        let out = serde_json::to_string_pretty(&to_json(&p, difficulty, &pa.seed))
            .map_err(|e| Failure::Usage(anyhow!("cannot print JSON: {e}")))?;
        print_out(&out)
    } else {
        let mut text = format!(
            "kind: {}  difficulty: {}\n",
            p.kind().name(),
            difficulty.level()
        );
        for m in p.messages() {
            text += &format!("--- {:?}\n{}\n", m.role, m.content);
        }
        text += &format!("--- reference answer\n{}", p.reference_answer());
        print_out(&text)
    }
}

fn score(args: &ScoreArgs) -> Result<(), Failure> {
    let (p, _) = problem(&args.problem)?;
    let path = &args.completion;
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Usage(anyhow!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_COMPLETION_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Usage(anyhow!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_COMPLETION_FILE_BYTES {
        return Err(Failure::Usage(anyhow!(
            "{} is larger than {MAX_COMPLETION_FILE_BYTES} bytes",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| Failure::Invalid(anyhow!("{} is not UTF-8: {e}", path.display())))?;
    let r = p.score(&text);
    let out = serde_json::to_string_pretty(&r)
        .map_err(|e| Failure::Usage(anyhow!("cannot print JSON: {e}")))?;
    print_out(&out)
}

pub fn run(args: &Args) -> Result<(), Failure> {
    match (&args.command, &args.problem) {
        (Some(ChallengeCommand::Score(s)), _) => score(s),
        (None, Some(pa)) => print_problem(args, pa),
        (None, None) => Err(Failure::Usage(anyhow!(
            "give --kind and --seed, or the `score` subcommand"
        ))),
    }
}
