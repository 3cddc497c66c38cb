//! Hidden-state sketch (PROTOCOL.md §6.4): keyed random-hyperplane LSH
//! (SimHash) over an exactly quantized final hidden state, 128 bits per token.
//!
//! 1. Quantize: `r` = the `ceil(d / 16)`-th largest `|h_i|` (an order
//!    statistic, exact in any reduction order); `s = 32 / r` in f32;
//!    `q_i = clamp(round_half_even(h_i * s), -127, 127)`. Only IEEE-exact
//!    operations (abs, compare, one division, one multiplication, rounding),
//!    so CPU and GPU code agree bit for bit on identical inputs.
//! 2. Project: for each of 128 hyperplanes `j`, `a_j = sum_i sigma_{j,i} q_i`
//!    in integers, where `sigma_{j,i} = -1` if bit `j` of the dimension-`i`
//!    plane word is set, else `+1`. Plane words are the window's sketch-key
//!    ChaCha20 keystream read 16 bytes per hidden dimension (u128 LE).
//! 3. Bit `j` of the sketch is `a_j > 0`; sketch byte `j / 8`, bit `j % 8`.
//!
//! Each bit depends on which dimensions are large and on their signs (every
//! dimension has its own key-chosen sign per plane). Two unrelated vectors
//! disagree on each bit with probability 1/2; vectors at angle `theta` with
//! probability `theta / pi` (Charikar 2002).
#![forbid(unsafe_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::hash::Digest;
use crate::params::{
    SKETCH_BYTES, SKETCH_CLAMP, SKETCH_MIN_REFERENCE, SKETCH_REF_RANK_DIVISOR, SKETCH_SCALE,
};

/// Largest hidden dimension a sketch is defined for.
pub const MAX_HIDDEN_DIM: usize = 1 << 16;

/// A 128-bit sketch of one hidden state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sketch(pub [u8; SKETCH_BYTES]);

impl Sketch {
    /// Number of differing bits.
    pub fn hamming(&self, other: &Sketch) -> u32 {
        (u128::from_le_bytes(self.0) ^ u128::from_le_bytes(other.0)).count_ones()
    }
}

/// Errors: hidden states no honest model produces.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SketchError {
    #[error("hidden dimension {got} does not match the sketch planes' {want}")]
    DimMismatch { got: usize, want: usize },
    #[error("hidden dimension {0} outside 1..={MAX_HIDDEN_DIM}")]
    BadDim(usize),
    #[error("hidden state component {index} is not finite ({value})")]
    NonFinite { index: usize, value: f32 },
    #[error(
        "degenerate hidden state: reference magnitude {reference} below {SKETCH_MIN_REFERENCE}"
    )]
    Degenerate { reference: f32 },
}

/// A recomputed sketch too far from the committed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sketch distance {distance} > {max} (committed {committed:?}, recomputed {recomputed:?})")]
pub struct SketchReject {
    pub distance: u32,
    pub max: u32,
    pub committed: Sketch,
    pub recomputed: Sketch,
}

/// Dimensions whose masked projections are summed in `i16` before they are
/// widened: `|sum| <= 128 * 256 = 32768` fits (`i16::MIN` at worst), so the
/// partial sums cannot overflow.
const PROJECTION_BLOCK: usize = 256;

/// The window's hyperplanes, expanded for one hidden dimension.
#[derive(Clone)]
pub struct SketchPlanes {
    planes: Vec<u128>,
    /// `masks[i][j]` is `-1` (all bits) when bit `j` of plane word `i` is set,
    /// else `0`: the projection then adds `q_i & mask` per plane, which the
    /// compiler turns into vector AND/ADD on any x86-64 or Arm target.
    masks: Vec<[i16; 128]>,
}

impl std::fmt::Debug for SketchPlanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SketchPlanes")
            .field("dim", &self.planes.len())
            .finish()
    }
}

impl SketchPlanes {
    /// Expand `sketch_key` (see [`crate::seeds::sketch_key`]) into one 128-bit
    /// plane word per hidden dimension.
    pub fn new(sketch_key: &Digest, hidden_dim: usize) -> Result<Self, SketchError> {
        if hidden_dim == 0 || hidden_dim > MAX_HIDDEN_DIM {
            return Err(SketchError::BadDim(hidden_dim));
        }
        let mut rng = ChaCha20Rng::from_seed(*sketch_key);
        let planes = (0..hidden_dim)
            .map(|_| {
                let lo = u128::from(rng.next_u64());
                let hi = u128::from(rng.next_u64());
                lo | (hi << 64)
            })
            .collect();
        Ok(SketchPlanes::from_words(planes))
    }

