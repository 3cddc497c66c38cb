//! The verification pipeline (PROTOCOL.md §15): a window file in, typed
//! verdicts out. Checks run cheapest first: file and header, signatures,
//! model fingerprint, problems and groups, tokens, termination shape,
//! rewards and advantages on every rollout; then, on the groups the
//! challenge randomness samples, the proof: one batched prefill of the
//! validator's own model over prompt + completion, with the sketch, logprob
//! and sampler checks at the opened positions and at the final position.
pub mod copycat;
pub mod policy;
pub mod reject;

use std::collections::HashMap;
use std::path::Path;

use grail_core::challenge::challenge_positions;
use grail_core::generation::GenerationParams;
use grail_core::hash::{derive, Digest};
use grail_core::keys::{verify as verify_signature, Hotkey};
use grail_core::opening::{check_opening, PositionFinding};
use grail_core::params::{
    CHALLENGE_POSITIONS, ROLLOUTS_PER_PROBLEM, SAMPLING_CDF_EPSILON, SKETCH_MAX_HAMMING,
};
use grail_core::sampling::{check_sample, logprob as logprob_at, Uniforms};
use grail_core::seeds::{challenge_randomness, rollout_seed};
use grail_core::sketch::SketchPlanes;
use grail_core::tensors::fingerprint_model_dir;
use grail_core::wire::{RolloutRecord, WindowFile, WindowHeader};
use grail_engine::{LogitsFor, Model, Tokenizer};
use grail_miner::rollout::{completion_text, prompt_tokens, WindowSeeds};
use serde::Serialize;

pub use reject::Reject;

/// Everything public about one window that verification needs, all of it
/// from finalized blocks and verified beacons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowContext {
    pub netuid: u16,
    pub window: u64,
    /// Hash of block `window`.
    pub block_hash: Digest,
    /// `randomness` of the verified generation beacon (§4.2).
    pub generation_randomness: Digest,
    /// §4.5, from the deadline block's hash and the verified challenge beacon.
    pub challenge_randomness: Digest,
    /// The network's sampling parameters and context (§14.2).
    pub generation: GenerationParams,
    /// Timestamp of the deadline block, ms (uploads must be complete by then).
    pub deadline_ms: u64,
}

impl WindowContext {
    /// Build from the raw chain and beacon values.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        netuid: u16,
        window: u64,
        block_hash: Digest,
        generation_randomness: Digest,
        deadline_block_hash: Digest,
        challenge_beacon_randomness: Digest,
        generation: GenerationParams,
        deadline_ms: u64,
    ) -> WindowContext {
        WindowContext {
            netuid,
            window,
            block_hash,
            generation_randomness,
            challenge_randomness: challenge_randomness(
                &deadline_block_hash,
                &challenge_beacon_randomness,
            ),
            generation,
            deadline_ms,
        }
    }

    fn seeds(&self, hotkey: [u8; 32]) -> WindowSeeds {
        WindowSeeds::new(
            self.netuid,
            self.window,
            hotkey,
            self.block_hash,
            &self.generation_randomness,
        )
    }
}

/// Which groups get the proof check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofSelection {
    /// Every group (`grail verify`'s default: an audit of the whole file).
    All,
    /// The validator's sample (§15): [`policy::proof_groups`].
    Sampled,
}

/// What a rollout's proof check measured (for drift statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProofStats {
    /// Positions checked (opened plus the final one).
    pub positions: u32,
    pub max_sketch_distance: u32,
    pub max_logprob_deviation: f64,
    pub max_cdf_outside: f64,
}

/// The verdict on one rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutVerdict {
    pub problem: u32,
    pub rollout: u32,
    pub completion_tokens: u32,
    pub reward: f64,
    /// Whether the proof check ran on it.
    pub proof: Option<ProofStats>,
    /// Index of an earlier rollout of this file with the same completion.
    pub duplicate_of: Option<usize>,
    pub result: Result<(), Reject>,
}

