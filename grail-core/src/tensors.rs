//! Reading model weights from safetensors files: the model directory layout,
//! memory-mapped tensor access, and the weight fingerprint of a directory.
//!
//! A model directory holds either
//!
//! * `model.safetensors.index.json` (Hugging Face sharded layout): the shard
//!   files are the distinct values of its `weight_map`; every tensor in the
//!   shards must be a key of `weight_map`, every key must be a tensor of the
//!   shard the map names, and no tensor may appear in two shards; or
//! * `model.safetensors` (single file), used only when there is no index.
//!
//! If the index exists it alone decides which files are read, even when a
//! `model.safetensors` sits beside it. Any other `*.safetensors` file in the
//! directory (an unreferenced shard, a stray checkpoint) is ignored and does
//! not enter the fingerprint.
//!
//! Files are memory-mapped, never copied: [`ModelFiles`] owns the maps and
//! hands out [`TensorView`]s that borrow from them. The files must not be
//! modified or truncated while a [`ModelFiles`] is alive (see
//! [`ModelFiles::open`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::SafeTensors;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::fingerprint::{self, Fingerprint, FingerprintError, TensorEntry};

pub use safetensors::{Dtype, SafeTensorError};

/// Name of the single-file checkpoint in a model directory.
pub const SINGLE_FILE: &str = "model.safetensors";

/// Name of the shard index of a sharded checkpoint in a model directory.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Largest `model.safetensors.index.json` read, in bytes. Real indexes are
/// well under 1 MiB; the cap keeps a hostile index from exhausting memory.
pub const MAX_INDEX_BYTES: u64 = 64 << 20;

/// Errors reading a model directory. Every variant names the file, and the
/// tensor where one is involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TensorsError {
    /// The model directory path exists but is not a directory.
    #[error("model path {dir} is not a directory")]
    NotADirectory { dir: PathBuf },
    /// Neither an index nor a single-file checkpoint in the directory.
    #[error("no {INDEX_FILE} and no {SINGLE_FILE} in model directory {dir}")]
    NoModelFiles { dir: PathBuf },
    /// A file or directory could not be read (missing, permissions, I/O).
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The index names a shard file that does not exist.
    #[error("{index} names shard {shard}, which does not exist")]
    MissingShard { index: PathBuf, shard: PathBuf },
    /// The index file is larger than [`MAX_INDEX_BYTES`].
    #[error("{path} is {len} bytes, more than the {max} allowed for an index")]
    IndexTooLarge { path: PathBuf, len: u64, max: u64 },
    /// The index is not JSON of the expected form.
    #[error("{path} is not a valid safetensors index")]
    IndexJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The index `weight_map` lists one tensor twice.
    #[error("{path} lists tensor {tensor:?} more than once in weight_map")]
    IndexDuplicateTensor { path: PathBuf, tensor: String },
    /// A `weight_map` value that is not a plain file name in the directory.
    #[error("{path} maps tensor {tensor:?} to {shard:?}, which is not a plain file name")]
    IndexBadShardName {
        path: PathBuf,
        tensor: String,
        shard: String,
    },
    /// A safetensors file that is corrupt, truncated or inconsistent.
    #[error("{path} is not a valid safetensors file")]
    Safetensors {
        path: PathBuf,
        #[source]
        source: SafeTensorError,
    },
    /// A safetensors header with the same key twice (the `safetensors` crate
    /// would silently keep the last one).
    #[error("{path} has tensor {tensor:?} more than once in its header")]
    HeaderDuplicateTensor { path: PathBuf, tensor: String },
    /// A dtype this protocol version has no label for (see [`dtype_label`]).
    #[error("tensor {tensor:?} in {path} has unsupported dtype {dtype}")]
    UnknownDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },
    /// One tensor name in two shard files.
    #[error("tensor {tensor:?} appears in both {first} and {second}")]
    DuplicateTensor {
        tensor: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A tensor in a shard that the index does not list.
    #[error("tensor {tensor:?} in {file} is not listed in {index}")]
    TensorNotInIndex {
        tensor: String,
        file: PathBuf,
        index: PathBuf,
    },
    /// A tensor the index lists that is not in the shard it names.
    #[error("tensor {tensor:?} listed in {index} is missing from {file}")]
    TensorMissingFromShard {
        tensor: String,
        file: PathBuf,
        index: PathBuf,
    },
    /// A tensor found in a different shard from the one the index names.
    #[error("tensor {tensor:?} is in {file} but {index} places it in {expected}")]
    TensorInWrongShard {
        tensor: String,
        file: PathBuf,
        expected: PathBuf,
        index: PathBuf,
    },
    /// The fingerprint construction rejected the tensors.
    #[error("cannot fingerprint model directory {dir}")]
    Fingerprint {
        dir: PathBuf,
        #[source]
        source: FingerprintError,
    },
}

