//! `grail inspect FILE [--json]`: print a window file and check its
//! signatures. Exit 0 when it decodes and every signature verifies, 1 when the
//! content is invalid, 2 when the file cannot be read.
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;

use anyhow::anyhow;
use grail_core::keys::{self, Hotkey};
use grail_core::params::MAX_WINDOW_FILE_BYTES;
use grail_core::wire::{RolloutRecord, WindowFile, WindowHeader};
use serde_json::{json, Value};

use super::{print_out, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Window file to inspect.
    pub file: PathBuf,
    /// Print the whole content as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Read at most `MAX_WINDOW_FILE_BYTES + 1` bytes, so an oversized file is
/// reported without reading it all.
fn read_capped(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Usage(anyhow!("cannot open {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_WINDOW_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Usage(anyhow!("cannot read {}: {e}", path.display())))?;
    Ok(bytes)
}

fn signature_ok(header: &WindowHeader, r: &RolloutRecord) -> Result<(), keys::KeyError> {
    keys::verify(
        &Hotkey::from_bytes(header.hotkey),
        &r.signed_message(header),
        &r.signature,
    )
}

fn mean_logprob(r: &RolloutRecord) -> f64 {
    let sum: f64 = r.commitments.iter().map(|c| f64::from(c.logprob)).sum();
    sum / r.commitments.len() as f64
}

fn to_json(f: &WindowFile, verdicts: &[Result<(), keys::KeyError>]) -> Value {
    let h = &f.header;
    json!({
        "header": {
            "netuid": h.netuid,
            "window": h.window,
            "hotkey": Hotkey::from_bytes(h.hotkey).to_ss58(),
            "hotkey_hex": hex::encode(h.hotkey),
            "model_fingerprint": hex::encode(h.model_fingerprint),
        },
        "rollouts": f.rollouts.iter().zip(verdicts).map(|(r, v)| json!({
            "problem_index": r.problem_index,
            "rollout_index": r.rollout_index,
            "temperature_milli": r.sampling.temperature_milli,
            "max_new_tokens": r.sampling.max_new_tokens,
            "prompt": r.prompt,
            "completion": r.commitments.iter().map(|c| json!({
                "token": c.token,
                "logprob": c.logprob,
                "sketch": hex::encode(c.sketch.0),
            })).collect::<Vec<_>>(),
            "reward": r.reward,
            "advantage": r.advantage,
            "commit_root": hex::encode(r.commit_root()),
            "signed_message": hex::encode(r.signed_message(h)),
            "signature": hex::encode(r.signature),
            "signature_valid": v.is_ok(),
            "signature_error": v.as_ref().err().map(|e| e.to_string()),
        })).collect::<Vec<_>>(),
    })
}

fn summary(
    path: &std::path::Path,
    len: usize,
    f: &WindowFile,
    verdicts: &[Result<(), keys::KeyError>],
) -> String {
    let mut out = String::new();
    let h = &f.header;
    let groups = {
        let mut g: Vec<u32> = f.rollouts.iter().map(|r| r.problem_index).collect();
        g.dedup();
        g.len()
    };
    let prompt: usize = f.rollouts.iter().map(|r| r.prompt.len()).sum();
    let completion: usize = f.rollouts.iter().map(|r| r.commitments.len()).sum();
    let _ = writeln!(out, "window file {} ({len} bytes)", path.display());
    let _ = writeln!(out, "  netuid      {}", h.netuid);
    let _ = writeln!(out, "  window      {}", h.window);
    let _ = writeln!(
        out,
        "  hotkey      {}",
        Hotkey::from_bytes(h.hotkey).to_ss58()
    );
    let _ = writeln!(out, "  model       {}", hex::encode(h.model_fingerprint));
    let _ =
        writeln!(out,
        "  rollouts    {} in {groups} groups; {prompt} prompt and {completion} completion tokens",
        f.rollouts.len()
    );
    let _ = writeln!(
        out,
        "  problem rollout  prompt  compl   temp  reward  advantage  mean_logprob  signature"
    );
    for (r, v) in f.rollouts.iter().zip(verdicts) {
        let _ = writeln!(
            out,
            "  {:>7} {:>7} {:>7} {:>6} {:>6.3} {:>7.3} {:>10.4} {:>13.4}  {}",
            r.problem_index,
            r.rollout_index,
            r.prompt.len(),
            r.commitments.len(),
            r.sampling.temperature(),
            r.reward,
            r.advantage,
            mean_logprob(r),
            match v {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("INVALID ({e})"),
            }
        );
    }
    let bad = verdicts.iter().filter(|v| v.is_err()).count();
    let _ = writeln!(
        out,
        "  signatures  {} valid, {bad} invalid",
        verdicts.len() - bad
    );
    out
}

pub fn run(args: &Args) -> Result<(), Failure> {
    let bytes = read_capped(&args.file)?;
    let file = WindowFile::decode(&bytes).map_err(|e| {
        Failure::Invalid(anyhow!("{}: invalid window file: {e}", args.file.display()))
    })?;
    let verdicts: Vec<_> = file
        .rollouts
        .iter()
        .map(|r| signature_ok(&file.header, r))
        .collect();
    if args.json {
        let out = serde_json::to_string_pretty(&to_json(&file, &verdicts))
            .map_err(|e| Failure::Usage(anyhow!("cannot print JSON: {e}")))?;
        print_out(&out)?;
    } else {
        print_out(summary(&args.file, bytes.len(), &file, &verdicts).trim_end())?;
    }
    let bad: Vec<String> = file
        .rollouts
        .iter()
        .zip(&verdicts)
        .filter_map(|(r, v)| {
            v.as_ref().err().map(|e| {
                format!(
                    "problem {} rollout {}: {e}",
                    r.problem_index, r.rollout_index
                )
            })
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Failure::Invalid(anyhow!(
            "{}: {} of {} signatures invalid; first: {}",
            args.file.display(),
            bad.len(),
            verdicts.len(),
            bad[0]
        )))
    }
}
