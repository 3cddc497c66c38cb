//! Loading a checkpoint and running it: [`Model`] (memory-mapped weights,
//! validated against the config), [`Sequence`] (one sequence's KV cache) and
//! [`Model::forward`] (batched prefill or decode over sequences of different
//! lengths).

use std::path::{Path, PathBuf};

use grail_core::tensors::{Dtype, ModelFiles};
use rayon::prelude::*;

use crate::config::{ModelConfig, RopeScaling};
use crate::error::EngineError;
use crate::kernels::{self, Mat, WDtype};

/// A matrix in the checkpoint: where it is, not a borrow of it.
#[derive(Debug, Clone, Copy)]
struct MatRef {
    tensor: usize,
    dtype: WDtype,
    rows: usize,
    cols: usize,
}

#[derive(Debug)]
struct Layer {
    input_norm: Vec<f32>,
    q: MatRef,
    k: MatRef,
    v: MatRef,
    o: MatRef,
    q_bias: Option<Vec<f32>>,
    k_bias: Option<Vec<f32>>,
    v_bias: Option<Vec<f32>>,
    o_bias: Option<Vec<f32>>,
    post_norm: Vec<f32>,
    gate: MatRef,
    up: MatRef,
    down: MatRef,
    gate_bias: Option<Vec<f32>>,
    up_bias: Option<Vec<f32>>,
    down_bias: Option<Vec<f32>>,
}

/// One decoder layer's parameters, borrowed from a [`Model`]
/// ([`Model::layer_weights`]); field names follow the checkpoint keys.
#[derive(Debug, Clone, Copy)]
pub struct LayerWeights<'a> {
    pub input_norm: &'a [f32],
    pub q: Mat<'a>,
    pub k: Mat<'a>,
    pub v: Mat<'a>,
    pub o: Mat<'a>,
    pub q_bias: Option<&'a [f32]>,
    pub k_bias: Option<&'a [f32]>,
    pub v_bias: Option<&'a [f32]>,
    pub o_bias: Option<&'a [f32]>,
    pub post_norm: &'a [f32],
    pub gate: Mat<'a>,
    pub up: Mat<'a>,
    pub down: Mat<'a>,
    pub gate_bias: Option<&'a [f32]>,
    pub up_bias: Option<&'a [f32]>,
    pub down_bias: Option<&'a [f32]>,
}

/// A loaded model: configuration plus memory-mapped weights. Matrices stay
/// in their stored dtype (bf16 / f16 / f32) in the page cache and are
/// converted to f32 a few rows at a time as they are used; only norms and
/// biases are copied (to f32) at load.
pub struct Model {
    /// Unique per loaded instance (sequences remember it).
    id: u64,
    config: ModelConfig,
    files: ModelFiles,
    embed: MatRef,
    lm_head: MatRef,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    inv_freq: Vec<f32>,
    /// Longest sequence [`Model::forward`] accepts ([`Model::max_positions`]).
    max_positions: usize,
}

/// The most positions [`Model::set_max_positions`] allows. Rotary angles
/// are `position * inv_freq` in f32, as transformers computes them, and
/// positions are exact in f32 up to 2^24; past this bound a sequence's KV
/// cache alone would outgrow any machine the engine runs on.
pub const MAX_POSITIONS: usize = 1 << 20;

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("dir", &self.files.dir())
            .field("config", &self.config)
            .field("max_positions", &self.max_positions)
            .finish()
    }
}

/// One sequence's state: its length and its KV cache (f32, per layer and KV
/// head, `len` positions of `head_dim` in blocks of
/// [`kernels::KV_BLOCK`](crate::kernels::KV_BLOCK) positions). Clone it to fork a shared prompt into
/// several continuations.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// The [`Model`] instance that made it ([`Model::new_sequence`]); its
    /// cache layout is that model's.
    model_id: u64,
    len: usize,
    /// `[layer * kv_heads + h]`
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

