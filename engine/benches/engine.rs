//! Engine throughput on CPU: `cargo bench -p grail-engine --bench engine`.
//!
//! Validates output first (stories260K greedy continuation equals the
//! committed expectation; on the synthetic model, batch-16 decode equals
//! batch-1 decode token for token), then reports for stories260K and for a
//! random-initialized bf16 checkpoint of Qwen2.5-0.5B shape written to a
//! temporary directory: prefill tokens/s, decode tokens/s at batch 1 and 16,
//! weight bytes read per decode step over step time (GB/s) beside this
//! machine's measured memory read bandwidth, and peak resident memory; and
//! for stories260K with its context raised, a 3872-token prefill and a
//! 16 x 64 group after it (attention-bound).
//!
//! `GRAIL_BENCH_SHAPES=0.5b,1.5b` adds the Qwen2.5-1.5B shape (3.1 GB on
//! disk) for the resident-memory check; `GRAIL_BENCH_DIR` picks where the
//! synthetic checkpoints are written (default: the system temp dir).

use std::path::Path;
use std::time::{Duration, Instant};

use grail_engine::kernels::WDtype;
use grail_engine::synthetic::{self, Shape};
use grail_engine::{generate_group, GenerateOptions, LogitsFor, Model, Sampler};
use rayon::prelude::*;

/// A `/proc/self/status` memory field (`VmRSS`, `VmHWM`) in MiB; NaN where
/// there is no procfs.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Read bandwidth of this machine: all threads summing disjoint parts of a
/// 1 GiB buffer, best of 5 (GB/s, 1e9 bytes).
fn memory_bandwidth() -> f64 {
    let words = (1usize << 30) / 8;
    let buf: Vec<u64> = (0..words as u64).collect();
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let s: u64 = buf
            .par_chunks(1 << 16)
            .map(|c| {
                let mut acc = [0u64; 8];
                for w in c.chunks_exact(8) {
                    for l in 0..8 {
                        acc[l] = acc[l].wrapping_add(w[l]);
                    }
                }
                acc.iter().fold(0u64, |a, b| a.wrapping_add(*b))
            })
            .reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(s);
        best = best.max((words * 8) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn tokens(n: usize, vocab: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) % (vocab as u32 - 3) + 3)
        .collect()
}

struct Figures {
    prefill_tps: f64,
    decode: Vec<(usize, f64, f64)>, // (batch, tokens/s, weight GB/s)
}

/// Prefill of `prompt_len` tokens, then `steps` decode steps at each batch
/// size (all sequences continuing the same prefilled context).
fn measure(model: &Model, prompt_len: usize, steps: usize, batches: &[usize]) -> Figures {
    let vocab = model.config().vocab_size;
    let prompt = tokens(prompt_len, vocab, 7);
    let mut seq = model.new_sequence();
    let t = Instant::now();
    model
        .forward(&mut [&mut seq], &[&prompt], LogitsFor::Last)
        .unwrap();
    let prefill_tps = prompt_len as f64 / t.elapsed().as_secs_f64();
    let bytes = model.weight_bytes_per_step() as f64;
    let mut decode = Vec::new();
    for &b in batches {
        let mut seqs: Vec<_> = (0..b).map(|_| seq.clone()).collect();
        let mut best = Duration::MAX;
        for s in 0..steps {
            let toks: Vec<[u32; 1]> = (0..b)
                .map(|i| [tokens(1, vocab, (s * 31 + i) as u32)[0]])
                .collect();
            let refs: Vec<&[u32]> = toks.iter().map(|t| &t[..]).collect();
            let mut seq_refs: Vec<_> = seqs.iter_mut().collect();
            let t = Instant::now();
            model
                .forward(&mut seq_refs, &refs, LogitsFor::Last)
                .unwrap();
            best = best.min(t.elapsed());
        }
        let secs = best.as_secs_f64();
        decode.push((b, b as f64 / secs, bytes / secs / 1e9));
    }
    Figures {
        prefill_tps,
        decode,
    }
}

fn report(name: &str, model: &Model, f: &Figures, bandwidth: f64, prompt_len: usize) {
    println!(
        "{name}: weights {:.1} MB read per decode step; prefill {prompt_len} tokens: {:.0} tokens/s",
        model.weight_bytes_per_step() as f64 / 1e6,
        f.prefill_tps
    );
    for &(b, tps, gbs) in &f.decode {
        println!(
            "  decode batch {b:>2} (context {prompt_len}): {tps:>8.1} tokens/s, weights {gbs:>6.2} GB/s = {:>5.1}% of measured bandwidth {bandwidth:.2} GB/s",
            100.0 * gbs / bandwidth
        );
    }
}

