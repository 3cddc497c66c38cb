//! `grail devnet`: a whole local network in one process. A devnet chain and
//! drand beacon on loopback, M miners with dev keys (uids 1..=M; the
//! validator `alice` is uid 0) uploading to a local store, and one
//! validator that scores N windows and prints, per window, the miners, what
//! it checked, the verdicts and the weights. Everything is left under
//! `--out`: window files, weights, the validator database, the window
//! values and beacons (`grail verify --beacon-cache` reads them offline),
//! and the model when the bundled one is used.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use grail_chain::devnet::{default_generation, Devnet, DevnetConfig, DEFAULT_NETUID};
use grail_core::keys::{Hotkey, Keypair};
use grail_core::params::WINDOW_LENGTH;
use grail_core::tensors::fingerprint_model_dir;
use grail_engine::Tokenizer;
use grail_miner::store::StoreTuning;
use grail_miner::{
    CpuBackend, Follower, Miner, MinerOptions, NetworkSource, Shutdown, StoreArgs, WindowStore,
};

use crate::cli::{print_out, Failure};
use crate::context::ContextCache;
use crate::score::{Outcome, ScoreParams};
use crate::service::{Validator, ValidatorOptions, WindowResult};
use crate::state::ValidatorDb;
use crate::verify::Verifier;

/// Dev key names of the devnet's miners, in uid order from 1 (then `miner{uid}`).
pub const MINER_NAMES: [&str; 5] = ["bob", "charlie", "dave", "eve", "ferdie"];
/// The devnet validator's dev key (uid 0).
pub const VALIDATOR_NAME: &str = "alice";
/// Seconds from start to the devnet's genesis: the miners load the model and
/// time a calibration group before window 0 begins.
pub const GENESIS_LEAD_S: u64 = 6;
/// Most miners `grail devnet` starts.
pub const MAX_MINERS: u16 = 16;

/// The bundled model (stories260K, MIT licensed; see its README), written
/// to `OUT/model` when no `--model` is given.
const BUNDLED_MODEL: &[(&str, &[u8])] = &[
    (
        "config.json",
        include_bytes!("../../tests/fixtures/stories260K/config.json"),
    ),
    (
        "generation_config.json",
        include_bytes!("../../tests/fixtures/stories260K/generation_config.json"),
    ),
    (
        "model.safetensors",
        include_bytes!("../../tests/fixtures/stories260K/model.safetensors"),
    ),
    (
        "special_tokens_map.json",
        include_bytes!("../../tests/fixtures/stories260K/special_tokens_map.json"),
    ),
    (
        "tokenizer.json",
        include_bytes!("../../tests/fixtures/stories260K/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_bytes!("../../tests/fixtures/stories260K/tokenizer_config.json"),
    ),
    (
        "README.md",
        include_bytes!("../../tests/fixtures/stories260K/README.md"),
    ),
    (
        "LICENSE.llama2c",
        include_bytes!("../../tests/fixtures/stories260K/LICENSE.llama2c"),
    ),
    (
        "LICENSE.icpp_llm",
        include_bytes!("../../tests/fixtures/stories260K/LICENSE.icpp_llm"),
    ),
];

/// Flags of `grail devnet` (without a subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Windows the validator scores before the devnet stops.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub windows: u64,
    /// Miners to start (dev keys bob, charlie, dave, eve, ferdie, then miner6...).
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub miners: u16,
    /// Model directory [default: the bundled stories260K, written to OUT/model].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Output directory, empty or new [default: grail-devnet/run-UNIXTIME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Milliseconds between devnet blocks (a window is 30 blocks).
    #[arg(long = "block-ms", value_name = "MS", default_value_t = 500)]
    pub block_ms: u64,
    /// Most problems each miner generates per window (fewer when its
    /// measured speed says they would not finish before the deadline).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_problems: u32,
}