impl Sequence {
    /// Number of tokens processed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Which positions [`Model::forward`] computes logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor<'a> {
    /// None (hidden states only).
    None,
    /// The last new token of each sequence (generation).
    Last,
    /// Every new token.
    All,
    /// These rows of the output (indices into the concatenated new tokens
    /// of all sequences), in the order given: a verifier needs logits only
    /// at the positions it opens, and the LM head is the largest matrix.
    Rows(&'a [usize]),
}

/// What [`Model::forward`] returns. Rows are the new tokens of all
/// sequences in batch order.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// Hidden size.
    pub hidden_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Final hidden states (after the final norm: what the LM head reads),
    /// `rows x hidden_size`.
    pub hidden: Vec<f32>,
    /// The row index (into `hidden`) of each logits row.
    pub logit_rows: Vec<usize>,
    /// `logit_rows.len() x vocab_size`.
    pub logits: Vec<f32>,
    /// First row of each sequence's new tokens, plus the total at the end.
    pub offsets: Vec<usize>,
}

impl ForwardOutput {
    /// Final hidden state of row `r`.
    pub fn hidden_row(&self, r: usize) -> &[f32] {
        &self.hidden[r * self.hidden_size..(r + 1) * self.hidden_size]
    }

    /// The `i`-th logits row (row `logit_rows[i]`).
    pub fn logits_row(&self, i: usize) -> &[f32] {
        &self.logits[i * self.vocab_size..(i + 1) * self.vocab_size]
    }

    /// Log-softmax at `temperature` of `token` under the `i`-th logits row
    /// (PROTOCOL.md §5.2's logprob; temperature 1 is the plain
    /// log-softmax).
    pub fn logprob(
        &self,
        i: usize,
        temperature: f64,
        token: u32,
    ) -> Result<f64, grail_core::sampling::SamplingError> {
        grail_core::sampling::logprob(self.logits_row(i), temperature, token)
    }
}

fn wdtype(dtype: Dtype) -> Option<WDtype> {
    match dtype {
        Dtype::F32 => Some(WDtype::F32),
        Dtype::BF16 => Some(WDtype::BF16),
        Dtype::F16 => Some(WDtype::F16),
        _ => None,
    }
}

struct Loader<'a> {
    files: &'a ModelFiles,
    dir: PathBuf,
}

impl Loader<'_> {
    fn find(&self, name: &str) -> Result<usize, EngineError> {
        self.files
            .tensor_index(name)
            .ok_or_else(|| EngineError::MissingTensor {
                dir: self.dir.clone(),
                tensor: name.to_string(),
            })
    }

    fn checked(&self, name: &str, expected: &[usize]) -> Result<(usize, WDtype), EngineError> {
        let i = self.find(name)?;
        let t = self.files.tensor_at(i);
        let dtype = wdtype(t.dtype).ok_or_else(|| EngineError::TensorDtype {
            tensor: name.to_string(),
            file: t.file.to_path_buf(),
            dtype: t.dtype_label.to_string(),
        })?;
        if t.shape != expected {
            return Err(EngineError::TensorShape {
                tensor: name.to_string(),
                file: t.file.to_path_buf(),
                found: t.shape.to_vec(),
                expected: expected.to_vec(),
            });
        }
        Ok((i, dtype))
    }

    fn mat(&self, name: &str, rows: usize, cols: usize) -> Result<MatRef, EngineError> {
        let (tensor, dtype) = self.checked(name, &[rows, cols])?;
        Ok(MatRef {
            tensor,
            dtype,
            rows,
            cols,
        })
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, EngineError> {
        let (i, dtype) = self.checked(name, &[len])?;
        let t = self.files.tensor_at(i);
        let mut out = vec![0f32; len];
        kernels::to_f32(dtype, t.data, &mut out);
        if let Some(index) = out.iter().position(|v| !v.is_finite()) {
            return Err(EngineError::NonFinite {
                tensor: name.to_string(),
                file: t.file.to_path_buf(),
                index,
            });
        }
        Ok(out)
    }

    fn bias(&self, on: bool, name: &str, len: usize) -> Result<Option<Vec<f32>>, EngineError> {
        on.then(|| self.vector(name, len)).transpose()
    }
}

