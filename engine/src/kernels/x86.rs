//! AVX2 + FMA (+ F16C) versions of the two hot loops: the dot-product tile
//! of the matrix product and the weight-row conversion to f32, and an
//! AVX-512 version of the tile (twice the multiply-adds per instruction;
//! prefill and batched decode are compute-bound). The AVX2 tile has a
//! portable twin in `kernels/mod.rs` that computes the same sums in the same
//! lane order (the only difference is the FMA's single rounding); the
//! AVX-512 tile sums 16 lanes, so it differs from both by rounding only.
//! The tests run every available path on the same inputs.
//!
//! Attention (AVX-512 and AVX2, 16 cached positions per step, with a
//! vectorized `exp`) performs exactly the operations of its portable twin,
//! lane for lane, so all three give the same bits.
//!
//! The only `unsafe` in the engine: calls into `#[target_feature]` functions
//! after runtime detection, and raw-pointer loads whose bounds the safe
//! wrappers assert first.
#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Whether this CPU has AVX2, FMA and F16C (checked once).
pub fn available() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    })
}

/// Whether this CPU also has AVX-512F (checked once).
pub fn available_512() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| available() && std::is_x86_feature_detected!("avx512f"))
}

#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    // lanes (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1: the portable
    // twin's reduction order.
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s4 = _mm_add_ps(lo, hi);
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

/// `out[r * MB + b] = dot(w[r*k ..], x[b*k ..])` for `r < R`, `b < MB`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `w.len() >= R*k`, `x.len() >= MB*k`,
/// `out.len() >= R*MB` (the caller asserts these).
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const MB: usize>(w: &[f32], x: &[f32], k: usize, out: &mut [f32]) {
    let k8 = k / 8 * 8;
    let wp = w.as_ptr();
    let xp = x.as_ptr();
    let mut acc = [[_mm256_setzero_ps(); MB]; R];
    let mut i = 0;
    while i < k8 {
        let mut xv = [_mm256_setzero_ps(); MB];
        for (b, v) in xv.iter_mut().enumerate() {
            // SAFETY: b*k + i + 8 <= MB*k <= x.len()
            *v = unsafe { _mm256_loadu_ps(xp.add(b * k + i)) };
        }
        for (r, accr) in acc.iter_mut().enumerate() {
            // SAFETY: r*k + i + 8 <= R*k <= w.len()
            let wv = unsafe { _mm256_loadu_ps(wp.add(r * k + i)) };
            for (a, xb) in accr.iter_mut().zip(&xv) {
                *a = _mm256_fmadd_ps(wv, *xb, *a);
            }
        }
        i += 8;
    }
    for r in 0..R {
        for b in 0..MB {
            let mut s = hsum(acc[r][b]);
            for j in k8..k {
                s = w[r * k + j].mul_add(x[b * k + j], s);
            }
            out[r * MB + b] = s;
        }
    }
}

/// [`tile`] with 16 lanes; the `k % 16` tail through masked loads (masked-off
/// lanes are neither read nor faulted on).
///
/// # Safety
/// The CPU must support AVX-512F; bounds as for [`tile`].
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const R: usize, const MB: usize>(
    w: &[f32],
    x: &[f32],
    k: usize,
    out: &mut [f32],
) {
    let k16 = k / 16 * 16;
    let wp = w.as_ptr();
    let xp = x.as_ptr();
    let mut acc = [[_mm512_setzero_ps(); MB]; R];
    let mut i = 0;
    while i < k {
        let mask: __mmask16 = if i < k16 {
            0xffff
        } else {
            (1u16 << (k - k16)) - 1
        };
        let mut xv = [_mm512_setzero_ps(); MB];
        for (b, v) in xv.iter_mut().enumerate() {
            // SAFETY: lanes i..i+16 masked to < k, b*k + k <= MB*k <= x.len()
            *v = unsafe { _mm512_maskz_loadu_ps(mask, xp.add(b * k + i)) };
        }
        for (r, accr) in acc.iter_mut().enumerate() {
            // SAFETY: as above, r*k + k <= R*k <= w.len()
            let wv = unsafe { _mm512_maskz_loadu_ps(mask, wp.add(r * k + i)) };
            for (a, xb) in accr.iter_mut().zip(&xv) {
                *a = _mm512_fmadd_ps(wv, *xb, *a);
            }
        }
        i += 16;
    }
    for r in 0..R {
        for b in 0..MB {
            out[r * MB + b] = _mm512_reduce_add_ps(acc[r][b]);
        }
    }
}

