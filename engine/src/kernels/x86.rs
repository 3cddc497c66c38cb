//! AVX2 + FMA (+ F16C) versions of the two hot loops: the dot-product tile
//! of the matrix product and the weight-row conversion to f32, and an
//! AVX-512 version of the tile (twice the multiply-adds per instruction;
//! prefill and batched decode are compute-bound). The AVX2 tile has a
//! portable twin in `kernels/mod.rs` that computes the same sums in the same
//! lane order (the only difference is the FMA's single rounding); the
//! AVX-512 tile sums 16 lanes, so it differs from both by rounding only.
//! The tests run every available path on the same inputs.
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
