//! Model weight fingerprint: the pure construction (no I/O).
//!
//! A model is identified by a 32-byte [`Fingerprint`] of its weights, printed
//! as 64 lowercase hex digits. [`fingerprint`] computes it from in-memory
//! tensor descriptions ([`TensorEntry`]); reading safetensors files and
//! model directories lives in [`crate::tensors`].
//!
//! The fingerprint depends on each tensor's name, dtype label, shape and data
//! bytes, and on nothing else: not on the order of tensors in a file, not on
//! how tensors are split into shard files, not on safetensors header padding
//! or `__metadata__`.
#![forbid(unsafe_code)]

use std::fmt;

use rayon::prelude::*;

use crate::params::PROTOCOL_VERSION;

/// BLAKE3 `derive_key` context of the weight fingerprint. Changing it changes
/// every model's fingerprint, so miners and validators on different values
/// disagree on which model is in use. Tied to [`PROTOCOL_VERSION`] 1.
pub const FINGERPRINT_CONTEXT: &str = crate::hash::label::WEIGHT_FINGERPRINT;

const _: () = assert!(PROTOCOL_VERSION == 1, "re-check FINGERPRINT_CONTEXT");

/// Length of a fingerprint in bytes.
pub const FINGERPRINT_LEN: usize = 32;

/// Tensors at least this large are hashed with BLAKE3's multi-threaded
/// `update_rayon`; smaller ones with the single-threaded `update`. Not
/// consensus-critical: both give the same hash, this only tunes speed.
pub const PARALLEL_HASH_MIN_BYTES: usize = 1 << 20;

/// Errors of the pure fingerprint construction and of fingerprint parsing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Two entries share a name; a model cannot hold two tensors of one name.
    #[error("duplicate tensor name {name:?}")]
    DuplicateTensor { name: String },
    /// A shape whose number of dimensions does not fit the `u32` ndim field.
    #[error("tensor {name:?} has {ndim} dimensions, more than the fingerprint encodes (u32)")]
    TooManyDims { name: String, ndim: usize },
    /// A fingerprint string that is not exactly 64 characters.
    #[error("fingerprint hex must be 64 characters, got {len}")]
    HexLength { len: usize },
    /// A fingerprint string with a character other than `0-9a-f`.
    #[error("fingerprint hex has {found:?} at position {pos}; only lowercase 0-9a-f are allowed")]
    HexChar { pos: usize, found: char },
}

/// One tensor as the fingerprint sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TensorEntry<'a> {
    /// The tensor's name, exactly as the safetensors header key.
    pub name: &'a str,
    /// The safetensors dtype string exactly as in the header (`"F32"`,
    /// `"BF16"`, ...). [`crate::tensors::dtype_label`] maps a parsed dtype.
    pub dtype: &'a str,
    /// The shape, outermost dimension first.
    pub shape: &'a [usize],
    /// The tensor's data bytes exactly as stored (little-endian, row-major).
    pub data: &'a [u8],
}

impl fmt::Debug for TensorEntry<'_> {
    /// Prints the data length, not the (possibly gigabytes of) data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorEntry")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("nbytes", &self.data.len())
            .finish()
    }
}

