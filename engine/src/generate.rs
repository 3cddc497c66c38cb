//! Generating a group of rollouts from one prompt: prefill once, fork the KV
//! cache per rollout, decode all rollouts as one batch, sample each position
//! with the protocol's verifiable sampler (or greedily), and record per
//! completion position the token, its logprob and the final hidden state
//! that produced the logits it was drawn from (PROTOCOL.md §6.1).

use grail_core::hash::Digest;
use grail_core::sampling::{self, Uniforms};
use grail_core::sketch::{Sketch, SketchPlanes};

use crate::error::EngineError;
use crate::model::{LogitsFor, Model, Sequence};

/// How each completion token is chosen.
#[derive(Debug, Clone, Copy)]
pub enum Sampler<'a> {
    /// Argmax (the first maximal logit); logprobs are the plain
    /// log-softmax. Not a protocol sampling mode: for tests and the CLI.
    Greedy,
    /// The protocol sampler (PROTOCOL.md §5.2) at `temperature`, one
    /// rollout per seed, position `t` using `u_t` of that seed's stream;
    /// logprobs are of the temperature softmax (what a rollout commits).
    Verifiable {
        temperature: f64,
        seeds: &'a [Digest],
    },
}

/// Generation limits and what to keep of the hidden states.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions<'a> {
    /// Stop after this many completion tokens.
    pub max_new_tokens: usize,
    /// Stop after producing any of these (the token is kept).
    pub stop_tokens: &'a [u32],
    /// Keep every completion position's final hidden state
    /// (`n x hidden_size` floats per rollout).
    pub keep_hidden: bool,
    /// Sketch every completion position's hidden state with these planes
    /// as it is produced (16 bytes per position instead of the state).
    pub sketch: Option<&'a SketchPlanes>,
}

/// Why a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// It produced a stop token (the last token).
    Stop,
    /// It reached `max_new_tokens`.
    Length,
}

/// One rollout.
#[derive(Debug, Clone)]
pub struct Completion {
    pub tokens: Vec<u32>,
    /// Logprob of each token under the sampler's distribution.
    pub logprobs: Vec<f64>,
    /// Final hidden states, `tokens.len() x hidden_size`, if kept.
    pub hidden: Option<Vec<f32>>,
    /// Sketches of those states, if planes were given.
    pub sketches: Option<Vec<Sketch>>,
    pub finish: FinishReason,
}

struct Active {
    seq: Sequence,
    out: Completion,
    done: bool,
}

