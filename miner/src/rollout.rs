//! From a window's public values to signed rollout records (PROTOCOL.md
//! §14): the problem and prompt tokens of each problem index, the sampling
//! seeds of its group, and the records built from the engine's completions.
//! Validators rebuild the same problems and prompts with these functions.
use grail_challenges::{assignment, Problem, Role};
use grail_core::commit::TokenCommitment;
use grail_core::hash::Digest;
use grail_core::params::{MAX_PROMPT_TOKENS, ROLLOUTS_PER_PROBLEM};
use grail_core::sampling::SamplingParams;
use grail_core::seeds::{problem_seed, rollout_seed, sketch_key, window_randomness};
use grail_core::sketch::Sketch;
use grail_core::wire::{RolloutRecord, WindowHeader};
use grail_engine::{ChatMessage, Completion, EngineError, Tokenizer};

/// The values one window's rollouts are derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSeeds {
    pub netuid: u16,
    pub window: u64,
    pub hotkey: [u8; 32],
    /// Hash of block `window` (finalized).
    pub block_hash: Digest,
    /// §4.2, from the block hash and the verified generation beacon.
    pub window_randomness: Digest,
}

impl WindowSeeds {
    pub fn new(
        netuid: u16,
        window: u64,
        hotkey: [u8; 32],
        block_hash: Digest,
        drand_randomness: &Digest,
    ) -> WindowSeeds {
        WindowSeeds {
            netuid,
            window,
            hotkey,
            block_hash,
            window_randomness: window_randomness(&block_hash, drand_randomness),
        }
    }

    /// The key of this window's sketch planes (§4.4).
    pub fn sketch_key(&self) -> Digest {
        sketch_key(&self.window_randomness)
    }

    /// Problem `index` of this miner in this window (§4.1, §13.2).
    pub fn problem(&self, index: u32) -> Problem {
        let seed = problem_seed(self.netuid, &self.hotkey, &self.block_hash, index);
        let (kind, difficulty) = assignment(&seed);
        Problem::generate(kind, &seed, difficulty)
    }

    /// Sampling seeds of the [`ROLLOUTS_PER_PROBLEM`] rollouts of problem `index` (§4.3).
    pub fn rollout_seeds(&self, index: u32) -> Vec<Digest> {
        (0..ROLLOUTS_PER_PROBLEM)
            .map(|r| rollout_seed(&self.window_randomness, &self.hotkey, index, r))
            .collect()
    }
}

/// A prompt that cannot become tokens.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("rendering or tokenizing the prompt: {0}")]
    Engine(#[from] EngineError),
    #[error("prompt of {len} tokens is longer than the protocol's {MAX_PROMPT_TOKENS}")]
    TooLong { len: usize },
}

/// Prompt tokens of a problem (§14.1): its system and user messages through
/// the model's chat template with the generation prompt, encoded without
/// adding special tokens (the template writes its own).
pub fn prompt_tokens(tokenizer: &Tokenizer, problem: &Problem) -> Result<Vec<u32>, PromptError> {
    let messages: Vec<ChatMessage> = problem
        .messages()
        .into_iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
            };
            ChatMessage::new(role, m.content)
        })
        .collect();
    let tokens = tokenizer.encode_chat(&messages)?;
    if tokens.len() > MAX_PROMPT_TOKENS as usize {
        return Err(PromptError::TooLong { len: tokens.len() });
    }
    Ok(tokens)
}

/// The text a completion is scored on (§14.3): its tokens decoded with
/// special tokens (the end-of-sequence token among them) skipped.
pub fn completion_text(tokenizer: &Tokenizer, tokens: &[u32]) -> Result<String, EngineError> {
    tokenizer.decode(tokens, true)
}

/// Per-position commitments of a completion (§6.1): token, logprob rounded
/// to f32, sketch.
pub fn commitments(c: &Completion, sketches: &[Sketch]) -> Vec<TokenCommitment> {
    c.tokens
        .iter()
        .zip(&c.logprobs)
        .zip(sketches)
        .map(|((&token, &logprob), &sketch)| TokenCommitment {
            token,
            logprob: logprob as f32,
            sketch,
        })
        .collect()
}