/// Run the devnet: exit 0 when every window was scored and every (honest)
/// miner passed; 1 when the validator rejected something.
pub fn run(args: &RunArgs) -> Result<(), Failure> {
    let usage = Failure::Usage;
    if args.windows == 0 {
        return Err(usage(anyhow!("--windows must be at least 1")));
    }
    if args.miners == 0 || args.miners > MAX_MINERS {
        return Err(usage(anyhow!("--miners must be 1..={MAX_MINERS}")));
    }
    if args.block_ms < 100 {
        return Err(usage(anyhow!("--block-ms must be at least 100")));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("grail-devnet/run-{now}")));
    prepare_out(&out).map_err(usage)?;
    let model = match &args.model {
        Some(m) => m.clone(),
        None => write_bundled_model(&out.join("model")).map_err(usage)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(usage)?;
    let rejected = runtime.block_on(run_network(args, &out, &model, now))?;
    print_out(&format!(
        "\nleft in {}:\n  window files   {}\n  weights        {}\n  database       {}\n  beacons        {}\nverify a file offline:\n  grail verify {}/FILE.grail --model {} --beacon-cache {}",
        out.display(),
        out.join("store/grail/windows").display(),
        out.join("weights").display(),
        out.join("validator.sqlite").display(),
        out.join("context").display(),
        out.join("store/grail/windows").display(),
        model.display(),
        out.join("context").display(),
    ))?;
    if rejected > 0 {
        return Err(Failure::Invalid(anyhow!(
            "the validator rejected {rejected} honest miner-window(s); see the tables above"
        )));
    }
    Ok(())
}

