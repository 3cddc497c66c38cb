//! The CPU twin of every kernel in `kernels/cuda/`: the same inputs and
//! outputs as the kernel (slices for device pointers), computing what the
//! kernel's header promises. The GPU tests run kernel and twin on the same
//! random inputs and compare; the CPU tests here tie each twin to the CPU
//! engine and the protocol core, so a kernel that matches its twin computes
//! what the CPU validator recomputes.
//!
//! Where a kernel promises bits (embedding, rope, sampler, sketch) its twin
//! performs the same IEEE operations in the same order. `Dt` is the storage
//! type of a kernel's output: the twin writes f32 values already rounded to
//! it, so a bf16 output compares after widening.

use grail_core::sketch::{Sketch, SketchError, SketchPlanes};
use grail_engine::kernels::{self, Mat};

/// Storage type of activations, KV caches and weights on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dt {
    F32,
    Bf16,
}

impl Dt {
    /// `x` rounded to this type (round to nearest even for bf16) and widened
    /// back to f32.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Dt::F32 => x,
            Dt::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dt::F32 => 4,
            Dt::Bf16 => 2,
        }
    }

    /// The kernel-name suffix (`rope_kv_write_bf16`).
    pub fn suffix(self) -> &'static str {
        match self {
            Dt::F32 => "f32",
            Dt::Bf16 => "bf16",
        }
    }
}

/// Threads (and vocabulary chunks) of the softmax kernels
/// (`SOFTMAX_THREADS` in common.cuh).
pub const SOFTMAX_THREADS: usize = 256;
/// Positions per attention split, and threads per split block
/// (`ATTN_SPLIT` = `ATTN_THREADS` in attention.cu).
pub const ATTN_SPLIT: usize = 128;
/// Most query heads per KV head the attention kernel serves.
pub const ATTN_MAX_GROUP: usize = 8;
/// Largest head dimension the attention kernel serves.
pub const ATTN_MAX_HEAD_DIM: usize = 256;

/// Why the attention kernel cannot serve `heads` query heads over
/// `kv_heads` KV heads of dimension `head_dim` stored as `dt`, if it cannot:
/// it reads keys and values in 16-byte vectors (`head_dim` a multiple of 8
/// bf16 or 4 f32 values) and keeps up to [`ATTN_MAX_GROUP`] query heads per
/// block.
pub fn attention_unsupported(
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    dt: Dt,
) -> Option<String> {
    let vec = 16 / dt.size();
    let ok = kv_heads > 0
        && heads.is_multiple_of(kv_heads)
        && heads / kv_heads <= ATTN_MAX_GROUP
        && head_dim > 0
        && head_dim <= ATTN_MAX_HEAD_DIM
        && head_dim.is_multiple_of(vec);
    (!ok).then(|| {
        format!(
            "{heads} query heads over {kv_heads} KV heads of dimension {head_dim} ({dt:?}): the attention kernel serves at most {ATTN_MAX_GROUP} query heads per KV head and head dimensions up to {ATTN_MAX_HEAD_DIM} that are multiples of {vec}"
        )
    })
}

/// Dynamic shared memory of one attention split block (attention.cu's
/// layout: the group's queries, its scores, the value sums of every
/// position group), in bytes.
pub fn attention_smem_bytes(group: usize, head_dim: usize, dt: Dt) -> usize {
    let chunks = head_dim / (16 / dt.size());
    let pgroups = ATTN_SPLIT / chunks;
    4 * (group * head_dim + group * ATTN_SPLIT + pgroups * group * head_dim)
}
/// Rows and columns of gemm.cu's tiles (`GEMM_TILE`).
pub const GEMM_TILE: usize = 16;
/// Most row tiles of gemm.cu's kernels (`gemm_bf16_m1` ..= `_m4`): it
/// serves products of up to 64 rows.
pub const GEMM_MAX_TILES: usize = 4;