/// Records of one group, in rollout order, with rewards, GRPO advantages
/// and signatures (§14.3, §6.3). `completions[r]` is rollout `r` and must
/// carry sketches.
#[allow(clippy::too_many_arguments)]
pub fn group_records(
    header: &WindowHeader,
    problem_index: u32,
    problem: &Problem,
    prompt: &[u32],
    completions: &[Completion],
    sampling: SamplingParams,
    tokenizer: &Tokenizer,
    sign: &dyn Fn(&Digest) -> [u8; 64],
) -> Result<Vec<RolloutRecord>, EngineError> {
    let mut rewards = Vec::with_capacity(completions.len());
    for c in completions {
        rewards.push(problem.score(&completion_text(tokenizer, &c.tokens)?).total);
    }
    let advantages = grail_challenges::reward::advantages(&rewards);
    let mut records = Vec::with_capacity(completions.len());
    for (r, c) in completions.iter().enumerate() {
        let sketches = c.sketches.as_deref().ok_or_else(|| {
            EngineError::InvalidRequest("completion generated without sketches".into())
        })?;
        let commitments = commitments(c, sketches);
        let mut rec = RolloutRecord {
            problem_index,
            rollout_index: r as u32,
            sampling,
            prompt: prompt.to_vec(),
            commitments,
            reward: rewards[r],
            advantage: advantages[r],
            signature: [0u8; 64],
        };
        rec.signature = sign(&rec.signed_message(header));
        records.push(rec);
    }
    Ok(records)
}

/// A problem derived and tokenized, waiting for generation.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub index: u32,
    pub problem: Problem,
    pub prompt: Vec<u32>,
}

impl Prepared {
    /// Problem `index` of the window and its prompt tokens.
    pub fn new(
        seeds: &WindowSeeds,
        tokenizer: &Tokenizer,
        index: u32,
    ) -> Result<Prepared, crate::miner::MinerError> {
        let problem = seeds.problem(index);
        let prompt = prompt_tokens(tokenizer, &problem)
            .map_err(|e| crate::miner::MinerError::Other(format!("problem {index}: {e}")))?;
        Ok(Prepared {
            index,
            problem,
            prompt,
        })
    }
}

/// Generate the groups of `batch` in one backend call (every prompt
/// prefilled once, all rollouts decoded together), then score and sign them:
/// the records, in problem then rollout order.
#[allow(clippy::too_many_arguments)]
pub fn generate_records(
    backend: &dyn crate::Backend,
    tokenizer: &Tokenizer,
    keypair: &grail_core::keys::Keypair,
    header: &WindowHeader,
    seeds: &WindowSeeds,
    batch: &[Prepared],
    generation: &grail_core::generation::GenerationParams,
    planes: &grail_core::sketch::SketchPlanes,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> Result<Vec<RolloutRecord>, crate::miner::MinerError> {
    let rollout_seeds: Vec<Vec<Digest>> =
        batch.iter().map(|p| seeds.rollout_seeds(p.index)).collect();
    let jobs: Vec<crate::backend::GroupJob<'_>> = batch
        .iter()
        .zip(&rollout_seeds)
        .map(|(p, s)| crate::backend::GroupJob {
            prompt: &p.prompt,
            seeds: s,
        })
        .collect();
    let groups = backend.generate(
        &jobs,
        &crate::backend::JobOptions {
            temperature: generation.sampling().temperature(),
            max_new_tokens: generation.max_new_tokens as usize,
            stop_tokens: backend.eos_tokens(),
            planes,
            cancel,
        },
    )?;
    let sign = |m: &Digest| keypair.sign(m);
    let mut records = Vec::with_capacity(batch.len() * ROLLOUTS_PER_PROBLEM as usize);
    for (p, completions) in batch.iter().zip(&groups) {
        records.extend(group_records(
            header,
            p.index,
            &p.problem,
            &p.prompt,
            completions,
            generation.sampling(),
            tokenizer,
            &sign,
        )?);
    }
    Ok(records)
}

/// A whole window file for `problems` problems (indices `0..problems`),
/// generated in one call: the miner's work for one window without the chain,
/// the deadline planner or the store (benchmarks, tests, tools).
pub fn generate_window(
    backend: &dyn crate::Backend,
    tokenizer: &Tokenizer,
    keypair: &grail_core::keys::Keypair,
    model_fingerprint: Digest,
    seeds: &WindowSeeds,
    generation: &grail_core::generation::GenerationParams,
    problems: u32,
) -> Result<grail_core::wire::WindowFile, crate::miner::MinerError> {
    let header = WindowHeader {
        netuid: seeds.netuid,
        window: seeds.window,
        hotkey: *keypair.hotkey().as_bytes(),
        model_fingerprint,
    };
    if header.hotkey != seeds.hotkey {
        return Err(crate::miner::MinerError::Other(
            "the window seeds belong to another hotkey".into(),
        ));
    }
    let planes = grail_core::sketch::SketchPlanes::new(&seeds.sketch_key(), backend.hidden_size())
        .map_err(|e| crate::miner::MinerError::Other(e.to_string()))?;
    let batch = (0..problems)
        .map(|index| Prepared::new(seeds, tokenizer, index))
        .collect::<Result<Vec<_>, _>>()?;
    let rollouts = generate_records(
        backend, tokenizer, keypair, &header, seeds, &batch, generation, &planes, None,
    )?;
    Ok(grail_core::wire::WindowFile { header, rollouts })
}
