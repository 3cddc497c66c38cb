//! drand HTTP client: verified beacons from a list of relays, with per-request
//! timeouts, bounded retries, failover and a persistent cache.
//!
//! Relays are untrusted. Every beacon a relay serves goes through
//! [`grail_core::beacon::verify`] against the pinned chain before it is
//! returned or cached; a relay that errors, times out, serves malformed JSON,
//! an unverifiable beacon or another round than requested is skipped (logged
//! with `tracing::warn!` and collected), and the next relay is asked. When no
//! relay serves a valid beacon, [`DrandError::AllRelaysFailed`] lists every
//! relay's failure. Nothing here substitutes local randomness.
//!
//! HTTP API (drand v2 relays): `GET {relay}/{chain_hash}/info`,
//! `GET {relay}/{chain_hash}/public/{round}` and `.../public/latest`, each
//! beacon as `{round, randomness, signature[, previous_signature]}` in hex.
//!
//! The cache is a directory with one JSON file per (chain hash, round),
//! `{chain_hash}-{round}.json`, written atomically (temporary file, then
//! rename). Entries are re-verified on load; an entry that fails to parse or
//! verify is reported, deleted and refetched, never trusted.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use grail_core::beacon::{
    check_info, verify, Beacon, BeaconError, ChainInfo, DrandChain, VerifiedBeacon,
};
use serde::{Deserialize, Serialize};

use crate::http::{read_body_capped, Backoff, BodyError};

/// Time limit for one HTTP request (connect, headers and body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per relay for transient failures (transport errors, timeouts,
/// HTTP 5xx / 429) before moving to the next relay.
pub const MAX_ATTEMPTS_PER_RELAY: u32 = 3;
/// Delay before the first retry; doubled for each further retry.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Upper bound of the delay between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Largest response body read from a relay; a beacon is under 1 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest cache file read (a cache entry is under 1 KiB).
pub const MAX_CACHE_FILE_BYTES: u64 = 64 * 1024;

/// Public relays of the League of Entropy (drand's documented HTTP endpoints).
pub const DEFAULT_RELAYS: [&str; 4] = [
    "https://api.drand.sh",
    "https://api2.drand.sh",
    "https://api3.drand.sh",
    "https://drand.cloudflare.com",
];

/// Timeouts, retries and checks of a [`DrandClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per relay for transient failures (at least 1).
    pub attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Check each relay's `/info` against the pinned chain before trusting
    /// its beacons (once per relay and client).
    pub check_info: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: REQUEST_TIMEOUT,
            attempts: MAX_ATTEMPTS_PER_RELAY,
            backoff_initial: BACKOFF_INITIAL,
            backoff_max: BACKOFF_MAX,
            check_info: true,
        }
    }
}

