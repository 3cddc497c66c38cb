//! Following the chain and the beacon: finalized window blocks, their
//! timestamps, and verified drand beacons, waiting and retrying with backoff
//! (and saying so) while a node or relay is unreachable. Nothing here ever
//! substitutes another source of randomness for a beacon that could not be
//! verified.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use grail_chain::drand::{ClientConfig, DrandClient, DEFAULT_RELAYS};
use grail_chain::subtensor::SubtensorClient;
use grail_core::beacon::{DrandChain, VerifiedBeacon};
use grail_core::generation::GenerationParams;
use grail_core::hash::Digest;
use grail_core::params::WINDOW_LENGTH;
use tokio::sync::watch;

/// Nominal subtensor block time.
pub const SUBTENSOR_BLOCK_MS: u64 = 12_000;
/// Longest wait between retries of an unreachable service.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// First wait after a failure.
pub const FIRST_RETRY_WAIT: Duration = Duration::from_millis(250);

/// A shutdown request shared by the signal handler and the work.
#[derive(Debug, Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            flag: Arc::new(AtomicBool::new(false)),
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl Shutdown {
    /// Ask everything to stop.
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.tx.send(true);
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The flag the engine polls between decode steps.
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// A clone of the flag for work on another thread.
    pub fn flag_arc(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    /// Sleep for `d`; `false` if shutdown was requested first.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut rx = self.rx.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => !self.requested(),
            _ = rx.wait_for(|s| *s) => false,
        }
    }
}

/// Where the chain and the beacon are.
#[derive(Debug, Clone)]
pub enum NetworkSource {
    /// A `grail devnet` chain URL: everything else comes from its `grail_devnetInfo`.
    Devnet { url: String },
    /// A subtensor node and drand quicknet relays.
    Subtensor {
        endpoint: String,
        relays: Vec<String>,
        netuid: u16,
        generation: GenerationParams,
    },
}

/// A window's first block, finalized.
#[derive(Debug, Clone, Copy)]
pub struct WindowBlock {
    pub window: u64,
    pub hash: Digest,
    /// Its `Timestamp.Now`, ms.
    pub timestamp_ms: u64,
    /// Estimated ms between blocks around it.
    pub block_ms: u64,
}

impl WindowBlock {
    /// The expected chain time of the deadline block (PROTOCOL.md §4).
    pub fn deadline_ms(&self) -> u64 {
        self.timestamp_ms + WINDOW_LENGTH * self.block_ms
    }
}

/// The connected chain and beacon.
#[derive(Debug)]
pub struct Follower {
    pub subtensor: SubtensorClient,
    pub drand: DrandClient,
    pub netuid: u16,
    pub generation: GenerationParams,
    /// Known block time (a devnet announces it).
    pub block_ms: Option<u64>,
}

/// Wall-clock ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Run `op` until it succeeds, waiting with exponential backoff between
/// failures and logging each; `None` when shutdown is requested or `give_up`
/// passes first.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    shutdown: &Shutdown,
    give_up: Option<Instant>,
    mut op: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut wait = FIRST_RETRY_WAIT;
    let mut failures = 0u32;
    loop {
        if shutdown.requested() {
            return None;
        }
        match op().await {
            Ok(v) => {
                if failures > 0 {
                    tracing::info!(failures, "{what}: reachable again");
                }
                return Some(v);
            }
            Err(e) => {
                failures += 1;
                if give_up.is_some_and(|g| Instant::now() + wait >= g) {
                    tracing::warn!(failures, error = %e, "{what}: giving up");
                    return None;
                }
                tracing::warn!(failures, retry_in_ms = wait.as_millis() as u64, error = %e, "{what}: failed, retrying");
                if !shutdown.sleep(wait).await {
                    return None;
                }
                wait = (wait * 2).min(MAX_RETRY_WAIT);
            }
        }
    }
}

