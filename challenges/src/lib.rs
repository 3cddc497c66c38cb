//! Deterministic challenges for grail miners (PROTOCOL.md §13): planted 3-SAT
//! and GSM8K-style math word problems generated from a 32-byte problem seed,
//! the prompt messages asking for an answer in a `<SOLUTION>` tag, parsers for
//! that answer, rewards, and GRPO group advantages.
//!
//! Everything here is pure and platform-independent: generation uses only
//! integer randomness ([`rng`]) and exact rationals ([`rational`]); reward and
//! advantage arithmetic is a fixed sequence of IEEE-754 operations.
#![forbid(unsafe_code)]

pub mod math;
pub mod parse;
pub mod prompt;
pub mod rational;
pub mod reward;
pub mod rng;
pub mod sat;

use grail_core::hash::{derive, label};

/// Which family of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sat,
    Math,
}

impl Kind {
    /// Byte fed to the problem stream's key.
    pub fn code(self) -> u8 {
        match self {
            Kind::Sat => 0,
            Kind::Math => 1,
        }
    }

    /// `sat` or `math`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sat => "sat",
            Kind::Math => "math",
        }
    }
}

/// Lowest difficulty level.
pub const MIN_DIFFICULTY: u8 = 1;
/// Highest difficulty level.
pub const MAX_DIFFICULTY: u8 = 10;

/// A difficulty level in `MIN_DIFFICULTY..=MAX_DIFFICULTY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Difficulty(u8);

impl Difficulty {
    /// `None` outside `1..=10`.
    pub fn new(level: u8) -> Option<Difficulty> {
        (MIN_DIFFICULTY..=MAX_DIFFICULTY)
            .contains(&level)
            .then_some(Difficulty(level))
    }

    pub fn level(self) -> u8 {
        self.0
    }
}

/// The kind and difficulty the protocol assigns to a problem seed (§13.2):
/// `a = derive("grail/v1/challenge-assignment", [seed])`; kind is SAT when
/// `a[0]` is even, math otherwise; difficulty is `1 + a[1] mod 10`.
pub fn assignment(seed: &[u8; 32]) -> (Kind, Difficulty) {
    let a = derive(label::CHALLENGE_ASSIGNMENT, &[seed]);
    let kind = if a[0].is_multiple_of(2) {
        Kind::Sat
    } else {
        Kind::Math
    };
    (kind, Difficulty(MIN_DIFFICULTY + a[1] % MAX_DIFFICULTY))
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
}

/// One chat message; chat templating is the engine's job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A generated problem.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    Sat(sat::SatProblem),
    Math(math::MathProblem),
}

impl Problem {
    /// Generate the problem of `kind` at `difficulty` for `seed`.
    pub fn generate(kind: Kind, seed: &[u8; 32], difficulty: Difficulty) -> Problem {
        let mut rng = rng::ChallengeRng::new(kind, seed, difficulty);
        match kind {
            Kind::Sat => Problem::Sat(sat::generate(&mut rng, difficulty)),
            Kind::Math => Problem::Math(math::generate(&mut rng, difficulty)),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Problem::Sat(_) => Kind::Sat,
            Problem::Math(_) => Kind::Math,
        }
    }

    /// System and user messages.
    pub fn messages(&self) -> Vec<Message> {
        prompt::messages(self)
    }

    /// The reference answer as it would appear inside `<SOLUTION>`.
    pub fn reference_answer(&self) -> String {
        match self {
            Problem::Sat(p) => p.reference_answer(),
            Problem::Math(p) => p.answer.to_string(),
        }
    }

    /// The generated parameters as JSON: SAT `num_vars`, `num_clauses`,
    /// `clauses` (DIMACS literals); math `family` and its named `params`.
    pub fn parameters_json(&self) -> serde_json::Value {
        match self {
            Problem::Sat(s) => serde_json::json!({
                "num_vars": s.num_vars,
                "num_clauses": s.clauses.len(),
                "clauses": s.clauses,
            }),
            Problem::Math(m) => serde_json::json!({
                "family": m.family.name(),
                "params": m
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                    .collect::<serde_json::Map<_, _>>(),
            }),
        }
    }

    /// Score a completion (§13.5).
    pub fn score(&self, completion: &str) -> reward::Reward {
        reward::score(self, completion)
    }
}
