//! Scoring and weights (PROTOCOL.md §16): from each miner's per-window
//! results to the weight vector a validator sets on chain.
//!
//! Pure: no I/O, no clock. The validator's state database
//! ([`crate::state`]) supplies the history and records each scored window
//! once.
//!
//! For every registered `(uid, hotkey)`:
//!
//! ```text
//! contribution(w) = min(unique, ROLLOUT_CAP_PER_WINDOW)   if w Passed, else 0
//! sum             = Σ contribution(w) over the last SCORING_WINDOWS windows
//! gated           = some w in the last FAILURE_LOOKBACK_WINDOWS windows Failed
//! score           = 0 if gated, else sum ^ SCORE_EXPONENT
//! ```
//!
//! Weights are scores normalized to sum `1 - burn.fraction`, the burn uid
//! receiving `burn.fraction`; the on-chain `u16` vector is
//! `round(w / max(w) * 65535)`.
use std::collections::{HashMap, HashSet};

use grail_core::keys::Hotkey;
use grail_core::params::WINDOW_LENGTH;
use serde::{Deserialize, Serialize};

/// How many windows a miner's score sums: the current window and the 11
/// before it (`w, w - 30, ..., w - 330`), ~72 minutes at 12 s blocks.
///
/// Longer smooths out a miner's bad window and makes a new miner wait longer
/// to reach its full score; shorter makes weights follow single windows.
pub const SCORING_WINDOWS: u64 = 12;

/// A `Failed` outcome in any of this many windows (the current one
/// included) zeroes the miner's score.
///
/// Equal to [`SCORING_WINDOWS`], so a miner caught once cannot keep the
/// credit of windows it submitted around the failure. Shorter lets a cheater
/// return to full score sooner; longer punishes an honest miner's one-off
/// failure (e.g. a late upload judged as a bad file) for longer.
pub const FAILURE_LOOKBACK_WINDOWS: u64 = 12;

/// The most unique valid rollouts one window can credit to a miner.
///
/// 320 GRPO groups of 16. At finney's 1,024 new tokens per rollout that is
/// up to ~5.2M generated tokens, ~14,500 tokens/s over a 6-minute window
/// (an estimate, not a measurement): meant to sit above one honest GPU's
/// output, so only very large single-hotkey windows are capped. Lower
/// flattens the advantage of faster hardware; higher lets one large
/// operator buy more of the weight with one huge window.
pub const ROLLOUT_CAP_PER_WINDOW: u32 = 5120;

/// The power the summed contributions are raised to.
///
/// Superlinear so that splitting work over `k` hotkeys loses:
/// `k * (s / k)^4 = s^4 / k^3`. At 1 scores are proportional to work and
/// sybils are free; higher concentrates weight on the largest miner.
pub const SCORE_EXPONENT: f64 = 4.0;

/// The largest value of the `u16` weight vector `set_weights` takes; the
/// largest weight is mapped to exactly this.
pub const WEIGHT_U16_MAX: u16 = u16::MAX;

