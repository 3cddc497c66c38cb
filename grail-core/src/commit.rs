//! Per-token commitments, the commit root and the signed commit binding
//! (PROTOCOL.md §6).
#![forbid(unsafe_code)]

use crate::hash::{derive, label, Deriver, Digest};
use crate::params::PROTOCOL_VERSION;
use crate::sampling::SamplingParams;
use crate::sketch::Sketch;

/// Bytes of one encoded [`TokenCommitment`].
pub const COMMITMENT_BYTES: usize = 24;

/// What a miner commits for completion position `t`: the sampled token, its
/// logprob under the temperature softmax, and the sketch of the final hidden
/// state that produced the token's logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenCommitment {
    pub token: u32,
    pub logprob: f32,
    pub sketch: Sketch,
}

impl TokenCommitment {
    /// `u32 LE token || f32 LE logprob (IEEE bits) || 16 sketch bytes`.
    pub fn to_bytes(&self) -> [u8; COMMITMENT_BYTES] {
        let mut b = [0u8; COMMITMENT_BYTES];
        b[..4].copy_from_slice(&self.token.to_le_bytes());
        b[4..8].copy_from_slice(&self.logprob.to_bits().to_le_bytes());
        b[8..].copy_from_slice(&self.sketch.0);
        b
    }

    /// Inverse of [`TokenCommitment::to_bytes`] (no value checks).
    pub fn from_bytes(b: &[u8; COMMITMENT_BYTES]) -> Self {
        let mut sketch = [0u8; 16];
        sketch.copy_from_slice(&b[8..]);
        TokenCommitment {
            token: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            logprob: f32::from_bits(u32::from_le_bytes([b[4], b[5], b[6], b[7]])),
            sketch: Sketch(sketch),
        }
    }
}

/// Commit root: `derive(COMMIT_ROOT, [concat of encoded commitments])`.
pub fn commit_root(commitments: &[TokenCommitment]) -> Digest {
    let mut d = Deriver::new(label::COMMIT_ROOT);
    d.begin_part((commitments.len() * COMMITMENT_BYTES) as u64);
    for c in commitments {
        d.raw(&c.to_bytes());
    }
    d.finish()
}

/// Everything a rollout's signature covers (§6.3).
#[derive(Debug, Clone, PartialEq)]
pub struct CommitBinding<'a> {
    pub netuid: u16,
    pub window: u64,
    pub hotkey: &'a [u8; 32],
    pub problem_index: u32,
    pub rollout_index: u32,
    pub model_fingerprint: &'a Digest,
    pub prompt: &'a [u32],
    pub completion: &'a [u32],
    pub commit_root: Digest,
    pub sampling: SamplingParams,
    pub reward: f64,
    pub advantage: f64,
}

fn tokens_part(d: &mut Deriver, tokens: &[u32]) {
    d.begin_part(4 * tokens.len() as u64);
    for t in tokens {
        d.raw(&t.to_le_bytes());
    }
}

impl CommitBinding<'_> {
    /// The 32-byte message that is signed:
    /// `derive(COMMIT_BINDING, [u16 version, u16 netuid, u64 window, hotkey,
    /// u32 problem, u32 rollout, fingerprint, prompt u32s, completion u32s,
    /// commit root, sampling params, f64 reward, f64 advantage])`, all LE.
    pub fn message(&self) -> Digest {
        let mut d = Deriver::new(label::COMMIT_BINDING);
        d.part(&PROTOCOL_VERSION.to_le_bytes())
            .part(&self.netuid.to_le_bytes())
            .part(&self.window.to_le_bytes())
            .part(self.hotkey)
            .part(&self.problem_index.to_le_bytes())
            .part(&self.rollout_index.to_le_bytes())
            .part(self.model_fingerprint);
        tokens_part(&mut d, self.prompt);
        tokens_part(&mut d, self.completion);
        d.part(&self.commit_root)
            .part(&self.sampling.to_bytes())
            .part(&self.reward.to_bits().to_le_bytes())
            .part(&self.advantage.to_bits().to_le_bytes());
        d.finish()
    }
}

/// [`commit_root`] of commitments already encoded back to back.
pub fn commit_root_of_bytes(encoded: &[u8]) -> Digest {
    derive(label::COMMIT_ROOT, &[encoded])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commitments() -> Vec<TokenCommitment> {
        (0..5)
            .map(|i| TokenCommitment {
                token: 100 + i,
                logprob: -0.5 * i as f32,
                sketch: Sketch([i as u8; 16]),
            })
            .collect()
    }

    #[test]
    fn commitment_round_trip() {
        for c in commitments() {
            assert_eq!(TokenCommitment::from_bytes(&c.to_bytes()), c);
        }
    }

    #[test]
    fn root_is_over_the_encoded_list() {
        let cs = commitments();
        let bytes: Vec<u8> = cs.iter().flat_map(|c| c.to_bytes()).collect();
        assert_eq!(commit_root(&cs), commit_root_of_bytes(&bytes));
        let mut other = cs.clone();
        other[4].logprob = -2.0000002;
        assert_ne!(commit_root(&cs), commit_root(&other));
        assert_ne!(commit_root(&cs), commit_root(&cs[..4]));
    }

    #[test]
    fn every_binding_field_changes_the_message() {
        let hk = [1u8; 32];
        let fp = [2u8; 32];
        let prompt = [1u32, 2, 3];
        let completion = [4u32, 5];
        let base = CommitBinding {
            netuid: 81,
            window: 300,
            hotkey: &hk,
            problem_index: 2,
            rollout_index: 3,
            model_fingerprint: &fp,
            prompt: &prompt,
            completion: &completion,
            commit_root: [3u8; 32],
            sampling: SamplingParams {
                temperature_milli: 1000,
                max_new_tokens: 64,
            },
            reward: 1.0,
            advantage: 0.5,
        };
        let m = base.message();
        let hk2 = [9u8; 32];
        let fp2 = [9u8; 32];
        let prompt2 = [1u32, 2];
        let completion2 = [3u32, 4, 5];
        let variants = [
            CommitBinding {
                netuid: 82,
                ..base.clone()
            },
            CommitBinding {
                window: 330,
                ..base.clone()
            },
            CommitBinding {
                hotkey: &hk2,
                ..base.clone()
            },
            CommitBinding {
                problem_index: 3,
                ..base.clone()
            },
            CommitBinding {
                rollout_index: 4,
                ..base.clone()
            },
            CommitBinding {
                model_fingerprint: &fp2,
                ..base.clone()
            },
            // moving a token from prompt to completion must change the message
            CommitBinding {
                prompt: &prompt2,
                completion: &completion2,
                ..base.clone()
            },
            CommitBinding {
                commit_root: [4u8; 32],
                ..base.clone()
            },
            CommitBinding {
                sampling: SamplingParams {
                    temperature_milli: 999,
                    max_new_tokens: 64,
                },
                ..base.clone()
            },
            CommitBinding {
                reward: 0.0,
                ..base.clone()
            },
            CommitBinding {
                advantage: -0.5,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.message(), m, "{v:?}");
        }
        assert_eq!(base.clone().message(), m);
    }
}
