//! A local devnet: a drand-compatible beacon ([`beacon`]) and a
//! subtensor-like chain ([`chain`]) served on loopback, so miners and
//! validators can run end to end with no network. The production clients
//! ([`DrandClient`](crate::drand::DrandClient),
//! [`SubtensorClient`](crate::subtensor::SubtensorClient)) talk to it
//! unchanged; only the pinned drand chain differs ([`DevnetHandle::drand_chain`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), grail_chain::devnet::DevnetError> {
//! use grail_chain::devnet::{Devnet, DevnetConfig};
//! let devnet = Devnet::start(DevnetConfig::default()).await?;
//! println!("{} {}", devnet.chain_url(), devnet.drand_url());
//! devnet.shutdown().await;
//! # Ok(()) }
//! ```
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use grail_core::beacon::{BeaconError, DrandChain};
use grail_core::generation::GenerationParams;
use grail_core::keys::Keypair;
use grail_core::params::MAX_PROMPT_TOKENS;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod beacon;
pub mod chain;

pub use beacon::{DevnetBeacon, DEFAULT_DRAND_PERIOD_S};
pub use chain::{DevnetChain, DEFAULT_BLOCK_MS};

/// Default devnet seed (drand key and block hashes).
pub const DEFAULT_SEED: &str = "grail-devnet";
/// Subnet the default devnet registers its dev hotkeys on.
pub const DEFAULT_NETUID: u16 = 1;
/// Dev hotkeys the default devnet registers, as uids 0, 1, 2.
pub const DEFAULT_HOTKEYS: [&str; 3] = ["alice", "bob", "charlie"];

/// Errors of the devnet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    #[error("devnet drand chain: {0}")]
    Beacon(#[source] BeaconError),
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What a devnet serves, and where.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Seed of the drand key and of the block hashes (public).
    pub seed: Vec<u8>,
    /// Loopback port of the chain's JSON-RPC (0: any free port).
    pub chain_port: u16,
    /// Loopback port of the drand relay API (0: any free port).
    pub drand_port: u16,
    /// Milliseconds between blocks.
    pub block_ms: u64,
    /// Seconds between drand rounds.
    pub drand_period_s: u64,
    /// Unix time (s) of drand round 1 and of block 0; `None`: the start time.
    pub genesis_time: Option<u64>,
    /// `(netuid, uid, hotkey)` registered in `SubtensorModule.Keys`.
    pub hotkeys: Vec<(u16, u16, [u8; 32])>,
    /// What the devnet's miners generate with, announced by `grail_devnetInfo`.
    pub generation: GenerationParams,
}

/// Default completion cap on a devnet: short, so a window of the bundled
/// stories260K model finishes in seconds on a laptop CPU.
pub const DEFAULT_DEVNET_MAX_NEW_TOKENS: u32 = 64;

/// The devnet's default generation parameters: temperature 1.0,
/// [`DEFAULT_DEVNET_MAX_NEW_TOKENS`], and a context limit that fits the
/// largest protocol prompt, so small-context models (stories260K: 512
/// positions) run full-size problems.
pub fn default_generation() -> GenerationParams {
    GenerationParams {
        max_new_tokens: DEFAULT_DEVNET_MAX_NEW_TOKENS,
        context_limit: Some(MAX_PROMPT_TOKENS + DEFAULT_DEVNET_MAX_NEW_TOKENS),
        ..GenerationParams::default()
    }
}

/// What `grail_devnetInfo` answers: where the devnet's drand relay is and
/// the key that pins its chain, the block time, the subnet, and the
/// generation parameters. A client that follows a devnet (`--devnet URL`)
/// learns everything from this one call; the devnet's key is public and its
/// beacons are for local testing only (PROTOCOL.md §4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevnetInfo {
    pub netuid: u16,
    pub block_ms: u64,
    pub drand_url: String,
    /// Hex of the compressed G2 public key.
    pub drand_public_key: String,
    pub drand_genesis_time: u64,
    pub drand_period: u64,
    pub generation: GenerationParams,
}

impl DevnetInfo {
    /// The drand chain to pin for this devnet's beacons.
    pub fn drand_chain(&self) -> Result<DrandChain, BeaconError> {
        let key =
            hex::decode(&self.drand_public_key).map_err(|_| BeaconError::InvalidPublicKey {
                chain: grail_core::beacon::DEVNET_BEACON_ID.into(),
                public_key: self.drand_public_key.clone(),
            })?;
        DrandChain::devnet(&key, self.drand_genesis_time, self.drand_period)
    }
}

