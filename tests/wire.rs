//! Window-file format: round trips, one test per `WireError` variant, and a
//! mutation property test over 100,000 corrupted files.
use grail_core::params::{
    MAX_COMPLETION_TOKENS, MAX_PROMPT_TOKENS, MAX_ROLLOUTS_PER_FILE, MAX_WINDOW_FILE_BYTES,
};
use grail_core::wire::{WindowFile, WireError, MAX_RECORD_BYTES, PREAMBLE_BYTES};
use grail_tests::{length_field_offsets, no_signature, reseal, sample_file};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn valid() -> (WindowFile, Vec<u8>) {
    let f = sample_file(1, 3, 2, [7u8; 32], &no_signature);
    let bytes = f.encode().unwrap();
    (f, bytes)
}

/// Start offset (the record_len field) of each record.
fn record_starts(f: &WindowFile) -> Vec<usize> {
    length_field_offsets(f)
        .iter()
        .skip(1)
        .step_by(3)
        .copied()
        .collect()
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Decode `bytes` after an edit, with the checksum recomputed.
fn decode_resealed(mut bytes: Vec<u8>) -> Result<WindowFile, WireError> {
    reseal(&mut bytes);
    WindowFile::decode(&bytes)
}

#[test]
fn round_trip() {
    for seed in 0..20 {
        let f = sample_file(
            seed,
            1 + (seed % 5) as u32,
            1 + (seed % 4) as u32,
            [3u8; 32],
            &no_signature,
        );
        let bytes = f.encode().unwrap();
        let back = WindowFile::decode(&bytes).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.encode().unwrap(), bytes);
    }
}

#[test]
fn empty_file_round_trip() {
    let mut f = sample_file(0, 1, 1, [3u8; 32], &no_signature);
    f.rollouts.clear();
    let bytes = f.encode().unwrap();
    assert_eq!(bytes.len(), PREAMBLE_BYTES + 32);
    assert_eq!(WindowFile::decode(&bytes).unwrap(), f);
}

#[test]
fn file_too_large() {
    let big = vec![0u8; MAX_WINDOW_FILE_BYTES as usize + 1];
    assert!(matches!(
        WindowFile::decode(&big),
        Err(WireError::FileTooLarge { .. })
    ));
}

#[test]
fn truncated_everywhere() {
    let (_, bytes) = valid();
    for len in 0..bytes.len() {
        match WindowFile::decode(&bytes[..len]) {
            Err(WireError::Truncated { need, have, .. }) => assert!(need > have),
            other => panic!("length {len}: {other:?}"),
        }
    }
}

#[test]
fn bad_magic() {
    let (_, mut bytes) = valid();
    bytes[0] = b'X';
    assert!(matches!(
        decode_resealed(bytes),
        Err(WireError::BadMagic { found }) if &found == b"XRAILWIN"
    ));
}

#[test]
fn unsupported_version() {
    let (_, mut bytes) = valid();
    bytes[8] = 2;
    assert_eq!(
        decode_resealed(bytes).unwrap_err(),
        WireError::UnsupportedVersion { found: 2 }
    );
}

#[test]
fn too_many_rollouts() {
    let (_, mut bytes) = valid();
    put_u32(&mut bytes, PREAMBLE_BYTES - 4, MAX_ROLLOUTS_PER_FILE + 1);
    assert!(matches!(
        decode_resealed(bytes),
        Err(WireError::TooManyRollouts { .. })
    ));
}

#[test]
fn huge_count_with_few_bytes_is_an_error_not_an_allocation() {
    // After the real records the decoder reads the checksum as a record
    // length; either way it stops at the bytes that exist.
    let (_, mut bytes) = valid();
    put_u32(&mut bytes, PREAMBLE_BYTES - 4, MAX_ROLLOUTS_PER_FILE);
    assert!(matches!(
        decode_resealed(bytes),
        Err(WireError::Truncated { .. } | WireError::RecordLength { record: 6, .. })
    ));
}

#[test]
fn record_length_out_of_bounds() {
    let (f, bytes) = valid();
    let at = record_starts(&f)[1];
    for bad in [0u32, 10, MAX_RECORD_BYTES as u32 + 1, u32::MAX] {
        let mut b = bytes.clone();
        put_u32(&mut b, at, bad);
        assert!(
            matches!(decode_resealed(b), Err(WireError::RecordLength { record: 1, len, .. }) if len == bad),
            "{bad}"
        );
    }
}

