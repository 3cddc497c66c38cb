//! The random stream of one problem (PROTOCOL.md §13.1).
//!
//! `key = derive("grail/v1/challenge-stream", [seed, [kind], [difficulty]])`;
//! the stream is `ChaCha20(key)` read as consecutive u64s (8 keystream bytes,
//! little-endian). Every draw consumes whole u64s:
//! - `below(n)`: draw `x`; reject while `x >= n * floor((2^64 - 1) / n)`;
//!   return `x mod n`.
//! - `range(lo, hi)` (inclusive): `lo + below(hi - lo + 1)`.
//! - `pick(items)`: `items[below(len)]`.
//! - `coin()`: `below(2) == 1`.
//! - `shuffle(v)`: for `i` from `len - 1` down to 1, swap `v[i]` and
//!   `v[below(i + 1)]`.
//!
//! Only integers: no floating point anywhere in generation, so every platform
//! produces the same problem.
#![forbid(unsafe_code)]

use grail_core::hash::{derive, label};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::{Difficulty, Kind};

/// Deterministic integer randomness for generating one problem.
pub struct ChallengeRng {
    rng: ChaCha20Rng,
}

impl ChallengeRng {
    /// The stream for (`kind`, `seed`, `difficulty`).
    pub fn new(kind: Kind, seed: &[u8; 32], difficulty: Difficulty) -> Self {
        let key = derive(
            label::CHALLENGE_STREAM,
            &[seed, &[kind.code()], &[difficulty.level()]],
        );
        ChallengeRng {
            rng: ChaCha20Rng::from_seed(key),
        }
    }

    /// The next raw u64.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in `0..n`. `n` must be at least 1 (0 is treated as 1).
    pub fn below(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        let limit = u64::MAX / n * n;
        loop {
            let x = self.rng.next_u64();
            if x < limit {
                return x % n;
            }
        }
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = hi.wrapping_sub(lo) as u64 + 1;
        lo.wrapping_add(self.below(span) as i64)
    }

    /// One element, uniformly (`items` must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.below(2) == 1
    }

    /// Fisher–Yates shuffle, from the last element down.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChallengeRng {
        ChallengeRng::new(Kind::Math, &[1u8; 32], Difficulty::new(3).unwrap())
    }

    #[test]
    fn deterministic_and_separated_by_kind_and_difficulty() {
        let a: Vec<u64> = (0..5).map(|_| rng().next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = rng();
        let x = r.next_u64();
        let d = Difficulty::new(4).unwrap();
        assert_ne!(x, ChallengeRng::new(Kind::Math, &[1u8; 32], d).next_u64());
        let d = Difficulty::new(3).unwrap();
        assert_ne!(x, ChallengeRng::new(Kind::Sat, &[1u8; 32], d).next_u64());
    }

    #[test]
    fn ranges_stay_in_bounds_and_cover() {
        let mut r = rng();
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = r.range(-3, 3);
            assert!((-3..=3).contains(&x));
            seen[(x + 3) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.below(1), 0);
        assert_eq!(r.range(5, 5), 5);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut r = rng();
        let mut v: Vec<u32> = (0..50).collect();
        r.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_ne!(v, s);
    }
}
