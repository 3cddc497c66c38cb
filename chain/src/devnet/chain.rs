//! A local subtensor-like chain: blocks made by the clock, served over the
//! JSON-RPC methods grail's [`SubtensorClient`](crate::subtensor::SubtensorClient)
//! uses.
//!
//! Blocks: block 0 is at `genesis_ms`; the best block at time `now_ms` is
//! `(now_ms - genesis_ms) / block_ms` (block 0 before genesis), the finalized
//! head is [`FINALITY_LAG`] blocks behind it. Block `n`'s hash is
//! `derive(DEVNET_BLOCK_HASH_LABEL, [seed, u64_le(n)])` (the protocol's
//! BLAKE3 `derive`, PROTOCOL.md §2), its parent hash block `n - 1`'s (zeros
//! for block 0), and its `Timestamp.Now` `genesis_ms + n * block_ms`. So two
//! devnets with the same seed, genesis and block time serve the same chain.
//!
//! Storage is the same at every block: `SubtensorModule.Keys(netuid, uid)`
//! for the registered hotkeys, plus `Timestamp.Now` per block.
//!
//! Served (JSON-RPC 2.0 over HTTP POST `/`): `chain_getBlockHash([] | [n])`,
//! `chain_getHeader([] | [hash])`, `chain_getFinalizedHead`,
//! `state_getStorage([key, at?])`, `state_getKeysPaged([prefix, count,
//! start?, at?])`, `state_queryStorageAt([[keys], at?])`, and
//! `grail_devnetInfo` ([`DevnetInfo`](super::DevnetInfo): drand relay and key,
//! block time, netuid, generation parameters) when the devnet set it. A block after the
//! best one does not exist yet (`null`; unknown block error as `at`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use grail_core::hash::derive;
use serde_json::{json, Value};

use crate::subtensor::{hotkey_key, timestamp_now_key};

/// Label of devnet block hashes. Changing it changes every devnet block hash
/// (and so every problem a devnet window derives).
pub const DEVNET_BLOCK_HASH_LABEL: &str = "grail/v1/devnet-block-hash";
/// Default milliseconds between devnet blocks.
pub const DEFAULT_BLOCK_MS: u64 = 1_000;
/// How many blocks the finalized head trails the best block.
pub const FINALITY_LAG: u64 = 2;
/// Most keys one `state_getKeysPaged` call returns (subtensor's cap).
pub const MAX_KEYS_PAGE: u64 = 1_000;
/// How many of the newest blocks a block hash is looked up among (by
/// recomputing hashes, newest first): about 36 h of 1 s blocks. An older
/// block's hash is answered as unknown, and a lookup never takes longer.
pub const MAX_BLOCK_LOOKUP: u64 = 1 << 17;
/// Most keys one `state_queryStorageAt` call may ask for.
pub const MAX_QUERY_KEYS: usize = 1_000;

/// The devnet chain: blocks from the clock, fixed storage.
#[derive(Debug, Clone)]
pub struct DevnetChain {
    seed: Vec<u8>,
    genesis_ms: u64,
    block_ms: u64,
    storage: BTreeMap<Vec<u8>, Vec<u8>>,
    info: Option<Value>,
}

impl DevnetChain {
    /// A chain from `seed` whose block 0 is at `genesis_ms` (ms since the
    /// Unix epoch), one block every `block_ms` (at least 1).
    pub fn new(seed: &[u8], genesis_ms: u64, block_ms: u64) -> DevnetChain {
        DevnetChain {
            seed: seed.to_vec(),
            genesis_ms,
            block_ms: block_ms.max(1),
            storage: BTreeMap::new(),
            info: None,
        }
    }

    /// Register `hotkey` as `uid` of subnet `netuid`.
    pub fn register(&mut self, netuid: u16, uid: u16, hotkey: [u8; 32]) {
        self.storage
            .insert(hotkey_key(netuid, uid).to_vec(), hotkey.to_vec());
    }

    /// What `grail_devnetInfo` answers (without it, the method is unknown).
    pub fn set_info(&mut self, info: super::DevnetInfo) {
        self.info = Some(serde_json::to_value(info).expect("devnet info serializes"));
    }

    pub fn genesis_ms(&self) -> u64 {
        self.genesis_ms
    }

    pub fn block_ms(&self) -> u64 {
        self.block_ms
    }

    /// The hash of block `n`.
    pub fn block_hash(&self, n: u64) -> [u8; 32] {
        derive(DEVNET_BLOCK_HASH_LABEL, &[&self.seed, &n.to_le_bytes()])
    }

    /// `Timestamp.Now` of block `n`.
    pub fn timestamp_ms(&self, n: u64) -> u64 {
        self.genesis_ms
            .saturating_add(n.saturating_mul(self.block_ms))
    }

