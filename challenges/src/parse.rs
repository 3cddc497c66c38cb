//! Answer extraction and parsing (PROTOCOL.md §13.5).
//!
//! Validators re-score a miner's completion and must all reach the same
//! reward, so every rule below is consensus-critical. The three functions are
//! total (no panic on any `&str`), run in time linear in their input, use no
//! regular expressions, and classify only ASCII characters (plus U+2212 MINUS
//! SIGN), so no Unicode-table version can change a result. They allocate only
//! the returned value, or on error a copy of at most [`ERROR_PREFIX_CHARS`]
//! characters of the offending text.
//!
//! "Whitespace" below always means ASCII whitespace: space, tab, LF, FF and
//! CR (`u8::is_ascii_whitespace`); vertical tab, NBSP and other Unicode spaces
//! are ordinary characters. "Trim" removes whitespace at both ends.
//!
//! # Extraction ([`extract_solution`])
//!
//! The answer is the text between the **last** occurrence of `<SOLUTION>` in
//! the completion and the **first** `</SOLUTION>` after it. Tags match
//! exactly, byte for byte and case-sensitively. If the completion has no
//! `<SOLUTION>`, or no `</SOLUTION>` follows its last `<SOLUTION>`, there is
//! no answer (`None`): an earlier complete pair is *not* used. The content is
//! returned as written (untrimmed, possibly empty). There is no cap on the
//! completion's length: extraction is one backward and one forward substring
//! search (two-way, O(n), no allocation), so any length is handled; the
//! parsers below cap the extracted content.
//!
//! # SAT assignments ([`parse_sat_assignment`])
//!
//! 1. If the content (untrimmed) is longer than
//!    `SAT_MAX_BYTES_PER_VAR * num_vars + SAT_MAX_EXTRA_BYTES` bytes:
//!    [`ParseError::TooLong`] (checked before anything else is read).
//! 2. Trim; if nothing is left: [`ParseError::Empty`].
//! 3. Split on runs of separators, a separator being whitespace or `,`
//!    (so `1 0 1`, `1,0,1`, `1, 0, 1` and `1,, 0` are the same; a leading
//!    or trailing comma is ignored). Every token must be exactly `0` (false)
//!    or `1` (true); the first that is not gives [`ParseError::BadToken`]
//!    with its 0-based index. Nothing else is accepted: not `true`/`false`,
//!    `T`/`F`, `x1=1`, `-1`, `01`, nor digits run together (`101`).
//! 4. If the number of tokens is not `num_vars`: [`ParseError::WrongCount`].
//!
//! Token `i` is the value of `x_{i+1}`. With `num_vars == 0` nothing is
//! accepted (the content is empty, too long, or has too many tokens).
//!
//! # Math answers ([`parse_math_answer`])
//!
//! The content is normalized, then read as one exact rational number:
//! 1. If the content (untrimmed) is longer than [`MAX_MATH_ANSWER_BYTES`]:
//!    [`ParseError::TooLong`].
//! 2. Trim. If the text then starts and ends with `$` (two distinct
//!    characters) remove both; otherwise if it starts with `\(` and ends
//!    with `\)` remove both. Trim. Only one such pair is removed: `$$5$$`
//!    is an error.
//! 3. If the text starts with `\boxed{` and ends with `}`, remove both and
//!    trim. (Math delimiters come off first: `$\boxed{5}$` is 5, while
//!    `\boxed{$5$}` is an error.)
//! 4. If nothing is left: [`ParseError::Empty`]. Surrounding parentheses are
//!    *not* removed (`(5)` could mean -5 in accounting): an error.
//! 5. An optional sign: `+`, `-` or `−` (U+2212), then an optional currency
//!    sign `$` or `\$`, with nothing between them (`-$5` is -5; `$-5` and
//!    `- 5` are errors). The next character must be an ASCII digit, else
//!    [`ParseError::NoNumber`] (so `.5`, `x = 5`, `(5)`, `five` are errors).
//! 6. The number, one of:
//!    - an *integer literal*: a run of digits (leading zeros allowed), or
//!      digit groups separated by `,` where the first group has 1 to 3
//!      digits and does not start with `0`, and every later group exactly 3
//!      (`1,234,567`). A `,` counts as a separator only when a digit follows
//!      it; a malformed grouping (`12,34`, `1234,567`, `1,2,3`, `0,5`) is
//!      [`ParseError::BadThousands`], never a different number;
//!    - a *decimal*: an integer literal, `.`, and 1 to
//!      [`MAX_FRACTION_DIGITS`] digits (`0.75` is exactly 3/4; more digits:
//!      [`ParseError::TooManyFractionDigits`]). A `.` not followed by a
//!      digit is not part of the number (`3.` is 3 followed by a period);
//!    - a *fraction*: an integer literal, optional spaces (U+0020 only), `/`,
//!      optional spaces, an integer literal (`7/2`, `7 / 2`, `-7/2`). The
//!      denominator must start with a digit ([`ParseError::BadDenominator`]
//!      for `7/`, `7/-2`, `7/x`) and not be zero
//!      ([`ParseError::ZeroDenominator`]). Decimals do not take part in
//!      fractions (`1.5/2` is an error). Mixed numbers are not accepted:
//!      `3 1/2` is an error (trailing text), write `7/2`.
//! 7. Everything after the number may contain only ASCII letters,
//!    whitespace, `%` and `.`, and is ignored: `42 apples`, `3.5 km.`,
//!    `50%` (which is 50: percent is *not* divided by 100) and `5 million`
//!    (which is 5). Any other character, in particular a digit, `/`, `,`,
//!    `$` or a non-ASCII character, is [`ParseError::TrailingText`].
//!
//! Limits: each literal (an integer literal, the integer and fractional
//! digits of a decimal together, a numerator, a denominator) has at most
//! [`MAX_LITERAL_DIGITS`] digits as written, leading zeros included
//! ([`ParseError::TooManyDigits`]), and its value (for a decimal, integer
//! part × 10^f + fractional part) must fit in an `i128`
//! ([`ParseError::Overflow`]). The result is the reduced rational, negated
//! when the sign is `-` or `−` (`-0` is 0). Every parsed value's
//! `Rational::to_string()` (`7`, `-3/4`) parses back to the same value.
//!
//! Errors are reported in reading order: length, emptiness, structure left
//! to right (no number, thousands groups, fractional digits, denominator),
//! the trailing text, then the numerator's digit count and overflow, the
//! denominator's, and a zero denominator. Only whether parsing fails enters
//! the reward.
#![forbid(unsafe_code)]

