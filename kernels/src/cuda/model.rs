//! The model on the GPU: weights uploaded once (q/k/v and gate/up fused
//! into one matrix each), KV caches in slots, and the forward pass.
use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaView};
use grail_engine::kernels::{Mat, WDtype};
use grail_engine::{Model, ModelConfig};

use super::device::{AttnScratch, DBuf, Gpu, RopeKv};
use super::CudaError;
use crate::twins::{attention_unsupported, gemm_rows, gemm_supported, rope_table, AttnShape, Dt};

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

/// Which code computes a forward pass's products with the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gemm {
    /// cuBLAS (`cublasGemmEx`) for every product: the default.
    Cublas,
    /// Our gemm.cu wherever it serves the shape ([`gemm_supported`]: bf16
    /// weights, up to 64 rows, as decode steps), cuBLAS for the rest
    /// (prefill, f32 checkpoints); the gate/up projection fused with its
    /// activation ([`CudaModel::fused_swiglu`]), and the q/k/v projection
    /// with rope and the cache write ([`CudaModel::fused_rope`]).
    Grail,
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
    /// Decode steps replay a recorded graph (one per batch size) instead of
    /// launching their 9 kernels per layer one by one.
    decode_graphs: bool,
    /// Which code multiplies by the weights.
    gemm: Gemm,
    /// Decode graphs recorded so far.
    pub(crate) graph_captures: std::sync::atomic::AtomicUsize,
    /// Held by each `generate_groups` call: they share the device's one
    /// stream, and a stream capture would record another call's launches.
    pub(crate) generating: std::sync::Mutex<()>,
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

    /// For each `(from, to, len)`, copies the first `len` positions of slot
    /// `from` into slot `to`, every layer and head (forking prompts into
    /// their continuations), in one kernel launch. Destinations are
    /// distinct and never a source.
    pub fn fork(&mut self, gpu: &Gpu, pairs: &[(u32, u32, u32)]) -> Result<(), CudaError> {
        if pairs.is_empty() {
            return Ok(());
        }
        // the copies run in parallel: no slot may be both read and written,
        // nor written twice
        for (i, &(from, to, len)) in pairs.iter().enumerate() {
            assert!(
                (from as usize) < self.slots
                    && (to as usize) < self.slots
                    && len as usize <= self.shape.cap
                    && pairs.iter().all(|p| p.0 != to)
                    && pairs[..i].iter().all(|p| p.1 != to),
                "fork pairs {pairs:?}"
            );
        }
        let col = |f: fn(&(u32, u32, u32)) -> u32| pairs.iter().map(f).collect::<Vec<u32>>();
        let from = gpu.upload(&col(|p| p.0), "fork sources")?;
        let to = gpu.upload(&col(|p| p.1), "fork destinations")?;
        let n = gpu.upload(&col(|p| p.2), "fork lengths")?;
        gpu.kv_fork(
            &mut self.k,
            &mut self.v,
            self.layers,
            self.slots,
            self.shape,
            &from,
            &to,
            &n,
        )
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
            decode_graphs: true,
            gemm: Gemm::Cublas,
            graph_captures: std::sync::atomic::AtomicUsize::new(0),
            generating: std::sync::Mutex::new(()),
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

    /// Whether decode steps replay CUDA graphs (the default) or launch
    /// their kernels one by one; both compute the same thing with the same
    /// kernels.
    pub fn set_decode_graphs(&mut self, on: bool) {
        self.decode_graphs = on;
    }

    pub fn decode_graphs(&self) -> bool {
        self.decode_graphs
    }

    /// Whether a pass of `rows` rows runs the gate/up projection and its
    /// activation as one launch, gemm.cu's fused form, and launches nothing
    /// for [`ForwardOp::SiluMul`]: with [`Gemm::Grail`] where gemm.cu serves
    /// the product. The fused form takes the product's own splits of k, so
    /// it computes exactly what the two launches would.
    pub fn fused_swiglu(&self, rows: usize) -> bool {
        self.grail_serves(rows, self.config().hidden_size)
    }

    /// Whether a product of `m` rows over `k` with the weights runs on
    /// gemm.cu: with [`Gemm::Grail`], where it serves the shape.
    fn grail_serves(&self, m: usize, k: usize) -> bool {
        self.gemm == Gemm::Grail && gemm_supported(self.dt, m, k, 0)
    }

    /// Whether a pass of `rows` rows runs the q/k/v projection, rope and the
    /// cache write as one launch, gemm.cu's fused form, and launches nothing
    /// for [`ForwardOp::RopeKv`]: as [`CudaModel::fused_swiglu`], for head
    /// dimensions that are multiples of 32.
    pub fn fused_rope(&self, rows: usize) -> bool {
        self.fused_swiglu(rows) && self.config().head_dim.is_multiple_of(32)
    }

    /// Where layer `l`'s rope (rope.cu, or gemm.cu's fused form) puts pass
    /// `p`'s queries (`q`) and keys and values (the layer's cache in `kv`,
    /// from element `off`).
    fn rope_kv<'a>(
        &'a self,
        l: &'a GpuLayer,
        inputs: &'a CudaSlice<u32>,
        p: Pass,
        q: &'a mut CudaSlice<f32>,
        kv: &'a mut KvCache,
        off: usize,
    ) -> RopeKv<'a> {
        RopeKv {
            bias: l.qkv_bias.as_ref(),
            table: &self.rope,
            pos: Input::Positions.of(inputs, p),
            slot: Input::Slots.of(inputs, p),
            shape: kv.shape,
            q_out: q,
            k_cache: &mut kv.k,
            v_cache: &mut kv.v,
            layer_offset: off,
            slots: kv.slots,
        }
    }

    /// Whether a pass of `rows` rows launches anything for `op`.
    pub fn launches(&self, op: ForwardOp, rows: usize) -> bool {
        match op {
            ForwardOp::SiluMul => !self.fused_swiglu(rows),
            ForwardOp::RopeKv => !self.fused_rope(rows),
            _ => true,
        }
    }

    /// Which code computes the products with the weights from now on.
    pub fn set_gemm(&mut self, gemm: Gemm) {
        self.gemm = gemm;
    }

    pub fn gemm(&self) -> Gemm {
        self.gemm
    }

    /// Decode graphs recorded so far by this model's `generate_groups`
    /// calls (one per batch and row count, see
    /// [`decode_graph_rows`](super::decode_graph_rows)).
    pub fn decode_graph_captures(&self) -> usize {
        self.graph_captures
            .load(std::sync::atomic::Ordering::Relaxed)
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

    /// Caches for `slots` sequences of up to `cap` positions (contents
    /// unspecified until written).
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
        // not zeroed: attention reads positions below each row's length
        // only, all written by rope_kv_write or copied by a fork
        Ok(KvCache {
            k: self.gpu.uninit_dt(self.dt, n, &what)?,
            v: self.gpu.uninit_dt(self.dt, n, &what)?,
            slots,
            shape: self.shape(cap),
            layers: c.num_layers,
        })
    }

    /// Device buffers for forward passes of up to `rows` rows, up to
    /// `out_rows` of which produce final hidden states and logits,
    /// attending over up to `cap` positions: allocated once (per generation
    /// batch) and reused by every pass, so a decode step allocates nothing.
    pub fn workspace(
        &self,
        rows: usize,
        out_rows: usize,
        cap: usize,
    ) -> Result<Workspace, CudaError> {
        let c = self.config();
        let g = &*self.gpu;
        let (h, d, nh, nkv, inter, dt) = (
            c.hidden_size,
            c.head_dim,
            c.num_heads,
            c.num_kv_heads,
            c.intermediate_size,
            self.dt,
        );
        let width = (nh + 2 * nkv) * d;
        let (rows, out_rows) = (rows.max(1), out_rows.max(1));
        // the inputs of products hold whole row tiles for gemm.cu
        let (tiles, out_tiles) = (gemm_rows(rows), gemm_rows(out_rows));
        Ok(Workspace {
            rows,
            out_rows,
            cap,
            inputs: g.uninit(4 * rows + out_rows, Input::WHAT)?,
            loaded: (0, 0),
            x: g.uninit(rows * h, "residual stream")?,
            xn: g.uninit_dt(dt, tiles * h, "normed activations")?,
            qkv: g.uninit(rows * width, "qkv")?,
            q: g.uninit(rows * nh * d, "queries")?,
            att: g.uninit_dt(dt, tiles * nh * d, "attention output")?,
            proj: g.uninit(rows * h, "projection")?,
            gu: g.uninit(rows * 2 * inter, "gate/up")?,
            act: g.uninit_dt(dt, tiles * inter, "mlp activation")?,
            scratch: g.attention_scratch(rows, nh, d, cap)?,
            hidden: g.uninit(out_rows * h, "final hidden states")?,
            hidden_t: g.uninit_dt(dt, out_tiles * h, "final hidden states (storage type)")?,
            logits: g.uninit(out_rows * c.vocab_size, "logits")?,
        })
    }

    /// Device bytes of a [`CudaModel::workspace`] per row (with as many
    /// output rows) at context `cap`, to size prefill passes.
    pub fn workspace_bytes_per_row(&self, cap: usize) -> usize {
        let c = self.config();
        let (h, d, nh, nkv, inter) = (
            c.hidden_size,
            c.head_dim,
            c.num_heads,
            c.num_kv_heads,
            c.intermediate_size,
        );
        let t = self.dt.size();
        let splits = cap.div_ceil(crate::twins::ATTN_SPLIT);
        5 * 4
            + 4 * (h + (nh + 2 * nkv) * d + nh * d + h + 2 * inter + h + c.vocab_size)
            + t * (h + nh * d + inter + h)
            + 4 * nh * splits * (d + 2)
    }

    /// Runs new tokens through the model: row `r` is token `tokens[r]` of the
    /// sequence in slot `slots[r]` at position `pos[r]` (rows of one slot in
    /// increasing position, earlier positions already cached). Returns the
    /// final hidden states of rows `out_rows`, in that order, and their
    /// logits if `logits`. Allocates its own workspace: for one-off passes;
    /// loops use [`CudaModel::forward_in`].
    pub fn forward(
        &self,
        kv: &mut KvCache,
        tokens: &[u32],
        slots: &[u32],
        pos: &[u32],
        out_rows: &[u32],
        logits: bool,
    ) -> Result<DeviceForward, CudaError> {
        let mut ws = self.workspace(tokens.len(), out_rows.len(), kv.cap())?;
        self.forward_in(&mut ws, kv, tokens, slots, pos, out_rows, logits)?;
        Ok(DeviceForward {
            rows: out_rows.len(),
            hidden: ws.hidden,
            logits: logits.then_some(ws.logits),
        })
    }

    /// [`CudaModel::forward`] in `ws`: the final hidden states of `out_rows`
    /// are the first `out_rows.len()` rows of `ws.hidden`, their logits (if
    /// `logits`) those of `ws.logits`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_in(
        &self,
        ws: &mut Workspace,
        kv: &mut KvCache,
        tokens: &[u32],
        slots: &[u32],
        pos: &[u32],
        out_rows: &[u32],
        logits: bool,
    ) -> Result<(), CudaError> {
        let max_len = self.forward_inputs(ws, kv, tokens, slots, pos, out_rows)?;
        self.forward_layers(ws, kv, tokens.len(), out_rows.len(), max_len, logits)
    }

    /// The checks and uploads of [`CudaModel::forward_in`]: the rows' inputs
    /// into `ws`. Returns the longest row's length (its attention span).
    pub fn forward_inputs(
        &self,
        ws: &mut Workspace,
        kv: &KvCache,
        tokens: &[u32],
        slots: &[u32],
        pos: &[u32],
        out_rows: &[u32],
    ) -> Result<usize, CudaError> {
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
        if rows > ws.rows || out_rows.len() > ws.out_rows || kv.cap() > ws.cap {
            return Err(CudaError::Unsupported(format!(
                "forward: {rows} rows ({} out) at context {} in a workspace for {} ({} out) at {}",
                out_rows.len(),
                kv.cap(),
                ws.rows,
                ws.out_rows,
                ws.cap
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
        // one upload (see Input), before the first launch: a
        // copy from pageable host memory waits for the stream, and one after
        // the layers would stall the host until they finished
        let lens: Vec<u32> = pos.iter().map(|&p| p + 1).collect();
        let n = out_rows.len();
        let mut block = vec![0u32; 4 * rows + n];
        for (what, src) in [
            (Input::Ids, tokens),
            (Input::Slots, slots),
            (Input::Positions, pos),
            (Input::Lengths, &lens),
            (Input::OutputRows, out_rows),
        ] {
            block[what.range(rows, n)].copy_from_slice(src);
        }
        g.upload_into(&block, &mut ws.inputs, Input::WHAT)?;
        ws.loaded = (rows, n);
        Ok(lens.iter().map(|&l| l as usize).max().unwrap_or(1))
    }

    /// The launches of [`CudaModel::forward_in`] over the inputs already in
    /// `ws` (`rows` rows, `n` output rows, attention over at most
    /// `max_len` positions): no copies and no allocations, so a stream
    /// capture can record them (with `max_len` the cache's capacity, the
    /// recording serves every step).
    pub fn forward_layers(
        &self,
        ws: &mut Workspace,
        kv: &mut KvCache,
        rows: usize,
        n: usize,
        max_len: usize,
        logits: bool,
    ) -> Result<(), CudaError> {
        let pass = Pass { rows, n, max_len };
        ws.check(kv, pass, "forward_layers");
        self.op(ForwardOp::Embedding, 0, ws, kv, pass)?;
        for li in 0..self.layers.len() {
            for op in ForwardOp::ALL.into_iter().filter(|op| op.in_layer()) {
                self.op(op, li, ws, kv, pass)?;
            }
        }
        if n > 0 {
            self.op(ForwardOp::FinalNorm, 0, ws, kv, pass)?;
            if logits {
                self.op(ForwardOp::LmHead, 0, ws, kv, pass)?;
            }
        }
        Ok(())
    }

    /// One launch (or cuBLAS call) of a forward pass: `op` of layer `li`
    /// (ignored by the ops outside the layers).
    fn op(
        &self,
        op: ForwardOp,
        li: usize,
        w: &mut Workspace,
        kv: &mut KvCache,
        p: Pass,
    ) -> Result<(), CudaError> {
        let c = self.config();
        let g = &*self.gpu;
        let (h, d, nh, inter) = (c.hidden_size, c.head_dim, c.num_heads, c.intermediate_size);
        let width = (nh + 2 * c.num_kv_heads) * d;
        let (rows, eps, dt) = (p.rows, c.rms_norm_eps, self.dt);
        let l = &self.layers[li];
        let off = li * kv.layer_len();
        let gemm = |x: &DBuf, m: usize, wt: &DBuf, n: usize, k: usize, out: &mut CudaSlice<f32>| {
            if self.grail_serves(m, k) {
                g.gemm_grail(x, m, wt, 0, n, k, out)
            } else {
                g.gemm(x, m, wt, 0, n, k, out)
            }
        };
        // the previous layer's down projection, not yet added to x
        let last_down_bias = |li: usize| self.layers[li].down_bias.as_ref();
        match op {
            ForwardOp::Embedding => {
                g.embedding(&self.embed, &Input::Ids.of(&w.inputs, p), rows, h, &mut w.x)
            } // (rows, h)
            // x += proj + bias; xn = norm(x): (rows, h)
            ForwardOp::InputNorm => g.rms_norm_residual(
                &mut w.x,
                (li > 0).then_some(&w.proj),
                li.checked_sub(1).and_then(last_down_bias),
                &l.input_norm,
                None,
                rows,
                eps,
                None,
                Some(&mut w.xn),
                dt,
            ),
            // q: (rows, nh d); k, v into the cache, straight from gemm.cu's
            // fused form
            ForwardOp::Qkv if self.fused_rope(rows) => {
                let dst = self.rope_kv(l, &w.inputs, p, &mut w.q, kv, off);
                g.gemm_grail_rope(&w.xn, rows, &l.wqkv, h, dst, g.gemm_splits(width, h))
            }
            ForwardOp::RopeKv if self.fused_rope(rows) => Ok(()),
            ForwardOp::Qkv => gemm(&w.xn, rows, &l.wqkv, width, h, &mut w.qkv), // (rows, (nh + 2 nkv) d)
            // q: (rows, nh d); k, v into the cache
            ForwardOp::RopeKv => {
                let dst = self.rope_kv(l, &w.inputs, p, &mut w.q, kv, off);
                g.rope_kv_write(&w.qkv, rows, dst)
            }
            // (rows, nh d)
            ForwardOp::Attention => g.attention(
                &w.q,
                &kv.k,
                &kv.v,
                off,
                kv.slots,
                &Input::Slots.of(&w.inputs, p),
                &Input::Lengths.of(&w.inputs, p),
                rows,
                p.max_len,
                kv.shape,
                1.0 / (d as f32).sqrt(),
                &mut w.scratch,
                &mut w.att,
            ),
            ForwardOp::OProj => gemm(&w.att, rows, &l.wo, h, nh * d, &mut w.proj), // (rows, h)
            ForwardOp::PostNorm => g.rms_norm_residual(
                &mut w.x,
                Some(&w.proj),
                l.o_bias.as_ref(),
                &l.post_norm,
                None,
                rows,
                eps,
                None,
                Some(&mut w.xn),
                dt,
            ), // (rows, h)
            // (rows, inter), straight from gemm.cu's fused form
            ForwardOp::GateUp if self.fused_swiglu(rows) => g.gemm_grail_swiglu(
                &w.xn,
                rows,
                &l.wgu,
                inter,
                h,
                l.gu_bias.as_ref(),
                &mut w.act,
                g.gemm_splits(2 * inter, h),
            ),
            ForwardOp::SiluMul if self.fused_swiglu(rows) => Ok(()),
            ForwardOp::GateUp => gemm(&w.xn, rows, &l.wgu, 2 * inter, h, &mut w.gu), // (rows, 2 inter)
            ForwardOp::SiluMul => g.silu_mul(&w.gu, l.gu_bias.as_ref(), rows, inter, &mut w.act), // (rows, inter)
            ForwardOp::Down => gemm(&w.act, rows, &l.wdown, h, inter, &mut w.proj), // (rows, h)
            // the output rows' final hidden states, f32 and storage type: (n, h)
            ForwardOp::FinalNorm => g.rms_norm_residual(
                &mut w.x,
                Some(&w.proj),
                last_down_bias(self.layers.len() - 1),
                &self.norm,
                Some(Input::OutputRows.of(&w.inputs, p)),
                p.n,
                eps,
                Some(&mut w.hidden),
                Some(&mut w.hidden_t),
                dt,
            ),
            ForwardOp::LmHead => {
                let head = self.lm_head.as_ref().unwrap_or(&self.embed);
                gemm(&w.hidden_t, p.n, head, c.vocab_size, h, &mut w.logits)
                // (n, vocab)
            }
        }
    }

    /// Device time of each kind of launch of a forward pass over the rows
    /// already in `ws` (as [`CudaModel::forward_layers`] with every row an
    /// output row and logits), each recorded alone `reps` times into a
    /// graph and replayed: the median of 3 replays after one, in seconds
    /// per launch; kinds that launch nothing ([`CudaModel::launches`]) are
    /// left out. Repeated launches compute from their own outputs (the
    /// values drift), which changes nothing about their time. For
    /// benchmarks: it overwrites `ws` and the cache at the rows' positions.
    pub fn profile_ops(
        &self,
        ws: &mut Workspace,
        kv: &mut KvCache,
        rows: usize,
        max_len: usize,
        reps: usize,
    ) -> Result<Vec<(ForwardOp, f64)>, CudaError> {
        assert!(reps > 0);
        let pass = Pass {
            rows,
            n: rows,
            max_len,
        };
        ws.check(kv, pass, "profile_ops");
        ForwardOp::ALL
            .iter()
            .filter(|&&op| self.launches(op, rows))
            .map(|&op| {
                let graph = self
                    .gpu
                    .capture(|| (0..reps).try_for_each(|_| self.op(op, 0, ws, kv, pass)))?;
                Ok((op, self.gpu.time_replays(&graph)? / reps as f64))
            })
            .collect()
    }
}

/// The sizes of one forward pass's launches.
#[derive(Debug, Clone, Copy)]
struct Pass {
    rows: usize,
    /// Output rows (final norm and LM head).
    n: usize,
    /// Attention span.
    max_len: usize,
}

/// The kinds of launch of a forward pass, in order (those
/// [`ForwardOp::in_layer`] once per layer), one kernel each (attention's
/// splits merge inside its one launch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOp {
    Embedding,
    InputNorm,
    Qkv,
    RopeKv,
    Attention,
    OProj,
    PostNorm,
    GateUp,
    SiluMul,
    Down,
    FinalNorm,
    LmHead,
}

impl ForwardOp {
    /// Every kind, in forward order.
    pub const ALL: [ForwardOp; 12] = [
        ForwardOp::Embedding,
        ForwardOp::InputNorm,
        ForwardOp::Qkv,
        ForwardOp::RopeKv,
        ForwardOp::Attention,
        ForwardOp::OProj,
        ForwardOp::PostNorm,
        ForwardOp::GateUp,
        ForwardOp::SiluMul,
        ForwardOp::Down,
        ForwardOp::FinalNorm,
        ForwardOp::LmHead,
    ];

    /// Whether each layer launches it (the rest run once per pass).
    pub fn in_layer(self) -> bool {
        !matches!(
            self,
            ForwardOp::Embedding | ForwardOp::FinalNorm | ForwardOp::LmHead
        )
    }

    /// Launches of this kind per forward pass of a model of `layers` layers.
    pub fn per_pass(self, layers: usize) -> usize {
        if self.in_layer() {
            layers
        } else {
            1
        }
    }
}

/// The per-row inputs of a forward pass of `rows` rows with `n` output
/// rows, at their places in [`Workspace`]'s input block: token ids, slots,
/// positions and lengths (`rows` each), then the output rows (`n`).
#[derive(Debug, Clone, Copy)]
enum Input {
    Ids,
    Slots,
    Positions,
    Lengths,
    OutputRows,
}

impl Input {
    /// What the input block holds, for error messages.
    const WHAT: &'static str = "token ids, slots, positions, lengths, output rows";

    /// Its place in the input block of `rows` rows and `n` output rows.
    fn range(self, rows: usize, n: usize) -> std::ops::Range<usize> {
        let (start, len) = match self {
            Input::Ids => (0, rows),
            Input::Slots => (rows, rows),
            Input::Positions => (2 * rows, rows),
            Input::Lengths => (3 * rows, rows),
            Input::OutputRows => (4 * rows, n),
        };
        start..start + len
    }

    /// Its part of `block`, a workspace's input block, in pass `p`.
    fn of(self, block: &CudaSlice<u32>, p: Pass) -> CudaView<'_, u32> {
        block.slice(self.range(p.rows, p.n))
    }
}

/// Device buffers of forward passes ([`CudaModel::workspace`]); after
/// [`CudaModel::forward_in`], `hidden` and `logits` hold its outputs.
pub struct Workspace {
    rows: usize,
    out_rows: usize,
    cap: usize,
    /// The rows' inputs, uploaded together by `forward_inputs` (see
    /// [`Input`]).
    inputs: CudaSlice<u32>,
    /// `(rows, output rows)` of the inputs last uploaded.
    loaded: (usize, usize),
    x: CudaSlice<f32>,
    xn: DBuf,
    qkv: CudaSlice<f32>,
    q: CudaSlice<f32>,
    att: DBuf,
    proj: CudaSlice<f32>,
    gu: CudaSlice<f32>,
    act: DBuf,
    scratch: AttnScratch,
    /// Final hidden states (f32) of the output rows: `out_rows x hidden`.
    pub hidden: CudaSlice<f32>,
    hidden_t: DBuf,
    /// Their logits: `out_rows x vocab`.
    pub logits: CudaSlice<f32>,
}

impl Workspace {
    /// Panics unless pass `p` fits this workspace and `kv`, and runs over
    /// the inputs `forward_inputs` last loaded (`caller` names who asks).
    fn check(&self, kv: &KvCache, p: Pass, caller: &str) {
        assert!(
            p.rows <= self.rows
                && p.n <= self.out_rows
                && p.max_len <= kv.cap()
                && kv.cap() <= self.cap,
            "{caller}: a pass of {p:?} on a workspace of {} rows, {} output rows, capacity {}, and a cache of capacity {}",
            self.rows,
            self.out_rows,
            self.cap,
            kv.cap()
        );
        assert_eq!(
            self.loaded,
            (p.rows, p.n),
            "{caller} over other inputs than forward_inputs loaded"
        );
    }
}
