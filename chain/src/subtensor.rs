//! The subtensor JSON-RPC client: block heads, block hashes, block timestamps
//! and the hotkeys registered on a subnet.
//!
//! Requests are JSON-RPC 2.0 over HTTP(S) POST, which subtensor nodes also
//! accept on their websocket ports (`wss://host:443` is queried as
//! `https://host:443`). Every request has a timeout ([`REQUEST_TIMEOUT`]),
//! transport failures and HTTP 5xx / 429 answers are retried a bounded number
//! of times with exponential backoff ([`MAX_ATTEMPTS`], [`INITIAL_BACKOFF`]),
//! and a response body larger than [`MAX_RESPONSE_BYTES`] is refused before it
//! is parsed. Every answer is checked: a `null` where a value is required, a
//! hash that is not 32 bytes, a number that is not a hex `u64`, a storage value
//! of the wrong length are all [`SubtensorError`]s naming the RPC method and the
//! endpoint; nothing is defaulted.
//!
//! Window hashes come from finalized blocks only ([`SubtensorClient::window_block_hash`]),
//! and a block's time is the chain's own `Timestamp.Now` of that block
//! ([`SubtensorClient::block_timestamp_ms`]), as PROTOCOL.md §4 requires.
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{read_body_capped, Backoff, BodyError};

/// Timeout of one HTTP request, connection and body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per RPC call (the first try plus retries) before a transport
/// error or HTTP 5xx / 429 is returned to the caller.
pub const MAX_ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled before each further retry.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Upper bound on the wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// Largest response body read from a node (4 MiB). The largest legitimate
/// answer is a page of [`KEYS_PAGE_SIZE`] storage values, far below this.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Storage keys asked for per `state_getKeysPaged` call.
pub const KEYS_PAGE_SIZE: u32 = 256;
/// Most hotkeys read from one subnet: one per possible `u16` uid.
pub const MAX_SUBNET_UIDS: usize = 1 << 16;

/// `--subtensor.network` when neither it nor `--subtensor.chain_endpoint` is given.
pub const DEFAULT_NETWORK: Network = Network::Finney;

/// A 32-byte block hash.
pub type BlockHash = [u8; 32];
/// A 32-byte account id (an sr25519 public key), as stored by subtensor.
pub type AccountId = [u8; 32];

/// A block number and the hash of that block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub number: u64,
    pub hash: BlockHash,
}

/// Everything that can go wrong talking to a subtensor node. Each variant
/// names the RPC method and the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubtensorError {
    /// The request did not complete: connection refused, TLS failure, reset.
    #[error("{method} at {endpoint}: transport error: {source}")]
    Transport {
        method: &'static str,
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// No complete answer within the request timeout.
    #[error("{method} at {endpoint}: no answer within {timeout_ms} ms")]
    Timeout {
        method: &'static str,
        endpoint: String,
        timeout_ms: u128,
    },
    /// The node answered with an HTTP status other than 200.
    #[error("{method} at {endpoint}: HTTP status {status}")]
    HttpStatus {
        method: &'static str,
        endpoint: String,
        status: u16,
    },
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("{method} at {endpoint}: response larger than {limit} bytes")]
    ResponseTooLarge {
        method: &'static str,
        endpoint: String,
        limit: usize,
    },
    /// The body is not a JSON-RPC 2.0 response.
    #[error("{method} at {endpoint}: invalid JSON-RPC response: {detail}")]
    InvalidJson {
        method: &'static str,
        endpoint: String,
        detail: String,
    },
    /// The node answered with a JSON-RPC error object.
    #[error("{method} at {endpoint}: JSON-RPC error {code}: {message}")]
    Rpc {
        method: &'static str,
        endpoint: String,
        code: i64,
        message: String,
    },
    /// The result was `null` where a value is required.
    #[error("{method} at {endpoint}: null result for {what}")]
    NullResult {
        method: &'static str,
        endpoint: String,
        what: String,
    },
    /// A field of the result has the wrong type, is not hex, or has the wrong length.
    #[error("{method} at {endpoint}: malformed {field}: {detail}")]
    Malformed {
        method: &'static str,
        endpoint: String,
        field: &'static str,
        detail: String,
    },
    /// A window hash was asked for a block that is not finalized yet.
    #[error("block {block} is not finalized at {endpoint} (finalized head is block {finalized})")]
    NotFinalized {
        endpoint: String,
        block: u64,
        finalized: u64,
    },
    /// `chain_getBlockHash` knows no block at a height at or below the finalized head.
    #[error("{endpoint}: no hash for finalized block {block}")]
    MissingFinalizedBlock { endpoint: String, block: u64 },
    /// More storage keys under the subnet prefix than there are uids.
    #[error("{method} at {endpoint}: more than {limit} keys under the prefix of netuid {netuid}")]
    TooManyKeys {
        method: &'static str,
        endpoint: String,
        netuid: u16,
        limit: usize,
    },
    /// An endpoint URL that is not `http(s)://` or `ws(s)://`.
    #[error("invalid subtensor endpoint {endpoint:?}: {detail}")]
    InvalidEndpoint { endpoint: String, detail: String },
    /// A `--subtensor.network` name that is not a known network.
    #[error("unknown subtensor network {name:?} (known: finney, test, local, or a URL)")]
    UnknownNetwork { name: String },
}