/// Threads of a gemm.cu block (32 `GEMM_WARPS`).
pub const GEMM_THREADS: usize = 256;
/// Columns of k a gemm.cu warp stages at a time (`GEMM_CHUNK`).
pub const GEMM_CHUNK: usize = 128;
/// Most splits of k per gemm.cu product.
pub const GEMM_MAX_SPLITS: usize = 8;
/// gemm.cu's split scratch: at most this many column tiles are split
/// (completion counts), and this many partial tiles of 16 x 64 floats kept
/// (splits x column tiles).
pub const GEMM_SPLIT_COLUMNS: usize = 512;
pub const GEMM_SPLIT_TILES: usize = 1024;

/// Splits of k for gemm.cu's product of `n` columns over `k` on a GPU of
/// `sms` multiprocessors: enough that the launch has two blocks per
/// multiprocessor (a block's 8 warps keep 32 KiB of weight loads in
/// flight; it takes about two per multiprocessor to cover the memory's
/// latency), at most [`GEMM_MAX_SPLITS`] and one chunk of k per split; 1
/// when the column tiles alone fill the GPU. Within the split scratch for
/// any `sms` (columns < 2 sms and splits <= ceil(2 sms / columns), clamped).
pub fn gemm_splits(n: usize, k: usize, sms: usize) -> usize {
    let (tiles, chunks) = (n.div_ceil(GEMM_TILE), k.div_ceil(GEMM_CHUNK));
    let target = 2 * sms.max(1);
    if tiles >= target || tiles > GEMM_SPLIT_COLUMNS {
        return 1;
    }
    target
        .div_ceil(tiles)
        .min(GEMM_MAX_SPLITS)
        .min(chunks)
        .min(GEMM_SPLIT_TILES / tiles)
        .max(1)
}

/// Rows of activations gemm.cu reads for a product of `m` rows: whole tiles
/// (buffers it reads are allocated with this many).
pub fn gemm_rows(m: usize) -> usize {
    m.next_multiple_of(GEMM_TILE)
}

/// Whether gemm.cu serves `out (m x n) = x (m x k) * w^T` with `w` stored as
/// `dt` from element `w_off`: bf16, 1 ..= 64 rows, and 16-byte aligned weight
/// rows in whole k-steps of 16.
pub fn gemm_supported(dt: Dt, m: usize, k: usize, w_off: usize) -> bool {
    dt == Dt::Bf16
        && (1..=GEMM_TILE * GEMM_MAX_TILES).contains(&m)
        && k > 0
        && k.is_multiple_of(GEMM_TILE)
        && w_off.is_multiple_of(8)
}

/// Largest hidden size the sketch kernel serves (its shared memory).
pub const SKETCH_MAX_DIM: usize = 40960;

/// embedding.cu: `out[r] = table[ids[r]]` widened to f32.
pub fn embedding(table: &Mat<'_>, ids: &[u32], out: &mut [f32]) {
    let h = table.cols;
    for (o, &id) in out.chunks_exact_mut(h).zip(ids) {
        table.row_into(id as usize, o);
    }
}

/// rms_norm.cu: residual add (`delta` + `bias`, in place) and RMSNorm of
/// each row, or of the rows `rows_out` names; `out_f32` gets f32, `out_t`
/// the values rounded to `dt`. The sum of squares is sequential here (the
/// CPU engine's order), a tree on the GPU.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm_residual(
    residual: &mut [f32],
    delta: Option<&[f32]>,
    bias: Option<&[f32]>,
    w: &[f32],
    rows_out: Option<&[u32]>,
    eps: f32,
    mut out_f32: Option<&mut [f32]>,
    mut out_t: Option<&mut [f32]>,
    dt: Dt,
) {
    let h = w.len();
    let rows: Vec<usize> = match rows_out {
        Some(r) => r.iter().map(|&r| r as usize).collect(),
        None => (0..residual.len() / h).collect(),
    };
    let mut y = vec![0f32; h];
    for (o, &r) in rows.iter().enumerate() {
        let x = &mut residual[r * h..(r + 1) * h];
        if let Some(d) = delta {
            for (i, xi) in x.iter_mut().enumerate() {
                let mut di = d[r * h + i];
                if let Some(b) = bias {
                    di += b[i];
                }
                *xi += di;
            }
        }
        kernels::rms_norm(x, w, eps, &mut y);
        if let Some(out) = out_f32.as_deref_mut() {
            out[o * h..(o + 1) * h].copy_from_slice(&y);
        }
        if let Some(out) = out_t.as_deref_mut() {
            for (oi, &yi) in out[o * h..(o + 1) * h].iter_mut().zip(&y) {
                *oi = dt.round(yi);
            }
        }
    }
}

