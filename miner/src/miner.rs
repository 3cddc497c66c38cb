//! The mining loop: one window after another, each derived, generated,
//! committed, signed, and uploaded before its deadline (PROTOCOL.md §14).
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grail_challenges::{Difficulty, Kind, Problem};
use grail_core::generation::{window_object_key, GenerationParams};
use grail_core::hash::Digest;
use grail_core::keys::Keypair;
use grail_core::params::{MAX_ROLLOUTS_PER_FILE, ROLLOUTS_PER_PROBLEM, WINDOW_LENGTH};
use grail_core::sketch::SketchPlanes;
use grail_core::window::{generation_round, window_start};
use grail_core::wire::{RolloutRecord, WindowFile, WindowHeader};
use grail_engine::{EngineError, Tokenizer};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::Instrument;

use crate::backend::{Backend, GroupJob, JobOptions};
use crate::follow::{now_ms, Follower, Shutdown, WindowBlock};
use crate::plan::{attention_break_even, group_work, Planner};
use crate::rollout::{generate_records, prompt_tokens, Prepared, WindowSeeds};
use crate::store::WindowStore;

/// Most problems in one window file.
pub const MAX_PROBLEMS_PER_WINDOW: u32 = MAX_ROLLOUTS_PER_FILE / ROLLOUTS_PER_PROBLEM;

/// What the loop is told beyond the network's parameters.
#[derive(Debug, Clone)]
pub struct MinerOptions {
    /// Most problems per window (at most [`MAX_PROBLEMS_PER_WINDOW`]).
    pub max_problems: u32,
    /// Most groups generated in one batch.
    pub batch_groups: usize,
    /// Time kept free before the deadline beyond the upload reserve;
    /// `None`: one block time.
    pub margin: Option<Duration>,
    /// Stop after this many windows were handled (uploaded or skipped).
    pub windows: Option<u64>,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
}

impl Default for MinerOptions {
    fn default() -> Self {
        MinerOptions {
            max_problems: MAX_PROBLEMS_PER_WINDOW,
            batch_groups: 4,
            margin: None,
            windows: None,
            progress: true,
        }
    }
}

/// How one window ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowOutcome {
    Uploaded(WindowSummary),
    /// Nothing was uploaded, for the reason given.
    Skipped {
        window: u64,
        reason: String,
    },
    /// Shutdown was requested mid-window: nothing was uploaded.
    Abandoned {
        window: u64,
    },
}

/// The summary line of an uploaded window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSummary {
    pub window: u64,
    pub key: String,
    pub problems: u32,
    pub rollouts: usize,
    pub tokens: u64,
    pub generation_secs: f64,
    pub upload_secs: f64,
    pub bytes: usize,
}

impl WindowSummary {
    pub fn tokens_per_sec(&self) -> f64 {
        self.tokens as f64 / self.generation_secs.max(1e-9)
    }
}

/// The miner.
pub struct Miner {
    backend: Arc<dyn Backend>,
    tokenizer: Arc<Tokenizer>,
    keypair: Arc<Keypair>,
    fingerprint: [u8; 32],
    store: WindowStore,
    follower: Follower,
    options: MinerOptions,
    planner: Planner,
    break_even: f64,
}

/// Errors that stop the miner (everything transient is retried instead).
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    #[error("generation failed: {0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Other(String),
}

impl Miner {
    pub fn new(
        backend: Arc<dyn Backend>,
        tokenizer: Arc<Tokenizer>,
        keypair: Keypair,
        fingerprint: [u8; 32],
        store: WindowStore,
        follower: Follower,
        options: MinerOptions,
    ) -> Miner {
        let margin = options.margin.unwrap_or_else(|| {
            Duration::from_millis(
                follower
                    .block_ms
                    .unwrap_or(crate::follow::SUBTENSOR_BLOCK_MS),
            )
        });
        let planner = Planner::new(margin, options.batch_groups);
        let break_even = attention_break_even(backend.model_config());
        Miner {
            backend,
            tokenizer,
            keypair: Arc::new(keypair),
            fingerprint,
            store,
            follower,
            options,
            planner,
            break_even,
        }
    }

    fn generation(&self) -> GenerationParams {
        self.follower.generation
    }

    /// Planner work units of a group with a `prompt_len`-token prompt.
    fn work(&self, prompt_len: usize) -> f64 {
        group_work(
            prompt_len,
            self.generation().max_new_tokens as usize,
            self.break_even,
        )
    }

