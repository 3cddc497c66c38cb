//! The window file: all rollouts of one miner for one window (PROTOCOL.md §8).
//!
//! ```text
//! file    = magic "GRAILWIN" | u16 version | header | u32 count | record * count | checksum[32]
//! header  = u16 netuid | u64 window | hotkey[32] | model_fingerprint[32]
//! record  = u32 record_len | body                 (record_len = bytes of body)
//! body    = u32 problem_index | u32 rollout_index | u16 temperature_milli | u32 max_new_tokens
//!         | u32 prompt_len | u32 token * prompt_len
//!         | u32 completion_len | commitment[24] * completion_len
//!         | f64 reward | f64 advantage | signature[64]
//! checksum = derive("grail/v1/window-file-checksum", [every preceding byte])
//! ```
//! All integers and floats little-endian. Records are strictly ascending by
//! `(problem_index, rollout_index)`, so a file's content has one encoding and
//! duplicates cannot exist. Decoding is strict: every length is checked against
//! its cap and against the bytes that remain before anything is allocated,
//! every value against its domain, and trailing bytes are rejected. Every
//! malformed input is a [`WireError`]; decoding never panics.
#![forbid(unsafe_code)]

use crate::commit::{commit_root, CommitBinding, TokenCommitment, COMMITMENT_BYTES};
use crate::hash::{derive, label, Digest};
use crate::params::{
    MAX_COMPLETION_TOKENS, MAX_PROMPT_TOKENS, MAX_ROLLOUTS_PER_FILE, MAX_WINDOW_FILE_BYTES,
    PROTOCOL_VERSION,
};
use crate::sampling::{SamplingError, SamplingParams};

/// First eight bytes of every window file.
pub const MAGIC: [u8; 8] = *b"GRAILWIN";

/// Bytes before the first record: magic, version, header, count.
pub const PREAMBLE_BYTES: usize = 8 + 2 + 2 + 8 + 32 + 32 + 4;

/// Bytes of a record body that do not depend on token counts.
pub const RECORD_FIXED_BYTES: usize = 4 + 4 + 2 + 4 + 4 + 4 + 8 + 8 + 64;

/// Largest record body the caps allow.
pub const MAX_RECORD_BYTES: usize = RECORD_FIXED_BYTES
    + 4 * MAX_PROMPT_TOKENS as usize
    + COMMITMENT_BYTES * MAX_COMPLETION_TOKENS as usize;

/// Bytes of the trailing checksum.
pub const CHECKSUM_BYTES: usize = 32;

/// Who produced the file, for which window, with which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowHeader {
    pub netuid: u16,
    /// First block of the window.
    pub window: u64,
    /// The miner's sr25519 public key.
    pub hotkey: [u8; 32],
    /// Weight fingerprint of the model that generated the rollouts.
    pub model_fingerprint: Digest,
}

/// One signed rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    /// Problem (GRPO group) index within the miner's window.
    pub problem_index: u32,
    /// Index of this rollout within its group.
    pub rollout_index: u32,
    pub sampling: SamplingParams,
    pub prompt: Vec<u32>,
    /// One commitment per completion token, in order.
    pub commitments: Vec<TokenCommitment>,
    pub reward: f64,
    pub advantage: f64,
    /// sr25519 signature of [`RolloutRecord::signed_message`].
    pub signature: [u8; 64],
}

impl RolloutRecord {
    /// The completion tokens (taken from the commitments).
    pub fn completion(&self) -> Vec<u32> {
        self.commitments.iter().map(|c| c.token).collect()
    }

    /// Commit root over the per-token commitments.
    pub fn commit_root(&self) -> Digest {
        commit_root(&self.commitments)
    }

    /// The 32-byte commit-binding message this rollout's signature covers.
    pub fn signed_message(&self, header: &WindowHeader) -> Digest {
        let completion = self.completion();
        CommitBinding {
            netuid: header.netuid,
            window: header.window,
            hotkey: &header.hotkey,
            problem_index: self.problem_index,
            rollout_index: self.rollout_index,
            model_fingerprint: &header.model_fingerprint,
            prompt: &self.prompt,
            completion: &completion,
            commit_root: self.commit_root(),
            sampling: self.sampling,
            reward: self.reward,
            advantage: self.advantage,
        }
        .message()
    }