    fn from_words(planes: Vec<u128>) -> Self {
        let masks = planes
            .iter()
            .map(|&w| std::array::from_fn(|j| -(((w >> j) & 1) as i16)))
            .collect();
        SketchPlanes { planes, masks }
    }

    /// The hidden dimension these planes are for.
    pub fn dim(&self) -> usize {
        self.planes.len()
    }

    /// Plane words, one per hidden dimension (for kernels that upload them).
    pub fn words(&self) -> &[u128] {
        &self.planes
    }

    /// Sketch of a final hidden state.
    ///
    /// ```
    /// use grail_core::sketch::SketchPlanes;
    /// let planes = SketchPlanes::new(&[7u8; 32], 4).unwrap();
    /// let h = [0.5f32, -2.0, 1.25, 0.0];
    /// let s = planes.sketch(&h).unwrap();
    /// // scaling by a power of two changes nothing; flipping the signs flips every bit
    /// // whose projection was non-zero
    /// assert_eq!(planes.sketch(&[1.0, -4.0, 2.5, 0.0]).unwrap(), s);
    /// let neg = planes.sketch(&[-0.5, 2.0, -1.25, 0.0]).unwrap();
    /// assert!(s.hamming(&neg) > 64);
    /// ```
    pub fn sketch(&self, hidden: &[f32]) -> Result<Sketch, SketchError> {
        if hidden.len() != self.planes.len() {
            return Err(SketchError::DimMismatch {
                got: hidden.len(),
                want: self.planes.len(),
            });
        }
        let q = quantize(hidden)?;
        self.sketch_quantized(&q)
    }

    /// Sketch of an already quantized hidden state.
    pub fn sketch_quantized(&self, q: &[i8]) -> Result<Sketch, SketchError> {
        if q.len() != self.planes.len() {
            return Err(SketchError::DimMismatch {
                got: q.len(),
                want: self.planes.len(),
            });
        }
        // a_j = sum_i sigma_ji q_i = total - 2 * (sum of q_i over the
        // dimensions whose bit j is set): integers, exact in any order.
        let mut set = [0i32; 128];
        let mut total = 0i32;
        for (qs, ms) in q
            .chunks(PROJECTION_BLOCK)
            .zip(self.masks.chunks(PROJECTION_BLOCK))
        {
            let mut part = [0i16; 128];
            for (&qi, m) in qs.iter().zip(ms) {
                let qi = i16::from(qi);
                for (p, &mj) in part.iter_mut().zip(m) {
                    // no overflow: see PROJECTION_BLOCK
                    *p = p.wrapping_add(qi & mj);
                }
            }
            for (s, p) in set.iter_mut().zip(part) {
                *s += i32::from(p);
            }
            total += qs.iter().map(|&x| i32::from(x)).sum::<i32>();
        }
        let acc: [i32; 128] = std::array::from_fn(|j| total - 2 * set[j]);
        let mut bits = 0u128;
        for (j, &a) in acc.iter().enumerate() {
            if a > 0 {
                bits |= 1 << j;
            }
        }
        Ok(Sketch(bits.to_le_bytes()))
    }
}

/// The quantization reference: the `ceil(d / SKETCH_REF_RANK_DIVISOR)`-th
/// largest `|h_i|`. Inputs must be finite.
fn reference_magnitude(hidden: &[f32]) -> f32 {
    let d = hidden.len();
    let k = d.div_ceil(SKETCH_REF_RANK_DIVISOR);
    let mut mags: Vec<f32> = hidden.iter().map(|x| x.abs()).collect();
    let (_, kth, _) = mags.select_nth_unstable_by(d - k, f32::total_cmp);
    *kth
}

/// Quantize a final hidden state to `i8` components (step 1 above).
pub fn quantize(hidden: &[f32]) -> Result<Vec<i8>, SketchError> {
    if hidden.is_empty() || hidden.len() > MAX_HIDDEN_DIM {
        return Err(SketchError::BadDim(hidden.len()));
    }
    if let Some((index, &value)) = hidden.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(SketchError::NonFinite { index, value });
    }
    let reference = reference_magnitude(hidden);
    if reference < SKETCH_MIN_REFERENCE {
        return Err(SketchError::Degenerate { reference });
    }
    let scale = SKETCH_SCALE / reference;
    let clamp = SKETCH_CLAMP as f32;
    Ok(hidden
        .iter()
        .map(|&h| (h * scale).round_ties_even().clamp(-clamp, clamp) as i8)
        .collect())
}

