//! `grail-miner bench`: rollout generation throughput, and what the
//! commitments cost on top of it (target: at most 3% of generation time on
//! CPU).
//!
//! Generation runs the real group path (one prefill per group, all rollouts
//! of all groups decoded as one batch, verifiable sampler) keeping every
//! final hidden state. The commitment work is then timed on exactly those
//! outputs: the sketch of every hidden state, and per rollout the
//! commitments, commit root, binding and sr25519 signature. The logprob
//! comes out of the sampler's single softmax pass (PROTOCOL.md §5.2), so it
//! is inside the generation time. A second generation with sketches
//! computed inside the decode loop (as the miner runs) gives the end-to-end
//! figure.
use std::path::Path;
use std::time::Instant;

use grail_core::hash::Digest;
use grail_core::keys::Keypair;
use grail_core::params::ROLLOUTS_PER_PROBLEM;
use grail_core::sampling::SamplingParams;
use grail_core::sketch::{Sketch, SketchPlanes};
use grail_core::wire::{RolloutRecord, WindowHeader};
use grail_engine::{
    generate_groups, synthetic, verifiable_groups, Completion, EngineError, GenerateOptions, Model,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub groups: usize,
    pub prompt_tokens: usize,
    pub max_new_tokens: usize,
    pub temperature_milli: u16,
}

/// Measured figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub groups: usize,
    pub rollouts: usize,
    pub prompt_tokens: usize,
    pub completion_tokens: u64,
    pub generation_secs: f64,
    pub generation_tokens_per_sec: f64,
    pub sketch_secs: f64,
    pub commit_sign_secs: f64,
    /// (sketch + commit and sign) / generation.
    pub commitment_fraction: f64,
    pub end_to_end_secs: f64,
    pub end_to_end_tokens_per_sec: f64,
}

/// Run the benchmark on `model` (no tokenizer needed: prompts are
/// pseudo-random token ids, fixed by `groups` and `prompt_tokens`).
pub fn run(model: &Model, cfg: &BenchConfig) -> Result<BenchReport, EngineError> {
    let vocab = model.config().vocab_size;
    let prompts: Vec<Vec<u32>> = (0..cfg.groups)
        .map(|g| synthetic::bench_prompt(g, cfg.prompt_tokens, vocab))
        .collect();
    let seeds: Vec<Vec<Digest>> = (0..cfg.groups)
        .map(|g| synthetic::bench_seeds(g, ROLLOUTS_PER_PROBLEM as usize))
        .collect();
    let temperature = f64::from(cfg.temperature_milli) / 1000.0;
    let requests = verifiable_groups(
        prompts
            .iter()
            .map(Vec::as_slice)
            .zip(seeds.iter().map(Vec::as_slice)),
        temperature,
    );
    let planes = SketchPlanes::new(&[9u8; 32], model.config().hidden_size)
        .map_err(|e| EngineError::InvalidRequest(format!("sketch planes: {e}")))?;
    let opts = |keep_hidden: bool, sketch: bool| GenerateOptions {
        max_new_tokens: cfg.max_new_tokens,
        stop_tokens: &[],
        keep_hidden,
        sketch: sketch.then_some(&planes),
        cancel: None,
    };

    let t = Instant::now();
    let groups = generate_groups(model, &requests, &opts(true, false))?;
    let generation_secs = t.elapsed().as_secs_f64();
    let completion_tokens: u64 = groups.iter().flatten().map(|c| c.tokens.len() as u64).sum();

    let hidden = model.config().hidden_size;
    let t = Instant::now();
    let sketches: Vec<Vec<Vec<Sketch>>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|c| sketch_all(&planes, c, hidden))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let sketch_secs = t.elapsed().as_secs_f64();

    let keypair = Keypair::dev("alice").expect("dev key");
    let header = WindowHeader {
        netuid: 1,
        window: 0,
        hotkey: *keypair.hotkey().as_bytes(),
        model_fingerprint: [0u8; 32],
    };
    let sampling = SamplingParams {
        temperature_milli: cfg.temperature_milli,
        max_new_tokens: cfg.max_new_tokens as u32,
    };
    let t = Instant::now();
    let mut signed = 0usize;
    for (g, (group, group_sketches)) in groups.iter().zip(&sketches).enumerate() {
        for (r, (c, sk)) in group.iter().zip(group_sketches).enumerate() {
            let mut rec = RolloutRecord {
                problem_index: g as u32,
                rollout_index: r as u32,
                sampling,
                prompt: prompts[g].clone(),
                commitments: crate::rollout::commitments(c, sk),
                reward: 0.0,
                advantage: 0.0,
                signature: [0u8; 64],
            };
            rec.signature = keypair.sign(&rec.signed_message(&header));
            signed += usize::from(rec.signature[63] & 0x80 != 0);
        }
    }
    let commit_sign_secs = t.elapsed().as_secs_f64();
    debug_assert_eq!(signed, groups.len() * ROLLOUTS_PER_PROBLEM as usize);

    let t = Instant::now();
    let again = generate_groups(model, &requests, &opts(false, true))?;
    let end_to_end_secs = t.elapsed().as_secs_f64();
    // same seeds, same tokens and sketches: a check that the two runs did the same work
    for (a, b) in groups.iter().flatten().zip(again.iter().flatten()) {
        if a.tokens != b.tokens {
            return Err(EngineError::InvalidRequest(
                "bench: the two generations disagree".into(),
            ));
        }
    }
    if sketches
        .iter()
        .flatten()
        .zip(again.iter().flatten())
        .any(|(s, c)| c.sketches.as_deref() != Some(s.as_slice()))
    {
        return Err(EngineError::InvalidRequest(
            "bench: sketches in the decode loop differ from sketches of the kept states".into(),
        ));
    }

    Ok(BenchReport {
        groups: cfg.groups,
        rollouts: groups.iter().map(Vec::len).sum(),
        prompt_tokens: cfg.prompt_tokens,
        completion_tokens,
        generation_secs,
        generation_tokens_per_sec: completion_tokens as f64 / generation_secs,
        sketch_secs,
        commit_sign_secs,
        commitment_fraction: (sketch_secs + commit_sign_secs) / generation_secs,
        end_to_end_secs,
        end_to_end_tokens_per_sec: completion_tokens as f64 / end_to_end_secs,
    })
}

fn sketch_all(
    planes: &SketchPlanes,
    c: &Completion,
    hidden: usize,
) -> Result<Vec<Sketch>, EngineError> {
    let states = c.hidden.as_deref().unwrap_or_default();
    states
        .chunks_exact(hidden)
        .map(|h| {
            planes
                .sketch(h)
                .map_err(|e| EngineError::InvalidRequest(format!("sketch: {e}")))
        })
        .collect()
}

/// The model directory's name for the report.
pub fn model_label(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
