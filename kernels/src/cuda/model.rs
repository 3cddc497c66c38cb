//! The model on the GPU: weights uploaded once (q/k/v and gate/up fused
//! into one matrix each), KV caches in slots, and the forward pass.
use std::sync::Arc;

use cudarc::driver::CudaSlice;
use grail_engine::kernels::{Mat, WDtype};
use grail_engine::{Model, ModelConfig};

use super::device::{DBuf, Gpu};
use super::CudaError;
use crate::twins::{attention_unsupported, rope_table, AttnShape, Dt};

/// Most positions the rotary table is built for.
pub const MAX_GPU_POSITIONS: usize = 1 << 17;

struct GpuLayer {
    input_norm: CudaSlice<f32>,
    wqkv: DBuf,
    qkv_bias: Option<CudaSlice<f32>>,
    wo: DBuf,
    o_bias: Option<CudaSlice<f32>>,
    post_norm: CudaSlice<f32>,
    wgu: DBuf,
    gu_bias: Option<CudaSlice<f32>>,
    wdown: DBuf,
    down_bias: Option<CudaSlice<f32>>,
}

/// A model on the GPU, beside the CPU [`Model`] it was uploaded from (its
/// configuration, limits and request checks are the backend's).
pub struct CudaModel {
    gpu: Arc<Gpu>,
    cpu: Model,
    dt: Dt,
    embed: DBuf,
    /// `None` when tied to the embedding.
    lm_head: Option<DBuf>,
    layers: Vec<GpuLayer>,
    norm: CudaSlice<f32>,
    rope: CudaSlice<f32>,
    weight_bytes: usize,
}

impl std::fmt::Debug for CudaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaModel")
            .field("gpu", &self.gpu)
            .field("dt", &self.dt)
            .field("weight_bytes", &self.weight_bytes)
            .finish()
    }
}