/// Why one relay did not serve a valid beacon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("HTTP status {status}")]
    Status { status: u16 },
    #[error("timed out after {timeout:?}")]
    Timeout { timeout: Duration },
    #[error("transport error: {message}")]
    Transport { message: String },
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("invalid JSON: {message}")]
    InvalidJson { message: String },
    #[error("field {field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("served round {got}, requested {requested}")]
    WrongRound { requested: u64, got: u64 },
    #[error("beacon rejected: {0}")]
    Beacon(#[source] BeaconError),
    #[error("chain info rejected: {0}")]
    Info(#[source] BeaconError),
}

impl RelayError {
    /// Whether retrying the same relay may help.
    fn is_transient(&self) -> bool {
        match self {
            RelayError::Status { status } => *status >= 500 || *status == 429,
            RelayError::Timeout { .. } | RelayError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// One relay's failure, as reported in [`DrandError::AllRelaysFailed`].
#[derive(Debug)]
pub struct RelayFailure {
    pub relay: String,
    pub error: RelayError,
}

fn list_failures(failures: &[RelayFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("\n  {}: {}", f.relay, f.error))
        .collect()
}

/// Errors of the drand client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrandError {
    #[error("no drand relays configured")]
    NoRelays,
    #[error("relay URL {url:?} is not an http(s) URL")]
    RelayUrl { url: String },
    #[error("building the HTTP client: {message}")]
    HttpClient { message: String },
    #[error("no relay served a valid {chain} beacon for {what}:{}", list_failures(.failures))]
    AllRelaysFailed {
        chain: String,
        /// `round N` or `the latest round`.
        what: String,
        failures: Vec<RelayFailure>,
    },
    #[error("beacon cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A beacon in drand's JSON form (hex strings); also the cache file format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeaconJson {
    pub round: u64,
    pub randomness: String,
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signature: Option<String>,
}

fn decode_hex(field: &'static str, s: &str) -> Result<Vec<u8>, RelayError> {
    hex::decode(s).map_err(|e| RelayError::Field {
        field,
        message: e.to_string(),
    })
}

impl BeaconJson {
    /// Decode the hex fields (no verification).
    pub fn to_beacon(&self) -> Result<Beacon, RelayError> {
        let randomness = decode_hex("randomness", &self.randomness)?
            .try_into()
            .map_err(|v: Vec<u8>| RelayError::Field {
                field: "randomness",
                message: format!("{} bytes, expected 32", v.len()),
            })?;
        Ok(Beacon {
            round: self.round,
            signature: decode_hex("signature", &self.signature)?,
            previous_signature: self
                .previous_signature
                .as_deref()
                .map(|p| decode_hex("previous_signature", p))
                .transpose()?,
            randomness,
        })
    }

    pub fn from_beacon(b: &Beacon) -> BeaconJson {
        BeaconJson {
            round: b.round,
            randomness: hex::encode(b.randomness),
            signature: hex::encode(&b.signature),
            previous_signature: b.previous_signature.as_ref().map(hex::encode),
        }
    }
}

/// A relay's `/info` JSON (drand v1 and v2 field names).
#[derive(Debug, Deserialize)]
struct InfoJson {
    public_key: String,
    period: u64,
    genesis_time: u64,
    #[serde(alias = "hash")]
    chain_hash: String,
    #[serde(default, alias = "groupHash")]
    genesis_seed: Option<String>,
    #[serde(rename = "schemeID", alias = "scheme", default)]
    scheme: Option<String>,
}

impl InfoJson {
    fn to_info(&self) -> Result<ChainInfo, RelayError> {
        Ok(ChainInfo {
            hash: decode_hex("chain_hash", &self.chain_hash)?,
            public_key: decode_hex("public_key", &self.public_key)?,
            period: self.period,
            genesis_time: self.genesis_time,
            // drand v1 relays of the default chain omit the scheme
            scheme: self
                .scheme
                .clone()
                .unwrap_or_else(|| "pedersen-bls-chained".into()),
            genesis_seed: self
                .genesis_seed
                .as_deref()
                .map(|s| decode_hex("genesis_seed", s))
                .transpose()?,
        })
    }
}

/// The on-disk cache of verified beacons.
#[derive(Debug, Clone)]
pub struct BeaconCache {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BeaconCache {
    /// A cache in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<BeaconCache, DrandError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| DrandError::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(BeaconCache { dir })
    }

    /// Path of the entry for `round` of `chain`.
    pub fn path(&self, chain: &DrandChain, round: u64) -> PathBuf {
        self.dir.join(format!("{}-{round}.json", chain.hash_hex()))
    }

    /// The cached beacon for `round`, re-verified. A missing entry is `None`;
    /// an entry that does not parse or verify is reported, deleted, and `None`.
    pub async fn load(&self, chain: &DrandChain, round: u64) -> Option<VerifiedBeacon> {
        let path = self.path(chain, round);
        let bytes = match read_capped(&path).await {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable drand cache entry ignored");
                return None;
            }
        };
        let checked = serde_json::from_slice::<BeaconJson>(&bytes)
            .map_err(|e| RelayError::InvalidJson {
                message: e.to_string(),
            })
            .and_then(|j| j.to_beacon())
            .and_then(|b| {
                if b.round != round {
                    return Err(RelayError::WrongRound {
                        requested: round,
                        got: b.round,
                    });
                }
                verify(chain, &b).map_err(RelayError::Beacon)
            });
        match checked {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(path = %path.display(), round, error = %e, "invalid drand cache entry deleted");
                if let Err(e) = tokio::fs::remove_file(&path).await {
                    tracing::warn!(path = %path.display(), error = %e, "could not delete invalid drand cache entry");
                }
                None
            }
        }
    }

    /// Store a verified beacon (temporary file + rename).
    pub async fn store(
        &self,
        chain: &DrandChain,
        beacon: &VerifiedBeacon,
    ) -> Result<(), DrandError> {
        let path = self.path(chain, beacon.round());
        let tmp = self.dir.join(format!(
            ".{}-{}.{}.{}.tmp",
            chain.hash_hex(),
            beacon.round(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let body = serde_json::to_vec_pretty(&BeaconJson::from_beacon(beacon.beacon()))
            .expect("beacon JSON serializes");
        let io = |source, path: &Path| DrandError::Cache {
            path: path.to_path_buf(),
            source,
        };
        tokio::fs::write(&tmp, &body)
            .await
            .map_err(|e| io(e, &tmp))?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(e, &path));
        }
        Ok(())
    }
}

async fn read_capped(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    file.take(MAX_CACHE_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .await?;
    if buf.len() as u64 > MAX_CACHE_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CACHE_FILE_BYTES} bytes"),
        ));
    }
    Ok(Some(buf))
}

