//! Verifiable sampling (PROTOCOL.md §5).
//!
//! Position `t` of a rollout uses the uniform `u_t` in [0, 1) drawn from the
//! rollout seed; the token is the inverse-CDF pick over the temperature-scaled
//! softmax in token-id order. A verifier with slightly different logits
//! accepts the token when `u_t` falls in that token's CDF interval widened by
//! an epsilon, so "was this token sampled from the real model with the
//! protocol's randomness?" becomes a hard check.
#![forbid(unsafe_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::hash::Digest;
use crate::params::{MAX_COMPLETION_TOKENS, MAX_TEMPERATURE_MILLI};

/// Sampling parameters of a rollout; part of the signed commit binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SamplingParams {
    /// Softmax temperature in thousandths (1000 = 1.0); 1..=MAX_TEMPERATURE_MILLI.
    pub temperature_milli: u16,
    /// Generation stops after this many completion tokens if no EOS came first.
    pub max_new_tokens: u32,
}

impl SamplingParams {
    /// The temperature as a number: `temperature_milli / 1000`.
    pub fn temperature(&self) -> f64 {
        f64::from(self.temperature_milli) / 1000.0
    }

    /// Check the protocol bounds.
    pub fn validate(&self) -> Result<(), SamplingError> {
        if self.temperature_milli == 0 || self.temperature_milli > MAX_TEMPERATURE_MILLI {
            return Err(SamplingError::Temperature(self.temperature_milli));
        }
        if self.max_new_tokens == 0 || self.max_new_tokens > MAX_COMPLETION_TOKENS {
            return Err(SamplingError::MaxNewTokens(self.max_new_tokens));
        }
        Ok(())
    }

    /// Encoding inside the commit binding: `u16 LE temperature_milli || u32 LE max_new_tokens`.
    pub fn to_bytes(&self) -> [u8; 6] {
        let mut b = [0u8; 6];
        b[..2].copy_from_slice(&self.temperature_milli.to_le_bytes());
        b[2..].copy_from_slice(&self.max_new_tokens.to_le_bytes());
        b
    }
}

/// Errors of the sampler: inputs no honest model produces.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplingError {
    #[error("temperature {0}/1000 outside 1..={MAX_TEMPERATURE_MILLI}")]
    Temperature(u16),
    #[error("max_new_tokens {0} outside 1..={MAX_COMPLETION_TOKENS}")]
    MaxNewTokens(u32),
    #[error("empty logits")]
    EmptyLogits,
    #[error("logit {index} is not finite ({value})")]
    NonFiniteLogit { index: usize, value: f32 },
    #[error("token {token} out of range for a vocabulary of {vocab}")]
    TokenOutOfRange { token: u32, vocab: usize },
    #[error("uniform {0} outside [0, 1)")]
    Uniform(f64),
}

/// A token that a verifier's distribution says was not the sampler's pick.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("token {token}: u = {u} outside its CDF interval [{lo}, {hi}) widened by {epsilon}")]
pub struct SampleReject {
    pub token: u32,
    pub u: f64,
    pub lo: f64,
    pub hi: f64,
    pub epsilon: f64,
}

/// The per-position uniforms of one rollout: a ChaCha20 keystream keyed by the
/// rollout seed (nonce 0). `u_t` is the `t`-th little-endian u64 of the
/// keystream (bytes `8t..8t+8`), shifted right by 11 and scaled by 2^-53.
pub struct Uniforms {
    rng: ChaCha20Rng,
}

impl Uniforms {
    /// The stream of the rollout whose sampling seed is `rollout_seed`.
    pub fn new(rollout_seed: &Digest) -> Self {
        Uniforms {
            rng: ChaCha20Rng::from_seed(*rollout_seed),
        }
    }