use crate::rational::Rational;

/// Opening tag of the answer block. Changing it changes which completions
/// score, so every validator must agree on it (protocol version).
pub const SOLUTION_OPEN: &str = "<SOLUTION>";
/// Closing tag of the answer block (same consensus rule as the open tag).
pub const SOLUTION_CLOSE: &str = "</SOLUTION>";

/// Bytes allowed per variable in a SAT answer (`1, ` is 3). Changing it
/// changes which long answers get format reward: consensus-critical.
pub const SAT_MAX_BYTES_PER_VAR: usize = 4;
/// Bytes allowed in a SAT answer on top of `SAT_MAX_BYTES_PER_VAR` per
/// variable (surrounding newlines and spaces). Consensus-critical.
pub const SAT_MAX_EXTRA_BYTES: usize = 64;
/// Longest math answer content, in bytes, before trimming. Leaves room for
/// wrappers, a currency sign and a few words of units; anything longer is
/// rejected unread. Consensus-critical.
pub const MAX_MATH_ANSWER_BYTES: usize = 256;
/// Most fractional digits in a decimal, so the denominator `10^f` fits in
/// an `i64`. Consensus-critical.
pub const MAX_FRACTION_DIGITS: usize = 18;
/// Most digits in one literal, as written: the length of `i128::MAX`, so the
/// canonical text of every parsed value is itself accepted.
/// Consensus-critical.
pub const MAX_LITERAL_DIGITS: usize = 39;
/// Most characters of offending text kept in an error (diagnostics only).
pub const ERROR_PREFIX_CHARS: usize = 16;