    fn key(&self) -> (u32, u32) {
        (self.problem_index, self.rollout_index)
    }

    fn body_len(&self) -> usize {
        RECORD_FIXED_BYTES + 4 * self.prompt.len() + COMMITMENT_BYTES * self.commitments.len()
    }
}

/// A decoded window file.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFile {
    pub header: WindowHeader,
    pub rollouts: Vec<RolloutRecord>,
}

/// Everything that can be wrong with window-file bytes (or with a
/// [`WindowFile`] handed to the encoder). `record` is the 0-based record index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("file is {len} bytes, more than the {max}-byte limit")]
    FileTooLarge { len: u64, max: u64 },
    #[error("truncated: {field} needs {need} bytes at offset {offset}, only {have} remain")]
    Truncated {
        field: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("not a grail window file: magic {found:02x?}, expected \"GRAILWIN\"")]
    BadMagic { found: [u8; 8] },
    #[error("unsupported window-file version {found} (this build reads {PROTOCOL_VERSION})")]
    UnsupportedVersion { found: u16 },
    #[error("rollout count {count} exceeds the limit {max}")]
    TooManyRollouts { count: u32, max: u32 },
    #[error("record {record}: declared length {len} outside {min}..={max}")]
    RecordLength {
        record: usize,
        len: u32,
        min: usize,
        max: usize,
    },
    #[error("record {record}: declared length {declared} but its fields take {actual} bytes")]
    RecordLengthMismatch {
        record: usize,
        declared: u32,
        actual: usize,
    },
    #[error("record {record}: prompt length {len} outside 1..={max}")]
    PromptLength { record: usize, len: u32, max: u32 },
    #[error("record {record}: completion length {len} outside 1..={max}")]
    CompletionLength { record: usize, len: u32, max: u32 },
    #[error("record {record}: {len} completion tokens exceed its max_new_tokens {max_new_tokens}")]
    CompletionOverMaxNewTokens {
        record: usize,
        len: u32,
        max_new_tokens: u32,
    },
    #[error("record {record}: {source}")]
    Sampling {
        record: usize,
        source: SamplingError,
    },
    #[error("record {record}, position {position}: logprob {value} is not a finite number <= 0")]
    BadLogprob {
        record: usize,
        position: usize,
        value: f32,
    },
    #[error("record {record}: {field} {value} is not finite")]
    NonFinite {
        record: usize,
        field: &'static str,
        value: f64,
    },
    #[error("record {record}: (problem, rollout) {got:?} does not come after {prev:?}")]
    OutOfOrder {
        record: usize,
        prev: (u32, u32),
        got: (u32, u32),
    },
    #[error("checksum mismatch: stored {stored}, computed {computed}")]
    ChecksumMismatch { stored: String, computed: String },
    #[error("{count} trailing bytes after the checksum")]
    TrailingBytes { count: usize },
}

