//! Write the known-answer vector files in `tests/vectors/` from the inputs
//! below and this build's implementation. Run after a deliberate protocol
//! change only (`cargo run -p grail-tests --bin gen-vectors`); the diff of the
//! JSON files is the review of that change, and `scripts/protocol_ref.py`
//! must agree with the new files before they are committed.
use grail_tests::vectors::compute;
use grail_tests::{no_signature, sample_file, tests_dir};
use serde_json::{json, Value};

/// Pseudo-random input bytes, reproducible from a name.
fn bytes(name: &str, n: usize) -> String {
    let mut out = vec![0u8; n];
    blake3_xof(name, &mut out);
    hex::encode(out)
}

fn blake3_xof(name: &str, out: &mut [u8]) {
    // Inputs only: any fixed expansion works; reuse the protocol's derive.
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let d = grail_core::hash::derive(
            grail_core::hash::label::PROBLEM_SEED,
            &[b"vector input", name.as_bytes(), &(i as u32).to_le_bytes()],
        );
        chunk.copy_from_slice(&d[..chunk.len()]);
    }
}

/// Exact dyadic test values.
fn dyadic(seed: u64, n: usize, denom: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| ((i * 37 + seed * 11) % 101) as f64 - 50.0)
        .map(|x| x / denom)
        .collect()
}

