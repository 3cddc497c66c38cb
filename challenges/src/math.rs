//! GSM8K-style math word problems (PROTOCOL.md §13.4). PLACEHOLDER on branch
//! `challenges`: replaced by the real generator before merging to main.
#![forbid(unsafe_code)]

use crate::rational::Rational;
use crate::rng::ChallengeRng;
use crate::Difficulty;

/// Template family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Arithmetic,
}

impl Family {
    pub fn name(self) -> &'static str {
        "arithmetic"
    }
}

/// A generated math problem.
#[derive(Debug, Clone, PartialEq)]
pub struct MathProblem {
    pub family: Family,
    /// Named integer parameters, in generation order.
    pub params: Vec<(&'static str, i64)>,
    /// The question text.
    pub question: String,
    /// The exact answer.
    pub answer: Rational,
}

pub fn generate(_rng: &mut ChallengeRng, _difficulty: Difficulty) -> MathProblem {
    todo!("math generator")
}

pub fn solve(_family: Family, _params: &[(&'static str, i64)]) -> Option<Rational> {
    todo!("math solver")
}