macro_rules! tile_dispatch {
    ($f:ident, $rows:expr, $mb:expr, $w:expr, $x:expr, $k:expr, $out:expr) => {
        match ($rows, $mb) {
            (1, 1) => $f::<1, 1>($w, $x, $k, $out),
            (1, 2) => $f::<1, 2>($w, $x, $k, $out),
            (1, 3) => $f::<1, 3>($w, $x, $k, $out),
            (2, 1) => $f::<2, 1>($w, $x, $k, $out),
            (2, 2) => $f::<2, 2>($w, $x, $k, $out),
            (2, 3) => $f::<2, 3>($w, $x, $k, $out),
            (3, 1) => $f::<3, 1>($w, $x, $k, $out),
            (3, 2) => $f::<3, 2>($w, $x, $k, $out),
            (3, 3) => $f::<3, 3>($w, $x, $k, $out),
            (4, 1) => $f::<4, 1>($w, $x, $k, $out),
            (4, 2) => $f::<4, 2>($w, $x, $k, $out),
            (4, 3) => $f::<4, 3>($w, $x, $k, $out),
            _ => unreachable!("tile shape asserted by the caller"),
        }
    };
}

/// Which x86 tile [`dot_tile_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx2,
    Avx512,
}

/// The widest tile this CPU runs, if any.
pub fn best_isa() -> Option<Isa> {
    if available_512() {
        Some(Isa::Avx512)
    } else if available() {
        Some(Isa::Avx2)
    } else {
        None
    }
}

/// Safe entry to the tiles for `rows <= 4` weight rows and `mb <= 3`
/// activation rows, with the ISA chosen; false (doing nothing) if the CPU
/// lacks it.
pub fn dot_tile_with(
    isa: Isa,
    w: &[f32],
    rows: usize,
    x: &[f32],
    mb: usize,
    k: usize,
    out: &mut [f32],
) -> bool {
    let ok = match isa {
        Isa::Avx2 => available(),
        Isa::Avx512 => available_512(),
    };
    if !ok {
        return false;
    }
    assert!((1..=4).contains(&rows) && (1..=3).contains(&mb));
    assert!(w.len() >= rows * k && x.len() >= mb * k && out.len() >= rows * mb);
    // SAFETY: features checked above, bounds asserted above.
    unsafe {
        match isa {
            Isa::Avx2 => tile_dispatch!(tile, rows, mb, w, x, k, out),
            Isa::Avx512 => tile_dispatch!(tile512, rows, mb, w, x, k, out),
        }
    }
    true
}

/// The widest available tile (see [`dot_tile_with`]); false if none.
pub fn dot_tile(w: &[f32], rows: usize, x: &[f32], mb: usize, k: usize, out: &mut [f32]) -> bool {
    match best_isa() {
        Some(isa) => dot_tile_with(isa, w, rows, x, mb, k, out),
        None => false,
    }
}

/// How far ahead of the conversion the weight stream is prefetched, in
/// bytes. Weights are memory-mapped page-cache pages (4 KiB, no huge
/// pages), and the hardware prefetchers stop at every page boundary; a
/// software prefetch a few KiB ahead keeps the stream going across them.
const PREFETCH_AHEAD: usize = 4096;

/// Converts 16-bit floats to f32: bf16 (`F16 = false`: the bits shifted
/// into the high half) or IEEE f16 (`F16 = true`: F16C's conversion).
///
/// # Safety
/// AVX2 and F16C required; `src.len() >= 2 * dst.len()`.
#[target_feature(enable = "avx2,f16c")]
unsafe fn half_to_f32<const F16: bool>(src: &[u8], dst: &mut [f32]) {
    let n32 = dst.len() / 32 * 32;
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i < n32 {
        // A prefetch is only a hint: it never faults, even past the end of
        // the mapping, and the pointer is not dereferenced (wrapping_add).
        _mm_prefetch::<_MM_HINT_T0>(sp.wrapping_add(2 * i + PREFETCH_AHEAD) as *const i8);
        for j in (0..32).step_by(8) {
            // SAFETY: 2*(i+j+8) <= 2*dst.len() <= src.len(); i + j + 8 <= dst.len()
            unsafe {
                let h = _mm_loadu_si128(sp.add(2 * (i + j)) as *const __m128i);
                let v = if F16 {
                    _mm256_cvtph_ps(h)
                } else {
                    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
                };
                _mm256_storeu_ps(dp.add(i + j), v);
            }
        }
        i += 32;
    }
    if F16 {
        super::f16_to_f32_portable(&src[2 * n32..], &mut dst[n32..]);
    } else {
        super::bf16_to_f32_portable(&src[2 * n32..], &mut dst[n32..]);
    }
}

