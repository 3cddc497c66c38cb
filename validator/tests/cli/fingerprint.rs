//! `grail fingerprint --model DIR`: output and exit codes (0 ok, 1 invalid
//! model files, 2 missing directory or file). Never a panic (101).

use std::path::Path;
use std::process::Output;

/// Same value as grail-core/tests/fingerprint.rs, cross-checked with
/// scripts/protocol_ref.py.
const STORIES260K_FINGERPRINT: &str =
    "f2981203dc3af79e90c468c9af039efea777be2a628d3877153f8b4146c15ffd";

const STORIES260K: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/stories260K");

fn grail_fingerprint(model: &Path) -> Output {
    crate::run(&[
        "fingerprint",
        "--model",
        model.to_str().expect("UTF-8 path"),
    ])
}

#[test]
fn fingerprint_cli_prints_known_answer() {
    let out = grail_fingerprint(Path::new(STORIES260K));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{STORIES260K_FINGERPRINT}\n")
    );
}

#[test]
fn fingerprint_cli_missing_dir_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-model");
    let out = grail_fingerprint(&missing);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-model"), "{stderr}");

    // A directory without model files is also a usage error.
    let out = grail_fingerprint(tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model.safetensors"), "{stderr}");
}

#[test]
fn fingerprint_cli_corrupt_safetensors_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(Path::new(STORIES260K).join("model.safetensors")).unwrap();
    let path = tmp.path().join("model.safetensors");

    // Truncated by one byte, then a garbage header.
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    let out = grail_fingerprint(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model.safetensors"), "{stderr}");

    std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{not json at all}").unwrap();
    let out = grail_fingerprint(tmp.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn fingerprint_cli_inconsistent_index_exits_1_and_missing_shard_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(STORIES260K).join("model.safetensors"),
        tmp.path().join("shard-1.safetensors"),
    )
    .unwrap();
    // The index lists only one of the 47 tensors.
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "shard-1.safetensors"}}"#,
    )
    .unwrap();
    let out = grail_fingerprint(tmp.path());
    assert_eq!(out.status.code(), Some(1));

    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "shard-2.safetensors"}}"#,
    )
    .unwrap();
    let out = grail_fingerprint(tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shard-2.safetensors"), "{stderr}");
}
