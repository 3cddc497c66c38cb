//! `grail verify FILE --model DIR`: the validator's pipeline on one window
//! file, with a per-rollout table (or JSON) and exit 0 (all pass), 1 (any
//! rollout or the file fails), 2 (usage, I/O, unreachable network).
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use grail_core::generation::GenerationParams;
use grail_core::keys::Hotkey;
use grail_core::wire::WindowFile;
use grail_miner::args::{process_env, NodeArgs};
use grail_miner::{Follower, NetworkSource, Shutdown};
use serde_json::{json, Value};

use super::{current_thread_runtime, print_out, Failure};
use crate::context::{fetch_window, ContextCache};
use crate::verify::{FileReport, ProofSelection, Reject, Verifier, WindowContext};

/// How long `grail verify` waits for the chain and drand before giving up.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags of `grail verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The window file to verify.
    pub file: PathBuf,
    /// The model the rollouts must come from (Hugging Face directory).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Directory of cached window values and verified beacons: read first
    /// (offline when the window is there), written after a network fetch.
    #[arg(long, value_name = "DIR")]
    pub beacon_cache: Option<PathBuf>,
    /// Read the window's blocks and beacons from a `grail devnet` chain.
    #[arg(long, value_name = "URL", conflicts_with_all = ["drand_relay", "endpoint", "network"])]
    pub devnet: Option<String>,
    /// drand quicknet relay for a subtensor network (repeatable; default the public relays).
    #[arg(long, value_name = "URL")]
    pub drand_relay: Vec<String>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// The miner the file must belong to (SS58) [default: from a file name
    /// `{ss58}-window-{w}.grail`, else the header's].
    #[arg(long, value_name = "SS58")]
    pub hotkey: Option<String>,
    /// Proof-check only the validator's sample of groups instead of all.
    #[arg(long)]
    pub sample: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `grail verify`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let usage = |e: anyhow::Error| Failure::Usage(e);
    let bytes = read_file(&args.file)?;
    let expected = expected_hotkey(args)?;
    // the header names the window; a file that does not decode is judged without one
    let file = match WindowFile::decode(&bytes) {
        Ok(f) => f,
        Err(e) => {
            let report = FileReport::file_level(expected, Reject::from_wire(e));
            return finish(args, &report, None);
        }
    };
    drop(bytes);
    let rt = current_thread_runtime()?;
    let ctx = rt
        .block_on(window_context(args, file.header.netuid, file.header.window))
        .map_err(usage)?;
    let verifier =
        Verifier::load(&args.model, ctx.generation.context_limit).map_err(|e| usage(e.into()))?;
    let selection = if args.sample {
        ProofSelection::Sampled
    } else {
        ProofSelection::All
    };
    let report = verifier.verify_decoded(&file, expected.as_ref(), &ctx, selection);
    finish(args, &report, Some(&ctx))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::Usage(anyhow!("reading {}: {e}", path.display())))?;
    let max = grail_core::params::MAX_WINDOW_FILE_BYTES;
    if meta.len() > max {
        // judged, not read: the decoder's size rule
        return Err(Failure::Invalid(anyhow!(
            "{}: {} bytes, more than the {max}-byte window-file limit",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| Failure::Usage(anyhow!("reading {}: {e}", path.display())))
}

/// The hotkey the file must carry: `--hotkey`, else the file name's.
fn expected_hotkey(args: &Args) -> Result<Option<[u8; 32]>, Failure> {
    if let Some(s) = &args.hotkey {
        let k = Hotkey::from_ss58(s).map_err(|e| Failure::Usage(anyhow!("--hotkey {s}: {e}")))?;
        return Ok(Some(*k.as_bytes()));
    }
    let name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    Ok(name
        .split_once("-window-")
        .and_then(|(ss58, _)| Hotkey::from_ss58(ss58).ok())
        .map(|k| *k.as_bytes()))
}

async fn window_context(args: &Args, netuid: u16, window: u64) -> anyhow::Result<WindowContext> {
    let cache = args.beacon_cache.as_deref().map(ContextCache::new);
    if let Some(cache) = &cache {
        if let Some((_, ctx)) = cache.load(netuid, window).await? {
            tracing::info!(window, "window values and beacons from the cache");
            return Ok(ctx);
        }
    }
    let source = if let Some(url) = &args.devnet {
        NetworkSource::Devnet { url: url.clone() }
    } else if args.node.endpoint.is_some()
        || args.node.network.is_some()
        || !args.drand_relay.is_empty()
    {
        NetworkSource::Subtensor {
            endpoint: args.node.endpoint(&process_env)?,
            relays: args.drand_relay.clone(),
            netuid,
            generation: GenerationParams::default(),
        }
    } else {
        return Err(anyhow!(
            "window {window} of netuid {netuid} is not in {}; pass --devnet URL, or --subtensor.network / --drand-relay to fetch it",
            match &args.beacon_cache {
                Some(d) => format!("the cache {}", d.display()),
                None => "a beacon cache (no --beacon-cache given)".into(),
            }
        ));
    };
    let shutdown = Shutdown::default();
    let fetch = async {
        let Some(mut follower) = Follower::connect(&source, &shutdown).await? else {
            return Err(anyhow!("shut down"));
        };
        if follower.netuid != netuid {
            return Err(anyhow!(
                "the file is for netuid {netuid}, the devnet runs netuid {}",
                follower.netuid
            ));
        }
        if let Some(cache) = &cache {
            follower.drand.set_cache(cache.beacons()?);
        }
        let (rec, ctx) = fetch_window(&follower, window, &shutdown)
            .await?
            .ok_or_else(|| anyhow!("shut down"))?;
        if let Some(cache) = &cache {
            cache.store(&rec)?;
        }
        Ok(ctx)
    };
    tokio::time::timeout(NETWORK_TIMEOUT, fetch)
        .await
        .map_err(|_| {
            anyhow!(
                "window {window}: the chain or drand did not answer within {} s",
                NETWORK_TIMEOUT.as_secs()
            )
        })?
}

/// Print the report; exit 1 when anything failed.
fn finish(args: &Args, report: &FileReport, ctx: Option<&WindowContext>) -> Result<(), Failure> {
    if args.json {
        print_out(&serde_json::to_string_pretty(&report_json(args, report, ctx)).expect("JSON"))?;
    } else {
        print_out(&report_table(args, report))?;
    }
    match report.first_reject() {
        None => Ok(()),
        Some(r) => Err(Failure::Invalid(anyhow!("{}: {r}", r.code()))),
    }
}

fn reason(r: &Reject) -> Value {
    json!({ "code": r.code(), "message": r.to_string() })
}

/// The report as JSON (also used by `grail devnet`'s output files).
pub fn report_json(args: &Args, report: &FileReport, ctx: Option<&WindowContext>) -> Value {
    let rollouts: Vec<Value> = report
        .rollouts
        .iter()
        .map(|v| {
            json!({
                "problem": v.problem,
                "rollout": v.rollout,
                "completion_tokens": v.completion_tokens,
                "reward": v.reward,
                "proof": v.proof,
                "duplicate_of": v.duplicate_of,
                "verdict": if v.result.is_ok() { "pass" } else { "fail" },
                "reason": v.result.as_ref().err().map(reason),
            })
        })
        .collect();
    let failed = report.rollouts.iter().filter(|v| v.result.is_err()).count();
    json!({
        "file": args.file.display().to_string(),
        "hotkey": report.hotkey.map(|h| Hotkey::from_bytes(h).to_ss58()),
        "netuid": ctx.map(|c| c.netuid),
        "window": ctx.map(|c| c.window),
        "passed": report.passed(),
        "reason": report.first_reject().map(reason),
        "file_reason": report.file_reject.as_ref().map(reason),
        "summary": {
            "rollouts": report.rollout_count(),
            "passed": report.rollouts.len() - failed,
            "failed": failed,
            "unique": report.unique(),
            "proof_checked": report.proof_checked(),
            "proof_groups": report.proof_groups,
        },
        "rollouts": rollouts,
    })
}

fn report_table(args: &Args, report: &FileReport) -> String {
    let mut out = String::new();
    let who = report
        .hotkey
        .map(|h| Hotkey::from_bytes(h).to_ss58())
        .unwrap_or_else(|| "?".into());
    out.push_str(&format!("{}  miner {who}\n", args.file.display()));
    if let Some(r) = &report.file_reject {
        out.push_str(&format!("FILE REJECTED  {}: {r}\n", r.code()));
        return out.trim_end().to_owned();
    }
    out.push_str(&format!(
        "{:>5} {:>7} {:>6} {:>8} {:>5} {:>7}  {}\n",
        "group", "rollout", "tokens", "reward", "proof", "verdict", "reason"
    ));
    for v in &report.rollouts {
        let proof = match (&v.proof, v.duplicate_of) {
            (Some(_), _) => "yes",
            (None, _) => "-",
        };
        let (verdict, why) = match &v.result {
            Ok(()) => (
                "pass",
                v.duplicate_of
                    .map(|j| format!("duplicate of rollout #{j} (counted once)"))
                    .unwrap_or_default(),
            ),
            Err(r) => ("FAIL", format!("{}: {r}", r.code())),
        };
        out.push_str(&format!(
            "{:>5} {:>7} {:>6} {:>8.4} {:>5} {:>7}  {}\n",
            v.problem, v.rollout, v.completion_tokens, v.reward, proof, verdict, why
        ));
    }
    let failed = report.rollouts.iter().filter(|v| v.result.is_err()).count();
    out.push_str(&format!(
        "summary: {} rollouts in {} groups, {} passed, {} failed, {} unique, {} proof-checked; {}",
        report.rollout_count(),
        report.rollout_count() / grail_core::params::ROLLOUTS_PER_PROBLEM,
        report.rollouts.len() - failed,
        failed,
        report.unique(),
        report.proof_checked(),
        match report.first_reject() {
            None => "PASS".to_owned(),
            Some(r) => format!("FAIL ({})", r.code()),
        }
    ));
    out
}
