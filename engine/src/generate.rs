//! Generating groups of rollouts: prefill every group's prompt in one
//! forward pass, fork each prompt's KV cache once per rollout, decode every
//! unfinished rollout of every group as one batch per step, sample each
//! position with the protocol's verifiable sampler (or greedily), and record
//! per completion position the token, its logprob and the final hidden state
//! that produced the logits it was drawn from (PROTOCOL.md §6.1).
//!
//! The kernels compute every row of a batch the same way whatever else is in
//! the batch, so a rollout is bit for bit the same generated alone, with its
//! group, or beside other groups.

use std::sync::atomic::{AtomicBool, Ordering};

use grail_core::hash::Digest;
use grail_core::sampling::{self, Uniforms};
use grail_core::sketch::{Sketch, SketchPlanes};

use crate::error::EngineError;
use crate::model::{LogitsFor, Model, Sequence};

/// How each completion token is chosen.
#[derive(Debug, Clone, Copy)]
pub enum Sampler<'a> {
    /// `n` rollouts by argmax (the first maximal logit), all the same;
    /// logprobs are the plain log-softmax. Not a protocol sampling mode: for
    /// tests and the CLI.
    Greedy { n: usize },
    /// The protocol sampler (PROTOCOL.md §5.2) at `temperature`, one
    /// rollout per seed, position `t` using `u_t` of that seed's stream;
    /// logprobs are of the temperature softmax (what a rollout commits).
    Verifiable {
        temperature: f64,
        seeds: &'a [Digest],
    },
}

impl Sampler<'_> {
    /// How many rollouts this sampler makes.
    pub fn rollouts(&self) -> usize {
        match self {
            Sampler::Greedy { n } => *n,
            Sampler::Verifiable { seeds, .. } => seeds.len(),
        }
    }

    /// Each rollout's uniform stream, in rollout order (`None` for greedy
    /// rollouts).
    pub fn streams(&self) -> Vec<Option<Uniforms>> {
        match self {
            Sampler::Verifiable { seeds, .. } => {
                seeds.iter().map(|s| Some(Uniforms::new(s))).collect()
            }
            Sampler::Greedy { n } => (0..*n).map(|_| None).collect(),
        }
    }
}

/// One group of [`generate_groups`]: a prompt and how to sample its
/// rollouts.
#[derive(Debug, Clone, Copy)]
pub struct GroupRequest<'a> {
    pub prompt: &'a [u32],
    pub sampler: Sampler<'a>,
}

/// One group per `(prompt, seeds)`, each rollout sampled by the protocol
/// sampler at `temperature` from its seed: the requests of a miner's window
/// and of the benchmarks.
pub fn verifiable_groups<'a>(
    groups: impl IntoIterator<Item = (&'a [u32], &'a [Digest])>,
    temperature: f64,
) -> Vec<GroupRequest<'a>> {
    groups
        .into_iter()
        .map(|(prompt, seeds)| GroupRequest {
            prompt,
            sampler: Sampler::Verifiable { temperature, seeds },
        })
        .collect()
}

/// Generation limits, what to keep of the hidden states, and when to stop
/// early.
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
    /// Read before every forward pass (the prefill and each decode step):
    /// once it is true, generation stops and returns
    /// [`EngineError::Cancelled`] (a miner's graceful shutdown).
    pub cancel: Option<&'a AtomicBool>,
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

impl Completion {
    /// A completion with nothing generated yet, collecting the hidden states
    /// and sketches `opts` asks for.
    pub fn empty(opts: &GenerateOptions<'_>) -> Completion {
        Completion {
            tokens: Vec::new(),
            logprobs: Vec::new(),
            hidden: opts.keep_hidden.then(Vec::new),
            sketches: opts.sketch.map(|_| Vec::new()),
            finish: FinishReason::Length,
        }
    }

    /// Records the token chosen at completion position `t` with its
    /// logprob, its hidden state (kept if `opts` asks) and its sketch (kept
    /// if this completion collects sketches); returns true when the rollout
    /// is finished: a stop token (finish [`FinishReason::Stop`]) or
    /// `max_new_tokens` reached.
    pub fn record(
        &mut self,
        t: usize,
        token: u32,
        logprob: f64,
        hidden: Option<&[f32]>,
        sketch: Option<Sketch>,
        opts: &GenerateOptions<'_>,
    ) -> bool {
        self.tokens.push(token);
        self.logprobs.push(logprob);
        if let (Some(hs), Some(h)) = (&mut self.hidden, hidden) {
            hs.extend_from_slice(h);
        }
        if let (Some(sk), Some(s)) = (&mut self.sketches, sketch) {
            sk.push(s);
        }
        if opts.stop_tokens.contains(&token) {
            self.finish = FinishReason::Stop;
            true
        } else {
            t + 1 == opts.max_new_tokens
        }
    }
}

