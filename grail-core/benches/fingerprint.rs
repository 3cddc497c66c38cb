//! Benchmark of `fingerprint_model_dir` on a synthetic 1B-class checkpoint.
//!
//! Writes TinyLlama-1.1B-shaped bf16 tensors (22 layers, hidden 2048, FFN
//! 5632, 4 KV heads; 201 tensors, 4 KB to 131 MB, 2.2 GB in all) filled with
//! pseudo-random bytes, as two shards and an index. Then it warms the page
//! cache, validates, and times five runs against the 1 GB/s target, next to a
//! single-threaded BLAKE3 baseline over the same bytes.
//!
//! Run: `cargo bench -p grail-core --bench fingerprint`. Set
//! `GRAIL_BENCH_DIR` to keep the checkpoint in (and reuse it from) that
//! directory instead of a temporary one that is deleted at the end.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grail_core::fingerprint::{Fingerprint, FINGERPRINT_CONTEXT};
use grail_core::tensors::{fingerprint_model_dir, ModelFiles, INDEX_FILE};
use safetensors::tensor::View;
use safetensors::Dtype;

/// Environment variable: directory to keep and reuse the checkpoint in.
const BENCH_DIR_ENV: &str = "GRAIL_BENCH_DIR";
/// Timed runs; the best is reported.
const RUNS: usize = 5;
/// The throughput the fingerprint must reach on the 2-core reference machine.
const TARGET_GB_PER_S: f64 = 1.0;

const LAYERS: usize = 22;
const HIDDEN: usize = 2048;
const FFN: usize = 5632;
const KV_DIM: usize = 256;
const VOCAB: usize = 32000;

const SHARDS: [&str; 2] = [
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
];

/// A bf16 tensor whose bytes are generated when the serializer asks for them,
/// so writing the checkpoint holds one tensor in memory at a time.
struct Synthetic {
    shape: Vec<usize>,
    seed: u64,
}

impl View for Synthetic {
    fn dtype(&self) -> Dtype {
        Dtype::BF16
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let mut x = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut out = vec![0u8; self.data_len()];
        for chunk in out.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        Cow::Owned(out)
    }
    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * 2
    }
}

/// (shard, name, shape) of every tensor, TinyLlama-1.1B layout.
fn layout() -> Vec<(usize, String, Vec<usize>)> {
    let mut t = vec![(
        0,
        "model.embed_tokens.weight".to_owned(),
        vec![VOCAB, HIDDEN],
    )];
    for l in 0..LAYERS {
        let shard = usize::from(l >= LAYERS / 2);
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![HIDDEN]),
            ("post_attention_layernorm.weight", vec![HIDDEN]),
            ("self_attn.q_proj.weight", vec![HIDDEN, HIDDEN]),
            ("self_attn.k_proj.weight", vec![KV_DIM, HIDDEN]),
            ("self_attn.v_proj.weight", vec![KV_DIM, HIDDEN]),
            ("self_attn.o_proj.weight", vec![HIDDEN, HIDDEN]),
            ("mlp.gate_proj.weight", vec![FFN, HIDDEN]),
            ("mlp.up_proj.weight", vec![FFN, HIDDEN]),
            ("mlp.down_proj.weight", vec![HIDDEN, FFN]),
        ] {
            t.push((shard, format!("{p}.{name}"), shape));
        }
    }
    t.push((1, "model.norm.weight".to_owned(), vec![HIDDEN]));
    t.push((1, "lm_head.weight".to_owned(), vec![VOCAB, HIDDEN]));
    t
}

fn write_checkpoint(dir: &Path) {
    let layout = layout();
    let mut weight_map = serde_json::Map::new();
    for (i, shard) in SHARDS.iter().enumerate() {
        let tensors: Vec<(String, Synthetic)> = layout
            .iter()
            .enumerate()
            .filter(|(_, (s, _, _))| *s == i)
            .map(|(seed, (_, name, shape))| {
                weight_map.insert(name.clone(), (*shard).into());
                let seed = seed as u64 + 1;
                let shape = shape.clone();
                (name.clone(), Synthetic { shape, seed })
            })
            .collect();
        safetensors::serialize_to_file(tensors, None, &dir.join(shard))
            .unwrap_or_else(|e| panic!("write {shard}: {e}"));
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.join(INDEX_FILE), index.to_string()).expect("write index");
}