/// Rows concatenated, in `dt` (bf16 bits kept; f32 / f16 / bf16 widened to
/// f32 for `Dt::F32`).
fn upload_mats(gpu: &Gpu, dt: Dt, mats: &[Mat<'_>], what: &str) -> Result<DBuf, CudaError> {
    match dt {
        Dt::Bf16 => {
            let bits: Vec<u16> = mats
                .iter()
                .flat_map(|m| {
                    assert_eq!(m.dtype, WDtype::BF16);
                    m.data
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                })
                .collect();
            Ok(DBuf::Bf16(gpu.upload(&bits, what)?))
        }
        Dt::F32 => {
            let mut out = Vec::new();
            for m in mats {
                let start = out.len();
                out.resize(start + m.rows * m.cols, 0f32);
                grail_engine::kernels::to_f32(m.dtype, m.data, &mut out[start..]);
            }
            Ok(DBuf::F32(gpu.upload(&out, what)?))
        }
    }
}

fn upload_bias(
    gpu: &Gpu,
    parts: &[Option<&[f32]>],
    what: &str,
) -> Result<Option<CudaSlice<f32>>, CudaError> {
    if parts.iter().all(Option::is_none) {
        return Ok(None);
    }
    let v: Vec<f32> = parts
        .iter()
        .flat_map(|p| {
            p.expect("biases come all or none (config flags)")
                .iter()
                .copied()
        })
        .collect();
    Ok(Some(gpu.upload(&v, what)?))
}

/// KV caches for `slots` sequences of up to `cap` positions, all layers:
/// `[layer][slot][kv_head][position][head_dim]` in the model's storage type.
pub struct KvCache {
    k: DBuf,
    v: DBuf,
    slots: usize,
    shape: AttnShape,
    layers: usize,
}

impl KvCache {
    fn layer_len(&self) -> usize {
        self.slots * self.shape.kv_heads * self.shape.cap * self.shape.head_dim
    }

    /// Slots (sequences) it holds.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Positions per slot.
    pub fn cap(&self) -> usize {
        self.shape.cap
    }

    /// Copies the first `len` positions of slot `from` into slot `to`, every
    /// layer and head (forking a prompt into several continuations).
    pub fn fork(&mut self, gpu: &Gpu, from: usize, to: usize, len: usize) -> Result<(), CudaError> {
        assert!(from < self.slots && to < self.slots && len <= self.shape.cap);
        let s = self.shape;
        for layer in 0..self.layers {
            for h in 0..s.kv_heads {
                let base = layer * self.layer_len();
                let (a, b) = (base + s.at(from, h, 0), base + s.at(to, h, 0));
                gpu.copy_within(&self.k, a, &self.k, b, len * s.head_dim)?;
                gpu.copy_within(&self.v, a, &self.v, b, len * s.head_dim)?;
            }
        }
        Ok(())
    }
}

/// What a forward pass leaves on the device: the final hidden states (f32)
/// of the requested rows and, if asked, their logits.
pub struct DeviceForward {
    pub rows: usize,
    pub hidden: CudaSlice<f32>,
    pub logits: Option<CudaSlice<f32>>,
}

impl CudaModel {
    /// Uploads `model` to `gpu`. bf16 checkpoints stay bf16; anything else
    /// runs in f32.
    pub fn new(gpu: Arc<Gpu>, model: Model) -> Result<CudaModel, CudaError> {
        let c = model.config().clone();
        let all_bf16 = (0..c.num_layers)
            .map(|i| model.layer_weights(i))
            .flat_map(|l| [l.q, l.k, l.v, l.o, l.gate, l.up, l.down])
            .chain([model.embed_weights(), model.lm_head_weights()])
            .all(|m| m.dtype == WDtype::BF16);
        let dt = if all_bf16 { Dt::Bf16 } else { Dt::F32 };
        if let Some(why) = attention_unsupported(c.num_heads, c.num_kv_heads, c.head_dim, dt) {
            return Err(CudaError::Unsupported(why));
        }
        if model.max_positions() > MAX_GPU_POSITIONS {
            return Err(CudaError::Unsupported(format!(
                "a context limit of {} positions: the cuda backend builds its rotary table for at most {MAX_GPU_POSITIONS}",
                model.max_positions()
            )));
        }
        let layers_w: Vec<_> = (0..c.num_layers).map(|i| model.layer_weights(i)).collect();
        let embed = upload_mats(
            &gpu,
            dt,
            &[model.embed_weights()],
            "model.embed_tokens.weight",
        )?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            Some(upload_mats(
                &gpu,
                dt,
                &[model.lm_head_weights()],
                "lm_head.weight",
            )?)
        };
        let mut layers = Vec::with_capacity(c.num_layers);
        for (i, l) in layers_w.iter().enumerate() {
            let name = |s: &str| format!("model.layers.{i}.{s}");
            layers.push(GpuLayer {
                input_norm: gpu.upload(l.input_norm, &name("input_layernorm.weight"))?,
                wqkv: upload_mats(
                    &gpu,
                    dt,
                    &[l.q, l.k, l.v],
                    &name("self_attn.{q,k,v}_proj.weight"),
                )?,
                qkv_bias: upload_bias(
                    &gpu,
                    &[l.q_bias, l.k_bias, l.v_bias],
                    &name("self_attn.{q,k,v}_proj.bias"),
                )?,
                wo: upload_mats(&gpu, dt, &[l.o], &name("self_attn.o_proj.weight"))?,
                o_bias: upload_bias(&gpu, &[l.o_bias], &name("self_attn.o_proj.bias"))?,
                post_norm: gpu.upload(l.post_norm, &name("post_attention_layernorm.weight"))?,
                wgu: upload_mats(
                    &gpu,
                    dt,
                    &[l.gate, l.up],
                    &name("mlp.{gate,up}_proj.weight"),
                )?,
                gu_bias: upload_bias(
                    &gpu,
                    &[l.gate_bias, l.up_bias],
                    &name("mlp.{gate,up}_proj.bias"),
                )?,
                wdown: upload_mats(&gpu, dt, &[l.down], &name("mlp.down_proj.weight"))?,
                down_bias: upload_bias(&gpu, &[l.down_bias], &name("mlp.down_proj.bias"))?,
            });
        }
        let norm = gpu.upload(model.final_norm(), "model.norm.weight")?;
        let rope = gpu.upload(
            &rope_table(model.inv_freq(), model.max_positions()),
            "rotary table",
        )?;
        let weight_bytes = layers
            .iter()
            .map(|l| l.wqkv.len() + l.wo.len() + l.wgu.len() + l.wdown.len())
            .sum::<usize>()
            * dt.size()
            + lm_head.as_ref().unwrap_or(&embed).len() * dt.size();
        Ok(CudaModel {
            gpu,
            cpu: model,
            dt,
            embed,
            lm_head,
            layers,
            norm,
            rope,
            weight_bytes,
        })
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The CPU model it was uploaded from.
    pub fn cpu(&self) -> &Model {
        &self.cpu
    }

    pub fn config(&self) -> &ModelConfig {
        self.cpu.config()
    }

    /// Storage type on the device.
    pub fn dt(&self) -> Dt {
        self.dt
    }

    /// Bytes of weight matrices one decode step reads (layers and LM head).
    pub fn weight_bytes_per_step(&self) -> usize {
        self.weight_bytes
    }

    /// Bytes of KV cache per position of one sequence.
    pub fn kv_bytes_per_position(&self) -> usize {
        let c = self.config();
        2 * c.num_layers * c.num_kv_heads * c.head_dim * self.dt.size()
    }

    fn shape(&self, cap: usize) -> AttnShape {
        let c = self.config();
        AttnShape {
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            cap,
        }
    }

    /// Zeroed caches for `slots` sequences of up to `cap` positions.
    pub fn new_cache(&self, slots: usize, cap: usize) -> Result<KvCache, CudaError> {
        let c = self.config();
        if cap == 0 || cap > self.cpu.max_positions() {
            return Err(CudaError::Engine(
                grail_engine::EngineError::ContextTooLong {
                    len: cap,
                    max: self.cpu.max_positions(),
                },
            ));
        }
        let n = c.num_layers * slots * c.num_kv_heads * cap * c.head_dim;
        let what = format!("KV cache ({slots} sequences x {cap} positions)");
        Ok(KvCache {
            k: self.gpu.zeros_dt(self.dt, n, &what)?,
            v: self.gpu.zeros_dt(self.dt, n, &what)?,
            slots,
            shape: self.shape(cap),
            layers: c.num_layers,
        })
    }

    /// Runs new tokens through the model: row `r` is token `tokens[r]` of the
    /// sequence in slot `slots[r]` at position `pos[r]` (rows of one slot in
    /// increasing position, earlier positions already cached). Returns the
    /// final hidden states of rows `out_rows`, in that order, and their
    /// logits if `logits`.
    pub fn forward(
        &self,
        kv: &mut KvCache,
        tokens: &[u32],
        slots: &[u32],
        pos: &[u32],
        out_rows: &[u32],
        logits: bool,
    ) -> Result<DeviceForward, CudaError> {
        let c = self.config();
        let g = &*self.gpu;
        let rows = tokens.len();
        if rows == 0 || slots.len() != rows || pos.len() != rows {
            return Err(CudaError::Unsupported(format!(
                "forward: {rows} tokens, {} slots, {} positions",
                slots.len(),
                pos.len()
            )));
        }
        if let Some((position, &token)) = tokens
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= c.vocab_size)
        {
            return Err(grail_engine::EngineError::TokenOutOfRange {
                token,
                position,
                vocab: c.vocab_size,
            }
            .into());
        }
        if let Some(&s) = slots.iter().find(|&&s| s as usize >= kv.slots) {
            return Err(CudaError::Unsupported(format!(
                "forward: slot {s} of a cache of {}",
                kv.slots
            )));
        }
        if let Some(&p) = pos.iter().find(|&&p| p as usize >= kv.cap()) {
            return Err(grail_engine::EngineError::ContextTooLong {
                len: p as usize + 1,
                max: kv.cap(),
            }
            .into());
        }
        if let Some(&r) = out_rows.iter().find(|&&r| r as usize >= rows) {
            return Err(CudaError::Unsupported(format!(
                "forward: output row {r} of {rows}"
            )));
        }
        let (h, d, nh, nkv, inter) = (
            c.hidden_size,
            c.head_dim,
            c.num_heads,
            c.num_kv_heads,
            c.intermediate_size,
        );
        let width = (nh + 2 * nkv) * d;
        let shape = kv.shape;
        let scale = 1.0 / (d as f32).sqrt();
        let eps = c.rms_norm_eps;
        let dt = self.dt;
        let max_len = pos.iter().map(|&p| p as usize + 1).max().unwrap_or(1);
        let len: Vec<u32> = pos.iter().map(|&p| p + 1).collect();

        let ids_d = g.upload(tokens, "token ids")?;
        let slot_d = g.upload(slots, "slots")?;
        let pos_d = g.upload(pos, "positions")?;
        let len_d = g.upload(&len, "lengths")?;
        let mut x = g.zeros::<f32>(rows * h, "residual stream")?; // (rows, h)
        let mut xn = g.zeros_dt(dt, rows * h, "normed activations")?; // (rows, h)
        let mut qkv = g.zeros::<f32>(rows * width, "qkv")?; // (rows, (nh + 2 nkv) d)
        let mut q = g.zeros::<f32>(rows * nh * d, "queries")?; // (rows, nh d)
        let mut att = g.zeros_dt(dt, rows * nh * d, "attention output")?; // (rows, nh d)
        let mut proj = g.zeros::<f32>(rows * h, "projection")?; // (rows, h)
        let mut gu = g.zeros::<f32>(rows * 2 * inter, "gate/up")?; // (rows, 2 inter)
        let mut act = g.zeros_dt(dt, rows * inter, "mlp activation")?; // (rows, inter)

        g.embedding(&self.embed, &ids_d, h, &mut x)?;
        let mut prev_bias: Option<&CudaSlice<f32>> = None;
        for (li, l) in self.layers.iter().enumerate() {
            let delta = (li > 0).then_some(&proj);
            g.rms_norm_residual(
                &mut x,
                delta,
                prev_bias,
                &l.input_norm,
                None,
                rows,
                eps,
                None,
                Some(&mut xn),
                dt,
            )?;
            g.gemm(&xn, rows, &l.wqkv, 0, width, h, &mut qkv)?;
            let off = li * kv.layer_len();
            g.rope_kv_write(
                &qkv,
                l.qkv_bias.as_ref(),
                &self.rope,
                &pos_d,
                &slot_d,
                shape,
                &mut q,
                &mut kv.k,
                &mut kv.v,
                off,
                kv.slots,
            )?;
            g.attention(
                &q, &kv.k, &kv.v, off, kv.slots, &slot_d, &len_d, max_len, shape, scale, &mut att,
            )?;
            g.gemm(&att, rows, &l.wo, 0, h, nh * d, &mut proj)?;
            g.rms_norm_residual(
                &mut x,
                Some(&proj),
                l.o_bias.as_ref(),
                &l.post_norm,
                None,
                rows,
                eps,
                None,
                Some(&mut xn),
                dt,
            )?;
            g.gemm(&xn, rows, &l.wgu, 0, 2 * inter, h, &mut gu)?;
            g.silu_mul(&gu, l.gu_bias.as_ref(), rows, inter, &mut act)?;
            g.gemm(&act, rows, &l.wdown, 0, h, inter, &mut proj)?;
            prev_bias = l.down_bias.as_ref();
        }
        let n = out_rows.len();
        let mut hidden = g.zeros::<f32>(n.max(1) * h, "final hidden states")?; // (n, h)
        let mut logits_d = None;
        if n > 0 {
            let rows_d = g.upload(out_rows, "output rows")?;
            let mut hidden_t = g.zeros_dt(dt, n * h, "final hidden states (storage type)")?;
            g.rms_norm_residual(
                &mut x,
                Some(&proj),
                prev_bias,
                &self.norm,
                Some(&rows_d),
                n,
                eps,
                Some(&mut hidden),
                Some(&mut hidden_t),
                dt,
            )?;
            if logits {
                let mut out = g.zeros::<f32>(n * c.vocab_size, "logits")?; // (n, vocab)
                let head = self.lm_head.as_ref().unwrap_or(&self.embed);
                g.gemm(&hidden_t, n, head, 0, c.vocab_size, h, &mut out)?;
                logits_d = Some(out);
            }
        }
        Ok(DeviceForward {
            rows: n,
            hidden,
            logits: logits_d,
        })
    }
}
