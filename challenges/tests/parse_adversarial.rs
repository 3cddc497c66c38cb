//! Randomized and adversarial tests of the answer parsers (PROTOCOL.md
//! §13.5): no panics, extraction agrees with a naive reference, parsed values
//! round-trip through their canonical text, and known values parse exactly.
//! Deterministic: every generator is a `ChaCha20Rng` with a fixed seed.
//! Correctness only; speed is measured by `benches/parse.rs`.

use grail_challenges::parse::{
    extract_solution, parse_math_answer, parse_sat_assignment, ParseError, SOLUTION_CLOSE,
    SOLUTION_OPEN,
};
use grail_challenges::rational::Rational;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const CASES: usize = 100_000;
const MB10: usize = 10_000_000;

/// Fragments that stress the tag search and the number grammar.
const PIECES: &[&str] = &[
    SOLUTION_OPEN,
    SOLUTION_CLOSE,
    "<SOLUTION",
    "SOLUTION>",
    "</SOLUTIO",
    "</",
    "<",
    ">",
    "/",
    "<SOLU\u{301}TION>",
    "<SOLUTION>\u{301}",
    "<\u{10FFFF}SOLUTION>",
    "0",
    "1",
    "7",
    "9",
    "000",
    "123",
    ",",
    ".",
    " ",
    " / ",
    "\n",
    "\t",
    "\r\n",
    "\u{b}",
    "$",
    "\\$",
    "\\boxed{",
    "}",
    "\\(",
    "\\)",
    "\u{2212}",
    "+",
    "-",
    "%",
    "apples",
    "km",
    "e",
    "é",
    "\u{301}",
    "\u{202E}",
    "\u{5d0}\u{5d1}",
    "😀",
    "👩\u{200d}👩\u{200d}👧",
    "\0",
    "\u{a0}",
    "\u{feff}",
    "1,234",
    "12,34",
    "1,2,3",
    "0.75",
    "7/2",
    "true",
    "T",
    "\u{664}",
];

fn below(rng: &mut ChaCha20Rng, n: u32) -> u32 {
    // modulo bias is irrelevant for test generation
    rng.next_u32() % n
}

fn random_char(rng: &mut ChaCha20Rng) -> char {
    loop {
        let c = match below(rng, 4) {
            0 => below(rng, 0x80),
            1 => below(rng, 0x800),
            2 => below(rng, 0x10000),
            _ => below(rng, 0x110000),
        };
        if let Some(ch) = char::from_u32(c) {
            return ch;
        }
    }
}

fn random_completion(rng: &mut ChaCha20Rng) -> String {
    let mut s = String::new();
    for _ in 0..below(rng, 48) {
        match below(rng, 10) {
            0..=5 => s.push_str(PIECES[below(rng, PIECES.len() as u32) as usize]),
            6 | 7 => s.push(random_char(rng)),
            8 => s.push(char::from(b'0' + below(rng, 10) as u8)),
            _ => {
                // an answer-shaped block
                s.push_str(SOLUTION_OPEN);
                s.push_str(&math_like(rng).0);
                s.push_str(SOLUTION_CLOSE);
            }
        }
    }
    s
}

/// Reference extraction by a naive byte scan: (start, end) of the content.
fn reference_extract(c: &str) -> Option<(usize, usize)> {
    let (b, open, close) = (
        c.as_bytes(),
        SOLUTION_OPEN.as_bytes(),
        SOLUTION_CLOSE.as_bytes(),
    );
    let start = (0..b.len()).rev().find(|&i| b[i..].starts_with(open))? + open.len();
    let end = (start..b.len()).find(|&j| b[j..].starts_with(close))?;
    Some((start, end))
}