/// One rollout in flight.
struct Active {
    group: usize,
    /// The protocol sampler's stream; `None` for greedy.
    uniforms: Option<Uniforms>,
    seq: Sequence,
    /// Its row of logits in the last forward pass.
    row: usize,
    out: Completion,
    done: bool,
}

/// Generates the rollouts of one group (`sampler.rollouts()` of them):
/// [`generate_groups`] with one group, its errors not wrapped in
/// [`EngineError::Group`].
pub fn generate_group(
    model: &Model,
    prompt: &[u32],
    sampler: Sampler<'_>,
    opts: &GenerateOptions<'_>,
) -> Result<Vec<Completion>, EngineError> {
    match generate_groups(model, &[GroupRequest { prompt, sampler }], opts) {
        Ok(mut groups) => Ok(groups.pop().expect("one group in, one group out")),
        Err(EngineError::Group { source, .. }) => Err(*source),
        Err(e) => Err(e),
    }
}

/// Checks one group against the model and options; the error is not yet
/// wrapped with the group's index.
fn check_group(
    model: &Model,
    g: &GroupRequest<'_>,
    opts: &GenerateOptions<'_>,
) -> Result<(), EngineError> {
    if let Sampler::Verifiable { temperature, .. } = g.sampler {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(EngineError::InvalidRequest(format!(
                "temperature {temperature} must be positive"
            )));
        }
    }
    let n = g.sampler.rollouts();
    if n == 0 || g.prompt.is_empty() {
        return Err(EngineError::InvalidRequest(format!(
            "{n} rollouts of {} prompt tokens: both must be positive",
            g.prompt.len()
        )));
    }
    let vocab = model.config().vocab_size;
    if let Some((position, &token)) = g
        .prompt
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= vocab)
    {
        return Err(EngineError::TokenOutOfRange {
            token,
            position,
            vocab,
        });
    }
    // The last completion token is never fed back, so the context needs
    // prompt + max_new_tokens - 1 positions.
    let need = g.prompt.len().saturating_add(opts.max_new_tokens - 1);
    let max = model.max_positions();
    if need > max {
        return Err(EngineError::ContextTooLong { len: need, max });
    }
    Ok(())
}

/// [`EngineError::Cancelled`] once the options' cancel flag is set.
pub fn check_cancel(opts: &GenerateOptions<'_>) -> Result<(), EngineError> {
    match opts.cancel {
        Some(flag) if flag.load(Ordering::Relaxed) => Err(EngineError::Cancelled),
        _ => Ok(()),
    }
}