impl SubtensorError {
    /// True for errors worth another attempt: the transport failed, timed
    /// out, or the node reported itself overloaded or broken (5xx, 429).
    fn is_retryable(&self) -> bool {
        match self {
            SubtensorError::Transport { .. } | SubtensorError::Timeout { .. } => true,
            SubtensorError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// True when the node could not be reached or refused to answer
    /// (transport, timeout, HTTP status, bad endpoint): nothing was checked.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SubtensorError::Transport { .. }
                | SubtensorError::Timeout { .. }
                | SubtensorError::HttpStatus { .. }
                | SubtensorError::InvalidEndpoint { .. }
                | SubtensorError::UnknownNetwork { .. }
        )
    }
}

type Result<T, E = SubtensorError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------
// Networks and endpoints

/// The well-known Bittensor networks, as named by `--subtensor.network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The main network.
    Finney,
    /// The public test network.
    Test,
    /// A node on this machine.
    Local,
}

impl Network {
    /// The network's name as `--subtensor.network` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Network::Finney => "finney",
            Network::Test => "test",
            Network::Local => "local",
        }
    }

    /// The HTTP(S) JSON-RPC endpoint (the websocket endpoint bittensor uses,
    /// with its scheme mapped to HTTP).
    pub fn endpoint(self) -> &'static str {
        match self {
            Network::Finney => "https://entrypoint-finney.opentensor.ai:443",
            Network::Test => "https://test.finney.opentensor.ai:443",
            Network::Local => "http://127.0.0.1:9944",
        }
    }
}

impl FromStr for Network {
    type Err = SubtensorError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "finney" => Ok(Network::Finney),
            "test" => Ok(Network::Test),
            "local" => Ok(Network::Local),
            _ => Err(SubtensorError::UnknownNetwork { name: s.to_owned() }),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Map a subtensor URL to the HTTP(S) URL JSON-RPC is POSTed to:
/// `wss://` becomes `https://`, `ws://` becomes `http://`, `http(s)://` is
/// kept; anything else is an error.
///
/// ```
/// use grail_chain::subtensor::http_endpoint;
/// assert_eq!(http_endpoint("wss://example.org:443").unwrap(), "https://example.org:443");
/// assert_eq!(http_endpoint("ws://127.0.0.1:9944").unwrap(), "http://127.0.0.1:9944");
/// assert!(http_endpoint("ftp://example.org").is_err());
/// ```
pub fn http_endpoint(url: &str) -> Result<String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| SubtensorError::InvalidEndpoint {
            endpoint: url.to_owned(),
            detail: "no scheme (expected http://, https://, ws:// or wss://)".to_owned(),
        })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(SubtensorError::InvalidEndpoint {
                endpoint: url.to_owned(),
                detail: format!("unsupported scheme {other:?}"),
            })
        }
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(SubtensorError::InvalidEndpoint {
            endpoint: url.to_owned(),
            detail: "no host".to_owned(),
        });
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Resolve `--subtensor.network` and `--subtensor.chain_endpoint` to the URL
/// queried. The endpoint wins when both are given; a network may also be
/// given as a URL (as bittensor allows); with neither, [`DEFAULT_NETWORK`].
///
/// ```
/// use grail_chain::subtensor::resolve_endpoint;
/// assert_eq!(resolve_endpoint(Some("local"), None).unwrap(), "http://127.0.0.1:9944");
/// assert_eq!(
///     resolve_endpoint(Some("test"), Some("ws://10.0.0.1:9944")).unwrap(),
///     "http://10.0.0.1:9944"
/// );
/// assert_eq!(
///     resolve_endpoint(None, None).unwrap(),
///     "https://entrypoint-finney.opentensor.ai:443"
/// );
/// assert!(resolve_endpoint(Some("mainnet"), None).is_err());
/// ```
pub fn resolve_endpoint(network: Option<&str>, chain_endpoint: Option<&str>) -> Result<String> {
    if let Some(endpoint) = chain_endpoint {
        return http_endpoint(endpoint);
    }
    match network {
        None => Ok(DEFAULT_NETWORK.endpoint().to_owned()),
        Some(name) if name.contains("://") => http_endpoint(name),
        Some(name) => Ok(name.parse::<Network>()?.endpoint().to_owned()),
    }
}