/// Why an answer does not parse. Any error means format reward 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but whitespace (and, for math, wrappers) in the block.
    #[error("answer is empty")]
    Empty,
    /// The block is longer than the cap for its kind.
    #[error("answer is {len} bytes, more than the {max} allowed")]
    TooLong { len: usize, max: usize },
    /// SAT: the number of 0/1 values is not the number of variables.
    #[error("SAT assignment has {got} values, want {want}")]
    WrongCount { got: usize, want: usize },
    /// SAT: a token that is not `0` or `1`.
    #[error("SAT value #{index} is {prefix:?}, not 0 or 1")]
    BadToken { index: usize, prefix: String },
    /// Math: after wrappers, sign and currency, no digit.
    #[error("math answer does not start with a number: {prefix:?}")]
    NoNumber { prefix: String },
    /// Math: a thousands-separator group of the wrong size.
    #[error(
        "bad thousands group {group:?}: the first has 1 to 3 digits and no \
         leading zero, later ones exactly 3"
    )]
    BadThousands { group: String },
    /// Math: a decimal with too many digits after the point.
    #[error("{got} fractional digits, more than {max}")]
    TooManyFractionDigits { got: usize, max: usize },
    /// Math: a literal with too many digits.
    #[error("a number has {got} digits, more than {max}")]
    TooManyDigits { got: usize, max: usize },
    /// Math: a literal whose value does not fit in an `i128`.
    #[error("number does not fit in 128 bits")]
    Overflow,
    /// Math: `/` not followed by a digit.
    #[error("fraction has no denominator: {prefix:?} after '/'")]
    BadDenominator { prefix: String },
    /// Math: a fraction with denominator 0.
    #[error("zero denominator")]
    ZeroDenominator,
    /// Math: something other than letters, whitespace, `%` or `.` after the
    /// number.
    #[error("unexpected text after the number: {tail:?}")]
    TrailingText { tail: String },
}

/// At most `ERROR_PREFIX_CHARS` characters of `s` (char boundaries, never a
/// split character).
fn prefix(s: &str) -> String {
    s.chars().take(ERROR_PREFIX_CHARS).collect()
}

/// The answer block of a completion (see the module documentation): the
/// text between the last `<SOLUTION>` and the first `</SOLUTION>` after it.
pub fn extract_solution(completion: &str) -> Option<&str> {
    let open = completion.rfind(SOLUTION_OPEN)?;
    // `open` is a match position, so `open + len` is a char boundary.
    let rest = &completion[open + SOLUTION_OPEN.len()..];
    let close = rest.find(SOLUTION_CLOSE)?;
    Some(&rest[..close])
}

/// A SAT assignment, `num_vars` values of `0`/`1` (see the module
/// documentation). Entry `i` is the value of `x_{i+1}`.
pub fn parse_sat_assignment(text: &str, num_vars: usize) -> Result<Vec<bool>, ParseError> {
    let max = num_vars
        .saturating_mul(SAT_MAX_BYTES_PER_VAR)
        .saturating_add(SAT_MAX_EXTRA_BYTES);
    if text.len() > max {
        return Err(ParseError::TooLong {
            len: text.len(),
            max,
        });
    }
    let text = text.trim_ascii();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    // Every token is at least one byte, so this never exceeds the input.
    let mut values = Vec::with_capacity(num_vars.min(text.len()));
    let tokens = text
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|t| !t.is_empty());
    for (index, token) in tokens.enumerate() {
        values.push(match token {
            "0" => false,
            "1" => true,
            _ => {
                return Err(ParseError::BadToken {
                    index,
                    prefix: prefix(token),
                })
            }
        });
    }
    if values.len() != num_vars {
        return Err(ParseError::WrongCount {
            got: values.len(),
            want: num_vars,
        });
    }
    Ok(values)
}