/// Converts little-endian bf16 bytes to f32; false if the CPU lacks AVX2.
pub fn bf16_to_f32(src: &[u8], dst: &mut [f32]) -> bool {
    if !available() {
        return false;
    }
    assert!(src.len() >= 2 * dst.len());
    // SAFETY: feature checked, bounds asserted.
    unsafe { half_to_f32::<false>(src, dst) };
    true
}

/// Converts little-endian f16 bytes to f32; false if the CPU lacks F16C.
pub fn f16_to_f32(src: &[u8], dst: &mut [f32]) -> bool {
    if !available() {
        return false;
    }
    assert!(src.len() >= 2 * dst.len());
    // SAFETY: feature checked, bounds asserted.
    unsafe { half_to_f32::<true>(src, dst) };
    true
}

// ---- attention (the portable twin: `attend_portable` in kernels/mod.rs) ----

use super::{EXP_HI, EXP_LO, EXP_MAGIC, EXP_P, KV_BLOCK, LN2_HI, LN2_LO, LOG2E};

/// [`super::exp`] on 16 lanes: the same operations, so the same bits.
#[target_feature(enable = "avx512f")]
fn exp512(x: __m512) -> __m512 {
    let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_LO));
    // min(HI, x) returns x when x is NaN, as the portable `if HI < x`
    let x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), x);
    let t = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(EXP_MAGIC));
    let n = _mm512_sub_ps(t, _mm512_set1_ps(EXP_MAGIC));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    let mut y = _mm512_set1_ps(EXP_P[0]);
    for &c in &EXP_P[1..] {
        y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
    }
    let y = _mm512_add_ps(
        _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r),
        _mm512_set1_ps(1.0),
    );
    let e = _mm512_sub_epi32(
        _mm512_castps_si512(t),
        _mm512_castps_si512(_mm512_set1_ps(EXP_MAGIC)),
    );
    let pow = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        e,
        _mm512_set1_epi32(127),
    )));
    _mm512_maskz_mov_ps(!under, _mm512_mul_ps(y, pow))
}

/// [`super::exp`] on 8 lanes: the same operations, so the same bits.
#[target_feature(enable = "avx2,fma")]
fn exp256(x: __m256) -> __m256 {
    let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
    let x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x);
    let t = _mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), _mm256_set1_ps(EXP_MAGIC));
    let n = _mm256_sub_ps(t, _mm256_set1_ps(EXP_MAGIC));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let mut y = _mm256_set1_ps(EXP_P[0]);
    for &c in &EXP_P[1..] {
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
    }
    let y = _mm256_add_ps(
        _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r),
        _mm256_set1_ps(1.0),
    );
    let e = _mm256_sub_epi32(
        _mm256_castps_si256(t),
        _mm256_castps_si256(_mm256_set1_ps(EXP_MAGIC)),
    );
    let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        e,
        _mm256_set1_epi32(127),
    )));
    _mm256_andnot_ps(under, _mm256_mul_ps(y, pow))
}

/// `[i] op [i + 8]` of a 16-lane vector's halves, then [`hsum`]'s order
/// (the portable `tree16`); `MAX` picks `a > b ? a : b` instead of `+`.
#[target_feature(enable = "avx2,fma")]
fn tree8<const MAX: bool>(v: __m256) -> f32 {
    if !MAX {
        return hsum(v);
    }
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s4 = _mm_max_ps(lo, hi);
    let s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_max_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

#[target_feature(enable = "avx512f")]
fn tree512<const MAX: bool>(v: __m512) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    if MAX {
        tree8::<true>(_mm256_max_ps(lo, hi))
    } else {
        tree8::<false>(_mm256_add_ps(lo, hi))
    }
}