// ---------------------------------------------------------------------------
// Storage keys

/// Substrate's `twox128`: xxHash64 of `data` with seed 0, then with seed 1,
/// each as little-endian bytes.
///
/// ```
/// use grail_chain::subtensor::twox128;
/// assert_eq!(hex::encode(twox128(b"System")), "26aa394eea5630e07c48ae0c9558cef7");
/// ```
pub fn twox128(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&twox_hash::XxHash64::oneshot(0, data).to_le_bytes());
    out[8..].copy_from_slice(&twox_hash::XxHash64::oneshot(1, data).to_le_bytes());
    out
}

/// Storage key prefix of a pallet's item: `twox128(pallet) ++ twox128(item)`.
pub fn storage_prefix(pallet: &str, item: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&twox128(pallet.as_bytes()));
    out[16..].copy_from_slice(&twox128(item.as_bytes()));
    out
}

/// Storage key of `Timestamp.Now`, the block's time in milliseconds (SCALE `u64`).
pub fn timestamp_now_key() -> [u8; 32] {
    storage_prefix("Timestamp", "Now")
}

/// Length of a `SubtensorModule.Keys` key: prefix, netuid, uid.
const KEYS_KEY_LEN: usize = 32 + 2 + 2;

/// Prefix of every `SubtensorModule.Keys(netuid, _)` key: the storage prefix
/// and the netuid (identity hasher: the raw `u16`, little-endian).
pub fn hotkeys_prefix(netuid: u16) -> [u8; 34] {
    let mut out = [0u8; 34];
    out[..32].copy_from_slice(&storage_prefix("SubtensorModule", "Keys"));
    out[32..].copy_from_slice(&netuid.to_le_bytes());
    out
}

/// Storage key of `SubtensorModule.Keys(netuid, uid)`, the hotkey at a uid
/// (both maps use the identity hasher).
pub fn hotkey_key(netuid: u16, uid: u16) -> [u8; KEYS_KEY_LEN] {
    let mut out = [0u8; KEYS_KEY_LEN];
    out[..34].copy_from_slice(&hotkeys_prefix(netuid));
    out[34..].copy_from_slice(&uid.to_le_bytes());
    out
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

// ---------------------------------------------------------------------------
// Client

/// Tunables of a [`SubtensorClient`]; [`Default`] gives the named constants.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Attempts per RPC call, at least 1.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled up to [`MAX_BACKOFF`].
    pub initial_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: REQUEST_TIMEOUT,
            max_attempts: MAX_ATTEMPTS,
            initial_backoff: INITIAL_BACKOFF,
        }
    }
}

/// A JSON-RPC client of one subtensor node.
#[derive(Debug)]
pub struct SubtensorClient {
    http: reqwest::Client,
    endpoint: String,
    options: ClientOptions,
    next_id: AtomicU64,
}

#[derive(Deserialize)]
struct RpcResponse {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    result: Value,
    error: Option<RpcErrorObject>,
}

#[derive(Deserialize)]
struct RpcErrorObject {
    code: i64,
    #[serde(default)]
    message: String,
}