/// The verdicts on one window file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The header's hotkey (when the file decoded).
    pub hotkey: Option<[u8; 32]>,
    /// A file-level rejection (nothing below it was checked).
    pub file_reject: Option<Reject>,
    pub rollouts: Vec<RolloutVerdict>,
    /// Problem indices that got the proof check.
    pub proof_groups: Vec<u32>,
    /// Digests of the distinct completions of at least
    /// [`policy::COPYCAT_MIN_TOKENS`] tokens (for the cross-miner check).
    pub completion_digests: Vec<Digest>,
}

impl FileReport {
    /// A report rejecting the whole file (nothing below it checked).
    pub fn file_level(hotkey: Option<[u8; 32]>, reject: Reject) -> FileReport {
        FileReport {
            hotkey,
            file_reject: Some(reject),
            rollouts: Vec::new(),
            proof_groups: Vec::new(),
            completion_digests: Vec::new(),
        }
    }

    /// The first rejection: the file's, else the first failing rollout's.
    pub fn first_reject(&self) -> Option<&Reject> {
        self.file_reject
            .as_ref()
            .or_else(|| self.rollouts.iter().find_map(|r| r.result.as_ref().err()))
    }

    /// Every check passed.
    pub fn passed(&self) -> bool {
        self.first_reject().is_none()
    }

    /// Rollouts in the file.
    pub fn rollout_count(&self) -> u32 {
        self.rollouts.len() as u32
    }

    /// Distinct completions (duplicates within the file count once).
    pub fn unique(&self) -> u32 {
        self.rollouts
            .iter()
            .filter(|r| r.duplicate_of.is_none())
            .count() as u32
    }

    /// Rollouts that got the proof check.
    pub fn proof_checked(&self) -> u32 {
        self.rollouts.iter().filter(|r| r.proof.is_some()).count() as u32
    }
}

/// The digest a completion is compared by (within and across miners).
pub fn completion_digest(tokens: &[u32]) -> Digest {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    derive("grail/v1/validator-completion", &[&bytes])
}

/// A validator's model: the checkpoint it runs, its tokenizer and its
/// fingerprint.
pub struct Verifier {
    model: Model,
    tokenizer: Tokenizer,
    fingerprint: Digest,
    eos: Vec<u32>,
}

/// Loading the validator's model failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("model {dir}: {source}")]
    Engine {
        dir: String,
        source: Box<grail_engine::EngineError>,
    },
    #[error("model {dir}: fingerprint: {source}")]
    Fingerprint {
        dir: String,
        source: grail_core::tensors::TensorsError,
    },
}

impl Verifier {
    /// Load a model directory with the network's context limit.
    pub fn load(dir: &Path, context_limit: Option<u32>) -> Result<Verifier, LoadError> {
        let d = dir.display().to_string();
        let engine = |source| LoadError::Engine {
            dir: d.clone(),
            source: Box::new(source),
        };
        let mut model = Model::load(dir).map_err(engine)?;
        if let Some(limit) = context_limit {
            model.set_max_positions(limit as usize).map_err(engine)?;
        }
        let tokenizer = Tokenizer::load(dir).map_err(engine)?;
        let fingerprint = fingerprint_model_dir(dir)
            .map_err(|source| LoadError::Fingerprint {
                dir: d.clone(),
                source,
            })?
            .0;
        let eos = model.config().eos_token_ids.clone();
        Ok(Verifier {
            model,
            tokenizer,
            fingerprint,
            eos,
        })
    }