/// Accept a committed sketch if it is within `max_hamming` bits of the
/// verifier's recomputation.
pub fn check_sketch(
    committed: &Sketch,
    recomputed: &Sketch,
    max_hamming: u32,
) -> Result<u32, SketchReject> {
    let distance = committed.hamming(recomputed);
    if distance <= max_hamming {
        Ok(distance)
    } else {
        Err(SketchReject {
            distance,
            max: max_hamming,
            committed: *committed,
            recomputed: *recomputed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::SKETCH_MAX_HAMMING;

    /// Deterministic pseudo-random vector with a few massive dimensions, like
    /// the final hidden states of trained models.
    fn vector(seed: u64, d: usize) -> Vec<f32> {
        vector_with(seed, d, true)
    }

    fn vector_with(seed: u64, d: usize, massive: bool) -> Vec<f32> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..d)
            .map(|i| {
                let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                if massive && i % 97 == 5 {
                    40.0 + u
                } else {
                    u * 3.0
                }
            })
            .collect()
    }

    #[test]
    fn quantization_known_values() {
        // d = 16 -> reference is the largest |h|, mapped to 32
        let mut h = vec![0.0f32; 16];
        h[0] = 2.0;
        h[1] = -1.0;
        h[2] = 0.03;
        h[3] = 9.0; // largest: reference
        h[4] = 0.1;
        let q = quantize(&h).unwrap();
        assert_eq!(&q[..5], &[7, -4, 0, 32, 0]); // 2*32/9 = 7.11, 0.1*32/9 = 0.36
                                                 // values above the reference saturate at the clamp
        let mut h = vec![1.0f32; 48]; // reference = 3rd largest = 1.0
        h[7] = 1000.0;
        h[8] = -1000.0;
        let q = quantize(&h).unwrap();
        assert_eq!((q[0], q[7], q[8]), (32, 127, -127));
    }

    /// The blocked, masked projection against the definition (sigma = -1 on
    /// set bits, one i32 sum per plane), across block boundaries and at the
    /// extremes of i8, where the i16 partial sums come closest to overflow.
    #[test]
    fn projection_matches_the_definition() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for (d, all_set) in [
            (1usize, false),
            (63, false),
            (256, false),
            (257, false),
            (700, false),
            (1536, false),
            (1536, true),
        ] {
            let planes = if all_set {
                // every sigma = -1: the largest partial sums there are
                SketchPlanes::from_words(vec![u128::MAX; d])
            } else {
                SketchPlanes::new(&[d as u8; 32], d).unwrap()
            };
            let extreme = |_| if rng.next_u32() & 1 == 0 { -128i8 } else { 127 };
            let mut cases: Vec<Vec<i8>> = vec![vec![-128; d], vec![127; d]];
            cases.push((0..d).map(extreme).collect());
            cases.push((0..d).map(|_| rng.next_u32() as i8).collect());
            for q in cases {
                let mut want = 0u128;
                for j in 0..128 {
                    let a: i32 = q
                        .iter()
                        .zip(planes.words())
                        .map(|(&qi, &w)| {
                            if (w >> j) & 1 == 1 {
                                -i32::from(qi)
                            } else {
                                i32::from(qi)
                            }
                        })
                        .sum();
                    if a > 0 {
                        want |= 1 << j;
                    }
                }
                assert_eq!(
                    planes.sketch_quantized(&q).unwrap().0,
                    want.to_le_bytes(),
                    "d = {d}"
                );
            }
        }
    }

    #[test]
    fn round_half_even() {
        // reference 32 -> scale 1: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0
        let mut h = vec![0.0f32; 16];
        h[0] = 32.0;
        h[1] = 0.5;
        h[2] = 1.5;
        h[3] = 2.5;
        h[4] = -0.5;
        h[5] = -1.5;
        let q = quantize(&h).unwrap();
        assert_eq!(&q[..6], &[32, 0, 2, 2, 0, -2]);
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(quantize(&[]), Err(SketchError::BadDim(0)));
        assert!(matches!(
            quantize(&[1.0, f32::INFINITY]),
            Err(SketchError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            quantize(&[0.0; 64]),
            Err(SketchError::Degenerate { .. })
        ));
        let planes = SketchPlanes::new(&[1u8; 32], 8).unwrap();
        assert_eq!(
            planes.sketch(&[1.0; 9]),
            Err(SketchError::DimMismatch { got: 9, want: 8 })
        );
        assert!(SketchPlanes::new(&[1u8; 32], 0).is_err());
        assert_eq!(
            planes.sketch_quantized(&[1i8; 7]),
            Err(SketchError::DimMismatch { got: 7, want: 8 })
        );
    }

    #[test]
    fn scale_invariant_and_deterministic() {
        let planes = SketchPlanes::new(&[5u8; 32], 512).unwrap();
        let h = vector(1, 512);
        let s = planes.sketch(&h).unwrap();
        let h2: Vec<f32> = h.iter().map(|x| x * 4.0).collect(); // exact power-of-two scaling
        assert_eq!(planes.sketch(&h2).unwrap(), s);
        assert_eq!(planes.sketch(&h).unwrap(), s);
    }

    #[test]
    fn unrelated_vectors_disagree_on_about_half_the_bits() {
        let planes = SketchPlanes::new(&[5u8; 32], 896).unwrap();
        let mut total = 0;
        for seed in 0..200 {
            let a = planes.sketch(&vector_with(seed, 896, false)).unwrap();
            let b = planes
                .sketch(&vector_with(1000 + seed, 896, false))
                .unwrap();
            let d = a.hamming(&b);
            assert!(d > SKETCH_MAX_HAMMING, "unrelated vectors at distance {d}");
            total += d;
        }
        let mean = total as f64 / 200.0;
        assert!((60.0..68.0).contains(&mean), "mean distance {mean}");
    }

    #[test]
    fn shared_massive_dimensions_correlate_but_do_not_pass() {
        // Vectors that share ten massive dimensions are genuinely correlated
        // (mean distance below 64), yet every pair stays far above tolerance.
        let planes = SketchPlanes::new(&[5u8; 32], 896).unwrap();
        let mut total = 0;
        for seed in 0..200 {
            let a = planes.sketch(&vector(seed, 896)).unwrap();
            let b = planes.sketch(&vector(1000 + seed, 896)).unwrap();
            let d = a.hamming(&b);
            assert!(d > SKETCH_MAX_HAMMING, "distance {d}");
            total += d;
        }
        let mean = total as f64 / 200.0;
        assert!(mean < 60.0, "mean distance {mean}");
    }

    #[test]
    fn small_relative_noise_stays_within_tolerance() {
        let planes = SketchPlanes::new(&[6u8; 32], 896).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        for seed in 0..50 {
            let h = vector(seed, 896);
            // ~1% relative noise per component: far more than bf16 rounding
            let noisy: Vec<f32> = h
                .iter()
                .map(|x| {
                    let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                    x * (1.0 + 0.02 * u)
                })
                .collect();
            let d = planes
                .sketch(&h)
                .unwrap()
                .hamming(&planes.sketch(&noisy).unwrap());
            assert!(
                d <= SKETCH_MAX_HAMMING / 2,
                "honest drift gave distance {d}"
            );
        }
    }

    #[test]
    fn zero_and_constant_commitments_fail() {
        let planes = SketchPlanes::new(&[7u8; 32], 896).unwrap();
        for c in [Sketch([0; 16]), Sketch([0xff; 16])] {
            let mut passes = 0;
            for seed in 0..50 {
                let s = planes.sketch(&vector(seed, 896)).unwrap();
                passes += u32::from(check_sketch(&c, &s, SKETCH_MAX_HAMMING).is_ok());
            }
            assert_eq!(passes, 0);
        }
    }

    #[test]
    fn which_dimensions_matter_not_only_magnitudes() {
        // same multiset of values, permuted dimensions -> unrelated sketch
        let planes = SketchPlanes::new(&[8u8; 32], 896).unwrap();
        let h = vector(3, 896);
        let mut p = h.clone();
        p.rotate_left(1);
        let d = planes
            .sketch(&h)
            .unwrap()
            .hamming(&planes.sketch(&p).unwrap());
        assert!(d > SKETCH_MAX_HAMMING, "{d}");
        // flipping signs of the largest dims changes it too
        let flipped: Vec<f32> = h
            .iter()
            .map(|&x| if x.abs() > 10.0 { -x } else { x })
            .collect();
        let d = planes
            .sketch(&h)
            .unwrap()
            .hamming(&planes.sketch(&flipped).unwrap());
        assert!(d > 0);
    }
}