/// The rotary table rope.cu reads: for each position `< positions`, `d/2`
/// interleaved `(cos, sin)` pairs from the CPU engine's [`kernels::rope_table`].
pub fn rope_table(inv_freq: &[f32], positions: usize) -> Vec<f32> {
    let half = inv_freq.len();
    let mut out = Vec::with_capacity(positions * half * 2);
    let mut cs = vec![(0f32, 0f32); half];
    for p in 0..positions {
        kernels::rope_table(inv_freq, p, &mut cs);
        out.extend(cs.iter().flat_map(|&(c, s)| [c, s]));
    }
    out
}

/// Shape of a KV cache and the attention it serves.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Positions per slot.
    pub cap: usize,
}

impl AttnShape {
    /// Index of `(slot, kv_head, position, 0)` in one layer's cache.
    pub fn at(&self, slot: usize, h: usize, p: usize) -> usize {
        ((slot * self.kv_heads + h) * self.cap + p) * self.head_dim
    }
}

/// rope.cu: bias, rotation and the cache write for each row of `qkv`.
#[allow(clippy::too_many_arguments)]
pub fn rope_kv_write(
    qkv: &[f32],
    bias: Option<&[f32]>,
    table: &[f32],
    pos: &[u32],
    slot: &[u32],
    s: AttnShape,
    q_out: &mut [f32],
    k_cache: &mut [f32],
    v_cache: &mut [f32],
    dt: Dt,
) {
    let d = s.head_dim;
    let half = d / 2;
    let width = (s.heads + 2 * s.kv_heads) * d;
    for (r, x) in qkv.chunks_exact(width).enumerate() {
        let mut x = x.to_vec();
        if let Some(b) = bias {
            for (xi, bi) in x.iter_mut().zip(b) {
                *xi += bi;
            }
        }
        let p = pos[r] as usize;
        let cs: Vec<(f32, f32)> = table[p * d..(p + 1) * d]
            .chunks_exact(2)
            .map(|c| (c[0], c[1]))
            .collect();
        kernels::rope(&mut x[..(s.heads + s.kv_heads) * d], d, &cs[..half]);
        q_out[r * s.heads * d..(r + 1) * s.heads * d].copy_from_slice(&x[..s.heads * d]);
        for h in 0..s.kv_heads {
            let at = s.at(slot[r] as usize, h, p);
            let k = &x[(s.heads + h) * d..(s.heads + h + 1) * d];
            let v = &x[(s.heads + s.kv_heads + h) * d..(s.heads + s.kv_heads + h + 1) * d];
            for t in 0..d {
                k_cache[at + t] = dt.round(k[t]);
                v_cache[at + t] = dt.round(v[t]);
            }
        }
    }
}

/// kv_fork.cu: for each pair, positions `[0, n)` of slot `from` copied into
/// slot `to` in every layer of one cache (`layers x slots x kv_heads x cap x
/// head_dim`).
pub fn kv_fork(
    cache: &mut [f32],
    layers: usize,
    slots: usize,
    s: AttnShape,
    pairs: &[(u32, u32, u32)],
) {
    let layer = slots * s.kv_heads * s.cap * s.head_dim;
    for l in 0..layers {
        for &(from, to, n) in pairs {
            for h in 0..s.kv_heads {
                let src = l * layer + s.at(from as usize, h, 0);
                let dst = l * layer + s.at(to as usize, h, 0);
                cache.copy_within(src..src + n as usize * s.head_dim, dst);
            }
        }
    }
}