impl TensorsError {
    /// True when the files were read and found invalid (corrupt safetensors,
    /// inconsistent index, ...); false when something could not be read at
    /// all (missing directory or file, I/O error). Tools map the first to
    /// exit code 1 and the second to exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            TensorsError::NotADirectory { .. }
            | TensorsError::NoModelFiles { .. }
            | TensorsError::Io { .. }
            | TensorsError::MissingShard { .. } => false,
            TensorsError::IndexTooLarge { .. }
            | TensorsError::IndexJson { .. }
            | TensorsError::IndexDuplicateTensor { .. }
            | TensorsError::IndexBadShardName { .. }
            | TensorsError::Safetensors { .. }
            | TensorsError::HeaderDuplicateTensor { .. }
            | TensorsError::UnknownDtype { .. }
            | TensorsError::DuplicateTensor { .. }
            | TensorsError::TensorNotInIndex { .. }
            | TensorsError::TensorMissingFromShard { .. }
            | TensorsError::TensorInWrongShard { .. }
            | TensorsError::Fingerprint { .. } => true,
        }
    }
}

/// The dtype label that enters the fingerprint: the safetensors header
/// string of `dtype`, or `None` for a dtype this protocol version does not
/// know (a future safetensors release may add some).
///
/// Spelled out here rather than taken from `Dtype`'s `Debug` or `Display`
/// output so that a dependency update cannot change fingerprints.
pub fn dtype_label(dtype: Dtype) -> Option<&'static str> {
    Some(match dtype {
        Dtype::BOOL => "BOOL",
        Dtype::F4 => "F4",
        Dtype::F6_E2M3 => "F6_E2M3",
        Dtype::F6_E3M2 => "F6_E3M2",
        Dtype::U8 => "U8",
        Dtype::I8 => "I8",
        Dtype::F8_E5M2 => "F8_E5M2",
        Dtype::F8_E4M3 => "F8_E4M3",
        Dtype::F8_E8M0 => "F8_E8M0",
        Dtype::F8_E4M3FNUZ => "F8_E4M3FNUZ",
        Dtype::F8_E5M2FNUZ => "F8_E5M2FNUZ",
        Dtype::I16 => "I16",
        Dtype::U16 => "U16",
        Dtype::F16 => "F16",
        Dtype::BF16 => "BF16",
        Dtype::I32 => "I32",
        Dtype::U32 => "U32",
        Dtype::F32 => "F32",
        Dtype::C64 => "C64",
        Dtype::F64 => "F64",
        Dtype::I64 => "I64",
        Dtype::U64 => "U64",
        _ => return None,
    })
}

/// One tensor of a [`ModelFiles`], borrowing its bytes from the file map.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    /// The tensor's name (the safetensors header key).
    pub name: &'a str,
    /// The element type.
    pub dtype: Dtype,
    /// The header's dtype string ([`dtype_label`] of `dtype`).
    pub dtype_label: &'static str,
    /// The shape, outermost dimension first.
    pub shape: &'a [usize],
    /// The data bytes exactly as stored: little-endian, row-major. Not
    /// necessarily aligned for `dtype`; copy or check alignment before
    /// reinterpreting.
    pub data: &'a [u8],
    /// The file the tensor was read from.
    pub file: &'a Path,
}

impl<'a> TensorView<'a> {
    /// The tensor as the fingerprint construction sees it.
    pub fn entry(&self) -> TensorEntry<'a> {
        TensorEntry {
            name: self.name,
            dtype: self.dtype_label,
            shape: self.shape,
            data: self.data,
        }
    }
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name)
            .field("dtype", &self.dtype_label)
            .field("shape", &self.shape)
            .field("nbytes", &self.data.len())
            .field("file", &self.file)
            .finish()
    }
}

/// The safetensors files of a model directory, memory-mapped and checked.
///
/// Opening parses every header, checks the index against the shards, and
/// keeps the maps; tensor data is only touched when read.
pub struct ModelFiles {
    dir: PathBuf,
    index: Option<PathBuf>,
    shards: Vec<Shard>,
    /// Sorted by name, byte-wise.
    tensors: Vec<TensorRecord>,
}

struct Shard {
    path: PathBuf,
    map: Mmap,
}

struct TensorRecord {
    name: String,
    dtype: Dtype,
    dtype_label: &'static str,
    shape: Vec<usize>,
    shard: usize,
    /// Byte range in the shard's map (header included in the offsets).
    bytes: Range<usize>,
}