/// Why weights could not be computed. Every variant names the value at
/// fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The burn fraction is NaN or outside `[0, 1]`.
    #[error("burn fraction {fraction} for uid {uid} is not a number in [0, 1]")]
    BurnFraction {
        /// The burn uid.
        uid: u16,
        /// The offending fraction.
        fraction: f64,
    },
    /// The burn uid is not in the metagraph, so no weight can be set on it.
    #[error("burn uid {uid} is not registered")]
    BurnUidNotRegistered {
        /// The burn uid.
        uid: u16,
    },
    /// A window count parameter is zero.
    #[error("score parameter {field} is 0; it must be at least 1")]
    ZeroWindows {
        /// `scoring_windows` or `failure_lookback_windows`.
        field: &'static str,
    },
    /// The score exponent is not a finite number >= 1.
    #[error("score exponent {exponent} is not a finite number >= 1")]
    Exponent {
        /// The offending exponent.
        exponent: f64,
    },
    /// The window being scored is not a multiple of `WINDOW_LENGTH`.
    #[error("current window {window} is not a multiple of {WINDOW_LENGTH}")]
    NotAWindow {
        /// The offending block number.
        window: u64,
    },
    /// A history record's window is not a multiple of `WINDOW_LENGTH`.
    #[error("record for uid {uid}: window {window} is not a multiple of {WINDOW_LENGTH}")]
    RecordNotAWindow {
        /// The record's uid.
        uid: u16,
        /// The record's window.
        window: u64,
    },
    /// The metagraph lists a uid twice.
    #[error("metagraph lists uid {uid} twice")]
    DuplicateUid {
        /// The repeated uid.
        uid: u16,
    },
    /// The metagraph lists a hotkey under two uids.
    #[error("metagraph lists hotkey {hotkey} under uids {first} and {second}")]
    DuplicateHotkey {
        /// The hotkey, SS58.
        hotkey: String,
        /// The first uid holding it.
        first: u16,
        /// The second uid holding it.
        second: u16,
    },
    /// The history holds two records for one miner in one window, which
    /// would count that window twice.
    #[error("history holds two records for uid {uid} ({hotkey}) in window {window}")]
    DuplicateRecord {
        /// The window.
        window: u64,
        /// The uid.
        uid: u16,
        /// The hotkey, SS58.
        hotkey: String,
    },
    /// A `Passed` record claims more unique or checked rollouts than the
    /// file holds.
    #[error(
        "record for uid {uid} in window {window}: {unique} unique and {checked} checked \
         of {rollouts} rollouts"
    )]
    InconsistentRecord {
        /// The window.
        window: u64,
        /// The uid.
        uid: u16,
        /// Rollouts in the file.
        rollouts: u32,
        /// Claimed distinct completions.
        unique: u32,
        /// Claimed proof-checked rollouts.
        checked: u32,
    },
    /// A score is not finite (only possible with non-default parameters).
    #[error("score of uid {uid} overflows: {sum}^{exponent} is not finite")]
    ScoreOverflow {
        /// The uid.
        uid: u16,
        /// The summed contribution.
        sum: u64,
        /// The exponent.
        exponent: f64,
    },
    /// The weights could not be written as JSON.
    #[error("weights for window {window} as JSON: {source}")]
    Json {
        /// The weights' window.
        window: u64,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

/// One miner's result for one window, as the verification pipeline reports
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerWindowRecord {
    /// Window start block (a multiple of `WINDOW_LENGTH`).
    pub window: u64,
    /// The miner's uid when the window was verified.
    pub uid: u16,
    /// The miner's hotkey (sr25519 public key bytes).
    pub hotkey: [u8; 32],
    /// What verification found.
    pub outcome: Outcome,
}

/// What verifying one miner's window file found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The file was checked and every sampled check passed.
    Passed {
        /// Rollouts in the file.
        rollouts: u32,
        /// Distinct completions among them.
        unique: u32,
        /// Rollouts whose proofs were checked.
        checked: u32,
    },
    /// Some check failed: the whole window fails.
    Failed {
        /// Short machine name of the failed check (e.g. `sketch_mismatch`).
        reason: String,
        /// The human-readable message.
        detail: String,
    },
    /// No file for this window (not a failure, contributes 0).
    Missing,
    /// The validator did not sample this miner this window (contributes 0,
    /// not counted in `windows_counted`).
    NotSampled,
}

impl Outcome {
    /// The outcome's machine name: `passed`, `failed`, `missing` or
    /// `not_sampled` (as stored in the state database).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Passed { .. } => "passed",
            Outcome::Failed { .. } => "failed",
            Outcome::Missing => "missing",
            Outcome::NotSampled => "not_sampled",
        }
    }
}