/// A model weight fingerprint (see [`fingerprint`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl Fingerprint {
    /// The 64-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 64-character lowercase hex form. Uppercase digits are
    /// rejected so that each fingerprint has exactly one text form.
    pub fn from_hex(s: &str) -> Result<Self, FingerprintError> {
        if let Some((pos, found)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(FingerprintError::HexChar { pos, found });
        }
        // All characters are ASCII now, so bytes and characters agree.
        let digits = s.as_bytes();
        if digits.len() != 2 * FINGERPRINT_LEN {
            return Err(FingerprintError::HexLength { len: digits.len() });
        }
        let nibble = |d: u8| match d {
            b'0'..=b'9' => d - b'0',
            _ => d - b'a' + 10,
        };
        let mut out = [0u8; FINGERPRINT_LEN];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Computes the weight fingerprint of a set of tensors.
///
/// Construction (grail protocol v1):
///
/// 1. For each tensor, `data_hash = BLAKE3(data)`: the plain 32-byte BLAKE3
///    hash of the tensor's data bytes exactly as stored in the safetensors
///    file (little-endian, row-major, no conversion).
/// 2. Tensors are sorted by name, byte-wise: lexicographic order of the
///    names' UTF-8 bytes. Two tensors with the same name are an error.
/// 3. `fingerprint = BLAKE3-derive_key("grail/v1/weight-fingerprint", M)`
///    (BLAKE3 key-derivation mode with that context string) where `M` is
///    `u64_le(tensor_count)` followed, for each tensor in name order, by the
///    record
///
///    ```text
///    u64_le(len(name)) || name (UTF-8 bytes)
///    || u64_le(len(dtype)) || dtype (ASCII)
///    || u32_le(ndim) || u64_le(dim_0) || ... || u64_le(dim_{ndim-1})
///    || u64_le(nbytes) || data_hash (32 bytes)
///    ```
///
///    where `dtype` is the safetensors dtype string exactly as in the file
///    header (`"F32"`, `"BF16"`, `"F16"`, `"I64"`, ...), the shape lists the
///    outermost dimension first, and `nbytes = len(data)`.
///
/// The result does not depend on the order of `entries`, on which file or
/// shard a tensor came from, nor on any safetensors header content other
/// than names, dtypes and shapes (`__metadata__` and padding are ignored).
/// Every data byte enters a hash, so changing any weight byte changes the
/// fingerprint.
///
/// Hashing runs in parallel on the rayon global pool, across tensors and,
/// for tensors of at least [`PARALLEL_HASH_MIN_BYTES`], within a tensor; the
/// value is the same as a sequential computation.
pub fn fingerprint<'a, I>(entries: I) -> Result<Fingerprint, FingerprintError>
where
    I: IntoIterator<Item = TensorEntry<'a>>,
{
    let mut entries: Vec<TensorEntry<'a>> = entries.into_iter().collect();
    // `str` orders by its UTF-8 bytes, which is the normative order.
    entries.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if let Some(pair) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(FingerprintError::DuplicateTensor {
            name: pair[0].name.to_owned(),
        });
    }
    let mut ndims = Vec::with_capacity(entries.len());
    for e in &entries {
        let ndim = u32::try_from(e.shape.len()).map_err(|_| FingerprintError::TooManyDims {
            name: e.name.to_owned(),
            ndim: e.shape.len(),
        })?;
        ndims.push(ndim);
    }

    let data_hashes: Vec<[u8; 32]> = entries.par_iter().map(|e| data_hash(e.data)).collect();

    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    h.update(&(entries.len() as u64).to_le_bytes());
    for ((e, ndim), data_hash) in entries.iter().zip(&ndims).zip(&data_hashes) {
        h.update(&(e.name.len() as u64).to_le_bytes());
        h.update(e.name.as_bytes());
        h.update(&(e.dtype.len() as u64).to_le_bytes());
        h.update(e.dtype.as_bytes());
        h.update(&ndim.to_le_bytes());
        for &dim in e.shape {
            h.update(&(dim as u64).to_le_bytes());
        }
        h.update(&(e.data.len() as u64).to_le_bytes());
        h.update(data_hash);
    }
    Ok(Fingerprint(*h.finalize().as_bytes()))
}