/// Rotary inverse frequencies as transformers computes them in f32:
/// `1 / theta^(2i/d)`, then the configured scaling.
pub fn rope_inv_freq(config: &ModelConfig) -> Vec<f32> {
    let d = config.head_dim;
    let base: Vec<f32> = (0..d / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / d as f32;
            1.0 / (config.rope_theta.powf(f64::from(exponent)) as f32)
        })
        .collect();
    match config.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let (factor, low, high, old) = (
                factor as f32,
                low_freq_factor as f32,
                high_freq_factor as f32,
                old as f32,
            );
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_wavelen { f / factor } else { f };
                    let medium = (high_wavelen..=low_wavelen).contains(&wavelen);
                    if medium {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}

impl Model {
    /// Loads the model in `dir`: `config.json` (+ `generation_config.json`),
    /// then the safetensors weights, memory-mapped, every tensor the config
    /// implies checked for presence, dtype and shape.
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        if !dir.exists() {
            return Err(EngineError::MissingFile {
                path: dir.to_path_buf(),
            });
        }
        let config = ModelConfig::load(dir)?;
        let files = ModelFiles::open(dir)?;
        Self::from_parts(config, files)
    }

    /// A model from an already-validated config and opened files.
    pub fn from_parts(config: ModelConfig, files: ModelFiles) -> Result<Self, EngineError> {
        let c = &config;
        let l = Loader {
            files: &files,
            dir: files.dir().to_path_buf(),
        };
        let (h, d) = (c.hidden_size, c.head_dim);
        let (qd, kvd) = (c.num_heads * d, c.num_kv_heads * d);
        let embed = l.mat("model.embed_tokens.weight", c.vocab_size, h)?;
        let lm_head = if c.tie_word_embeddings {
            embed
        } else {
            l.mat("lm_head.weight", c.vocab_size, h)?
        };
        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let m = format!("{p}.mlp");
            layers.push(Layer {
                input_norm: l.vector(&format!("{p}.input_layernorm.weight"), h)?,
                q: l.mat(&format!("{a}.q_proj.weight"), qd, h)?,
                k: l.mat(&format!("{a}.k_proj.weight"), kvd, h)?,
                v: l.mat(&format!("{a}.v_proj.weight"), kvd, h)?,
                o: l.mat(&format!("{a}.o_proj.weight"), h, qd)?,
                q_bias: l.bias(c.qkv_bias, &format!("{a}.q_proj.bias"), qd)?,
                k_bias: l.bias(c.qkv_bias, &format!("{a}.k_proj.bias"), kvd)?,
                v_bias: l.bias(c.qkv_bias, &format!("{a}.v_proj.bias"), kvd)?,
                o_bias: l.bias(c.o_bias, &format!("{a}.o_proj.bias"), h)?,
                post_norm: l.vector(&format!("{p}.post_attention_layernorm.weight"), h)?,
                gate: l.mat(&format!("{m}.gate_proj.weight"), c.intermediate_size, h)?,
                up: l.mat(&format!("{m}.up_proj.weight"), c.intermediate_size, h)?,
                down: l.mat(&format!("{m}.down_proj.weight"), h, c.intermediate_size)?,
                gate_bias: l.bias(
                    c.mlp_bias,
                    &format!("{m}.gate_proj.bias"),
                    c.intermediate_size,
                )?,
                up_bias: l.bias(
                    c.mlp_bias,
                    &format!("{m}.up_proj.bias"),
                    c.intermediate_size,
                )?,
                down_bias: l.bias(c.mlp_bias, &format!("{m}.down_proj.bias"), h)?,
            });
        }
        let norm = l.vector("model.norm.weight", h)?;
        let inv_freq = rope_inv_freq(c);
        let max_positions = c.max_position_embeddings;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Model {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config,
            files,
            embed,
            lm_head,
            layers,
            norm,
            inv_freq,
            max_positions,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The longest sequence (prompt plus completion) [`Model::forward`] and
    /// generation accept: `max_position_embeddings` from the config unless
    /// changed with [`Model::set_max_positions`].
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Sets the longest sequence the model accepts to `n` (in
    /// `1..=`[`MAX_POSITIONS`]), above or below the config's
    /// `max_position_embeddings`. Sequences already longer than `n` can no
    /// longer grow.
    ///
    /// Past `max_position_embeddings` the results are still exact functions
    /// of the weights, computed as transformers computes them (it does not
    /// enforce the limit, and the rotary scalings the engine supports do
    /// not depend on the sequence length), but they lie outside the range
    /// the model was trained on: expect worse text, not different numbers.
    pub fn set_max_positions(&mut self, n: usize) -> Result<(), EngineError> {
        if !(1..=MAX_POSITIONS).contains(&n) {
            return Err(EngineError::MaxPositionsOutOfRange {
                requested: n,
                max: MAX_POSITIONS,
            });
        }
        self.max_positions = n;
        Ok(())
    }

    /// The memory-mapped checkpoint (for its fingerprint, say).
    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// Bytes of weight matrices one decode step reads: every layer matrix
    /// and the LM head. The gathered embedding rows, norms and biases are
    /// left out (a few KB per step).
    pub fn weight_bytes_per_step(&self) -> u64 {
        let size = |m: &MatRef| (m.rows * m.cols * m.dtype.size()) as u64;
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]
                    .iter()
                    .map(size)
                    .sum::<u64>()
            })
            .sum();
        layers + size(&self.lm_head)
    }

    /// Decoder layer `i`'s parameters as stored (for backends that upload
    /// them): matrices in their checkpoint dtype, norms and biases in f32.
    ///
    /// # Panics
    /// If `i >= num_layers`.
    pub fn layer_weights(&self, i: usize) -> LayerWeights<'_> {
        let l = &self.layers[i];
        LayerWeights {
            input_norm: &l.input_norm,
            q: self.mat(&l.q),
            k: self.mat(&l.k),
            v: self.mat(&l.v),
            o: self.mat(&l.o),
            q_bias: l.q_bias.as_deref(),
            k_bias: l.k_bias.as_deref(),
            v_bias: l.v_bias.as_deref(),
            o_bias: l.o_bias.as_deref(),
            post_norm: &l.post_norm,
            gate: self.mat(&l.gate),
            up: self.mat(&l.up),
            down: self.mat(&l.down),
            gate_bias: l.gate_bias.as_deref(),
            up_bias: l.up_bias.as_deref(),
            down_bias: l.down_bias.as_deref(),
        }
    }

    /// The token embedding matrix (`vocab x hidden`).
    pub fn embed_weights(&self) -> Mat<'_> {
        self.mat(&self.embed)
    }

    /// The LM head (`vocab x hidden`; the embedding when tied).
    pub fn lm_head_weights(&self) -> Mat<'_> {
        self.mat(&self.lm_head)
    }

    /// The final norm's weight.
    pub fn final_norm(&self) -> &[f32] {
        &self.norm
    }

    /// The rotary inverse frequencies ([`rope_inv_freq`]).
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    fn mat(&self, m: &MatRef) -> Mat<'_> {
        Mat {
            data: self.files.tensor_at(m.tensor).data,
            dtype: m.dtype,
            rows: m.rows,
            cols: m.cols,
        }
    }

    /// An empty sequence (no tokens, empty cache).
    pub fn new_sequence(&self) -> Sequence {
        let n = self.config.num_layers * self.config.num_kv_heads;
        Sequence {
            model_id: self.id,
            len: 0,
            keys: vec![Vec::new(); n],
            values: vec![Vec::new(); n],
        }
    }

    /// Runs the model over new tokens of several sequences at once:
    /// `tokens[i]` are appended to `seqs[i]` (prefill when many, decode when
    /// one), their KV entries cached. Returns the final hidden state of
    /// every new token and the logits `which` asks for. A sequence may not
    /// grow past [`Model::max_positions`].
    pub fn forward(
        &self,
        seqs: &mut [&mut Sequence],
        tokens: &[&[u32]],
        which: LogitsFor<'_>,
    ) -> Result<ForwardOutput, EngineError> {
        let c = &self.config;
        if seqs.len() != tokens.len() {
            return Err(EngineError::InvalidRequest(format!(
                "forward: {} sequences but {} token lists",
                seqs.len(),
                tokens.len()
            )));
        }
        // Validate everything before touching any cache.
        let mut offsets = vec![0usize];
        let mut row_pos = Vec::new(); // (sequence, absolute position) per row
        for (si, (s, t)) in seqs.iter().zip(tokens).enumerate() {
            if t.is_empty() {
                return Err(EngineError::InvalidRequest(format!(
                    "forward: sequence {si} has no new tokens"
                )));
            }
            if s.model_id != self.id {
                return Err(EngineError::InvalidRequest(format!(
                    "forward: sequence {si} was created by another model instance; its cache does not fit this one"
                )));
            }
            let end = s.len + t.len();
            if end > self.max_positions {
                return Err(EngineError::ContextTooLong {
                    len: end,
                    max: self.max_positions,
                });
            }
            for (j, &tok) in t.iter().enumerate() {
                if tok as usize >= c.vocab_size {
                    return Err(EngineError::TokenOutOfRange {
                        token: tok,
                        position: s.len + j,
                        vocab: c.vocab_size,
                    });
                }
                row_pos.push((si, s.len + j));
            }
            offsets.push(offsets.last().unwrap() + t.len());
        }
        let rows = row_pos.len();
        if let LogitsFor::Rows(r) = which {
            if let Some(&bad) = r.iter().find(|&&i| i >= rows) {
                return Err(EngineError::InvalidRequest(format!(
                    "forward: logits asked for row {bad}, but there are {rows} new tokens"
                )));
            }
        }
        let (h, d) = (c.hidden_size, c.head_dim);
        let (nh, nkv) = (c.num_heads, c.num_kv_heads);
        let group = nh / nkv;
        let scale = 1.0 / (d as f32).sqrt();

        // embeddings
        let mut x = vec![0f32; rows * h];
        let embed = self.mat(&self.embed);
        for (r, &tok) in tokens.iter().flat_map(|t| t.iter()).enumerate() {
            embed.row_into(tok as usize, &mut x[r * h..(r + 1) * h]);
        }

        // rotary (cos, sin) of every row's position, shared by all layers
        let mut rope = vec![(0f32, 0f32); rows * (d / 2)];
        for (cs, &(_, pos)) in rope.chunks_exact_mut(d / 2).zip(&row_pos) {
            kernels::rope_table(&self.inv_freq, pos, cs);
        }
        let mut xn = vec![0f32; rows * h];
        let mut q = vec![0f32; rows * nh * d];
        let mut k = vec![0f32; rows * nkv * d];
        let mut v = vec![0f32; rows * nkv * d];
        let mut att = vec![0f32; rows * nh * d];
        let mut proj = vec![0f32; rows * h];
        let mut gate = vec![0f32; rows * c.intermediate_size];
        let mut up = vec![0f32; rows * c.intermediate_size];

        for (li, layer) in self.layers.iter().enumerate() {
            kernels::rms_norm(&x, &layer.input_norm, c.rms_norm_eps, &mut xn);
            kernels::matmul(
                &xn,
                rows,
                &self.mat(&layer.q),
                layer.q_bias.as_deref(),
                &mut q,
            );
            kernels::matmul(
                &xn,
                rows,
                &self.mat(&layer.k),
                layer.k_bias.as_deref(),
                &mut k,
            );
            kernels::matmul(
                &xn,
                rows,
                &self.mat(&layer.v),
                layer.v_bias.as_deref(),
                &mut v,
            );
            for (r, cs) in rope.chunks_exact(d / 2).enumerate() {
                kernels::rope(&mut q[r * nh * d..(r + 1) * nh * d], d, cs);
                kernels::rope(&mut k[r * nkv * d..(r + 1) * nkv * d], d, cs);
            }
            // append K and V to each sequence's cache
            for (r, &(si, pos)) in row_pos.iter().enumerate() {
                for hk in 0..nkv {
                    let slot = li * nkv + hk;
                    let src = (r * nkv + hk) * d;
                    kernels::kv_push(&mut seqs[si].keys[slot], pos, &k[src..src + d]);
                    kernels::kv_push(&mut seqs[si].values[slot], pos, &v[src..src + d]);
                }
            }
            // attention, one task per row (token)
            let seqs_ro: Vec<&Sequence> = seqs.iter().map(|s| &**s).collect();
            att.par_chunks_mut(nh * d)
                .zip(q.par_chunks(nh * d))
                .zip(row_pos.par_iter())
                .for_each_init(Vec::new, |scores, ((out, qr), &(si, pos))| {
                    let s = seqs_ro[si];
                    for hq in 0..nh {
                        let slot = li * nkv + hq / group;
                        kernels::attend(
                            &qr[hq * d..(hq + 1) * d],
                            &s.keys[slot],
                            &s.values[slot],
                            pos + 1,
                            scale,
                            scores,
                            &mut out[hq * d..(hq + 1) * d],
                        );
                    }
                });
            kernels::matmul(
                &att,
                rows,
                &self.mat(&layer.o),
                layer.o_bias.as_deref(),
                &mut proj,
            );
            for (a, b) in x.iter_mut().zip(&proj) {
                *a += b;
            }
            kernels::rms_norm(&x, &layer.post_norm, c.rms_norm_eps, &mut xn);
            kernels::matmul(
                &xn,
                rows,
                &self.mat(&layer.gate),
                layer.gate_bias.as_deref(),
                &mut gate,
            );
            kernels::matmul(
                &xn,
                rows,
                &self.mat(&layer.up),
                layer.up_bias.as_deref(),
                &mut up,
            );
            kernels::silu_mul(&mut gate, &up);
            kernels::matmul(
                &gate,
                rows,
                &self.mat(&layer.down),
                layer.down_bias.as_deref(),
                &mut proj,
            );
            for (a, b) in x.iter_mut().zip(&proj) {
                *a += b;
            }
        }
        for (s, t) in seqs.iter_mut().zip(tokens) {
            s.len += t.len();
        }

        let mut hidden = vec![0f32; rows * h];
        kernels::rms_norm(&x, &self.norm, c.rms_norm_eps, &mut hidden);
        let logit_rows: Vec<usize> = match which {
            LogitsFor::None => Vec::new(),
            LogitsFor::All => (0..rows).collect(),
            LogitsFor::Last => offsets[1..].iter().map(|&e| e - 1).collect(),
            LogitsFor::Rows(r) => r.to_vec(),
        };
        let mut logits = vec![0f32; logit_rows.len() * c.vocab_size];
        if !logit_rows.is_empty() {
            let sel: Vec<f32> = logit_rows
                .iter()
                .flat_map(|&r| hidden[r * h..(r + 1) * h].iter().copied())
                .collect();
            kernels::matmul(
                &sel,
                logit_rows.len(),
                &self.mat(&self.lm_head),
                None,
                &mut logits,
            );
        }
        Ok(ForwardOutput {
            hidden_size: h,
            vocab_size: c.vocab_size,
            hidden,
            logit_rows,
            logits,
            offsets,
        })
    }
}