/// A math answer as an exact rational (see the module documentation).
pub fn parse_math_answer(text: &str) -> Result<Rational, ParseError> {
    if text.len() > MAX_MATH_ANSWER_BYTES {
        return Err(ParseError::TooLong {
            len: text.len(),
            max: MAX_MATH_ANSWER_BYTES,
        });
    }
    let s = strip_wrappers(text);
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    let (negative, s) = if let Some(r) = s.strip_prefix('-').or_else(|| s.strip_prefix('\u{2212}'))
    {
        (true, r)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    };
    let s = s
        .strip_prefix("\\$")
        .or_else(|| s.strip_prefix('$'))
        .unwrap_or(s);
    if !starts_with_digit(s) {
        return Err(ParseError::NoNumber { prefix: prefix(s) });
    }

    // Structure, left to right.
    let (mut num, rest) = integer_literal(s)?;
    let mut den = Literal::one();
    let rest = if let Some(frac) = rest.strip_prefix('.').filter(|r| starts_with_digit(r)) {
        let (digits, rest) = split_digits(frac);
        if digits.len() > MAX_FRACTION_DIGITS {
            return Err(ParseError::TooManyFractionDigits {
                got: digits.len(),
                max: MAX_FRACTION_DIGITS,
            });
        }
        num.push_digits(digits);
        den = Literal::power_of_ten(digits.len());
        rest
    } else if let Some(after) = rest.trim_start_matches(' ').strip_prefix('/') {
        let after = after.trim_start_matches(' ');
        if !starts_with_digit(after) {
            return Err(ParseError::BadDenominator {
                prefix: prefix(after),
            });
        }
        let (d, rest) = integer_literal(after)?;
        den = d;
        rest
    } else {
        rest
    };
    let tail_ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b.is_ascii_whitespace() || b == b'%' || b == b'.');
    if !tail_ok {
        return Err(ParseError::TrailingText {
            tail: prefix(rest.trim_ascii_start()),
        });
    }

    // Values.
    let num = num.value()?;
    let den = den.value()?;
    if den == 0 {
        return Err(ParseError::ZeroDenominator);
    }
    // `num` is in 0..=i128::MAX, so negation cannot overflow; `Rational::new`
    // fails only for a zero or `i128::MIN` denominator, excluded above.
    let num = if negative { -num } else { num };
    Rational::new(num, den).ok_or(ParseError::Overflow)
}

/// Steps 2 and 3 of the math rules: trim, one `$..$` or `\(..\)` pair, one
/// `\boxed{..}`.
fn strip_wrappers(text: &str) -> &str {
    let s = text.trim_ascii();
    let s = match s
        .strip_prefix('$')
        .and_then(|r| r.strip_suffix('$'))
        .or_else(|| s.strip_prefix("\\(").and_then(|r| r.strip_suffix("\\)")))
    {
        Some(inner) => inner.trim_ascii(),
        None => s,
    };
    match s.strip_prefix("\\boxed{").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.trim_ascii(),
        None => s,
    }
}

