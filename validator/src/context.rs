//! A window's public values (block hashes and times, verified beacons) from
//! the chain and drand, and an on-disk cache of them so that `grail verify`
//! can run offline. Cached beacons are BLS-verified again when read; cached
//! block values are the caller's own earlier reads of finalized blocks.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use grail_chain::drand::BeaconCache;
use grail_core::beacon::DrandChain;
use grail_core::generation::GenerationParams;
use grail_core::hash::Digest;
use grail_core::params::WINDOW_LENGTH;
use grail_core::window::{challenge_round, deadline_block, generation_round};
use grail_miner::{Follower, Shutdown};
use serde::{Deserialize, Serialize};

use crate::verify::WindowContext;

/// The block and beacon values of one window, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub netuid: u16,
    pub window: u64,
    #[serde(with = "hex::serde")]
    pub block_hash: Digest,
    pub block_timestamp_ms: u64,
    #[serde(with = "hex::serde")]
    pub deadline_hash: Digest,
    pub deadline_timestamp_ms: u64,
    pub generation: GenerationParams,
    /// The drand chain the beacons belong to.
    pub drand: ChainPin,
    pub generation_round: u64,
    pub challenge_round: u64,
}

/// Enough to rebuild a pinned drand chain: quicknet by name, a devnet by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPin {
    pub chain_hash: String,
    /// Devnet chains only: public key (hex), genesis time, period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devnet: Option<(String, u64, u64)>,
}

impl ChainPin {
    pub fn of(chain: &DrandChain) -> ChainPin {
        let is_devnet = chain.name() == grail_core::beacon::DEVNET_BEACON_ID;
        ChainPin {
            chain_hash: chain.hash_hex(),
            devnet: is_devnet.then(|| {
                (
                    hex::encode(chain.public_key()),
                    chain.genesis_time(),
                    chain.period(),
                )
            }),
        }
    }

    /// The pinned chain; its hash must be the recorded one.
    pub fn chain(&self) -> anyhow::Result<DrandChain> {
        let chain = match &self.devnet {
            Some((key, genesis, period)) => {
                let key = hex::decode(key).context("devnet drand public key is not hex")?;
                DrandChain::devnet(&key, *genesis, *period)?
            }
            None => [DrandChain::quicknet(), DrandChain::default_chain()]
                .into_iter()
                .find(|c| c.hash_hex() == self.chain_hash)
                .ok_or_else(|| anyhow!("unknown drand chain {}", self.chain_hash))?,
        };
        if chain.hash_hex() != self.chain_hash {
            bail!(
                "drand chain hash {} does not match its parameters ({})",
                self.chain_hash,
                chain.hash_hex()
            );
        }
        Ok(chain)
    }
}

/// Where cached windows and beacons live: `DIR/windows/{netuid}-{window}.json`
/// and drand's beacon cache under `DIR/beacons/`.
#[derive(Debug, Clone)]
pub struct ContextCache {
    dir: PathBuf,
}

impl ContextCache {
    pub fn new(dir: &Path) -> ContextCache {
        ContextCache {
            dir: dir.to_path_buf(),
        }
    }

    fn window_path(&self, netuid: u16, window: u64) -> PathBuf {
        self.dir
            .join("windows")
            .join(format!("{netuid}-{window}.json"))
    }

    /// The drand beacon cache inside this directory.
    pub fn beacons(&self) -> anyhow::Result<BeaconCache> {
        Ok(BeaconCache::open(self.dir.join("beacons"))?)
    }

    /// A cached window with both beacons (re-verified), if all are there.
    pub async fn load(
        &self,
        netuid: u16,
        window: u64,
    ) -> anyhow::Result<Option<(WindowRecord, WindowContext)>> {
        let path = self.window_path(netuid, window);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
        };
        let rec: WindowRecord = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a cached window", path.display()))?;
        if rec.netuid != netuid || rec.window != window {
            bail!(
                "{} holds netuid {} window {}",
                path.display(),
                rec.netuid,
                rec.window
            );
        }
        let chain = rec.drand.chain()?;
        let beacons = self.beacons()?;
        let (Some(g), Some(c)) = (
            beacons.load(&chain, rec.generation_round).await,
            beacons.load(&chain, rec.challenge_round).await,
        ) else {
            return Ok(None);
        };
        let ctx = context_of(&rec, g.randomness(), c.randomness());
        Ok(Some((rec, ctx)))
    }

    /// Write a window record (beacons are stored by the drand client).
    pub fn store(&self, rec: &WindowRecord) -> anyhow::Result<()> {
        let path = self.window_path(rec.netuid, rec.window);
        let dir = path.parent().expect("window path has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(rec)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn context_of(rec: &WindowRecord, generation: &Digest, challenge: &Digest) -> WindowContext {
    WindowContext::new(
        rec.netuid,
        rec.window,
        rec.block_hash,
        *generation,
        rec.deadline_hash,
        *challenge,
        rec.generation,
        rec.deadline_timestamp_ms,
    )
}

/// Wait until window `window` can be verified (its deadline block final,
/// the challenge beacon published) and read its values. `None` when shut
/// down. Beacons go through the follower's drand client (and its cache).
pub async fn fetch_window(
    follower: &Follower,
    window: u64,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<(WindowRecord, WindowContext)>> {
    if !window.is_multiple_of(WINDOW_LENGTH) {
        bail!("{window} is not a window start (a multiple of {WINDOW_LENGTH})");
    }
    let Some(start) = follower.window_block(window, shutdown).await else {
        return Ok(None);
    };
    let Some(deadline) = follower
        .window_block(deadline_block(window), shutdown)
        .await
    else {
        return Ok(None);
    };
    let chain = follower.drand.chain().clone();
    let schedule = chain.schedule();
    let g_round = generation_round(&schedule, start.timestamp_ms);
    let c_round = challenge_round(&schedule, deadline.timestamp_ms);
    // a beacon that will never come is a network problem: give up after a while
    let give_up = Instant::now() + Duration::from_secs(300) + schedule_wait(&chain, c_round);
    let Some(g) = follower.beacon(g_round, give_up, shutdown).await else {
        return if shutdown.requested() {
            Ok(None)
        } else {
            Err(anyhow!(
                "drand round {g_round} could not be fetched and verified"
            ))
        };
    };
    let Some(c) = follower.beacon(c_round, give_up, shutdown).await else {
        return if shutdown.requested() {
            Ok(None)
        } else {
            Err(anyhow!(
                "drand round {c_round} could not be fetched and verified"
            ))
        };
    };
    let rec = WindowRecord {
        netuid: follower.netuid,
        window,
        block_hash: start.hash,
        block_timestamp_ms: start.timestamp_ms,
        deadline_hash: deadline.hash,
        deadline_timestamp_ms: deadline.timestamp_ms,
        generation: follower.generation,
        drand: ChainPin::of(&chain),
        generation_round: g_round,
        challenge_round: c_round,
    };
    let ctx = context_of(&rec, g.randomness(), c.randomness());
    Ok(Some((rec, ctx)))
}

fn schedule_wait(chain: &DrandChain, round: u64) -> Duration {
    let publish = chain.schedule().time_of(round) * 1000;
    Duration::from_millis(publish.saturating_sub(grail_miner::follow::now_ms()))
}