impl fmt::Debug for ModelFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelFiles")
            .field("dir", &self.dir)
            .field("index", &self.index)
            .field(
                "files",
                &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl ModelFiles {
    /// Opens the model in `dir` (layout in the [module docs](self)).
    ///
    /// The files are memory-mapped: they must not be modified or truncated
    /// until the returned value is dropped. Truncating a mapped file makes
    /// reads of the lost pages fault (SIGBUS) and rewriting it in place
    /// changes bytes that were already checked. Tools that replace model
    /// files should write a new file and rename it over the old one, which
    /// leaves existing maps intact.
    pub fn open(dir: &Path) -> Result<Self, TensorsError> {
        let meta = std::fs::metadata(dir).map_err(|source| TensorsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(TensorsError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let index_path = dir.join(INDEX_FILE);
        if exists(&index_path)? {
            Self::open_sharded(dir, index_path)
        } else {
            let path = dir.join(SINGLE_FILE);
            if !exists(&path)? {
                return Err(TensorsError::NoModelFiles {
                    dir: dir.to_path_buf(),
                });
            }
            let map = map_file(&path, None)?;
            let shard = Shard { path, map };
            // `read_header` rejects a name twice in one header.
            let mut tensors = read_header(&shard, 0)?;
            tensors.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            Ok(ModelFiles {
                dir: dir.to_path_buf(),
                index: None,
                shards: vec![shard],
                tensors,
            })
        }
    }

    fn open_sharded(dir: &Path, index_path: PathBuf) -> Result<Self, TensorsError> {
        let weight_map = read_index(&index_path)?;
        let shard_names: BTreeSet<&str> = weight_map.values().map(String::as_str).collect();

        let mut shards: Vec<Shard> = Vec::with_capacity(shard_names.len());
        let mut by_name: BTreeMap<String, TensorRecord> = BTreeMap::new();
        for (i, shard_name) in shard_names.iter().enumerate() {
            let path = dir.join(shard_name);
            let map = map_file(&path, Some(&index_path))?;
            let shard = Shard { path, map };
            let mut records = read_header(&shard, i)?;
            records.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            for record in records {
                if let Some(first) = by_name.get(&record.name) {
                    return Err(TensorsError::DuplicateTensor {
                        tensor: record.name,
                        // `read_header` rejects a name twice in one header, so
                        // the first sighting is in an earlier, pushed shard.
                        first: shards[first.shard].path.clone(),
                        second: shard.path.clone(),
                    });
                }
                by_name.insert(record.name.clone(), record);
            }
            shards.push(shard);
        }

        for (name, record) in &by_name {
            let file = &shards[record.shard].path;
            match weight_map.get(name) {
                None => {
                    return Err(TensorsError::TensorNotInIndex {
                        tensor: name.clone(),
                        file: file.clone(),
                        index: index_path,
                    })
                }
                Some(expected) if dir.join(expected) != *file => {
                    return Err(TensorsError::TensorInWrongShard {
                        tensor: name.clone(),
                        file: file.clone(),
                        expected: dir.join(expected),
                        index: index_path,
                    })
                }
                Some(_) => {}
            }
        }
        for (name, shard_name) in &weight_map {
            if !by_name.contains_key(name) {
                return Err(TensorsError::TensorMissingFromShard {
                    tensor: name.clone(),
                    file: dir.join(shard_name),
                    index: index_path,
                });
            }
        }

        Ok(ModelFiles {
            dir: dir.to_path_buf(),
            index: Some(index_path),
            shards,
            // BTreeMap iterates in byte-wise key order.
            tensors: by_name.into_values().collect(),
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index file, for a sharded checkpoint.
    pub fn index(&self) -> Option<&Path> {
        self.index.as_deref()
    }

    /// The safetensors files read, in file-name order.
    pub fn files(&self) -> impl ExactSizeIterator<Item = &Path> + '_ {
        self.shards.iter().map(|s| s.path.as_path())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the model has no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total size of all tensor data, in bytes.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes.len() as u64).sum()
    }

    /// All tensors, sorted by name byte-wise.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorView<'_>> + '_ {
        self.tensors.iter().map(|t| self.view(t))
    }

    /// The tensor called `name`, if the model has one.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.tensor_index(name).map(|i| self.tensor_at(i))
    }

    /// Position of the tensor called `name` in [`ModelFiles::tensors`]'s
    /// order, for later access through [`ModelFiles::tensor_at`] without a
    /// name lookup (the inference engine keeps these instead of borrowing
    /// views).
    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensors
            .binary_search_by(|t| t.name.as_bytes().cmp(name.as_bytes()))
            .ok()
    }

    /// The tensor at `index` of [`ModelFiles::tensors`]'s order.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn tensor_at(&self, index: usize) -> TensorView<'_> {
        self.view(&self.tensors[index])
    }

    /// The weight fingerprint of the model ([`fingerprint::fingerprint`]
    /// over all tensors).
    pub fn fingerprint(&self) -> Result<Fingerprint, TensorsError> {
        fingerprint::fingerprint(self.tensors().map(|t| t.entry())).map_err(|source| {
            TensorsError::Fingerprint {
                dir: self.dir.clone(),
                source,
            }
        })
    }

    fn view<'a>(&'a self, t: &'a TensorRecord) -> TensorView<'a> {
        let shard = &self.shards[t.shard];
        TensorView {
            name: &t.name,
            dtype: t.dtype,
            dtype_label: t.dtype_label,
            shape: &t.shape,
            data: &shard.map[t.bytes.clone()],
            file: &shard.path,
        }
    }
}

