//! `grail devnet` (the README's main command) run with no arguments but an
//! output directory: it prints a verdict and weight table per window and
//! exits 0; then `grail verify` audits its files offline from the cached
//! beacons: exit 0 on an honest file, 1 with the reason after tampering, 2 on
//! usage errors.
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::grail;
use std::sync::OnceLock;

use grail_core::keys::Keypair;
use grail_core::wire::WindowFile;
use serde_json::Value;

struct Run {
    out: PathBuf,
    stdout: String,
    code: Option<i32>,
}

/// One `grail devnet` run shared by the tests of this module.
fn devnet() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = tempfile::tempdir().unwrap().keep().join("devnet");
        let o = grail()
            .args(["devnet", "--out"])
            .arg(&out)
            .output()
            .expect("run grail devnet");
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        if !o.status.success() {
            eprintln!("{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        }
        Run {
            out,
            stdout,
            code: o.status.code(),
        }
    })
}

fn window_files(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("store/grail/windows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn verify(file: &Path, extra: &[&str]) -> Output {
    let run = devnet();
    grail()
        .arg("verify")
        .arg(file)
        .arg("--model")
        .arg(run.out.join("model"))
        .arg("--beacon-cache")
        .arg(run.out.join("context"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn devnet_runs_two_windows_and_scores_every_miner() {
    let run = devnet();
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    for w in [0, 30] {
        assert!(
            run.stdout.contains(&format!("\nwindow {w} (blocks")),
            "{}",
            run.stdout
        );
        assert!(run.out.join(format!("weights/window-{w}.json")).exists());
    }
    // two miners (bob uid 1, charlie uid 2) pass both windows with equal work-weighted shares
    let passes = run
        .stdout
        .lines()
        .filter(|l| l.contains("  pass  "))
        .count();
    assert_eq!(passes, 4, "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"));
    let weights: Value =
        serde_json::from_slice(&std::fs::read(run.out.join("weights/window-30.json")).unwrap())
            .unwrap();
    let entries = weights["entries"].as_array().unwrap();
    let total: f64 = entries.iter().map(|e| e["weight"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "{weights}");
    assert!(entries.iter().any(|e| e["weight_u16"] == 65535));
    assert_eq!(window_files(&run.out).len(), 4);
    assert!(run.out.join("validator.sqlite").exists());
}

#[test]
fn verify_passes_an_honest_devnet_file_offline() {
    let run = devnet();
    assert_eq!(run.code, Some(0));
    for f in window_files(&run.out) {
        let o = verify(&f, &[]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(stdout.contains("; PASS"), "{stdout}");
    }
    let f = &window_files(&run.out)[0];
    let o = verify(f, &["--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["passed"], true);
    let n = v["summary"]["rollouts"].as_u64().unwrap();
    assert!(n >= 16 && n.is_multiple_of(16));
    assert_eq!(v["summary"]["failed"], 0);
    assert_eq!(v["rollouts"].as_array().unwrap().len() as u64, n);
}

/// Decode, change, re-sign every record with bob's key (the file's miner), encode.
fn resigned(bytes: &mut Vec<u8>, change: fn(&mut WindowFile)) {
    let bob = Keypair::dev("bob").unwrap();
    let mut wf = WindowFile::decode(bytes).unwrap();
    change(&mut wf);
    let h = wf.header;
    for rec in &mut wf.rollouts {
        rec.signature = bob.sign(&rec.signed_message(&h));
    }
    *bytes = wf.encode().unwrap();
}

/// Write a tampered copy of `file` (same name, so the expected hotkey is
/// the file name's) and verify it.
fn verify_tampered(
    file: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap().keep().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(file.file_name().unwrap());
    let mut bytes = std::fs::read(file).unwrap();
    edit(&mut bytes);
    std::fs::write(&copy, &bytes).unwrap();
    let o = verify(&copy, &["--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), v)
}

#[test]
fn verify_names_each_tampering_and_exits_1() {
    let run = devnet();
    assert_eq!(run.code, Some(0));
    let f = window_files(&run.out)
        .into_iter()
        .find(|p| {
            p.to_string_lossy()
                .contains(&Keypair::dev("bob").unwrap().hotkey().to_ss58())
        })
        .unwrap();
    type Edit = fn(&mut Vec<u8>);
    let cases: Vec<(&str, &str, Edit)> = vec![
        ("reward", "reward", |b| {
            resigned(b, |w| w.rollouts[1].reward += 1.0)
        }),
        ("zero-sketch", "sketch_mismatch", |b| {
            resigned(b, |w| {
                for c in &mut w.rollouts[0].commitments {
                    c.sketch.0 = [0; 16];
                }
            })
        }),
        ("fingerprint", "model_fingerprint", |b| {
            resigned(b, |w| w.header.model_fingerprint[3] ^= 1)
        }),
        ("missing", "group_incomplete", |b| {
            resigned(b, |w| {
                w.rollouts.remove(0);
            })
        }),
        ("signature", "signature", |b| {
            let mut wf = WindowFile::decode(b).unwrap();
            let msg = wf.rollouts[2].signed_message(&wf.header);
            wf.rollouts[2].signature = Keypair::dev("eve").unwrap().sign(&msg);
            *b = wf.encode().unwrap();
        }),
        ("truncated", "decode", |b| b.truncate(b.len() / 2)),
        ("bitflip", "decode", |b| {
            let i = b.len() / 2;
            b[i] ^= 4;
        }),
    ];
    for (name, want, edit) in cases {
        let (code, v) = verify_tampered(&f, name, edit);
        assert_eq!(code, Some(1), "{name}: {v}");
        assert_eq!(v["passed"], false, "{name}");
        assert_eq!(v["reason"]["code"], want, "{name}: {v}");
    }
}

#[test]
fn verify_usage_errors_exit_2() {
    let run = devnet();
    let f = &window_files(&run.out)[0];
    // no beacons for the window and no network to fetch them from
    let empty = tempfile::tempdir().unwrap();
    let o = grail()
        .arg("verify")
        .arg(f)
        .arg("--model")
        .arg(run.out.join("model"))
        .arg("--beacon-cache")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not in the cache"));
    // a missing file
    let o = verify(&run.out.join("nope.grail"), &[]);
    assert_eq!(o.status.code(), Some(2));
    // a model directory that is not one
    let o = grail()
        .arg("verify")
        .arg(f)
        .args(["--model", "/nonexistent", "--beacon-cache"])
        .arg(run.out.join("context"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // an --out that is not empty
    let o = grail()
        .args(["devnet", "--out"])
        .arg(&run.out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
}