/// Bounds-checked little-endian reader over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the file, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let have = self.buf.len() - self.pos;
        if n > have {
            return Err(WireError::Truncated {
                field,
                offset: self.base + self.pos,
                need: n,
                have,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn f64(&mut self, field: &'static str) -> Result<f64, WireError> {
        Ok(f64::from_bits(self.u64(field)?))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// Domain checks shared by the encoder and the decoder.
fn check_record(record: usize, r: &RolloutRecord) -> Result<(), WireError> {
    r.sampling
        .validate()
        .map_err(|source| WireError::Sampling { record, source })?;
    let plen = r.prompt.len();
    if plen == 0 || plen > MAX_PROMPT_TOKENS as usize {
        return Err(WireError::PromptLength {
            record,
            len: u32::try_from(plen).unwrap_or(u32::MAX),
            max: MAX_PROMPT_TOKENS,
        });
    }
    let clen = r.commitments.len();
    if clen == 0 || clen > MAX_COMPLETION_TOKENS as usize {
        return Err(WireError::CompletionLength {
            record,
            len: u32::try_from(clen).unwrap_or(u32::MAX),
            max: MAX_COMPLETION_TOKENS,
        });
    }
    if clen as u32 > r.sampling.max_new_tokens {
        return Err(WireError::CompletionOverMaxNewTokens {
            record,
            len: clen as u32,
            max_new_tokens: r.sampling.max_new_tokens,
        });
    }
    for (position, c) in r.commitments.iter().enumerate() {
        if !(c.logprob.is_finite() && c.logprob <= 0.0) {
            return Err(WireError::BadLogprob {
                record,
                position,
                value: c.logprob,
            });
        }
    }
    for (field, value) in [("reward", r.reward), ("advantage", r.advantage)] {
        if !value.is_finite() {
            return Err(WireError::NonFinite {
                record,
                field,
                value,
            });
        }
    }
    Ok(())
}

fn check_order(record: usize, prev: Option<(u32, u32)>, got: (u32, u32)) -> Result<(), WireError> {
    match prev {
        Some(prev) if got <= prev => Err(WireError::OutOfOrder { record, prev, got }),
        _ => Ok(()),
    }
}

fn checksum(bytes: &[u8]) -> Digest {
    derive(label::WINDOW_FILE_CHECKSUM, &[bytes])
}

impl WindowFile {
    /// Encode, after checking everything the decoder checks.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let count = self.rollouts.len();
        if count > MAX_ROLLOUTS_PER_FILE as usize {
            return Err(WireError::TooManyRollouts {
                count: u32::try_from(count).unwrap_or(u32::MAX),
                max: MAX_ROLLOUTS_PER_FILE,
            });
        }
        let mut prev = None;
        let mut total = PREAMBLE_BYTES + CHECKSUM_BYTES;
        for (i, r) in self.rollouts.iter().enumerate() {
            check_record(i, r)?;
            check_order(i, prev, r.key())?;
            prev = Some(r.key());
            total += 4 + r.body_len();
        }
        if total as u64 > MAX_WINDOW_FILE_BYTES {
            return Err(WireError::FileTooLarge {
                len: total as u64,
                max: MAX_WINDOW_FILE_BYTES,
            });
        }
        let mut out = Vec::with_capacity(total);
        let h = &self.header;
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        out.extend_from_slice(&h.netuid.to_le_bytes());
        out.extend_from_slice(&h.window.to_le_bytes());
        out.extend_from_slice(&h.hotkey);
        out.extend_from_slice(&h.model_fingerprint);
        out.extend_from_slice(&(count as u32).to_le_bytes());
        for r in &self.rollouts {
            out.extend_from_slice(&(r.body_len() as u32).to_le_bytes());
            out.extend_from_slice(&r.problem_index.to_le_bytes());
            out.extend_from_slice(&r.rollout_index.to_le_bytes());
            out.extend_from_slice(&r.sampling.to_bytes());
            out.extend_from_slice(&(r.prompt.len() as u32).to_le_bytes());
            for t in &r.prompt {
                out.extend_from_slice(&t.to_le_bytes());
            }
            out.extend_from_slice(&(r.commitments.len() as u32).to_le_bytes());
            for c in &r.commitments {
                out.extend_from_slice(&c.to_bytes());
            }
            out.extend_from_slice(&r.reward.to_bits().to_le_bytes());
            out.extend_from_slice(&r.advantage.to_bits().to_le_bytes());
            out.extend_from_slice(&r.signature);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// Decode untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<WindowFile, WireError> {
        if bytes.len() as u64 > MAX_WINDOW_FILE_BYTES {
            return Err(WireError::FileTooLarge {
                len: bytes.len() as u64,
                max: MAX_WINDOW_FILE_BYTES,
            });
        }
        let mut r = Reader {
            buf: bytes,
            pos: 0,
            base: 0,
        };
        let magic: [u8; 8] = r.array("magic")?;
        if magic != MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
        let version = r.u16("version")?;
        if version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion { found: version });
        }
        let header = WindowHeader {
            netuid: r.u16("netuid")?,
            window: r.u64("window")?,
            hotkey: r.array("hotkey")?,
            model_fingerprint: r.array("model_fingerprint")?,
        };
        let count = r.u32("rollout_count")?;
        if count > MAX_ROLLOUTS_PER_FILE {
            return Err(WireError::TooManyRollouts {
                count,
                max: MAX_ROLLOUTS_PER_FILE,
            });
        }
        // Never reserve more records than the remaining bytes could hold.
        let fit = r.remaining() / (4 + RECORD_FIXED_BYTES + 4 + COMMITMENT_BYTES);
        let mut rollouts = Vec::with_capacity((count as usize).min(fit));
        let mut prev = None;
        for record in 0..count as usize {
            let len = r.u32("record_len")?;
            let min = RECORD_FIXED_BYTES + 4 + COMMITMENT_BYTES;
            if (len as usize) < min || len as usize > MAX_RECORD_BYTES {
                return Err(WireError::RecordLength {
                    record,
                    len,
                    min,
                    max: MAX_RECORD_BYTES,
                });
            }
            let base = r.pos;
            let body = r.take(len as usize, "record")?;
            let rec = decode_record(record, body, base, len)?;
            check_record(record, &rec)?;
            check_order(record, prev, rec.key())?;
            prev = Some(rec.key());
            rollouts.push(rec);
        }
        let end = r.pos;
        let stored: [u8; CHECKSUM_BYTES] = r.array("checksum")?;
        if r.remaining() != 0 {
            return Err(WireError::TrailingBytes {
                count: r.remaining(),
            });
        }
        let computed = checksum(&bytes[..end]);
        if stored != computed {
            return Err(WireError::ChecksumMismatch {
                stored: hex::encode(stored),
                computed: hex::encode(computed),
            });
        }
        Ok(WindowFile { header, rollouts })
    }
}

/// Decode one record body (exactly `declared` bytes).
fn decode_record(
    record: usize,
    body: &[u8],
    base: usize,
    declared: u32,
) -> Result<RolloutRecord, WireError> {
    let mut r = Reader {
        buf: body,
        pos: 0,
        base,
    };
    let problem_index = r.u32("problem_index")?;
    let rollout_index = r.u32("rollout_index")?;
    let sampling = SamplingParams {
        temperature_milli: r.u16("temperature_milli")?,
        max_new_tokens: r.u32("max_new_tokens")?,
    };
    let plen = r.u32("prompt_len")?;
    if plen == 0 || plen > MAX_PROMPT_TOKENS {
        return Err(WireError::PromptLength {
            record,
            len: plen,
            max: MAX_PROMPT_TOKENS,
        });
    }
    let prompt = r
        .take(4 * plen as usize, "prompt tokens")?
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let clen = r.u32("completion_len")?;
    if clen == 0 || clen > MAX_COMPLETION_TOKENS {
        return Err(WireError::CompletionLength {
            record,
            len: clen,
            max: MAX_COMPLETION_TOKENS,
        });
    }
    let commitments = r
        .take(COMMITMENT_BYTES * clen as usize, "commitments")?
        .chunks_exact(COMMITMENT_BYTES)
        .map(|b| {
            let mut a = [0u8; COMMITMENT_BYTES];
            a.copy_from_slice(b);
            TokenCommitment::from_bytes(&a)
        })
        .collect();
    let reward = r.f64("reward")?;
    let advantage = r.f64("advantage")?;
    let signature = r.array("signature")?;
    if r.remaining() != 0 {
        return Err(WireError::RecordLengthMismatch {
            record,
            declared,
            actual: r.pos,
        });
    }
    Ok(RolloutRecord {
        problem_index,
        rollout_index,
        sampling,
        prompt,
        commitments,
        reward,
        advantage,
        signature,
    })
}
