//! `grail model forward` and `grail model generate`: output against the
//! transformers reference fixtures and the protocol sampler, and exit code 2
//! with a message on every kind of bad input (never a panic).

use std::path::PathBuf;

use grail_core::sampling::{sample, Uniforms};
use grail_engine::{LogitsFor, Model, Tokenizer};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"))
}

use crate::run as grail;

fn ok_stdout(args: &[&str]) -> String {
    let out = grail(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rows(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect()
}

#[test]
fn forward_json_matches_the_transformers_reference() {
    let dir = fixtures().join("engine/qwen2-tiny");
    let reference: Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let toks: Vec<String> = reference["sequences"][2]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let out = ok_stdout(&[
        "model",
        "forward",
        "--model",
        dir.to_str().unwrap(),
        "--tokens",
        &toks.join(","),
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for key in ["hidden", "logits"] {
        let want: Vec<f32> = st
            .tensor(&format!("seq2.{key}"))
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let got = rows(&v[key]);
        assert_eq!(got.len(), want.len(), "{key}");
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err <= 1e-4, "{key}: max abs error {err}");
    }
    assert_eq!(v["hidden"].as_array().unwrap().len(), toks.len());
    // logprobs: log-softmax of the next token, recomputed from the printed logits
    let lp = v["logprobs"].as_array().unwrap();
    assert_eq!(lp.len(), toks.len());
    assert!(lp[toks.len() - 1].is_null());
    for (r, row) in v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .take(toks.len() - 1)
    {
        let z: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        let next: usize = toks[r + 1].parse().unwrap();
        assert!(
            (lp[r].as_f64().unwrap() - (z[next] - lse)).abs() < 1e-5,
            "position {r}"
        );
    }
}

#[test]
fn forward_summary_names_positions() {
    let dir = fixtures().join("stories260K");
    let out = ok_stdout(&[
        "model",
        "forward",
        "--model",
        dir.to_str().unwrap(),
        "--tokens",
        "1,403",
    ]);
    assert!(
        out.starts_with("2 positions, hidden size 64, vocabulary 512"),
        "{out}"
    );
    // argmax after BOS is token 403 ("Once"), as in expected_greedy.json
    assert!(out.lines().nth(1).unwrap().contains("top5 403:"), "{out}");
}

#[test]
fn generate_greedy_tells_the_lily_story() {
    let dir = fixtures().join("stories260K");
    let out = ok_stdout(&[
        "model",
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "Once upon a time",
        "--greedy",
        "--max-new-tokens",
        "30",
    ]);
    assert!(out.starts_with("Once upon a time, there was a little girl named Lily. She loved to play outside in the park."), "{out}");
    assert!(out.contains("completion tokens (30, length)"), "{out}");
}

#[test]
fn generate_with_temperature_follows_the_protocol_sampler() {
    let dir = fixtures().join("stories260K");
    let seed_hex = "5a".repeat(32);
    let args = [
        "model",
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "Once upon a time",
        "--temperature",
        "0.9",
        "--seed",
        &seed_hex,
        "--max-new-tokens",
        "40",
        "--json",
    ];
    let a: Value = serde_json::from_str(&ok_stdout(&args)).unwrap();
    let b: Value = serde_json::from_str(&ok_stdout(&args)).unwrap();
    assert_eq!(a, b, "same seed, same output");
    assert_eq!(a["sampler"]["temperature_milli"], 900);
    // Replay: every token is the sampler's pick under the engine's own
    // probabilities with this seed's uniforms.
    let model = Model::load(&dir).unwrap();
    let prompt: Vec<u32> = a["prompt_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let tokens: Vec<u32> = a["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(
        prompt,
        Tokenizer::load(&dir)
            .unwrap()
            .encode("Once upon a time", true)
            .unwrap()
    );
    let all: Vec<u32> = prompt.iter().chain(&tokens).copied().collect();
    let mut s = model.new_sequence();
    let out = model
        .forward(&mut [&mut s], &[&all[..all.len() - 1]], LogitsFor::All)
        .unwrap();
    let mut u = Uniforms::new(&[0x5a; 32]);
    for (t, &tok) in tokens.iter().enumerate() {
        let logits = out.logits_row(prompt.len() - 1 + t);
        assert_eq!(
            sample(logits, 0.9, u.at(t as u32)).unwrap(),
            tok,
            "position {t}"
        );
    }
    // a different seed gives a different continuation
    let other = ok_stdout(&[
        "model",
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "Once upon a time",
        "--temperature",
        "0.9",
        "--seed",
        &"07".repeat(32),
        "--max-new-tokens",
        "40",
        "--json",
    ]);
    let c: Value = serde_json::from_str(&other).unwrap();
    assert_ne!(c["tokens"], a["tokens"]);
}

#[test]
fn generate_chat_uses_the_template() {
    let dir = fixtures().join("engine/qwen2-tiny");
    let v: Value = serde_json::from_str(&ok_stdout(&[
        "model",
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "hi",
        "--chat",
        "--max-new-tokens",
        "3",
        "--json",
    ]))
    .unwrap();
    assert!(v["text"].as_str().unwrap().starts_with("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"), "{v}");
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let stories = fixtures().join("stories260K");
    let m = stories.to_str().unwrap();
    let seed = "00".repeat(32);
    let fwd = ["model", "forward", "--model", m];
    let gen = [
        "model",
        "generate",
        "--model",
        m,
        "--prompt",
        "a",
        "--max-new-tokens",
        "5",
    ];
    let with = |base: &[&str], tail: &[&str]| -> Vec<String> {
        base.iter().chain(tail).map(|s| s.to_string()).collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            with(
                &["model", "forward", "--model", "/nonexistent/model"],
                &["--tokens", "1"],
            ),
            "/nonexistent/model",
        ),
        (with(&fwd, &["--tokens", "1,512"]), "token id 512"),
        (with(&fwd, &["--tokens", "1,x"]), "invalid digit"),
        (with(&fwd, &[]), "--tokens"),
        (
            with(&gen[..6], &["--max-new-tokens", "0"]),
            "--max-new-tokens",
        ),
        (
            with(&gen[..6], &["--max-new-tokens", "600"]),
            "max_position_embeddings",
        ),
        (with(&gen, &["--temperature", "0.5"]), "--seed"),
        (
            with(&gen, &["--temperature", "0", "--seed", &seed]),
            "--temperature",
        ),
        (
            with(&gen, &["--temperature", "0.0005", "--seed", &seed]),
            "--temperature",
        ),
        (
            with(&gen, &["--temperature", "1", "--seed", "zz"]),
            "--seed",
        ),
        (
            with(&gen, &["--temperature", "1", "--seed", "00"]),
            "64 hex digits",
        ),
        (
            with(&gen, &["--greedy", "--temperature", "1", "--seed", &seed]),
            "cannot be used with",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = grail(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: stderr should mention {needle:?}: {err}"
        );
    }
    // a directory without a tokenizer: forward works, generate names the file
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(stories.join(f), tmp.path().join(f)).unwrap();
    }
    let t = tmp.path().to_str().unwrap();
    ok_stdout(&["model", "forward", "--model", t, "--tokens", "1"]);
    let out = grail(&[
        "model",
        "generate",
        "--model",
        t,
        "--prompt",
        "a",
        "--max-new-tokens",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokenizer.json"));
}
