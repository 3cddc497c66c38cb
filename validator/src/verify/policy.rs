//! Validator policy (PROTOCOL.md §15): which miners and groups a validator
//! checks in a window, and the thresholds of the checks that are not part of
//! the miner's commitments. Deterministic in the window's challenge
//! randomness, so every validator checks the same sample.
use grail_core::hash::{derive, Digest};

/// Domain label of the per-miner group sample.
pub const LABEL_PROOF_GROUPS: &str = "grail/v1/validator-proof-groups";
/// Domain label of the miner sample.
pub const LABEL_MINER_SAMPLE: &str = "grail/v1/validator-miner-sample";

/// Share of a miner's groups whose every rollout gets the proof check (one
/// prefill of the model), rounded up. The cheap checks (signature, problem,
/// tokens, reward) run on every rollout. A miner fabricating a fraction `f`
/// of its groups passes a window with probability about `(1 - f)^g` for `g`
/// proof-checked groups, and one failed window zeroes it for
/// `FAILURE_LOOKBACK_WINDOWS`.
pub const PROOF_GROUP_FRACTION: f64 = 0.125;
/// At least this many groups are proof-checked (all of them when fewer).
pub const PROOF_MIN_GROUPS: u32 = 4;
/// At most this many groups per miner and window are proof-checked: bounds a
/// validator's work per miner.
pub const PROOF_MAX_GROUPS: u32 = 16;
/// At most this many miners are checked per window; beyond it a sample
/// drawn from the challenge randomness is (the others are "not sampled",
/// which neither helps nor hurts them).
pub const MAX_MINERS_PER_WINDOW: usize = 64;
/// A final end-of-sequence token must have had at least this probability
/// at its position (§15): an honest rollout ends on a rarer EOS at a rate
/// below the sum of those probabilities over its positions.
pub const MIN_EOS_PROBABILITY: f64 = 1e-5;
/// Completions shorter than this are not compared across miners (short
/// answers can coincide honestly).
pub const COPYCAT_MIN_TOKENS: usize = 8;
/// Two miners are copycats when they share more than this many completions...
pub const COPYCAT_MIN_SHARED: u32 = 2;
/// ...and the shared ones are more than this fraction of either miner's
/// distinct completions.
pub const COPYCAT_FRACTION: f64 = 0.05;

/// How many of `groups` groups get the proof check.
pub fn proof_group_count(groups: u32) -> u32 {
    let by_fraction = (f64::from(groups) * PROOF_GROUP_FRACTION).ceil() as u32;
    by_fraction
        .clamp(PROOF_MIN_GROUPS, PROOF_MAX_GROUPS)
        .min(groups)
}

/// Rank of `item` in a random order keyed by the challenge randomness.
fn rank(
    label: &'static str,
    challenge_randomness: &Digest,
    hotkey: &[u8; 32],
    item: u32,
) -> Digest {
    derive(label, &[challenge_randomness, hotkey, &item.to_le_bytes()])
}

/// The problem indices of a miner's file that get the proof check:
/// [`proof_group_count`] of them, the smallest ranks, ascending.
pub fn proof_groups(challenge_randomness: &Digest, hotkey: &[u8; 32], groups: u32) -> Vec<u32> {
    let k = proof_group_count(groups) as usize;
    let mut ranked: Vec<(Digest, u32)> = (0..groups)
        .map(|g| (rank(LABEL_PROOF_GROUPS, challenge_randomness, hotkey, g), g))
        .collect();
    ranked.sort_unstable();
    let mut chosen: Vec<u32> = ranked.into_iter().take(k).map(|(_, g)| g).collect();
    chosen.sort_unstable();
    chosen
}

/// The miners (of those with a file) checked this window: all of them up to
/// [`MAX_MINERS_PER_WINDOW`], else that many by rank.
pub fn sampled_miners(challenge_randomness: &Digest, hotkeys: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut ranked: Vec<(Digest, [u8; 32])> = hotkeys
        .iter()
        .map(|h| (rank(LABEL_MINER_SAMPLE, challenge_randomness, h, 0), *h))
        .collect();
    ranked.sort_unstable();
    ranked
        .into_iter()
        .take(MAX_MINERS_PER_WINDOW)
        .map(|(_, h)| h)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_counts() {
        assert_eq!(proof_group_count(0), 0);
        assert_eq!(proof_group_count(3), 3);
        assert_eq!(proof_group_count(4), 4);
        assert_eq!(proof_group_count(40), 5);
        assert_eq!(proof_group_count(4096), PROOF_MAX_GROUPS);
    }

    #[test]
    fn groups_are_a_keyed_sample() {
        let a = proof_groups(&[1; 32], &[2; 32], 100);
        assert_eq!(a.len(), 13);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|&g| g < 100));
        assert_eq!(a, proof_groups(&[1; 32], &[2; 32], 100));
        assert_ne!(a, proof_groups(&[3; 32], &[2; 32], 100));
        assert_ne!(a, proof_groups(&[1; 32], &[4; 32], 100));
        assert_eq!(proof_groups(&[1; 32], &[2; 32], 3), vec![0, 1, 2]);
    }

    #[test]
    fn miner_sample_caps() {
        let many: Vec<[u8; 32]> = (0..100u8).map(|i| [i; 32]).collect();
        let s = sampled_miners(&[7; 32], &many);
        assert_eq!(s.len(), MAX_MINERS_PER_WINDOW);
        assert_ne!(s, sampled_miners(&[8; 32], &many));
        assert_eq!(sampled_miners(&[7; 32], &many[..3]).len(), 3);
    }
}
