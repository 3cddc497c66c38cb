//! Answer extraction (PROTOCOL.md §13.5). PLACEHOLDER on branch `challenges`:
//! replaced by the real parsers before merging to main.
#![forbid(unsafe_code)]

use crate::rational::Rational;

pub const SOLUTION_OPEN: &str = "<SOLUTION>";
pub const SOLUTION_CLOSE: &str = "</SOLUTION>";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("no <SOLUTION>...</SOLUTION> block")]
    NoSolution,
}

pub fn extract_solution(_completion: &str) -> Option<&str> {
    todo!()
}

pub fn parse_sat_assignment(_text: &str, _num_vars: usize) -> Result<Vec<bool>, ParseError> {
    todo!()
}

pub fn parse_math_answer(_text: &str) -> Result<Rational, ParseError> {
    todo!()
}
