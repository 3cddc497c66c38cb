//! The validator service: follows the chain; after each window's deadline
//! and challenge beacon it fetches every registered miner's window file,
//! runs the pipeline on the sampled miners, flags copycats, scores, writes
//! the window's weights (JSON) and records everything in its database in
//! one transaction, so a restart loses nothing and never scores a window
//! twice.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use grail_core::generation::window_object_key;
use grail_core::keys::Hotkey;
use grail_core::params::WINDOW_LENGTH;
use grail_core::window::window_start;
use grail_miner::{Follower, Shutdown, WindowStore};

use crate::context::{fetch_window, ContextCache};
use crate::score::{compute_weights, MinerWindowRecord, Outcome, ScoreParams, Weights};
use crate::state::ValidatorDb;
use crate::verify::copycat::copycats;
use crate::verify::{policy, FileReport, ProofSelection, Reject, Verifier, WindowContext};

/// Settings of a validator run.
#[derive(Debug, Clone)]
pub struct ValidatorOptions {
    /// Where `weights/window-{w}.json` go.
    pub out: PathBuf,
    /// Stop after scoring this many windows.
    pub windows: Option<u64>,
    /// Start with this window instead of the next unscored one.
    pub first_window: Option<u64>,
    pub score: ScoreParams,
}

/// One miner's line in a window's result.
#[derive(Debug, Clone)]
pub struct MinerLine {
    pub uid: u16,
    pub hotkey: [u8; 32],
    pub rollouts: u32,
    pub unique: u32,
    pub proof_checked: u32,
    pub outcome: Outcome,
    /// The first rejection, with its check's code.
    pub reject: Option<Reject>,
    pub weight: f64,
    pub weight_u16: u16,
}

/// What the validator did in one window.
#[derive(Debug, Clone)]
pub struct WindowResult {
    pub window: u64,
    pub lines: Vec<MinerLine>,
    pub weights: Weights,
    /// Seconds spent verifying (CPU-bound part).
    pub verify_seconds: f64,
}

/// The validator.
pub struct Validator {
    verifier: Arc<Verifier>,
    follower: Follower,
    store: WindowStore,
    db: ValidatorDb,
    cache: Option<ContextCache>,
    opts: ValidatorOptions,
}

impl Validator {
    pub fn new(
        verifier: Arc<Verifier>,
        mut follower: Follower,
        store: WindowStore,
        db: ValidatorDb,
        cache: Option<ContextCache>,
        opts: ValidatorOptions,
    ) -> anyhow::Result<Validator> {
        if let Some(c) = &cache {
            follower.drand.set_cache(c.beacons()?);
        }
        Ok(Validator {
            verifier,
            follower,
            store,
            db,
            cache,
            opts,
        })
    }

    /// The database (for reports).
    pub fn db(&self) -> &ValidatorDb {
        &self.db
    }

    /// The first window to score: after the last scored one, else the
    /// window in progress now.
    async fn first_window(&self, shutdown: &Shutdown) -> anyhow::Result<Option<u64>> {
        if let Some(w) = self.opts.first_window {
            return Ok(Some(w));
        }
        if let Some(last) = self.db.last_scored_window()? {
            return Ok(Some(last + WINDOW_LENGTH));
        }
        Ok(self.follower.finalized(shutdown).await.map(window_start))
    }

    /// Score windows until shut down or `opts.windows` are done; `on_window`
    /// sees each result.
    pub async fn run(
        &mut self,
        shutdown: &Shutdown,
        mut on_window: impl FnMut(&WindowResult),
    ) -> anyhow::Result<()> {
        let Some(mut window) = self.first_window(shutdown).await? else {
            return Ok(());
        };
        let mut done = 0u64;
        while self.opts.windows.is_none_or(|n| done < n) {
            if self.db.is_scored(window)? {
                tracing::info!(window, "already scored, skipped");
                window += WINDOW_LENGTH;
                continue;
            }
            let Some((rec, ctx)) = fetch_window(&self.follower, window, shutdown).await? else {
                return Ok(());
            };
            if let Some(c) = &self.cache {
                c.store(&rec)?;
            }
            let Some(result) = self.score_window(&ctx, shutdown).await? else {
                return Ok(());
            };
            on_window(&result);
            done += 1;
            window += WINDOW_LENGTH;
        }
        Ok(())
    }

