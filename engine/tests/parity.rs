//! Parity with transformers on the committed fixtures
//! (scripts/make_engine_fixtures.py) and with the trained stories260K model.

use std::path::{Path, PathBuf};

use grail_engine::{generate_group, GenerateOptions, LogitsFor, Model, Sampler};
use safetensors::SafeTensors;
use serde_json::Value;

const TOL: f32 = 1e-4;
const FIXTURES: [&str; 4] = [
    "qwen2-tiny",
    "llama-tiny",
    "llama-tiny-bf16",
    "llama-bias-f16",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

struct Reference {
    sequences: Vec<Vec<u32>>,
    greedy: Vec<(Vec<u32>, Vec<u32>)>,
    hidden: Vec<Vec<f32>>,
    logits: Vec<Vec<f32>>,
}

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn reference(dir: &Path) -> Reference {
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let sequences: Vec<Vec<u32>> = json["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    let greedy = json["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (ids(&g["prompt"]), ids(&g["generated"])))
        .collect();
    let hidden = (0..sequences.len())
        .map(|i| f32s(&st, &format!("seq{i}.hidden")))
        .collect();
    let logits = (0..sequences.len())
        .map(|i| f32s(&st, &format!("seq{i}.logits")))
        .collect();
    Reference {
        sequences,
        greedy,
        hidden,
        logits,
    }
}

fn max_abs_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(what: &str, got: &[f32], want: &[f32]) -> f32 {
    let e = max_abs_err(got, want);
    assert!(e <= TOL, "{what}: max abs error {e:e} > {TOL:e}");
    e
}

#[test]
fn hidden_states_and_logits_match_transformers() {
    for name in FIXTURES {
        let dir = fixtures().join("engine").join(name);
        let model = Model::load(&dir).unwrap();
        let r = reference(&dir);
        let mut worst = 0f32;
        for (i, toks) in r.sequences.iter().enumerate() {
            let mut s = model.new_sequence();
            let out = model
                .forward(&mut [&mut s], &[toks], LogitsFor::All)
                .unwrap();
            worst = worst.max(check(
                &format!("{name} seq{i} hidden"),
                &out.hidden,
                &r.hidden[i],
            ));
            worst = worst.max(check(
                &format!("{name} seq{i} logits"),
                &out.logits,
                &r.logits[i],
            ));
        }
        eprintln!("{name}: max abs error {worst:e}");
    }
}

#[test]
fn batched_and_incremental_forward_match_one_at_a_time() {
    for name in FIXTURES {
        let dir = fixtures().join("engine").join(name);
        let model = Model::load(&dir).unwrap();
        let r = reference(&dir);
        // all sequences in one batch, different lengths
        let mut seqs: Vec<_> = r.sequences.iter().map(|_| model.new_sequence()).collect();
        let mut refs: Vec<_> = seqs.iter_mut().collect();
        let toks: Vec<&[u32]> = r.sequences.iter().map(|s| &s[..]).collect();
        let out = model.forward(&mut refs, &toks, LogitsFor::All).unwrap();
        for i in 0..r.sequences.len() {
            let (a, b) = (out.offsets[i], out.offsets[i + 1]);
            check(
                &format!("{name} batched seq{i} hidden"),
                &out.hidden[a * out.hidden_size..b * out.hidden_size],
                &r.hidden[i],
            );
            check(
                &format!("{name} batched seq{i} logits"),
                &out.logits[a * out.vocab_size..b * out.vocab_size],
                &r.logits[i],
            );
        }
        // prefill part of the longest sequence, then decode the rest one token at a time
        let long = r.sequences.iter().max_by_key(|s| s.len()).unwrap();
        let li = r.sequences.iter().position(|s| s == long).unwrap();
        let split = long.len() / 2;
        let mut s = model.new_sequence();
        let mut logits = model
            .forward(&mut [&mut s], &[&long[..split]], LogitsFor::All)
            .unwrap()
            .logits;
        for t in split..long.len() {
            logits.extend(
                model
                    .forward(&mut [&mut s], &[&long[t..t + 1]], LogitsFor::Last)
                    .unwrap()
                    .logits,
            );
        }
        assert_eq!(s.len(), long.len());
        check(
            &format!("{name} incremental logits"),
            &logits,
            &r.logits[li],
        );
    }
}

#[test]
fn greedy_continuations_equal_transformers_generate() {
    for name in FIXTURES {
        let dir = fixtures().join("engine").join(name);
        let model = Model::load(&dir).unwrap();
        let r = reference(&dir);
        for (prompt, want) in &r.greedy {
            let opts = GenerateOptions {
                max_new_tokens: 24,
                stop_tokens: &model.config().eos_token_ids,
                keep_hidden: false,
                sketch: None,
                cancel: None,
            };
            let got = generate_group(&model, prompt, Sampler::Greedy { n: 1 }, &opts).unwrap();
            assert_eq!(&got[0].tokens, want, "{name} greedy from {prompt:?}");
        }
    }
}

#[test]
fn stories260k_greedy_and_first_logits() {
    let dir = fixtures().join("stories260K");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected_greedy.json")).unwrap()).unwrap();
    let model = Model::load(&dir).unwrap();
    let prompt = ids(&expected["prompt_ids"]);
    let want = ids(&expected["generated_ids"]);
    let mut s = model.new_sequence();
    let out = model
        .forward(&mut [&mut s], &[&prompt], LogitsFor::Last)
        .unwrap();
    let first: Vec<f32> = expected["logits_pos0_first8"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    // the expected values are printed with 5 decimals
    let e = max_abs_err(&out.logits[..8], &first);
    assert!(e <= TOL, "first logits: max abs error {e:e}");
    let opts = GenerateOptions {
        max_new_tokens: want.len(),
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let got = generate_group(&model, &prompt, Sampler::Greedy { n: 1 }, &opts).unwrap();
    assert_eq!(got[0].tokens, want);
}
