//! `grail` subcommands. Each subcommand module exposes an `Args` struct (clap
//! derive) and `run(&Args) -> Result<(), Failure>`; the binary maps the
//! [`Failure`] to the exit code.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod beacon;
pub mod bench;
pub mod chain;
pub mod challenge;
pub mod devnet;
pub mod fingerprint;
pub mod inspect;
pub mod keys;
pub mod model;
pub mod validate;
pub mod verify;

/// Write `text` and a newline to stdout. Not `println!`: a closed stdout
/// (`grail inspect FILE | head -1`) must be an error (exit 2), not a panic.
pub fn print_out(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Usage(anyhow::anyhow!("writing to stdout: {e}")))
}

/// A single-threaded async runtime for a subcommand's network calls.
pub fn current_thread_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(anyhow::anyhow!("starting the async runtime: {e}")))
}

/// Why a subcommand did not succeed, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// The input was read and checked, and found invalid (exit 1).
    Invalid(anyhow::Error),
    /// Bad usage, a missing file, an I/O error: nothing was checked (exit 2).
    Usage(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Invalid(_) => ExitCode::from(1),
            Failure::Usage(_) => ExitCode::from(2),
        }
    }

    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::Invalid(e) | Failure::Usage(e) => e,
        }
    }
}

/// grail: verifiable GRPO rollouts — protocol tools.
///
/// ```
/// use clap::Parser;
/// use grail_validator::cli::{Cli, Command};
/// let cli = Cli::try_parse_from(["grail", "inspect", "--json", "w.grail"]).unwrap();
/// assert!(matches!(cli.command, Command::Inspect(ref a) if a.json));
/// // a missing argument is a usage error (exit 2), reported by clap
/// assert!(Cli::try_parse_from(["grail", "fingerprint"]).is_err());
/// ```
#[derive(Debug, Parser)]
#[command(name = "grail", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the 64-hex weight fingerprint of a model directory.
    Fingerprint(fingerprint::Args),
    /// Hotkey tools.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Print a window file: header and per-rollout summary, or all of it as JSON.
    Inspect(inspect::Args),
    /// Print a generated SAT or math problem, or score a completion against it.
    Challenge(challenge::Args),
    /// drand beacons: verify one, or fetch a verified one from relays.
    #[command(subcommand)]
    Beacon(beacon::BeaconCommand),
    /// Subtensor chain queries: best and finalized heads, block hashes.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Local network: chain, beacon, miners and a validator for N windows (`serve`: chain and beacon only).
    Devnet(devnet::DevnetArgs),
    /// Run a model on the CPU engine: forward pass or text generation.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Verify a window file with the validator's pipeline: table or JSON; exit 0 all pass, 1 any fails.
    Verify(verify::Args),
    /// The validator service: score every window, write weights, keep results in SQLite.
    Validate(validate::Args),
    /// Benchmark: generate a window, verify it; verification cost as a fraction of generation.
    Bench(bench::Args),
}

/// Run one parsed command line.
pub fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Fingerprint(args) => fingerprint::run(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Inspect(args) => inspect::run(args),
        Command::Challenge(args) => challenge::run(args),
        Command::Beacon(cmd) => beacon::run(cmd),
        Command::Chain(cmd) => chain::run(cmd),
        Command::Devnet(cmd) => devnet::run(cmd),
        Command::Model(cmd) => model::run(cmd),
        Command::Verify(args) => verify::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