    /// `u_t` for completion position `t` (random access).
    pub fn at(&mut self, position: u32) -> f64 {
        self.rng.set_word_pos(2 * u128::from(position));
        let x = self.rng.next_u64();
        (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Largest logit, after checking that all are finite.
fn checked_max(logits: &[f32]) -> Result<f64, SamplingError> {
    if logits.is_empty() {
        return Err(SamplingError::EmptyLogits);
    }
    let mut m = f32::NEG_INFINITY;
    for (index, &value) in logits.iter().enumerate() {
        if !value.is_finite() {
            return Err(SamplingError::NonFiniteLogit { index, value });
        }
        m = m.max(value);
    }
    Ok(f64::from(m))
}

/// Unnormalized weight `exp((z - max) / T)` of one logit, in f64.
#[inline]
fn weight(z: f32, max: f64, temperature: f64) -> f64 {
    ((f64::from(z) - max) / temperature).exp()
}

/// Left-to-right sum of weights starting from +0.0, in token-id order.
fn weight_sum(logits: &[f32], max: f64, temperature: f64) -> f64 {
    logits
        .iter()
        .fold(0.0, |acc, &z| acc + weight(z, max, temperature))
}

/// Normalizer `Z = sum_i exp((z_i - max) / T)`, summed in token-id order.
fn normalizer(logits: &[f32], max: f64, temperature: f64) -> f64 {
    weight_sum(logits, max, temperature)
}

/// ```
/// use grail_core::sampling::{check_sample, sample};
/// // probabilities 1/4, 1/2, 1/4 at temperature 1
/// let logits = [0.0f32, std::f32::consts::LN_2, 0.0];
/// assert_eq!(sample(&logits, 1.0, 0.10).unwrap(), 0);
/// assert_eq!(sample(&logits, 1.0, 0.60).unwrap(), 1);
/// assert_eq!(sample(&logits, 1.0, 0.90).unwrap(), 2);
/// // a verifier accepts token 1 at u = 0.60 and rejects token 2
/// assert!(check_sample(&logits, 1.0, 0.60, 1, 1e-3).unwrap().is_ok());
/// assert!(check_sample(&logits, 1.0, 0.60, 2, 1e-3).unwrap().is_err());
/// ```
///
/// The inverse-CDF pick: the first token `i` with `u * Z < C_i`, where `C_i`
/// is the running sum of weights in token-id order; if rounding leaves none
/// (u * Z >= Z), the last token with a non-zero weight.
pub fn sample(logits: &[f32], temperature: f64, u: f64) -> Result<u32, SamplingError> {
    sample_with_logprob(logits, temperature, u).map(|(token, _)| token)
}

/// Log-probability of `token` under the temperature-scaled softmax:
/// `(z_token - max) / T - ln Z`. This is the logprob a rollout commits.
pub fn logprob(logits: &[f32], temperature: f64, token: u32) -> Result<f64, SamplingError> {
    let max = checked_max(logits)?;
    let zt = *logits
        .get(token as usize)
        .ok_or(SamplingError::TokenOutOfRange {
            token,
            vocab: logits.len(),
        })?;
    let z = normalizer(logits, max, temperature);
    Ok((f64::from(zt) - max) / temperature - z.ln())
}

/// [`sample`] and the [`logprob`] of the picked token in one pass over the
/// logits (two `exp` passes instead of four); identical results to the two
/// calls. This is what a generator commits per position.
pub fn sample_with_logprob(
    logits: &[f32],
    temperature: f64,
    u: f64,
) -> Result<(u32, f64), SamplingError> {
    if !(0.0..1.0).contains(&u) {
        return Err(SamplingError::Uniform(u));
    }
    let max = checked_max(logits)?;
    let z = normalizer(logits, max, temperature);
    let target = u * z;
    let mut cum = 0.0f64;
    let mut last_nonzero = 0u32;
    let mut token = None;
    for (i, &l) in logits.iter().enumerate() {
        let w = weight(l, max, temperature);
        cum += w;
        if w > 0.0 {
            last_nonzero = i as u32;
        }
        if target < cum {
            token = Some(i as u32);
            break;
        }
    }
    let token = token.unwrap_or(last_nonzero);
    let zt = f64::from(logits[token as usize]);
    Ok((token, (zt - max) / temperature - z.ln()))
}

/// The CDF interval `[C_{x-1} / Z, C_x / Z)` of `token` under the verifier's
/// own logits.
pub fn cdf_interval(
    logits: &[f32],
    temperature: f64,
    token: u32,
) -> Result<(f64, f64), SamplingError> {
    let max = checked_max(logits)?;
    if token as usize >= logits.len() {
        return Err(SamplingError::TokenOutOfRange {
            token,
            vocab: logits.len(),
        });
    }
    let z = normalizer(logits, max, temperature);
    let below = weight_sum(&logits[..token as usize], max, temperature);
    let w = weight(logits[token as usize], max, temperature);
    Ok((below / z, (below + w) / z))
}

/// Outcome of an accepted sampling check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleCheck {
    pub lo: f64,
    pub hi: f64,
    /// True when `u` fell outside `[lo, hi)` and only the epsilon widening
    /// accepted it; validators count these to measure honest drift.
    pub widened: bool,
    /// How far `u` lies outside `[lo, hi)` (0 inside): `lo - u` below,
    /// `u - hi` at or above.
    pub outside: f64,
}

/// Accept `token` at uniform `u` if `lo - epsilon <= u < hi + epsilon` under
/// the verifier's logits (§5.3).
pub fn check_sample(
    logits: &[f32],
    temperature: f64,
    u: f64,
    token: u32,
    epsilon: f64,
) -> Result<Result<SampleCheck, SampleReject>, SamplingError> {
    if !(0.0..1.0).contains(&u) {
        return Err(SamplingError::Uniform(u));
    }
    let (lo, hi) = cdf_interval(logits, temperature, token)?;
    if u >= lo - epsilon && u < hi + epsilon {
        let outside = if u < lo {
            lo - u
        } else if u >= hi {
            u - hi
        } else {
            0.0
        };
        Ok(Ok(SampleCheck {
            lo,
            hi,
            widened: !(u >= lo && u < hi),
            outside,
        }))
    } else {
        Ok(Err(SampleReject {
            token,
            u,
            lo,
            hi,
            epsilon,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_are_random_access_and_in_range() {
        let seed = [3u8; 32];
        let mut a = Uniforms::new(&seed);
        let seq: Vec<f64> = (0..100).map(|t| a.at(t)).collect();
        let mut b = Uniforms::new(&seed);
        for t in (0..100).rev() {
            assert_eq!(b.at(t), seq[t as usize]);
        }
        assert!(seq.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = seq.iter().sum::<f64>() / 100.0;
        assert!((0.35..0.65).contains(&mean), "{mean}");
    }

    #[test]
    fn inverse_cdf_follows_token_order() {
        // probabilities 0.25, 0.5, 0.25 at T = 1
        let l = [0.0f32, std::f32::consts::LN_2, 0.0];
        assert_eq!(sample(&l, 1.0, 0.0).unwrap(), 0);
        assert_eq!(sample(&l, 1.0, 0.2499).unwrap(), 0);
        assert_eq!(sample(&l, 1.0, 0.2501).unwrap(), 1);
        assert_eq!(sample(&l, 1.0, 0.7499).unwrap(), 1);
        assert_eq!(sample(&l, 1.0, 0.7501).unwrap(), 2);
        assert_eq!(sample(&l, 1.0, 0.999_999).unwrap(), 2);
    }

    #[test]
    fn sample_with_logprob_equals_the_two_calls() {
        let logits: Vec<f32> = (0..777)
            .map(|i| ((i * 53 % 97) as f32) * 0.07 - 2.0)
            .collect();
        let mut u = Uniforms::new(&[5u8; 32]);
        for t in 0..300 {
            let x = u.at(t);
            for temp in [0.3, 1.0, 1.7] {
                let (tok, lp) = sample_with_logprob(&logits, temp, x).unwrap();
                assert_eq!(tok, sample(&logits, temp, x).unwrap());
                assert_eq!(lp.to_bits(), logprob(&logits, temp, tok).unwrap().to_bits());
            }
        }
        assert!(sample_with_logprob(&logits, 1.0, 1.0).is_err());
        assert!(sample_with_logprob(&[], 1.0, 0.5).is_err());
    }

    #[test]
    fn temperature_sharpens() {
        let l = [0.0f32, 1.0, 0.0];
        let (lo1, hi1) = cdf_interval(&l, 1.0, 1).unwrap();
        let (lo2, hi2) = cdf_interval(&l, 0.25, 1).unwrap();
        assert!(hi2 - lo2 > hi1 - lo1);
    }

    #[test]
    fn sampled_token_passes_its_own_check_and_neighbours_fail() {
        let logits: Vec<f32> = (0..500).map(|i| ((i * 37 % 101) as f32) * 0.05).collect();
        let mut u = Uniforms::new(&[9u8; 32]);
        for t in 0..200 {
            let ut = u.at(t);
            let tok = sample(&logits, 0.7, ut).unwrap();
            let c = check_sample(&logits, 0.7, ut, tok, 0.0).unwrap().unwrap();
            assert!(!c.widened);
            let other = (tok + 250) % 500;
            assert!(check_sample(&logits, 0.7, ut, other, 1e-3)
                .unwrap()
                .is_err());
        }
    }

    #[test]
    fn epsilon_widens_and_reports_it() {
        let l = [0.0f32, 0.0];
        // interval of token 1 is [0.5, 1)
        let c = check_sample(&l, 1.0, 0.499, 1, 0.002).unwrap().unwrap();
        assert!(c.widened);
        let r = check_sample(&l, 1.0, 0.499, 1, 0.0005)
            .unwrap()
            .unwrap_err();
        assert_eq!(r.token, 1);
    }

    #[test]
    fn logprob_matches_softmax() {
        let l = [1.0f32, 2.0, 3.0];
        let z: f64 = l.iter().map(|&x| f64::from(x).exp()).sum();
        let want = 2.0 - z.ln();
        assert!((logprob(&l, 1.0, 1).unwrap() - want).abs() < 1e-12);
        let t = 0.5;
        let zt: f64 = l.iter().map(|&x| (f64::from(x) / t).exp()).sum();
        assert!((logprob(&l, t, 2).unwrap() - (3.0 / t - zt.ln())).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert_eq!(sample(&[], 1.0, 0.5), Err(SamplingError::EmptyLogits));
        assert!(matches!(
            sample(&[0.0, f32::NAN], 1.0, 0.5),
            Err(SamplingError::NonFiniteLogit { index: 1, .. })
        ));
        assert_eq!(sample(&[0.0], 1.0, 1.0), Err(SamplingError::Uniform(1.0)));
        assert!(matches!(
            logprob(&[0.0], 1.0, 5),
            Err(SamplingError::TokenOutOfRange { token: 5, vocab: 1 })
        ));
        let p = SamplingParams {
            temperature_milli: 0,
            max_new_tokens: 10,
        };
        assert_eq!(p.validate(), Err(SamplingError::Temperature(0)));
        let p = SamplingParams {
            temperature_milli: 1000,
            max_new_tokens: MAX_COMPLETION_TOKENS + 1,
        };
        assert!(matches!(p.validate(), Err(SamplingError::MaxNewTokens(_))));
    }
}