/// Scores of the `N` blocks from block `b` (`q . k * scale`, 16 positions
/// each), stored at `sp` and returned.
///
/// # Safety
/// AVX-512F required; blocks `b..b + N` lie inside the key cache at `kp`
/// (blocks of `bs = 16 * q.len()`) and the scores at `sp`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn scores512<const N: usize>(
    q: &[f32],
    kp: *const f32,
    bs: usize,
    b: usize,
    scale: __m512,
    sp: *mut f32,
) -> [__m512; N] {
    let mut acc = [_mm512_setzero_ps(); N];
    for (t, &qt) in q.iter().enumerate() {
        let qv = _mm512_set1_ps(qt);
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: block b + i is inside the cache (the caller's contract)
            let kv = unsafe { _mm512_loadu_ps(kp.add((b + i) * bs + t * KV_BLOCK)) };
            *a = _mm512_fmadd_ps(qv, kv, *a);
        }
    }
    for (i, a) in acc.iter_mut().enumerate() {
        *a = _mm512_mul_ps(*a, scale);
        // SAFETY: block b + i is inside the scores (the caller's contract)
        unsafe { _mm512_storeu_ps(sp.add((b + i) * KV_BLOCK), *a) };
    }
    acc
}

/// Per-lane sums `p . v[t + i]` over blocks `0..=last` for `i < N` (lanes
/// of block `last` outside `tail` left out).
///
/// # Safety
/// AVX-512F required; `sp` holds `last + 1` blocks of 16 weights, `vp`
/// `last + 1` blocks of `bs`, and `t + N <= bs / 16`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn values512<const N: usize>(
    sp: *const f32,
    vp: *const f32,
    bs: usize,
    t: usize,
    last: usize,
    tail: __mmask16,
) -> [__m512; N] {
    let mut acc = [_mm512_setzero_ps(); N];
    for b in 0..=last {
        // SAFETY: b <= last (the caller's contract)
        let p = unsafe { _mm512_loadu_ps(sp.add(b * KV_BLOCK)) };
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: b <= last and t + i < bs / 16 (the caller's contract)
            let v = unsafe { _mm512_loadu_ps(vp.add(b * bs + (t + i) * KV_BLOCK)) };
            *a = if b < last {
                _mm512_fmadd_ps(p, v, *a)
            } else {
                _mm512_mask3_fmadd_ps(p, v, *a, tail)
            };
        }
    }
    acc
}

/// Attention with AVX-512: 16 positions per vector.
///
/// # Safety
/// AVX-512F required; `len >= 1`, `keys` and `values` hold `nb =
/// ceil(len / 16)` blocks of `16 * q.len()`, `scores.len() >= 16 * nb`,
/// `out.len() == q.len()` (the safe wrapper asserts these).
#[target_feature(enable = "avx512f")]
unsafe fn attend512(
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
    let last = len.div_ceil(KV_BLOCK) - 1;
    let tail: __mmask16 = ((1u32 << (len - last * KV_BLOCK)) - 1) as u16;
    let (kp, vp, sp) = (keys.as_ptr(), values.as_ptr(), scores.as_mut_ptr());
    let scale = _mm512_set1_ps(scale);
    let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
    // SAFETY (all calls below): blocks 0..=last are inside keys, values and
    // scores (asserted by the safe wrapper), t + N <= d.
    let mut b = 0;
    while b + 4 <= last {
        for s in unsafe { scores512::<4>(q, kp, bs, b, scale, sp) } {
            mx = _mm512_max_ps(mx, s);
        }
        b += 4;
    }
    while b < last {
        let [s] = unsafe { scores512::<1>(q, kp, bs, b, scale, sp) };
        mx = _mm512_max_ps(mx, s);
        b += 1;
    }
    let [s] = unsafe { scores512::<1>(q, kp, bs, last, scale, sp) };
    mx = _mm512_mask_max_ps(mx, tail, mx, s);
    let m = _mm512_set1_ps(tree512::<true>(mx));
    let mut sum = _mm512_setzero_ps();
    for b in 0..=last {
        let s = unsafe { _mm512_loadu_ps(sp.add(b * KV_BLOCK)) };
        let mut p = exp512(_mm512_sub_ps(s, m));
        if b == last {
            p = _mm512_maskz_mov_ps(tail, p);
        }
        unsafe { _mm512_storeu_ps(sp.add(b * KV_BLOCK), p) };
        sum = _mm512_add_ps(sum, p);
    }
    let inv = 1.0 / tree512::<false>(sum);
    let mut t = 0;
    while t + 4 <= d {
        let acc = unsafe { values512::<4>(sp, vp, bs, t, last, tail) };
        for (o, a) in out[t..t + 4].iter_mut().zip(acc) {
            *o = tree512::<false>(a) * inv;
        }
        t += 4;
    }
    while t < d {
        let [a] = unsafe { values512::<1>(sp, vp, bs, t, last, tail) };
        out[t] = tree512::<false>(a) * inv;
        t += 1;
    }
}