/// Byte range of `sub` inside `whole` (`sub` must be a subslice of it).
fn range_in(whole: &str, sub: &str) -> (usize, usize) {
    let start = (sub.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .expect("result lies inside the input");
    assert!(
        start + sub.len() <= whole.len(),
        "result lies inside the input"
    );
    (start, start + sub.len())
}

/// Structural properties of `extract_solution` that hold at any size.
fn check_extract_structure(c: &str) -> Option<&str> {
    let got = extract_solution(c);
    match got {
        Some(s) => {
            let (start, end) = range_in(c, s);
            assert!(c[..start].ends_with(SOLUTION_OPEN));
            assert!(
                !c[start..].contains(SOLUTION_OPEN),
                "after the last open tag"
            );
            assert!(c[end..].starts_with(SOLUTION_CLOSE));
            assert!(!s.contains(SOLUTION_CLOSE), "first close tag");
        }
        None => {
            if let Some(open) = c.rfind(SOLUTION_OPEN) {
                assert!(!c[open + SOLUTION_OPEN.len()..].contains(SOLUTION_CLOSE));
            }
        }
    }
    got
}

/// Parse as SAT and math and check round trips of whatever parses.
fn check_parsers(text: &str, num_vars: usize) {
    if let Ok(v) = parse_sat_assignment(text, num_vars) {
        assert_eq!(v.len(), num_vars);
        let canon: Vec<&str> = v.iter().map(|&b| if b { "1" } else { "0" }).collect();
        assert_eq!(parse_sat_assignment(&canon.join(" "), num_vars), Ok(v));
    }
    if let Ok(x) = parse_math_answer(text) {
        assert_eq!(parse_math_answer(&x.to_string()), Ok(x), "{text:?}");
    }
}

#[test]
fn random_completions_never_panic_and_match_reference() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed_0001);
    let (mut some, mut math_ok, mut sat_ok) = (0, 0, 0);
    for _ in 0..CASES {
        let c = random_completion(&mut rng);
        let got = check_extract_structure(&c);
        assert_eq!(got.map(|s| range_in(&c, s)), reference_extract(&c), "{c:?}");
        let num_vars = below(&mut rng, 40) as usize;
        let text = got.unwrap_or(&c);
        check_parsers(text, num_vars);
        some += usize::from(got.is_some());
        math_ok += usize::from(parse_math_answer(text).is_ok());
        sat_ok += usize::from(parse_sat_assignment(text, 1).is_ok());
    }
    // the generator reaches the interesting paths
    assert!(some > CASES / 10, "{some}");
    assert!(math_ok > CASES / 100, "{math_ok}");
    assert!(sat_ok > 0, "{sat_ok}");
}

/// A math answer in a random accepted style, with its exact value (`None`
/// where the style or size makes it invalid).
fn math_like(rng: &mut ChaCha20Rng) -> (String, Option<Rational>) {
    let digits = 1 + below(rng, 22);
    let mut n: i128 = 0;
    for _ in 0..digits {
        n = n * 10 + i128::from(below(rng, 10));
    }
    let group = below(rng, 2) == 0;
    let fmt_int = |n: i128, group: bool| {
        let plain = n.to_string();
        if !group {
            return plain;
        }
        let mut out = String::new();
        for (i, ch) in plain.chars().enumerate() {
            if i > 0 && (plain.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    };
    let (body, value) = match below(rng, 3) {
        0 => (fmt_int(n, group), Rational::new(n, 1)),
        1 => {
            let f = 1 + below(rng, 18) as usize;
            let frac: String = (0..f)
                .map(|_| char::from(b'0' + below(rng, 10) as u8))
                .collect();
            let scale = 10i128.pow(f as u32);
            let value = n
                .checked_mul(scale)
                .and_then(|v| v.checked_add(frac.parse::<i128>().unwrap()))
                .filter(|_| n.to_string().len() + f <= 39)
                .and_then(|v| Rational::new(v, scale));
            (format!("{}.{frac}", fmt_int(n, group)), value)
        }
        _ => {
            let d = i128::from(rng.next_u64() % 1_000_000);
            let sp = [" ", "", "  "][below(rng, 3) as usize];
            let value = if d == 0 { None } else { Rational::new(n, d) };
            (
                format!("{}{sp}/{sp}{}", fmt_int(n, group), fmt_int(d, group)),
                value,
            )
        }
    };
    let (sign, negative) = match below(rng, 4) {
        0 => ("-", true),
        1 => ("\u{2212}", true),
        2 => ("+", false),
        _ => ("", false),
    };
    let currency = ["", "$", "\\$"][below(rng, 3) as usize];
    let tail = ["", " apples", "%", " km.", "."][below(rng, 5) as usize];
    let core = format!("{sign}{currency}{body}{tail}");
    let text = match below(rng, 5) {
        0 => format!("\\boxed{{{core}}}"),
        1 => format!("$\\boxed{{ {core} }}$"),
        2 => format!("\\( {core} \\)"),
        3 => format!("\n {core} \n"),
        _ => core,
    };
    // `$...$` around a currency-less core with a `$` tail is not generated,
    // and a `$` currency directly inside `\boxed{}` inside nothing is fine.
    let value = value.map(|v| {
        if negative {
            Rational::new(-v.num(), v.den()).unwrap()
        } else {
            v
        }
    });
    (text, value)
}

#[test]
fn generated_math_answers_parse_to_their_exact_value() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed_0002);
    let mut ok = 0;
    for _ in 0..CASES {
        let (text, want) = math_like(&mut rng);
        let got = parse_math_answer(&text);
        match want {
            Some(v) => {
                assert_eq!(got, Ok(v), "{text:?}");
                ok += 1;
            }
            None => assert!(got.is_err(), "{text:?} gave {got:?}"),
        }
        check_parsers(&text, 3);
    }
    assert!(ok > CASES / 2, "{ok}");
}