    /// Verify, score and record one window. `None` when shut down midway
    /// (nothing recorded).
    pub async fn score_window(
        &mut self,
        ctx: &WindowContext,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Option<WindowResult>> {
        let window = ctx.window;
        let registered = self
            .follower
            .subtensor
            .hotkeys(ctx.netuid)
            .await
            .context("reading the subnet's registered hotkeys")?;
        // which registered miners uploaded (the files themselves are fetched
        // one at a time below, only for the sampled miners)
        let mut files: Vec<(u16, [u8; 32], bool)> = Vec::new();
        for &(uid, hotkey) in &registered {
            let key = window_object_key(&Hotkey::from_bytes(hotkey), window);
            // an unreadable store is the store's problem, not proof of cheating
            let present = self
                .store
                .exists(&key)
                .await
                .with_context(|| format!("looking up {key}"))?;
            files.push((uid, hotkey, present));
        }
        let with_files: Vec<[u8; 32]> = files.iter().filter(|f| f.2).map(|f| f.1).collect();
        let sampled = policy::sampled_miners(&ctx.challenge_randomness, &with_files);
        let started = std::time::Instant::now();
        let mut reports: HashMap<[u8; 32], FileReport> = HashMap::new();
        for (uid, hotkey, present) in &mut files {
            if !*present || !sampled.contains(hotkey) {
                continue;
            }
            if shutdown.requested() {
                return Ok(None);
            }
            let key = window_object_key(&Hotkey::from_bytes(*hotkey), window);
            let (bytes, modified_ms) = match self.store.get_timed(&key).await {
                Ok(x) => x,
                Err(e) if e.is_not_found() => {
                    *present = false;
                    continue;
                }
                Err(e) => return Err(anyhow!(e).context(format!("fetching {key}"))),
            };
            let (verifier, hotkey_v, ctx_v) = (Arc::clone(&self.verifier), *hotkey, *ctx);
            let report = tokio::task::spawn_blocking(move || {
                verifier.verify_file(
                    &bytes,
                    Some(&hotkey_v),
                    Some(modified_ms),
                    &ctx_v,
                    ProofSelection::Sampled,
                )
            })
            .await?;
            if let Some(r) = report.first_reject() {
                if r.is_validator_fault() {
                    return Err(anyhow!("validator failure verifying uid {uid}: {r}"));
                }
            }
            tracing::info!(
                window,
                uid,
                passed = report.passed(),
                rollouts = report.rollout_count(),
                proof_checked = report.proof_checked(),
                reason = report.first_reject().map(|r| r.code()).unwrap_or(""),
                "miner verified"
            );
            reports.insert(*hotkey, report);
        }
        let verify_seconds = started.elapsed().as_secs_f64();
        // 9: completions shared across miners (over files that decoded)
        let digests: Vec<([u8; 32], &[grail_core::hash::Digest])> = reports
            .iter()
            .filter(|(_, r)| r.file_reject.is_none())
            .map(|(h, r)| (*h, r.completion_digests.as_slice()))
            .collect();
        let flagged = copycats(&digests);
        let mut records = Vec::new();
        let mut lines = Vec::new();
        for &(uid, hotkey, present) in &files {
            let report = reports.get(&hotkey);
            let reject = flagged
                .get(&hotkey)
                .cloned()
                .or_else(|| report.and_then(|r| r.first_reject().cloned()));
            let outcome = match (present, report, &reject) {
                (false, _, _) => Outcome::Missing,
                (true, None, _) => Outcome::NotSampled,
                (true, Some(_), Some(r)) => Outcome::Failed {
                    reason: r.code().to_owned(),
                    detail: r.to_string(),
                },
                (true, Some(rep), None) => Outcome::Passed {
                    rollouts: rep.rollout_count(),
                    unique: rep.unique(),
                    checked: rep.proof_checked(),
                },
            };
            records.push(MinerWindowRecord {
                window,
                uid,
                hotkey,
                outcome: outcome.clone(),
            });
            lines.push(MinerLine {
                uid,
                hotkey,
                rollouts: report.map_or(0, FileReport::rollout_count),
                unique: report.map_or(0, FileReport::unique),
                proof_checked: report.map_or(0, FileReport::proof_checked),
                outcome,
                reject,
                weight: 0.0,
                weight_u16: 0,
            });
        }
        let score = &self.opts.score;
        let lookback = score.scoring_windows.max(score.failure_lookback_windows) * WINDOW_LENGTH;
        let mut history = self.db.history(window.saturating_sub(lookback))?;
        history.extend(records.iter().cloned());
        let weights = compute_weights(&registered, &history, window, &self.opts.score)?;
        for line in &mut lines {
            if let Some(e) = weights.entries.iter().find(|e| e.uid == line.uid) {
                line.weight = e.weight;
                line.weight_u16 = e.weight_u16;
            }
        }
        // the weights file first (rewritten identically if we crash before
        // the commit), then results and weights in one transaction
        let dir = self.opts.out.join("weights");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("window-{window}.json"));
        let tmp = dir.join(format!(".window-{window}.json.tmp"));
        std::fs::write(&tmp, weights.to_json_pretty()?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        self.db
            .record_window(window, &records, &weights, grail_miner::follow::now_ms())?;
        tracing::info!(
            window,
            miners = lines.len(),
            verify_s = verify_seconds,
            "window scored"
        );
        Ok(Some(WindowResult {
            window,
            lines,
            weights,
            verify_seconds,
        }))
    }
}
