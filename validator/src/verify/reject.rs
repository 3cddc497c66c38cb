//! Why a window file or a rollout is rejected: one variant per check, each
//! carrying the offending values (PROTOCOL.md §15).
use grail_core::hash::Digest;
use grail_core::opening::OpeningReject;
use grail_core::sampling::SamplingParams;
use grail_core::wire::WireError;

fn short(d: &[u8]) -> String {
    hex::encode(&d[..8.min(d.len())])
}

pub(crate) fn ss58(h: &[u8; 32]) -> String {
    grail_core::keys::Hotkey::from_bytes(*h).to_ss58()
}

/// A failed check. File-level variants reject the whole file; the others
/// name the rollout (`problem`, `rollout`) they were found in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Reject {
    // 1. file
    #[error("file does not decode: {0}")]
    Decode(WireError),
    #[error("header netuid {got}, expected {want}")]
    Netuid { got: u16, want: u16 },
    #[error("header window {got}, expected {want}")]
    Window { got: u64, want: u64 },
    #[error("header hotkey {}, expected {}", ss58(.got), ss58(.want))]
    Hotkey { got: [u8; 32], want: [u8; 32] },
    #[error("uploaded at {uploaded_ms} ms, after the deadline block's timestamp {deadline_ms} ms")]
    Late { uploaded_ms: u64, deadline_ms: u64 },
    // 2. signature
    #[error("problem {problem} rollout {rollout}: signature does not verify under the header's hotkey: {error}")]
    Signature {
        problem: u32,
        rollout: u32,
        error: String,
    },
    // 3. model
    #[error("model fingerprint {}.. is not the validator's checkpoint {}..", short(.got), short(.want))]
    ModelFingerprint { got: Digest, want: Digest },
    // 4. problem
    #[error("problem indices must run 0, 1, 2, ...: found problem {got} where {want} was due")]
    ProblemIndex { got: u32, want: u32 },
    #[error("problem {problem}: group has rollouts {present:?}, expected 0..{expected}")]
    GroupIncomplete {
        problem: u32,
        present: Vec<u32>,
        expected: u32,
    },
    #[error("problem {problem}: rollout {rollout} appears twice")]
    DuplicateRollout { problem: u32, rollout: u32 },
    #[error("problem {problem} rollout {rollout}: prompt of {got_len} tokens differs from the derived prompt of {want_len} tokens (first difference at token {first_difference})")]
    Prompt {
        problem: u32,
        rollout: u32,
        got_len: usize,
        want_len: usize,
        first_difference: usize,
    },
    #[error("problem {problem} rollout {rollout}: sampling parameters {got:?}, the network's are {want:?}")]
    SamplingParams {
        problem: u32,
        rollout: u32,
        got: SamplingParams,
        want: SamplingParams,
    },
    // 5. tokens
    #[error("problem {problem} rollout {rollout}: token {token} at {place} is outside the vocabulary of {vocab}")]
    TokenOutOfVocabulary {
        problem: u32,
        rollout: u32,
        place: String,
        token: u32,
        vocab: usize,
    },
    #[error("problem {problem} rollout {rollout}: {len} prompt + completion tokens exceed the context limit {limit}")]
    ContextTooLong {
        problem: u32,
        rollout: u32,
        len: usize,
        limit: usize,
    },
    // 6. proof
    #[error("problem {problem} rollout {rollout} position {position}: sketch {distance} bits from the recomputation (at most {max})")]
    SketchMismatch {
        problem: u32,
        rollout: u32,
        position: u32,
        distance: u32,
        max: u32,
    },
    #[error("problem {problem} rollout {rollout} position {position}: token {token} is not the sampler's choice: u = {u:.6} outside its interval [{lo:.6}, {hi:.6}) widened by {epsilon}")]
    NotSampled {
        problem: u32,
        rollout: u32,
        position: u32,
        token: u32,
        u: f64,
        lo: f64,
        hi: f64,
        epsilon: f64,
    },
    #[error("problem {problem} rollout {rollout}: {source}")]
    Opening {
        problem: u32,
        rollout: u32,
        source: OpeningReject,
    },
    // 7. termination
    #[error("problem {problem} rollout {rollout}: end-of-sequence token at position {position} before the last ({len} tokens)")]
    EarlyEos {
        problem: u32,
        rollout: u32,
        position: u32,
        len: u32,
    },
    #[error("problem {problem} rollout {rollout}: completion of {len} tokens ends without an end-of-sequence token before max_new_tokens {max_new_tokens}")]
    Truncated {
        problem: u32,
        rollout: u32,
        len: u32,
        max_new_tokens: u32,
    },
    #[error("problem {problem} rollout {rollout}: final end-of-sequence token had probability {probability:.3e}, below the minimum {min:e}")]
    UnlikelyEos {
        problem: u32,
        rollout: u32,
        probability: f64,
        min: f64,
    },
    // 8. reward
    #[error(
        "problem {problem} rollout {rollout}: reward {claimed} claimed, {recomputed} recomputed"
    )]
    Reward {
        problem: u32,
        rollout: u32,
        claimed: f64,
        recomputed: f64,
    },
    #[error(
        "problem {problem} rollout {rollout}: advantage {claimed} claimed, {recomputed} recomputed"
    )]
    Advantage {
        problem: u32,
        rollout: u32,
        claimed: f64,
        recomputed: f64,
    },
    // 9. uniqueness across miners
    #[error("{shared} completions shared with miner {} ({:.1}% of this miner's distinct completions)", ss58(.other), .fraction * 100.0)]
    Copycat {
        other: [u8; 32],
        shared: u32,
        fraction: f64,
    },
    /// The validator could not run its own model (not the miner's fault;
    /// reported, never scored as a pass).
    #[error("validator engine error: {0}")]
    Engine(String),
}