/// `BLAKE3(data)`, multi-threaded for large inputs.
fn data_hash(data: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    if data.len() >= PARALLEL_HASH_MIN_BYTES {
        h.update_rayon(data);
    } else {
        h.update(data);
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(
        name: &'a str,
        dtype: &'a str,
        shape: &'a [usize],
        data: &'a [u8],
    ) -> TensorEntry<'a> {
        TensorEntry {
            name,
            dtype,
            shape,
            data,
        }
    }

    /// The construction written out by hand, byte by byte, for two tensors.
    #[test]
    fn fingerprint_matches_hand_built_message() {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let b = [9u8; 6];
        let got = fingerprint([
            entry("b.weight", "F16", &[3], &b),
            entry("a", "F32", &[2, 1], &a),
        ])
        .unwrap();

        let mut m = Vec::new();
        m.extend_from_slice(&2u64.to_le_bytes());
        // "a" sorts before "b.weight".
        m.extend_from_slice(&1u64.to_le_bytes());
        m.extend_from_slice(b"a");
        m.extend_from_slice(&3u64.to_le_bytes());
        m.extend_from_slice(b"F32");
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&2u64.to_le_bytes());
        m.extend_from_slice(&1u64.to_le_bytes());
        m.extend_from_slice(&8u64.to_le_bytes());
        m.extend_from_slice(blake3::hash(&a).as_bytes());
        m.extend_from_slice(&8u64.to_le_bytes());
        m.extend_from_slice(b"b.weight");
        m.extend_from_slice(&3u64.to_le_bytes());
        m.extend_from_slice(b"F16");
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&3u64.to_le_bytes());
        m.extend_from_slice(&6u64.to_le_bytes());
        m.extend_from_slice(blake3::hash(&b).as_bytes());
        let want = blake3::derive_key(FINGERPRINT_CONTEXT, &m);
        assert_eq!(got.0, want);
    }

    #[test]
    fn fingerprint_of_no_tensors_is_defined() {
        let want = blake3::derive_key(FINGERPRINT_CONTEXT, &0u64.to_le_bytes());
        assert_eq!(fingerprint([]).unwrap().0, want);
    }

    #[test]
    fn fingerprint_sorts_by_bytes_not_by_char_or_case() {
        // Byte order: "B" (0x42) < "a" (0x61) < "\u{e9}" (0xc3 0xa9).
        let d = [0u8; 4];
        let names = ["\u{e9}", "a", "B"];
        let fwd = fingerprint(names.iter().map(|n| entry(n, "F32", &[1], &d))).unwrap();
        let rev = fingerprint(names.iter().rev().map(|n| entry(n, "F32", &[1], &d))).unwrap();
        assert_eq!(fwd, rev);
    }

    #[test]
    fn fingerprint_large_tensor_uses_same_hash_as_sequential() {
        let big: Vec<u8> = (0..3 * PARALLEL_HASH_MIN_BYTES + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        assert_eq!(data_hash(&big), *blake3::hash(&big).as_bytes());
    }

    #[test]
    fn fingerprint_changes_with_name_dtype_shape_and_data() {
        let d = [7u8; 8];
        let base = fingerprint([entry("w", "F32", &[2], &d)]).unwrap();
        let mut d2 = d;
        d2[5] ^= 1;
        for other in [
            entry("v", "F32", &[2], &d),
            entry("w", "I32", &[2], &d),
            entry("w", "F32", &[2, 1], &d),
            entry("w", "F32", &[1, 2], &d),
            entry("w", "F32", &[2], &d2),
        ] {
            assert_ne!(fingerprint([other]).unwrap(), base, "{other:?}");
        }
    }

    #[test]
    fn fingerprint_rejects_duplicate_names() {
        let d = [0u8; 2];
        let err = fingerprint([
            entry("x", "F16", &[1], &d),
            entry("y", "F16", &[1], &d),
            entry("x", "BF16", &[1], &d),
        ])
        .unwrap_err();
        assert!(
            matches!(err, FingerprintError::DuplicateTensor { ref name } if name == "x"),
            "{err}"
        );
    }

    #[test]
    fn fingerprint_hex_round_trip() {
        let fp = Fingerprint(core::array::from_fn(|i| (i * 9) as u8));
        let s = fp.to_hex();
        assert_eq!(s.len(), 64);
        assert_eq!(s, fp.to_string());
        assert_eq!(Fingerprint::from_hex(&s).unwrap(), fp);
        assert!(format!("{fp:?}").contains(&s));
    }

    #[test]
    fn fingerprint_from_hex_rejects_bad_input() {
        let good = "ab".repeat(32);
        assert!(matches!(
            Fingerprint::from_hex(&good[..62]),
            Err(FingerprintError::HexLength { len: 62 })
        ));
        assert!(matches!(
            Fingerprint::from_hex(&format!("{good}00")),
            Err(FingerprintError::HexLength { len: 66 })
        ));
        let upper = good.to_uppercase();
        assert!(matches!(
            Fingerprint::from_hex(&upper),
            Err(FingerprintError::HexChar { pos: 0, found: 'A' })
        ));
        let mut bad = good.clone();
        bad.replace_range(10..11, "g");
        assert!(matches!(
            Fingerprint::from_hex(&bad),
            Err(FingerprintError::HexChar {
                pos: 10,
                found: 'g'
            })
        ));
        // 64 bytes but not 64 characters: no panic on a char boundary.
        let multibyte = format!("{}\u{e9}", &good[..62]);
        assert!(matches!(
            Fingerprint::from_hex(&multibyte),
            Err(FingerprintError::HexChar { pos: 62, .. })
        ));
    }
}