/// Largest length of a hex number accepted in a header (`0x` + 16 digits,
/// with some room for leading zeros).
const MAX_HEX_NUMBER_LEN: usize = 2 + 32;

impl SubtensorClient {
    /// A client of `endpoint` (`http(s)://` or `ws(s)://`) with default options.
    pub fn new(endpoint: &str) -> Result<Self> {
        Self::with_options(endpoint, ClientOptions::default())
    }

    /// A client of `endpoint` with the given timeout, attempts and backoff.
    pub fn with_options(endpoint: &str, options: ClientOptions) -> Result<Self> {
        let endpoint = http_endpoint(endpoint)?;
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| SubtensorError::InvalidEndpoint {
                endpoint: endpoint.clone(),
                detail: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(SubtensorClient {
            http,
            endpoint,
            options: ClientOptions {
                max_attempts: options.max_attempts.max(1),
                ..options
            },
            next_id: AtomicU64::new(1),
        })
    }

    /// The HTTP(S) URL this client posts to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The best (most recent, not necessarily final) block.
    ///
    /// The pair is read as `chain_getBlockHash()` (no parameter: the best
    /// block's hash) and then `chain_getHeader([hash])` for its number, so
    /// number and hash always belong to the same block even if the best
    /// block changes between the two calls.
    pub async fn best_head(&self) -> Result<Header> {
        const METHOD: &str = "chain_getBlockHash";
        let value = self.call(METHOD, json!([])).await?;
        let hash = self.required_hash(METHOD, value, "the best block hash")?;
        let number = self.header_number(hash).await?;
        Ok(Header { number, hash })
    }

    /// Hash of the finalized head (`chain_getFinalizedHead`).
    pub async fn finalized_head(&self) -> Result<BlockHash> {
        const METHOD: &str = "chain_getFinalizedHead";
        let value = self.call(METHOD, json!([])).await?;
        self.required_hash(METHOD, value, "the finalized head")
    }

    /// The finalized head: its hash, and its number from `chain_getHeader([hash])`.
    pub async fn finalized_header(&self) -> Result<Header> {
        let hash = self.finalized_head().await?;
        let number = self.header_number(hash).await?;
        Ok(Header { number, hash })
    }

    /// Number of the finalized head.
    pub async fn finalized_number(&self) -> Result<u64> {
        Ok(self.finalized_header().await?.number)
    }

    /// Hash of the canonical block at height `number` (`chain_getBlockHash([n])`),
    /// `None` if the node knows no such block. A block above the finalized
    /// head may still be replaced; use [`Self::window_block_hash`] for anything
    /// that seeds the protocol.
    pub async fn block_hash(&self, number: u64) -> Result<Option<BlockHash>> {
        const METHOD: &str = "chain_getBlockHash";
        let value = self.call(METHOD, json!([number])).await?;
        if value.is_null() {
            return Ok(None);
        }
        self.parse_hash(METHOD, &value, "block hash").map(Some)
    }

    /// Hash of block `number` for use as a window's block hash: only a
    /// **finalized** block is answered, a higher one is
    /// [`SubtensorError::NotFinalized`].
    ///
    /// Window hashes seed every miner's problems (PROTOCOL.md §4.1) and the
    /// window randomness. A block that is not final can be reorganized away
    /// and replaced by another block at the same height: a miner that read the
    /// hash before the reorganization and a validator that read it after would
    /// derive different problems, and honest work would be judged wrong.
    /// Finalized blocks are never reverted, so every participant sees the
    /// same hash.
    pub async fn window_block_hash(&self, number: u64) -> Result<BlockHash> {
        let finalized = self.finalized_header().await?;
        if number > finalized.number {
            return Err(SubtensorError::NotFinalized {
                endpoint: self.endpoint.clone(),
                block: number,
                finalized: finalized.number,
            });
        }
        if number == finalized.number {
            return Ok(finalized.hash);
        }
        self.block_hash(number)
            .await?
            .ok_or_else(|| SubtensorError::MissingFinalizedBlock {
                endpoint: self.endpoint.clone(),
                block: number,
            })
    }

    /// The chain's time of block `hash` in milliseconds: `Timestamp.Now` at
    /// that block (`state_getStorage([key, hash])`, SCALE `u64`, little-endian).
    pub async fn block_timestamp_ms(&self, hash: &BlockHash) -> Result<u64> {
        const METHOD: &str = "state_getStorage";
        let params = json!([hex0x(&timestamp_now_key()), hex0x(hash)]);
        let value = self.call(METHOD, params).await?;
        if value.is_null() {
            return Err(self.null(METHOD, format!("Timestamp.Now at block {}", hex0x(hash))));
        }
        let bytes = self.parse_hex(METHOD, &value, "Timestamp.Now")?;
        let bytes: [u8; 8] = bytes.try_into().map_err(|b: Vec<u8>| {
            self.malformed(
                METHOD,
                "Timestamp.Now",
                format!("{} bytes, expected 8 (SCALE u64)", b.len()),
            )
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// A devnet's self-description (`grail_devnetInfo`, served only by
    /// [`crate::devnet`]): drand relay and key, block time, subnet,
    /// generation parameters.
    pub async fn devnet_info(&self) -> Result<crate::devnet::DevnetInfo> {
        const METHOD: &str = "grail_devnetInfo";
        let value = self.call(METHOD, json!([])).await?;
        if value.is_null() {
            return Err(self.null(METHOD, "the devnet description".into()));
        }
        serde_json::from_value(value)
            .map_err(|e| self.malformed(METHOD, "devnet info", e.to_string()))
    }

    /// The hotkeys registered on `netuid` at the finalized head, as
    /// `(uid, hotkey)` sorted by uid.
    pub async fn hotkeys(&self, netuid: u16) -> Result<Vec<(u16, AccountId)>> {
        let at = self.finalized_head().await?;
        self.hotkeys_at(netuid, &at).await
    }

    /// The hotkeys registered on `netuid` at block `at`: every
    /// `SubtensorModule.Keys(netuid, uid)` entry, enumerated with
    /// `state_getKeysPaged` and read with `state_queryStorageAt`, as
    /// `(uid, hotkey)` sorted by uid.
    pub async fn hotkeys_at(&self, netuid: u16, at: &BlockHash) -> Result<Vec<(u16, AccountId)>> {
        const KEYS: &str = "state_getKeysPaged";
        let prefix = hotkeys_prefix(netuid);
        let prefix_hex = hex0x(&prefix);
        let at_hex = hex0x(at);
        let mut out: Vec<(u16, AccountId)> = Vec::new();
        let mut start: Option<Vec<u8>> = None;
        loop {
            let params = json!([
                prefix_hex,
                KEYS_PAGE_SIZE,
                start.as_deref().map(hex0x),
                at_hex
            ]);
            let value = self.call(KEYS, params).await?;
            let Value::Array(items) = value else {
                return Err(self.malformed(
                    KEYS,
                    "keys",
                    format!("expected an array, got {value}"),
                ));
            };
            if items.len() > KEYS_PAGE_SIZE as usize {
                return Err(self.malformed(
                    KEYS,
                    "keys",
                    format!("{} keys in a page of {KEYS_PAGE_SIZE}", items.len()),
                ));
            }
            let mut page: Vec<(u16, Vec<u8>)> = Vec::with_capacity(items.len());
            for item in &items {
                let key = self.parse_hex(KEYS, item, "storage key")?;
                if key.len() != KEYS_KEY_LEN || key[..34] != prefix {
                    return Err(self.malformed(
                        KEYS,
                        "storage key",
                        format!("{} is not a Keys({netuid}, uid) key", hex0x(&key)),
                    ));
                }
                // Keys must come in increasing order after the start key, or
                // paging would never end.
                let previous = page.last().map(|(_, k)| k).or(start.as_ref());
                if previous.is_some_and(|p| key <= *p) {
                    return Err(self.malformed(
                        KEYS,
                        "storage key",
                        format!("{} is not after the previous key", hex0x(&key)),
                    ));
                }
                let uid = u16::from_le_bytes([key[34], key[35]]);
                page.push((uid, key));
            }
            if out.len() + page.len() > MAX_SUBNET_UIDS {
                return Err(SubtensorError::TooManyKeys {
                    method: KEYS,
                    endpoint: self.endpoint.clone(),
                    netuid,
                    limit: MAX_SUBNET_UIDS,
                });
            }
            if !page.is_empty() {
                let values = self.storage_values_at(&page, &at_hex).await?;
                out.extend(page.iter().map(|(uid, _)| *uid).zip(values));
            }
            if items.len() < KEYS_PAGE_SIZE as usize {
                break;
            }
            start = page.pop().map(|(_, k)| k);
        }
        out.sort_by_key(|(uid, _)| *uid);
        tracing::debug!(netuid, count = out.len(), endpoint = %self.endpoint, "read hotkeys");
        Ok(out)
    }

    /// The 32-byte account values of `keys` at block `at`, in the order of `keys`.
    async fn storage_values_at(
        &self,
        keys: &[(u16, Vec<u8>)],
        at_hex: &str,
    ) -> Result<Vec<AccountId>> {
        const METHOD: &str = "state_queryStorageAt";
        let key_hexes: Vec<String> = keys.iter().map(|(_, k)| hex0x(k)).collect();
        let value = self.call(METHOD, json!([key_hexes, at_hex])).await?;
        let Value::Array(sets) = value else {
            return Err(self.malformed(
                METHOD,
                "change sets",
                format!("expected an array, got {value}"),
            ));
        };
        let mut found: Vec<Option<AccountId>> = vec![None; keys.len()];
        for set in &sets {
            let Some(Value::Array(changes)) = set.get("changes") else {
                return Err(self.malformed(
                    METHOD,
                    "changes",
                    "missing or not an array".to_owned(),
                ));
            };
            for change in changes {
                let pair = change.as_array().filter(|p| p.len() == 2).ok_or_else(|| {
                    self.malformed(
                        METHOD,
                        "change",
                        format!("expected [key, value], got {change}"),
                    )
                })?;
                let key = self.parse_hex(METHOD, &pair[0], "storage key")?;
                let Some(index) = keys.iter().position(|(_, k)| *k == key) else {
                    return Err(self.malformed(
                        METHOD,
                        "storage key",
                        format!("{} was not asked for", hex0x(&key)),
                    ));
                };
                let uid = keys[index].0;
                if pair[1].is_null() {
                    return Err(self.null(METHOD, format!("hotkey of uid {uid}")));
                }
                let bytes = self.parse_hex(METHOD, &pair[1], "hotkey")?;
                let account: AccountId = bytes.try_into().map_err(|b: Vec<u8>| {
                    self.malformed(
                        METHOD,
                        "hotkey",
                        format!(
                            "uid {uid}: {} bytes, expected a 32-byte account id",
                            b.len()
                        ),
                    )
                })?;
                found[index] = Some(account);
            }
        }
        keys.iter()
            .zip(found)
            .map(|((uid, _), v)| {
                v.ok_or_else(|| self.null(METHOD, format!("hotkey of uid {uid} (no value)")))
            })
            .collect()
    }

    /// Number of block `hash` from `chain_getHeader([hash])`.
    async fn header_number(&self, hash: BlockHash) -> Result<u64> {
        const METHOD: &str = "chain_getHeader";
        let value = self.call(METHOD, json!([hex0x(&hash)])).await?;
        if value.is_null() {
            return Err(self.null(METHOD, format!("header of block {}", hex0x(&hash))));
        }
        let number = value
            .get("number")
            .ok_or_else(|| self.malformed(METHOD, "number", "missing from header".to_owned()))?;
        self.parse_hex_number(METHOD, number, "number")
    }

    // -- one RPC call, with retries -----------------------------------------

    /// POST one JSON-RPC request, retrying transport errors and HTTP 5xx / 429.
    /// Returns the `result` (possibly `null`).
    async fn call(&self, method: &'static str, params: Value) -> Result<Value> {
        let backoff = Backoff {
            attempts: self.options.max_attempts,
            initial: self.options.initial_backoff,
            max: MAX_BACKOFF,
        };
        backoff
            .run(
                SubtensorError::is_retryable,
                |attempt, wait, e| {
                    tracing::warn!(
                        method,
                        endpoint = %self.endpoint,
                        attempt,
                        backoff_ms = wait.as_millis() as u64,
                        error = %e,
                        "subtensor request failed; retrying"
                    );
                },
                || self.call_once(method, &params),
            )
            .await
    }

    async fn call_once(&self, method: &'static str, params: &Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let transport = |e: reqwest::Error| self.transport(method, e);
        let mut response = self
            .http
            .post(&self.endpoint)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(SubtensorError::HttpStatus {
                method,
                endpoint: self.endpoint.clone(),
                status: status.as_u16(),
            });
        }
        let too_large = || SubtensorError::ResponseTooLarge {
            method,
            endpoint: self.endpoint.clone(),
            limit: MAX_RESPONSE_BYTES,
        };
        let bytes = read_body_capped(&mut response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => too_large(),
                BodyError::Read(e) => transport(e),
            })?;
        let parsed: RpcResponse =
            serde_json::from_slice(&bytes).map_err(|e| SubtensorError::InvalidJson {
                method,
                endpoint: self.endpoint.clone(),
                detail: e.to_string(),
            })?;
        if let Some(error) = parsed.error {
            return Err(SubtensorError::Rpc {
                method,
                endpoint: self.endpoint.clone(),
                code: error.code,
                message: error.message,
            });
        }
        if parsed.id != json!(id) {
            return Err(SubtensorError::InvalidJson {
                method,
                endpoint: self.endpoint.clone(),
                detail: format!("response id {} does not match request id {id}", parsed.id),
            });
        }
        Ok(parsed.result)
    }

    // -- errors and parsing ---------------------------------------------------

    fn transport(&self, method: &'static str, e: reqwest::Error) -> SubtensorError {
        if e.is_timeout() {
            SubtensorError::Timeout {
                method,
                endpoint: self.endpoint.clone(),
                timeout_ms: self.options.timeout.as_millis(),
            }
        } else {
            SubtensorError::Transport {
                method,
                endpoint: self.endpoint.clone(),
                source: e,
            }
        }
    }

    fn null(&self, method: &'static str, what: String) -> SubtensorError {
        SubtensorError::NullResult {
            method,
            endpoint: self.endpoint.clone(),
            what,
        }
    }

    fn malformed(
        &self,
        method: &'static str,
        field: &'static str,
        detail: String,
    ) -> SubtensorError {
        SubtensorError::Malformed {
            method,
            endpoint: self.endpoint.clone(),
            field,
            detail,
        }
    }

    /// A `0x`-prefixed hex string as bytes.
    fn parse_hex(
        &self,
        method: &'static str,
        value: &Value,
        field: &'static str,
    ) -> Result<Vec<u8>> {
        let s = value.as_str().ok_or_else(|| {
            self.malformed(method, field, format!("expected a hex string, got {value}"))
        })?;
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| self.malformed(method, field, format!("{s:?} has no 0x prefix")))?;
        hex::decode(digits).map_err(|e| self.malformed(method, field, format!("{s:?}: {e}")))
    }

    fn parse_hash(
        &self,
        method: &'static str,
        value: &Value,
        field: &'static str,
    ) -> Result<BlockHash> {
        let bytes = self.parse_hex(method, value, field)?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            self.malformed(method, field, format!("{} bytes, expected 32", b.len()))
        })
    }

    fn required_hash(&self, method: &'static str, value: Value, what: &str) -> Result<BlockHash> {
        if value.is_null() {
            return Err(self.null(method, what.to_owned()));
        }
        self.parse_hash(method, &value, "block hash")
    }

    /// A `0x`-prefixed hex number (as in header `number`) that fits a `u64`.
    fn parse_hex_number(
        &self,
        method: &'static str,
        value: &Value,
        field: &'static str,
    ) -> Result<u64> {
        let s = value.as_str().ok_or_else(|| {
            self.malformed(method, field, format!("expected a hex string, got {value}"))
        })?;
        let bad = |why: &str| self.malformed(method, field, format!("{s:?}: {why}"));
        if s.len() > MAX_HEX_NUMBER_LEN {
            return Err(bad("too long"));
        }
        let digits = s.strip_prefix("0x").ok_or_else(|| bad("no 0x prefix"))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("not a hex number"));
        }
        u64::from_str_radix(digits, 16).map_err(|_| bad("does not fit in u64"))
    }
}
