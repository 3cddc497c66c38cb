//! Rollout generation on the GPU: the CUDA counterpart of
//! `grail_engine::generate_groups`, with the same request checks, the same
//! per-position uniforms, stop rules and outputs. Prompts are prefilled
//! (several per forward pass), each prompt's cache is forked into its
//! rollouts' slots, and every decode step runs all unfinished rollouts as
//! one batch; sampling and sketching run on the device and only tokens,
//! logprobs and sketches come back. Groups are taken in batches whose KV
//! caches fit in free device memory.
use std::collections::hash_map::{Entry, HashMap};

use cudarc::driver::{CudaGraph, CudaSlice};
use grail_core::sampling::{self, SamplingError, Uniforms};
use grail_core::sketch::{Sketch, SketchError, SketchPlanes};
use grail_engine::generate::{argmax, by_group, check_cancel};
use grail_engine::{
    validate_groups, Completion, EngineError, GenerateOptions, GroupRequest, Sampler,
};

use super::device::Gpu;
use super::model::{CudaModel, Workspace};
use super::CudaError;
use crate::twins::{plane_words, RowStatus};

/// Most rows per prefill forward pass.
const PREFILL_ROWS: usize = 4096;
/// Most device memory one prefill pass's workspace may take (long contexts
/// get fewer rows per pass: the attention partials grow with the context).
const PREFILL_WORKSPACE_BYTES: usize = 1 << 30;
/// Share of free device memory one batch's KV caches may take.
const KV_MEMORY_SHARE: f64 = 0.6;

/// Rows a decode graph is recorded for when `n` of a batch's `slots`
/// rollouts are live: `n` rounded up to a multiple of an eighth of the next
/// power of two (exact up to 8), at most `slots`. As rollouts end one by
/// one the batch records at most 8 + 4 per doubling of `slots` graphs
/// (32 for 512 slots) instead of one per live count, and pads fewer than a
/// quarter of its rows.
pub fn decode_graph_rows(n: usize, slots: usize) -> usize {
    assert!(n >= 1 && n <= slots, "{n} live rollouts of {slots}");
    let step = (n.next_power_of_two() / 8).max(1);
    n.next_multiple_of(step).min(slots)
}

/// A sampled token and its logprob, or why sampling failed.
type Pick = Result<(u32, f64), SamplingError>;
/// A position's sketch, or why the protocol core refuses its state.
type SketchPick = Result<Sketch, SketchError>;

/// One rollout in flight; its cache slot is its index in the batch.
struct Active {
    group: usize,
    uniforms: Option<Uniforms>,
    out: Completion,
    done: bool,
}

