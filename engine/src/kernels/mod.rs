//! The engine's numeric kernels on CPU: weight conversion, the matrix
//! product, RMSNorm, rotary embedding, SiLU-gate and attention over a
//! blocked KV cache.
//!
//! Every output element is computed by one fixed sequence of operations that
//! does not depend on the thread count or on how work is split, so a given
//! machine gives the same bits whether it runs on 2 threads or 64. In the
//! matrix product the AVX2 path and the portable path differ only by FMA
//! rounding; attention (and its [`exp`]) gives the same bits on every path.
//!
//! Why our own matrix product and not the `gemm` crate: weights stay in
//! bf16 (converted a few rows at a time, in cache), which `gemm` cannot
//! read; and measured on this project's 2-core CI machine (Xeon, AVX-512),
//! 4864 x 896 bf16 weights, 2 threads, ours (AVX-512 tile) vs `gemm` 0.19
//! on weights pre-converted to f32 (twice the memory, so not an option
//! anyway): m = 1: 12.8 vs 6.7 GMAC/s; m = 16: 57.5 vs 37.5; m = 128: 64.2
//! vs 68.5; m = 512: 73.2 vs 79.1. Decode (m = batch) is faster with ours;
//! prefill would gain at most ~8%. (The AVX2 tile alone: 8.9, 51.6, 62.1,
//! 63.9.)

#[cfg(target_arch = "x86_64")]
mod x86;

use std::cell::RefCell;

use rayon::prelude::*;

/// Storage type of a weight matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WDtype {
    F32,
    BF16,
    F16,
}

impl WDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            WDtype::F32 => 4,
            WDtype::BF16 | WDtype::F16 => 2,
        }
    }
}

/// A row-major `rows x cols` matrix in its stored bytes (little-endian, any
/// alignment).
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [u8],
    pub dtype: WDtype,
    pub rows: usize,
    pub cols: usize,
}

impl Mat<'_> {
    /// Row `r` converted to f32 into `out` (`out.len() == cols`).
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let n = self.cols * self.dtype.size();
        to_f32(self.dtype, &self.data[r * n..(r + 1) * n], out);
    }
}

pub(crate) fn bf16_to_f32_portable(src: &[u8], dst: &mut [f32]) {
    for (o, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *o = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
    }
}

pub(crate) fn f16_to_f32_portable(src: &[u8], dst: &mut [f32]) {
    for (o, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
    }
}

/// Converts `dst.len()` stored elements of `dtype` from `src` to f32.
pub fn to_f32(dtype: WDtype, src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * dtype.size());
    match dtype {
        WDtype::F32 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        WDtype::BF16 => {
            #[cfg(target_arch = "x86_64")]
            if x86::bf16_to_f32(src, dst) {
                return;
            }
            bf16_to_f32_portable(src, dst)
        }
        WDtype::F16 => {
            #[cfg(target_arch = "x86_64")]
            if x86::f16_to_f32(src, dst) {
                return;
            }
            f16_to_f32_portable(src, dst)
        }
    }
}

/// Portable twin of the AVX2 tile: 8 lane accumulators per output, lanes
/// reduced as (0+4, 1+5, 2+6, 3+7) -> (0+2, 1+3) -> 0+1, then the tail.
fn dot_tile_portable(w: &[f32], rows: usize, x: &[f32], mb: usize, k: usize, out: &mut [f32]) {
    let k8 = k / 8 * 8;
    for r in 0..rows {
        let wr = &w[r * k..(r + 1) * k];
        for b in 0..mb {
            let xb = &x[b * k..(b + 1) * k];
            let mut acc = [0f32; 8];
            for (wc, xc) in wr[..k8].chunks_exact(8).zip(xb[..k8].chunks_exact(8)) {
                for l in 0..8 {
                    acc[l] += wc[l] * xc[l];
                }
            }
            let s4 = [
                acc[0] + acc[4],
                acc[1] + acc[5],
                acc[2] + acc[6],
                acc[3] + acc[7],
            ];
            let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
            let mut s = s2[0] + s2[1];
            for j in k8..k {
                s += wr[j] * xb[j];
            }
            out[r * mb + b] = s;
        }
    }
}