    /// The best block at `now_ms`.
    pub fn best(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.genesis_ms) / self.block_ms
    }

    /// The finalized head at `now_ms`.
    pub fn finalized(&self, now_ms: u64) -> u64 {
        self.best(now_ms).saturating_sub(FINALITY_LAG)
    }

    /// The number of the block with `hash` among the newest
    /// [`MAX_BLOCK_LOOKUP`] blocks up to `best`.
    pub fn number_of(&self, hash: &[u8], best: u64) -> Option<u64> {
        let oldest = best.saturating_sub(MAX_BLOCK_LOOKUP - 1);
        (oldest..=best)
            .rev()
            .find(|&n| self.block_hash(n)[..] == *hash)
    }

    fn header(&self, n: u64) -> Value {
        let parent = if n == 0 {
            [0u8; 32]
        } else {
            self.block_hash(n - 1)
        };
        json!({
            "parentHash": hex0x(&parent),
            "number": format!("0x{n:x}"),
            "stateRoot": hex0x(&[0u8; 32]),
            "extrinsicsRoot": hex0x(&[0u8; 32]),
            "digest": {"logs": []},
        })
    }

    /// The block an `at` parameter names (absent or `null`: the best block).
    fn at(&self, at: Option<&Value>, best: u64) -> Result<u64, (i64, String)> {
        match at {
            None | Some(Value::Null) => Ok(best),
            Some(Value::String(h)) => decode_hash(h)
                .and_then(|b| self.number_of(&b, best))
                .ok_or((4003, format!("Client error: UnknownBlock: {h}"))),
            Some(other) => Err((-32602, format!("invalid block {other}"))),
        }
    }

    /// The JSON-RPC result of `method(params)` at time `now_ms`, or an error
    /// (code, message).
    pub fn answer(
        &self,
        method: &str,
        params: &[Value],
        now_ms: u64,
    ) -> Result<Value, (i64, String)> {
        let best = self.best(now_ms);
        match method {
            "chain_getBlockHash" => match params.first() {
                None | Some(Value::Null) => Ok(json!(hex0x(&self.block_hash(best)))),
                Some(Value::Number(n)) => {
                    let n = n
                        .as_u64()
                        .ok_or((-32602, "invalid block number".to_owned()))?;
                    Ok(if n <= best {
                        json!(hex0x(&self.block_hash(n)))
                    } else {
                        Value::Null
                    })
                }
                Some(other) => Err((-32602, format!("invalid block number {other}"))),
            },
            "chain_getHeader" => match params.first() {
                None | Some(Value::Null) => Ok(self.header(best)),
                Some(Value::String(h)) => Ok(decode_hash(h)
                    .and_then(|b| self.number_of(&b, best))
                    .map_or(Value::Null, |n| self.header(n))),
                Some(other) => Err((-32602, format!("invalid hash {other}"))),
            },
            "chain_getFinalizedHead" => Ok(json!(hex0x(&self.block_hash(self.finalized(now_ms))))),
            "state_getStorage" => {
                let key = param_bytes(params.first())?;
                let n = self.at(params.get(1), best)?;
                Ok(self
                    .storage_at(&key, n)
                    .map_or(Value::Null, |v| json!(hex0x(&v))))
            }
            "state_getKeysPaged" => {
                let prefix = param_bytes(params.first())?;
                let count = params
                    .get(1)
                    .and_then(Value::as_u64)
                    .filter(|&c| c <= MAX_KEYS_PAGE)
                    .ok_or((-32602, format!("invalid count (at most {MAX_KEYS_PAGE})")))?;
                let start = match params.get(2) {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(param_bytes(Some(v))?),
                };
                self.at(params.get(3), best)?;
                let mut keys: Vec<Vec<u8>> = self.storage.keys().cloned().collect();
                keys.push(timestamp_now_key().to_vec());
                keys.sort();
                let page: Vec<Value> = keys
                    .iter()
                    .filter(|k| k.starts_with(&prefix))
                    .filter(|k| start.as_ref().is_none_or(|s| *k > s))
                    .take(count as usize)
                    .map(|k| json!(hex0x(k)))
                    .collect();
                Ok(Value::Array(page))
            }
            "state_queryStorageAt" => {
                let Some(Value::Array(keys)) = params.first() else {
                    return Err((-32602, "expected a list of keys".to_owned()));
                };
                if keys.len() > MAX_QUERY_KEYS {
                    return Err((-32602, format!("more than {MAX_QUERY_KEYS} keys")));
                }
                let n = self.at(params.get(1), best)?;
                let mut changes = Vec::new();
                for k in keys {
                    let key = param_bytes(Some(k))?;
                    let value = self
                        .storage_at(&key, n)
                        .map_or(Value::Null, |v| json!(hex0x(&v)));
                    changes.push(json!([hex0x(&key), value]));
                }
                Ok(json!([{"block": hex0x(&self.block_hash(n)), "changes": changes}]))
            }
            "grail_devnetInfo" if self.info.is_some() => Ok(self.info.clone().unwrap_or_default()),
            _ => Err((-32601, format!("Method not found: {method}"))),
        }
    }

    fn storage_at(&self, key: &[u8], n: u64) -> Option<Vec<u8>> {
        if key == timestamp_now_key().as_slice() {
            return Some(self.timestamp_ms(n).to_le_bytes().to_vec());
        }
        self.storage.get(key).cloned()
    }

    /// The JSON-RPC endpoint (`POST /`) over this chain, on the system clock.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().route("/", post(rpc)).with_state(self)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn rpc(State(chain): State<Arc<DevnetChain>>, body: Bytes) -> Json<Value> {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Json(json!({"jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": format!("Parse error: {e}")}}))
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let params = match request.get("params") {
        Some(Value::Array(p)) => p.as_slice(),
        _ => &[],
    };
    Json(match chain.answer(method, params, now_ms()) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    })
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn decode_hash(h: &str) -> Option<Vec<u8>> {
    hex::decode(h.strip_prefix("0x")?).ok()
}

fn param_bytes(v: Option<&Value>) -> Result<Vec<u8>, (i64, String)> {
    v.and_then(Value::as_str)
        .and_then(decode_hash)
        .ok_or((-32602, format!("invalid hex parameter {v:?}")))
}
