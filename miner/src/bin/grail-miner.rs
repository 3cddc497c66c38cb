//! `grail-miner`: the mining service (`run`) and its benchmark (`bench`).
//!
//! Exit codes: 0 done (or stopped by SIGINT/SIGTERM), 1 a failure while
//! mining, 2 usage (bad flags, missing or invalid model, key or store URL).
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use grail_core::generation::GenerationParams;
use grail_core::tensors::fingerprint_model_dir;
use grail_engine::Tokenizer;
use grail_miner::args::{process_env, NodeArgs, WalletArgs};
use grail_miner::bench::{self, BenchConfig};
use grail_miner::miner::MAX_PROBLEMS_PER_WINDOW;
use grail_miner::store::StoreTuning;
use grail_miner::{
    BackendKind, CpuBackend, Follower, Miner, MinerOptions, NetworkSource, Shutdown, StoreArgs,
    WindowStore,
};

/// grail-miner: verifiable GRPO rollouts, one signed window file per window.
#[derive(Debug, Parser)]
#[command(name = "grail-miner", version, about, long_about = None)]
struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mine: follow the chain and upload one window file per window.
    Run(Box<RunArgs>),
    /// Measure rollout generation with and without commitments.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Hugging Face model directory (safetensors, config, tokenizer).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Generation backend.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendKind,
    /// Products with the weights on the CUDA backend (--backend cuda only).
    #[arg(long, value_enum)]
    gemm: Option<grail_miner::GemmKind>,
    /// Subnet id (ignored with --devnet, which announces its own).
    #[arg(long, default_value_t = 81)]
    netuid: u16,
    #[command(flatten)]
    wallet: WalletArgs,
    #[command(flatten)]
    node: NodeArgs,
    /// Follow a `grail devnet` chain at URL (its drand relay, key, block time
    /// and generation parameters come from the devnet itself).
    #[arg(long, value_name = "URL", conflicts_with_all = ["endpoint", "network", "drand_relay"])]
    devnet: Option<String>,
    /// drand quicknet relay base URL (repeatable; default: the public relays).
    #[arg(long = "drand-relay", value_name = "URL")]
    drand_relay: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Most problems per window.
    #[arg(long, default_value_t = MAX_PROBLEMS_PER_WINDOW)]
    max_problems: u32,
    /// Most groups (problems) generated together in one batch.
    #[arg(long, default_value_t = 4)]
    batch_groups: usize,
    /// Stop after N windows (uploaded or skipped).
    #[arg(long, value_name = "N")]
    windows: Option<u64>,
    /// Milliseconds kept free before the deadline beyond the upload reserve
    /// [default: one block time].
    #[arg(long, value_name = "MS")]
    margin_ms: Option<u64>,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("weights").required(true).args(["model", "synthetic"])))]
struct BenchArgs {
    /// Hugging Face model directory.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Instead of --model: a random bf16 checkpoint of this shape (0.5b:
    /// Qwen2.5-0.5B, 1.5b: Qwen2.5-1.5B), written to a temporary directory
    /// (~1 GB / ~3.1 GB) and removed afterwards.
    #[arg(long, value_name = "SHAPE", value_parser = ["0.5b", "1.5b"])]
    synthetic: Option<String>,
    /// Groups of 16 rollouts generated as one batch.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// Prompt length (pseudo-random token ids).
    #[arg(long, default_value_t = 256)]
    prompt_tokens: usize,
    /// Completion length (no early stop).
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            tracing::error!("{}", chain(&e));
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            tracing::error!("{}", chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text
/// the message before it already contains (many errors print their source).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    if args.backend == BackendKind::Cpu && args.gemm.is_some() {
        return Err(usage(anyhow::anyhow!(
            "--gemm chooses the CUDA backend's products; it does not apply to --backend cpu"
        )));
    }
    let source = match &args.devnet {
        Some(url) => NetworkSource::Devnet { url: url.clone() },
        None => NetworkSource::Subtensor {
            endpoint: args.node.endpoint(&process_env).map_err(usage)?,
            relays: args.drand_relay.clone(),
            netuid: args.netuid,
            generation: GenerationParams::default(),
        },
    };
    let keypair = args
        .wallet
        .key_source(&process_env)
        .and_then(|s| s.load())
        .map_err(usage)?;
    let store = WindowStore::open(&args.store, StoreTuning::default()).map_err(usage)?;
    if args.batch_groups == 0 || args.max_problems == 0 {
        return Err(usage(anyhow::anyhow!(
            "--batch-groups and --max-problems must be at least 1"
        )));
    }
    let fingerprint = fingerprint_model_dir(&args.model)
        .with_context(|| format!("fingerprinting {}", args.model.display()))
        .map_err(Failure::Usage)?;
    let tokenizer = Tokenizer::load(&args.model)
        .with_context(|| format!("loading the tokenizer of {}", args.model.display()))
        .map_err(Failure::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(async {
        let shutdown = Shutdown::default();
        spawn_signal_handler(shutdown.clone());
        let follower = match Follower::connect(&source, &shutdown).await.map_err(usage)? {
            Some(f) => f,
            None => return Ok(()),
        };
        let backend: Arc<dyn grail_miner::Backend> = match args.backend {
            BackendKind::Cpu => Arc::new(
                CpuBackend::load(&args.model, follower.generation.context_limit)
                    .with_context(|| format!("loading {}", args.model.display()))
                    .map_err(Failure::Usage)?,
            ),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Arc::new(
                grail_miner::CudaBackend::load(
                    &args.model,
                    follower.generation.context_limit,
                    args.gemm.unwrap_or(grail_miner::GemmKind::Cublas),
                )
                .with_context(|| format!("loading {} onto the GPU", args.model.display()))
                .map_err(Failure::Usage)?,
            ),
        };
        tracing::info!(
            hotkey = %keypair.hotkey().to_ss58(),
            netuid = follower.netuid,
            model = %args.model.display(),
            fingerprint = %fingerprint,
            backend = %backend.describe(),
            store = store.url(),
            temperature_milli = follower.generation.temperature_milli,
            max_new_tokens = follower.generation.max_new_tokens,
            "miner starting"
        );
        let mut miner = Miner::new(
            backend,
            Arc::new(tokenizer),
            keypair,
            fingerprint.0,
            store,
            follower,
            MinerOptions {
                max_problems: args.max_problems,
                batch_groups: args.batch_groups,
                margin: args.margin_ms.map(Duration::from_millis),
                windows: args.windows,
                progress: !args.no_progress,
            },
        );
        let outcomes = miner
            .run(&shutdown)
            .await
            .map_err(|e| Failure::Runtime(e.into()))?;
        tracing::info!(windows = outcomes.len(), "miner stopped");
        Ok(())
    })
}

/// First SIGINT/SIGTERM: stop cleanly (the current window is abandoned, an
/// upload in progress is finished). Second: exit at once.
fn spawn_signal_handler(shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            if n == 0 {
                tracing::warn!(
                    "shutdown requested: abandoning the current window (again to exit at once)"
                );
                shutdown.request();
            } else {
                std::process::exit(130);
            }
        }
    });
}

