//! Random-initialized checkpoints of real model shapes, written to disk on
//! the fly for benchmarks (never committed): `config.json` plus one
//! `model.safetensors`, streamed tensor by tensor so writing a 3 GB
//! checkpoint needs a few MB of memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use grail_core::hash::{derive, Digest};
use serde_json::json;

use crate::kernels::WDtype;

/// The shape of a Qwen2-family checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub vocab: usize,
    pub tied: bool,
}

/// Qwen2.5-0.5B (494M parameters).
pub const QWEN2_5_0_5B: Shape = Shape {
    name: "Qwen2.5-0.5B",
    hidden: 896,
    intermediate: 4864,
    layers: 24,
    heads: 14,
    kv_heads: 2,
    vocab: 151_936,
    tied: true,
};

/// Qwen2.5-1.5B (1.54B parameters).
pub const QWEN2_5_1_5B: Shape = Shape {
    name: "Qwen2.5-1.5B",
    hidden: 1536,
    intermediate: 8960,
    layers: 28,
    heads: 12,
    kv_heads: 2,
    vocab: 151_936,
    tied: true,
};

impl Shape {
    /// Tensor names and shapes in file order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.hidden / self.heads;
        let (h, i, q, kv) = (
            self.hidden,
            self.intermediate,
            self.heads * d,
            self.kv_heads * d,
        );
        let mut t = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab, h])];
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            t.push((format!("{p}.input_layernorm.weight"), vec![h]));
            t.push((format!("{p}.self_attn.q_proj.weight"), vec![q, h]));
            t.push((format!("{p}.self_attn.q_proj.bias"), vec![q]));
            t.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h]));
            t.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
            t.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h]));
            t.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
            t.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
            t.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            t.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
            t.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
            t.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
        }
        t.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tied {
            t.push(("lm_head.weight".to_string(), vec![self.vocab, h]));
        }
        t
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        self.tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "vocab_size": self.vocab,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": self.tied,
            "hidden_act": "silu",
            "use_sliding_window": false,
            "bos_token_id": 151643,
            "eos_token_id": 151645
        })
    }
}

/// Writes `config.json` and `model.safetensors` for `shape` into `dir`, all
/// values drawn from a seeded xorshift: matrices uniform with the standard
/// deviation of a `1/sqrt(fan_in)` init, biases small, norms near 1.
pub fn write_checkpoint(
    dir: &Path,
    shape: &Shape,
    dtype: WDtype,
    seed: u64,
) -> std::io::Result<()> {
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&shape.config())?,
    )?;
    let (label, size) = match dtype {
        WDtype::F32 => ("F32", 4),
        WDtype::BF16 => ("BF16", 2),
        WDtype::F16 => ("F16", 2),
    };
    let tensors = shape.tensors();
    let mut header = serde_json::Map::new();
    // what save_pretrained writes, and some transformers versions require
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, s) in &tensors {
        let n = s.iter().product::<usize>() * size;
        header.insert(
            name.clone(),
            json!({"dtype": label, "shape": s, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    let mut hbytes = serde_json::to_vec(&serde_json::Value::Object(header))?;
    while hbytes.len() % 8 != 0 {
        hbytes.push(b' ');
    }
    let mut f = BufWriter::with_capacity(1 << 20, File::create(dir.join("model.safetensors"))?);
    f.write_all(&(hbytes.len() as u64).to_le_bytes())?;
    f.write_all(&hbytes)?;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = Vec::with_capacity(1 << 20);
    for (name, s) in &tensors {
        let n: usize = s.iter().product();
        let (center, spread) = if name.ends_with("norm.weight") {
            (1.0, 0.1)
        } else if name.ends_with(".bias") {
            (0.0, 0.02)
        } else {
            // uniform on [-a, a] has std a/sqrt(3); target std 1/sqrt(fan_in)
            (0.0, 3f32.sqrt() / (s[s.len() - 1] as f32).sqrt())
        };
        let mut left = n;
        while left > 0 {
            let chunk = left.min(1 << 18);
            buf.clear();
            for _ in 0..chunk {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                let v = center + spread * u;
                match dtype {
                    WDtype::F32 => buf.extend_from_slice(&v.to_le_bytes()),
                    WDtype::BF16 => {
                        buf.extend_from_slice(&half::bf16::from_f32(v).to_bits().to_le_bytes())
                    }
                    WDtype::F16 => {
                        buf.extend_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes())
                    }
                }
            }
            f.write_all(&buf)?;
            left -= chunk;
        }
    }
    f.flush()
}

/// A benchmark's prompt: `len` pseudo-random token ids below `vocab` for
/// group `group`, the same on every machine (the CPU and CUDA benchmarks
/// measure the same workload).
pub fn bench_prompt(group: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len)
        .map(|i| {
            let d = derive(
                "grail/v1/bench-prompt",
                &[&(group as u32).to_le_bytes(), &(i as u32).to_le_bytes()],
            );
            u32::from_le_bytes([d[0], d[1], d[2], d[3]]) % vocab as u32
        })
        .collect()
}

/// A benchmark's sampling seeds: one per rollout of group `group`.
pub fn bench_seeds(group: usize, rollouts: usize) -> Vec<Digest> {
    (0..rollouts as u32)
        .map(|r| {
            derive(
                "grail/v1/bench-seed",
                &[&(group as u32).to_le_bytes(), &r.to_le_bytes()],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file is one that other loaders take as well as ours (ours loads
    /// it in kernels/check's forward tests): the safetensors crate reads it, every tensor of the shape is there at
    /// its dtype and shape, and the header says `{"format": "pt"}` (what
    /// `save_pretrained` writes; some transformers versions refuse a file
    /// without it, and cuda-bench hands this checkpoint to transformers).
    #[test]
    fn checkpoint_is_a_safetensors_file_transformers_loads() {
        let shape = Shape {
            name: "tiny",
            hidden: 64,
            intermediate: 96,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            vocab: 300,
            tied: false,
        };
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), &shape, WDtype::BF16, 3).unwrap();
        let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let format = meta.metadata().as_ref().and_then(|m| m.get("format"));
        assert_eq!(format.map(String::as_str), Some("pt"));
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let want = shape.tensors();
        assert_eq!(file.len(), want.len());
        for (name, dims) in &want {
            let t = file.tensor(name).unwrap();
            assert_eq!(t.dtype(), safetensors::Dtype::BF16, "{name}");
            assert_eq!(t.shape(), dims.as_slice(), "{name}");
        }
    }
}
