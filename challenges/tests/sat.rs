//! SAT generation over 10,000 seeds: deterministic, satisfied by the planted
//! assignment, and satisfiable according to an independent solver reading
//! the DIMACS text.
use grail_challenges::{sat::SatProblem, Difficulty, Kind, Problem};
use varisat::{ExtendFormula, Lit, Solver};

fn seed(i: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&i.to_le_bytes());
    s[31] = 0x5a;
    s
}

fn sat(i: u64, level: u8) -> SatProblem {
    match Problem::generate(Kind::Sat, &seed(i), Difficulty::new(level).unwrap()) {
        Problem::Sat(p) => p,
        other => panic!("{other:?}"),
    }
}

/// Parse DIMACS text independently of the generator's types.
fn parse_dimacs(text: &str) -> (usize, Vec<Vec<i64>>) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&header[..2], &["p", "cnf"]);
    let n: usize = header[2].parse().unwrap();
    let m: usize = header[3].parse().unwrap();
    let clauses: Vec<Vec<i64>> = lines
        .map(|l| {
            let lits: Vec<i64> = l.split_whitespace().map(|t| t.parse().unwrap()).collect();
            assert_eq!(lits.last(), Some(&0));
            lits[..lits.len() - 1].to_vec()
        })
        .collect();
    assert_eq!(clauses.len(), m);
    (n, clauses)
}

#[test]
fn ten_thousand_seeds_deterministic_and_planted_assignment_satisfies() {
    for i in 0..10_000u64 {
        let level = 1 + (i % 10) as u8;
        let p = sat(i, level);
        assert_eq!(p, sat(i, level), "seed {i} not deterministic");
        assert!(
            p.satisfied_by(&p.planted),
            "seed {i}: planted assignment fails"
        );
    }
}

#[test]
fn an_independent_solver_finds_every_dimacs_instance_satisfiable() {
    for i in 0..10_000u64 {
        let level = 1 + (i % 10) as u8;
        let p = sat(i, level);
        let (n, clauses) = parse_dimacs(&p.to_dimacs());
        assert_eq!(n, p.num_vars);
        let mut solver = Solver::new();
        for c in &clauses {
            let lits: Vec<Lit> = c.iter().map(|&l| Lit::from_dimacs(l as isize)).collect();
            solver.add_clause(&lits);
        }
        assert_eq!(solver.solve().ok(), Some(true), "seed {i} level {level}");
        // the solver's model also satisfies the formula by our checker
        let model = solver.model().unwrap();
        let mut assignment = vec![false; n];
        for lit in model {
            let v = lit.index();
            if v < n {
                assignment[v] = lit.is_positive();
            }
        }
        assert!(
            p.satisfied_by(&assignment),
            "seed {i}: solver model rejected"
        );
        // and the planted assignment satisfies every parsed clause
        for c in &clauses {
            assert!(c
                .iter()
                .any(|&l| p.planted[l.unsigned_abs() as usize - 1] == (l > 0)));
        }
    }
}

#[test]
fn a_flipped_variable_breaks_some_instance() {
    // the checker is not vacuous: flipping one planted bit falsifies a clause
    // in most instances
    let broken = (0..200u64)
        .filter(|&i| {
            let p = sat(i, 10);
            let mut a = p.planted.clone();
            a[0] = !a[0];
            !p.satisfied_by(&a)
        })
        .count();
    assert!(broken > 100, "{broken}");
}
