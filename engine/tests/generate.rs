//! Group generation with the verifiable sampler: what a validator recomputes
//! with one prefill must agree with what the generator committed.

use std::path::Path;

use grail_core::sampling::{logprob, sample, Uniforms};
use grail_core::sketch::SketchPlanes;
use grail_engine::{generate_group, FinishReason, GenerateOptions, LogitsFor, Model, Sampler};

fn stories() -> Model {
    Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stories260K"))
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
    };
    let sampler = Sampler::Verifiable {
        temperature: TEMPERATURE,
        seeds: &seeds,
    };
    let group = generate_group(&model, &PROMPT, sampler, 0, &opts).unwrap();
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
    };
    let group = generate_group(
        &model,
        &PROMPT,
        Sampler::Verifiable {
            temperature: TEMPERATURE,
            seeds: &seeds,
        },
        0,
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
            0,
            &opts,
        )
        .unwrap();
        assert_eq!(alone[0].tokens, group[i].tokens, "rollout {i}");
        for (a, b) in alone[0].logprobs.iter().zip(&group[i].logprobs) {
            assert!((a - b).abs() < 1e-5);
        }
    }
    // greedy: n identical rollouts, each the argmax path
    let g = generate_group(&model, &PROMPT, Sampler::Greedy, 3, &opts).unwrap();
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
    };
    let free = generate_group(&model, &PROMPT, Sampler::Greedy, 1, &opts)
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
    let c = generate_group(&model, &PROMPT, Sampler::Greedy, 1, &opts)
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