/// A client of one drand chain over a list of relays.
#[derive(Debug)]
pub struct DrandClient {
    chain: DrandChain,
    relays: Vec<String>,
    http: reqwest::Client,
    config: ClientConfig,
    cache: Option<BeaconCache>,
    /// Per relay: whether its `/info` was checked and matched.
    info_ok: Mutex<Vec<bool>>,
}

impl DrandClient {
    /// Add or replace the beacon cache of a client in place.
    pub fn set_cache(&mut self, cache: BeaconCache) {
        self.cache = Some(cache);
    }

    /// A client for `chain` asking `relays` (base URLs, in order).
    pub fn new(
        chain: DrandChain,
        relays: Vec<String>,
        config: ClientConfig,
    ) -> Result<DrandClient, DrandError> {
        if relays.is_empty() {
            return Err(DrandError::NoRelays);
        }
        let relays: Vec<String> = relays
            .into_iter()
            .map(|r| {
                if r.starts_with("http://") || r.starts_with("https://") {
                    Ok(r.trim_end_matches('/').to_string())
                } else {
                    Err(DrandError::RelayUrl { url: r })
                }
            })
            .collect::<Result<_, _>>()?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| DrandError::HttpClient {
                message: e.to_string(),
            })?;
        let info_ok = Mutex::new(vec![false; relays.len()]);
        Ok(DrandClient {
            chain,
            relays,
            http,
            config,
            cache: None,
            info_ok,
        })
    }

    /// Use (and fill) `cache` for [`fetch`](Self::fetch).
    pub fn with_cache(mut self, cache: BeaconCache) -> DrandClient {
        self.cache = Some(cache);
        self
    }

    pub fn chain(&self) -> &DrandChain {
        &self.chain
    }

    /// The verified beacon of `round`: from the cache if it holds a valid
    /// entry, else from the first relay that serves a valid one (then cached).
    pub async fn fetch(&self, round: u64) -> Result<VerifiedBeacon, DrandError> {
        if let Some(cache) = &self.cache {
            if let Some(v) = cache.load(&self.chain, round).await {
                tracing::debug!(round, chain = self.chain.name(), "drand beacon from cache");
                return Ok(v);
            }
        }
        let v = self
            .ask_relays(
                &format!("public/{round}"),
                Some(round),
                format!("round {round}"),
            )
            .await?;
        self.remember(&v).await;
        Ok(v)
    }

    /// The latest verified beacon any relay serves (first valid answer, in
    /// relay order); cached like [`fetch`](Self::fetch).
    pub async fn latest(&self) -> Result<VerifiedBeacon, DrandError> {
        let v = self
            .ask_relays("public/latest", None, "the latest round".into())
            .await?;
        self.remember(&v).await;
        Ok(v)
    }

    async fn remember(&self, v: &VerifiedBeacon) {
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.store(&self.chain, v).await {
                // the beacon is verified; failing to cache it only costs a refetch
                tracing::warn!(round = v.round(), error = %e, "could not cache drand beacon");
            }
        }
    }

    async fn ask_relays(
        &self,
        path: &str,
        round: Option<u64>,
        what: String,
    ) -> Result<VerifiedBeacon, DrandError> {
        let mut failures = Vec::new();
        for (i, relay) in self.relays.iter().enumerate() {
            match self.ask_relay(i, relay, path, round).await {
                Ok(v) => return Ok(v),
                Err(error) => {
                    tracing::warn!(relay = %relay, chain = self.chain.name(), what = %what, error = %error, "drand relay skipped");
                    failures.push(RelayFailure {
                        relay: relay.clone(),
                        error,
                    });
                }
            }
        }
        Err(DrandError::AllRelaysFailed {
            chain: self.chain.name().to_string(),
            what,
            failures,
        })
    }

    async fn ask_relay(
        &self,
        index: usize,
        relay: &str,
        path: &str,
        round: Option<u64>,
    ) -> Result<VerifiedBeacon, RelayError> {
        if self.config.check_info && !self.info_ok.lock().expect("lock")[index] {
            let body = self.get(relay, "info").await?;
            let info: InfoJson = parse_json(&body)?;
            check_info(&self.chain, &info.to_info()?).map_err(RelayError::Info)?;
            self.info_ok.lock().expect("lock")[index] = true;
        }
        let body = self.get(relay, path).await?;
        let beacon = parse_json::<BeaconJson>(&body)?.to_beacon()?;
        if let Some(requested) = round {
            if beacon.round != requested {
                return Err(RelayError::WrongRound {
                    requested,
                    got: beacon.round,
                });
            }
        }
        verify(&self.chain, &beacon).map_err(RelayError::Beacon)
    }

    /// GET `{relay}/{chain_hash}/{path}` with retries of transient failures.
    async fn get(&self, relay: &str, path: &str) -> Result<Vec<u8>, RelayError> {
        let url = format!("{relay}/{}/{path}", self.chain.hash_hex());
        let backoff = Backoff {
            attempts: self.config.attempts,
            initial: self.config.backoff_initial,
            max: self.config.backoff_max,
        };
        backoff
            .run(
                RelayError::is_transient,
                |attempt, _, e| {
                    tracing::debug!(url = %url, attempt, error = %e, "drand request failed; retrying");
                },
                || self.get_once(&url),
            )
            .await
    }

    async fn get_once(&self, url: &str) -> Result<Vec<u8>, RelayError> {
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                RelayError::Timeout {
                    timeout: self.config.timeout,
                }
            } else {
                RelayError::Transport {
                    message: error_chain(&e),
                }
            }
        };
        let mut resp = self.http.get(url).send().await.map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(RelayError::Status {
                status: status.as_u16(),
            });
        }
        read_body_capped(&mut resp, MAX_BODY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => RelayError::BodyTooLarge {
                    limit: MAX_BODY_BYTES,
                },
                BodyError::Read(e) => classify(e),
            })
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, RelayError> {
    serde_json::from_slice(body).map_err(|e| RelayError::InvalidJson {
        message: e.to_string(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
