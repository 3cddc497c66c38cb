//! Recompute every known-answer vector in `tests/vectors/*.json`.
use grail_tests::tests_dir;
use grail_tests::vectors::{compute, same};
use serde_json::Value;

#[test]
fn all_vectors() {
    let dir = tests_dir().join("vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = vec![];
    for path in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let cases = doc["cases"].as_array().expect("cases");
        assert!(!cases.is_empty(), "{}: no cases", path.display());
        for (i, case) in cases.iter().enumerate() {
            let kind = case["kind"].as_str().expect("kind");
            total += 1;
            match compute(kind, &case["input"]) {
                Ok(got) if same(&case["output"], &got) => {}
                Ok(got) => failures.push(format!(
                    "{} case {i} ({kind}):\n  want {}\n  got  {}",
                    path.display(),
                    case["output"],
                    got
                )),
                Err(e) => failures.push(format!("{} case {i} ({kind}): {e}", path.display())),
            }
        }
    }
    eprintln!("{total} vectors in {} files", files.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for required in [
        "hash",
        "seeds",
        "window",
        "uniforms",
        "sampling",
        "sketch",
        "commit",
        "challenge",
        "window_file",
        "keys",
        "fingerprint",
        "challenges",
        "beacon",
    ] {
        assert!(
            files
                .iter()
                .any(|p| p.file_stem().is_some_and(|s| s == required)),
            "missing vector file {required}.json"
        );
    }
}

#[test]
fn a_changed_output_is_detected() {
    // The comparison must not be vacuous: perturb one stored output.
    let path = tests_dir().join("vectors").join("seeds.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let case = &doc["cases"][0];
    let mut wrong = case["output"].clone();
    wrong["rollout_seed"] = Value::String("00".repeat(32));
    let got = compute("seeds", &case["input"]).unwrap();
    assert!(same(&case["output"], &got));
    assert!(!same(&wrong, &got));
}
