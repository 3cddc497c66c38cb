//! Windows, deadlines and which drand round feeds which randomness
//! (PROTOCOL.md §4).
//!
//! A window is `WINDOW_LENGTH` consecutive blocks, named by its first block
//! number `w` (a multiple of `WINDOW_LENGTH`). For window `w`:
//!
//! | input                       | from                                                        |
//! |-----------------------------|-------------------------------------------------------------|
//! | problem seeds               | hash of block `w`                                           |
//! | sampling seeds, sketch key  | hash of block `w` + drand round [`generation_round`]        |
//! | upload deadline             | timestamp of block `w + WINDOW_LENGTH`                      |
//! | challenge randomness        | hash of block `w + WINDOW_LENGTH` + drand [`challenge_round`] |
//!
//! Timestamps are the chain's own (`Timestamp.Now` of that block, in ms), so
//! every validator derives the same rounds without trusting a local clock.
#![forbid(unsafe_code)]

use crate::params::{CHALLENGE_REVEAL_DELAY_SECS, WINDOW_LENGTH};

/// The window (its first block) that contains `block`.
///
/// ```
/// use grail_core::window::{deadline_block, window_start};
/// assert_eq!(window_start(4_000_017), 3_999_990);
/// assert_eq!(deadline_block(3_999_990), 4_000_020);
/// ```
pub fn window_start(block: u64) -> u64 {
    block - block % WINDOW_LENGTH
}

/// Whether `block` names a window (is a multiple of `WINDOW_LENGTH`).
pub fn is_window_start(block: u64) -> bool {
    block.is_multiple_of(WINDOW_LENGTH)
}

/// The block whose timestamp is window `w`'s upload deadline and whose hash
/// feeds its challenge randomness: the first block of the next window.
pub fn deadline_block(window: u64) -> u64 {
    window + WINDOW_LENGTH
}

/// Public timing of a drand chain (genesis in unix seconds, period in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrandSchedule {
    pub genesis_time: u64,
    pub period: u64,
}

impl DrandSchedule {
    /// The latest round published at unix time `t` (0 before genesis):
    /// `floor((t - genesis) / period) + 1`.
    pub fn round_at(&self, t: u64) -> u64 {
        if t < self.genesis_time || self.period == 0 {
            return 0;
        }
        (t - self.genesis_time) / self.period + 1
    }

    /// Unix time at which `round` (>= 1) is published:
    /// `genesis + (round - 1) * period`. Round 0 does not exist; it maps to
    /// genesis. Saturates instead of overflowing for absurd rounds.
    pub fn time_of(&self, round: u64) -> u64 {
        self.genesis_time
            .saturating_add(round.saturating_sub(1).saturating_mul(self.period))
    }

    /// The first round published strictly after unix time `t_ms / 1000`.
    pub fn first_round_after_ms(&self, t_ms: u64) -> u64 {
        let t = t_ms / 1000;
        if t < self.genesis_time {
            return 1;
        }
        self.round_at(t) + 1
    }
}

/// The drand round whose randomness, with the hash of block `w`, makes window
/// `w`'s randomness: the first round published strictly after block `w`'s
/// timestamp. Neither the block's author nor anyone else knew it when block
/// `w` was made, so the pair cannot be ground together.
pub fn generation_round(schedule: &DrandSchedule, window_block_timestamp_ms: u64) -> u64 {
    schedule.first_round_after_ms(window_block_timestamp_ms)
}

/// The drand round that opens window `w`'s positions: the first round
/// published strictly after the deadline block's timestamp plus
/// [`CHALLENGE_REVEAL_DELAY_SECS`]. It does not exist before the deadline, so
/// no miner can know which positions will be opened while it can still upload.
pub fn challenge_round(schedule: &DrandSchedule, deadline_block_timestamp_ms: u64) -> u64 {
    schedule.first_round_after_ms(
        deadline_block_timestamp_ms.saturating_add(CHALLENGE_REVEAL_DELAY_SECS * 1000),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICKNET: DrandSchedule = DrandSchedule {
        genesis_time: 1_692_803_367,
        period: 3,
    };

    #[test]
    fn windows() {
        assert_eq!(window_start(0), 0);
        assert_eq!(window_start(29), 0);
        assert_eq!(window_start(30), 30);
        assert_eq!(window_start(4_000_017), 3_999_990);
        assert!(is_window_start(60) && !is_window_start(61));
        assert_eq!(deadline_block(60), 90);
    }

    #[test]
    fn rounds() {
        assert_eq!(QUICKNET.round_at(QUICKNET.genesis_time - 1), 0);
        assert_eq!(QUICKNET.round_at(QUICKNET.genesis_time), 1);
        assert_eq!(QUICKNET.round_at(QUICKNET.genesis_time + 2), 1);
        assert_eq!(QUICKNET.round_at(QUICKNET.genesis_time + 3), 2);
        assert_eq!(QUICKNET.time_of(1), QUICKNET.genesis_time);
        assert_eq!(QUICKNET.time_of(2), QUICKNET.genesis_time + 3);
        for t in QUICKNET.genesis_time..QUICKNET.genesis_time + 50 {
            let r = QUICKNET.round_at(t);
            assert!(QUICKNET.time_of(r) <= t && t < QUICKNET.time_of(r + 1));
        }
    }

    #[test]
    fn generation_round_is_published_strictly_after_the_block() {
        for ms in (QUICKNET.genesis_time * 1000..QUICKNET.genesis_time * 1000 + 20_000).step_by(250)
        {
            let r = generation_round(&QUICKNET, ms);
            assert!(QUICKNET.time_of(r) * 1000 > ms, "round {r} at {ms}");
            // and it is the first such round
            assert!(r == 1 || QUICKNET.time_of(r - 1) * 1000 <= ms);
        }
    }

    #[test]
    fn challenge_round_is_after_the_deadline_plus_delay() {
        let deadline_ms = 1_700_000_000_500;
        let r = challenge_round(&QUICKNET, deadline_ms);
        assert!(QUICKNET.time_of(r) * 1000 > deadline_ms + CHALLENGE_REVEAL_DELAY_SECS * 1000);
        assert!(QUICKNET.time_of(r - 1) * 1000 <= deadline_ms + CHALLENGE_REVEAL_DELAY_SECS * 1000);
    }
}