impl Follower {
    /// Connect: for a devnet, ask it for its description (retrying until it answers).
    pub async fn connect(
        source: &NetworkSource,
        shutdown: &Shutdown,
    ) -> Result<Option<Follower>, anyhow::Error> {
        match source {
            NetworkSource::Devnet { url } => {
                let subtensor = SubtensorClient::new(url)?;
                let Some(info) =
                    retry("devnet info", shutdown, None, || subtensor.devnet_info()).await
                else {
                    return Ok(None);
                };
                info.generation.validate()?;
                let drand = DrandClient::new(
                    info.drand_chain()?,
                    vec![info.drand_url.clone()],
                    ClientConfig::default(),
                )?;
                Ok(Some(Follower {
                    subtensor,
                    drand,
                    netuid: info.netuid,
                    generation: info.generation,
                    block_ms: Some(info.block_ms),
                }))
            }
            NetworkSource::Subtensor {
                endpoint,
                relays,
                netuid,
                generation,
            } => {
                generation.validate()?;
                let relays = if relays.is_empty() {
                    DEFAULT_RELAYS.iter().map(|r| r.to_string()).collect()
                } else {
                    relays.clone()
                };
                Ok(Some(Follower {
                    subtensor: SubtensorClient::new(endpoint)?,
                    drand: DrandClient::new(
                        DrandChain::quicknet(),
                        relays,
                        ClientConfig::default(),
                    )?,
                    netuid: *netuid,
                    generation: *generation,
                    block_ms: None,
                }))
            }
        }
    }

    /// The finalized head's number.
    pub async fn finalized(&self, shutdown: &Shutdown) -> Option<u64> {
        retry("chain finalized head", shutdown, None, || {
            self.subtensor.finalized_number()
        })
        .await
    }

    /// Wait until block `window` is finalized, then read its hash and time.
    pub async fn window_block(&self, window: u64, shutdown: &Shutdown) -> Option<WindowBlock> {
        loop {
            let finalized = self.finalized(shutdown).await?;
            if finalized >= window {
                break;
            }
            let block_ms = self.block_ms.unwrap_or(SUBTENSOR_BLOCK_MS);
            let behind = window - finalized;
            let wait = Duration::from_millis((block_ms * behind).clamp(50, 4 * block_ms) / 2);
            if !shutdown.sleep(wait).await {
                return None;
            }
        }
        let hash = retry("window block hash", shutdown, None, || {
            self.subtensor.window_block_hash(window)
        })
        .await?;
        let timestamp_ms = retry("window block timestamp", shutdown, None, || {
            self.subtensor.block_timestamp_ms(&hash)
        })
        .await?;
        let block_ms = match self.block_ms {
            Some(ms) => ms,
            None if window >= WINDOW_LENGTH => {
                let earlier = window - WINDOW_LENGTH;
                let earlier_ts = async {
                    let h = self.subtensor.window_block_hash(earlier).await?;
                    self.subtensor.block_timestamp_ms(&h).await
                };
                match earlier_ts.await {
                    Ok(t) if t < timestamp_ms => (timestamp_ms - t) / WINDOW_LENGTH,
                    _ => SUBTENSOR_BLOCK_MS,
                }
            }
            None => SUBTENSOR_BLOCK_MS,
        };
        Some(WindowBlock {
            window,
            hash,
            timestamp_ms,
            block_ms: block_ms.max(1),
        })
    }

    /// The verified beacon of `round`: waits for its publication time, then
    /// fetches, retrying until `give_up`.
    pub async fn beacon(
        &self,
        round: u64,
        give_up: Instant,
        shutdown: &Shutdown,
    ) -> Option<VerifiedBeacon> {
        let publish_ms = self.drand.chain().schedule().time_of(round) * 1000;
        let now = now_ms();
        if publish_ms > now {
            let wait = Duration::from_millis(publish_ms - now);
            if Instant::now() + wait >= give_up {
                tracing::warn!(round, "drand round is published after the deadline");
                return None;
            }
            if !shutdown.sleep(wait).await {
                return None;
            }
        }
        retry(
            &format!("drand round {round}"),
            shutdown,
            Some(give_up),
            || self.drand.fetch(round),
        )
        .await
    }
}