/// attention.cu (splits, then their merge): row `r`, query head `hq` attends over
/// positions `[0, len[r])` of its slot with KV head `hq / G`; softmax in f64
/// here (the reference), f32 with split-wise running maxima on the GPU.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    slot: &[u32],
    len: &[u32],
    s: AttnShape,
    scale: f32,
    out: &mut [f32],
    dt: Dt,
) {
    let d = s.head_dim;
    let group = s.heads / s.kv_heads;
    for (r, (&sl, &n)) in slot.iter().zip(len).enumerate() {
        for hq in 0..s.heads {
            let qv = &q[(r * s.heads + hq) * d..(r * s.heads + hq + 1) * d];
            let at = |p: usize| s.at(sl as usize, hq / group, p);
            let scores: Vec<f64> = (0..n as usize)
                .map(|p| {
                    let k = &k_cache[at(p)..at(p) + d];
                    let dot: f64 = qv.iter().zip(k).map(|(a, b)| f64::from(a * b)).sum();
                    dot * f64::from(scale)
                })
                .collect();
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let p: Vec<f64> = scores.iter().map(|x| (x - m).exp()).collect();
            let l: f64 = p.iter().sum();
            for t in 0..d {
                let acc: f64 = p
                    .iter()
                    .enumerate()
                    .map(|(j, pj)| pj * f64::from(v_cache[at(j) + t]))
                    .sum();
                out[(r * s.heads + hq) * d + t] = dt.round((acc / l) as f32);
            }
        }
    }
}

/// silu_mul.cu: `silu(gate + bg) * (up + bu)` for each row of the fused
/// gate/up projection (`rows x 2 * inter`), rounded to `dt`.
pub fn silu_mul(gate_up: &[f32], bias: Option<&[f32]>, inter: usize, out: &mut [f32], dt: Dt) {
    for (gu, o) in gate_up
        .chunks_exact(2 * inter)
        .zip(out.chunks_exact_mut(inter))
    {
        let (mut g, mut u) = (gu[..inter].to_vec(), gu[inter..].to_vec());
        if let Some(b) = bias {
            for i in 0..inter {
                g[i] += b[i];
                u[i] += b[inter + i];
            }
        }
        kernels::silu_mul(&mut g, &u);
        for (oi, gi) in o.iter_mut().zip(g) {
            *oi = dt.round(gi);
        }
    }
}

/// A dense product as the backend runs it: `out (m x n) = x (m x k) * w^T`
/// with `x` rounded to `dt` first (the GEMM reads activations in the weight
/// storage type), accumulated in f32.
pub fn gemm(x: &[f32], m: usize, w: &Mat<'_>, out: &mut [f32], dt: Dt) {
    let xr: Vec<f32> = x.iter().map(|&v| dt.round(v)).collect();
    kernels::matmul(&xr, m, w, None, out);
}

/// Why a softmax kernel rejected a row (its `status` word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// 1 + index: this logit (or hidden component) is not finite.
    NonFinite(usize),
    /// 0xffffffff: token outside the vocabulary (log-softmax), or a
    /// degenerate hidden state (sketch).
    Invalid,
}

impl RowStatus {
    /// Decodes a kernel's status word (0 is success).
    pub fn from_word(w: u32) -> Option<RowStatus> {
        match w {
            0 => None,
            u32::MAX => Some(RowStatus::Invalid),
            i => Some(RowStatus::NonFinite(i as usize - 1)),
        }
    }
}

/// common.cuh's softmax weight: `exp_det((z - max) / T)` in f32.
fn weight(z: f32, max: f32, temperature: f32) -> f32 {
    kernels::exp((z - max) / temperature)
}

/// common.cuh's `softmax_prefix`: the max and the chunk prefix sums
/// (`SOFTMAX_THREADS + 1` of them, the last being Z).
fn softmax_prefix(z: &[f32], temperature: f32) -> Result<(f32, Vec<f64>), RowStatus> {
    if let Some(i) = z.iter().position(|v| !v.is_finite()) {
        return Err(RowStatus::NonFinite(i));
    }
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let chunk = z.len().div_ceil(SOFTMAX_THREADS);
    let mut prefix = vec![0f64; SOFTMAX_THREADS + 1];
    let mut acc = 0f64;
    for j in 0..SOFTMAX_THREADS {
        let lo = (j * chunk).min(z.len());
        let hi = (lo + chunk).min(z.len());
        let s = z[lo..hi]
            .iter()
            .fold(0f64, |s, &v| s + f64::from(weight(v, m, temperature)));
        acc += s;
        prefix[j + 1] = acc;
    }
    Ok((m, prefix))
}

