//! Shared builders for grail integration tests: valid window files with
//! pseudo-random but well-formed content, and helpers to edit their bytes.
#[cfg(feature = "s3-server")]
pub mod s3;
pub mod vectors;

use grail_core::commit::TokenCommitment;
use grail_core::hash::Digest;
use grail_core::sampling::SamplingParams;
use grail_core::sketch::Sketch;
use grail_core::wire::{RolloutRecord, WindowFile, WindowHeader, CHECKSUM_BYTES, PREAMBLE_BYTES};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Absolute path of a file under the repository's `tests/` directory.
pub fn tests_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A valid window file: `groups` problems of `per_group` rollouts each, with
/// small random prompts and completions, every record signed by `sign`.
pub fn sample_file(
    seed: u64,
    groups: u32,
    per_group: u32,
    hotkey: [u8; 32],
    sign: &dyn Fn(&Digest) -> [u8; 64],
) -> WindowFile {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let header = WindowHeader {
        netuid: 81,
        window: 3_000_000 + 30 * (seed % 100),
        hotkey,
        model_fingerprint: {
            let mut f = [0u8; 32];
            rng.fill_bytes(&mut f);
            f
        },
    };
    let mut rollouts = Vec::new();
    for problem_index in 0..groups {
        let plen = 3 + (rng.next_u32() % 20) as usize;
        let prompt: Vec<u32> = (0..plen).map(|_| rng.next_u32() % 50_000).collect();
        for rollout_index in 0..per_group {
            let clen = 1 + (rng.next_u32() % 40) as usize;
            let commitments = (0..clen)
                .map(|_| {
                    let mut s = [0u8; 16];
                    rng.fill_bytes(&mut s);
                    TokenCommitment {
                        token: rng.next_u32() % 50_000,
                        logprob: -((rng.next_u32() % 10_000) as f32) / 1000.0,
                        sketch: Sketch(s),
                    }
                })
                .collect();
            let mut rec = RolloutRecord {
                problem_index,
                rollout_index,
                sampling: SamplingParams {
                    temperature_milli: 1000,
                    max_new_tokens: 64,
                },
                prompt: prompt.clone(),
                commitments,
                reward: f64::from(rng.next_u32() % 3) * 0.5,
                advantage: (f64::from(rng.next_u32() % 2001) - 1000.0) / 1000.0,
                signature: [0u8; 64],
            };
            rec.signature = sign(&rec.signed_message(&header));
            rollouts.push(rec);
        }
    }
    WindowFile { header, rollouts }
}

/// A signer that produces a fixed, invalid signature (for wire-only tests).
pub fn no_signature(_: &Digest) -> [u8; 64] {
    [0xA5; 64]
}

/// Recompute the trailing checksum of (possibly edited) window-file bytes, so
/// that a test reaches the structural checks behind it.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < CHECKSUM_BYTES {
        return;
    }
    let end = bytes.len() - CHECKSUM_BYTES;
    let sum = grail_core::hash::derive(
        grail_core::hash::label::WINDOW_FILE_CHECKSUM,
        &[&bytes[..end]],
    );
    bytes[end..].copy_from_slice(&sum);
}

/// Byte offsets of every length field in an encoded file (rollout count, then
/// for each record: record_len, prompt_len, completion_len).
pub fn length_field_offsets(file: &WindowFile) -> Vec<usize> {
    let mut offs = vec![PREAMBLE_BYTES - 4];
    let mut pos = PREAMBLE_BYTES;
    for r in &file.rollouts {
        offs.push(pos); // record_len
        let prompt_len = pos + 4 + 4 + 4 + 6;
        offs.push(prompt_len);
        let completion_len = prompt_len + 4 + 4 * r.prompt.len();
        offs.push(completion_len);
        pos = completion_len + 4 + 24 * r.commitments.len() + 8 + 8 + 64;
    }
    offs
}