/// A share of the weight sent to one uid (conventionally the subnet owner's)
/// instead of to miners.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Burn {
    /// The uid that receives the burned weight; must be registered.
    pub uid: u16,
    /// The share of the total weight it receives, in `[0, 1]`.
    pub fraction: f64,
}

impl Burn {
    /// A burn of `fraction` to `uid`, rejecting NaN and values outside
    /// `[0, 1]`.
    pub fn new(uid: u16, fraction: f64) -> Result<Burn, ScoreError> {
        let burn = Burn { uid, fraction };
        burn.validate()?;
        Ok(burn)
    }

    fn validate(&self) -> Result<(), ScoreError> {
        if (0.0..=1.0).contains(&self.fraction) {
            Ok(())
        } else {
            Err(ScoreError::BurnFraction {
                uid: self.uid,
                fraction: self.fraction,
            })
        }
    }
}

/// The parameters of [`compute_weights`]; `Default` is the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreParams {
    /// Windows summed into a score ([`SCORING_WINDOWS`]).
    pub scoring_windows: u64,
    /// Windows in which a failure zeroes the score
    /// ([`FAILURE_LOOKBACK_WINDOWS`]).
    pub failure_lookback_windows: u64,
    /// Per-window cap on unique valid rollouts ([`ROLLOUT_CAP_PER_WINDOW`]).
    pub rollout_cap_per_window: u32,
    /// Power of the summed contributions ([`SCORE_EXPONENT`]).
    pub exponent: f64,
    /// Optional burn; `None` gives all weight to miners.
    pub burn: Option<Burn>,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            scoring_windows: SCORING_WINDOWS,
            failure_lookback_windows: FAILURE_LOOKBACK_WINDOWS,
            rollout_cap_per_window: ROLLOUT_CAP_PER_WINDOW,
            exponent: SCORE_EXPONENT,
            burn: None,
        }
    }
}

impl ScoreParams {
    fn validate(&self) -> Result<(), ScoreError> {
        if self.scoring_windows == 0 {
            return Err(ScoreError::ZeroWindows {
                field: "scoring_windows",
            });
        }
        if self.failure_lookback_windows == 0 {
            return Err(ScoreError::ZeroWindows {
                field: "failure_lookback_windows",
            });
        }
        if !(self.exponent.is_finite() && self.exponent >= 1.0) {
            return Err(ScoreError::Exponent {
                exponent: self.exponent,
            });
        }
        if let Some(burn) = &self.burn {
            burn.validate()?;
        }
        Ok(())
    }
}

/// One registered uid's score and weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightEntry {
    /// The uid.
    pub uid: u16,
    /// Its hotkey, SS58.
    pub hotkey: String,
    /// Windows in the scoring range with a result for this hotkey other
    /// than `NotSampled`.
    pub windows_counted: u32,
    /// Σ `min(unique, cap)` over the scoring range (before gating).
    pub unique_valid_sum: u64,
    /// A failure in the lookback zeroed the score.
    pub gated: bool,
    /// `unique_valid_sum ^ exponent`, or 0 if gated.
    pub score: f64,
    /// Normalized weight (miner share plus burn share, if this is the burn
    /// uid); all entries sum to 1, or are all 0.
    pub weight: f64,
    /// `round(weight / max(weight) * 65535)`: what `set_weights` takes.
    pub weight_u16: u16,
}

/// The weight vector for one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// The window scored.
    pub window: u64,
    /// One entry per registered uid, sorted by uid.
    pub entries: Vec<WeightEntry>,
    /// The burn applied, if any.
    pub burn: Option<Burn>,
    /// No miner scored and there is no burn: every weight is 0 (setting
    /// this vector on chain would be meaningless).
    pub all_zero: bool,
}

impl Weights {
    /// The weights as indented JSON.
    pub fn to_json_pretty(&self) -> Result<String, ScoreError> {
        serde_json::to_string_pretty(self).map_err(|source| ScoreError::Json {
            window: self.window,
            source,
        })
    }