    /// Time one worst-case group (the longest prompt family at the top
    /// difficulty, no early stop) so the first window's plan rests on a
    /// measurement.
    pub async fn calibrate(&mut self, shutdown: &Shutdown) -> Result<Duration, MinerError> {
        let problem = Problem::generate(
            Kind::Sat,
            &[0u8; 32],
            Difficulty::new(10).expect("level 10 exists"),
        );
        let prompt = prompt_tokens(&self.tokenizer, &problem)
            .map_err(|e| MinerError::Other(format!("calibration prompt: {e}")))?;
        let seeds: Vec<Digest> = (0..ROLLOUTS_PER_PROBLEM)
            .map(|r| grail_core::hash::derive("grail/v1/miner-calibration", &[&r.to_le_bytes()]))
            .collect();
        let planes = Arc::new(
            SketchPlanes::new(&[7u8; 32], self.backend.hidden_size())
                .map_err(|e| MinerError::Other(format!("sketch planes: {e}")))?,
        );
        let prompt_len = prompt.len();
        let started = Instant::now();
        let jobs = [(prompt, seeds)];
        let generation = self.generation();
        let backend = Arc::clone(&self.backend);
        let cancel = shutdown.flag_arc();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<GroupJob<'_>> = jobs
                .iter()
                .map(|(p, s)| GroupJob {
                    prompt: p,
                    seeds: s,
                })
                .collect();
            backend.generate(
                &refs,
                &JobOptions {
                    temperature: f64::from(generation.temperature_milli) / 1000.0,
                    max_new_tokens: generation.max_new_tokens as usize,
                    stop_tokens: &[],
                    planes: &planes,
                    cancel: Some(&cancel),
                },
            )
        })
        .await
        .map_err(|e| MinerError::Other(format!("calibration task: {e}")))??;
        let elapsed = started.elapsed();
        self.planner.record_batch(self.work(prompt_len), elapsed);
        tracing::info!(
            prompt_tokens = prompt_len,
            max_new_tokens = generation.max_new_tokens,
            secs = elapsed.as_secs_f64(),
            "calibrated: one worst-case group of {ROLLOUTS_PER_PROBLEM} rollouts"
        );
        Ok(elapsed)
    }

    /// Calibrate, then mine until shutdown (or `options.windows` windows),
    /// starting with the first window whose first block is not finalized yet.
    pub async fn run(&mut self, shutdown: &Shutdown) -> Result<Vec<WindowOutcome>, MinerError> {
        let mut outcomes = Vec::new();
        if self.planner.seconds_per_unit().is_none() {
            self.calibrate(shutdown).await?;
        }
        let Some(finalized) = self.follower.finalized(shutdown).await else {
            return Ok(outcomes);
        };
        // The first window whose first block is not final yet. A finalized
        // head of 0 means nothing is final yet (a chain that has just
        // started), so window 0 is still ahead.
        let mut window = if finalized == 0 {
            0
        } else {
            window_start(finalized) + WINDOW_LENGTH
        };
        tracing::info!(finalized, first_window = window, "following the chain");
        while !shutdown.requested() {
            let outcome = self
                .mine_window(window, shutdown)
                .instrument(tracing::info_span!("window", window))
                .await?;
            match &outcome {
                WindowOutcome::Uploaded(s) => tracing::info!(
                    window = s.window,
                    problems = s.problems,
                    rollouts = s.rollouts,
                    tokens = s.tokens,
                    tokens_per_sec = format_args!("{:.1}", s.tokens_per_sec()),
                    generation_secs = format_args!("{:.2}", s.generation_secs),
                    upload_secs = format_args!("{:.2}", s.upload_secs),
                    bytes = s.bytes,
                    key = %s.key,
                    "window uploaded"
                ),
                WindowOutcome::Skipped { window, reason } => {
                    tracing::warn!(window, reason = %reason, "window skipped")
                }
                WindowOutcome::Abandoned { window } => {
                    tracing::warn!(window, "shutdown: window abandoned, nothing uploaded")
                }
            }
            let abandoned = matches!(outcome, WindowOutcome::Abandoned { .. });
            outcomes.push(outcome);
            if abandoned
                || self
                    .options
                    .windows
                    .is_some_and(|n| outcomes.len() as u64 >= n)
            {
                break;
            }
            window += WINDOW_LENGTH;
        }
        Ok(outcomes)
    }

    /// Mine one window.
    pub async fn mine_window(
        &mut self,
        window: u64,
        shutdown: &Shutdown,
    ) -> Result<WindowOutcome, MinerError> {
        let hotkey = self.keypair.hotkey();
        let key = window_object_key(&hotkey, window);
        let skip = |reason: String| Ok(WindowOutcome::Skipped { window, reason });
        let abandoned = Ok(WindowOutcome::Abandoned { window });

        let Some(block) = self.follower.window_block(window, shutdown).await else {
            return abandoned;
        };
        let deadline = local_deadline(&block);
        match self.store.exists(&key).await {
            Ok(true) => return skip(format!("{key} is already in the store")),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not check the store; mining anyway"),
        }
        let Some(round) = self.generation_round(&block) else {
            return skip("the drand chain has no round after the window block".into());
        };
        let Some(beacon) = self.follower.beacon(round, deadline, shutdown).await else {
            if shutdown.requested() {
                return abandoned;
            }
            return skip(format!(
                "no verified beacon for drand round {round} before the deadline"
            ));
        };
        let seeds = WindowSeeds::new(
            self.follower.netuid,
            window,
            *hotkey.as_bytes(),
            block.hash,
            beacon.randomness(),
        );
        tracing::info!(
            round,
            deadline_in_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            "window randomness ready"
        );
        let planes = Arc::new(
            SketchPlanes::new(&seeds.sketch_key(), self.backend.hidden_size())
                .map_err(|e| MinerError::Other(format!("sketch planes: {e}")))?,
        );
        let header = WindowHeader {
            netuid: self.follower.netuid,
            window,
            hotkey: *hotkey.as_bytes(),
            model_fingerprint: self.fingerprint,
        };

        let bar = self.progress_bar(window);
        let started = Instant::now();
        let mut records: Vec<RolloutRecord> = Vec::new();
        let mut tokens = 0u64;
        let mut next: u32 = 0;
        let max_problems = self.options.max_problems.min(MAX_PROBLEMS_PER_WINDOW);
        // problems derived ahead of generation, so the planner can price them
        let mut pending: VecDeque<Prepared> = VecDeque::new();
        loop {
            if shutdown.requested() {
                bar.abandon();
                return abandoned;
            }
            while pending.len() < self.options.batch_groups
                && next + (pending.len() as u32) < max_problems
            {
                let index = next + pending.len() as u32;
                pending.push_back(Prepared::new(&seeds, &self.tokenizer, index)?);
            }
            let works: Vec<f64> = pending.iter().map(|p| self.work(p.prompt.len())).collect();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let n = self.planner.groups_to_start(remaining, &works);
            if n == 0 {
                break;
            }
            bar.set_length(u64::from(next) + n as u64);
            let batch: Vec<Prepared> = pending.drain(..n).collect();
            let batch_started = Instant::now();
            let done = match self
                .generate_batch(&seeds, &header, batch, &planes, shutdown)
                .await
            {
                Ok(b) => b,
                Err(MinerError::Engine(EngineError::Cancelled)) => {
                    bar.abandon();
                    return abandoned;
                }
                Err(e) => return Err(e),
            };
            self.planner
                .record_batch(works[..n].iter().sum(), batch_started.elapsed());
            tokens += done.iter().map(|r| r.commitments.len() as u64).sum::<u64>();
            records.extend(done);
            next += n as u32;
            bar.set_position(u64::from(next));
            bar.set_message(format!(
                "{} rollouts, {:.0} tok/s",
                records.len(),
                tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        let generation_secs = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if records.is_empty() {
            return skip("no time for a single group before the deadline".into());
        }
        let file = WindowFile {
            header,
            rollouts: records,
        };
        let bytes = file
            .encode()
            .map_err(|e| MinerError::Other(format!("encoding window {window}: {e}")))?;
        let len = bytes.len();
        // An upload already started is finished even if shutdown is requested
        // meanwhile: it is atomic, and stopping it would waste the window.
        let upload_started = Instant::now();
        let never = Shutdown::default();
        let put = crate::follow::retry("upload", &never, Some(deadline), || {
            self.store.put(&key, bytes.clone())
        })
        .await;
        let Some(report) = put else {
            return skip(format!(
                "upload of {key} did not succeed before the deadline"
            ));
        };
        self.planner.record_upload(report.elapsed);
        Ok(WindowOutcome::Uploaded(WindowSummary {
            window,
            key,
            problems: next,
            rollouts: file.rollouts.len(),
            tokens,
            generation_secs,
            upload_secs: upload_started.elapsed().as_secs_f64(),
            bytes: len,
        }))
    }

    fn generation_round(&self, block: &WindowBlock) -> Option<u64> {
        let schedule = self.follower.drand.chain().schedule();
        let r = generation_round(&schedule, block.timestamp_ms);
        (r > 0).then_some(r)
    }

    fn progress_bar(&self, window: u64) -> ProgressBar {
        if !self.options.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "window {prefix} [{elapsed_precise}] {bar:30} {pos}/{len} problems {msg}",
            )
            .expect("static template"),
        );
        bar.set_prefix(window.to_string());
        bar
    }

    /// Generate, score and sign a batch of prepared problems.
    async fn generate_batch(
        &self,
        seeds: &WindowSeeds,
        header: &WindowHeader,
        batch: Vec<Prepared>,
        planes: &Arc<SketchPlanes>,
        shutdown: &Shutdown,
    ) -> Result<Vec<RolloutRecord>, MinerError> {
        let backend = Arc::clone(&self.backend);
        let tokenizer = Arc::clone(&self.tokenizer);
        let keypair = Arc::clone(&self.keypair);
        let planes = Arc::clone(planes);
        let cancel = shutdown.flag_arc();
        let seeds = *seeds;
        let header = *header;
        let generation = self.generation();
        tokio::task::spawn_blocking(move || -> Result<Vec<RolloutRecord>, MinerError> {
            generate_records(
                &*backend,
                &tokenizer,
                &keypair,
                &header,
                &seeds,
                &batch,
                &generation,
                &planes,
                Some(&cancel),
            )
        })
        .await
        .map_err(|e| MinerError::Other(format!("generation task: {e}")))?
    }
}

/// The deadline as a local instant: chain time and the local clock are both
/// Unix time (block timestamps are the author's clock).
fn local_deadline(block: &WindowBlock) -> Instant {
    let deadline_ms = block.deadline_ms();
    let now = now_ms();
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now))
}