    /// The fingerprint of the validator's checkpoint.
    pub fn fingerprint(&self) -> &Digest {
        &self.fingerprint
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Run the pipeline on one window file's bytes. `expected_hotkey` is the
    /// miner the file was fetched for (its object key); `uploaded_ms` the
    /// store's last-modified time when known.
    pub fn verify_file(
        &self,
        bytes: &[u8],
        expected_hotkey: Option<&[u8; 32]>,
        uploaded_ms: Option<u64>,
        ctx: &WindowContext,
        selection: ProofSelection,
    ) -> FileReport {
        if let Some(uploaded_ms) = uploaded_ms.filter(|&t| t > ctx.deadline_ms) {
            return FileReport::file_level(
                expected_hotkey.copied(),
                Reject::Late {
                    uploaded_ms,
                    deadline_ms: ctx.deadline_ms,
                },
            );
        }
        // 1. file
        match WindowFile::decode(bytes) {
            Ok(file) => self.verify_decoded(&file, expected_hotkey, ctx, selection),
            Err(e) => FileReport::file_level(expected_hotkey.copied(), Reject::from_wire(e)),
        }
    }

    /// The pipeline after decoding (for a caller that decoded the file
    /// already, to read its header).
    pub fn verify_decoded(
        &self,
        file: &WindowFile,
        expected_hotkey: Option<&[u8; 32]>,
        ctx: &WindowContext,
        selection: ProofSelection,
    ) -> FileReport {
        let h = file.header;
        let hotkey = Some(h.hotkey);
        if let Some(r) = check_header(&h, expected_hotkey, ctx) {
            return FileReport::file_level(hotkey, r);
        }
        // 4 (structure): contiguous problems, complete groups
        let groups = match split_groups(&file.rollouts) {
            Ok(g) => g,
            Err(r) => return FileReport::file_level(hotkey, r),
        };
        // 2. signatures, per rollout
        let key = Hotkey::from_bytes(h.hotkey);
        let mut results: Vec<Result<(), Reject>> = file
            .rollouts
            .iter()
            .map(|rec| {
                verify_signature(&key, &rec.signed_message(&h), &rec.signature).map_err(|e| {
                    Reject::Signature {
                        problem: rec.problem_index,
                        rollout: rec.rollout_index,
                        error: e.to_string(),
                    }
                })
            })
            .collect();
        // 3. model
        if h.model_fingerprint != self.fingerprint {
            if let Some(first_bad) = results.iter().find_map(|r| r.as_ref().err()) {
                return FileReport::file_level(hotkey, first_bad.clone());
            }
            return FileReport::file_level(
                hotkey,
                Reject::ModelFingerprint {
                    got: h.model_fingerprint,
                    want: self.fingerprint,
                },
            );
        }
        let seeds = ctx.seeds(h.hotkey);
        let mut planes = None;
        let proof_groups = match selection {
            ProofSelection::All => (0..groups.len() as u32).collect(),
            ProofSelection::Sampled => {
                policy::proof_groups(&ctx.challenge_randomness, &h.hotkey, groups.len() as u32)
            }
        };
        let mut verdicts = Vec::with_capacity(file.rollouts.len());
        let mut seen: HashMap<Digest, usize> = HashMap::new();
        let mut digests = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let start = verdicts.len();
            let problem = seeds.problem(g as u32);
            let prompt = prompt_tokens(&self.tokenizer, &problem);
            let mut rewards = Vec::with_capacity(group.len());
            let completions: Vec<Vec<u32>> = group.iter().map(RolloutRecord::completion).collect();
            // 4-5, 7 (shape), 8 (reward): every rollout
            for (rec, completion) in group.iter().zip(&completions) {
                let i = verdicts.len();
                let digest = completion_digest(completion);
                let duplicate_of = match seen.get(&digest) {
                    Some(&j) => Some(j),
                    None => {
                        seen.insert(digest, i);
                        if completion.len() >= policy::COPYCAT_MIN_TOKENS {
                            digests.push(digest);
                        }
                        None
                    }
                };
                let text = completion_text(&self.tokenizer, completion);
                let reward = text
                    .as_ref()
                    .map(|t| problem.score(t).total)
                    .unwrap_or(f64::NAN);
                rewards.push(reward);
                let mut result = std::mem::replace(&mut results[i], Ok(()));
                if result.is_ok() {
                    result = match (&prompt, &text) {
                        (Err(e), _) => Err(Reject::Engine(format!(
                            "deriving problem {g}'s prompt: {e}"
                        ))),
                        (_, Err(e)) => Err(Reject::Engine(format!("decoding a completion: {e}"))),
                        (Ok(prompt), Ok(_)) => self
                            .cheap_checks(rec, completion, prompt, ctx)
                            .and_then(|()| check_reward(rec, reward)),
                    };
                }
                verdicts.push(RolloutVerdict {
                    problem: rec.problem_index,
                    rollout: rec.rollout_index,
                    completion_tokens: completion.len() as u32,
                    reward: rec.reward,
                    proof: None,
                    duplicate_of,
                    result,
                });
            }
            // 8 (advantages): over the recomputed rewards of the group
            let advantages = grail_challenges::reward::advantages(&rewards);
            for (k, rec) in group.iter().enumerate() {
                let v = &mut verdicts[start + k];
                if v.result.is_ok() && rec.advantage.to_bits() != advantages[k].to_bits() {
                    v.result = Err(Reject::Advantage {
                        problem: rec.problem_index,
                        rollout: rec.rollout_index,
                        claimed: rec.advantage,
                        recomputed: advantages[k],
                    });
                }
            }
            // 6-7: the proof, on sampled groups whose cheap checks passed
            let Ok(prompt) = &prompt else { continue };
            if proof_groups.contains(&(g as u32))
                && verdicts[start..].iter().all(|v| v.result.is_ok())
            {
                let planes = match planes.get_or_insert_with(|| {
                    SketchPlanes::new(&seeds.sketch_key(), self.model.config().hidden_size)
                        .map_err(|e| Reject::Engine(e.to_string()))
                }) {
                    Ok(p) => &*p,
                    Err(r) => {
                        for v in &mut verdicts[start..] {
                            v.result = Err(r.clone());
                        }
                        continue;
                    }
                };
                match self.prove_group(&h, &seeds, planes, ctx, prompt, group, &completions) {
                    Ok(outcomes) => {
                        for (k, o) in outcomes.into_iter().enumerate() {
                            let v = &mut verdicts[start + k];
                            match o {
                                Ok(stats) => v.proof = Some(stats),
                                Err(r) => v.result = Err(r),
                            }
                        }
                    }
                    Err(r) => {
                        for v in &mut verdicts[start..] {
                            v.result = Err(r.clone());
                        }
                    }
                }
            }
        }
        FileReport {
            hotkey,
            file_reject: None,
            rollouts: verdicts,
            proof_groups,
            completion_digests: digests,
        }
    }

