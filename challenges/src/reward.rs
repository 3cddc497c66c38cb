//! Rewards and GRPO advantages (PROTOCOL.md §13.6).
//!
//! `total = REWARD_CORRECT * correctness + REWARD_FORMAT * format`, with
//! `correctness` and `format` each 0 or 1, evaluated in that order in f64.
//! Advantages of a group `r_1..r_n`: if all rewards are equal, all zero;
//! otherwise `mean = (r_1 + ... + r_n) / n` (summed left to right),
//! `var = ((r_1 - mean)^2 + ... + (r_n - mean)^2) / n` (population),
//! `std = sqrt(var)`, and `a_i = (r_i - mean) / (std + ADVANTAGE_EPS)`. Only
//! IEEE-754 basic operations and `sqrt` (all correctly rounded), so every
//! platform gets the same bits.
#![forbid(unsafe_code)]

use crate::parse::{extract_solution, parse_math_answer, parse_sat_assignment};
use crate::Problem;

/// Weight of a correct answer.
pub const REWARD_CORRECT: f64 = 1.0;
/// Weight of a well-formed answer (a `<SOLUTION>` block whose content parses),
/// right or wrong: a small shaping signal for following the format.
pub const REWARD_FORMAT: f64 = 0.1;
/// Added to the standard deviation in advantages.
pub const ADVANTAGE_EPS: f64 = 1e-6;

/// Reward components and total.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Reward {
    /// 1 if the answer is correct, else 0.
    pub correctness: f64,
    /// 1 if the answer is well-formed, else 0.
    pub format: f64,
    /// `REWARD_CORRECT * correctness + REWARD_FORMAT * format`.
    pub total: f64,
}

impl Reward {
    fn new(correct: bool, well_formed: bool) -> Reward {
        let correctness = if correct { 1.0 } else { 0.0 };
        let format = if well_formed { 1.0 } else { 0.0 };
        Reward {
            correctness,
            format,
            total: REWARD_CORRECT * correctness + REWARD_FORMAT * format,
        }
    }
}

/// Score a completion against its problem. SAT answers are correct when they
/// satisfy every clause (any satisfying assignment, not only the planted
/// one); math answers when they equal the exact answer.
pub fn score(problem: &Problem, completion: &str) -> Reward {
    let Some(text) = extract_solution(completion) else {
        return Reward::new(false, false);
    };
    match problem {
        Problem::Sat(p) => match parse_sat_assignment(text, p.num_vars) {
            Ok(a) => Reward::new(p.satisfied_by(&a), true),
            Err(_) => Reward::new(false, false),
        },
        Problem::Math(p) => match parse_math_answer(text) {
            Ok(x) => Reward::new(x == p.answer, true),
            Err(_) => Reward::new(false, false),
        },
    }
}

/// GRPO advantages of one group (see the module documentation).
pub fn advantages(rewards: &[f64]) -> Vec<f64> {
    let Some(first) = rewards.first() else {
        return Vec::new();
    };
    if rewards.iter().all(|r| r == first) {
        return vec![0.0; rewards.len()];
    }
    let n = rewards.len() as f64;
    let mean = rewards.iter().fold(0.0, |acc, r| acc + r) / n;
    let var = rewards
        .iter()
        .fold(0.0, |acc, r| acc + (r - mean) * (r - mean))
        / n;
    let std = var.sqrt();
    rewards
        .iter()
        .map(|r| (r - mean) / (std + ADVANTAGE_EPS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_values() {
        assert_eq!(Reward::new(false, false).total, 0.0);
        assert_eq!(Reward::new(false, true).total, 0.1);
        assert_eq!(Reward::new(true, true).total, 1.0 + 0.1);
    }

    #[test]
    fn zero_variance_group_gives_zeros() {
        assert_eq!(advantages(&[0.1; 16]), vec![0.0; 16]);
        assert_eq!(advantages(&[]), Vec::<f64>::new());
    }

    #[test]
    fn advantages_standardize() {
        let a = advantages(&[1.1, 0.0, 0.1, 1.1]);
        let mean: f64 = a.iter().sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-12);
        let var: f64 = a.iter().map(|x| x * x).sum::<f64>() / 4.0;
        assert!((var - 1.0).abs() < 1e-5, "{var}");
        assert!(a[0] > 0.0 && a[1] < a[2] && a[2] < 0.0);
        // known bits: recomputed in the same order
        let r = [1.0f64, 0.0];
        assert_eq!(
            advantages(&r),
            vec![0.5 / (0.5 + ADVANTAGE_EPS), -0.5 / (0.5 + ADVANTAGE_EPS)]
        );
    }
}