/// Every check [`generate_groups`] makes before any work (no groups, zero
/// `max_new_tokens`, sketch planes of the wrong dimension, and each group's
/// own checks, wrapped in [`EngineError::Group`]): accelerated backends run
/// the same checks so a request fails the same way on every backend.
pub fn validate_groups(
    model: &Model,
    groups: &[GroupRequest<'_>],
    opts: &GenerateOptions<'_>,
) -> Result<(), EngineError> {
    if groups.is_empty() {
        return Err(EngineError::InvalidRequest(
            "generate: no groups".to_string(),
        ));
    }
    if opts.max_new_tokens == 0 {
        return Err(EngineError::InvalidRequest(
            "generate: max_new_tokens must be positive".to_string(),
        ));
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
    for (group, g) in groups.iter().enumerate() {
        check_group(model, g, opts).map_err(|e| e.in_group(group))?;
    }
    Ok(())
}

/// Generates the rollouts of several groups at once, `groups[g].sampler`'s
/// count for group `g`, returned in request order: one forward pass
/// prefills every prompt (sequences of different lengths in one batch),
/// each prompt's cache is forked once per rollout, and each decode step
/// feeds every unfinished rollout of every group as one batch. The
/// rollouts are bit for bit those of [`generate_group`] on each group
/// alone.
///
/// Everything is checked before any work; an error that concerns one group
/// (no rollouts, empty prompt, bad temperature, a prompt token outside the
/// vocabulary, prompt + `max_new_tokens - 1` past
/// [`Model::max_positions`], sampling failure) is [`EngineError::Group`]
/// naming it.
pub fn generate_groups(
    model: &Model,
    groups: &[GroupRequest<'_>],
    opts: &GenerateOptions<'_>,
) -> Result<Vec<Vec<Completion>>, EngineError> {
    validate_groups(model, groups, opts)?;

    check_cancel(opts)?;
    let mut bases: Vec<Sequence> = groups.iter().map(|_| model.new_sequence()).collect();
    let prompts: Vec<&[u32]> = groups.iter().map(|g| g.prompt).collect();
    // `out` is the last forward pass; a rollout draws its next token from
    // logits row `row` of it (and the hidden state that row came from).
    // After the prefill, row `g` is group `g`'s last prompt token.
    let mut out = {
        let mut refs: Vec<&mut Sequence> = bases.iter_mut().collect();
        model.forward(&mut refs, &prompts, LogitsFor::Last)?
    };
    let mut active: Vec<Active> = Vec::new();
    for (group, (g, base)) in groups.iter().zip(bases).enumerate() {
        let n = g.sampler.rollouts();
        let uniforms = g.sampler.streams();
        // fork the prompt's cache: clones for all but the last rollout,
        // which takes the original
        let mut seqs: Vec<Sequence> = (1..n).map(|_| base.clone()).collect();
        seqs.push(base);
        for (uniforms, seq) in uniforms.into_iter().zip(seqs) {
            active.push(Active {
                group,
                uniforms,
                seq,
                row: group,
                out: Completion::empty(opts),
                done: false,
            });
        }
    }

    for t in 0..opts.max_new_tokens {
        for a in active.iter_mut().filter(|a| !a.done) {
            let logits = out.logits_row(a.row);
            let hidden = out.hidden_row(out.logit_rows[a.row]);
            let sampled = match (groups[a.group].sampler, &mut a.uniforms) {
                (Sampler::Verifiable { temperature, .. }, Some(u)) => {
                    sampling::sample_with_logprob(logits, temperature, u.at(t as u32))
                }
                _ => argmax(logits).and_then(|tok| Ok((tok, sampling::logprob(logits, 1.0, tok)?))),
            };
            let (token, logprob) = sampled.map_err(|source| {
                EngineError::Sampling {
                    position: t,
                    source,
                }
                .in_group(a.group)
            })?;
            // the planes' dimension was checked against the model's
            let sketch = opts
                .sketch
                .map(|planes| planes.sketch(hidden))
                .transpose()
                .map_err(|e| {
                    EngineError::InvalidRequest(format!("sketch at position {t}: {e}"))
                        .in_group(a.group)
                })?;
            a.done = a.out.record(t, token, logprob, Some(hidden), sketch, opts);
        }
        // feed every unfinished rollout of every group its new token, as
        // one batch
        let mut feed: Vec<&mut Active> = active.iter_mut().filter(|a| !a.done).collect();
        if feed.is_empty() {
            break;
        }
        check_cancel(opts)?;
        let toks: Vec<[u32; 1]> = feed
            .iter()
            .map(|a| [*a.out.tokens.last().expect("sampled above")])
            .collect();
        let tok_refs: Vec<&[u32]> = toks.iter().map(|t| &t[..]).collect();
        for (j, a) in feed.iter_mut().enumerate() {
            a.row = j;
        }
        let mut seq_refs: Vec<&mut Sequence> = feed.iter_mut().map(|a| &mut a.seq).collect();
        out = model.forward(&mut seq_refs, &tok_refs, LogitsFor::Last)?;
    }

    Ok(by_group(
        groups,
        active.into_iter().map(|a| (a.group, a.out)),
    ))
}

/// Completions sorted into their groups (`out[g]`, rollouts in the order
/// given): the result shape of [`generate_groups`] and its accelerated
/// twins.
pub fn by_group(
    groups: &[GroupRequest<'_>],
    done: impl IntoIterator<Item = (usize, Completion)>,
) -> Vec<Vec<Completion>> {
    let mut results: Vec<Vec<Completion>> = groups
        .iter()
        .map(|g| Vec::with_capacity(g.sampler.rollouts()))
        .collect();
    for (group, c) in done {
        results[group].push(c);
    }
    results
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