fn validate_stories(dir: &Path) -> Model {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected_greedy.json")).unwrap()).unwrap();
    let want: Vec<u32> = expected["generated_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let model = Model::load(dir).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: want.len(),
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let got = generate_group(&model, &[1], Sampler::Greedy { n: 1 }, &opts).unwrap();
    assert_eq!(
        got[0].tokens, want,
        "stories260K greedy continuation differs from expected_greedy.json"
    );
    println!("validated: stories260K greedy 120 tokens equal expected_greedy.json");
    model
}

/// Batch 16 must reproduce batch 1 token for token (greedy, same prompt).
fn validate_batching(model: &Model) {
    let prompt = tokens(16, model.config().vocab_size, 3);
    let opts = GenerateOptions {
        max_new_tokens: 8,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let one = generate_group(model, &prompt, Sampler::Greedy { n: 1 }, &opts).unwrap();
    let many = generate_group(model, &prompt, Sampler::Greedy { n: 16 }, &opts).unwrap();
    assert!(
        many.iter().all(|c| c.tokens == one[0].tokens),
        "batch-16 decode differs from batch-1"
    );
    println!(
        "validated: batch-16 greedy decode equals batch-1 ({} tokens)",
        one[0].tokens.len()
    );
}

/// Long prompts on stories260K (hidden 64, head_dim 8), its context raised
/// to 8192: the protocol's SAT prompts run 1.4k-3.9k tokens, where attention
/// is most of the work. Prefill of `prompt_len` tokens, then a 16 x 64 group
/// (protocol sampler, no stop tokens) after it; validated first: rollout 0
/// of the group equals that rollout generated alone.
fn long_prompt(dir: &Path, prompt_len: usize) {
    let mut model = Model::load(dir).unwrap();
    model.set_max_positions(8192).unwrap();
    let c = model.config().clone();
    let prompt = tokens(prompt_len, c.vocab_size, 7);
    let seeds: Vec<[u8; 32]> = (0..16u8).map(|i| [i.wrapping_add(1); 32]).collect();
    let opts = GenerateOptions {
        max_new_tokens: 64,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let sampler = |seeds| Sampler::Verifiable {
        temperature: 0.7,
        seeds,
    };
    let alone = generate_group(&model, &prompt, sampler(&seeds[..1]), &opts).unwrap();
    let t = Instant::now();
    let group = generate_group(&model, &prompt, sampler(&seeds), &opts).unwrap();
    let group_secs = t.elapsed().as_secs_f64();
    assert_eq!(
        group[0].tokens, alone[0].tokens,
        "long prompt: rollout 0 differs in its group from alone"
    );
    println!("validated: long-prompt rollout 0 equals itself generated alone (64 tokens)");
    let mut seq = model.new_sequence();
    let t = Instant::now();
    model
        .forward(&mut [&mut seq], &[&prompt], LogitsFor::Last)
        .unwrap();
    let prefill_secs = t.elapsed().as_secs_f64();
    // attention multiply-adds: q.k and p.v, head_dim each, per head, layer
    // and (query, key) pair
    let per_pair = (2 * c.head_dim * c.num_heads * c.num_layers) as f64;
    let n = prompt_len as f64;
    let prefill_flops = 2.0 * per_pair * n * (n + 1.0) / 2.0;
    let group_flops = 2.0 * per_pair * 16.0 * (0..64).map(|i| n + 1.0 + i as f64).sum::<f64>();
    println!(
        "stories260K long prompt (context 8192): prefill {prompt_len} tokens {prefill_secs:.3} s ({:.1} attention GFLOP/s); 16 x 64 group after it {group_secs:.3} s ({:.1} attention GFLOP/s)",
        prefill_flops / prefill_secs / 1e9,
        group_flops / group_secs / 1e9
    );
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("grail-engine CPU benchmark ({threads} threads)");
    let bandwidth = memory_bandwidth();
    println!("measured memory read bandwidth: {bandwidth:.2} GB/s (1 GiB buffer, {threads} threads, best of 5)");

    let stories = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stories260K");
    let model = validate_stories(&stories);
    let f = measure(&model, 256, 50, &[1, 16]);
    report("stories260K (f32)", &model, &f, bandwidth, 256);
    drop(model);
    long_prompt(&stories, 3872);

    let shapes = std::env::var("GRAIL_BENCH_SHAPES").unwrap_or_else(|_| "0.5b".into());
    let base = std::env::var_os("GRAIL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    for s in shapes.split(',') {
        let shape: Shape = match s.trim() {
            "0.5b" => synthetic::QWEN2_5_0_5B,
            "1.5b" => synthetic::QWEN2_5_1_5B,
            other => panic!("GRAIL_BENCH_SHAPES: unknown shape {other:?} (0.5b, 1.5b)"),
        };
        let dir = tempfile::tempdir_in(&base).unwrap();
        let t = Instant::now();
        synthetic::write_checkpoint(dir.path(), &shape, WDtype::BF16, 1).unwrap();
        println!(
            "{}: random bf16 checkpoint, {:.0}M parameters, written in {:.1} s",
            shape.name,
            shape.parameters() as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        // Reset the process's peak-RSS mark (Linux: clear_refs 5) so the
        // figure below is this model's, not the bandwidth buffer's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = status_mib("VmRSS");
        let model = Model::load(dir.path()).unwrap();
        validate_batching(&model);
        let f = measure(&model, 128, 5, &[1, 16]);
        report(
            &format!("{} (bf16)", shape.name),
            &model,
            &f,
            bandwidth,
            128,
        );
        println!(
            "  resident memory: {:.0} MiB now, peak {:.0} MiB since loading began ({:.0} MiB before)",
            status_mib("VmRSS"),
            status_mib("VmHWM"),
            rss_before
        );
    }
    println!("target: batch-1 decode of the 0.5B shape at >= 50% of measured bandwidth");
}
