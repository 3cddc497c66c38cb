//! How many problems fit before the upload deadline.
//!
//! The miner measures how long a group takes (a calibration group at start,
//! then every batch) and starts a batch only if, at its most pessimistic
//! measured speed, the batch and the upload still end a safety margin before
//! the deadline. The estimate of seconds per group is the largest of the
//! recent measurements times [`SAFETY_FACTOR`], so one fast batch of short
//! prompts never talks the miner into a batch of long ones that overruns.
use std::collections::VecDeque;
use std::time::Duration;

/// Multiplier on the slowest recent seconds-per-group measurement.
pub const SAFETY_FACTOR: f64 = 1.25;
/// How many recent batch measurements the estimate is the maximum of.
pub const HISTORY: usize = 16;
/// Upload time assumed before the first upload was measured.
pub const INITIAL_UPLOAD_ESTIMATE: Duration = Duration::from_secs(2);

/// The deadline planner.
#[derive(Debug, Clone)]
pub struct Planner {
    per_group: VecDeque<f64>,
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
            per_group: VecDeque::new(),
            upload: INITIAL_UPLOAD_ESTIMATE,
            margin,
            max_batch: max_batch.max(1),
        }
    }

    /// Record that `groups` groups took `elapsed`.
    pub fn record_batch(&mut self, groups: usize, elapsed: Duration) {
        if groups == 0 {
            return;
        }
        if self.per_group.len() == HISTORY {
            self.per_group.pop_front();
        }
        self.per_group
            .push_back(elapsed.as_secs_f64() / groups as f64);
    }

    /// Record an upload's duration; the reserve is twice the last one.
    pub fn record_upload(&mut self, elapsed: Duration) {
        self.upload = (elapsed * 2).max(Duration::from_millis(200));
    }

    /// Pessimistic seconds per group, if anything was measured.
    pub fn seconds_per_group(&self) -> Option<f64> {
        self.per_group
            .iter()
            .copied()
            .reduce(f64::max)
            .map(|s| s * SAFETY_FACTOR)
    }

    /// Time kept free at the end of a window: the upload reserve plus the margin.
    pub fn reserve(&self) -> Duration {
        self.upload + self.margin
    }

    /// Groups to start now with `remaining` time until the deadline and at
    /// most `left` problems still allowed; 0 means stop. Before any
    /// measurement nothing is started (calibrate first).
    pub fn groups_to_start(&self, remaining: Duration, left: usize) -> usize {
        let Some(per_group) = self.seconds_per_group() else {
            return 0;
        };
        let usable = remaining.saturating_sub(self.reserve()).as_secs_f64();
        let fit = if per_group > 0.0 {
            (usable / per_group).floor()
        } else {
            f64::INFINITY
        };
        (fit.min(self.max_batch as f64).min(left as f64).max(0.0)) as usize
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
        assert_eq!(p.groups_to_start(secs(1000.0), 100), 0);
    }

    #[test]
    fn never_plans_past_the_deadline() {
        let mut p = Planner::new(secs(1.0), 64);
        p.record_batch(4, secs(8.0)); // 2 s/group -> 2.5 s pessimistic
        p.record_upload(secs(0.5)); // reserve 1 s + 1 s margin
        for remaining in [0.0, 1.9, 2.0, 4.4, 4.5, 7.0, 30.0, 100.0] {
            let n = p.groups_to_start(secs(remaining), 1000);
            let planned_end = n as f64 * 2.5 + 2.0;
            assert!(n == 0 || planned_end <= remaining + 1e-9, "{remaining}: {n}");
            // and it uses the time: one more would not fit (unless capped)
            if n < 64 {
                assert!((n + 1) as f64 * 2.5 + 2.0 > remaining, "{remaining}: {n}");
            }
        }
        assert_eq!(p.groups_to_start(secs(1.9), 1000), 0);
        assert_eq!(p.groups_to_start(secs(4.5), 1000), 1);
        assert_eq!(p.groups_to_start(secs(100.0), 1000), 39);
        assert_eq!(p.groups_to_start(secs(100.0), 3), 3);
    }

    #[test]
    fn estimate_is_the_slowest_recent_batch() {
        let mut p = Planner::new(secs(0.0), 8);
        p.record_batch(1, secs(4.0));
        p.record_batch(8, secs(8.0));
        assert_eq!(p.seconds_per_group(), Some(4.0 * SAFETY_FACTOR));
        for _ in 0..HISTORY {
            p.record_batch(2, secs(2.0));
        }
        assert_eq!(p.seconds_per_group(), Some(SAFETY_FACTOR));
        assert_eq!(p.groups_to_start(secs(3.0), 100), 0);
    }
}