#[test]
fn record_length_mismatch() {
    let (f, bytes) = valid();
    let at = record_starts(&f)[0];
    let len = get_u32(&bytes, at);
    // declare one byte more and insert a byte at the end of the body
    let mut b = bytes.clone();
    put_u32(&mut b, at, len + 1);
    b.insert(at + 4 + len as usize, 0);
    assert_eq!(
        decode_resealed(b).unwrap_err(),
        WireError::RecordLengthMismatch {
            record: 0,
            declared: len + 1,
            actual: len as usize
        }
    );
    // declare one byte less: the body's last field is cut short
    let mut b = bytes;
    put_u32(&mut b, at, len - 1);
    b.remove(at + 4 + len as usize - 1);
    assert!(matches!(
        decode_resealed(b),
        Err(WireError::Truncated {
            field: "signature",
            ..
        })
    ));
}

#[test]
fn prompt_length() {
    let (f, bytes) = valid();
    let at = length_field_offsets(&f)[2];
    for bad in [0, MAX_PROMPT_TOKENS + 1] {
        let mut b = bytes.clone();
        put_u32(&mut b, at, bad);
        assert!(matches!(
            decode_resealed(b),
            Err(WireError::PromptLength { record: 0, len, .. }) if len == bad
        ));
    }
}

#[test]
fn completion_length() {
    let (f, bytes) = valid();
    let at = length_field_offsets(&f)[3];
    for bad in [0, MAX_COMPLETION_TOKENS + 1] {
        let mut b = bytes.clone();
        put_u32(&mut b, at, bad);
        assert!(matches!(
            decode_resealed(b),
            Err(WireError::CompletionLength { record: 0, len, .. }) if len == bad
        ));
    }
}

#[test]
fn completion_over_max_new_tokens() {
    let (mut f, _) = valid();
    let n = f.rollouts[0].commitments.len() as u32;
    f.rollouts[0].sampling.max_new_tokens = n - 1;
    if n > 1 {
        assert!(matches!(
            f.encode(),
            Err(WireError::CompletionOverMaxNewTokens { record: 0, .. })
        ));
    }
    // the same through the decoder: edit max_new_tokens in place
    let (f, bytes) = valid();
    let n = f.rollouts[1].commitments.len() as u32;
    let mut b = bytes;
    put_u32(&mut b, record_starts(&f)[1] + 4 + 4 + 4 + 2, n - 1);
    if n > 1 {
        assert!(matches!(
            decode_resealed(b),
            Err(WireError::CompletionOverMaxNewTokens { record: 1, .. })
        ));
    } else {
        assert!(matches!(
            decode_resealed(b),
            Err(WireError::Sampling { record: 1, .. })
        ));
    }
}

#[test]
fn sampling_parameters() {
    let (f, bytes) = valid();
    let at = record_starts(&f)[0] + 4 + 4 + 4;
    let mut b = bytes;
    b[at..at + 2].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        decode_resealed(b),
        Err(WireError::Sampling { record: 0, .. })
    ));
}

#[test]
fn bad_logprob() {
    let (f, bytes) = valid();
    let first_commitment = length_field_offsets(&f)[3] + 4;
    for bad in [f32::NAN, f32::INFINITY, 0.5] {
        let mut b = bytes.clone();
        b[first_commitment + 4..first_commitment + 8].copy_from_slice(&bad.to_le_bytes());
        assert!(matches!(
            decode_resealed(b),
            Err(WireError::BadLogprob {
                record: 0,
                position: 0,
                ..
            })
        ));
    }
}

#[test]
fn non_finite_reward_and_advantage() {
    let (mut f, _) = valid();
    f.rollouts[0].reward = f64::NAN;
    assert!(matches!(
        f.encode(),
        Err(WireError::NonFinite {
            record: 0,
            field: "reward",
            ..
        })
    ));
    let (f, bytes) = valid();
    let r = &f.rollouts[0];
    let reward_at = length_field_offsets(&f)[3] + 4 + 24 * r.commitments.len();
    let mut b = bytes;
    b[reward_at + 8..reward_at + 16].copy_from_slice(&f64::INFINITY.to_le_bytes());
    assert!(matches!(
        decode_resealed(b),
        Err(WireError::NonFinite {
            record: 0,
            field: "advantage",
            ..
        })
    ));
}

