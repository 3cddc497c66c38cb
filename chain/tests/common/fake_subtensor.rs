//! A loopback subtensor node for tests: JSON-RPC 2.0 over HTTP POST on
//! `127.0.0.1`, answering the methods grail uses from a [`ChainState`] the
//! test owns and may change while the node runs (add blocks, move the
//! finalized head, write storage), plus injected [`Fault`]s (HTTP statuses,
//! raw bodies, delays, JSON-RPC errors, arbitrary results).
//!
//! It depends only on tokio and serde_json and computes no storage key
//! itself (keys are constants or built by the test), so it checks the
//! client rather than mirroring it. A devnet can drive the same state:
//! [`ChainState::push_block`] and [`ChainState::finalize`].
//!
//! Served: `chain_getBlockHash([] | [n])`, `chain_getHeader([] | [hash])`,
//! `chain_getFinalizedHead`, `state_getStorage([key, at?])`,
//! `state_getKeysPaged([prefix, count, start?, at?])`,
//! `state_queryStorageAt([[keys], at?])`. Storage is the same at every block,
//! except `Timestamp.Now`, which is each block's own time.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `twox128("Timestamp") ++ twox128("Now")`.
pub const TIMESTAMP_NOW_KEY: &str =
    "f0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb";
/// `twox128("SubtensorModule") ++ twox128("Keys")`.
pub const SUBTENSOR_KEYS_PREFIX: &str =
    "658faa385070e074c85bf6b568cf05559f99a2ce711f3a31b2fc05604c93f179";
/// Time of block 0, ms since the Unix epoch.
pub const GENESIS_MS: u64 = 1_700_000_000_000;
/// Block time of the fake chain.
pub const BLOCK_MS: u64 = 12_000;

/// Largest request head and body the node reads.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// One block of the canonical chain.
#[derive(Debug, Clone)]
pub struct FakeBlock {
    pub hash: [u8; 32],
    pub timestamp_ms: u64,
}

/// Something to do instead of (or before) answering the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this HTTP status and an empty body.
    Status(u16),
    /// Answer 200 with this body, verbatim.
    RawBody(String),
    /// Wait, then answer normally.
    Delay(Duration),
    /// Answer with a JSON-RPC error object.
    RpcError(i64, String),
    /// Answer with this `result`, whatever was asked.
    Result(Value),
}

/// The chain the node serves.
#[derive(Debug, Default)]
pub struct ChainState {
    /// Canonical chain, indexed by block number.
    pub blocks: Vec<FakeBlock>,
    /// Number of the finalized head.
    pub finalized: u64,
    /// Storage, the same at every block (keys and values are raw bytes).
    pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Applied one per request, in order.
    pub faults: VecDeque<Fault>,
    /// Method of every request received, in order.
    pub requests: Vec<String>,
}