/// logsoftmax.cu: `(z_tok - max) / T - ln Z` in f64.
pub fn logprob(z: &[f32], token: u32, temperature: f32) -> Result<f64, RowStatus> {
    if token as usize >= z.len() {
        return Err(RowStatus::Invalid);
    }
    let (m, prefix) = softmax_prefix(z, temperature)?;
    let zt = f64::from(z[token as usize]);
    Ok((zt - f64::from(m)) / f64::from(temperature) - prefix[SOFTMAX_THREADS].ln())
}

/// sampler.cu: the token (bit for bit) and its logprob at uniform `u`.
pub fn sample(z: &[f32], u: f64, temperature: f32) -> Result<(u32, f64), RowStatus> {
    let (m, prefix) = softmax_prefix(z, temperature)?;
    let total = prefix[SOFTMAX_THREADS];
    let target = u * total;
    let chunk = z.len().div_ceil(SOFTMAX_THREADS);
    let w = |i: usize| weight(z[i], m, temperature);
    let holder = (0..SOFTMAX_THREADS).find(|&j| target < prefix[j + 1]);
    let token = match holder {
        Some(j) => {
            let lo = (j * chunk).min(z.len());
            let hi = (lo + chunk).min(z.len());
            let mut c = prefix[j];
            let mut nz = None;
            let mut pick = None;
            for i in lo..hi {
                let wi = w(i);
                c += f64::from(wi);
                if wi > 0.0 {
                    nz = Some(i);
                }
                if target < c {
                    pick = Some(i);
                    break;
                }
            }
            pick.or(nz)
        }
        None => None,
    };
    let token = token.or_else(|| (0..z.len()).rev().find(|&i| w(i) > 0.0));
    // the max has weight exp(0) = 1, so some weight is positive
    let t = token.expect("the maximal logit has weight 1");
    let lp = (f64::from(z[t]) - f64::from(m)) / f64::from(temperature) - total.ln();
    Ok((t as u32, lp))
}

/// sketch.cu: the protocol sketch, computed by the protocol core itself.
pub fn sketch(hidden: &[f32], planes: &SketchPlanes) -> Result<Sketch, SketchError> {
    planes.sketch(hidden)
}

/// The plane words as sketch.cu reads them: 4 little-endian u32 per
/// dimension.
pub fn plane_words(planes: &SketchPlanes) -> Vec<u32> {
    planes
        .words()
        .iter()
        .flat_map(|w| (0..4).map(move |i| (w >> (32 * i)) as u32))
        .collect()
}

