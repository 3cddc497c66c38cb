//! `grail inspect` end to end: valid, corrupted, truncated, tampered and
//! missing files. Exit codes 0 / 1 / 2, never a panic (101) or a hang.
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use grail_core::keys::Keypair;
use grail_core::wire::{WindowFile, PREAMBLE_BYTES};
use grail_tests::{reseal, sample_file};

fn grail(args: &[&str]) -> Output {
    let mut child = crate::grail()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn grail");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("grail {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn alice_file() -> (WindowFile, Vec<u8>) {
    let alice = Keypair::dev("alice").unwrap();
    let f = sample_file(5, 2, 3, *alice.hotkey().as_bytes(), &|m| alice.sign(m));
    let b = f.encode().unwrap();
    (f, b)
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn valid_file_summary_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (f, bytes) = alice_file();
    let path = write(&dir, "ok.grail", &bytes);
    let out = grail(&["inspect", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"),
        "{stdout}"
    );
    assert!(stdout.contains("6 valid, 0 invalid"), "{stdout}");

    let out = grail(&["inspect", "--json", &path]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["header"]["window"], f.header.window);
    assert_eq!(v["rollouts"].as_array().unwrap().len(), 6);
    assert_eq!(v["rollouts"][0]["signature_valid"], true);
    assert_eq!(
        v["rollouts"][1]["completion"].as_array().unwrap().len(),
        f.rollouts[1].commitments.len()
    );
}

#[test]
fn tampered_content_with_valid_checksum_fails_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (mut f, _) = alice_file();
    f.rollouts[2].reward += 1.0; // the miner's claim changed after signing
    let path = write(&dir, "tampered.grail", &f.encode().unwrap());
    let out = grail(&["inspect", &path]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("5 valid, 1 invalid"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("problem 0 rollout 2"));
}

#[test]
fn corrupted_and_truncated_files_exit_1_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = alice_file();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("garbage".into(), b"hello, not a window file".to_vec()),
        ("truncated-header".into(), bytes[..20].to_vec()),
        ("truncated-middle".into(), bytes[..bytes.len() / 2].to_vec()),
        (
            "truncated-checksum".into(),
            bytes[..bytes.len() - 1].to_vec(),
        ),
    ];
    let mut flipped = bytes.clone();
    flipped[200] ^= 0x10;
    cases.push(("bitflip".into(), flipped));
    let mut bad_length = bytes.clone();
    // the first record's length field, with the checksum recomputed
    bad_length[PREAMBLE_BYTES..PREAMBLE_BYTES + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut bad_length);
    cases.push(("bad-length".into(), bad_length));
    let mut trailing = bytes;
    trailing.push(0);
    cases.push(("trailing".into(), trailing));
    for (name, b) in cases {
        let path = write(&dir, &name, &b);
        let out = grail(&["inspect", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("invalid window file"), "{name}: {stderr}");
    }
}

#[test]
fn unreadable_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.grail");
    let out = grail(&["inspect", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.grail"));
    let out = grail(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = grail(&["inspect"]);
    assert_eq!(out.status.code(), Some(2));
}