fn starts_with_digit(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Splits `s` after its leading run of ASCII digits (an ASCII boundary, so
/// always a char boundary).
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(n)
}

/// Digits read so far: their count and value (`None` once it overflows).
struct Literal {
    digits: usize,
    value: Option<i128>,
}

impl Literal {
    fn one() -> Literal {
        Literal {
            digits: 0,
            value: Some(1),
        }
    }

    /// `10^exp` for `exp <= MAX_FRACTION_DIGITS`; its digits are not counted
    /// against the literal limit (the fractional digits already were).
    fn power_of_ten(exp: usize) -> Literal {
        let mut value = Some(1i128);
        for _ in 0..exp {
            value = value.and_then(|v| v.checked_mul(10));
        }
        Literal { digits: 0, value }
    }

    fn push_digits(&mut self, digits: &str) {
        for b in digits.bytes() {
            self.digits += 1;
            self.value = self
                .value
                .and_then(|v| v.checked_mul(10)?.checked_add(i128::from(b - b'0')));
        }
    }

    fn value(&self) -> Result<i128, ParseError> {
        if self.digits > MAX_LITERAL_DIGITS {
            return Err(ParseError::TooManyDigits {
                got: self.digits,
                max: MAX_LITERAL_DIGITS,
            });
        }
        self.value.ok_or(ParseError::Overflow)
    }
}

/// An integer literal at the start of `s` (which starts with a digit), with
/// optional thousands separators; returns it and the rest of `s`.
fn integer_literal(s: &str) -> Result<(Literal, &str), ParseError> {
    let (first, mut rest) = split_digits(s);
    let mut lit = Literal {
        digits: 0,
        value: Some(0),
    };
    lit.push_digits(first);
    let mut grouped = false;
    while let Some(after) = rest.strip_prefix(',').filter(|r| starts_with_digit(r)) {
        if !grouped && (first.len() > 3 || first.starts_with('0')) {
            return Err(ParseError::BadThousands {
                group: prefix(first),
            });
        }
        grouped = true;
        let (group, r) = split_digits(after);
        if group.len() != 3 {
            return Err(ParseError::BadThousands {
                group: prefix(group),
            });
        }
        lit.push_digits(group);
        rest = r;
    }
    Ok((lit, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(num: i128, den: i128) -> Rational {
        Rational::new(num, den).unwrap()
    }

    fn math(s: &str) -> Result<Rational, ParseError> {
        parse_math_answer(s)
    }

    // ---- extraction ----

    #[test]
    fn extract_takes_last_open_and_first_close_after_it() {
        let c = "think <SOLUTION>1</SOLUTION> more <SOLUTION> 2 </SOLUTION> x </SOLUTION>";
        assert_eq!(extract_solution(c), Some(" 2 "));
        assert_eq!(
            extract_solution("<SOLUTION><SOLUTION>7</SOLUTION>"),
            Some("7")
        );
        assert_eq!(extract_solution("<SOLUTION></SOLUTION>"), Some(""));
        assert_eq!(
            extract_solution("<SOLUTION>a\n</SOLUTION>"),
            Some("a\n"),
            "content is not trimmed"
        );
    }

    #[test]
    fn extract_none_without_a_pair_after_the_last_open() {
        assert_eq!(extract_solution(""), None);
        assert_eq!(extract_solution("42"), None);
        assert_eq!(extract_solution("<SOLUTION>42"), None);
        assert_eq!(extract_solution("</SOLUTION>42<SOLUTION>"), None);
        // an earlier complete pair is not a fallback
        assert_eq!(extract_solution("<SOLUTION>1</SOLUTION> <SOLUTION>2"), None);
    }

    #[test]
    fn extract_tags_are_exact_and_case_sensitive() {
        assert_eq!(extract_solution("<solution>1</solution>"), None);
        assert_eq!(extract_solution("<SOLUTION >1</SOLUTION>"), None);
        assert_eq!(extract_solution("<SOLUTION>1</SOLUTION >"), None);
        assert_eq!(extract_solution("<SOLUTION>1</Solution>"), None);
        assert_eq!(extract_solution("＜SOLUTION＞1</SOLUTION>"), None);
    }

    #[test]
    fn extract_around_multibyte_text() {
        let c = "é<SOLUTION>😀 1 ü</SOLUTION>∑";
        assert_eq!(extract_solution(c), Some("😀 1 ü"));
        assert_eq!(extract_solution("<SOLU\u{301}TION>1</SOLUTION>"), None);
    }

    // ---- SAT ----

    #[test]
    fn sat_accepts_whitespace_and_comma_separators() {
        let want = vec![true, false, true];
        for s in [
            "1 0 1",
            "\n 1 0 1 \r\n",
            "1,0,1",
            "1, 0, 1",
            "1\t0\n1",
            "1,, 0 ,1,",
            ",1 0 1",
        ] {
            assert_eq!(parse_sat_assignment(s, 3), Ok(want.clone()), "{s:?}");
        }
    }

    #[test]
    fn sat_is_strict_about_tokens() {
        for (s, index, bad) in [
            ("1 0 true", 2, "true"),
            ("T F T", 0, "T"),
            ("01 1 0", 0, "01"),
            ("1 -1 0", 1, "-1"),
            ("101", 0, "101"),
            ("1\u{a0}0 1", 0, "1\u{a0}0"),
            ("x1=1 0 0", 0, "x1=1"),
        ] {
            assert_eq!(
                parse_sat_assignment(s, 3),
                Err(ParseError::BadToken {
                    index,
                    prefix: bad.to_string()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn sat_error_empty() {
        assert_eq!(parse_sat_assignment("", 3), Err(ParseError::Empty));
        assert_eq!(parse_sat_assignment(" \n\t ", 3), Err(ParseError::Empty));
        assert_eq!(parse_sat_assignment("", 0), Err(ParseError::Empty));
    }

    #[test]
    fn sat_error_too_long() {
        let max = 3 * SAT_MAX_BYTES_PER_VAR + SAT_MAX_EXTRA_BYTES;
        let ok = format!("{}1 0 1", " ".repeat(max - 5));
        assert_eq!(ok.len(), max);
        assert!(parse_sat_assignment(&ok, 3).is_ok());
        let long = format!(" {ok}");
        assert_eq!(
            parse_sat_assignment(&long, 3),
            Err(ParseError::TooLong { len: max + 1, max })
        );
        // a huge num_vars saturates instead of overflowing
        assert!(parse_sat_assignment("1", usize::MAX).is_err());
    }

    #[test]
    fn sat_error_wrong_count() {
        assert_eq!(
            parse_sat_assignment("1 0", 3),
            Err(ParseError::WrongCount { got: 2, want: 3 })
        );
        assert_eq!(
            parse_sat_assignment("1 0 1 1", 3),
            Err(ParseError::WrongCount { got: 4, want: 3 })
        );
        assert_eq!(
            parse_sat_assignment(",", 3),
            Err(ParseError::WrongCount { got: 0, want: 3 })
        );
    }

    #[test]
    fn sat_error_bad_token_prefix_is_at_most_16_chars() {
        let token = "ü".repeat(20);
        assert_eq!(
            parse_sat_assignment(&format!("1 {token} 0"), 3),
            Err(ParseError::BadToken {
                index: 1,
                prefix: "ü".repeat(ERROR_PREFIX_CHARS)
            })
        );
    }

    // ---- math: accepted forms ----

    #[test]
    fn math_integers_and_signs() {
        assert_eq!(math("42"), Ok(r(42, 1)));
        assert_eq!(math("  007\n"), Ok(r(7, 1)));
        assert_eq!(math("-5"), Ok(r(-5, 1)));
        assert_eq!(math("+5"), Ok(r(5, 1)));
        assert_eq!(math("\u{2212}5"), Ok(r(-5, 1)));
        assert_eq!(math("-0"), Ok(r(0, 1)));
    }

    #[test]
    fn math_decimals_are_exact() {
        assert_eq!(math("0.75"), Ok(r(3, 4)));
        assert_eq!(math("5.00"), Ok(r(5, 1)));
        assert_eq!(math("-2.5"), Ok(r(-5, 2)));
        assert_eq!(
            math("0.000000000000000001"),
            Ok(r(1, 1_000_000_000_000_000_000))
        );
        assert_eq!(
            math("3."),
            Ok(r(3, 1)),
            "a trailing period is not a decimal point"
        );
    }

    #[test]
    fn math_fractions() {
        assert_eq!(math("7/2"), Ok(r(7, 2)));
        assert_eq!(math("7 / 2"), Ok(r(7, 2)));
        assert_eq!(math("-6/4"), Ok(r(-3, 2)));
        assert_eq!(math("\u{2212}6 /4"), Ok(r(-3, 2)));
        assert_eq!(math("1/1,000"), Ok(r(1, 1000)));
        assert!(math("1.5/2").is_err(), "no decimals in fractions");
        assert!(math("3 1/2").is_err(), "no mixed numbers");
        assert!(math("7\t/2").is_err(), "only spaces around the slash");
    }

    #[test]
    fn math_wrappers() {
        assert_eq!(math("$42$"), Ok(r(42, 1)));
        assert_eq!(math("\\( 7/2 \\)"), Ok(r(7, 2)));
        assert_eq!(math("\\boxed{ -3 }"), Ok(r(-3, 1)));
        assert_eq!(math(" $\\boxed{0.5}$ "), Ok(r(1, 2)));
        assert_eq!(math("\\(\\boxed{9}\\)"), Ok(r(9, 1)));
        assert!(math("\\boxed{$5$}").is_err(), "boxed comes off after $..$");
        assert!(math("$$5$$").is_err(), "one pair only");
        assert!(math("(5)").is_err(), "parentheses are not stripped");
        assert!(math("\\boxed{5").is_err());
    }

    #[test]
    fn math_currency() {
        assert_eq!(math("$18"), Ok(r(18, 1)));
        assert_eq!(math("\\$18.50"), Ok(r(37, 2)));
        assert_eq!(math("-$5"), Ok(r(-5, 1)));
        assert_eq!(math("\\boxed{\\$1,200}"), Ok(r(1200, 1)));
        assert!(math("$-5").is_err());
        assert!(math("- 5").is_err());
    }

    #[test]
    fn math_thousands_separators() {
        assert_eq!(math("1,234,567"), Ok(r(1_234_567, 1)));
        assert_eq!(math("1,234.5"), Ok(r(2469, 2)));
        assert_eq!(math("999,000"), Ok(r(999_000, 1)));
        assert_eq!(math("12345"), Ok(r(12345, 1)));
    }

    #[test]
    fn math_trailing_words_units_and_percent_are_ignored() {
        assert_eq!(math("42 apples"), Ok(r(42, 1)));
        assert_eq!(math("3.5 km."), Ok(r(7, 2)));
        assert_eq!(math("50%"), Ok(r(50, 1)), "percent is not divided by 100");
        assert_eq!(math("5 million"), Ok(r(5, 1)));
        assert_eq!(math("1/2 cup"), Ok(r(1, 2)));
        assert_eq!(math("12dollars"), Ok(r(12, 1)));
        assert_eq!(math("3.14159..."), Ok(r(314_159, 100_000)));
    }

    #[test]
    fn math_canonical_text_round_trips_at_the_limits() {
        for x in [
            r(i128::MAX, 1),
            r(-i128::MAX, 1),
            r(1, i128::MAX),
            r(-(i128::MAX - 1), i128::MAX),
            r(0, 1),
        ] {
            assert_eq!(math(&x.to_string()), Ok(x), "{x}");
        }
    }

    // ---- math: one test per error ----

    #[test]
    fn math_error_empty() {
        for s in ["", "  ", "$ $", "\\(\\)", "\\boxed{}", "$\\boxed{ }$"] {
            assert_eq!(math(s), Err(ParseError::Empty), "{s:?}");
        }
    }

    #[test]
    fn math_error_too_long() {
        let s = format!("{}1", " ".repeat(MAX_MATH_ANSWER_BYTES));
        assert_eq!(
            math(&s),
            Err(ParseError::TooLong {
                len: MAX_MATH_ANSWER_BYTES + 1,
                max: MAX_MATH_ANSWER_BYTES
            })
        );
        assert!(math(&s[1..]).is_ok());
    }

    #[test]
    fn math_error_no_number() {
        for (s, p) in [
            ("x = 5", "x = 5"),
            (".5", ".5"),
            ("(5)", "(5)"),
            ("five", "five"),
            ("--5", "-5"),
            ("$-5", "-5"),
            ("The answer is 42", "The answer is 42"),
            ("٤٢", "٤٢"),
        ] {
            assert_eq!(
                math(s),
                Err(ParseError::NoNumber {
                    prefix: p.chars().take(ERROR_PREFIX_CHARS).collect()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn math_error_bad_thousands() {
        for (s, g) in [
            ("12,34", "34"),
            ("1,2,3", "2"),
            ("1234,567", "1234"),
            ("0,500", "0"),
            ("1,234,56", "56"),
            ("1,2345", "2345"),
            ("1/2,50", "50"),
        ] {
            assert_eq!(
                math(s),
                Err(ParseError::BadThousands {
                    group: g.to_string()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn math_error_too_many_fraction_digits() {
        assert_eq!(
            math("0.1234567890123456789"),
            Err(ParseError::TooManyFractionDigits { got: 19, max: 18 })
        );
    }

    #[test]
    fn math_error_too_many_digits() {
        let forty = "1".repeat(40);
        assert_eq!(
            math(&forty),
            Err(ParseError::TooManyDigits { got: 40, max: 39 })
        );
        assert_eq!(
            math(&format!("1/{}", "0".repeat(39) + "1")),
            Err(ParseError::TooManyDigits { got: 40, max: 39 })
        );
        // integer and fractional digits of a decimal count together
        let d = format!("{}.{}", "1".repeat(22), "1".repeat(18));
        assert_eq!(
            math(&d),
            Err(ParseError::TooManyDigits { got: 40, max: 39 })
        );
    }

    #[test]
    fn math_error_overflow() {
        // 39 digits, above i128::MAX = 170141183460469231731687303715884105727
        assert_eq!(math(&"9".repeat(39)), Err(ParseError::Overflow));
        assert_eq!(
            math("170141183460469231731687303715884105728"),
            Err(ParseError::Overflow)
        );
        assert_eq!(
            math("-170141183460469231731687303715884105728"),
            Err(ParseError::Overflow),
            "i128::MIN is not representable as a Rational"
        );
        assert_eq!(
            math(&format!("{}.5", "9".repeat(38))),
            Err(ParseError::Overflow)
        );
        assert_eq!(
            math(&format!("1/{}", "9".repeat(39))),
            Err(ParseError::Overflow)
        );
    }

    #[test]
    fn math_error_bad_denominator() {
        for (s, p) in [("7/", ""), ("7/-2", "-2"), ("7 / x", "x"), ("7/ ", "")] {
            assert_eq!(
                math(s),
                Err(ParseError::BadDenominator {
                    prefix: p.to_string()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn math_error_zero_denominator() {
        assert_eq!(math("1/0"), Err(ParseError::ZeroDenominator));
        assert_eq!(math("-5 / 000"), Err(ParseError::ZeroDenominator));
    }

    #[test]
    fn math_error_trailing_text() {
        for (s, t) in [
            ("3 1/2", "1/2"),
            ("42$", "$"),
            ("1e5", "e5"),
            ("5, apples", ", apples"),
            ("2 × 3", "× 3"),
            ("5 km/h", "km/h"),
            ("3.5.2", ".2"),
            ("7/2/3", "/3"),
            ("50\\%", "\\%"),
            ("42 éclairs", "éclairs"),
        ] {
            assert_eq!(
                math(s),
                Err(ParseError::TrailingText {
                    tail: t.to_string()
                }),
                "{s:?}"
            );
        }
    }
}