fn dot_tile(w: &[f32], rows: usize, x: &[f32], mb: usize, k: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if x86::dot_tile(w, rows, x, mb, k, out) {
        return;
    }
    dot_tile_portable(w, rows, x, mb, k, out)
}

/// Weight rows per register tile.
const TILE_ROWS: usize = 4;
/// Activation rows per register tile.
const TILE_MB: usize = 3;
/// Weight bytes per parallel task, at least: large enough that dispatch is
/// noise next to streaming them (a 150k-row LM head would otherwise be
/// ~10k tasks), small enough to balance across threads.
const TASK_BYTES: usize = 256 << 10;
/// Activation rows per pass over the weights (they stay in L2 while the
/// weights stream through once).
const PASS_ROWS: usize = 48;

/// Products smaller than this many multiply-adds run on the calling thread:
/// below it, handing work to the pool costs more than it saves (a tiny
/// model's decode step is dominated by dispatch otherwise).
const SERIAL_MACS: usize = 1 << 18;

thread_local! {
    static ROWBUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `out (m x n) = x (m x k) * w^T (+ bias)`, `w` being `n x k`, accumulating
/// in f32. Weights are converted to f32 four rows at a time, in cache, and
/// each converted row meets up to 48 activation rows, so a decode step (m =
/// batch) streams every weight byte once.
pub fn matmul(x: &[f32], m: usize, w: &Mat, bias: Option<&[f32]>, out: &mut [f32]) {
    let (n, k) = (w.rows, w.cols);
    assert_eq!(x.len(), m * k, "matmul: x is not {m} x {k}");
    assert_eq!(out.len(), m * n, "matmul: out is not {m} x {n}");
    assert_eq!(w.data.len(), n * k * w.dtype.size(), "matmul: weight bytes");
    if let Some(b) = bias {
        assert_eq!(b.len(), n);
    }
    let threads = rayon::current_num_threads().max(1);
    let row_bytes = k * w.dtype.size();
    // rows per task: TASK_BYTES worth, but at least 4 tasks per thread when
    // the matrix allows, and a multiple of the register tile
    let by_bytes = TASK_BYTES.div_ceil(row_bytes.max(1));
    let by_balance = n.div_ceil(4 * threads);
    let task_rows = by_bytes
        .min(by_balance)
        .max(TILE_ROWS)
        .next_multiple_of(TILE_ROWS);
    let mut tmp = vec![0f32; m.min(PASS_ROWS) * n];
    for m0 in (0..m).step_by(PASS_ROWS) {
        let mt = PASS_ROWS.min(m - m0);
        let xt = &x[m0 * k..(m0 + mt) * k];
        // tmp is transposed: tmp[j * mt + i] = out[m0 + i][j]
        let task = |(c, chunk): (usize, &mut [f32])| {
            ROWBUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.resize(TILE_ROWS * k, 0.0);
                let rows = chunk.len() / mt;
                let mut res = [0f32; TILE_ROWS * TILE_MB];
                for r0 in (0..rows).step_by(TILE_ROWS) {
                    let rr = TILE_ROWS.min(rows - r0);
                    for r in 0..rr {
                        w.row_into(c * task_rows + r0 + r, &mut buf[r * k..(r + 1) * k]);
                    }
                    for b0 in (0..mt).step_by(TILE_MB) {
                        let bb = TILE_MB.min(mt - b0);
                        dot_tile(&buf, rr, &xt[b0 * k..], bb, k, &mut res);
                        for r in 0..rr {
                            for b in 0..bb {
                                chunk[(r0 + r) * mt + b0 + b] = res[r * bb + b];
                            }
                        }
                    }
                }
            })
        };
        if mt * n * k < SERIAL_MACS {
            tmp[..n * mt]
                .chunks_mut(task_rows * mt)
                .enumerate()
                .for_each(task);
        } else {
            tmp[..n * mt]
                .par_chunks_mut(task_rows * mt)
                .enumerate()
                .for_each(task);
        }
        for i in 0..mt {
            let row = &mut out[(m0 + i) * n..(m0 + i + 1) * n];
            for (j, o) in row.iter_mut().enumerate() {
                *o = tmp[j * mt + i];
            }
            if let Some(b) = bias {
                for (o, bj) in row.iter_mut().zip(b) {
                    *o += bj;
                }
            }
        }
    }
}

