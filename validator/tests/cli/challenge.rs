//! `grail challenge` end to end: problem output in text, JSON and DIMACS,
//! scoring completions, and usage errors.
use std::process::Output;

const SEED: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

use crate::run as grail;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = grail(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn sat_dimacs_is_well_formed_and_matches_json() {
    let o = grail(&[
        "challenge",
        "--kind",
        "sat",
        "--seed",
        SEED,
        "--difficulty",
        "10",
        "--dimacs",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.starts_with("p cnf 35 150\n"), "{text}");
    assert_eq!(text.lines().count(), 151);
    let j = json(&[
        "challenge",
        "--kind",
        "sat",
        "--seed",
        SEED,
        "--difficulty",
        "10",
        "--json",
    ]);
    assert_eq!(j["kind"], "sat");
    assert_eq!(j["difficulty"], 10);
    assert_eq!(j["parameters"]["num_clauses"], 150);
    let first: Vec<i64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(serde_json::json!(first[..3]), j["parameters"]["clauses"][0]);
    assert_eq!(j["messages"][0]["role"], "system");
    assert_eq!(
        j["reference_answer"].as_str().unwrap().split(' ').count(),
        35
    );
}

#[test]
fn math_json_and_text() {
    let j = json(&[
        "challenge",
        "--kind",
        "math",
        "--seed",
        SEED,
        "--difficulty",
        "4",
        "--json",
    ]);
    assert_eq!(j["kind"], "math");
    assert!(j["parameters"]["family"].is_string());
    assert!(j["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("<SOLUTION>"));
    let o = grail(&[
        "challenge",
        "--kind",
        "math",
        "--seed",
        SEED,
        "--difficulty",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(j["reference_answer"].as_str().unwrap()));
}

#[test]
fn default_difficulty_is_the_protocol_assignment() {
    let j = json(&["challenge", "--kind", "sat", "--seed", SEED, "--json"]);
    let level = j["difficulty"].as_u64().unwrap() as u8;
    let seed: [u8; 32] = hex::decode(SEED).unwrap().try_into().unwrap();
    assert_eq!(level, grail_challenges::assignment(&seed).1.level());
}

/// `grail challenge score` at difficulty 3 for `SEED`, as JSON.
fn score(kind: &str, completion: &std::path::Path) -> serde_json::Value {
    json(&[
        "challenge",
        "score",
        "--kind",
        kind,
        "--seed",
        SEED,
        "--difficulty",
        "3",
        "--completion",
        completion.to_str().unwrap(),
    ])
}

#[test]
fn score_reference_and_wrong_answers() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["sat", "math"] {
        let j = json(&[
            "challenge",
            "--kind",
            kind,
            "--seed",
            SEED,
            "--difficulty",
            "3",
            "--json",
        ]);
        let answer = j["reference_answer"].as_str().unwrap();
        let good = dir.path().join(format!("{kind}-good.txt"));
        std::fs::write(
            &good,
            format!("Let me think.\n<SOLUTION>{answer}</SOLUTION>"),
        )
        .unwrap();
        let r = score(kind, &good);
        assert_eq!(
            (r["correctness"].as_f64(), r["format"].as_f64()),
            (Some(1.0), Some(1.0)),
            "{kind}: {r}"
        );
        assert_eq!(r["total"].as_f64(), Some(1.1));
        let bad = dir.path().join(format!("{kind}-bad.txt"));
        std::fs::write(&bad, "I give up").unwrap();
        let r = score(kind, &bad);
        assert_eq!(r["total"].as_f64(), Some(0.0));
    }
}

#[test]
fn usage_errors_exit_2_and_invalid_completion_exits_1() {
    let cases: &[&[&str]] = &[
        &["challenge"],
        &["challenge", "--kind", "sat", "--seed", "1234"],
        &["challenge", "--kind", "sat", "--seed", "zz"],
        &[
            "challenge",
            "--kind",
            "sat",
            "--seed",
            SEED,
            "--difficulty",
            "11",
        ],
        &["challenge", "--kind", "math", "--seed", SEED, "--dimacs"],
        &[
            "challenge",
            "--kind",
            "sat",
            "--seed",
            SEED,
            "--json",
            "--dimacs",
        ],
        &[
            "challenge",
            "score",
            "--kind",
            "sat",
            "--seed",
            SEED,
            "--completion",
            "/nonexistent/file",
        ],
    ];
    for args in cases {
        let o = grail(args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("binary.txt");
    std::fs::write(&p, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let o = grail(&[
        "challenge",
        "score",
        "--kind",
        "sat",
        "--seed",
        SEED,
        "--completion",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not UTF-8"));
}

/// A stdout that cannot be written (here `/dev/full`; likewise a closed
/// pipe) is an I/O error with exit 2, never a panic (exit 101).
#[cfg(target_os = "linux")]
#[test]
fn unwritable_stdout_is_exit_2_not_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    for args in [
        &["challenge", "--kind", "sat", "--seed", SEED, "--dimacs"][..],
        &["challenge", "--kind", "math", "--seed", SEED],
        &["keys", "show", "--dev", "alice"],
    ] {
        let o = crate::grail()
            .args(args)
            .stdout(full.try_clone().unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("writing to stdout"), "{args:?}: {err}");
    }
}
