//! Consensus-critical constants, all tied to [`PROTOCOL_VERSION`].
//!
//! Each constant says what breaks if it changes. PROTOCOL.md §9 gives the
//! rationale for every value; tolerances are named here so that tuning them
//! from measurements is a one-line, reviewed change with a version bump.
#![forbid(unsafe_code)]

/// Protocol version. Every constant in this module belongs to this version;
/// changing any of them without bumping it splits miners from validators. It
/// is the first field of every signed commit binding and of every window file.
pub const PROTOCOL_VERSION: u16 = 1;

// ---------------------------------------------------------------- windows --

/// Blocks per window (~6 min at 12 s/block). Changing it moves every window
/// boundary, seed and deadline.
pub const WINDOW_LENGTH: u64 = 30;

/// Seconds after the upload deadline's block timestamp before the challenge
/// beacon may be published. Covers clock skew between the object store's
/// `last_modified` and the chain's timestamps; changing it changes which
/// drand round opens the positions.
pub const CHALLENGE_REVEAL_DELAY_SECS: u64 = 6;

// ---------------------------------------------------------------- rollouts --

/// Rollouts per problem (one GRPO group). Validators reject incomplete groups.
pub const ROLLOUTS_PER_PROBLEM: u32 = 16;

/// Largest prompt, in tokens, a window file may carry.
pub const MAX_PROMPT_TOKENS: u32 = 4096;

/// Largest completion, in tokens, a window file may carry (and the largest
/// `max_new_tokens` a rollout may declare).
pub const MAX_COMPLETION_TOKENS: u32 = 8192;

/// Sampling temperatures are carried as integer thousandths; this is the
/// largest allowed value (4.0). Zero (greedy) is not a GRPO sampling mode.
pub const MAX_TEMPERATURE_MILLI: u16 = 4000;

// ------------------------------------------------------------- window file --

/// Largest window file a decoder accepts, in bytes (512 MiB; the reference
/// subnet's files reach 350 MB).
pub const MAX_WINDOW_FILE_BYTES: u64 = 512 << 20;

/// Largest number of rollout records in one window file.
pub const MAX_ROLLOUTS_PER_FILE: u32 = 1 << 16;

// --------------------------------------------------------------- sketches --

/// Bits in one hidden-state sketch (16 bytes per token).
pub const SKETCH_BITS: usize = 128;

/// Bytes in one hidden-state sketch.
pub const SKETCH_BYTES: usize = SKETCH_BITS / 8;

/// The quantization reference is the `ceil(d / SKETCH_REF_RANK_DIVISOR)`-th
/// largest `|h_i|` of a `d`-dimensional hidden state. An order statistic is
/// exact whatever order a kernel reduces in, and a high quantile keeps a few
/// massive dimensions from flattening all the others to zero.
pub const SKETCH_REF_RANK_DIVISOR: usize = 16;

/// The reference magnitude maps to this many quantization steps.
pub const SKETCH_SCALE: f32 = 32.0;

/// Quantized components are clamped to `[-SKETCH_CLAMP, SKETCH_CLAMP]`.
pub const SKETCH_CLAMP: i32 = 127;

/// A reference magnitude below this (zero, subnormal or absurdly small) makes
/// the hidden state degenerate: no sketch is defined for it.
pub const SKETCH_MIN_REFERENCE: f32 = 1.0 / 18_446_744_073_709_551_616.0; // 2^-64

/// Largest Hamming distance between a committed and a recomputed sketch that a
/// validator accepts at one opened position (tolerance; PROTOCOL.md §6.4–6.5:
/// honest bf16-vs-fp32 and bf16-vs-bf16 drift measured at most 14 bits).
pub const SKETCH_MAX_HAMMING: u32 = 20;

// ---------------------------------------------------------- verification --

/// Positions a validator opens per checked rollout.
pub const CHALLENGE_POSITIONS: usize = 32;

/// Hard widening of the sampled token's CDF interval: an opened position whose
/// `u_t` is farther than this outside the verifier's interval fails
/// (tolerance; §5.3; honest bf16 CDF-endpoint drift measured up to 0.12).
pub const SAMPLING_CDF_EPSILON: f64 = 0.15;

/// Soft widening: opened positions whose `u_t` lies farther than this outside
/// the verifier's interval are counted (§5.3; honest bf16 drift exceeds it at
/// 0.05–0.22% of positions).
pub const SAMPLING_SOFT_EPSILON: f64 = 0.02;

/// Most opened positions of one rollout that may exceed the soft widening
/// (§5.3): honest drift exceeds 3 of 32 with probability about 1e-6, a miner
/// steering tokens inside the hard widening exceeds it quickly.
pub const SAMPLING_SOFT_BUDGET: usize = 3;

/// Largest accepted `|logprob_committed - logprob_recomputed|` at any one
/// opened position (§7.3; honest bf16 drift measured up to 0.93).
pub const LOGPROB_MAX_DEVIATION: f64 = 2.0;

/// Largest accepted median of `|logprob_committed - logprob_recomputed|` over
/// a rollout's opened positions (§7.3; honest median measured up to 0.039).
pub const LOGPROB_MEDIAN_TOLERANCE: f64 = 0.1;