/// 8-lane dot product (vectorizes without reassociation flags).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut out = [0f32];
    dot_tile(a, 1, b, 1, a.len(), &mut out);
    out[0]
}

/// RMSNorm of each `d`-row of `x` into `out`, as transformers computes it:
/// `w * (x * rsqrt(mean(x^2) + eps))`, the mean accumulated in f64 and the
/// scale applied in f32.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ss: f64 = xr.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let var = (ss / d as f64) as f32;
        let scale = 1.0 / (var + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = g * (v * scale);
        }
    }
}

/// `a = silu(g) * u` elementwise, `silu(x) = x / (1 + exp(-x))`.
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    for (a, &b) in g.iter_mut().zip(u) {
        *a = *a / (1.0 + (-*a).exp()) * b;
    }
}

/// The rotary `(cos, sin)` pairs of `position`: `angle_i = position *
/// inv_freq[i]` in f32, as transformers computes them. The same for every
/// layer, so a forward pass computes them once per token.
pub fn rope_table(inv_freq: &[f32], position: usize, out: &mut [(f32, f32)]) {
    let pos = position as f32;
    for (c, &f) in out.iter_mut().zip(inv_freq) {
        let angle = pos * f;
        *c = (angle.cos(), angle.sin());
    }
}

/// Rotates each `head_dim`-sized head of `x` (one token's q or k) by the
/// pairs of [`rope_table`], in transformers' "rotate half" layout: element
/// `i` pairs with `i + head_dim/2`, both using `cs[i]`.
pub fn rope(x: &mut [f32], head_dim: usize, cs: &[(f32, f32)]) {
    let half = head_dim / 2;
    for h in x.chunks_exact_mut(head_dim) {
        let (a, b) = h.split_at_mut(half);
        for ((x1, x2), &(cos, sin)) in a.iter_mut().zip(b.iter_mut()).zip(&cs[..half]) {
            let (v1, v2) = (*x1, *x2);
            *x1 = v1 * cos - v2 * sin;
            *x2 = v2 * cos + v1 * sin;
        }
    }
}

/// Positions per block of a KV cache. A cache holds, for one layer and KV
/// head, blocks of `KV_BLOCK` positions, each block dimension-major
/// (`block[t * KV_BLOCK + lane]` is dimension `t` of position `block_index
/// * KV_BLOCK + lane`), the last block zero-padded: attention then scores
/// and weighs `KV_BLOCK` positions per vector instruction whatever
/// `head_dim` is.
pub const KV_BLOCK: usize = 16;

/// Appends `x` (one position's key or value, `head_dim` long) to a blocked
/// cache that holds `pos` positions.
pub fn kv_push(cache: &mut Vec<f32>, pos: usize, x: &[f32]) {
    let d = x.len();
    let (b, lane) = (pos / KV_BLOCK, pos % KV_BLOCK);
    assert_eq!(
        cache.len(),
        pos.div_ceil(KV_BLOCK) * KV_BLOCK * d,
        "kv_push: cache does not hold {pos} positions of {d}"
    );
    if lane == 0 {
        cache.resize(cache.len() + KV_BLOCK * d, 0.0);
    }
    let block = &mut cache[b * KV_BLOCK * d..(b + 1) * KV_BLOCK * d];
    for (t, &v) in x.iter().enumerate() {
        block[t * KV_BLOCK + lane] = v;
    }
}

