//! The protocol's constructions composed end to end, with a small synthetic
//! "model" standing in for the engine: a miner derives seeds, samples with the
//! verifiable sampler, commits logprobs and sketches, signs and encodes a
//! window file; a verifier decodes it, checks signatures, opens the challenge
//! positions and checks sampling, logprob and sketch there. Honest rollouts
//! pass; the cheats the reference subnet admits do not.
use grail_core::challenge::challenge_positions;
use grail_core::commit::TokenCommitment;
use grail_core::hash::Digest;
use grail_core::keys::{self, Hotkey, Keypair};
use grail_core::opening::{check_opening, PositionFinding};
use grail_core::params::{
    CHALLENGE_POSITIONS, ROLLOUTS_PER_PROBLEM, SAMPLING_CDF_EPSILON, SKETCH_MAX_HAMMING,
};
use grail_core::sampling::{check_sample, logprob, sample, SamplingParams, Uniforms};
use grail_core::seeds;
use grail_core::sketch::{check_sketch, Sketch, SketchPlanes};
use grail_core::wire::{RolloutRecord, WindowFile, WindowHeader};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const D: usize = 64;
const VOCAB: usize = 97;

/// A deterministic toy language model: the hidden state after a prefix is a
/// running mix of token embeddings; logits are a fixed projection of it.
/// `noise` perturbs the hidden state slightly, as a different kernel would.
struct ToyModel {
    embed: Vec<[f32; D]>,
    head: Vec<[f32; D]>,
}

impl ToyModel {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut row = || {
            let mut r = [0f32; D];
            for x in r.iter_mut() {
                *x = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            }
            r
        };
        ToyModel {
            embed: (0..VOCAB).map(|_| row()).collect(),
            head: (0..VOCAB).map(|_| row()).collect(),
        }
    }

    fn hidden(&self, prefix: &[u32], noise: f32) -> Vec<f32> {
        let mut h = [0f32; D];
        for (i, &t) in prefix.iter().enumerate() {
            let decay = 0.6f32.powi((prefix.len() - 1 - i) as i32);
            for (hj, ej) in h.iter_mut().zip(&self.embed[t as usize]) {
                *hj += decay * ej;
            }
        }
        h.iter()
            .enumerate()
            .map(|(j, x)| x * (1.0 + noise * (((j * 7919) % 13) as f32 / 13.0 - 0.5)))
            .collect()
    }

    fn logits(&self, h: &[f32]) -> Vec<f32> {
        self.head
            .iter()
            .map(|w| 4.0 * w.iter().zip(h).map(|(a, b)| a * b).sum::<f32>())
            .collect()
    }
}

struct Window {
    netuid: u16,
    window: u64,
    block_hash: Digest,
    window_randomness: Digest,
    challenge_randomness: Digest,
    fingerprint: Digest,
}

fn window() -> Window {
    let block_hash = [0x42; 32];
    let window_randomness = seeds::window_randomness(&block_hash, &[0x17; 32]);
    Window {
        netuid: 81,
        window: 4_000_020,
        block_hash,
        window_randomness,
        challenge_randomness: seeds::challenge_randomness(&[0x43; 32], &[0x99; 32]),
        fingerprint: [0xf1; 32],
    }
}

/// How the miner produces tokens and commitments.
#[derive(Clone, Copy, PartialEq)]
enum Miner {
    Honest,
    /// Commits all-zero sketches (passes ~91-100% in the reference subnet).
    ZeroSketches,
    /// Generates with a cheaper model and commits that model's state.
    OtherModel,
    /// Samples with its own randomness instead of the protocol's.
    OwnUniforms,
}

fn prompt_for(w: &Window, hotkey: &Hotkey, problem: u32) -> Vec<u32> {
    let seed = seeds::problem_seed(w.netuid, hotkey.as_bytes(), &w.block_hash, problem);
    seed[..6]
        .iter()
        .map(|b| u32::from(*b) % VOCAB as u32)
        .collect()
}

