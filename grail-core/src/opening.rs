//! Checks at a rollout's opened positions (PROTOCOL.md §7.2–7.3): the
//! per-position sketch and sampling checks live in [`crate::sketch`] and
//! [`crate::sampling`]; this module holds the per-rollout rules that combine
//! them, with a typed rejection for each.
#![forbid(unsafe_code)]

use crate::params::{
    LOGPROB_MAX_DEVIATION, LOGPROB_MEDIAN_TOLERANCE, SAMPLING_SOFT_BUDGET, SAMPLING_SOFT_EPSILON,
};
use crate::sampling::SampleCheck;

/// What the verifier found at one opened position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionFinding {
    /// Completion position.
    pub position: u32,
    /// The accepted sampling check (within the hard widening).
    pub sample: SampleCheck,
    pub logprob_committed: f32,
    pub logprob_recomputed: f64,
}

impl PositionFinding {
    fn logprob_deviation(&self) -> f64 {
        (f64::from(self.logprob_committed) - self.logprob_recomputed).abs()
    }
}

/// A rollout whose opened positions, each acceptable alone, fail together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpeningReject {
    #[error("position {position}: logprob {committed} committed, {recomputed} recomputed (more than {LOGPROB_MAX_DEVIATION} apart)")]
    LogprobDeviation {
        position: u32,
        committed: f32,
        recomputed: f64,
    },
    #[error("median logprob deviation {median} over {positions} opened positions exceeds {LOGPROB_MEDIAN_TOLERANCE}")]
    LogprobMedian { median: f64, positions: usize },
    #[error("{count} opened positions (at {positions:?}) lie more than {SAMPLING_SOFT_EPSILON} outside their token's CDF interval; at most {SAMPLING_SOFT_BUDGET} may")]
    SamplingBudget { count: usize, positions: Vec<u32> },
}

/// Apply the per-rollout rules of §5.3 and §7.3 to the findings at every
/// opened position (each already accepted by the per-position checks).
pub fn check_opening(findings: &[PositionFinding]) -> Result<(), OpeningReject> {
    if let Some(f) = findings.iter().find(|f| {
        let d = f.logprob_deviation();
        d.is_nan() || d > LOGPROB_MAX_DEVIATION
    }) {
        return Err(OpeningReject::LogprobDeviation {
            position: f.position,
            committed: f.logprob_committed,
            recomputed: f.logprob_recomputed,
        });
    }
    let median = median(
        findings
            .iter()
            .map(PositionFinding::logprob_deviation)
            .collect(),
    );
    if median > LOGPROB_MEDIAN_TOLERANCE {
        return Err(OpeningReject::LogprobMedian {
            median,
            positions: findings.len(),
        });
    }
    let over: Vec<u32> = findings
        .iter()
        .filter(|f| f.sample.outside > SAMPLING_SOFT_EPSILON)
        .map(|f| f.position)
        .collect();
    if over.len() > SAMPLING_SOFT_BUDGET {
        return Err(OpeningReject::SamplingBudget {
            count: over.len(),
            positions: over,
        });
    }
    Ok(())
}

/// Median of the values (mean of the two middle ones for an even count; 0 for
/// none). Inputs are finite.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(position: u32, dlp: f64, outside: f64) -> PositionFinding {
        PositionFinding {
            position,
            sample: SampleCheck {
                lo: 0.2,
                hi: 0.4,
                widened: outside > 0.0,
                outside,
            },
            logprob_committed: -1.0,
            logprob_recomputed: -1.0 + dlp,
        }
    }

    #[test]
    fn honest_looking_rollout_passes() {
        let f: Vec<_> = (0..32)
            .map(|i| finding(i, 0.01 * f64::from(i % 3), 0.0))
            .collect();
        assert_eq!(check_opening(&f), Ok(()));
    }

    #[test]
    fn one_large_logprob_deviation_fails() {
        let mut f: Vec<_> = (0..32).map(|i| finding(i, 0.0, 0.0)).collect();
        f[7] = finding(7, 2.5, 0.0);
        assert!(matches!(
            check_opening(&f),
            Err(OpeningReject::LogprobDeviation { position: 7, .. })
        ));
        f[7] = finding(7, f64::NAN, 0.0);
        assert!(matches!(
            check_opening(&f),
            Err(OpeningReject::LogprobDeviation { position: 7, .. })
        ));
    }

    #[test]
    fn systematic_logprob_drift_fails_on_the_median() {
        let f: Vec<_> = (0..32).map(|i| finding(i, 0.3, 0.0)).collect();
        assert!(matches!(
            check_opening(&f),
            Err(OpeningReject::LogprobMedian { positions: 32, .. })
        ));
    }

    #[test]
    fn soft_budget() {
        let mut f: Vec<_> = (0..32).map(|i| finding(i, 0.0, 0.0)).collect();
        for (i, x) in f.iter_mut().enumerate().take(3) {
            *x = finding(i as u32, 0.0, 0.05);
        }
        assert_eq!(check_opening(&f), Ok(()));
        f[10] = finding(10, 0.0, 0.03);
        assert_eq!(
            check_opening(&f),
            Err(OpeningReject::SamplingBudget {
                count: 4,
                positions: vec![0, 1, 2, 10]
            })
        );
    }

    #[test]
    fn median_values() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