    /// The `(uid, weight_u16)` pairs to set on chain, in uid order.
    pub fn u16_vector(&self) -> Vec<(u16, u16)> {
        self.entries.iter().map(|e| (e.uid, e.weight_u16)).collect()
    }
}

/// Per-hotkey totals accumulated from the history.
#[derive(Default)]
struct Tally {
    windows_counted: u32,
    unique_valid_sum: u64,
    gated: bool,
}

/// The first window of the `count` windows ending at `current` (saturating
/// at block 0 early in the chain).
fn first_window(current: u64, count: u64) -> u64 {
    current.saturating_sub((count - 1).saturating_mul(WINDOW_LENGTH))
}

/// Scores every registered miner at `current_window` from `history` and
/// turns the scores into weights (module docs; PROTOCOL.md §16).
///
/// `registered` is the metagraph `(uid, hotkey)` at scoring time. History
/// records whose `(uid, hotkey)` is not registered are ignored (a uid
/// re-registered to a new hotkey starts from zero), as are records outside
/// the scoring and failure-lookback ranges (later windows included).
pub fn compute_weights(
    registered: &[(u16, [u8; 32])],
    history: &[MinerWindowRecord],
    current_window: u64,
    params: &ScoreParams,
) -> Result<Weights, ScoreError> {
    params.validate()?;
    if !current_window.is_multiple_of(WINDOW_LENGTH) {
        return Err(ScoreError::NotAWindow {
            window: current_window,
        });
    }

    let mut by_uid: HashMap<u16, [u8; 32]> = HashMap::with_capacity(registered.len());
    let mut by_hotkey: HashMap<[u8; 32], u16> = HashMap::with_capacity(registered.len());
    for &(uid, hotkey) in registered {
        if by_uid.insert(uid, hotkey).is_some() {
            return Err(ScoreError::DuplicateUid { uid });
        }
        if let Some(first) = by_hotkey.insert(hotkey, uid) {
            return Err(ScoreError::DuplicateHotkey {
                hotkey: Hotkey::from_bytes(hotkey).to_ss58(),
                first,
                second: uid,
            });
        }
    }
    if let Some(burn) = &params.burn {
        if !by_uid.contains_key(&burn.uid) {
            return Err(ScoreError::BurnUidNotRegistered { uid: burn.uid });
        }
    }

    let score_from = first_window(current_window, params.scoring_windows);
    let gate_from = first_window(current_window, params.failure_lookback_windows);
    let mut seen: HashSet<(u64, u16)> = HashSet::new();
    let mut tallies: HashMap<u16, Tally> = HashMap::new();
    for record in history {
        if !record.window.is_multiple_of(WINDOW_LENGTH) {
            return Err(ScoreError::RecordNotAWindow {
                uid: record.uid,
                window: record.window,
            });
        }
        if by_uid.get(&record.uid) != Some(&record.hotkey) || record.window > current_window {
            continue;
        }
        let in_score = record.window >= score_from;
        let in_gate = record.window >= gate_from;
        if !in_score && !in_gate {
            continue;
        }
        if !seen.insert((record.window, record.uid)) {
            return Err(ScoreError::DuplicateRecord {
                window: record.window,
                uid: record.uid,
                hotkey: Hotkey::from_bytes(record.hotkey).to_ss58(),
            });
        }
        let tally = tallies.entry(record.uid).or_default();
        match record.outcome {
            Outcome::Passed {
                rollouts,
                unique,
                checked,
            } => {
                if unique > rollouts || checked > rollouts {
                    return Err(ScoreError::InconsistentRecord {
                        window: record.window,
                        uid: record.uid,
                        rollouts,
                        unique,
                        checked,
                    });
                }
                if in_score {
                    tally.windows_counted += 1;
                    tally.unique_valid_sum += u64::from(unique.min(params.rollout_cap_per_window));
                }
            }
            Outcome::Failed { .. } => {
                if in_score {
                    tally.windows_counted += 1;
                }
                if in_gate {
                    tally.gated = true;
                }
            }
            Outcome::Missing => {
                if in_score {
                    tally.windows_counted += 1;
                }
            }
            Outcome::NotSampled => {}
        }
    }

    let mut sorted = registered.to_vec();
    sorted.sort_unstable_by_key(|&(uid, _)| uid);
    let mut entries = Vec::with_capacity(sorted.len());
    let mut total = 0.0f64;
    for (uid, hotkey) in sorted {
        let tally = tallies.remove(&uid).unwrap_or_default();
        let score = if tally.gated {
            0.0
        } else {
            // The u64 -> f64 conversion is exact for any sum below 2^53.
            let s = (tally.unique_valid_sum as f64).powf(params.exponent);
            if !s.is_finite() {
                return Err(ScoreError::ScoreOverflow {
                    uid,
                    sum: tally.unique_valid_sum,
                    exponent: params.exponent,
                });
            }
            s
        };
        total += score;
        entries.push(WeightEntry {
            uid,
            hotkey: Hotkey::from_bytes(hotkey).to_ss58(),
            windows_counted: tally.windows_counted,
            unique_valid_sum: tally.unique_valid_sum,
            gated: tally.gated,
            score,
            weight: 0.0,
            weight_u16: 0,
        });
    }
    if !total.is_finite() {
        // Each score is finite, their sum is not: report the largest.
        let top = entries
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map_or((0, 0), |e| (e.uid, e.unique_valid_sum));
        return Err(ScoreError::ScoreOverflow {
            uid: top.0,
            sum: top.1,
            exponent: params.exponent,
        });
    }

    let burned = params.burn.map_or(0.0, |b| b.fraction);
    if total > 0.0 {
        for e in &mut entries {
            e.weight = e.score / total * (1.0 - burned);
        }
    }
    if let Some(burn) = &params.burn {
        if let Some(e) = entries.iter_mut().find(|e| e.uid == burn.uid) {
            // Nobody scored: everything to the burn uid.
            e.weight += if total > 0.0 { burn.fraction } else { 1.0 };
        }
    }

    let max = entries.iter().map(|e| e.weight).fold(0.0f64, f64::max);
    let all_zero = max <= 0.0;
    if !all_zero {
        for e in &mut entries {
            // In [0, 65535] since 0 <= weight <= max; the max maps to
            // exactly 65535.
            e.weight_u16 = (e.weight / max * f64::from(WEIGHT_U16_MAX)).round() as u16;
        }
    }
    Ok(Weights {
        window: current_window,
        entries,
        burn: params.burn,
        all_zero,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 30 * 1000;

    fn key(i: u8) -> [u8; 32] {
        [i; 32]
    }

    fn passed(window: u64, uid: u16, hotkey: [u8; 32], unique: u32) -> MinerWindowRecord {
        MinerWindowRecord {
            window,
            uid,
            hotkey,
            outcome: Outcome::Passed {
                rollouts: unique,
                unique,
                checked: unique.min(8),
            },
        }
    }

    fn failed(window: u64, uid: u16, hotkey: [u8; 32]) -> MinerWindowRecord {
        MinerWindowRecord {
            window,
            uid,
            hotkey,
            outcome: Outcome::Failed {
                reason: "sketch_mismatch".into(),
                detail: "position 3: hamming 64 > 20".into(),
            },
        }
    }

    fn entry(w: &Weights, uid: u16) -> &WeightEntry {
        w.entries
            .iter()
            .find(|e| e.uid == uid)
            .expect("uid present")
    }

    fn weight_sum(w: &Weights) -> f64 {
        w.entries.iter().map(|e| e.weight).sum()
    }

    #[test]
    fn splitting_work_over_hotkeys_loses() {
        // uid 0 does 1200 alone; uids 1..=4 split the same 1200 evenly.
        let registered: Vec<_> = (0..5u8).map(|i| (u16::from(i), key(i))).collect();
        let mut history = vec![passed(W, 0, key(0), 1200)];
        for i in 1..5u8 {
            history.push(passed(W, u16::from(i), key(i), 300));
        }
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        let single = entry(&w, 0).weight;
        let split: f64 = (1..5).map(|u| entry(&w, u).weight).sum();
        // k * (s/k)^4 = s^4 / k^3 with k = 4.
        assert!((single / split - 64.0).abs() < 1e-9, "{single} / {split}");
        assert!((weight_sum(&w) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_failure_gates_for_exactly_the_lookback() {
        let registered = [(7u16, key(7)), (8, key(8))];
        // uid 8 keeps a positive score so weights are not all zero.
        let base = vec![passed(W, 7, key(7), 100), passed(W, 8, key(8), 100)];

        // 11 windows back: inside the lookback (current included = 12).
        let mut history = base.clone();
        history.push(failed(W - 11 * 30, 7, key(7)));
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        let e = entry(&w, 7);
        assert!(e.gated);
        assert_eq!(e.score, 0.0);
        assert_eq!(e.weight, 0.0);
        assert_eq!(e.unique_valid_sum, 100);

        // 12 windows back: outside.
        let mut history = base.clone();
        history.push(failed(W - 12 * 30, 7, key(7)));
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        let e = entry(&w, 7);
        assert!(!e.gated);
        assert_eq!(e.score, 100f64.powi(4));
        assert!((e.weight - 0.5).abs() < 1e-12);

        // In the current window.
        let mut history = base;
        history[0] = failed(W, 7, key(7));
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        assert!(entry(&w, 7).gated);
    }

    #[test]
    fn only_the_last_twelve_windows_count() {
        let registered = [(1u16, key(1))];
        let history: Vec<_> = (0..14u64)
            .map(|k| passed(W - k * 30, 1, key(1), 10))
            .collect();
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        let e = entry(&w, 1);
        assert_eq!(e.windows_counted, 12);
        assert_eq!(e.unique_valid_sum, 120);
        // A record after the current window does not count either.
        let mut history = history;
        history.push(passed(W + 30, 1, key(1), 10));
        let w2 = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        assert_eq!(entry(&w2, 1).unique_valid_sum, 120);
    }

    #[test]
    fn contributions_are_capped_per_window() {
        let registered = [(1u16, key(1)), (2, key(2))];
        let history = vec![
            passed(W, 1, key(1), ROLLOUT_CAP_PER_WINDOW + 1000),
            passed(W - 30, 1, key(1), 10),
            passed(W, 2, key(2), ROLLOUT_CAP_PER_WINDOW),
        ];
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        assert_eq!(
            entry(&w, 1).unique_valid_sum,
            u64::from(ROLLOUT_CAP_PER_WINDOW) + 10
        );
        assert_eq!(
            entry(&w, 2).unique_valid_sum,
            u64::from(ROLLOUT_CAP_PER_WINDOW)
        );
    }

    #[test]
    fn missing_and_not_sampled_contribute_nothing() {
        let registered = [(1u16, key(1))];
        let history = vec![
            passed(W, 1, key(1), 50),
            MinerWindowRecord {
                window: W - 30,
                uid: 1,
                hotkey: key(1),
                outcome: Outcome::Missing,
            },
            MinerWindowRecord {
                window: W - 60,
                uid: 1,
                hotkey: key(1),
                outcome: Outcome::NotSampled,
            },
        ];
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        let e = entry(&w, 1);
        assert_eq!(e.unique_valid_sum, 50);
        assert_eq!(e.windows_counted, 2);
        assert!(!e.gated);
    }

    #[test]
    fn burn_split_is_exact() {
        let registered = [(0u16, key(0)), (3, key(3)), (5, key(5))];
        let history = vec![passed(W, 3, key(3), 100), passed(W, 5, key(5), 100)];
        let params = ScoreParams {
            burn: Some(Burn::new(0, 0.5).unwrap()),
            ..ScoreParams::default()
        };
        let w = compute_weights(&registered, &history, W, &params).unwrap();
        assert_eq!(entry(&w, 0).weight, 0.5);
        assert_eq!(entry(&w, 3).weight, 0.25);
        assert_eq!(entry(&w, 5).weight, 0.25);
        assert_eq!(w.u16_vector(), vec![(0, 65535), (3, 32768), (5, 32768)]);
        assert!(!w.all_zero);

        // Nobody scored: all weight to the burn uid.
        let w = compute_weights(&registered, &[], W, &params).unwrap();
        assert_eq!(entry(&w, 0).weight, 1.0);
        assert_eq!(w.u16_vector(), vec![(0, 65535), (3, 0), (5, 0)]);
        assert!(!w.all_zero);
    }

    #[test]
    fn burn_fraction_is_validated() {
        for fraction in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            assert!(matches!(
                Burn::new(0, fraction),
                Err(ScoreError::BurnFraction { uid: 0, .. })
            ));
            // The fields are public: compute_weights checks again.
            let params = ScoreParams {
                burn: Some(Burn { uid: 0, fraction }),
                ..ScoreParams::default()
            };
            let err = compute_weights(&[(0, key(0))], &[], W, &params).unwrap_err();
            assert!(matches!(err, ScoreError::BurnFraction { .. }), "{err}");
        }
        let params = ScoreParams {
            burn: Some(Burn::new(9, 0.1).unwrap()),
            ..ScoreParams::default()
        };
        assert!(matches!(
            compute_weights(&[(0, key(0))], &[], W, &params),
            Err(ScoreError::BurnUidNotRegistered { uid: 9 })
        ));
    }

    #[test]
    fn a_reregistered_uid_starts_from_zero() {
        // uid 4 belonged to key(40) and now to key(41).
        let registered = [(4u16, key(41)), (5, key(5))];
        let history = vec![
            passed(W - 60, 4, key(40), 1000),
            failed(W - 30, 4, key(40)),
            passed(W, 4, key(41), 10),
            passed(W, 5, key(5), 10),
        ];
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        let e = entry(&w, 4);
        assert_eq!(e.unique_valid_sum, 10);
        assert!(!e.gated, "the old hotkey's failure is not the new one's");
        assert_eq!(e.hotkey, Hotkey::from_bytes(key(41)).to_ss58());
        assert!((e.weight - 0.5).abs() < 1e-12);
    }

    #[test]
    fn u16_vector_rounds_and_maps_the_max_to_65535() {
        let registered = [(1u16, key(1)), (2, key(2)), (3, key(3)), (4, key(4))];
        let history = vec![
            passed(W, 1, key(1), 30),
            passed(W, 2, key(2), 20),
            passed(W, 3, key(3), 10),
        ];
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        // Scores 30^4, 20^4, 10^4 = 81 : 16 : 1 (times 10^4).
        let want = |n: f64| (n / 81.0 * 65535.0).round() as u16;
        assert_eq!(
            w.u16_vector(),
            vec![(1, 65535), (2, want(16.0)), (3, want(1.0)), (4, 0)]
        );
        assert_eq!(want(16.0), 12945); // 12945.19 rounds down
        assert_eq!(want(1.0), 809); // 809.07
        assert!((weight_sum(&w) - 1.0).abs() < 1e-12);
        assert_eq!(
            w.entries.iter().map(|e| e.weight_u16).max(),
            Some(WEIGHT_U16_MAX)
        );
    }

    #[test]
    fn nobody_scoring_without_burn_is_all_zero() {
        let registered = [(1u16, key(1)), (2, key(2))];
        let history = vec![failed(W, 1, key(1)), passed(W - 30, 2, key(2), 0)];
        let w = compute_weights(&registered, &history, W, &ScoreParams::default()).unwrap();
        assert!(w.all_zero);
        assert!(w
            .entries
            .iter()
            .all(|e| e.weight == 0.0 && e.weight_u16 == 0));
        let w = compute_weights(&[], &[], W, &ScoreParams::default()).unwrap();
        assert!(w.all_zero && w.entries.is_empty());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let registered = [(1u16, key(1))];
        let p = ScoreParams::default();
        assert!(matches!(
            compute_weights(&registered, &[], W + 1, &p),
            Err(ScoreError::NotAWindow { .. })
        ));
        assert!(matches!(
            compute_weights(&registered, &[passed(W - 7, 1, key(1), 1)], W, &p),
            Err(ScoreError::RecordNotAWindow { uid: 1, .. })
        ));
        assert!(matches!(
            compute_weights(&[(1, key(1)), (1, key(2))], &[], W, &p),
            Err(ScoreError::DuplicateUid { uid: 1 })
        ));
        assert!(matches!(
            compute_weights(&[(1, key(1)), (2, key(1))], &[], W, &p),
            Err(ScoreError::DuplicateHotkey {
                first: 1,
                second: 2,
                ..
            })
        ));
        let twice = [passed(W, 1, key(1), 1), passed(W, 1, key(1), 1)];
        assert!(matches!(
            compute_weights(&registered, &twice, W, &p),
            Err(ScoreError::DuplicateRecord { uid: 1, .. })
        ));
        let lying = MinerWindowRecord {
            window: W,
            uid: 1,
            hotkey: key(1),
            outcome: Outcome::Passed {
                rollouts: 4,
                unique: 5,
                checked: 1,
            },
        };
        assert!(matches!(
            compute_weights(&registered, &[lying], W, &p),
            Err(ScoreError::InconsistentRecord { unique: 5, .. })
        ));
        for (params, field) in [
            (
                ScoreParams {
                    scoring_windows: 0,
                    ..p
                },
                "scoring_windows",
            ),
            (
                ScoreParams {
                    failure_lookback_windows: 0,
                    ..p
                },
                "failure_lookback_windows",
            ),
        ] {
            match compute_weights(&registered, &[], W, &params) {
                Err(ScoreError::ZeroWindows { field: f }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
        for exponent in [f64::NAN, 0.5, f64::INFINITY] {
            let params = ScoreParams { exponent, ..p };
            assert!(matches!(
                compute_weights(&registered, &[], W, &params),
                Err(ScoreError::Exponent { .. })
            ));
        }
        let params = ScoreParams {
            exponent: 1000.0,
            ..p
        };
        assert!(matches!(
            compute_weights(&registered, &[passed(W, 1, key(1), 100)], W, &params),
            Err(ScoreError::ScoreOverflow {
                uid: 1,
                sum: 100,
                ..
            })
        ));
    }

    #[test]
    fn early_windows_do_not_underflow() {
        let registered = [(1u16, key(1))];
        let history = vec![passed(0, 1, key(1), 5), passed(30, 1, key(1), 5)];
        let w = compute_weights(&registered, &history, 30, &ScoreParams::default()).unwrap();
        assert_eq!(entry(&w, 1).unique_valid_sum, 10);
    }

    #[test]
    fn weights_serialize_to_json() {
        let registered = [(1u16, key(1))];
        let w = compute_weights(
            &registered,
            &[passed(W, 1, key(1), 3)],
            W,
            &ScoreParams::default(),
        )
        .unwrap();
        let json = w.to_json_pretty().unwrap();
        let back: Weights = serde_json::from_str(&json).unwrap();
        assert_eq!(back, w);
        assert!(json.contains(&Hotkey::from_bytes(key(1)).to_ss58()));

        let record = failed(W, 1, key(1));
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""outcome":"failed""#), "{json}");
        assert_eq!(
            serde_json::from_str::<MinerWindowRecord>(&json).unwrap(),
            record
        );
    }
}