impl CudaModel {
    /// Generates every group's rollouts (`out[g][r]`), checked as
    /// `grail_engine::generate_groups` checks them; see the module docs.
    pub fn generate_groups(
        &self,
        groups: &[GroupRequest<'_>],
        opts: &GenerateOptions<'_>,
    ) -> Result<Vec<Vec<Completion>>, EngineError> {
        validate_groups(self.cpu(), groups, opts)?;
        check_cancel(opts)?;
        // a poisoned lock only means another call panicked; the device
        // state it left is per call (workspaces, caches), nothing shared
        let _one_at_a_time = self
            .generating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (free, _) = self.gpu().memory()?;
        let budget = (free as f64 * KV_MEMORY_SHARE) as usize;
        let per_position = self.kv_bytes_per_position();
        let mut out = Vec::with_capacity(groups.len());
        let mut start = 0;
        while start < groups.len() {
            // the longest run of the remaining groups whose caches fit
            let (mut end, mut slots, mut cap) = (start, 0usize, 1usize);
            while end < groups.len() {
                let g = &groups[end];
                let s = slots + g.sampler.rollouts();
                let c = cap.max(g.prompt.len() + opts.max_new_tokens - 1);
                if end > start && s * c * per_position > budget {
                    break;
                }
                (slots, cap) = (s, c);
                end += 1;
            }
            if slots * cap * per_position > budget {
                return Err(EngineError::from(CudaError::Unsupported(format!(
                    "{slots} rollouts of {cap} positions need {} MiB of KV cache; {} MiB is available",
                    (slots * cap * per_position) >> 20,
                    budget >> 20
                )))
                .in_group(start));
            }
            let batch = self
                .generate_batch(&groups[start..end], opts, slots, cap)
                .map_err(|e| match e {
                    EngineError::Group { group, source } => EngineError::Group {
                        group: group + start,
                        source,
                    },
                    e => e,
                })?;
            out.extend(batch);
            start = end;
        }
        Ok(out)
    }

    fn generate_batch(
        &self,
        groups: &[GroupRequest<'_>],
        opts: &GenerateOptions<'_>,
        slots: usize,
        cap: usize,
    ) -> Result<Vec<Vec<Completion>>, EngineError> {
        let gpu = self.gpu().clone();
        let (h, vocab) = (self.config().hidden_size, self.config().vocab_size);
        let mut kv = self.new_cache(slots, cap)?;
        let planes = match opts.sketch {
            Some(p) => Some((p, gpu.upload(&plane_words(p), "sketch planes")?)),
            None => None,
        };
        let mut active: Vec<Active> = Vec::with_capacity(slots);
        let mut first = Vec::with_capacity(groups.len());
        for (gi, g) in groups.iter().enumerate() {
            first.push(active.len());
            for uniforms in g.sampler.streams() {
                active.push(Active {
                    group: gi,
                    uniforms,
                    out: Completion::empty(opts),
                    done: false,
                });
            }
        }
        // the decode workspace (row j = the j-th unfinished rollout) and the
        // sampler's and sketcher's inputs and outputs, reused every step
        let mut ws = self.workspace(slots, slots, cap)?;
        let mut io = StepIo::new(&gpu, slots)?;

        // Prefill every prompt into its first rollout's slot, in passes of
        // at most PREFILL_ROWS rows (fewer where the workspace would outgrow
        // PREFILL_WORKSPACE_BYTES), and copy each prompt's last hidden state
        // and logits to the rows of all its rollouts (row = rollout index:
        // at the first step every rollout is live).
        let mut rows: Vec<(u32, u32, u32, usize)> = Vec::new(); // (token, slot, position, group)
        for (gi, g) in groups.iter().enumerate() {
            for (p, &t) in g.prompt.iter().enumerate() {
                rows.push((t, first[gi] as u32, p as u32, gi));
            }
        }
        let per_pass = (PREFILL_WORKSPACE_BYTES / self.workspace_bytes_per_row(cap))
            .clamp(1, PREFILL_ROWS)
            .min(rows.len());
        {
            let mut pre = self.workspace(per_pass, groups.len().min(per_pass), cap)?;
            for chunk in rows.chunks(per_pass) {
                check_cancel(opts)?;
                let tokens: Vec<u32> = chunk.iter().map(|r| r.0).collect();
                let sl: Vec<u32> = chunk.iter().map(|r| r.1).collect();
                let pos: Vec<u32> = chunk.iter().map(|r| r.2).collect();
                // rows that end a prompt
                let ends: Vec<u32> = (0..chunk.len())
                    .filter(|&j| {
                        let (_, _, p, gi) = chunk[j];
                        p as usize + 1 == groups[gi].prompt.len()
                    })
                    .map(|j| j as u32)
                    .collect();
                self.forward_in(&mut pre, &mut kv, &tokens, &sl, &pos, &ends, true)?;
                for (o, &j) in ends.iter().enumerate() {
                    let gi = chunk[j as usize].3;
                    for r in first[gi]..first[gi] + groups[gi].sampler.rollouts() {
                        gpu.copy_f32(&pre.hidden, o * h, &mut ws.hidden, r * h, h)?;
                        gpu.copy_f32(&pre.logits, o * vocab, &mut ws.logits, r * vocab, vocab)?;
                    }
                }
            }
        }
        let forks: Vec<(u32, u32, u32)> = groups
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| {
                let (f, len) = (first[gi] as u32, g.prompt.len() as u32);
                (1..g.sampler.rollouts() as u32).map(move |r| (f, f + r, len))
            })
            .collect();
        kv.fork(&gpu, &forks)?;

        // Decode. Row j of `ws.hidden` / `ws.logits` is the j-th unfinished
        // rollout (in rollout order) at every step. Declared after the
        // buffers they read, the graphs are dropped before them.
        let mut graphs: HashMap<usize, CudaGraph> = HashMap::new();
        for t in 0..opts.max_new_tokens {
            let live: Vec<usize> = (0..active.len()).filter(|&i| !active[i].done).collect();
            let (picks, sketches) = self.sample_and_sketch(
                groups,
                &mut active,
                &live,
                &ws,
                t,
                planes.as_ref(),
                &mut io,
            )?;
            let host_hidden = if opts.keep_hidden {
                Some(gpu.download_range(&ws.hidden, 0..live.len() * h, "hidden states")?)
            } else {
                None
            };
            for (j, &i) in live.iter().enumerate() {
                let a = &mut active[i];
                let (token, logprob) = picks[j].clone().map_err(|source| {
                    EngineError::Sampling {
                        position: t,
                        source,
                    }
                    .in_group(a.group)
                })?;
                let sketch = sketches
                    .as_ref()
                    .map(|all| all[j].clone())
                    .transpose()
                    .map_err(|e| {
                        EngineError::InvalidRequest(format!("sketch at position {t}: {e}"))
                            .in_group(a.group)
                    })?;
                let hidden_row = host_hidden.as_ref().map(|host| &host[j * h..(j + 1) * h]);
                a.done = a.out.record(t, token, logprob, hidden_row, sketch, opts);
            }
            let feed: Vec<usize> = live.into_iter().filter(|&i| !active[i].done).collect();
            if feed.is_empty() {
                break;
            }
            check_cancel(opts)?;
            let mut tokens: Vec<u32> = feed
                .iter()
                .map(|&i| *active[i].out.tokens.last().expect("sampled above"))
                .collect();
            let mut sl: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
            let mut pos: Vec<u32> = feed
                .iter()
                .map(|&i| (groups[active[i].group].prompt.len() + t) as u32)
                .collect();
            if self.decode_graphs() {
                // one recording per row count, attention over the whole
                // cache (blocks past a row's length return at once); the
                // live rows are padded up to `decode_graph_rows`, so that
                // rollouts ending one by one do not each cost a recording
                let rows = decode_graph_rows(feed.len(), active.len());
                // a padding row writes position 0 of a finished rollout's
                // slot, whose cache nothing reads again, and attends to it
                // alone; there are enough: rows <= slots = live + finished
                for i in (0..active.len())
                    .filter(|&i| active[i].done)
                    .take(rows - feed.len())
                {
                    tokens.push(0);
                    sl.push(i as u32);
                    pos.push(0);
                }
                assert_eq!(tokens.len(), rows, "padding rows from finished slots");
                let outs: Vec<u32> = (0..rows as u32).collect();
                self.forward_inputs(&mut ws, &kv, &tokens, &sl, &pos, &outs)?;
                let graph = match graphs.entry(rows) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let g = gpu.capture(|| {
                            self.forward_layers(&mut ws, &mut kv, rows, rows, cap, true)
                        })?;
                        self.graph_captures
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        e.insert(g)
                    }
                };
                graph.launch().map_err(|source| CudaError::Driver {
                    op: format!("launching the decode graph of {rows} rows"),
                    source,
                })?;
            } else {
                let outs: Vec<u32> = (0..feed.len() as u32).collect();
                self.forward_in(&mut ws, &mut kv, &tokens, &sl, &pos, &outs, true)?;
            }
        }