fn file(name: &str, construction: &str, spec: &str, cases: Vec<(&str, Value)>) {
    let cases: Vec<Value> = cases
        .into_iter()
        .map(|(kind, input)| {
            let output = compute(kind, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
            json!({ "kind": kind, "input": input, "output": output })
        })
        .collect();
    let doc = json!({ "construction": construction, "spec": spec, "cases": cases });
    let path = tests_dir().join("vectors").join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    println!("wrote {}", path.display());
}

fn main() {
    std::fs::create_dir_all(tests_dir().join("vectors")).unwrap();

    let labels = [
        "grail/v1/problem-seed",
        "grail/v1/commit-root",
        "grail/v1/window-file-checksum",
    ];
    let mut cases = vec![];
    for l in labels {
        for parts in [
            vec![],
            vec![String::new()],
            vec![String::new(), String::new()],
            vec!["00".into()],
        ] {
            cases.push(("derive", json!({ "label": l, "parts": parts })));
        }
    }
    cases.push((
        "derive",
        json!({ "label": labels[0], "parts": [bytes("a", 3), bytes("b", 1500), bytes("c", 32)] }),
    ));
    file("hash", "derive(label, parts)", "PROTOCOL.md §2", cases);

    let cases = (0..3)
        .map(|i| {
            (
                "seeds",
                json!({
                    "netuid": ([81, 1, 65535])[i],
                    "hotkey": bytes(&format!("hotkey{i}"), 32),
                    "window_block_hash": bytes(&format!("block{i}"), 32),
                    "generation_beacon_randomness": bytes(&format!("beacon{i}"), 32),
                    "deadline_block_hash": bytes(&format!("deadline{i}"), 32),
                    "challenge_beacon_randomness": bytes(&format!("cbeacon{i}"), 32),
                    "problem_index": ([0, 7, 4_294_967_295u64])[i],
                    "rollout_index": ([0, 15, 3])[i],
                }),
            )
        })
        .collect();
    file(
        "seeds",
        "problem seed, window randomness, rollout seed, sketch key, challenge randomness",
        "PROTOCOL.md §4",
        cases,
    );

    let quicknet = (1_692_803_367u64, 3u64);
    let default = (1_595_431_050u64, 30u64);
    let cases = [
        (0u64, quicknet, 1_692_803_367_000u64),
        (29, quicknet, 1_692_803_369_999),
        (4_000_017, quicknet, 1_732_400_000_123),
        (5_123_456, default, 1_732_400_000_000),
        (30, default, 1_500_000_000_000),
    ]
    .into_iter()
    .map(|(block, (g, p), ts)| {
        (
            "window",
            json!({
                "block": block,
                "drand_genesis_time": g,
                "drand_period": p,
                "window_block_timestamp_ms": ts,
                "deadline_block_timestamp_ms": ts + 360_000,
            }),
        )
    })
    .collect();
    file(
        "window",
        "windows, deadlines, drand rounds",
        "PROTOCOL.md §4",
        cases,
    );

    let cases = (0..3)
        .map(|i| ("uniforms", json!({ "rollout_seed": bytes(&format!("rollout{i}"), 32), "positions": [0, 1, 2, 3, 100, 8191] })))
        .collect();
    file(
        "uniforms",
        "per-position uniforms u_t",
        "PROTOCOL.md §5.1",
        cases,
    );

    let mut cases = vec![];
    for (vocab, temp) in [
        (8usize, 1000u16),
        (37, 700),
        (37, 1500),
        (256, 250),
        (256, 1000),
    ] {
        for u_int in [0u64, 1 << 50, 3 << 51, (1 << 53) - 1, 4_503_599_627_370_497] {
            cases.push((
                "sample",
                json!({
                    "logits": dyadic(vocab as u64, vocab, 8.0),
                    "temperature_milli": temp,
                    "u_int": u_int,
                }),
            ));
        }
    }
    file(
        "sampling",
        "inverse-CDF sampling, logprob, CDF interval",
        "PROTOCOL.md §5",
        cases,
    );

    let mut cases = vec![];
    for (i, d) in [16usize, 64, 896].into_iter().enumerate() {
        let mut h = dyadic(i as u64, d, 16.0);
        if d == 896 {
            for j in (5..d).step_by(97) {
                h[j] = 96.0 + j as f64 / 64.0;
            }
        }
        cases.push((
            "sketch",
            json!({ "sketch_key": bytes(&format!("sketch{i}"), 32), "hidden": h }),
        ));
    }
    file(
        "sketch",
        "hidden-state quantization and SimHash sketch",
        "PROTOCOL.md §6.4",
        cases,
    );

    let cases = (0..2)
        .map(|i| {
            let cs: Vec<Value> = (0..3 + i)
                .map(|t| json!({ "token": 1000 * t + i, "logprob": -(t as f64) / 4.0, "sketch": bytes(&format!("s{i}{t}"), 16) }))
                .collect();
            ("commit", json!({
                "commitments": cs,
                "netuid": 81,
                "window": 4_000_020 + 30 * i,
                "hotkey": bytes(&format!("hk{i}"), 32),
                "problem_index": i,
                "rollout_index": 15 - i,
                "model_fingerprint": bytes(&format!("fp{i}"), 32),
                "prompt": [1, 403, 407, 261, 378],
                "temperature_milli": 1000,
                "max_new_tokens": 512,
                "reward": ([1.0, 0.125])[i as usize],
                "advantage": ([0.5, -1.25])[i as usize],
            }))
        })
        .collect();
    file(
        "commit",
        "token commitments, commit root, commit binding",
        "PROTOCOL.md §6",
        cases,
    );

    let cases = [
        (5u32, 32u32),
        (32, 32),
        (33, 32),
        (64, 32),
        (100, 32),
        (1000, 32),
        (8192, 32),
        (1000, 1),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (n, k))| {
        (
            "challenge_positions",
            json!({
                "challenge_randomness": bytes(&format!("cr{i}"), 32),
                "commit_root": bytes(&format!("root{i}"), 32),
                "n": n,
                "k": k,
            }),
        )
    })
    .collect();
    file(
        "challenge",
        "challenge positions",
        "PROTOCOL.md §7.1",
        cases,
    );

    let f = sample_file(42, 2, 2, [0x11; 32], &no_signature);
    let good = f.encode().unwrap();
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x01;
    let cases = vec![
        ("window_file", json!({ "file": hex::encode(&good) })),
        (
            "window_file",
            json!({ "file": hex::encode(&good[..good.len() - 1]) }),
        ),
        ("window_file", json!({ "file": hex::encode(&bad_magic) })),
        ("window_file", json!({ "file": hex::encode(&flipped) })),
    ];
    file("window_file", "window file format", "PROTOCOL.md §8", cases);

    let suris = [
        "//Alice",
        "//Bob",
        "bottom drive obey lake curtain smoke basket hold race lonely fit walk",
        "//Alice//stash",
        "//Alice/soft",
        "0x0000000000000000000000000000000000000000000000000000000000000001",
    ];
    let mut cases: Vec<(&str, Value)> = suris
        .iter()
        .map(|s| ("keys", json!({ "suri": s })))
        .collect();
    // sr25519 signatures are randomized: the stored one was made once by
    // //Alice; verification of the stored bytes is deterministic.
    let alice = grail_core::keys::Keypair::dev("alice").unwrap();
    let message = hex::decode(bytes("binding message", 32)).unwrap();
    let existing = std::fs::read(tests_dir().join("vectors/keys.json")).ok();
    let signature = existing
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["cases"].as_array().cloned())
        .and_then(|cs| cs.iter().find(|c| c["kind"] == "verify").cloned())
        .and_then(|c| c["input"]["signature"].as_str().map(str::to_owned))
        .unwrap_or_else(|| hex::encode(alice.sign(&message)));
    let alice_ss58 = alice.hotkey().to_ss58();
    let bob_ss58 = grail_core::keys::Keypair::dev("bob")
        .unwrap()
        .hotkey()
        .to_ss58();
    let mut tampered = hex::decode(&signature).unwrap();
    tampered[10] ^= 1;
    let mut bad_ss58 = alice_ss58.clone().into_bytes();
    bad_ss58[5] = if bad_ss58[5] == b'a' { b'b' } else { b'a' };
    for (ss58, msg, sig) in [
        (alice_ss58.clone(), hex::encode(&message), signature.clone()),
        (
            alice_ss58.clone(),
            bytes("another message", 32),
            signature.clone(),
        ),
        (bob_ss58, hex::encode(&message), signature.clone()),
        (alice_ss58, hex::encode(&message), hex::encode(tampered)),
        (
            String::from_utf8(bad_ss58).unwrap(),
            hex::encode(&message),
            signature,
        ),
    ] {
        cases.push((
            "verify",
            json!({ "ss58": ss58, "message": msg, "signature": sig }),
        ));
    }
    file(
        "keys",
        "sr25519 dev keys, SS58, signature verification",
        "PROTOCOL.md §9",
        cases,
    );

    let t = |name: &str, dtype: &str, shape: Vec<u32>, n: usize| json!({ "name": name, "dtype": dtype, "shape": shape, "data": bytes(name, n) });
    let base = vec![
        t("model.embed_tokens.weight", "BF16", vec![8, 4], 64),
        t("model.norm.weight", "F32", vec![4], 16),
        t("lm_head.weight", "F16", vec![8, 4], 64),
        t("scalar", "F32", vec![], 4),
    ];
    let mut reordered = base.clone();
    reordered.reverse();
    let mut relabeled = base.clone();
    relabeled[1]["dtype"] = json!("I32");
    let mut reshaped = base.clone();
    reshaped[0]["shape"] = json!([4, 8]);
    let cases = vec![
        ("fingerprint", json!({ "tensors": [] })),
        ("fingerprint", json!({ "tensors": base })),
        ("fingerprint", json!({ "tensors": reordered })),
        ("fingerprint", json!({ "tensors": relabeled })),
        ("fingerprint", json!({ "tensors": reshaped })),
        (
            "fingerprint_model_dir",
            json!({ "dir": "fixtures/stories260K" }),
        ),
    ];
    file("fingerprint", "weight fingerprint", "PROTOCOL.md §3", cases);

    let mut cases: Vec<(&str, Value)> = vec![];
    for (i, kind) in ["sat", "math"].into_iter().enumerate() {
        for level in [1u8, 5, 10] {
            let seed = bytes(&format!("challenge {kind} {level}"), 32);
            cases.push((
                "challenge",
                json!({ "seed": seed, "kind": kind, "difficulty": level }),
            ));
        }
        for j in 0..6 {
            let seed = bytes(&format!("challenge {kind} extra {j}"), 32);
            let level = 1 + ((i * 6 + j) % 10) as u8;
            cases.push((
                "challenge",
                json!({ "seed": seed, "kind": kind, "difficulty": level }),
            ));
        }
    }
    for j in 0..8 {
        cases.push((
            "challenge_assignment",
            json!({ "seed": bytes(&format!("assign {j}"), 32) }),
        ));
    }
    let completions = [
        "Reasoning... <SOLUTION>{reference}</SOLUTION>",
        "no tags at all: {reference}",
        "<SOLUTION>{reference}</SOLUTION> then changed my mind <SOLUTION>0</SOLUTION>",
        "<SOLUTION></SOLUTION>",
        "<SOLUTION> {reference} </SOLUTION>",
    ];
    for kind in ["sat", "math"] {
        for (j, c) in completions.iter().enumerate() {
            let seed = bytes(&format!("score {kind} {j}"), 32);
            cases.push((
                "challenge_score",
                json!({ "seed": seed, "kind": kind, "difficulty": 3, "completion": c }),
            ));
        }
    }
    for rewards in [
        vec![0.0; 16],
        vec![1.1, 0.0, 0.1, 1.1],
        vec![1.0, 0.0],
        vec![
            0.1, 0.1, 0.1, 1.1, 0.0, 0.0, 1.1, 0.1, 0.0, 0.0, 0.0, 0.0, 1.1, 0.1, 0.0, 0.0,
        ],
    ] {
        cases.push(("advantages", json!({ "rewards": rewards })));
    }
    file(
        "challenges",
        "problems, assignment, scoring, GRPO advantages",
        "PROTOCOL.md §13",
        cases,
    );

    beacon_vectors();
}