/// Generates `n` rollouts of `prompt` (`n` = number of seeds for
/// [`Sampler::Verifiable`]; `greedy_n` for [`Sampler::Greedy`]).
pub fn generate_group(
    model: &Model,
    prompt: &[u32],
    sampler: Sampler<'_>,
    greedy_n: usize,
    opts: &GenerateOptions<'_>,
) -> Result<Vec<Completion>, EngineError> {
    let n = match sampler {
        Sampler::Greedy => greedy_n,
        Sampler::Verifiable { temperature, seeds } => {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(EngineError::InvalidRequest(format!(
                    "temperature {temperature} must be positive"
                )));
            }
            seeds.len()
        }
    };
    if n == 0 || prompt.is_empty() || opts.max_new_tokens == 0 {
        return Err(EngineError::InvalidRequest(format!(
            "generate: {n} rollouts, {} prompt tokens, max_new_tokens {}: all must be positive",
            prompt.len(),
            opts.max_new_tokens
        )));
    }
    // The last completion token is never fed back, so the context needs
    // prompt + max_new_tokens - 1 positions.
    let need = prompt.len().saturating_add(opts.max_new_tokens - 1);
    let max = model.max_positions();
    if need > max {
        return Err(EngineError::ContextTooLong { len: need, max });
    }
    if let Some(p) = opts.sketch {
        if p.dim() != model.config().hidden_size {
            return Err(EngineError::InvalidRequest(format!(
                "sketch planes for dimension {} but the model's hidden size is {}",
                p.dim(),
                model.config().hidden_size
            )));
        }
    }
    let mut base = model.new_sequence();
    // `out` is the last forward pass; rollout i draws its next token from
    // logits row `row[i]` of it (and the hidden state that row came from).
    let mut out = model.forward(&mut [&mut base], &[prompt], LogitsFor::Last)?;
    let mut row = vec![0usize; n];
    let mut uniforms: Vec<Option<Uniforms>> = match sampler {
        Sampler::Verifiable { seeds, .. } => seeds.iter().map(|s| Some(Uniforms::new(s))).collect(),
        Sampler::Greedy => (0..n).map(|_| None).collect(),
    };
    let mut active: Vec<Active> = (0..n)
        .map(|_| Active {
            seq: base.clone(),
            out: Completion {
                tokens: Vec::new(),
                logprobs: Vec::new(),
                hidden: opts.keep_hidden.then(Vec::new),
                sketches: opts.sketch.map(|_| Vec::new()),
                finish: FinishReason::Length,
            },
            done: false,
        })
        .collect();

    for t in 0..opts.max_new_tokens {
        for (i, a) in active.iter_mut().enumerate() {
            if a.done {
                continue;
            }
            let logits = out.logits_row(row[i]);
            let hidden = out.hidden_row(out.logit_rows[row[i]]);
            let (token, logprob) = match (sampler, &mut uniforms[i]) {
                (Sampler::Verifiable { temperature, .. }, Some(u)) => {
                    sampling::sample_with_logprob(logits, temperature, u.at(t as u32))
                }
                _ => argmax(logits).and_then(|tok| Ok((tok, sampling::logprob(logits, 1.0, tok)?))),
            }
            .map_err(|source| EngineError::Sampling {
                position: t,
                source,
            })?;
            a.out.tokens.push(token);
            a.out.logprobs.push(logprob);
            if let Some(hs) = &mut a.out.hidden {
                hs.extend_from_slice(hidden);
            }
            if let (Some(sk), Some(planes)) = (&mut a.out.sketches, opts.sketch) {
                sk.push(planes.sketch(hidden).map_err(|e| {
                    EngineError::InvalidRequest(format!("sketch at position {t}: {e}"))
                })?);
            }
            if opts.stop_tokens.contains(&token) {
                a.out.finish = FinishReason::Stop;
                a.done = true;
            } else if t + 1 == opts.max_new_tokens {
                a.done = true;
            }
        }
        // feed every unfinished rollout its new token, as one batch
        let mut feed: Vec<(usize, &mut Active)> = active
            .iter_mut()
            .enumerate()
            .filter(|(_, a)| !a.done)
            .collect();
        if feed.is_empty() {
            break;
        }
        let toks: Vec<[u32; 1]> = feed
            .iter()
            .map(|(_, a)| [*a.out.tokens.last().expect("sampled above")])
            .collect();
        let tok_refs: Vec<&[u32]> = toks.iter().map(|t| &t[..]).collect();
        let mut seq_refs: Vec<&mut Sequence> = feed.iter_mut().map(|(_, a)| &mut a.seq).collect();
        out = model.forward(&mut seq_refs, &tok_refs, LogitsFor::Last)?;
        for (j, (i, _)) in feed.iter().enumerate() {
            row[*i] = j;
        }
    }
    Ok(active.into_iter().map(|a| a.out).collect())
}

/// Index of the first maximal logit (torch.argmax's tie rule); errors on a
/// non-finite logit.
pub fn argmax(logits: &[f32]) -> Result<u32, sampling::SamplingError> {
    let mut best = 0usize;
    for (i, &z) in logits.iter().enumerate() {
        if !z.is_finite() {
            return Err(sampling::SamplingError::NonFiniteLogit { index: i, value: z });
        }
        if z > logits[best] {
            best = i;
        }
    }
    if logits.is_empty() {
        return Err(sampling::SamplingError::EmptyLogits);
    }
    Ok(best as u32)
}