        Ok(by_group(
            groups,
            active.into_iter().map(|a| (a.group, a.out)),
        ))
    }

    /// The token and logprob of each live rollout at position `t` from row
    /// `j` of `ws.logits` (the sampler kernel for verifiable groups; argmax
    /// on the host for greedy ones, tests and tools only), and the sketch of
    /// row `j` of `ws.hidden` if `planes`; a row the sketch kernel rejects
    /// gets the protocol core's own error for it. Both kernels are launched
    /// before anything is read back, so the host waits once.
    #[allow(clippy::too_many_arguments)]
    fn sample_and_sketch(
        &self,
        groups: &[GroupRequest<'_>],
        active: &mut [Active],
        live: &[usize],
        ws: &Workspace,
        t: usize,
        planes: Option<&(&SketchPlanes, CudaSlice<u32>)>,
        io: &mut StepIo,
    ) -> Result<(Vec<Pick>, Option<Vec<SketchPick>>), CudaError> {
        let gpu = self.gpu();
        let (h, vocab) = (self.config().hidden_size, self.config().vocab_size);
        let n = live.len();
        let mut u = Vec::with_capacity(n);
        let mut temps = Vec::with_capacity(n);
        for &i in live {
            let a = &mut active[i];
            match (groups[a.group].sampler, &mut a.uniforms) {
                (Sampler::Verifiable { temperature, .. }, Some(s)) => {
                    u.push(s.at(t as u32));
                    temps.push(temperature as f32);
                }
                _ => {
                    u.push(0.0);
                    temps.push(1.0);
                }
            }
        }
        gpu.upload_into(&u, &mut io.uniforms, "uniforms")?;
        gpu.upload_into(&temps, &mut io.temperatures, "temperatures")?;
        {
            // the kernels' u32 outputs side by side (see Out), for one
            // download
            let mut block = io.out.slice_mut(0..Out::words(n));
            let (mut token, mut rest) = block.split_at_mut(Out::Tokens.range(n).len());
            let (mut status, mut rest) = rest.split_at_mut(Out::Status.range(n).len());
            let (mut sketch, mut sketch_status) = rest.split_at_mut(Out::Sketches.range(n).len());
            gpu.sample(
                &ws.logits,
                &io.uniforms,
                n,
                vocab,
                &io.temperatures,
                &mut token,
                &mut io.logprob,
                &mut status,
            )?;
            if let Some((_, words)) = planes {
                gpu.sketch(&ws.hidden, n, words, &mut sketch, &mut sketch_status)?;
            }
        }
        let block = gpu.download_range(&io.out, 0..Out::words(n), "sampled tokens and sketches")?;
        let lp = gpu.download_range(&io.logprob, 0..n, "logprobs")?;
        let (tok, st) = (&block[Out::Tokens.range(n)], &block[Out::Status.range(n)]);
        let mut picks = Vec::with_capacity(n);
        for (j, &i) in live.iter().enumerate() {
            let greedy = matches!(groups[active[i].group].sampler, Sampler::Greedy { .. });
            let row = || gpu.download_range(&ws.logits, j * vocab..(j + 1) * vocab, "logits row");
            picks.push(if greedy {
                let z = row()?;
                argmax(&z).and_then(|tok| Ok((tok, sampling::logprob(&z, 1.0, tok)?)))
            } else {
                match RowStatus::from_word(st[j]) {
                    None => Ok((tok[j], lp[j])),
                    Some(RowStatus::NonFinite(index)) => Err(SamplingError::NonFiniteLogit {
                        index,
                        value: row()?[index],
                    }),
                    Some(RowStatus::Invalid) => unreachable!("the sampler has no invalid status"),
                }
            });
        }
        let Some((planes, _)) = planes else {
            return Ok((picks, None));
        };
        let (words, st) = (
            &block[Out::Sketches.range(n)],
            &block[Out::SketchStatus.range(n)],
        );
        let mut sketches = Vec::with_capacity(n);
        for j in 0..n {
            sketches.push(if st[j] == 0 {
                let mut b = [0u8; 16];
                for (k, w) in words[4 * j..4 * j + 4].iter().enumerate() {
                    b[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
                }
                Ok(Sketch(b))
            } else {
                // the protocol core names the problem (non-finite, degenerate)
                let row = gpu.download_range(&ws.hidden, j * h..(j + 1) * h, "hidden row")?;
                match planes.sketch(&row) {
                    Err(e) => Err(e),
                    Ok(_) => {
                        return Err(CudaError::Unsupported(format!(
                            "sketch kernel rejected row {j} (status {:#x}) that the CPU sketches",
                            st[j]
                        )))
                    }
                }
            });
        }
        Ok((picks, Some(sketches)))
    }
}

/// The sampler's and the sketch kernel's per-step inputs and outputs, for
/// up to `slots` rows.
struct StepIo {
    uniforms: CudaSlice<f64>,
    temperatures: CudaSlice<f32>,
    /// Their u32 outputs, side by side (see [`Out`]).
    out: CudaSlice<u32>,
    logprob: CudaSlice<f64>,
}

impl StepIo {
    fn new(gpu: &Gpu, slots: usize) -> Result<StepIo, CudaError> {
        Ok(StepIo {
            uniforms: gpu.uninit(slots, "uniforms")?,
            temperatures: gpu.uninit(slots, "temperatures")?,
            out: gpu.uninit(Out::words(slots), "sampled tokens and sketches")?,
            logprob: gpu.uninit(slots, "logprobs")?,
        })
    }
}

/// The sampler's and the sketch kernel's u32 outputs for `n` rows, at their
/// places in [`StepIo`]'s output block: tokens, sampler status (`n` each),
/// sketches (4 words each), sketch status (`n`).
#[derive(Debug, Clone, Copy)]
enum Out {
    Tokens,
    Status,
    Sketches,
    SketchStatus,
}

impl Out {
    /// Its place in the output block of `n` rows.
    fn range(self, n: usize) -> std::ops::Range<usize> {
        let (start, len) = match self {
            Out::Tokens => (0, n),
            Out::Status => (n, n),
            Out::Sketches => (2 * n, 4 * n),
            Out::SketchStatus => (6 * n, n),
        };
        start..start + len
    }

    /// Words of the whole block for `n` rows.
    fn words(n: usize) -> usize {
        Out::SketchStatus.range(n).end
    }
}
