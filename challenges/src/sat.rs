//! Random 3-SAT with a planted satisfying assignment (PROTOCOL.md §13.3).
//!
//! At level `L`: `n = 5 + 3L` variables and `m = ceil(n * (300 + 14 (L - 1)) / 100)`
//! clauses, so the clause/variable ratio rises from 3.00 at level 1 to 4.26
//! (the 3-SAT hardness threshold) at level 10. Draws, in order:
//! 1. the planted assignment: `coin()` for `x1 .. xn`;
//! 2. each clause: three distinct variables (`below(n)`, redrawn while equal
//!    to one already in the clause), sorted ascending; then three sign coins
//!    (`true` = negated), all three redrawn while the clause is false under
//!    the planted assignment; a clause equal to an earlier one is redrawn
//!    whole.
//!
//! Every instance is satisfiable by construction: the planted assignment
//! satisfies every clause.
#![forbid(unsafe_code)]

use std::fmt::Write;

use crate::rng::ChallengeRng;
use crate::Difficulty;

/// A 3-CNF formula with its planted assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SatProblem {
    pub num_vars: usize,
    /// Clauses as DIMACS literals: `+v` for `x_v`, `-v` for NOT `x_v` (1-based).
    pub clauses: Vec<[i32; 3]>,
    /// The planted assignment, `planted[v - 1]` for `x_v`.
    pub planted: Vec<bool>,
}

/// Variables at a difficulty level.
pub fn num_vars(difficulty: Difficulty) -> usize {
    5 + 3 * usize::from(difficulty.level())
}

/// Clauses at a difficulty level: `ceil(n * (300 + 14 (L - 1)) / 100)`.
pub fn num_clauses(difficulty: Difficulty) -> usize {
    let n = num_vars(difficulty);
    let ratio_pct = 300 + 14 * (usize::from(difficulty.level()) - 1);
    (n * ratio_pct).div_ceil(100)
}

/// Generate an instance from the problem's stream.
pub fn generate(rng: &mut ChallengeRng, difficulty: Difficulty) -> SatProblem {
    let n = num_vars(difficulty);
    let m = num_clauses(difficulty);
    let planted: Vec<bool> = (0..n).map(|_| rng.coin()).collect();
    let mut clauses: Vec<[i32; 3]> = Vec::with_capacity(m);
    while clauses.len() < m {
        let mut vars = [0usize; 3];
        for i in 0..3 {
            vars[i] = loop {
                let v = rng.below(n as u64) as usize;
                if !vars[..i].contains(&v) {
                    break v;
                }
            };
        }
        vars.sort_unstable();
        let clause = loop {
            let c: [i32; 3] = std::array::from_fn(|i| {
                let lit = vars[i] as i32 + 1;
                if rng.coin() {
                    -lit
                } else {
                    lit
                }
            });
            if clause_satisfied(&c, &planted) {
                break c;
            }
        };
        if !clauses.contains(&clause) {
            clauses.push(clause);
        }
    }
    SatProblem {
        num_vars: n,
        clauses,
        planted,
    }
}

fn clause_satisfied(clause: &[i32; 3], assignment: &[bool]) -> bool {
    clause.iter().any(|&lit| {
        let value = assignment[lit.unsigned_abs() as usize - 1];
        if lit > 0 {
            value
        } else {
            !value
        }
    })
}

impl SatProblem {
    /// Whether `assignment` (one value per variable) satisfies every clause.
    /// An assignment of the wrong length satisfies nothing.
    pub fn satisfied_by(&self, assignment: &[bool]) -> bool {
        assignment.len() == self.num_vars
            && self.clauses.iter().all(|c| clause_satisfied(c, assignment))
    }

    /// The planted assignment as `<SOLUTION>` text: `1 0 1 ...`.
    pub fn reference_answer(&self) -> String {
        self.planted
            .iter()
            .map(|&b| if b { "1" } else { "0" })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The formula in DIMACS CNF.
    pub fn to_dimacs(&self) -> String {
        let mut s = format!("p cnf {} {}\n", self.num_vars, self.clauses.len());
        for c in &self.clauses {
            let _ = writeln!(s, "{} {} {} 0", c[0], c[1], c[2]);
        }
        s
    }

    /// The formula as prompt text: `(x1 OR NOT x3 OR x4) AND ...`, one clause
    /// per line.
    pub fn to_text(&self) -> String {
        self.clauses
            .iter()
            .map(|c| {
                let lits: Vec<String> = c
                    .iter()
                    .map(|&l| {
                        if l > 0 {
                            format!("x{l}")
                        } else {
                            format!("NOT x{}", -l)
                        }
                    })
                    .collect();
                format!("({})", lits.join(" OR "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn problem(seed: u8, level: u8) -> SatProblem {
        let d = Difficulty::new(level).unwrap();
        generate(&mut ChallengeRng::new(Kind::Sat, &[seed; 32], d), d)
    }

    #[test]
    fn difficulty_curve() {
        let d1 = Difficulty::new(1).unwrap();
        let d10 = Difficulty::new(10).unwrap();
        assert_eq!((num_vars(d1), num_clauses(d1)), (8, 24));
        assert_eq!((num_vars(d10), num_clauses(d10)), (35, 150)); // 35 * 4.26 = 149.1
    }

    #[test]
    fn planted_assignment_satisfies_and_shape_holds() {
        for level in 1..=10 {
            let p = problem(level, level);
            assert!(p.satisfied_by(&p.planted));
            assert_eq!(
                p.clauses.len(),
                num_clauses(Difficulty::new(level).unwrap())
            );
            for c in &p.clauses {
                assert!(c[0].abs() < c[1].abs() && c[1].abs() < c[2].abs(), "{c:?}");
                assert!(c.iter().all(|l| l.unsigned_abs() as usize <= p.num_vars));
            }
            let mut unique = p.clauses.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), p.clauses.len());
        }
    }

    #[test]
    fn wrong_assignments_fail() {
        let p = problem(3, 10);
        let flipped: Vec<bool> = p.planted.iter().map(|b| !b).collect();
        // the negated planted assignment falsifies every clause that is all
        // "true literals" under the planted one; with 150 clauses some exist
        assert!(!p.satisfied_by(&flipped) || p.clauses.is_empty());
        assert!(!p.satisfied_by(&p.planted[1..]));
    }

    #[test]
    fn dimacs_and_text() {
        let p = problem(1, 1);
        let d = p.to_dimacs();
        assert!(d.starts_with("p cnf 8 24\n"));
        assert_eq!(d.lines().count(), 25);
        assert!(d.lines().skip(1).all(|l| l.ends_with(" 0")));
        assert_eq!(p.to_text().lines().count(), 24);
        assert_eq!(p.reference_answer().split(' ').count(), 8);
    }
}
