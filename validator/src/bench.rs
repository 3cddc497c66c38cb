//! `grail bench`: what verification costs next to generation, on the same
//! machine and the same rollouts. A miner's window (the protocol's real
//! problems and prompts) is generated with the CPU backend, then verified
//! twice: every group proof-checked (a full audit, `grail verify`'s
//! default) and the validator's sample (§15). Both wall time and process
//! CPU time (getrusage) are measured per phase; the target is validator CPU
//! time per rollout at most 10% of the miner's generation time.
use std::path::Path;
use std::time::Instant;

use grail_core::generation::GenerationParams;
use grail_core::keys::Keypair;
use grail_core::tensors::fingerprint_model_dir;
use grail_miner::rollout::{generate_window, WindowSeeds};
use grail_miner::CpuBackend;
use serde::Serialize;

use crate::verify::{ProofSelection, Verifier, WindowContext};

/// One phase's cost.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Phase {
    pub wall_secs: f64,
    pub cpu_secs: f64,
}

/// The benchmark's figures.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyBench {
    pub problems: u32,
    pub rollouts: u32,
    pub completion_tokens: u64,
    pub generation: Phase,
    pub verify_all: Phase,
    pub verify_sampled: Phase,
    pub sampled_groups: usize,
    /// Rollouts through the pipeline per second (wall), full audit.
    pub all_rollouts_per_sec: f64,
    /// Rollouts through the pipeline per second (wall), validator sample.
    pub sampled_rollouts_per_sec: f64,
    /// Validator CPU / miner generation CPU, full audit.
    pub all_cpu_fraction: f64,
    /// Validator CPU / miner generation CPU, validator sample.
    pub sampled_cpu_fraction: f64,
}

/// Process CPU time (user + system) so far, seconds.
fn cpu_now() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    if rc != 0 {
        return f64::NAN;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Phase) {
    let (w, c) = (Instant::now(), cpu_now());
    let out = f();
    (
        out,
        Phase {
            wall_secs: w.elapsed().as_secs_f64(),
            cpu_secs: cpu_now() - c,
        },
    )
}

/// Generate `problems` groups with `model` under `generation`, then verify.
pub fn run(
    model: &Path,
    generation: &GenerationParams,
    problems: u32,
) -> anyhow::Result<VerifyBench> {
    let ctx = WindowContext::new(
        1,
        0,
        [1; 32],
        [2; 32],
        [3; 32],
        [4; 32],
        *generation,
        u64::MAX,
    );
    let key = Keypair::dev("bob")?;
    let seeds = WindowSeeds::new(
        ctx.netuid,
        ctx.window,
        *key.hotkey().as_bytes(),
        ctx.block_hash,
        &ctx.generation_randomness,
    );
    let backend = CpuBackend::load(model, generation.context_limit)?;
    let verifier = Verifier::load(model, generation.context_limit)?;
    let tokenizer = verifier.tokenizer();
    let fp = fingerprint_model_dir(model)?.0;
    // warm-up: one group, so page faults and thread start-up are not timed
    generate_window(&backend, tokenizer, &key, fp, &seeds, generation, 1)?;
    let (file, generation_cost) =
        timed(|| generate_window(&backend, tokenizer, &key, fp, &seeds, generation, problems));
    let file = file?;
    let bytes = file.encode()?;
    let hk = file.header.hotkey;
    let (all, verify_all) =
        timed(|| verifier.verify_file(&bytes, Some(&hk), None, &ctx, ProofSelection::All));
    if let Some(r) = all.first_reject() {
        anyhow::bail!("the benchmark's honest file was rejected: {r}");
    }
    let (sampled, verify_sampled) =
        timed(|| verifier.verify_file(&bytes, Some(&hk), None, &ctx, ProofSelection::Sampled));
    if let Some(r) = sampled.first_reject() {
        anyhow::bail!("the benchmark's honest file was rejected: {r}");
    }
    let rollouts = file.rollouts.len() as u32;
    let completion_tokens = file
        .rollouts
        .iter()
        .map(|r| r.commitments.len() as u64)
        .sum();
    Ok(VerifyBench {
        problems,
        rollouts,
        completion_tokens,
        generation: generation_cost,
        verify_all,
        verify_sampled,
        sampled_groups: sampled.proof_groups.len(),
        all_rollouts_per_sec: f64::from(rollouts) / verify_all.wall_secs,
        sampled_rollouts_per_sec: f64::from(rollouts) / verify_sampled.wall_secs,
        all_cpu_fraction: verify_all.cpu_secs / generation_cost.cpu_secs,
        sampled_cpu_fraction: verify_sampled.cpu_secs / generation_cost.cpu_secs,
    })
}

impl VerifyBench {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let p = |name: &str, ph: &Phase| {
            format!(
                "{name:<28} {:>8.2} s wall {:>8.2} s CPU\n",
                ph.wall_secs, ph.cpu_secs
            )
        };
        let mut s = format!(
            "{} problems, {} rollouts, {} completion tokens\n",
            self.problems, self.rollouts, self.completion_tokens
        );
        s.push_str(&p("miner generation", &self.generation));
        s.push_str(&p("verify, every group proven", &self.verify_all));
        s.push_str(&p(
            &format!("verify, sample ({} groups)", self.sampled_groups),
            &self.verify_sampled,
        ));
        s.push_str(&format!(
            "rollouts verified per second: {:.1} (full audit), {:.1} (validator sample)\n",
            self.all_rollouts_per_sec, self.sampled_rollouts_per_sec
        ));
        s.push_str(&format!(
            "validator CPU / miner generation CPU: {:.1}% (full audit), {:.1}% (validator sample); target <= 10%",
            100.0 * self.all_cpu_fraction,
            100.0 * self.sampled_cpu_fraction
        ));
        s
    }
}