impl Reject {
    /// A short machine name of the check that failed (JSON, the database).
    pub fn code(&self) -> &'static str {
        match self {
            Reject::Decode(_) => "decode",
            Reject::Netuid { .. } => "netuid",
            Reject::Window { .. } => "window",
            Reject::Hotkey { .. } => "hotkey",
            Reject::Late { .. } => "late",
            Reject::Signature { .. } => "signature",
            Reject::ModelFingerprint { .. } => "model_fingerprint",
            Reject::ProblemIndex { .. } => "problem_index",
            Reject::GroupIncomplete { .. } => "group_incomplete",
            Reject::DuplicateRollout { .. } => "duplicate_rollout",
            Reject::Prompt { .. } => "prompt",
            Reject::SamplingParams { .. } => "sampling_params",
            Reject::TokenOutOfVocabulary { .. } => "token_out_of_vocabulary",
            Reject::ContextTooLong { .. } => "context_too_long",
            Reject::SketchMismatch { .. } => "sketch_mismatch",
            Reject::NotSampled { .. } => "not_sampled",
            Reject::Opening { source, .. } => match source {
                OpeningReject::LogprobDeviation { .. } => "logprob_deviation",
                OpeningReject::LogprobMedian { .. } => "logprob_median",
                OpeningReject::SamplingBudget { .. } => "sampling_budget",
                _ => "opening",
            },
            Reject::EarlyEos { .. } => "early_eos",
            Reject::Truncated { .. } => "truncated",
            Reject::UnlikelyEos { .. } => "unlikely_eos",
            Reject::Reward { .. } => "reward",
            Reject::Advantage { .. } => "advantage",
            Reject::Copycat { .. } => "copycat",
            Reject::Engine(_) => "validator_engine",
        }
    }

    /// Whether the validator itself failed (its fault, not the miner's).
    pub fn is_validator_fault(&self) -> bool {
        matches!(self, Reject::Engine(_))
    }

    /// The decode error, mapped to the check it stands for: records that
    /// repeat a `(problem, rollout)` pair are a duplicated rollout.
    pub fn from_wire(e: WireError) -> Reject {
        match e {
            WireError::OutOfOrder { prev, got, .. } if prev == got => Reject::DuplicateRollout {
                problem: got.0,
                rollout: got.1,
            },
            e => Reject::Decode(e),
        }
    }
}