fn prepare_out(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out)
            .with_context(|| format!("--out {} is not a readable directory", out.display()))?;
        if entries.next().is_some() {
            return Err(anyhow!(
                "--out {} is not empty (a devnet leaves its results there; pick a new directory)",
                out.display()
            ));
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

fn write_bundled_model(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in BUNDLED_MODEL {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir.to_path_buf())
}

fn miner_name(uid: u16) -> String {
    MINER_NAMES
        .get(usize::from(uid) - 1)
        .map_or_else(|| format!("miner{uid}"), |n| (*n).to_owned())
}

async fn run_network(args: &RunArgs, out: &Path, model: &Path, now: u64) -> Result<u64, Failure> {
    let usage = Failure::Usage;
    let validator_key = Keypair::dev(VALIDATOR_NAME).map_err(|e| usage(e.into()))?;
    let mut hotkeys = vec![(DEFAULT_NETUID, 0u16, *validator_key.hotkey().as_bytes())];
    let mut miner_keys = Vec::new();
    for uid in 1..=args.miners {
        let k = Keypair::dev(&miner_name(uid)).map_err(|e| usage(e.into()))?;
        hotkeys.push((DEFAULT_NETUID, uid, *k.hotkey().as_bytes()));
        miner_keys.push((uid, k));
    }
    let devnet = Devnet::start(DevnetConfig {
        block_ms: args.block_ms,
        drand_period_s: 1,
        genesis_time: Some(now + GENESIS_LEAD_S),
        hotkeys,
        generation: default_generation(),
        ..DevnetConfig::default()
    })
    .await
    .context("starting the devnet")
    .map_err(usage)?;
    let url = devnet.chain_url();
    print_out(&format!(
        "devnet: chain {url}, drand {}, {} ms blocks (windows of {} s), {} miners, {} windows; output in {}",
        devnet.drand_url(),
        args.block_ms,
        args.block_ms * WINDOW_LENGTH / 1000,
        args.miners,
        args.windows,
        out.display()
    ))?;
    let result = async {
        let store_url = format!("file://{}", out.join("store").display());
        let store = WindowStore::open(
            &StoreArgs {
                url: store_url,
                ..StoreArgs::default()
            },
            StoreTuning::default(),
        )?;
        let source = NetworkSource::Devnet { url: url.clone() };
        let shutdown = Shutdown::default();
        let fingerprint = fingerprint_model_dir(model)?.0;
        let tokenizer = Arc::new(Tokenizer::load(model)?);
        let mut miners = Vec::new();
        for (uid, key) in miner_keys {
            let follower = Follower::connect(&source, &shutdown)
                .await?
                .ok_or_else(|| anyhow!("shut down"))?;
            let backend = CpuBackend::load(model, follower.generation.context_limit)?;
            let mut miner = Miner::new(
                Arc::new(backend),
                Arc::clone(&tokenizer),
                key,
                fingerprint,
                store.clone(),
                follower,
                MinerOptions {
                    max_problems: args.max_problems,
                    windows: Some(args.windows),
                    progress: false,
                    ..MinerOptions::default()
                },
            );
            let sd = shutdown.clone();
            miners.push(tokio::spawn(async move {
                let r = miner.run(&sd).await;
                if let Err(e) = &r {
                    tracing::error!(uid, error = %e, "miner stopped");
                }
            }));
        }
        let follower = Follower::connect(&source, &shutdown)
            .await?
            .ok_or_else(|| anyhow!("shut down"))?;
        let verifier = Arc::new(Verifier::load(model, follower.generation.context_limit)?);
        let db = ValidatorDb::open(&out.join("validator.sqlite"))?;
        let mut validator = Validator::new(
            verifier,
            follower,
            store,
            db,
            Some(ContextCache::new(&out.join("context"))),
            ValidatorOptions {
                out: out.to_path_buf(),
                windows: Some(args.windows),
                first_window: Some(0),
                score: ScoreParams::default(),
            },
        )?;
        let started = Instant::now();
        let mut rejected = 0u64;
        let mut print_error = None;
        validator
            .run(&shutdown, |result| {
                rejected += result
                    .lines
                    .iter()
                    .filter(|l| matches!(l.outcome, Outcome::Failed { .. }))
                    .count() as u64;
                if let Err(e) = print_out(&window_table(result, started.elapsed())) {
                    print_error.get_or_insert(e);
                }
            })
            .await?;
        shutdown.request();
        for m in miners {
            let _ = tokio::time::timeout(Duration::from_secs(30), m).await;
        }
        if let Some(e) = print_error {
            return Ok::<_, anyhow::Error>(Err(e));
        }
        Ok(Ok(rejected))
    }
    .await;
    devnet.shutdown().await;
    match result {
        Ok(r) => r,
        Err(e) => Err(Failure::Usage(e)),
    }
}

/// The per-window table `grail devnet` prints.
pub fn window_table(result: &WindowResult, elapsed: Duration) -> String {
    let mut s = format!(
        "\nwindow {} (blocks {}-{}), scored at {:.1} s, verification {:.1} s\n",
        result.window,
        result.window,
        result.window + WINDOW_LENGTH - 1,
        elapsed.as_secs_f64(),
        result.verify_seconds
    );
    s.push_str(&format!(
        "{:>4}  {:<48} {:>8} {:>6} {:>7}  {:<8} {:>8} {:>6}  {}\n",
        "uid", "hotkey", "rollouts", "unique", "proofed", "verdict", "weight", "u16", "reason"
    ));
    for l in &result.lines {
        let verdict = match &l.outcome {
            Outcome::Passed { .. } => "pass",
            Outcome::Failed { .. } => "FAIL",
            Outcome::Missing => "missing",
            Outcome::NotSampled => "skipped",
        };
        let reason = l
            .reject
            .as_ref()
            .map(|r| format!("{}: {r}", r.code()))
            .unwrap_or_default();
        s.push_str(&format!(
            "{:>4}  {:<48} {:>8} {:>6} {:>7}  {:<8} {:>8.4} {:>6}  {}\n",
            l.uid,
            Hotkey::from_bytes(l.hotkey).to_ss58(),
            l.rollouts,
            l.unique,
            l.proof_checked,
            verdict,
            l.weight,
            l.weight_u16,
            reason
        ));
    }
    s.trim_end().to_owned()
}