/// The dev hotkeys of [`DEFAULT_HOTKEYS`] as uids 0.. of [`DEFAULT_NETUID`].
pub fn default_hotkeys() -> Vec<(u16, u16, [u8; 32])> {
    DEFAULT_HOTKEYS
        .iter()
        .zip(0u16..)
        .map(|(name, uid)| {
            let pair = Keypair::dev(name).expect("dev key names are valid");
            (DEFAULT_NETUID, uid, *pair.hotkey().as_bytes())
        })
        .collect()
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            seed: DEFAULT_SEED.as_bytes().to_vec(),
            chain_port: 0,
            drand_port: 0,
            block_ms: DEFAULT_BLOCK_MS,
            drand_period_s: DEFAULT_DRAND_PERIOD_S,
            genesis_time: None,
            hotkeys: default_hotkeys(),
            generation: default_generation(),
        }
    }
}

/// Starts devnets.
#[derive(Debug)]
pub struct Devnet;

/// A running devnet; stops on [`shutdown`](Self::shutdown) or when dropped.
#[derive(Debug)]
pub struct DevnetHandle {
    chain_addr: SocketAddr,
    drand_addr: SocketAddr,
    beacon: Arc<DevnetBeacon>,
    chain: Arc<DevnetChain>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(what: &'static str, port: u16) -> Result<TcpListener, DevnetError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| DevnetError::Bind { what, addr, source })
}

impl Devnet {
    /// Bind both servers on loopback and serve them on the current tokio
    /// runtime until the handle is shut down or dropped.
    pub async fn start(config: DevnetConfig) -> Result<DevnetHandle, DevnetError> {
        let genesis_time = config.genesis_time.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
        let beacon = Arc::new(DevnetBeacon::from_seed(
            &config.seed,
            genesis_time,
            config.drand_period_s,
        )?);
        let chain_listener = bind("devnet chain", config.chain_port).await?;
        let drand_listener = bind("devnet drand", config.drand_port).await?;
        let local = |l: &TcpListener, what| {
            l.local_addr().map_err(|source| DevnetError::Bind {
                what,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                source,
            })
        };
        let chain_addr = local(&chain_listener, "devnet chain")?;
        let drand_addr = local(&drand_listener, "devnet drand")?;
        let mut chain = DevnetChain::new(
            &config.seed,
            genesis_time.saturating_mul(1000),
            config.block_ms,
        );
        for &(netuid, uid, hotkey) in &config.hotkeys {
            chain.register(netuid, uid, hotkey);
        }
        let netuid = config.hotkeys.first().map_or(DEFAULT_NETUID, |h| h.0);
        chain.set_info(DevnetInfo {
            netuid,
            block_ms: chain.block_ms(),
            drand_url: format!("http://{drand_addr}"),
            drand_public_key: hex::encode(beacon.chain().public_key()),
            drand_genesis_time: beacon.chain().genesis_time(),
            drand_period: beacon.chain().period(),
            generation: config.generation,
        });
        let chain = Arc::new(chain);
        // `true` (or the handle dropped): stop serving.
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for (listener, router, what) in [
            (chain_listener, Arc::clone(&chain).router(), "chain"),
            (drand_listener, Arc::clone(&beacon).router(), "drand"),
        ] {
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(server = what, error = %e, "devnet server stopped");
                }
            }));
        }
        tracing::info!(chain = %chain_addr, drand = %drand_addr, chain_hash = %beacon.chain().hash_hex(), "devnet started");
        Ok(DevnetHandle {
            chain_addr,
            drand_addr,
            beacon,
            chain,
            stop,
            tasks,
        })
    }
}

impl DevnetHandle {
    /// `http://127.0.0.1:<port>`: the subtensor JSON-RPC endpoint.
    pub fn chain_url(&self) -> String {
        format!("http://{}", self.chain_addr)
    }

    /// `http://127.0.0.1:<port>`: the drand relay base URL.
    pub fn drand_url(&self) -> String {
        format!("http://{}", self.drand_addr)
    }

    /// The drand chain clients must pin to verify the devnet's beacons.
    pub fn drand_chain(&self) -> &DrandChain {
        self.beacon.chain()
    }

    /// The devnet's signer.
    pub fn beacon(&self) -> &DevnetBeacon {
        &self.beacon
    }

    /// The devnet's chain.
    pub fn chain(&self) -> &DevnetChain {
        &self.chain
    }

    /// Stop both servers and wait for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for DevnetHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