/// `n` pseudo-random inputs in [-1, 1) (xorshift64* from `seed`): what the
/// twin tests here and the kernel parity tests (kernels/check) feed both
/// sides with.
pub fn random_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let x = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            x as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use grail_core::sampling;

    use super::random_inputs as rand_vec;

    /// Qwen2.5-1.5B's products on an H100 (132 multiprocessors): the 1536-
    /// and 2048-column ones split in 3 (2 blocks per multiprocessor), the
    /// wide ones not at all; tiny ones no more than their chunks; and the
    /// split scratch is never exceeded, whatever the GPU.
    #[test]
    fn gemm_splits_fill_the_gpu_within_the_scratch() {
        assert_eq!(gemm_splits(1536, 1536, 132), 3); // o_proj
        assert_eq!(gemm_splits(1536, 8960, 132), 3); // down_proj
        assert_eq!(gemm_splits(2048, 1536, 132), 3); // qkv
        assert_eq!(gemm_splits(17920, 1536, 132), 1); // gate_up
        assert_eq!(gemm_splits(151936, 1536, 132), 1); // lm_head
        assert_eq!(gemm_splits(40, 64, 132), 1); // one chunk of k
        assert_eq!(gemm_splits(64, 8960, 132), GEMM_MAX_SPLITS);
        for sms in [1, 8, 80, 108, 132, 144, 1000] {
            for n in [16, 100, 1536, 4096, 8192, 16384] {
                for k in [16, 1536, 8960, 100_000] {
                    let (s, tiles) = (gemm_splits(n, k, sms), n.div_ceil(GEMM_TILE));
                    assert!((1..=GEMM_MAX_SPLITS).contains(&s) && s <= k.div_ceil(GEMM_CHUNK));
                    assert!(
                        s == 1 || (tiles <= GEMM_SPLIT_COLUMNS && s * tiles <= GEMM_SPLIT_TILES),
                        "{n}x{k} on {sms}: {s} splits of {tiles}"
                    );
                }
            }
        }
    }

    #[test]
    fn sampler_twin_picks_the_protocol_token() {
        // the twin sums in chunks with an f32 exp; the protocol sums left to
        // right with f64 exp: the same token unless u * Z lands within
        // ~1e-7 of a CDF boundary
        let (mut same, mut total, mut worst_lp) = (0, 0, 0f64);
        for (case, &vocab) in [2usize, 7, 255, 256, 257, 1000, 32_000].iter().enumerate() {
            for k in 0..60u64 {
                let scale = [1.0f32, 5.0, 30.0][k as usize % 3];
                let z: Vec<f32> = rand_vec(vocab, 1000 * case as u64 + k)
                    .iter()
                    .map(|v| v * scale)
                    .collect();
                let u = f64::from(rand_vec(1, 77 + k)[0].abs());
                let t = [0.7f32, 1.0][k as usize % 2];
                let (tok, lp) = sample(&z, u, t).unwrap();
                let (want, want_lp) = sampling::sample_with_logprob(&z, f64::from(t), u).unwrap();
                total += 1;
                same += usize::from(tok == want);
                if tok == want {
                    worst_lp = worst_lp.max((lp - want_lp).abs());
                }
                assert_eq!(
                    lp,
                    logprob(&z, tok, t).unwrap(),
                    "sampler and log-softmax agree"
                );
            }
        }
        assert_eq!(same, total, "{} of {total} tokens differ", total - same);
        assert!(worst_lp < 1e-5, "logprob deviation {worst_lp}");
    }

    #[test]
    fn sampler_twin_handles_edges() {
        let z = [0.0f32, 0.0, -200.0];
        // u near 1: the last token with a non-zero weight, never the
        // underflowed one
        assert_eq!(sample(&z, 0.999_999_999, 1.0).unwrap().0, 1);
        assert_eq!(sample(&z, 0.0, 1.0).unwrap().0, 0);
        assert_eq!(
            sample(&[1.0, f32::NAN], 0.5, 1.0),
            Err(RowStatus::NonFinite(1))
        );
        assert_eq!(logprob(&z, 3, 1.0), Err(RowStatus::Invalid));
        // one dominant logit at a low temperature
        let mut z = vec![0f32; 600];
        z[431] = 50.0;
        assert_eq!(sample(&z, 0.5, 0.5).unwrap().0, 431);
    }

    #[test]
    fn rope_twin_is_the_engines_rope_and_cache_write() {
        let s = AttnShape {
            heads: 4,
            kv_heads: 2,
            head_dim: 8,
            cap: 5,
        };
        let inv: Vec<f32> = (0..4)
            .map(|i| 1.0 / 10000f32.powf(i as f32 / 4.0))
            .collect();
        let table = rope_table(&inv, 5);
        let width = (s.heads + 2 * s.kv_heads) * s.head_dim;
        let qkv = rand_vec(2 * width, 3);
        let bias = rand_vec(width, 4);
        let (pos, slot) = ([3u32, 4], [1u32, 0]);
        let mut q = vec![0f32; 2 * s.heads * s.head_dim];
        let mut k = vec![f32::NAN; 2 * s.kv_heads * s.cap * s.head_dim];
        let mut v = k.clone();
        rope_kv_write(
            &qkv,
            Some(&bias),
            &table,
            &pos,
            &slot,
            s,
            &mut q,
            &mut k,
            &mut v,
            Dt::F32,
        );
        for r in 0..2 {
            let mut x: Vec<f32> = qkv[r * width..(r + 1) * width]
                .iter()
                .zip(&bias)
                .map(|(a, b)| a + b)
                .collect();
            let mut cs = vec![(0f32, 0f32); 4];
            kernels::rope_table(&inv, pos[r] as usize, &mut cs);
            kernels::rope(&mut x[..(s.heads + s.kv_heads) * 8], 8, &cs);
            assert_eq!(q[r * 32..(r + 1) * 32], x[..32]);
            let at = s.at(slot[r] as usize, 1, pos[r] as usize);
            assert_eq!(k[at..at + 8], x[40..48], "k head 1");
            assert_eq!(v[at..at + 8], x[56..64], "v head 1");
        }
    }

    #[test]
    fn attention_twin_matches_the_engine() {
        let s = AttnShape {
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            cap: 40,
        };
        let d = s.head_dim;
        let n = 37;
        let k: Vec<f32> = rand_vec(2 * s.kv_heads * s.cap * d, 5);
        let v: Vec<f32> = rand_vec(2 * s.kv_heads * s.cap * d, 6);
        let q: Vec<f32> = rand_vec(s.heads * d, 7).iter().map(|x| x * 4.0).collect();
        let mut out = vec![0f32; s.heads * d];
        let scale = 0.25;
        attention(&q, &k, &v, &[1], &[n], s, scale, &mut out, Dt::F32);
        for hq in 0..s.heads {
            let h = hq / 2;
            let (mut kc, mut vc) = (Vec::new(), Vec::new());
            for p in 0..n as usize {
                let at = s.at(1, h, p);
                kernels::kv_push(&mut kc, p, &k[at..at + d]);
                kernels::kv_push(&mut vc, p, &v[at..at + d]);
            }
            let mut want = vec![0f32; d];
            let qh = &q[hq * d..(hq + 1) * d];
            kernels::attend(qh, &kc, &vc, n as usize, scale, &mut Vec::new(), &mut want);
            for (a, b) in out[hq * d..(hq + 1) * d].iter().zip(&want) {
                assert!((a - b).abs() <= 1e-5 + 1e-5 * b.abs(), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn norm_and_silu_twins_round_to_the_storage_type() {
        let h = 24;
        let mut res = rand_vec(3 * h, 8);
        let delta = rand_vec(3 * h, 9);
        let w = rand_vec(h, 10);
        let mut want_res = res.clone();
        for (a, b) in want_res.iter_mut().zip(&delta) {
            *a += b;
        }
        let mut want = vec![0f32; 3 * h];
        kernels::rms_norm(&want_res, &w, 1e-6, &mut want);
        let (mut f, mut t) = (vec![0f32; 3 * h], vec![0f32; 3 * h]);
        rms_norm_residual(
            &mut res,
            Some(&delta),
            None,
            &w,
            None,
            1e-6,
            Some(&mut f),
            Some(&mut t),
            Dt::Bf16,
        );
        assert_eq!(res, want_res);
        assert_eq!(f, want);
        assert!(t.iter().zip(&want).all(|(a, b)| *a == Dt::Bf16.round(*b)));
        assert!(t.iter().zip(&want).any(|(a, b)| a != b), "bf16 rounds");

        let gu = rand_vec(2 * 10, 11);
        let mut out = vec![0f32; 10];
        silu_mul(&gu, None, 10, &mut out, Dt::F32);
        let mut g = gu[..10].to_vec();
        kernels::silu_mul(&mut g, &gu[10..]);
        assert_eq!(out, g);
    }

    #[test]
    fn plane_words_are_the_u128_words_little_endian() {
        let planes = SketchPlanes::new(&[3u8; 32], 5).unwrap();
        let words = plane_words(&planes);
        assert_eq!(words.len(), 20);
        for (i, w) in planes.words().iter().enumerate() {
            let back = words[4 * i..4 * i + 4]
                .iter()
                .rev()
                .fold(0u128, |acc, &x| (acc << 32) | u128::from(x));
            assert_eq!(back, *w);
        }
    }
}