/// [`scores512`] with AVX2: each block as two 8-lane halves.
///
/// # Safety
/// AVX2 and FMA required; as for [`scores512`].
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn scores256<const N: usize>(
    q: &[f32],
    kp: *const f32,
    bs: usize,
    b: usize,
    scale: __m256,
    sp: *mut f32,
) -> [[__m256; 2]; N] {
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    for (t, &qt) in q.iter().enumerate() {
        let qv = _mm256_set1_ps(qt);
        for (i, a) in acc.iter_mut().enumerate() {
            for (h, ah) in a.iter_mut().enumerate() {
                // SAFETY: block b + i is inside the cache (the caller's contract)
                let kv = unsafe { _mm256_loadu_ps(kp.add((b + i) * bs + t * KV_BLOCK + 8 * h)) };
                *ah = _mm256_fmadd_ps(qv, kv, *ah);
            }
        }
    }
    for (i, a) in acc.iter_mut().enumerate() {
        for (h, ah) in a.iter_mut().enumerate() {
            *ah = _mm256_mul_ps(*ah, scale);
            // SAFETY: block b + i is inside the scores (the caller's contract)
            unsafe { _mm256_storeu_ps(sp.add((b + i) * KV_BLOCK + 8 * h), *ah) };
        }
    }
    acc
}

/// [`values512`] with AVX2; `tail` holds all-ones lanes for the positions
/// of block `last` that count.
///
/// # Safety
/// AVX2 and FMA required; as for [`values512`].
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn values256<const N: usize>(
    sp: *const f32,
    vp: *const f32,
    bs: usize,
    t: usize,
    last: usize,
    tail: [__m256; 2],
) -> [[__m256; 2]; N] {
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    for b in 0..=last {
        for h in 0..2 {
            // SAFETY: b <= last (the caller's contract)
            let p = unsafe { _mm256_loadu_ps(sp.add(b * KV_BLOCK + 8 * h)) };
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: b <= last and t + i < bs / 16 (the caller's contract)
                let v = unsafe { _mm256_loadu_ps(vp.add(b * bs + (t + i) * KV_BLOCK + 8 * h)) };
                let f = _mm256_fmadd_ps(p, v, a[h]);
                a[h] = if b < last {
                    f
                } else {
                    _mm256_blendv_ps(a[h], f, tail[h])
                };
            }
        }
    }
    acc
}