fn mine(w: &Window, key: &Keypair, real: &ToyModel, cheap: &ToyModel, how: Miner) -> WindowFile {
    let hotkey = key.hotkey();
    let planes = SketchPlanes::new(&seeds::sketch_key(&w.window_randomness), D).unwrap();
    let sampling = SamplingParams {
        temperature_milli: 1000,
        max_new_tokens: 48,
    };
    let header = WindowHeader {
        netuid: w.netuid,
        window: w.window,
        hotkey: *hotkey.as_bytes(),
        model_fingerprint: w.fingerprint,
    };
    let mut rollouts = vec![];
    for problem in 0..2u32 {
        let prompt = prompt_for(w, &hotkey, problem);
        for rollout in 0..ROLLOUTS_PER_PROBLEM {
            let seed =
                seeds::rollout_seed(&w.window_randomness, hotkey.as_bytes(), problem, rollout);
            let mut uniforms = Uniforms::new(&seed);
            let mut own = ChaCha20Rng::seed_from_u64(u64::from(problem * 100 + rollout));
            let model = if how == Miner::OtherModel {
                cheap
            } else {
                real
            };
            let mut seq = prompt.clone();
            let mut commitments = vec![];
            for t in 0..sampling.max_new_tokens {
                let h = model.hidden(&seq, 0.0);
                let logits = model.logits(&h);
                let u = match how {
                    Miner::OwnUniforms => (own.next_u64() >> 11) as f64 / (1u64 << 53) as f64,
                    _ => uniforms.at(t),
                };
                let token = sample(&logits, sampling.temperature(), u).unwrap();
                let sketch = match how {
                    Miner::ZeroSketches => Sketch([0; 16]),
                    _ => planes.sketch(&h).unwrap(),
                };
                commitments.push(TokenCommitment {
                    token,
                    logprob: logprob(&logits, sampling.temperature(), token).unwrap() as f32,
                    sketch,
                });
                seq.push(token);
            }
            let mut rec = RolloutRecord {
                problem_index: problem,
                rollout_index: rollout,
                sampling,
                prompt: prompt.clone(),
                commitments,
                reward: 0.0,
                advantage: 0.0,
                signature: [0; 64],
            };
            rec.signature = key.sign(&rec.signed_message(&header));
            rollouts.push(rec);
        }
    }
    WindowFile { header, rollouts }
}

/// Verify every rollout of a file with a verifier whose model has small
/// numerical drift; return how many rollouts passed.
fn verify(w: &Window, bytes: &[u8], real: &ToyModel) -> usize {
    let file = WindowFile::decode(bytes).expect("decodes");
    let hotkey = Hotkey::from_bytes(file.header.hotkey);
    let planes = SketchPlanes::new(&seeds::sketch_key(&w.window_randomness), D).unwrap();
    let mut passed = 0;
    for r in &file.rollouts {
        keys::verify(&hotkey, &r.signed_message(&file.header), &r.signature).expect("signature");
        assert_eq!(r.prompt, prompt_for(w, &hotkey, r.problem_index));
        let seed = seeds::rollout_seed(
            &w.window_randomness,
            hotkey.as_bytes(),
            r.problem_index,
            r.rollout_index,
        );
        let mut uniforms = Uniforms::new(&seed);
        let mut seq = r.prompt.clone();
        seq.extend(r.completion());
        let positions = challenge_positions(
            &w.challenge_randomness,
            &r.commit_root(),
            r.commitments.len() as u32,
            CHALLENGE_POSITIONS,
        );
        // Per-position checks, then the per-rollout rules over the findings.
        let findings: Option<Vec<PositionFinding>> = positions
            .iter()
            .map(|&t| {
                let c = &r.commitments[t as usize];
                let h = real.hidden(&seq[..r.prompt.len() + t as usize], 1e-3);
                let logits = real.logits(&h);
                let temp = r.sampling.temperature();
                check_sketch(&c.sketch, &planes.sketch(&h).unwrap(), SKETCH_MAX_HAMMING).ok()?;
                let sample =
                    check_sample(&logits, temp, uniforms.at(t), c.token, SAMPLING_CDF_EPSILON)
                        .unwrap()
                        .ok()?;
                Some(PositionFinding {
                    position: t,
                    sample,
                    logprob_committed: c.logprob,
                    logprob_recomputed: logprob(&logits, temp, c.token).unwrap(),
                })
            })
            .collect();
        passed += usize::from(findings.is_some_and(|f| check_opening(&f).is_ok()));
    }
    passed
}

fn run(how: Miner) -> (usize, usize) {
    let w = window();
    let key = Keypair::dev("alice").unwrap();
    let real = ToyModel::new(1);
    let cheap = ToyModel::new(2);
    let file = mine(&w, &key, &real, &cheap, how);
    let n = file.rollouts.len();
    (verify(&w, &file.encode().unwrap(), &real), n)
}

#[test]
fn honest_miner_passes_every_rollout() {
    let (passed, n) = run(Miner::Honest);
    assert_eq!(passed, n);
}

#[test]
fn zero_sketches_fail_every_rollout() {
    assert_eq!(run(Miner::ZeroSketches).0, 0);
}

#[test]
fn another_models_tokens_and_states_fail_every_rollout() {
    assert_eq!(run(Miner::OtherModel).0, 0);
}

#[test]
fn self_chosen_sampling_randomness_fails_every_rollout() {
    assert_eq!(run(Miner::OwnUniforms).0, 0);
}

#[test]
fn a_different_window_changes_problems_and_seeds() {
    let w = window();
    let hk = Keypair::dev("alice").unwrap().hotkey();
    let mut w2 = window();
    w2.block_hash = [0x44; 32];
    assert_ne!(prompt_for(&w, &hk, 0), prompt_for(&w2, &hk, 0));
    let bob = Keypair::dev("bob").unwrap().hotkey();
    assert_ne!(prompt_for(&w, &hk, 0), prompt_for(&w, &bob, 0));
}
