//! Seeds and per-window randomness (PROTOCOL.md §4). Every value here is one
//! [`derive()`] call; the inputs are public chain and drand values, never
//! anything a miner chooses.
#![forbid(unsafe_code)]

use crate::hash::{derive, label, Digest};

/// Seed of problem `problem_index` for `hotkey` in the window whose first
/// block has hash `window_block_hash` (§4.1). Problems are per miner, so
/// copying another miner's rollouts does not answer one's own problems.
pub fn problem_seed(
    netuid: u16,
    hotkey: &[u8; 32],
    window_block_hash: &Digest,
    problem_index: u32,
) -> Digest {
    derive(
        label::PROBLEM_SEED,
        &[
            &netuid.to_le_bytes(),
            hotkey,
            window_block_hash,
            &problem_index.to_le_bytes(),
        ],
    )
}

/// The window's randomness (§4.2): block `w`'s hash together with the
/// randomness of drand round [`crate::window::generation_round`].
pub fn window_randomness(window_block_hash: &Digest, drand_randomness: &Digest) -> Digest {
    derive(
        label::WINDOW_RANDOMNESS,
        &[window_block_hash, drand_randomness],
    )
}

/// Sampling seed of one rollout (§4.3): fixes every uniform `u_t` of that
/// rollout, so a miner cannot re-roll or cherry-pick samples.
pub fn rollout_seed(
    window_randomness: &Digest,
    hotkey: &[u8; 32],
    problem_index: u32,
    rollout_index: u32,
) -> Digest {
    derive(
        label::ROLLOUT_SEED,
        &[
            window_randomness,
            hotkey,
            &problem_index.to_le_bytes(),
            &rollout_index.to_le_bytes(),
        ],
    )
}

/// Key of the window's sketch hyperplanes (§4.4).
pub fn sketch_key(window_randomness: &Digest) -> Digest {
    derive(label::SKETCH_KEY, &[window_randomness])
}

/// Challenge randomness of a window (§4.5): the deadline block's hash with
/// the randomness of drand round [`crate::window::challenge_round`], which is
/// published only after the upload deadline.
pub fn challenge_randomness(deadline_block_hash: &Digest, drand_randomness: &Digest) -> Digest {
    derive(
        label::CHALLENGE_RANDOMNESS,
        &[deadline_block_hash, drand_randomness],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_seed() {
        let hk = [7u8; 32];
        let bh = [9u8; 32];
        let base = problem_seed(81, &hk, &bh, 3);
        assert_ne!(base, problem_seed(82, &hk, &bh, 3));
        assert_ne!(base, problem_seed(81, &[8u8; 32], &bh, 3));
        assert_ne!(base, problem_seed(81, &hk, &[1u8; 32], 3));
        assert_ne!(base, problem_seed(81, &hk, &bh, 4));

        let wr = window_randomness(&bh, &[1u8; 32]);
        let r = rollout_seed(&wr, &hk, 0, 0);
        assert_ne!(r, rollout_seed(&wr, &hk, 0, 1));
        assert_ne!(r, rollout_seed(&wr, &hk, 1, 0));
        assert_ne!(
            r,
            rollout_seed(&window_randomness(&bh, &[2u8; 32]), &hk, 0, 0)
        );
        assert_ne!(sketch_key(&wr), wr);
        assert_ne!(challenge_randomness(&bh, &[1u8; 32]), wr);
    }
}