/// The weight fingerprint of the model in `dir`: [`ModelFiles::open`] then
/// [`ModelFiles::fingerprint`]. The files must not change while it runs.
///
/// Which tensors enter the fingerprint (grail protocol v1; the construction
/// itself is [`fingerprint::fingerprint`]):
///
/// * If `dir/model.safetensors.index.json` exists, the model is the union of
///   the tensors of the shard files named by the distinct values of its
///   `weight_map` (each a plain file name in `dir`). The set of tensor names
///   found in the shards must equal the set of `weight_map` keys, each
///   tensor must be in the shard `weight_map` names for it, no tensor may be
///   in two shards, and `weight_map` may not list a name twice. A
///   `model.safetensors` beside the index is not read.
/// * Otherwise `dir/model.safetensors` is the model.
/// * Otherwise there is no model (error naming `dir`).
///
/// Other `*.safetensors` files in `dir` are ignored. Every file read must
/// be a valid safetensors file (header length, JSON header with no key
/// twice, offsets consistent with dtype and shape, data ending exactly at
/// end of file); the header's `__metadata__` and padding do not enter the
/// fingerprint.
pub fn fingerprint_model_dir(dir: &Path) -> Result<Fingerprint, TensorsError> {
    ModelFiles::open(dir)?.fingerprint()
}

