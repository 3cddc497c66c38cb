//! Answer parsing on 10 MB adversarial completions (PROTOCOL.md §13.5).
//!
//! `cargo bench -p grail-challenges --bench parse`. Each input is built, its
//! outputs are checked, then `extract_solution` followed by both parsers is
//! timed, best of 5, and reported with the achieved throughput (input bytes
//! over time). Where the last `<SOLUTION>` sits at the end of the input the
//! backward search reads only the tail, so those figures are huge by design.

use std::hint::black_box;
use std::time::{Duration, Instant};

use grail_challenges::parse::{
    extract_solution, parse_math_answer, parse_sat_assignment, ParseError, SOLUTION_CLOSE,
    SOLUTION_OPEN,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const SIZE: usize = 10_000_000;
const RUNS: usize = 5;
/// SAT variables at difficulty 10.
const NUM_VARS: usize = 35;

type Outcome<'a> = (
    Option<&'a str>,
    Option<Result<Vec<bool>, ParseError>>,
    Option<Result<grail_challenges::rational::Rational, ParseError>>,
);

/// Checks the outcome of one input before it is timed.
type Check = Box<dyn Fn(Outcome<'_>) -> bool>;

/// What a validator does with a completion.
fn score(c: &str) -> Outcome<'_> {
    let block = extract_solution(c);
    (
        block,
        block.map(|b| parse_sat_assignment(b, NUM_VARS)),
        block.map(parse_math_answer),
    )
}

fn random_unicode(len: usize) -> String {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed_0b0b);
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        if let Some(ch) = char::from_u32(rng.next_u32() % 0x11_0000) {
            s.push(ch);
        }
    }
    s
}

fn main() {
    let tag_repeat = SOLUTION_OPEN.repeat(SIZE / SOLUTION_OPEN.len());
    let tag_repeat_answered = format!("{tag_repeat}42{SOLUTION_CLOSE}");
    let near_miss = format!("{SOLUTION_OPEN}{}", "</SOLUTIO".repeat(SIZE / 9));
    let lt = "<".repeat(SIZE);
    let digits = format!("{SOLUTION_OPEN}{}{SOLUTION_CLOSE}", "7".repeat(SIZE));
    let unicode = random_unicode(SIZE);
    let unicode_answered = format!("{unicode}{SOLUTION_OPEN}1/2{SOLUTION_CLOSE}");

    let too_long = |len| ParseError::TooLong {
        len,
        max: grail_challenges::parse::MAX_MATH_ANSWER_BYTES,
    };
    let cases: Vec<(&str, &str, Check)> = vec![
        (
            "<SOLUTION>-repeat",
            &tag_repeat,
            Box::new(|o| o.0.is_none()),
        ),
        (
            "<SOLUTION>-repeat + answer",
            &tag_repeat_answered,
            Box::new(|o| {
                o.0 == Some("42") && o.2 == Some(Ok(grail_challenges::rational::Rational::int(42)))
            }),
        ),
        (
            "open + </SOLUTIO-repeat",
            &near_miss,
            Box::new(|o| o.0.is_none()),
        ),
        ("<-repeat", &lt, Box::new(|o| o.0.is_none())),
        (
            "10 MB digit block",
            &digits,
            Box::new(move |o| {
                o.0.map(str::len) == Some(SIZE)
                    && matches!(o.1, Some(Err(ParseError::TooLong { .. })))
                    && o.2 == Some(Err(too_long(SIZE)))
            }),
        ),
        ("random unicode", &unicode, Box::new(|o| o.0.is_none())),
        (
            "random unicode + answer",
            &unicode_answered,
            Box::new(|o| {
                o.0 == Some("1/2") && o.2 == grail_challenges::rational::Rational::new(1, 2).map(Ok)
            }),
        ),
    ];

    for (name, input, valid) in &cases {
        assert!(valid(score(input)), "{name}: wrong result");
        let mut best = Duration::MAX;
        for _ in 0..RUNS {
            let t = Instant::now();
            black_box(score(black_box(input)));
            best = best.min(t.elapsed());
        }
        let mb = input.len() as f64 / 1e6;
        let secs = best.as_secs_f64();
        let time = if secs < 1e-3 {
            format!("{:.1} µs", secs * 1e6)
        } else {
            format!("{:.2} ms", secs * 1e3)
        };
        println!(
            "parse: {mb:.1} MB adversarial {name} in {time} = {:.2} GB/s (target: well under 1 s)",
            input.len() as f64 / secs / 1e9,
        );
    }
}