/// The hash the fake chain gives block `n`: `n` big-endian, then `0x11` bytes.
pub fn fake_block_hash(n: u64) -> [u8; 32] {
    let mut h = [0x11u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

impl ChainState {
    /// Blocks `0..len`, block `finalized` finalized.
    pub fn new(len: u64, finalized: u64) -> Self {
        let mut state = ChainState::default();
        for _ in 0..len {
            state.push_block();
        }
        state.finalize(finalized);
        state
    }

    /// Append a block; returns its number.
    pub fn push_block(&mut self) -> u64 {
        let n = self.blocks.len() as u64;
        self.blocks.push(FakeBlock {
            hash: fake_block_hash(n),
            timestamp_ms: GENESIS_MS + n * BLOCK_MS,
        });
        n
    }

    /// Move the finalized head to block `n` (which must exist).
    pub fn finalize(&mut self, n: u64) {
        assert!(n < self.blocks.len() as u64, "finalize past the best block");
        self.finalized = n;
    }

    /// Store the 32-byte hotkey of `(netuid, uid)` in `SubtensorModule.Keys`.
    pub fn set_hotkey(&mut self, netuid: u16, uid: u16, hotkey: &[u8]) {
        let mut key = hex::decode(SUBTENSOR_KEYS_PREFIX).unwrap();
        key.extend_from_slice(&netuid.to_le_bytes());
        key.extend_from_slice(&uid.to_le_bytes());
        self.storage.insert(key, hotkey.to_vec());
    }

    fn best(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    fn by_hash(&self, hash: &str) -> Option<(u64, &FakeBlock)> {
        let bytes = hex::decode(hash.strip_prefix("0x")?).ok()?;
        self.blocks
            .iter()
            .enumerate()
            .find(|(_, b)| b.hash[..] == bytes[..])
            .map(|(n, b)| (n as u64, b))
    }

    fn header(&self, n: u64) -> Value {
        let parent = if n == 0 {
            [0u8; 32]
        } else {
            self.blocks[n as usize - 1].hash
        };
        json!({
            "parentHash": hex0x(&parent),
            "number": format!("0x{n:x}"),
            "stateRoot": hex0x(&[0x22; 32]),
            "extrinsicsRoot": hex0x(&[0x33; 32]),
            "digest": {"logs": []},
        })
    }

    /// The block `at` names (`null` or absent: the best block).
    fn at(&self, at: Option<&Value>) -> Result<(u64, &FakeBlock), (i64, String)> {
        match at {
            None | Some(Value::Null) => {
                let n = self.best();
                Ok((n, &self.blocks[n as usize]))
            }
            Some(Value::String(h)) => self
                .by_hash(h)
                .ok_or((4003, format!("Client error: UnknownBlock: {h}"))),
            Some(other) => Err((-32602, format!("invalid block {other}"))),
        }
    }

    /// The JSON-RPC result of `method(params)`, or an error (code, message).
    fn answer(&self, method: &str, params: &[Value]) -> Result<Value, (i64, String)> {
        match method {
            "chain_getBlockHash" => match params.first() {
                None | Some(Value::Null) => {
                    Ok(json!(hex0x(&self.blocks[self.best() as usize].hash)))
                }
                Some(Value::Number(n)) => {
                    let n = n
                        .as_u64()
                        .ok_or((-32602, "invalid block number".to_owned()))?;
                    Ok(self
                        .blocks
                        .get(n as usize)
                        .map_or(Value::Null, |b| json!(hex0x(&b.hash))))
                }
                Some(other) => Err((-32602, format!("invalid block number {other}"))),
            },
            "chain_getHeader" => match params.first() {
                None | Some(Value::Null) => Ok(self.header(self.best())),
                Some(Value::String(h)) => {
                    Ok(self.by_hash(h).map_or(Value::Null, |(n, _)| self.header(n)))
                }
                Some(other) => Err((-32602, format!("invalid hash {other}"))),
            },
            "chain_getFinalizedHead" => {
                Ok(json!(hex0x(&self.blocks[self.finalized as usize].hash)))
            }
            "state_getStorage" => {
                let key = param_bytes(params.first())?;
                let (_, block) = self.at(params.get(1))?;
                if hex::encode(&key) == TIMESTAMP_NOW_KEY {
                    return Ok(json!(hex0x(&block.timestamp_ms.to_le_bytes())));
                }
                Ok(self
                    .storage
                    .get(&key)
                    .map_or(Value::Null, |v| json!(hex0x(v))))
            }
            "state_getKeysPaged" => {
                let prefix = param_bytes(params.first())?;
                let count = params
                    .get(1)
                    .and_then(Value::as_u64)
                    .ok_or((-32602, "invalid count".to_owned()))?;
                let start = match params.get(2) {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(param_bytes(Some(v))?),
                };
                self.at(params.get(3))?;
                let keys: Vec<Value> = self
                    .storage
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .filter(|k| start.as_ref().is_none_or(|s| *k > s))
                    .take(count as usize)
                    .map(|k| json!(hex0x(k)))
                    .collect();
                Ok(Value::Array(keys))
            }
            "state_queryStorageAt" => {
                let Some(Value::Array(keys)) = params.first() else {
                    return Err((-32602, "expected a list of keys".to_owned()));
                };
                let (_, block) = self.at(params.get(1))?;
                let mut changes = Vec::new();
                for k in keys {
                    let key = param_bytes(Some(k))?;
                    let value = self
                        .storage
                        .get(&key)
                        .map_or(Value::Null, |v| json!(hex0x(v)));
                    changes.push(json!([hex0x(&key), value]));
                }
                Ok(json!([{"block": hex0x(&block.hash), "changes": changes}]))
            }
            _ => Err((-32601, format!("Method not found: {method}"))),
        }
    }
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn param_bytes(v: Option<&Value>) -> Result<Vec<u8>, (i64, String)> {
    v.and_then(Value::as_str)
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|s| hex::decode(s).ok())
        .ok_or((-32602, format!("invalid hex parameter {v:?}")))
}

/// A running fake node; stops when dropped.
pub struct FakeSubtensor {
    addr: SocketAddr,
    state: Arc<Mutex<ChainState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeSubtensor {
    /// Serve `state` on a free loopback port, on a thread of its own (so
    /// both async tests and tests that block on a child process can use it).
    pub fn start(state: ChainState) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(state));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(serve(stream, Arc::clone(&shared)));
                            }
                        }
                    }
                }
            });
        });
        FakeSubtensor {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The served state, to inspect or change.
    pub fn state(&self) -> MutexGuard<'_, ChainState> {
        self.state.lock().unwrap()
    }

    /// Queue a fault for the next request.
    pub fn push_fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Methods received so far.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }
}

impl Drop for FakeSubtensor {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A free loopback URL nothing listens on.
pub fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Answer one HTTP request on `stream`, then close it.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<ChainState>>) {
    let Some(body) = read_request(&mut stream).await else {
        return;
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = json!({"jsonrpc": "2.0", "id": null,
                             "error": {"code": -32700, "message": format!("Parse error: {e}")}});
            write_response(&mut stream, 200, &err.to_string()).await;
            return;
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let params = match request.get("params") {
        Some(Value::Array(p)) => p.clone(),
        _ => Vec::new(),
    };
    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(method.clone());
        s.faults.pop_front()
    };
    let outcome = match fault {
        Some(Fault::Status(code)) => {
            write_response(&mut stream, code, "").await;
            return;
        }
        Some(Fault::RawBody(body)) => {
            write_response(&mut stream, 200, &body).await;
            return;
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            state.lock().unwrap().answer(&method, &params)
        }
        Some(Fault::RpcError(code, message)) => Err((code, message)),
        Some(Fault::Result(v)) => Ok(v),
        None => state.lock().unwrap().answer(&method, &params),
    };
    let response = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    };
    write_response(&mut stream, 200, &response.to_string()).await;
}

/// The body of one HTTP/1.1 request with a Content-Length.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())?;
    if length > MAX_BODY {
        return None;
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(body)
}

async fn write_response(stream: &mut TcpStream, status: u16, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