/// Reads every file once so the timed runs hash from a warm page cache.
fn warm_page_cache(files: &[PathBuf]) -> u64 {
    let mut buf = vec![0u8; 8 << 20];
    let mut total = 0;
    for path in files {
        let mut f = File::open(path).expect("open shard");
        loop {
            let n = f.read(&mut buf).expect("read shard");
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    total
}

/// The fingerprint computed on one thread, the record written out here
/// again: a check of the library and the single-threaded baseline.
fn sequential_fingerprint(model: &ModelFiles) -> Fingerprint {
    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    h.update(&(model.len() as u64).to_le_bytes());
    for t in model.tensors() {
        let data_hash = blake3::hash(t.data);
        h.update(&(t.name.len() as u64).to_le_bytes());
        h.update(t.name.as_bytes());
        h.update(&(t.dtype_label.len() as u64).to_le_bytes());
        h.update(t.dtype_label.as_bytes());
        h.update(&(t.shape.len() as u32).to_le_bytes());
        for &d in t.shape {
            h.update(&(d as u64).to_le_bytes());
        }
        h.update(&(t.data.len() as u64).to_le_bytes());
        h.update(data_hash.as_bytes());
    }
    Fingerprint(*h.finalize().as_bytes())
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("at least one run"))
}

fn main() {
    let temp;
    let dir = match std::env::var_os(BENCH_DIR_ENV) {
        Some(d) => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).expect("create GRAIL_BENCH_DIR");
            d
        }
        None => {
            temp = tempfile::tempdir().expect("temp dir");
            temp.path().to_path_buf()
        }
    };
    if !dir.join(INDEX_FILE).exists() {
        eprintln!("writing synthetic checkpoint to {}", dir.display());
        let start = Instant::now();
        write_checkpoint(&dir);
        eprintln!("written in {:.1} s", start.elapsed().as_secs_f64());
    } else {
        eprintln!("reusing checkpoint in {}", dir.display());
    }

    // Validate before timing.
    let model = ModelFiles::open(&dir).expect("open checkpoint");
    let files: Vec<PathBuf> = model.files().map(Path::to_path_buf).collect();
    let data_bytes = model.data_bytes();
    let file_bytes = warm_page_cache(&files);
    let a = fingerprint_model_dir(&dir).expect("fingerprint");
    let b = fingerprint_model_dir(&dir).expect("fingerprint");
    assert_eq!(a, b, "fingerprint not deterministic");
    let reopened = ModelFiles::open(&dir).expect("reopen");
    assert_eq!(reopened.fingerprint().expect("fingerprint"), a);
    drop(reopened);
    assert_eq!(
        sequential_fingerprint(&model),
        a,
        "parallel and single-threaded fingerprints differ"
    );
    eprintln!(
        "validated: {} tensors, {} files, {:.2} GB tensor data ({:.2} GB files), fingerprint {a}",
        model.len(),
        files.len(),
        gb(data_bytes),
        gb(file_bytes),
    );

    let (best, fp) = best_of(RUNS, || fingerprint_model_dir(&dir).expect("fingerprint"));
    assert_eq!(fp, a);
    let (seq_time, seq) = best_of(RUNS, || sequential_fingerprint(&model));
    assert_eq!(seq, a);
    let rate = gb(data_bytes) / best.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "fingerprint: {:.2} GB in {:.3} s = {rate:.2} GB/s (best of {RUNS}; target >= {TARGET_GB_PER_S} GB/s on 2 cores; {cores} cores, {} rayon threads here)",
        gb(data_bytes),
        best.as_secs_f64(),
        rayon::current_num_threads(),
    );
    println!(
        "blake3 single-thread baseline: {:.2} GB in {:.3} s = {:.2} GB/s (same bytes, best of {RUNS})",
        gb(data_bytes),
        seq_time.as_secs_f64(),
        gb(data_bytes) / seq_time.as_secs_f64(),
    );
    if rate < TARGET_GB_PER_S {
        println!("BELOW TARGET: {rate:.2} GB/s < {TARGET_GB_PER_S} GB/s");
    }
}