    /// Checks 4 (prompt, sampling parameters), 5 (tokens) and 7's shape
    /// (EOS only last; no EOS means the full length).
    fn cheap_checks(
        &self,
        rec: &RolloutRecord,
        completion: &[u32],
        prompt: &[u32],
        ctx: &WindowContext,
    ) -> Result<(), Reject> {
        let (problem, rollout) = (rec.problem_index, rec.rollout_index);
        if rec.prompt != prompt {
            let first_difference = rec
                .prompt
                .iter()
                .zip(prompt)
                .position(|(a, b)| a != b)
                .unwrap_or(rec.prompt.len().min(prompt.len()));
            return Err(Reject::Prompt {
                problem,
                rollout,
                got_len: rec.prompt.len(),
                want_len: prompt.len(),
                first_difference,
            });
        }
        let want = ctx.generation.sampling();
        if rec.sampling != want {
            return Err(Reject::SamplingParams {
                problem,
                rollout,
                got: rec.sampling,
                want,
            });
        }
        let vocab = self.model.config().vocab_size;
        if let Some((t, &token)) = completion
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= vocab)
        {
            return Err(Reject::TokenOutOfVocabulary {
                problem,
                rollout,
                place: format!("completion position {t}"),
                token,
                vocab,
            });
        }
        let len = prompt.len() + completion.len();
        let limit = self.model.max_positions();
        // The final token is never fed to the model, so the context holds
        // prompt + completion - 1 positions.
        if len - 1 > limit {
            return Err(Reject::ContextTooLong {
                problem,
                rollout,
                len,
                limit,
            });
        }
        let n = completion.len() as u32;
        if let Some(t) = completion[..completion.len() - 1]
            .iter()
            .position(|t| self.eos.contains(t))
        {
            return Err(Reject::EarlyEos {
                problem,
                rollout,
                position: t as u32,
                len: n,
            });
        }
        let ends_with_eos = self.eos.contains(&completion[completion.len() - 1]);
        if !ends_with_eos && n != rec.sampling.max_new_tokens {
            return Err(Reject::Truncated {
                problem,
                rollout,
                len: n,
                max_new_tokens: rec.sampling.max_new_tokens,
            });
        }
        Ok(())
    }

    /// Checks 6 and 7 for one group: the prompt prefilled once, the KV cache
    /// forked per rollout, every completion fed in one batched forward pass
    /// with logits only at the rows checked.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn prove_group(
        &self,
        h: &WindowHeader,
        seeds: &WindowSeeds,
        planes: &SketchPlanes,
        ctx: &WindowContext,
        prompt: &[u32],
        group: &[RolloutRecord],
        completions: &[Vec<u32>],
    ) -> Result<Vec<Result<ProofStats, Reject>>, Reject> {
        let engine = |e: grail_engine::EngineError| Reject::Engine(e.to_string());
        let temperature = ctx.generation.sampling().temperature();
        let mut base = self.model.new_sequence();
        let base_out = self
            .model
            .forward(&mut [&mut base], &[prompt], LogitsFor::Last)
            .map_err(engine)?;
        // positions to check per rollout: the opened ones plus the last
        let positions: Vec<Vec<u32>> = group
            .iter()
            .zip(completions)
            .map(|(rec, c)| {
                let n = c.len() as u32;
                let mut p = challenge_positions(
                    &ctx.challenge_randomness,
                    &rec.commit_root(),
                    n,
                    CHALLENGE_POSITIONS,
                );
                if p.last() != Some(&(n - 1)) {
                    p.push(n - 1);
                }
                p
            })
            .collect();
        // one forward over every rollout's completion but its last token
        let fed: Vec<usize> = (0..group.len())
            .filter(|&k| completions[k].len() > 1)
            .collect();
        let mut seqs: Vec<_> = fed.iter().map(|_| base.clone()).collect();
        let tokens: Vec<&[u32]> = fed
            .iter()
            .map(|&k| &completions[k][..completions[k].len() - 1])
            .collect();
        let mut offsets = vec![0usize];
        for t in &tokens {
            offsets.push(offsets.last().unwrap() + t.len());
        }
        // logits at every fed position: the sampler's choice is checked at
        // every position, the sketch and logprob at the opened ones
        let row_start: HashMap<usize, usize> = fed
            .iter()
            .enumerate()
            .map(|(j, &k)| (k, offsets[j]))
            .collect();
        let out = if fed.is_empty() {
            None
        } else {
            let mut refs: Vec<&mut grail_engine::Sequence> = seqs.iter_mut().collect();
            Some(
                self.model
                    .forward(&mut refs, &tokens, LogitsFor::All)
                    .map_err(engine)?,
            )
        };
        let mut results = Vec::with_capacity(group.len());
        for (k, rec) in group.iter().enumerate() {
            let (problem, rollout) = (rec.problem_index, rec.rollout_index);
            let mut u = Uniforms::new(&rollout_seed(
                &seeds.window_randomness,
                &h.hotkey,
                problem,
                rollout,
            ));
            let mut stats = ProofStats::default();
            let mut findings = Vec::with_capacity(positions[k].len());
            let result = (|| {
                let mut opened = positions[k].iter().peekable();
                for t in 0..rec.commitments.len() as u32 {
                    let (logits, hidden) = if t == 0 {
                        (
                            base_out.logits_row(0),
                            base_out.hidden_row(base_out.logit_rows[0]),
                        )
                    } else {
                        let o = out.as_ref().expect("rollouts with t > 0 were fed");
                        let i = row_start[&k] + t as usize - 1;
                        (o.logits_row(i), o.hidden_row(o.logit_rows[i]))
                    };
                    let c = &rec.commitments[t as usize];
                    if opened.peek() != Some(&&t) {
                        // not opened: the token must still be the sampler's choice
                        if let Err(r) = check_sample(
                            logits,
                            temperature,
                            u.at(t),
                            c.token,
                            SAMPLING_CDF_EPSILON,
                        )
                        .map_err(|e| Reject::Engine(e.to_string()))?
                        {
                            return Err(not_sampled(problem, rollout, t, &r));
                        }
                        continue;
                    }
                    opened.next();
                    let sketch = planes
                        .sketch(hidden)
                        .map_err(|e| Reject::Engine(format!("sketch at position {t}: {e}")))?;
                    let distance = sketch.hamming(&c.sketch);
                    stats.max_sketch_distance = stats.max_sketch_distance.max(distance);
                    if distance > SKETCH_MAX_HAMMING {
                        return Err(Reject::SketchMismatch {
                            problem,
                            rollout,
                            position: t,
                            distance,
                            max: SKETCH_MAX_HAMMING,
                        });
                    }
                    let ut = u.at(t);
                    let sample =
                        match check_sample(logits, temperature, ut, c.token, SAMPLING_CDF_EPSILON)
                            .map_err(|e| Reject::Engine(e.to_string()))?
                        {
                            Ok(s) => s,
                            Err(r) => return Err(not_sampled(problem, rollout, t, &r)),
                        };
                    stats.max_cdf_outside = stats.max_cdf_outside.max(sample.outside);
                    let lp = logprob_at(logits, temperature, c.token)
                        .map_err(|e| Reject::Engine(e.to_string()))?;
                    let dev = (f64::from(c.logprob) - lp).abs();
                    if dev.is_finite() {
                        stats.max_logprob_deviation = stats.max_logprob_deviation.max(dev);
                    }
                    findings.push(PositionFinding {
                        position: t,
                        sample,
                        logprob_committed: c.logprob,
                        logprob_recomputed: lp,
                    });
                    let last = t as usize == rec.commitments.len() - 1;
                    if last && self.eos.contains(&c.token) {
                        let probability = lp.exp();
                        if probability < policy::MIN_EOS_PROBABILITY {
                            return Err(Reject::UnlikelyEos {
                                problem,
                                rollout,
                                probability,
                                min: policy::MIN_EOS_PROBABILITY,
                            });
                        }
                    }
                }
                stats.positions = findings.len() as u32;
                check_opening(&findings).map_err(|source| Reject::Opening {
                    problem,
                    rollout,
                    source,
                })?;
                Ok(stats)
            })();
            results.push(result);
        }
        Ok(results)
    }
}