/// Below this, [`exp`] returns 0: `ln(2^-126)`, where `2^n` leaves the
/// normal range.
const EXP_LO: f32 = -87.336_55;
/// Above this, [`exp`] computes `exp(EXP_HI)` (`n` stays <= 127).
const EXP_HI: f32 = 88.0;
/// `1.5 * 2^23`: `fma(x, log2(e), MAGIC) - MAGIC` rounds `x * log2(e)` to
/// the nearest integer, which also sits in the sum's low mantissa bits.
const EXP_MAGIC: f32 = 12_582_912.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// Cody-Waite split of ln 2: `LN2_HI` has 9 significant bits, so `n *
/// LN2_HI` is exact for |n| <= 128.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf`: `exp(r) ~ 1 + r + r^2 * P(r)` on `|r| <= ln2 / 2`.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `e^x` in f32, the same sequence of IEEE operations (every multiply-add
/// fused) as the AVX-512 and AVX2 versions in `x86.rs`, so every path gives
/// the same bits: `x = n ln2 + r` (Cody-Waite, `n` rounded to nearest
/// even), a degree-7 polynomial in `r`, then `* 2^n` through the exponent
/// bits. Maximum relative error against the exact value (f64 `exp`):
/// 8.5e-8, below one ulp, measured over every f32 in `[EXP_LO, 88]`
/// (`exp_error_is_bounded` rechecks every 97th). `x < EXP_LO` gives 0 (no subnormal
/// results), `x > 88` gives `exp(88)`, NaN gives NaN.
pub fn exp(x: f32) -> f32 {
    if x < EXP_LO {
        return 0.0;
    }
    let x = if EXP_HI < x { EXP_HI } else { x };
    let t = x.mul_add(LOG2E, EXP_MAGIC);
    let n = t - EXP_MAGIC;
    let r = (-n).mul_add(LN2_HI, x);
    let r = (-n).mul_add(LN2_LO, r);
    let mut y = EXP_P[0];
    for &c in &EXP_P[1..] {
        y = y.mul_add(r, c);
    }
    let y = y.mul_add(r * r, r) + 1.0;
    let bits = (t.to_bits().wrapping_sub(EXP_MAGIC.to_bits()) as i32 + 127) << 23;
    y * f32::from_bits(bits as u32)
}

