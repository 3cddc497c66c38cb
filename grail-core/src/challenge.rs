//! Which completion positions a validator opens (PROTOCOL.md §7.1).
//!
//! Seed `s = derive(CHALLENGE_POSITIONS, [challenge_randomness, commit_root])`;
//! a ChaCha20 keystream keyed by `s` yields u64 words `x` (8 keystream bytes,
//! little-endian, in order). With `n` completion positions, a word is rejected
//! if `x >= n * floor((2^64 - 1) / n)` (no modulo bias), else it proposes position
//! `x mod n`; proposals already drawn are skipped, until `k` distinct
//! positions exist. They are returned in ascending order. When `n <= k` every
//! position is opened.
#![forbid(unsafe_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::hash::{derive, label, Digest};

/// The positions to open for a rollout with `n` completion tokens.
pub fn challenge_positions(
    challenge_randomness: &Digest,
    commit_root: &Digest,
    n: u32,
    k: usize,
) -> Vec<u32> {
    if n as usize <= k {
        return (0..n).collect();
    }
    let seed = derive(
        label::CHALLENGE_POSITIONS,
        &[challenge_randomness, commit_root],
    );
    let mut rng = ChaCha20Rng::from_seed(seed);
    let n64 = u64::from(n);
    // A multiple of n: accepting only x < limit leaves every residue equally likely.
    let limit = u64::MAX / n64 * n64;
    let mut chosen = Vec::with_capacity(k);
    while chosen.len() < k {
        let x = rng.next_u64();
        if x >= limit {
            continue;
        }
        let p = (x % n64) as u32;
        if !chosen.contains(&p) {
            chosen.push(p);
        }
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_sorted_in_range() {
        for n in [33u32, 40, 64, 100, 1000, 8192] {
            let p = challenge_positions(&[1u8; 32], &[2u8; 32], n, 32);
            assert_eq!(p.len(), 32);
            assert!(p.windows(2).all(|w| w[0] < w[1]));
            assert!(p.iter().all(|&x| x < n));
        }
    }

    #[test]
    fn short_completions_open_everything() {
        assert_eq!(
            challenge_positions(&[1u8; 32], &[2u8; 32], 5, 32),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            challenge_positions(&[1u8; 32], &[2u8; 32], 32, 32).len(),
            32
        );
        assert!(challenge_positions(&[1u8; 32], &[2u8; 32], 0, 32).is_empty());
    }

    #[test]
    fn depends_on_randomness_and_root() {
        let a = challenge_positions(&[1u8; 32], &[2u8; 32], 1000, 32);
        assert_ne!(a, challenge_positions(&[3u8; 32], &[2u8; 32], 1000, 32));
        assert_ne!(a, challenge_positions(&[1u8; 32], &[3u8; 32], 1000, 32));
    }

    #[test]
    fn roughly_uniform() {
        // 2000 draws of 8 positions out of 80: each position ~200 times
        let mut counts = [0u32; 80];
        for i in 0..2000u32 {
            let mut r = [0u8; 32];
            r[..4].copy_from_slice(&i.to_le_bytes());
            for p in challenge_positions(&r, &[0u8; 32], 80, 8) {
                counts[p as usize] += 1;
            }
        }
        assert!(
            counts.iter().all(|&c| (140..270).contains(&c)),
            "{counts:?}"
        );
    }
}