#[test]
fn generated_sat_answers_parse_to_their_values() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed_0003);
    for _ in 0..CASES / 10 {
        let n = 1 + below(&mut rng, 40) as usize;
        let want: Vec<bool> = (0..n).map(|_| below(&mut rng, 2) == 1).collect();
        let mut text = String::from(["", " ", "\n"][below(&mut rng, 3) as usize]);
        for (i, &b) in want.iter().enumerate() {
            if i > 0 {
                text.push_str([" ", ",", ", ", "\n", "\t", " ,"][below(&mut rng, 6) as usize]);
            }
            text.push(if b { '1' } else { '0' });
        }
        let completion = format!("reasoning <SOLUTION>{text}</SOLUTION>");
        let block = extract_solution(&completion).unwrap();
        assert_eq!(parse_sat_assignment(block, n), Ok(want.clone()), "{text:?}");
        assert!(matches!(
            parse_sat_assignment(block, n + 1),
            Err(ParseError::WrongCount { .. })
        ));
    }
}

#[test]
fn repeated_open_tag_10mb() {
    let c = SOLUTION_OPEN.repeat(MB10 / SOLUTION_OPEN.len());
    assert_eq!(check_extract_structure(&c), None);
    let c = format!("{c}42</SOLUTION>");
    assert_eq!(extract_solution(&c), Some("42"));
    assert_eq!(parse_math_answer("42"), Ok(Rational::int(42)));
    // open tag then 10 MB of near-miss close tags
    let c = format!("{SOLUTION_OPEN}{}", "</SOLUTIO".repeat(MB10 / 9));
    assert_eq!(check_extract_structure(&c), None);
}

#[test]
fn repeated_lt_10mb() {
    let c = "<".repeat(MB10);
    assert_eq!(check_extract_structure(&c), None);
    check_parsers(&c, 35);
    assert!(matches!(
        parse_math_answer(&c),
        Err(ParseError::TooLong { .. })
    ));
}

#[test]
fn digits_10mb() {
    let digits = "1".repeat(MB10);
    let c = format!("{SOLUTION_OPEN}{digits}{SOLUTION_CLOSE}");
    let block = check_extract_structure(&c).unwrap();
    assert_eq!(block.len(), MB10);
    assert_eq!(
        parse_math_answer(block),
        Err(ParseError::TooLong {
            len: MB10,
            max: grail_challenges::parse::MAX_MATH_ANSWER_BYTES
        })
    );
    assert!(matches!(
        parse_sat_assignment(block, 35),
        Err(ParseError::TooLong { .. })
    ));
    let c = format!("{SOLUTION_OPEN}{}{SOLUTION_CLOSE}", "1 ".repeat(MB10 / 2));
    let block = extract_solution(&c).unwrap();
    assert!(matches!(
        parse_sat_assignment(block, usize::MAX / 8),
        Err(ParseError::WrongCount { .. })
    ));
}

#[test]
fn random_unicode_10mb() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed_0004);
    let mut c = String::with_capacity(MB10 + 4);
    while c.len() < MB10 {
        if below(&mut rng, 100_000) == 0 {
            c.push_str(PIECES[below(&mut rng, PIECES.len() as u32) as usize]);
        } else {
            c.push(random_char(&mut rng));
        }
    }
    let got = check_extract_structure(&c);
    let text = got.unwrap_or(&c);
    check_parsers(text, 35);
    // with the tags appended the result is exactly the appended block
    let c = format!("{c}{SOLUTION_OPEN}1 0{SOLUTION_CLOSE}");
    assert_eq!(extract_solution(&c), Some("1 0"));
}
