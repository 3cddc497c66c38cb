//! Exact rational numbers for problem parameters and answers (no floats).
#![forbid(unsafe_code)]

use std::fmt;

/// `num / den` in lowest terms with `den > 0`. Arithmetic is checked: an
/// overflow yields `None`, never a wrong value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// `num / den`, reduced; `None` if `den == 0` or on overflow.
    pub fn new(num: i128, den: i128) -> Option<Rational> {
        if den == 0 || num == i128::MIN || den == i128::MIN {
            return None;
        }
        let g = gcd(num, den).max(1);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = -n;
            d = -d;
        }
        Some(Rational { num: n, den: d })
    }

    /// An integer.
    pub fn int(n: i64) -> Rational {
        Rational {
            num: i128::from(n),
            den: 1,
        }
    }

    pub fn num(&self) -> i128 {
        self.num
    }

    pub fn den(&self) -> i128 {
        self.den
    }

    pub fn is_integer(&self) -> bool {
        self.den == 1
    }

    pub fn checked_add(self, o: Rational) -> Option<Rational> {
        let n = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Rational::new(n, self.den.checked_mul(o.den)?)
    }

    pub fn checked_sub(self, o: Rational) -> Option<Rational> {
        self.checked_add(Rational {
            num: o.num.checked_neg()?,
            den: o.den,
        })
    }

    pub fn checked_mul(self, o: Rational) -> Option<Rational> {
        Rational::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    /// `None` when dividing by zero.
    pub fn checked_div(self, o: Rational) -> Option<Rational> {
        Rational::new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }
}

impl fmt::Display for Rational {
    /// `7`, `-3/4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(Rational::new(6, -4).unwrap().to_string(), "-3/2");
        assert_eq!(Rational::new(0, 5).unwrap(), Rational::int(0));
        assert!(Rational::new(1, 0).is_none());
    }

    #[test]
    fn arithmetic() {
        let a = Rational::new(1, 3).unwrap();
        let b = Rational::new(1, 6).unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_string(), "1/2");
        assert_eq!(a.checked_sub(b).unwrap().to_string(), "1/6");
        assert_eq!(a.checked_mul(b).unwrap().to_string(), "1/18");
        assert_eq!(a.checked_div(b).unwrap(), Rational::int(2));
        assert!(a.checked_div(Rational::int(0)).is_none());
        let big = Rational::new(i128::MAX / 2, 1).unwrap();
        assert!(big.checked_mul(big).is_none());
    }
}
