//! The protocol's one hash construction (PROTOCOL.md §2).
//!
//! `derive(label, parts) = BLAKE3-derive_key(label, enc(parts))` where
//! `enc(parts)` is each part as `u64 LE length || bytes`, in order. BLAKE3's
//! key-derivation mode gives domain separation by the context string; the
//! length prefixes make the encoding injective. Every hash the protocol uses is
//! an instance of this function with one of the labels below; nothing else is
//! hashed in any other way (the weight fingerprint and the window-file
//! checksum are instances too).
#![forbid(unsafe_code)]

/// Domain labels. Each is a distinct BLAKE3 context string; changing one
/// changes every value derived under it.
pub mod label {
    /// Problem seed (§4.1).
    pub const PROBLEM_SEED: &str = "grail/v1/problem-seed";
    /// Window randomness (§4.2).
    pub const WINDOW_RANDOMNESS: &str = "grail/v1/window-randomness";
    /// Per-rollout sampling seed (§4.3).
    pub const ROLLOUT_SEED: &str = "grail/v1/rollout-seed";
    /// Per-window sketch key (§4.4).
    pub const SKETCH_KEY: &str = "grail/v1/sketch-key";
    /// Challenge randomness (§4.5).
    pub const CHALLENGE_RANDOMNESS: &str = "grail/v1/challenge-randomness";
    /// Per-rollout seed of the opened positions (§7.1).
    pub const CHALLENGE_POSITIONS: &str = "grail/v1/challenge-positions";
    /// Commit root over a rollout's per-token commitments (§6.2).
    pub const COMMIT_ROOT: &str = "grail/v1/commit-root";
    /// Signed commit binding (§6.3).
    pub const COMMIT_BINDING: &str = "grail/v1/commit-binding";
    /// Window-file integrity checksum (§8).
    pub const WINDOW_FILE_CHECKSUM: &str = "grail/v1/window-file-checksum";
    /// Weight fingerprint (§3).
    pub const WEIGHT_FINGERPRINT: &str = "grail/v1/weight-fingerprint";
    /// Random stream of one generated problem (PROTOCOL.md §13).
    pub const CHALLENGE_STREAM: &str = "grail/v1/challenge-stream";
    /// Kind and difficulty assigned to a problem seed (PROTOCOL.md §13).
    pub const CHALLENGE_ASSIGNMENT: &str = "grail/v1/challenge-assignment";
}

/// A 32-byte protocol digest.
pub type Digest = [u8; 32];

/// `derive(label, parts)`: see the module documentation.
///
/// ```
/// use grail_core::hash::{derive, label};
/// // Part boundaries are part of the input: "ab" + "c" differs from "a" + "bc".
/// let a = derive(label::PROBLEM_SEED, &[b"ab", b"c"]);
/// let b = derive(label::PROBLEM_SEED, &[b"a", b"bc"]);
/// assert_ne!(a, b);
/// // Equal to BLAKE3 derive_key over the length-prefixed encoding.
/// let mut enc = Vec::new();
/// for p in [&b"ab"[..], b"c"] {
///     enc.extend_from_slice(&(p.len() as u64).to_le_bytes());
///     enc.extend_from_slice(p);
/// }
/// assert_eq!(a, blake3::derive_key(label::PROBLEM_SEED, &enc));
/// ```
pub fn derive(label: &'static str, parts: &[&[u8]]) -> Digest {
    let mut h = Deriver::new(label);
    for part in parts {
        h.part(part);
    }
    h.finish()
}

/// Incremental form of [`derive()`], for parts that are produced piecewise
/// (a part's length must be known before its bytes are fed).
pub struct Deriver {
    hasher: blake3::Hasher,
}

impl Deriver {
    /// Start a derivation under `label`.
    pub fn new(label: &'static str) -> Self {
        Deriver {
            hasher: blake3::Hasher::new_derive_key(label),
        }
    }

    /// Append one whole part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
        self
    }

    /// Append the length prefix of a part whose `len` bytes follow through
    /// [`Deriver::raw`] calls. The caller must feed exactly `len` bytes.
    pub fn begin_part(&mut self, len: u64) -> &mut Self {
        self.hasher.update(&len.to_le_bytes());
        self
    }

    /// Append bytes of a part opened with [`Deriver::begin_part`].
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.hasher.update(bytes);
        self
    }

    /// The digest.
    pub fn finish(&self) -> Digest {
        *self.hasher.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_boundaries_matter() {
        let a = derive(label::PROBLEM_SEED, &[b"ab", b"c"]);
        let b = derive(label::PROBLEM_SEED, &[b"a", b"bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn labels_separate_domains() {
        let a = derive(label::PROBLEM_SEED, &[b"x"]);
        let b = derive(label::ROLLOUT_SEED, &[b"x"]);
        assert_ne!(a, b);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let one = derive(label::COMMIT_ROOT, &[b"hello", b"", b"world"]);
        let mut d = Deriver::new(label::COMMIT_ROOT);
        d.part(b"hello")
            .begin_part(0)
            .begin_part(5)
            .raw(b"wor")
            .raw(b"ld");
        assert_eq!(one, d.finish());
    }

    #[test]
    fn encoding_is_blake3_derive_key_over_length_prefixed_parts() {
        let mut bytes = Vec::new();
        for p in [&b"ab"[..], b"", b"xyz"] {
            bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
            bytes.extend_from_slice(p);
        }
        let want = blake3::derive_key(label::SKETCH_KEY, &bytes);
        assert_eq!(derive(label::SKETCH_KEY, &[b"ab", b"", b"xyz"]), want);
    }
}