fn check_header(
    h: &WindowHeader,
    expected_hotkey: Option<&[u8; 32]>,
    ctx: &WindowContext,
) -> Option<Reject> {
    if h.netuid != ctx.netuid {
        return Some(Reject::Netuid {
            got: h.netuid,
            want: ctx.netuid,
        });
    }
    if h.window != ctx.window {
        return Some(Reject::Window {
            got: h.window,
            want: ctx.window,
        });
    }
    match expected_hotkey {
        Some(want) if *want != h.hotkey => Some(Reject::Hotkey {
            got: h.hotkey,
            want: *want,
        }),
        _ => None,
    }
}

/// Split records (already in strictly ascending (problem, rollout) order)
/// into groups: problems 0, 1, 2, ... each with rollouts 0..16.
fn split_groups(records: &[RolloutRecord]) -> Result<Vec<&[RolloutRecord]>, Reject> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let p = records[i].problem_index;
        let want = groups.len() as u32;
        if p != want {
            return Err(Reject::ProblemIndex { got: p, want });
        }
        let end = records[i..]
            .iter()
            .position(|r| r.problem_index != p)
            .map_or(records.len(), |n| i + n);
        let group = &records[i..end];
        let complete = group.len() == ROLLOUTS_PER_PROBLEM as usize
            && group
                .iter()
                .enumerate()
                .all(|(r, rec)| rec.rollout_index == r as u32);
        if !complete {
            return Err(Reject::GroupIncomplete {
                problem: p,
                present: group.iter().map(|r| r.rollout_index).collect(),
                expected: ROLLOUTS_PER_PROBLEM,
            });
        }
        groups.push(group);
        i = end;
    }
    Ok(groups)
}

fn not_sampled(
    problem: u32,
    rollout: u32,
    position: u32,
    r: &grail_core::sampling::SampleReject,
) -> Reject {
    Reject::NotSampled {
        problem,
        rollout,
        position,
        token: r.token,
        u: r.u,
        lo: r.lo,
        hi: r.hi,
        epsilon: r.epsilon,
    }
}

fn check_reward(rec: &RolloutRecord, recomputed: f64) -> Result<(), Reject> {
    if rec.reward.to_bits() == recomputed.to_bits() {
        Ok(())
    } else {
        Err(Reject::Reward {
            problem: rec.problem_index,
            rollout: rec.rollout_index,
            claimed: rec.reward,
            recomputed,
        })
    }
}
