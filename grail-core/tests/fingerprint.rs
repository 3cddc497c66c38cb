//! Weight fingerprint of model directories: invariance (tensor order,
//! sharding), sensitivity (any weight byte, name, dtype label, shape), typed
//! errors for malformed directories, and the stories260K known answer.
//!
//! Files are written with the `safetensors` crate's serializer, except where
//! a test needs a layout that serializer never produces (tensors stored in a
//! different order, extra header padding), which `write_by_hand` writes.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use grail_core::fingerprint::{fingerprint, Fingerprint, TensorEntry};
use grail_core::tensors::{
    fingerprint_model_dir, Dtype, ModelFiles, TensorsError, INDEX_FILE, MAX_INDEX_BYTES,
    SINGLE_FILE,
};
use safetensors::tensor::TensorView as StView;

/// Fingerprint of tests/fixtures/stories260K, computed by this crate and
/// independently by scripts/protocol_ref.py (Python written from PROTOCOL.md
/// §3; vector `fingerprint_model_dir` in tests/vectors/fingerprint.json).
const STORIES260K_FINGERPRINT: &str =
    "f2981203dc3af79e90c468c9af039efea777be2a628d3877153f8b4146c15ffd";

fn stories260k_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stories260K")
}

/// A tensor to write: name, dtype, shape, bytes.
#[derive(Clone)]
struct T {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn bits(dtype: Dtype) -> usize {
    dtype.bitsize()
}

fn pseudo_random(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn t(name: &str, dtype: Dtype, shape: &[usize], seed: u64) -> T {
    let n = shape.iter().product::<usize>() * bits(dtype) / 8;
    T {
        name: name.to_owned(),
        dtype,
        shape: shape.to_vec(),
        data: pseudo_random(seed, n),
    }
}

/// A small model with several dtypes, a scalar, an empty tensor and a
/// non-ASCII name.
fn model() -> Vec<T> {
    vec![
        t("model.embed_tokens.weight", Dtype::BF16, &[32, 16], 1),
        t(
            "model.layers.0.self_attn.q_proj.weight",
            Dtype::BF16,
            &[16, 16],
            2,
        ),
        t(
            "model.layers.0.self_attn.k_proj.weight",
            Dtype::F16,
            &[8, 16],
            3,
        ),
        t(
            "model.layers.0.mlp.up_proj.weight",
            Dtype::F32,
            &[24, 16],
            4,
        ),
        t(
            "model.layers.0.input_layernorm.weight",
            Dtype::F32,
            &[16],
            5,
        ),
        t(
            "model.layers.1.mlp.down_proj.weight",
            Dtype::BF16,
            &[16, 24],
            6,
        ),
        t("model.norm.weight", Dtype::F32, &[16], 7),
        t("rope.inv_freq", Dtype::F64, &[4], 8),
        t("position_ids", Dtype::I64, &[1, 6], 9),
        t("scale", Dtype::F32, &[], 10),
        t("empty", Dtype::U8, &[0, 3], 11),
        t("lm_head.w\u{e9}ight", Dtype::I8, &[5, 7], 12),
    ]
}

fn write_st(path: &Path, tensors: &[T]) {
    let views: Vec<(String, StView<'_>)> = tensors
        .iter()
        .map(|t| {
            let v = StView::new(t.dtype, t.shape.clone(), &t.data).unwrap();
            (t.name.clone(), v)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Writes a safetensors file with tensor data in exactly the given order,
/// header keys in reverse order, a `__metadata__` entry and extra padding:
/// a valid file that the crate's serializer would never produce.
fn write_by_hand(path: &Path, tensors: &[T]) {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    for t in tensors {
        let dtype = grail_core::tensors::dtype_label(t.dtype).unwrap();
        let end = offset + t.data.len();
        entries.push(format!(
            "{}:{{\"dtype\":\"{dtype}\",\"shape\":{:?},\"data_offsets\":[{offset},{end}]}}",
            serde_json::to_string(&t.name).unwrap(),
            t.shape
        ));
        offset = end;
    }
    entries.reverse();
    entries.insert(
        0,
        r#""__metadata__":{"format":"pt","note":"hand-written"}"#.into(),
    );
    let mut header = format!("{{{}}}", entries.join(",")).into_bytes();
    header.resize(header.len().next_multiple_of(8) + 16, b' ');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    for t in tensors {
        bytes.extend_from_slice(&t.data);
    }
    fs::write(path, bytes).unwrap();
}

fn write_index(dir: &Path, weight_map: &[(&str, &str)]) {
    let entries: Vec<String> = weight_map
        .iter()
        .map(|(t, f)| {
            format!(
                "{}: {}",
                serde_json::to_string(t).unwrap(),
                serde_json::to_string(f).unwrap()
            )
        })
        .collect();
    let text = format!(
        "{{\"metadata\": {{\"total_size\": 0}}, \"weight_map\": {{{}}}}}",
        entries.join(", ")
    );
    fs::write(dir.join(INDEX_FILE), text).unwrap();
}

/// Writes `shards` (file name -> tensors) and the matching index.
fn write_sharded(dir: &Path, shards: &[(&str, Vec<T>)]) {
    let mut map = Vec::new();
    for (file, tensors) in shards {
        write_st(&dir.join(file), tensors);
        for t in tensors {
            map.push((t.name.as_str(), *file));
        }
    }
    write_index(dir, &map);
}

fn single_file_dir(tensors: &[T]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_st(&dir.path().join(SINGLE_FILE), tensors);
    dir
}

fn fp(dir: &Path) -> Fingerprint {
    fingerprint_model_dir(dir).unwrap()
}

fn in_memory_fingerprint(tensors: &[T]) -> Fingerprint {
    let labels: Vec<&str> = tensors
        .iter()
        .map(|t| grail_core::tensors::dtype_label(t.dtype).unwrap())
        .collect();
    fingerprint(tensors.iter().zip(&labels).map(|(t, dtype)| TensorEntry {
        name: &t.name,
        dtype,
        shape: &t.shape,
        data: &t.data,
    }))
    .unwrap()
}

/// Absolute file offset of tensor `name`'s data in a safetensors file.
fn data_offset(path: &Path, name: &str) -> usize {
    let bytes = fs::read(path).unwrap();
    let (n, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    8 + n + meta.info(name).unwrap().data_offsets.0
}

fn open_err(dir: &Path) -> TensorsError {
    let err = ModelFiles::open(dir).unwrap_err();
    assert_eq!(
        fingerprint_model_dir(dir).unwrap_err().to_string(),
        err.to_string()
    );
    err
}

/// The error and its whole source chain, as the CLI prints it.
fn chain(err: &TensorsError) -> String {
    let mut s = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

#[test]
fn fingerprint_stories260k_known_answer() {
    let dir = stories260k_dir();
    let got = fp(&dir);
    assert_eq!(got.to_hex(), STORIES260K_FINGERPRINT);
    assert_eq!(Fingerprint::from_hex(STORIES260K_FINGERPRINT).unwrap(), got);

    let model = ModelFiles::open(&dir).unwrap();
    assert_eq!(model.len(), 47);
    assert_eq!(model.index(), None);
    assert_eq!(model.files().count(), 1);
    let embed = model.tensor("model.embed_tokens.weight").unwrap();
    assert_eq!(embed.dtype, Dtype::F32);
    assert_eq!(embed.dtype_label, "F32");
    assert_eq!(embed.shape, &[512, 64]);
    assert_eq!(embed.data.len(), 512 * 64 * 4);
    assert_eq!(model.fingerprint().unwrap(), got);
}

#[test]
fn fingerprint_model_files_expose_tensors_sorted_with_their_bytes() {
    let tensors = model();
    let dir = single_file_dir(&tensors);
    let files = ModelFiles::open(dir.path()).unwrap();
    assert_eq!(files.len(), tensors.len());
    assert!(!files.is_empty());
    assert_eq!(
        files.data_bytes(),
        tensors.iter().map(|t| t.data.len() as u64).sum::<u64>()
    );
    let names: Vec<&str> = files.tensors().map(|v| v.name).collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted);
    for t in &tensors {
        let v = files.tensor(&t.name).unwrap();
        assert_eq!(v.dtype, t.dtype);
        assert_eq!(v.shape, t.shape.as_slice());
        assert_eq!(v.data, t.data.as_slice());
        assert_eq!(v.file, dir.path().join(SINGLE_FILE));
    }
    assert!(files.tensor("no.such.tensor").is_none());
    assert_eq!(
        files.fingerprint().unwrap(),
        in_memory_fingerprint(&tensors)
    );
}

#[test]
fn fingerprint_independent_of_tensor_order_in_file() {
    let tensors = model();
    let a = single_file_dir(&tensors);

    let b = tempfile::tempdir().unwrap();
    let mut shuffled = tensors.clone();
    shuffled.reverse();
    shuffled.swap(1, 4);
    write_by_hand(&b.path().join(SINGLE_FILE), &shuffled);

    let c = tempfile::tempdir().unwrap();
    let mut rotated = tensors.clone();
    rotated.rotate_left(5);
    write_by_hand(&c.path().join(SINGLE_FILE), &rotated);

    let file_a = fs::read(a.path().join(SINGLE_FILE)).unwrap();
    let file_b = fs::read(b.path().join(SINGLE_FILE)).unwrap();
    assert_ne!(file_a, file_b, "the layouts must really differ");
    // The hand-written file really stores the data in the shuffled order.
    assert!(
        data_offset(&b.path().join(SINGLE_FILE), &shuffled[0].name)
            < data_offset(&b.path().join(SINGLE_FILE), &shuffled[1].name)
    );

    let want = in_memory_fingerprint(&tensors);
    assert_eq!(fp(a.path()), want);
    assert_eq!(fp(b.path()), want);
    assert_eq!(fp(c.path()), want);
}

#[test]
fn fingerprint_independent_of_sharding() {
    let tensors = model();
    let want = fp(single_file_dir(&tensors).path());

    let two = tempfile::tempdir().unwrap();
    write_sharded(
        two.path(),
        &[
            ("model-00001-of-00002.safetensors", tensors[..7].to_vec()),
            ("model-00002-of-00002.safetensors", tensors[7..].to_vec()),
        ],
    );
    let files = ModelFiles::open(two.path()).unwrap();
    assert_eq!(files.files().count(), 2);
    assert_eq!(files.index(), Some(two.path().join(INDEX_FILE).as_path()));
    assert_eq!(files.fingerprint().unwrap(), want);

    // Three shards, tensors interleaved, one shard written by hand.
    let three = tempfile::tempdir().unwrap();
    let pick = |r: usize| -> Vec<T> {
        tensors
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == r)
            .map(|(_, t)| t.clone())
            .collect()
    };
    write_sharded(
        three.path(),
        &[
            ("a.safetensors", pick(0)),
            ("b.safetensors", pick(1)),
            ("c.safetensors", pick(2)),
        ],
    );
    write_by_hand(&three.path().join("b.safetensors"), &pick(1));
    assert_eq!(fp(three.path()), want);
}

#[test]
fn fingerprint_ignores_files_the_index_does_not_name() {
    let tensors = model();
    let want = fp(single_file_dir(&tensors).path());

    // An index wins over a model.safetensors beside it, and stray
    // *.safetensors files are not read (garbage would fail to parse).
    let dir = tempfile::tempdir().unwrap();
    write_sharded(
        dir.path(),
        &[
            ("s1.safetensors", tensors[..3].to_vec()),
            ("s2.safetensors", tensors[3..].to_vec()),
        ],
    );
    write_st(&dir.path().join(SINGLE_FILE), &tensors[..2]);
    fs::write(
        dir.path().join("stray.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    assert_eq!(fp(dir.path()), want);

    let single = single_file_dir(&tensors);
    fs::write(single.path().join("consolidated.safetensors"), b"junk").unwrap();
    assert_eq!(fp(single.path()), want);
}

#[test]
fn fingerprint_changes_when_any_weight_byte_flips() {
    let tensors = model();
    let dir = single_file_dir(&tensors);
    let path = dir.path().join(SINGLE_FILE);
    let original = fs::read(&path).unwrap();
    let base = fp(dir.path());

    for t in tensors.iter().filter(|t| !t.data.is_empty()) {
        let start = data_offset(&path, &t.name);
        for pos in [start, start + t.data.len() / 2, start + t.data.len() - 1] {
            for bit in [0x01u8, 0x80] {
                let mut bytes = original.clone();
                bytes[pos] ^= bit;
                fs::write(&path, &bytes).unwrap();
                assert_ne!(fp(dir.path()), base, "{} byte {pos} bit {bit:#x}", t.name);
            }
        }
    }
    fs::write(&path, &original).unwrap();
    assert_eq!(fp(dir.path()), base);

    // The same in the second shard of a sharded checkpoint.
    let sharded = tempfile::tempdir().unwrap();
    write_sharded(
        sharded.path(),
        &[
            ("s1.safetensors", tensors[..6].to_vec()),
            ("s2.safetensors", tensors[6..].to_vec()),
        ],
    );
    assert_eq!(fp(sharded.path()), base);
    let shard = sharded.path().join("s2.safetensors");
    let mut bytes = fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    fs::write(&shard, &bytes).unwrap();
    assert_ne!(fp(sharded.path()), base);
}

#[test]
fn fingerprint_changes_with_name_dtype_label_or_shape() {
    let tensors = model();
    let base = fp(single_file_dir(&tensors).path());
    let i = tensors
        .iter()
        .position(|t| t.name == "model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    assert_eq!(tensors[i].shape, [8, 16]);

    let variant = |f: &dyn Fn(&mut T)| {
        let mut v = tensors.clone();
        f(&mut v[i]);
        fp(single_file_dir(&v).path())
    };
    let renamed = variant(&|t| t.name = "model.layers.0.self_attn.k_proj.weights".into());
    let relabelled = variant(&|t| t.dtype = Dtype::BF16);
    let relabelled_int = variant(&|t| t.dtype = Dtype::I16);
    let transposed = variant(&|t| t.shape = vec![16, 8]);
    let flattened = variant(&|t| t.shape = vec![128]);
    let unsqueezed = variant(&|t| t.shape = vec![1, 8, 16]);
    let all = [
        base,
        renamed,
        relabelled,
        relabelled_int,
        transposed,
        flattened,
        unsqueezed,
    ];
    for (a, x) in all.iter().enumerate() {
        for y in &all[a + 1..] {
            assert_ne!(x, y);
        }
    }
}

/// Edits a safetensors file's bytes in place.
type Corruption = fn(&mut Vec<u8>);

#[test]
fn tensors_corrupt_header_is_typed_error() {
    let tensors = model();
    let cases: Vec<(&str, Corruption)> = vec![
        ("header length past end of file", |b| {
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes())
        }),
        ("header not JSON", |b| b[8] = b'#'),
        ("header not UTF-8", |b| b[10] = 0xff),
        ("offsets changed", |b| {
            let text = String::from_utf8_lossy(b).into_owned();
            let at = text.find("\"data_offsets\":[0,").unwrap() + "\"data_offsets\":[".len();
            b[at] = b'1';
        }),
        ("unknown dtype", |b| {
            let text = String::from_utf8_lossy(b).into_owned();
            let at = text.find("\"F32\"").unwrap();
            b[at + 1..at + 4].copy_from_slice(b"Q32");
        }),
    ];
    for (what, corrupt) in cases {
        let dir = single_file_dir(&tensors);
        let path = dir.path().join(SINGLE_FILE);
        let mut bytes = fs::read(&path).unwrap();
        corrupt(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        let err = open_err(dir.path());
        assert!(
            matches!(err, TensorsError::Safetensors { path: ref p, .. } if *p == path),
            "{what}: {err:?}"
        );
        assert!(err.is_invalid_input(), "{what}");
        assert!(chain(&err).contains(&path.display().to_string()), "{what}");
    }
}

#[test]
fn tensors_truncated_or_empty_file_is_typed_error() {
    let tensors = model();
    let dir = single_file_dir(&tensors);
    let path = dir.path().join(SINGLE_FILE);
    let full = fs::read(&path).unwrap();
    for len in [full.len() - 1, full.len() / 2, 9, 8, 7, 0] {
        fs::write(&path, &full[..len]).unwrap();
        let err = open_err(dir.path());
        assert!(
            matches!(err, TensorsError::Safetensors { .. }),
            "len {len}: {err:?}"
        );
        assert!(err.is_invalid_input());
    }
    // Trailing bytes after the last tensor are rejected too.
    let mut longer = full.clone();
    longer.push(0);
    fs::write(&path, &longer).unwrap();
    assert!(matches!(
        open_err(dir.path()),
        TensorsError::Safetensors { .. }
    ));
}

#[test]
fn tensors_missing_model_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(err, TensorsError::NoModelFiles { dir: ref d } if d == dir.path()),
        "{err:?}"
    );
    assert!(!err.is_invalid_input());
    assert!(err.to_string().contains(&dir.path().display().to_string()));

    let missing = dir.path().join("no-such-model");
    let err = open_err(&missing);
    assert!(
        matches!(err, TensorsError::Io { path: ref p, .. } if *p == missing),
        "{err:?}"
    );
    assert!(!err.is_invalid_input());

    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = open_err(&file);
    assert!(matches!(err, TensorsError::NotADirectory { .. }), "{err:?}");
    assert!(!err.is_invalid_input());
}

#[test]
fn tensors_index_pointing_to_missing_shard_is_typed_error() {
    let tensors = model();
    let dir = tempfile::tempdir().unwrap();
    write_sharded(
        dir.path(),
        &[
            ("s1.safetensors", tensors[..6].to_vec()),
            ("s2.safetensors", tensors[6..].to_vec()),
        ],
    );
    fs::remove_file(dir.path().join("s2.safetensors")).unwrap();
    let err = open_err(dir.path());
    match &err {
        TensorsError::MissingShard { index, shard } => {
            assert_eq!(*index, dir.path().join(INDEX_FILE));
            assert_eq!(*shard, dir.path().join("s2.safetensors"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_invalid_input());
}

#[test]
fn tensors_index_tensor_missing_from_its_shard_is_typed_error() {
    let tensors = model();
    let dir = tempfile::tempdir().unwrap();
    write_st(&dir.path().join("s1.safetensors"), &tensors[..6]);
    write_st(&dir.path().join("s2.safetensors"), &tensors[6..]);
    let mut map: Vec<(&str, &str)> = tensors[..6]
        .iter()
        .map(|t| (t.name.as_str(), "s1.safetensors"))
        .collect();
    map.extend(
        tensors[6..]
            .iter()
            .map(|t| (t.name.as_str(), "s2.safetensors")),
    );
    map.push(("model.layers.9.extra.weight", "s2.safetensors"));
    write_index(dir.path(), &map);
    let err = open_err(dir.path());
    match &err {
        TensorsError::TensorMissingFromShard {
            tensor,
            file,
            index,
        } => {
            assert_eq!(tensor, "model.layers.9.extra.weight");
            assert_eq!(*file, dir.path().join("s2.safetensors"));
            assert_eq!(*index, dir.path().join(INDEX_FILE));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_invalid_input());
    let msg = err.to_string();
    assert!(msg.contains("model.layers.9.extra.weight") && msg.contains("s2.safetensors"));
}

#[test]
fn tensors_tensor_absent_from_index_is_typed_error() {
    let tensors = model();
    let dir = tempfile::tempdir().unwrap();
    write_sharded(
        dir.path(),
        &[
            ("s1.safetensors", tensors[..6].to_vec()),
            ("s2.safetensors", tensors[6..].to_vec()),
        ],
    );
    // Rewrite s1 with one more tensor than the index lists.
    let mut more = tensors[..6].to_vec();
    more.push(t("unlisted", Dtype::F32, &[2], 99));
    write_st(&dir.path().join("s1.safetensors"), &more);
    let err = open_err(dir.path());
    assert!(
        matches!(&err, TensorsError::TensorNotInIndex { tensor, file, .. }
            if tensor == "unlisted" && *file == dir.path().join("s1.safetensors")),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
}

#[test]
fn tensors_tensor_in_wrong_shard_is_typed_error() {
    let tensors = model();
    let dir = tempfile::tempdir().unwrap();
    write_st(&dir.path().join("s1.safetensors"), &tensors[..6]);
    write_st(&dir.path().join("s2.safetensors"), &tensors[6..]);
    let moved = tensors[0].name.as_str();
    let map: Vec<(&str, &str)> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let file = if i < 6 && t.name != moved {
                "s1.safetensors"
            } else {
                "s2.safetensors"
            };
            (t.name.as_str(), file)
        })
        .collect();
    write_index(dir.path(), &map);
    let err = open_err(dir.path());
    assert!(
        matches!(&err, TensorsError::TensorInWrongShard { tensor, file, expected, .. }
            if tensor == moved
                && *file == dir.path().join("s1.safetensors")
                && *expected == dir.path().join("s2.safetensors")),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
}

#[test]
fn tensors_duplicate_tensor_across_shards_is_typed_error() {
    let tensors = model();
    let dir = tempfile::tempdir().unwrap();
    // Same name in both shards, different bytes.
    let mut second = tensors[6..].to_vec();
    let mut dup = tensors[2].clone();
    dup.data.reverse();
    second.push(dup);
    write_st(&dir.path().join("s1.safetensors"), &tensors[..6]);
    write_st(&dir.path().join("s2.safetensors"), &second);
    let mut map: Vec<(&str, &str)> = tensors[..6]
        .iter()
        .map(|t| (t.name.as_str(), "s1.safetensors"))
        .collect();
    map.extend(
        tensors[6..]
            .iter()
            .map(|t| (t.name.as_str(), "s2.safetensors")),
    );
    write_index(dir.path(), &map);
    let err = open_err(dir.path());
    assert!(
        matches!(&err, TensorsError::DuplicateTensor { tensor, first, second }
            if *tensor == tensors[2].name
                && *first == dir.path().join("s1.safetensors")
                && *second == dir.path().join("s2.safetensors")),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
}

#[test]
fn tensors_malformed_index_is_typed_error() {
    let tensors = model();
    let dir = tempfile::tempdir().unwrap();
    write_st(&dir.path().join("s1.safetensors"), &tensors);
    let index = dir.path().join(INDEX_FILE);

    for text in [
        "",
        "not json",
        "{}",
        r#"{"weight_map": []}"#,
        r#"{"weight_map": {"a": 1}}"#,
        r#"{"weight_map": {}, "weight_map": {}}"#,
        r#"{"weight_map": {"a": "s1.safetensors"}} trailing"#,
    ] {
        fs::write(&index, text).unwrap();
        let err = open_err(dir.path());
        assert!(
            matches!(err, TensorsError::IndexJson { .. }),
            "{text:?}: {err:?}"
        );
        assert!(err.is_invalid_input());
    }

    fs::write(
        &index,
        r#"{"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "a": "s1.safetensors"}}"#,
    )
    .unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(&err, TensorsError::IndexDuplicateTensor { tensor, .. } if tensor == "a"),
        "{err:?}"
    );

    for shard in [
        "../s1.safetensors",
        "/etc/passwd",
        "",
        ".",
        "..",
        "sub/x",
        "a\\b",
    ] {
        let mut map: HashMap<&str, &str> = HashMap::new();
        map.insert("a", shard);
        write_index(dir.path(), &map.into_iter().collect::<Vec<_>>());
        let err = open_err(dir.path());
        assert!(
            matches!(&err, TensorsError::IndexBadShardName { shard: s, tensor, .. }
                if s == shard && tensor == "a"),
            "{shard:?}: {err:?}"
        );
        assert!(err.is_invalid_input());
    }

    // Too large: a sparse file, so the test writes almost nothing.
    let f = fs::File::create(&index).unwrap();
    f.set_len(MAX_INDEX_BYTES + 1).unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(err, TensorsError::IndexTooLarge { len, .. } if len == MAX_INDEX_BYTES + 1),
        "{err:?}"
    );
}

#[test]
fn tensors_duplicate_key_in_one_header_is_typed_error() {
    // Both entries describe the same bytes, so the safetensors crate accepts
    // the file (keeping the last entry); the two dtype labels would make the
    // fingerprint depend on which entry a reader keeps.
    let header = br#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[1, 2]);
    assert!(safetensors::SafeTensors::deserialize(&bytes).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SINGLE_FILE);
    fs::write(&path, &bytes).unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(&err, TensorsError::HeaderDuplicateTensor { path: p, tensor }
            if *p == path && tensor == "a"),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
}