/// `a > b ? a : b`: the x86 `max` instruction's rule (NaN in `b` wins, NaN
/// in `a` loses), so the portable path picks the same bits.
fn max_x86(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Sum (or max) of 16 lanes as `[i] + [i + 8]`, then `[i] + [i + 4]`,
/// `[i] + [i + 2]`, `[0] + [1]`: the order of the x86 reductions.
fn tree16(a: &[f32; KV_BLOCK], f: impl Fn(f32, f32) -> f32) -> f32 {
    let s8: [f32; 8] = std::array::from_fn(|i| f(a[i], a[i + 8]));
    let s4: [f32; 4] = std::array::from_fn(|i| f(s8[i], s8[i + 4]));
    f(f(s4[0], s4[2]), f(s4[1], s4[3]))
}

/// Portable twin of the x86 attention kernels: the same operations per lane
/// in the same order, so the same bits. Lane `l` of block `b` is position
/// `j = b * 16 + l`; positions `j >= len` (the padding, or later positions
/// already appended in a prefill) are never read into a result.
///
/// - score: `s_j = fma(q[d-1], k_j[d-1], ... fma(q[0], k_j[0], 0)) * scale`
/// - `m`: per lane `max_x86(m_l, s_j)` over blocks from -inf, then [`tree16`]
/// - `p_j = exp(s_j - m)`; `sum`: per lane `sum_l + p_j` over blocks, then
///   [`tree16`]
/// - `out[t] = tree16(per lane fma(p_j, v_j[t], acc_l) over blocks) * (1 /
///   sum)`
pub(crate) fn attend_portable(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    len: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let d = q.len();
    let bs = KV_BLOCK * d;
    let nb = len.div_ceil(KV_BLOCK);
    let lanes = |b: usize| KV_BLOCK.min(len - b * KV_BLOCK);
    let mut mx = [f32::NEG_INFINITY; KV_BLOCK];
    for b in 0..nb {
        let kb = &keys[b * bs..(b + 1) * bs];
        for l in 0..lanes(b) {
            let mut acc = 0f32;
            for (t, &qt) in q.iter().enumerate() {
                acc = qt.mul_add(kb[t * KV_BLOCK + l], acc);
            }
            let s = acc * scale;
            scores[b * KV_BLOCK + l] = s;
            mx[l] = max_x86(mx[l], s);
        }
    }
    let m = tree16(&mx, max_x86);
    let mut sum = [0f32; KV_BLOCK];
    for b in 0..nb {
        for l in 0..lanes(b) {
            let p = exp(scores[b * KV_BLOCK + l] - m);
            scores[b * KV_BLOCK + l] = p;
            sum[l] += p;
        }
    }
    let inv = 1.0 / tree16(&sum, |a, b| a + b);
    for (t, o) in out.iter_mut().enumerate() {
        let mut acc = [0f32; KV_BLOCK];
        for b in 0..nb {
            let vb = &values[b * bs + t * KV_BLOCK..];
            for l in 0..lanes(b) {
                acc[l] = scores[b * KV_BLOCK + l].mul_add(vb[l], acc[l]);
            }
        }
        *o = tree16(&acc, |a, b| a + b) * inv;
    }
}

/// Causal attention of one query head `q` (`head_dim`) over the first
/// `len >= 1` positions of one KV head's blocked caches (see [`KV_BLOCK`]),
/// into `out` (`head_dim`): `softmax(q . k_j * scale) . v`. `scores` is
/// scratch. The result depends only on `q`, `scale` and positions `0..len`
/// of the caches, and is the same bits on every path (AVX-512, AVX2,
/// portable): see [`attend_portable`] for the exact operations.
pub fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    len: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let d = q.len();
    let nb = len.div_ceil(KV_BLOCK);
    assert!(len >= 1 && d >= 1, "attend: empty query or context");
    assert!(
        keys.len() >= nb * KV_BLOCK * d && values.len() >= nb * KV_BLOCK * d,
        "attend: caches shorter than {len} positions of {d}"
    );
    assert_eq!(out.len(), d, "attend: out is not {d} long");
    scores.resize(nb * KV_BLOCK, 0.0);
    #[cfg(target_arch = "x86_64")]
    if x86::attend(q, keys, values, len, scale, scores, out) {
        return;
    }
    attend_portable(q, keys, values, len, scale, scores, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn naive(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|t| f64::from(x[i * k + t]) * f64::from(w[j * k + t]))
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    fn bytes_of(w: &[f32], dtype: WDtype) -> (Vec<u8>, Vec<f32>) {
        // returns stored bytes and the f32 values they decode to
        let mut bytes = Vec::new();
        let mut vals = Vec::new();
        for &v in w {
            match dtype {
                WDtype::F32 => {
                    bytes.extend_from_slice(&v.to_le_bytes());
                    vals.push(v);
                }
                WDtype::BF16 => {
                    let h = half::bf16::from_f32(v);
                    bytes.extend_from_slice(&h.to_bits().to_le_bytes());
                    vals.push(h.to_f32());
                }
                WDtype::F16 => {
                    let h = half::f16::from_f32(v);
                    bytes.extend_from_slice(&h.to_bits().to_le_bytes());
                    vals.push(h.to_f32());
                }
            }
        }
        (bytes, vals)
    }

    #[test]
    fn matmul_matches_f64_reference_for_all_shapes_and_dtypes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 7, 9),
            (2, 33, 8),
            (3, 16, 64),
            (5, 17, 100),
            (16, 70, 129),
            (50, 37, 31),
            (97, 5, 300),
        ] {
            for dtype in [WDtype::F32, WDtype::BF16, WDtype::F16] {
                let x = rand_vec(m * k, 1 + m as u64);
                let (bytes, wv) = bytes_of(&rand_vec(n * k, 7 + n as u64), dtype);
                let bias = rand_vec(n, 3);
                let w = Mat {
                    data: &bytes,
                    dtype,
                    rows: n,
                    cols: k,
                };
                let mut out = vec![f32::NAN; m * n];
                matmul(&x, m, &w, Some(&bias), &mut out);
                let want = naive(&x, m, &wv, n, k);
                for (i, (o, r)) in out.iter().zip(&want).enumerate() {
                    let r = r + bias[i % n];
                    assert!(
                        (o - r).abs() <= 1e-5 * (1.0 + k as f32),
                        "{m}x{n}x{k} {dtype:?} [{i}]: {o} vs {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn simd_and_portable_paths_agree() {
        for &(rows, mb, k) in &[
            (1, 1, 5),
            (4, 3, 64),
            (2, 2, 77),
            (3, 1, 1000),
            (4, 2, 16),
            (1, 3, 33),
        ] {
            let w = rand_vec(rows * k, 11);
            let x = rand_vec(mb * k, 12);
            let mut b = vec![0f32; rows * mb];
            dot_tile_portable(&w, rows, &x, mb, k, &mut b);
            let mut paths = vec![];
            let mut a = vec![f32::NAN; rows * mb];
            dot_tile(&w, rows, &x, mb, k, &mut a);
            paths.push(a);
            #[cfg(target_arch = "x86_64")]
            for isa in [x86::Isa::Avx2, x86::Isa::Avx512] {
                let mut a = vec![f32::NAN; rows * mb];
                if x86::dot_tile_with(isa, &w, rows, &x, mb, k, &mut a) {
                    eprintln!("checked {isa:?} tile {rows}x{mb}x{k}");
                    paths.push(a);
                }
            }
            for a in &paths {
                for (p, q) in a.iter().zip(&b) {
                    assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
                }
            }
        }
        let src: Vec<u8> = (0..200u32)
            .flat_map(|i| (i.wrapping_mul(2654435761) as u16).to_le_bytes())
            .collect();
        for dtype in [WDtype::BF16, WDtype::F16] {
            let mut a = vec![0f32; 200];
            let mut b = vec![0f32; 200];
            to_f32(dtype, &src, &mut a);
            match dtype {
                WDtype::BF16 => bf16_to_f32_portable(&src, &mut b),
                _ => f16_to_f32_portable(&src, &mut b),
            }
            for (p, q) in a.iter().zip(&b) {
                assert!(p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()));
            }
        }
    }

    #[test]
    fn matmul_is_independent_of_thread_count() {
        let (m, n, k) = (20, 300, 257);
        let x = rand_vec(m * k, 5);
        let (bytes, _) = bytes_of(&rand_vec(n * k, 6), WDtype::BF16);
        let w = Mat {
            data: &bytes,
            dtype: WDtype::BF16,
            rows: n,
            cols: k,
        };
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0f32; m * n];
            pool.install(|| matmul(&x, m, &w, None, &mut out));
            out
        };
        let one = run(1);
        assert!(one
            .iter()
            .zip(run(3))
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn rope_rotates_pairs_and_preserves_norm() {
        let mut x = rand_vec(16, 9);
        let before: f32 = x.iter().map(|v| v * v).sum();
        let inv: Vec<f32> = (0..4)
            .map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / 8.0))
            .collect();
        let orig = x.clone();
        let mut cs = [(0f32, 0f32); 4];
        rope_table(&inv, 0, &mut cs);
        rope(&mut x, 8, &cs);
        assert_eq!(x, orig, "position 0 is the identity");
        rope_table(&inv, 5, &mut cs);
        rope(&mut x, 8, &cs);
        let after: f32 = x.iter().map(|v| v * v).sum();
        assert!((before - after).abs() < 1e-4);
        // element 0 pairs with element 4 at frequency 1: angle 5
        let (c, s) = (5f32.cos(), 5f32.sin());
        assert!((x[0] - (orig[0] * c - orig[4] * s)).abs() < 1e-6);
        assert!((x[4] - (orig[4] * c + orig[0] * s)).abs() < 1e-6);
    }

    /// Blocked caches of `len` positions (`len x d` row-major inputs).
    fn caches(k: &[f32], v: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
        let (mut kc, mut vc) = (Vec::new(), Vec::new());
        for (p, (kr, vr)) in k.chunks_exact(d).zip(v.chunks_exact(d)).enumerate() {
            kv_push(&mut kc, p, kr);
            kv_push(&mut vc, p, vr);
        }
        (kc, vc)
    }

    #[test]
    fn attention_weights_sum_to_one() {
        let d = 4;
        let (keys, values) = caches(&rand_vec(3 * d, 1), &[1f32; 3 * 4], d);
        let q = rand_vec(d, 2);
        let mut out = vec![0f32; d];
        attend(&q, &keys, &values, 3, 0.5, &mut Vec::new(), &mut out);
        assert!(out.iter().all(|v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    fn exp_error_is_bounded() {
        // every 97th f32 in [-87.3, 88], plus the ends and special values
        let mut worst = 0f64;
        let mut x = EXP_LO;
        while x <= EXP_HI {
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - want) / want).abs();
            worst = worst.max(rel);
            x = f32::from_bits(if x < 0.0 {
                x.to_bits() - 97
            } else {
                x.to_bits() + 97
            });
            if x == 0.0 || x.is_nan() {
                x = f32::from_bits(1);
            }
        }
        eprintln!("exp: max relative error {worst:.3e}");
        assert!(worst < 8.5e-8, "exp: max relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::INFINITY), exp(EXP_HI));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn exp_paths_give_the_same_bits() {
        let mut xs: Vec<f32> = (0..200_000)
            .map(|i| -100.0 + 190.0 * i as f32 / 200_000.0)
            .collect();
        xs.extend([0.0, -0.0, EXP_LO, EXP_HI, f32::NAN, f32::INFINITY]);
        xs.extend([f32::NEG_INFINITY, f32::MIN_POSITIVE, -f32::MIN_POSITIVE]);
        let want: Vec<f32> = xs.iter().map(|&x| exp(x)).collect();
        for isa in [x86::Isa::Avx2, x86::Isa::Avx512] {
            let mut got = vec![f32::NAN; xs.len()];
            if x86::exp_with(isa, &xs, &mut got) {
                eprintln!("checked {isa:?} exp");
                for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "{isa:?} exp({x}): {g} vs {w}"
                    );
                }
            }
        }
    }

    /// Softmax attention in f64 over row-major keys and values.
    fn attend_f64(q: &[f32], k: &[f32], v: &[f32], len: usize, scale: f32) -> Vec<f64> {
        let d = q.len();
        let s: Vec<f64> = (0..len)
            .map(|j| {
                (0..d)
                    .map(|t| f64::from(q[t]) * f64::from(k[j * d + t]))
                    .sum::<f64>()
                    * f64::from(scale)
            })
            .collect();
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let p: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let sum: f64 = p.iter().sum();
        (0..d)
            .map(|t| {
                (0..len)
                    .map(|j| p[j] * f64::from(v[j * d + t]))
                    .sum::<f64>()
                    / sum
            })
            .collect()
    }

    #[test]
    fn attention_paths_agree_bit_for_bit_and_match_f64() {
        for &d in &[1, 3, 4, 8, 9, 16, 64, 128] {
            let n = 300;
            let (k, v) = (rand_vec(n * d, d as u64), rand_vec(n * d, 100 + d as u64));
            // large scores, so the max subtraction and exp matter
            let q: Vec<f32> = rand_vec(d, 7).iter().map(|x| x * 6.0).collect();
            let (kc, vc) = caches(&k, &v, d);
            let scale = 1.0 / (d as f32).sqrt();
            for len in [1, 2, 15, 16, 17, 31, 32, 33, 100, 255, 300] {
                let mut want = vec![0f32; d];
                attend_portable(&q, &kc, &vc, len, scale, &mut vec![0.0; 304], &mut want);
                let exact = attend_f64(&q, &k, &v, len, scale);
                for (w, e) in want.iter().zip(&exact) {
                    assert!(
                        (f64::from(*w) - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "d {d} len {len}: {w} vs {e}"
                    );
                }
                // later positions in the last block (a prefill has
                // appended them) change nothing: same bits as a cache
                // that ends at len
                let (kl, vl) = caches(&k[..len * d], &v[..len * d], d);
                let mut alone = vec![0f32; d];
                attend(&q, &kl, &vl, len, scale, &mut Vec::new(), &mut alone);
                let mut paths = vec![alone];
                #[cfg(target_arch = "x86_64")]
                for isa in [x86::Isa::Avx2, x86::Isa::Avx512] {
                    let mut got = vec![f32::NAN; d];
                    let mut scores = vec![0f32; 304];
                    if x86::attend_with(isa, &q, &kc, &vc, len, scale, &mut scores, &mut got) {
                        paths.push(got);
                    }
                }
                for got in &paths {
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "d {d} len {len}: {got:?} vs portable {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn kv_push_lays_out_blocks_dimension_major() {
        let d = 3;
        let mut c = Vec::new();
        for p in 0..17 {
            kv_push(&mut c, p, &[p as f32, 100.0 + p as f32, 200.0 + p as f32]);
        }
        assert_eq!(c.len(), 2 * KV_BLOCK * d);
        assert_eq!(c[5], 5.0);
        assert_eq!(c[KV_BLOCK + 5], 105.0);
        assert_eq!(c[2 * KV_BLOCK + 15], 215.0);
        assert_eq!(c[3 * KV_BLOCK], 16.0);
        assert_eq!(c[4 * KV_BLOCK], 116.0);
        assert_eq!(c[3 * KV_BLOCK + 1], 0.0, "padding is zero");
    }
}