/// Attention with AVX2: each 16-position block as two 8-lane halves.
///
/// # Safety
/// AVX2 and FMA required; bounds as for [`attend512`].
#[target_feature(enable = "avx2,fma")]
unsafe fn attend256(
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
    let last = len.div_ceil(KV_BLOCK) - 1;
    let n = (len - last * KV_BLOCK) as i32;
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // all-ones lanes where the position is < len
    let tail = [
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane)),
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane)),
    ];
    let (kp, vp, sp) = (keys.as_ptr(), values.as_ptr(), scores.as_mut_ptr());
    let scale = _mm256_set1_ps(scale);
    let mut mx = [_mm256_set1_ps(f32::NEG_INFINITY); 2];
    // SAFETY (all calls below): blocks 0..=last are inside keys, values and
    // scores (asserted by the safe wrapper), t + N <= d.
    let mut b = 0;
    while b + 2 <= last {
        for s in unsafe { scores256::<2>(q, kp, bs, b, scale, sp) } {
            mx = [_mm256_max_ps(mx[0], s[0]), _mm256_max_ps(mx[1], s[1])];
        }
        b += 2;
    }
    while b < last {
        let [s] = unsafe { scores256::<1>(q, kp, bs, b, scale, sp) };
        mx = [_mm256_max_ps(mx[0], s[0]), _mm256_max_ps(mx[1], s[1])];
        b += 1;
    }
    let [s] = unsafe { scores256::<1>(q, kp, bs, last, scale, sp) };
    for h in 0..2 {
        mx[h] = _mm256_blendv_ps(mx[h], _mm256_max_ps(mx[h], s[h]), tail[h]);
    }
    let m = _mm256_set1_ps(tree8::<true>(_mm256_max_ps(mx[0], mx[1])));
    let mut sum = [_mm256_setzero_ps(); 2];
    for b in 0..=last {
        for (h, sh) in sum.iter_mut().enumerate() {
            let s = unsafe { _mm256_loadu_ps(sp.add(b * KV_BLOCK + 8 * h)) };
            let mut p = exp256(_mm256_sub_ps(s, m));
            if b == last {
                p = _mm256_and_ps(tail[h], p);
            }
            unsafe { _mm256_storeu_ps(sp.add(b * KV_BLOCK + 8 * h), p) };
            *sh = _mm256_add_ps(*sh, p);
        }
    }
    let inv = 1.0 / tree8::<false>(_mm256_add_ps(sum[0], sum[1]));
    let mut t = 0;
    while t + 2 <= d {
        let acc = unsafe { values256::<2>(sp, vp, bs, t, last, tail) };
        for (o, a) in out[t..t + 2].iter_mut().zip(acc) {
            *o = tree8::<false>(_mm256_add_ps(a[0], a[1])) * inv;
        }
        t += 2;
    }
    while t < d {
        let [a] = unsafe { values256::<1>(sp, vp, bs, t, last, tail) };
        out[t] = tree8::<false>(_mm256_add_ps(a[0], a[1])) * inv;
        t += 1;
    }
}

/// Safe entry to the attention kernels with the ISA chosen (see
/// `kernels::attend`); false (doing nothing) if the CPU lacks it.
#[allow(clippy::too_many_arguments)]
pub fn attend_with(
    isa: Isa,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    len: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) -> bool {
    let ok = match isa {
        Isa::Avx2 => available(),
        Isa::Avx512 => available_512(),
    };
    if !ok {
        return false;
    }
    let d = q.len();
    let nb = len.div_ceil(KV_BLOCK);
    assert!(len >= 1 && d >= 1);
    assert!(keys.len() >= nb * KV_BLOCK * d && values.len() >= nb * KV_BLOCK * d);
    assert!(scores.len() >= nb * KV_BLOCK && out.len() == d);
    // SAFETY: features checked above, bounds asserted above.
    unsafe {
        match isa {
            Isa::Avx2 => attend256(q, keys, values, len, scale, scores, out),
            Isa::Avx512 => attend512(q, keys, values, len, scale, scores, out),
        }
    }
    true
}

/// [`attend_with`] the widest available ISA; false if none.
pub fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    len: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) -> bool {
    match best_isa() {
        Some(isa) => attend_with(isa, q, keys, values, len, scale, scores, out),
        None => false,
    }
}

/// `out[i] = exp(x[i])` with the ISA chosen, for comparing with the
/// portable [`super::exp`]; false if the CPU lacks it.
#[cfg(test)]
pub fn exp_with(isa: Isa, x: &[f32], out: &mut [f32]) -> bool {
    assert_eq!(x.len(), out.len());
    match isa {
        Isa::Avx512 if available_512() => {
            for (xc, oc) in x.chunks(16).zip(out.chunks_mut(16)) {
                let mut buf = [0f32; 16];
                buf[..xc.len()].copy_from_slice(xc);
                // SAFETY: feature checked; 16-float local buffers.
                unsafe {
                    let v = exp512(_mm512_loadu_ps(buf.as_ptr()));
                    _mm512_storeu_ps(buf.as_mut_ptr(), v);
                }
                oc.copy_from_slice(&buf[..oc.len()]);
            }
            true
        }
        Isa::Avx2 if available() => {
            for (xc, oc) in x.chunks(8).zip(out.chunks_mut(8)) {
                let mut buf = [0f32; 8];
                buf[..xc.len()].copy_from_slice(xc);
                // SAFETY: feature checked; 8-float local buffers.
                unsafe {
                    let v = exp256(_mm256_loadu_ps(buf.as_ptr()));
                    _mm256_storeu_ps(buf.as_mut_ptr(), v);
                }
                oc.copy_from_slice(&buf[..oc.len()]);
            }
            true
        }
        _ => false,
    }
}
