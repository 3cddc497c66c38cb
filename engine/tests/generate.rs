//! Group generation with the verifiable sampler: what a validator recomputes
//! with one prefill must agree with what the generator committed, and
//! several groups generated together must equal each generated alone.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use grail_core::sampling::{logprob, sample, Uniforms};
use grail_core::sketch::SketchPlanes;
use grail_engine::{
    generate_group, generate_groups, Completion, EngineError, FinishReason, GenerateOptions,
    GroupRequest, LogitsFor, Model, Sampler,
};

fn stories() -> Model {
    Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stories260K"))
        .unwrap()
}

fn qwen2_tiny() -> Model {
    Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/engine/qwen2-tiny"))
        .unwrap()
}

const PROMPT: [u32; 5] = [1, 403, 407, 261, 378];
const TEMPERATURE: f64 = 0.9;

fn seeds(n: u8) -> Vec<[u8; 32]> {
    (0..n)
        .map(|i| [i.wrapping_mul(37).wrapping_add(1); 32])
        .collect()
}

#[test]
fn every_token_replays_under_one_prefill() {
    let model = stories();
    let h = model.config().hidden_size;
    let planes = SketchPlanes::new(&[7u8; 32], h).unwrap();
    let seeds = seeds(6);
    let opts = GenerateOptions {
        max_new_tokens: 60,
        stop_tokens: &model.config().eos_token_ids,
        keep_hidden: true,
        sketch: Some(&planes),
        cancel: None,
    };
    let sampler = Sampler::Verifiable {
        temperature: TEMPERATURE,
        seeds: &seeds,
    };
    let group = generate_group(&model, &PROMPT, sampler, &opts).unwrap();
    assert_eq!(group.len(), 6);
    let p = PROMPT.len();
    let mut worst_hidden = 0f32;
    let mut worst_sketch = 0;
    for (r, c) in group.iter().enumerate() {
        let n = c.tokens.len();
        assert!(n > 0 && c.logprobs.len() == n);
        match c.finish {
            FinishReason::Stop => assert!(model
                .config()
                .eos_token_ids
                .contains(c.tokens.last().unwrap())),
            FinishReason::Length => assert_eq!(n, 60),
        }
        let hidden = c.hidden.as_ref().unwrap();
        let sketches = c.sketches.as_ref().unwrap();
        // the validator's view: one prefill over prompt + completion[..n-1]
        let all: Vec<u32> = PROMPT.iter().chain(&c.tokens[..n - 1]).copied().collect();
        let mut s = model.new_sequence();
        let out = model
            .forward(&mut [&mut s], &[&all], LogitsFor::All)
            .unwrap();
        let mut u = Uniforms::new(&seeds[r]);
        for t in 0..n {
            let row = p + t - 1;
            let logits = out.logits_row(row);
            assert_eq!(
                sample(logits, TEMPERATURE, u.at(t as u32)).unwrap(),
                c.tokens[t],
                "rollout {r} position {t}"
            );
            let lp = logprob(logits, TEMPERATURE, c.tokens[t]).unwrap();
            assert!(
                (lp - c.logprobs[t]).abs() < 1e-4,
                "rollout {r} position {t}: logprob {lp} vs {}",
                c.logprobs[t]
            );
            let mine = &hidden[t * h..(t + 1) * h];
            let theirs = out.hidden_row(row);
            let e = mine
                .iter()
                .zip(theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            worst_hidden = worst_hidden.max(e);
            assert_eq!(
                sketches[t],
                planes.sketch(mine).unwrap(),
                "sketch is of the committed state"
            );
            worst_sketch = worst_sketch.max(sketches[t].hamming(&planes.sketch(theirs).unwrap()));
        }
    }
    // decode (KV cache, batch of 6) vs prefill: f32 rounding only
    assert!(
        worst_hidden < 1e-4,
        "hidden decode vs prefill: {worst_hidden}"
    );
    assert!(
        worst_sketch <= 2,
        "sketch decode vs prefill: {worst_sketch} bits"
    );
    // different seeds, different rollouts
    assert!(group.windows(2).any(|w| w[0].tokens != w[1].tokens));
}

#[test]
fn a_rollout_does_not_depend_on_its_group() {
    let model = stories();
    let seeds = seeds(5);
    let opts = GenerateOptions {
        max_new_tokens: 40,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let group = generate_group(
        &model,
        &PROMPT,
        Sampler::Verifiable {
            temperature: TEMPERATURE,
            seeds: &seeds,
        },
        &opts,
    )
    .unwrap();
    for (i, s) in seeds.iter().enumerate() {
        let alone = generate_group(
            &model,
            &PROMPT,
            Sampler::Verifiable {
                temperature: TEMPERATURE,
                seeds: std::slice::from_ref(s),
            },
            &opts,
        )
        .unwrap();
        assert_same(&alone[0], &group[i], &format!("rollout {i}"));
    }
    // greedy: n identical rollouts, each the argmax path
    let g = generate_group(&model, &PROMPT, Sampler::Greedy { n: 3 }, &opts).unwrap();
    assert!(g
        .iter()
        .all(|c| c.tokens == g[0].tokens && c.finish == FinishReason::Length));
}

#[test]
fn stop_tokens_end_a_rollout_and_are_kept() {
    let model = stories();
    let opts = GenerateOptions {
        max_new_tokens: 30,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let free = generate_group(&model, &PROMPT, Sampler::Greedy { n: 1 }, &opts)
        .unwrap()
        .pop()
        .unwrap();
    // stop at the 4th greedy token
    let stop = [free.tokens[3]];
    let first = free.tokens.iter().position(|t| *t == stop[0]).unwrap();
    let opts = GenerateOptions {
        stop_tokens: &stop,
        ..opts
    };
    let c = generate_group(&model, &PROMPT, Sampler::Greedy { n: 1 }, &opts)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(c.finish, FinishReason::Stop);
    assert_eq!(c.tokens, free.tokens[..=first]);
}

#[test]
fn logits_for_selected_rows_equal_the_full_rows() {
    let model = stories();
    let toks: Vec<u32> = (0..40).map(|i| 3 + (i * 37) % 500).collect();
    let mut a = model.new_sequence();
    let all = model
        .forward(&mut [&mut a], &[&toks], LogitsFor::All)
        .unwrap();
    let rows = [39usize, 0, 17, 17];
    let mut b = model.new_sequence();
    let some = model
        .forward(&mut [&mut b], &[&toks], LogitsFor::Rows(&rows))
        .unwrap();
    assert_eq!(some.logit_rows, rows);
    for (i, &r) in rows.iter().enumerate() {
        assert_eq!(some.logits_row(i), all.logits_row(r), "row {r}");
    }
    assert_eq!(some.hidden, all.hidden);
    // a row past the end is an error, and the sequence is untouched
    let mut c = model.new_sequence();
    let e = model
        .forward(&mut [&mut c], &[&toks], LogitsFor::Rows(&[40]))
        .unwrap_err();
    assert!(e.to_string().contains("row 40"), "{e}");
    assert!(c.is_empty());
}

/// A prompt of `len` in-vocabulary tokens, different per `salt`.
fn prompt(len: usize, salt: u32) -> Vec<u32> {
    (0..len as u32)
        .map(|i| 3 + (i * 131 + salt * 17) % 500)
        .collect()
}

/// Two completions are the same bit for bit.
fn assert_same(a: &Completion, b: &Completion, what: &str) {
    assert_eq!(a.tokens, b.tokens, "{what}: tokens");
    let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits64(&a.logprobs), bits64(&b.logprobs), "{what}: logprobs");
    let bits32 = |v: &Option<Vec<f32>>| {
        v.as_ref()
            .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    assert_eq!(bits32(&a.hidden), bits32(&b.hidden), "{what}: hidden");
    assert_eq!(a.sketches, b.sketches, "{what}: sketches");
    assert_eq!(a.finish, b.finish, "{what}: finish");
}

/// `generate_groups` over `groups` equals `generate_group` on each alone.
fn assert_groups_equal_each_alone(
    model: &Model,
    groups: &[GroupRequest<'_>],
    opts: &GenerateOptions<'_>,
) -> Vec<Vec<Completion>> {
    let together = generate_groups(model, groups, opts).unwrap();
    assert_eq!(together.len(), groups.len());
    for (g, (req, got)) in groups.iter().zip(&together).enumerate() {
        let alone = generate_group(model, req.prompt, req.sampler, opts).unwrap();
        assert_eq!(got.len(), req.sampler.rollouts(), "group {g}");
        assert_eq!(alone.len(), got.len(), "group {g}");
        for (r, (a, b)) in alone.iter().zip(got).enumerate() {
            assert_same(a, b, &format!("group {g} rollout {r}"));
        }
    }
    together
}

#[test]
fn groups_generated_together_equal_each_generated_alone() {
    let model = qwen2_tiny();
    let planes = SketchPlanes::new(&[9u8; 32], model.config().hidden_size).unwrap();
    let prompts = [prompt(3, 0), prompt(17, 1), prompt(40, 2)];
    let seeds = [seeds(4), seeds(2), seeds(3)];
    let groups: Vec<GroupRequest> = prompts
        .iter()
        .zip(&seeds)
        .map(|(p, s)| GroupRequest {
            prompt: p,
            sampler: Sampler::Verifiable {
                temperature: 1.0,
                seeds: s,
            },
        })
        .collect();
    let opts = GenerateOptions {
        max_new_tokens: 32,
        stop_tokens: &[],
        keep_hidden: true,
        sketch: Some(&planes),
        cancel: None,
    };
    let free = generate_groups(&model, &groups, &opts).unwrap();
    // stop on tokens some rollouts draw early, so rollouts of different
    // groups leave the decode batch at different steps
    let stop = [free[0][0].tokens[6], free[2][1].tokens[10]];
    let opts = GenerateOptions {
        stop_tokens: &stop,
        ..opts
    };
    let got = assert_groups_equal_each_alone(&model, &groups, &opts);
    let lens: Vec<usize> = got.iter().flatten().map(|c| c.tokens.len()).collect();
    assert!(
        got.iter().flatten().any(|c| c.finish == FinishReason::Stop)
            && got
                .iter()
                .flatten()
                .any(|c| c.finish == FinishReason::Length)
            && lens.iter().any(|&n| n < 10),
        "rollout lengths {lens:?}: the batch should shrink unevenly"
    );
}

#[test]
fn greedy_and_verifiable_groups_share_one_batch() {
    let model = qwen2_tiny();
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/engine/qwen2-tiny/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // transformers' greedy continuation of [1] (24 tokens, stopping at EOS)
    let want: Vec<u32> = reference["greedy"][0]["generated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(reference["greedy"][0]["prompt"], serde_json::json!([1]));
    let verifiable = prompt(12, 5);
    let seeds = seeds(3);
    let other = prompt(30, 6);
    let groups = [
        GroupRequest {
            prompt: &[1],
            sampler: Sampler::Greedy { n: 2 },
        },
        GroupRequest {
            prompt: &verifiable,
            sampler: Sampler::Verifiable {
                temperature: 0.7,
                seeds: &seeds,
            },
        },
        GroupRequest {
            prompt: &other,
            sampler: Sampler::Greedy { n: 1 },
        },
    ];
    let opts = GenerateOptions {
        max_new_tokens: 24,
        stop_tokens: &model.config().eos_token_ids,
        keep_hidden: true,
        sketch: None,
        cancel: None,
    };
    let got = assert_groups_equal_each_alone(&model, &groups, &opts);
    assert_eq!(got[0][0].tokens, want, "greedy in a mixed batch");
    assert_same(&got[0][0], &got[0][1], "the two greedy rollouts");
    assert!(got[1].windows(2).any(|w| w[0].tokens != w[1].tokens));
}

#[test]
fn cancellation_stops_generation() {
    let model = qwen2_tiny();
    let p = prompt(8, 0);
    let seeds = seeds(2);
    let groups = [
        GroupRequest {
            prompt: &p,
            sampler: Sampler::Greedy { n: 1 },
        },
        GroupRequest {
            prompt: &p,
            sampler: Sampler::Verifiable {
                temperature: 1.0,
                seeds: &seeds,
            },
        },
    ];
    let opts = |max_new_tokens, cancel| GenerateOptions {
        max_new_tokens,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel,
    };
    // a flag that stays false changes nothing
    let off = AtomicBool::new(false);
    let with = generate_groups(&model, &groups, &opts(16, Some(&off))).unwrap();
    let without = generate_groups(&model, &groups, &opts(16, None)).unwrap();
    for (a, b) in with.iter().flatten().zip(without.iter().flatten()) {
        assert_same(a, b, "uncancelled");
    }
    // already set: nothing runs
    let on = AtomicBool::new(true);
    let e = generate_groups(&model, &groups, &opts(16, Some(&on))).unwrap_err();
    assert!(matches!(e, EngineError::Cancelled), "{e:?}");
    assert!(!e.is_invalid_input());
    let e = generate_group(&model, &p, Sampler::Greedy { n: 1 }, &opts(16, Some(&on))).unwrap_err();
    assert!(matches!(e, EngineError::Cancelled), "{e:?}");

    // set while decoding: a generation that would run for many seconds
    // (stories260K, context raised, no stop tokens) ends at the next step
    let mut model = stories();
    model.set_max_positions(1 << 15).unwrap();
    let flag = AtomicBool::new(false);
    let start = Instant::now();
    let e = std::thread::scope(|s| {
        let run = s.spawn(|| generate_groups(&model, &groups, &opts(30_000, Some(&flag))));
        std::thread::sleep(Duration::from_millis(50));
        flag.store(true, Ordering::Relaxed);
        run.join().unwrap()
    })
    .unwrap_err();
    assert!(matches!(e, EngineError::Cancelled), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "cancellation took {:?}",
        start.elapsed()
    );
}

#[test]
fn invalid_groups_are_named_before_any_work() {
    let model = qwen2_tiny();
    let max = model.max_positions();
    let good = prompt(4, 0);
    let long = prompt(max - 6, 1);
    let seeds = seeds(2);
    let ok = GroupRequest {
        prompt: &good,
        sampler: Sampler::Verifiable {
            temperature: 1.0,
            seeds: &seeds,
        },
    };
    // the cancel flag is set: every error below comes from validation,
    // which runs before anything else
    let cancel = AtomicBool::new(true);
    let opts = GenerateOptions {
        max_new_tokens: 8,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: Some(&cancel),
    };
    let bad: [(GroupRequest, &str); 6] = [
        (
            GroupRequest {
                prompt: &good,
                sampler: Sampler::Greedy { n: 0 },
            },
            "0 rollouts",
        ),
        (
            GroupRequest {
                prompt: &good,
                sampler: Sampler::Verifiable {
                    temperature: 1.0,
                    seeds: &[],
                },
            },
            "0 rollouts",
        ),
        (
            GroupRequest {
                prompt: &[],
                sampler: Sampler::Greedy { n: 1 },
            },
            "0 prompt tokens",
        ),
        (
            GroupRequest {
                prompt: &good,
                sampler: Sampler::Verifiable {
                    temperature: 0.0,
                    seeds: &seeds,
                },
            },
            "temperature 0",
        ),
        (
            GroupRequest {
                prompt: &[1, 2, 512],
                sampler: Sampler::Greedy { n: 1 },
            },
            "token id 512 at input position 2",
        ),
        (
            GroupRequest {
                prompt: &long,
                sampler: Sampler::Greedy { n: 1 },
            },
            "sequence length 257",
        ),
    ];
    for (req, needle) in bad {
        let e = generate_groups(&model, &[ok, ok, req], &opts).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("group 2: ") && msg.contains(needle),
            "{msg:?} should name group 2 and say {needle:?}"
        );
        assert!(e.is_invalid_input(), "{e:?}");
        match &e {
            EngineError::Group { group: 2, source } => match (needle, &**source) {
                ("token id 512 at input position 2", EngineError::TokenOutOfRange { .. })
                | ("sequence length 257", EngineError::ContextTooLong { len: 257, .. })
                | (_, EngineError::InvalidRequest(_)) => {}
                (_, other) => panic!("{needle}: {other:?}"),
            },
            other => panic!("{needle}: {other:?}"),
        }
        // one group alone: the same error, unwrapped
        let alone = generate_group(&model, req.prompt, req.sampler, &opts).unwrap_err();
        assert_eq!(alone.to_string(), msg["group 2: ".len()..]);
    }
    // errors that concern the whole request name no group
    let e = generate_groups(&model, &[], &opts).unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    let e = generate_groups(
        &model,
        &[ok],
        &GenerateOptions {
            max_new_tokens: 0,
            ..opts
        },
    )
    .unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    let planes = SketchPlanes::new(&[1u8; 32], model.config().hidden_size + 1).unwrap();
    let e = generate_groups(
        &model,
        &[ok],
        &GenerateOptions {
            sketch: Some(&planes),
            ..opts
        },
    )
    .unwrap_err();
    assert!(
        matches!(&e, EngineError::InvalidRequest(m) if m.contains("dimension 65")),
        "{e:?}"
    );
}