/// drand beacons (PROTOCOL.md §4): real recorded beacons from
/// `fixtures/drand/beacons.json` and one tampered variant per check.
fn beacon_vectors() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(tests_dir().join("fixtures/drand/beacons.json")).unwrap(),
    )
    .unwrap();
    let flip = |s: &Value, byte: usize, mask: u8| -> Value {
        let mut b = hex::decode(s.as_str().unwrap()).unwrap();
        b[byte] ^= mask;
        hex::encode(b).into()
    };
    let mut cases = vec![];
    for (chain, other) in [("quicknet", "default"), ("default", "quicknet")] {
        let list = fixture["beacons"][chain].as_array().unwrap();
        for b in [&list[0], &list[list.len() - 1]] {
            let mut input = b.clone();
            input["chain"] = chain.into();
            cases.push(("beacon", input.clone()));
            let mut t = input.clone();
            t["signature"] = flip(&input["signature"], 0, 0x20);
            cases.push(("beacon", t));
            let mut t = input.clone();
            t["signature"] = flip(&input["signature"], 20, 1);
            cases.push(("beacon", t));
            let mut t = input.clone();
            t["round"] = (b["round"].as_u64().unwrap() + 1).into();
            cases.push(("beacon", t));
            let mut t = input.clone();
            t["randomness"] = flip(&input["randomness"], 31, 0x80);
            cases.push(("beacon", t));
            let mut t = input.clone();
            t["chain"] = other.into();
            cases.push(("beacon", t));
            if b.get("previous_signature").is_some() {
                let mut t = input.clone();
                t["previous_signature"] = flip(&input["previous_signature"], 4, 2);
                cases.push(("beacon", t));
                let mut t = input.clone();
                t.as_object_mut().unwrap().remove("previous_signature");
                cases.push(("beacon", t));
            } else {
                let mut t = input.clone();
                t["previous_signature"] = list[1]["signature"].clone();
                cases.push(("beacon", t));
            }
        }
        let mut t = list[0].clone();
        t["chain"] = chain.into();
        t["round"] = 0.into();
        cases.push(("beacon", t));
    }
    file(
        "beacon",
        "drand beacon verification: BLS signature under the pinned chain key, chaining, randomness = sha256(signature)",
        "PROTOCOL.md §4",
        cases,
    );
}