#[test]
fn out_of_order_and_duplicates() {
    let (mut f, _) = valid();
    f.rollouts.swap(0, 1);
    assert!(matches!(
        f.encode(),
        Err(WireError::OutOfOrder { record: 1, .. })
    ));
    // a duplicate (problem, rollout) written through the decoder
    let (f, bytes) = valid();
    let at = record_starts(&f)[1] + 4 + 4; // rollout_index of record 1 (0, 1) -> (0, 0)
    let mut b = bytes;
    put_u32(&mut b, at, 0);
    assert_eq!(
        decode_resealed(b).unwrap_err(),
        WireError::OutOfOrder {
            record: 1,
            prev: (0, 0),
            got: (0, 0)
        }
    );
}

#[test]
fn checksum_mismatch() {
    let (_, mut bytes) = valid();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    // a flipped byte anywhere in a record's signature is caught only by the checksum
    let (f, bytes2) = valid();
    let sig_at = record_starts(&f)[1] - 1;
    let mut b2 = bytes2;
    b2[sig_at] ^= 0x80;
    assert!(matches!(
        WindowFile::decode(&b2),
        Err(WireError::ChecksumMismatch { .. })
    ));
    assert!(WindowFile::decode(&bytes).is_err());
}

#[test]
fn trailing_bytes() {
    let (_, mut bytes) = valid();
    bytes.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        WindowFile::decode(&bytes).unwrap_err(),
        WireError::TrailingBytes { count: 3 }
    );
}

/// 100,000 random mutations of valid files: bit flips, truncations, length
/// field edits, insertions and deletions; half of them with the checksum
/// recomputed so the structural checks behind it are reached. The decoder
/// must return (never panic), and anything it accepts must re-encode to the
/// same bytes.
#[test]
fn mutation_property() {
    let originals: Vec<(WindowFile, Vec<u8>)> = (0..8)
        .map(|s| {
            let f = sample_file(
                100 + s,
                1 + (s % 3) as u32,
                1 + (s % 2) as u32,
                [9u8; 32],
                &no_signature,
            );
            let b = f.encode().unwrap();
            (f, b)
        })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(0x0067_7261_696c);
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    let start = std::time::Instant::now();
    const N: u32 = 100_000;
    for i in 0..N {
        let (f, orig) = &originals[(rng.next_u32() % 8) as usize];
        let mut b = orig.clone();
        let lens = length_field_offsets(f);
        match rng.next_u32() % 6 {
            0 | 1 => {
                for _ in 0..1 + rng.next_u32() % 4 {
                    let at = (rng.next_u32() as usize) % b.len();
                    b[at] ^= 1 << (rng.next_u32() % 8);
                }
            }
            2 => b.truncate((rng.next_u32() as usize) % b.len()),
            3 => {
                let at = lens[(rng.next_u32() as usize) % lens.len()];
                let v = get_u32(&b, at);
                let new = match rng.next_u32() % 6 {
                    0 => 0,
                    1 => u32::MAX,
                    2 => v.wrapping_add(1),
                    3 => v.wrapping_sub(1),
                    4 => v.wrapping_mul(2),
                    _ => rng.next_u32(),
                };
                put_u32(&mut b, at, new);
            }
            4 => {
                let at = (rng.next_u32() as usize) % (b.len() + 1);
                b.insert(at, rng.next_u32() as u8);
            }
            _ => {
                let at = (rng.next_u32() as usize) % b.len();
                b.remove(at);
            }
        }
        if rng.next_u32() % 2 == 0 {
            reseal(&mut b);
        }
        let result = std::panic::catch_unwind(|| WindowFile::decode(&b));
        let result = match result {
            Ok(r) => r,
            Err(_) => panic!("decoder panicked on mutation {i}: {}", hex_of(&b)),
        };
        let key = match &result {
            Ok(decoded) => {
                assert_eq!(
                    &decoded.encode().unwrap(),
                    &b,
                    "accepted bytes are not canonical"
                );
                "Ok".to_string()
            }
            Err(e) => format!("{e:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let elapsed = start.elapsed();
    eprintln!("{N} mutations in {elapsed:?}: {outcomes:?}");
    // The test must exercise the decoder's checks, not only the checksum.
    for variant in [
        "Truncated",
        "ChecksumMismatch",
        "RecordLength",
        "PromptLength",
        "CompletionLength",
        "BadMagic",
        "TrailingBytes",
    ] {
        assert!(
            outcomes.get(variant).copied().unwrap_or(0) > 50,
            "{variant} reached too rarely: {outcomes:?}"
        );
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
