//! How many problems fit before the upload deadline.
//!
//! Groups differ a lot in cost: a prompt of 4,000 tokens takes many times
//! longer than one of 400 (attention grows with the square of the context).
//! So the planner prices each group in **work units** from its prompt
//! length, the completion cap and the model's shape ([`group_work`]), and
//! measures **seconds per unit** (a worst-case calibration group at start,
//! then every batch). A batch is started only if, at the slowest recent
//! measured rate times [`SAFETY_FACTOR`], it and the upload still end a
//! margin before the deadline; so one fast batch never talks the miner into
//! one that overruns.
use std::collections::VecDeque;
use std::time::Duration;

use grail_core::params::ROLLOUTS_PER_PROBLEM;
use grail_engine::ModelConfig;

/// Multiplier on the slowest recent seconds-per-unit measurement.
pub const SAFETY_FACTOR: f64 = 1.25;
/// How many recent batch measurements the estimate is the maximum of.
pub const HISTORY: usize = 16;
/// Upload time assumed before the first upload was measured.
pub const INITIAL_UPLOAD_ESTIMATE: Duration = Duration::from_secs(2);

/// Context length at which one token's attention costs as much as its
/// weight products: weight parameters touched per token over
/// `2 * layers * heads * head_dim` (attention does `4 * layers * heads *
/// head_dim` flops per context position, the weights 2 per parameter).
pub fn attention_break_even(c: &ModelConfig) -> f64 {
    let (h, q, kv) = (
        c.hidden_size as f64,
        (c.num_heads * c.head_dim) as f64,
        (c.num_kv_heads * c.head_dim) as f64,
    );
    let per_layer = h * q + 2.0 * h * kv + q * h + 3.0 * h * c.intermediate_size as f64;
    let params = per_layer * c.num_layers as f64 + h * c.vocab_size as f64;
    params / (2.0 * c.num_layers as f64 * q).max(1.0)
}

/// Work units of one group, in token-equivalents: the prefill of
/// `prompt` tokens (average context `prompt / 2`) and
/// [`ROLLOUTS_PER_PROBLEM`] x `max_new` decode steps (average context
/// `prompt + max_new / 2`), each token costing `1 + context / break_even`.
pub fn group_work(prompt: usize, max_new: usize, break_even: f64) -> f64 {
    let (p, n) = (prompt as f64, max_new as f64);
    let b = break_even.max(1.0);
    p * (1.0 + p / (2.0 * b)) + f64::from(ROLLOUTS_PER_PROBLEM) * n * (1.0 + (p + n / 2.0) / b)
}

/// The deadline planner.
#[derive(Debug, Clone)]
pub struct Planner {
    per_unit: VecDeque<f64>,
    upload: Duration,
    /// Kept free before the deadline beyond the upload estimate (clock skew,
    /// block-time jitter).
    margin: Duration,
    /// Most groups per batch.
    max_batch: usize,
}

impl Planner {
    pub fn new(margin: Duration, max_batch: usize) -> Planner {
        Planner {
            per_unit: VecDeque::new(),
            upload: INITIAL_UPLOAD_ESTIMATE,
            margin,
            max_batch: max_batch.max(1),
        }
    }

    /// Record that a batch of `work` units took `elapsed`.
    pub fn record_batch(&mut self, work: f64, elapsed: Duration) {
        if work.is_nan() || work <= 0.0 {
            return;
        }
        if self.per_unit.len() == HISTORY {
            self.per_unit.pop_front();
        }
        self.per_unit.push_back(elapsed.as_secs_f64() / work);
    }

    /// Record an upload's duration; the reserve is twice the last one.
    pub fn record_upload(&mut self, elapsed: Duration) {
        self.upload = (elapsed * 2).max(Duration::from_millis(200));
    }

    /// Pessimistic seconds per work unit, if anything was measured.
    pub fn seconds_per_unit(&self) -> Option<f64> {
        self.per_unit
            .iter()
            .copied()
            .reduce(f64::max)
            .map(|s| s * SAFETY_FACTOR)
    }

    /// Time kept free at the end of a window: the upload reserve plus the margin.
    pub fn reserve(&self) -> Duration {
        self.upload + self.margin
    }

    /// How many of the `upcoming` groups (their work units, in order) to
    /// start now with `remaining` time until the deadline; 0 means stop.
    /// Before any measurement nothing is started (calibrate first).
    pub fn groups_to_start(&self, remaining: Duration, upcoming: &[f64]) -> usize {
        let Some(per_unit) = self.seconds_per_unit() else {
            return 0;
        };
        let usable = remaining.saturating_sub(self.reserve()).as_secs_f64();
        let mut planned = 0.0;
        let mut n = 0;
        for &w in upcoming.iter().take(self.max_batch) {
            planned += w * per_unit;
            if planned > usable {
                break;
            }
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn nothing_starts_before_a_measurement() {
        let p = Planner::new(secs(1.0), 8);
        assert_eq!(p.groups_to_start(secs(1000.0), &[1.0; 100]), 0);
    }

    #[test]
    fn never_plans_past_the_deadline() {
        let mut p = Planner::new(secs(1.0), 64);
        p.record_batch(8.0, secs(8.0)); // 1 s/unit -> 1.25 s pessimistic
        p.record_upload(secs(0.5)); // reserve 1 s + 1 s margin
        let upcoming = [2.0, 1.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        for remaining in [0.0, 1.9, 2.0, 4.4, 4.5, 5.75, 7.0, 30.0, 100.0] {
            let n = p.groups_to_start(secs(remaining), &upcoming);
            let cost: f64 = upcoming[..n].iter().sum::<f64>() * 1.25;
            assert!(n == 0 || cost + 2.0 <= remaining + 1e-9, "{remaining}: {n}");
            if n < upcoming.len() {
                let more = cost + upcoming[n] * 1.25;
                assert!(more + 2.0 > remaining, "{remaining}: {n} leaves room");
            }
        }
        assert_eq!(p.groups_to_start(secs(4.4), &upcoming), 0);
        assert_eq!(p.groups_to_start(secs(4.5), &upcoming), 1);
        assert_eq!(p.groups_to_start(secs(5.75), &upcoming), 2);
        assert_eq!(p.groups_to_start(secs(100.0), &upcoming), 8);
    }

    #[test]
    fn estimate_is_the_slowest_recent_batch_and_the_batch_is_capped() {
        let mut p = Planner::new(secs(0.0), 2);
        p.record_batch(1.0, secs(4.0));
        p.record_batch(8.0, secs(8.0));
        assert_eq!(p.seconds_per_unit(), Some(4.0 * SAFETY_FACTOR));
        for _ in 0..HISTORY {
            p.record_batch(2.0, secs(2.0));
        }
        assert_eq!(p.seconds_per_unit(), Some(SAFETY_FACTOR));
        assert_eq!(p.groups_to_start(secs(100.0), &[1.0; 10]), 2);
    }

    #[test]
    fn long_prompts_cost_more_than_linearly() {
        let b = 400.0;
        let short = group_work(400, 64, b);
        let long = group_work(4000, 64, b);
        assert!(long / short > 10.0, "{short} {long}");
        // a large model (break-even ~12k tokens) is nearly linear
        let big = 11_600.0;
        let r = group_work(4000, 64, big) / group_work(400, 64, big);
        assert!(r > 1.5 && r < 10.0 * 1.5, "{r}");
    }
}