fn run_bench(args: &BenchArgs) -> Result<(), Failure> {
    let scratch = std::env::temp_dir().join(format!("grail-miner-bench-{}", std::process::id()));
    let dir = match (&args.model, args.synthetic.as_deref()) {
        (Some(dir), _) => dir.clone(),
        (None, shape) => {
            use grail_engine::synthetic;
            let shape = if shape == Some("1.5b") {
                synthetic::QWEN2_5_1_5B
            } else {
                synthetic::QWEN2_5_0_5B
            };
            std::fs::create_dir_all(&scratch)
                .with_context(|| format!("creating {}", scratch.display()))
                .map_err(Failure::Usage)?;
            synthetic::write_checkpoint(&scratch, &shape, grail_engine::kernels::WDtype::BF16, 1)
                .map_err(|e| usage(anyhow::anyhow!("writing the synthetic checkpoint: {e}")))?;
            scratch.clone()
        }
    };
    let result = bench_dir(args, &dir);
    if args.model.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

fn bench_dir(args: &BenchArgs, dir: &std::path::Path) -> Result<(), Failure> {
    let mut model = grail_engine::Model::load(dir)
        .with_context(|| format!("loading {}", dir.display()))
        .map_err(Failure::Usage)?;
    // like a devnet, run a small-context model at the lengths asked for
    let need = args.prompt_tokens.saturating_add(args.max_new_tokens);
    if need > model.max_positions() {
        model.set_max_positions(need).map_err(usage)?;
    }
    if args.groups == 0 || args.max_new_tokens == 0 || args.prompt_tokens == 0 {
        return Err(usage(anyhow::anyhow!(
            "--groups, --prompt-tokens and --max-new-tokens must be at least 1"
        )));
    }
    let cfg = BenchConfig {
        groups: args.groups,
        prompt_tokens: args.prompt_tokens,
        max_new_tokens: args.max_new_tokens,
        temperature_milli: grail_core::generation::DEFAULT_TEMPERATURE_MILLI,
    };
    let r = bench::run(&model, &cfg).map_err(|e| Failure::Runtime(e.into()))?;
    let text = if args.json {
        serde_json::to_string_pretty(&r).expect("report serializes")
    } else {
        format!(
            "model {} ({}, hidden {}, {} layers), cpu engine\n\
             {} groups x 16 rollouts, prompt {} tokens, {} new tokens each (no early stop)\n\
             generation (tokens + logprobs, one pass):  {} tokens in {:.3} s = {:.1} tokens/s\n\
             sketches of every hidden state:            {:.4} s = {:.2}% of generation\n\
             commitments, commit root, binding, sr25519: {:.4} s = {:.2}% of generation\n\
             commitments in total:                      {:.2}% of generation time (target <= 3%)\n\
             end to end, sketching inside the decode loop: {:.3} s = {:.1} tokens/s",
            args.synthetic
                .as_ref()
                .map_or_else(|| bench::model_label(dir), |s| format!("synthetic {s}")),
            model.config().architecture.hf_name(),
            model.config().hidden_size,
            model.config().num_layers,
            r.groups,
            r.prompt_tokens,
            cfg.max_new_tokens,
            r.completion_tokens,
            r.generation_secs,
            r.generation_tokens_per_sec,
            r.sketch_secs,
            100.0 * r.sketch_secs / r.generation_secs,
            r.commit_sign_secs,
            100.0 * r.commit_sign_secs / r.generation_secs,
            100.0 * r.commitment_fraction,
            r.end_to_end_secs,
            r.end_to_end_tokens_per_sec,
        )
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| usage(anyhow::anyhow!("writing to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "grail-miner",
            "run",
            "--model",
            "m",
            "--devnet",
            "http://127.0.0.1:1",
            "--dev",
            "alice",
            "--store",
            "s3://b/p",
            "--s3.endpoint",
            "http://127.0.0.1:2",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run");
        };
        assert_eq!(args.store.endpoint.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(args.devnet.as_deref(), Some("http://127.0.0.1:1"));
        // --devnet names its own chain and beacon
        assert!(Cli::try_parse_from([
            "grail-miner",
            "run",
            "--model",
            "m",
            "--devnet",
            "http://x",
            "--drand-relay",
            "http://y",
        ])
        .is_err());
    }
}