fn exists(path: &Path) -> Result<bool, TensorsError> {
    path.try_exists().map_err(|source| TensorsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Maps `path` read-only. `index` is the index that named the file, if any,
/// so a missing shard is reported as such.
#[allow(unsafe_code)]
fn map_file(path: &Path, index: Option<&Path>) -> Result<Mmap, TensorsError> {
    let io_err = |source: io::Error| match index {
        Some(index) if source.kind() == io::ErrorKind::NotFound => TensorsError::MissingShard {
            index: index.to_path_buf(),
            shard: path.to_path_buf(),
        },
        _ => TensorsError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let file = File::open(path).map_err(io_err)?;
    // SAFETY: `Mmap` hands out `&[u8]` into the page cache, which Rust
    // assumes immutable for as long as the map lives. That holds as long as
    // no one modifies or truncates the file while it is mapped; model files
    // are written once and replaced by rename, and `ModelFiles::open`
    // documents this requirement to callers. The map is read-only (no
    // `MAP_SHARED` writes from this process) and owned by `ModelFiles`, so
    // no slice outlives it.
    let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
    Ok(map)
}

/// Parses the safetensors header of `shard` into records, data ranges made
/// absolute within the map.
fn read_header(shard: &Shard, shard_index: usize) -> Result<Vec<TensorRecord>, TensorsError> {
    let corrupt = |source| TensorsError::Safetensors {
        path: shard.path.clone(),
        source,
    };
    // `read_metadata` is the parsing and validation step of
    // `SafeTensors::deserialize`, returning the owned header instead of a
    // view tied to the map's lifetime. It checks the header length and JSON,
    // every tensor's offsets against its dtype and shape, that tensors neither
    // overlap nor leave gaps, and that the data ends exactly at end of file.
    let (header_len, metadata) = SafeTensors::read_metadata(&shard.map).map_err(corrupt)?;
    // Cannot overflow: `read_metadata` checked 8 + header_len <= file size,
    // and every data offset against the file size.
    let data_start = 8 + header_len;
    let duplicate = duplicate_header_key(&shard.map[8..data_start])
        .map_err(|e| corrupt(SafeTensorError::InvalidHeaderDeserialization(e)))?;
    if let Some(tensor) = duplicate {
        return Err(TensorsError::HeaderDuplicateTensor {
            path: shard.path.clone(),
            tensor,
        });
    }
    let infos = metadata.tensors();
    let mut records = Vec::with_capacity(infos.len());
    for (name, info) in infos {
        let Some(dtype_label) = dtype_label(info.dtype) else {
            return Err(TensorsError::UnknownDtype {
                path: shard.path.clone(),
                tensor: name,
                dtype: format!("{:?}", info.dtype),
            });
        };
        let (begin, end) = info.data_offsets;
        records.push(TensorRecord {
            dtype: info.dtype,
            dtype_label,
            shape: info.shape.clone(),
            shard: shard_index,
            bytes: data_start + begin..data_start + end,
            name,
        });
    }
    Ok(records)
}

/// The first key that occurs twice at the top level of the JSON object
/// `header`, if any.
fn duplicate_header_key(header: &[u8]) -> Result<Option<String>, serde_json::Error> {
    struct KeysVisitor;
    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a safetensors header object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = BTreeSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if let Some(dup) = seen.replace(key) {
                    return Ok(Some(dup));
                }
            }
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(header);
    de.deserialize_map(KeysVisitor)
}

/// Reads `weight_map` (tensor name -> shard file name) from the index.
fn read_index(path: &Path) -> Result<BTreeMap<String, String>, TensorsError> {
    let io_err = |source| TensorsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    if len > MAX_INDEX_BYTES {
        return Err(TensorsError::IndexTooLarge {
            path: path.to_path_buf(),
            len,
            max: MAX_INDEX_BYTES,
        });
    }
    let mut text = Vec::with_capacity(len as usize);
    // `take` bounds the read even if the file grows after the size check.
    file.take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io_err)?;
    if text.len() as u64 > MAX_INDEX_BYTES {
        return Err(TensorsError::IndexTooLarge {
            path: path.to_path_buf(),
            len: text.len() as u64,
            max: MAX_INDEX_BYTES,
        });
    }

    let index: IndexFile =
        serde_json::from_slice(&text).map_err(|source| TensorsError::IndexJson {
            path: path.to_path_buf(),
            source,
        })?;
    let mut weight_map = BTreeMap::new();
    for (tensor, shard) in index.weight_map.0 {
        if !is_plain_file_name(&shard) {
            return Err(TensorsError::IndexBadShardName {
                path: path.to_path_buf(),
                tensor,
                shard,
            });
        }
        if weight_map.contains_key(&tensor) {
            return Err(TensorsError::IndexDuplicateTensor {
                path: path.to_path_buf(),
                tensor,
            });
        }
        weight_map.insert(tensor, shard);
    }
    Ok(weight_map)
}

/// A name that stays inside the model directory: no separators, not `.` or
/// `..`, not empty.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The part of `model.safetensors.index.json` this module reads; other
/// fields (`metadata`) are ignored.
#[derive(Deserialize)]
struct IndexFile {
    weight_map: WeightMapEntries,
}

/// `weight_map` entries in file order, duplicates kept so they can be
/// rejected (a plain map would silently keep the last).
struct WeightMapEntries(Vec<(String, String)>);

impl<'de> Deserialize<'de> for WeightMapEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = WeightMapEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from tensor name to shard file name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    entries.push(entry);
                }
                Ok(WeightMapEntries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dtype's label is the exact string its header entry holds.
    #[test]
    fn tensors_dtype_labels_match_header_strings() {
        let all = [
            Dtype::BOOL,
            Dtype::F4,
            Dtype::F6_E2M3,
            Dtype::F6_E3M2,
            Dtype::U8,
            Dtype::I8,
            Dtype::F8_E5M2,
            Dtype::F8_E4M3,
            Dtype::F8_E8M0,
            Dtype::F8_E4M3FNUZ,
            Dtype::F8_E5M2FNUZ,
            Dtype::I16,
            Dtype::U16,
            Dtype::F16,
            Dtype::BF16,
            Dtype::I32,
            Dtype::U32,
            Dtype::F32,
            Dtype::C64,
            Dtype::F64,
            Dtype::I64,
            Dtype::U64,
        ];
        for dtype in all {
            let label = dtype_label(dtype).unwrap();
            let header = serde_json::to_string(&dtype).unwrap();
            assert_eq!(header, format!("\"{label}\""));
            let parsed: Dtype = serde_json::from_str(&header).unwrap();
            assert_eq!(parsed, dtype);
        }
    }

    #[test]
    fn tensors_shard_names_must_stay_in_the_directory() {
        for ok in ["model-00001-of-00002.safetensors", "a", "..a", "a..b"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../a", "a/b", "/a", "a\\b", "a\0"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
