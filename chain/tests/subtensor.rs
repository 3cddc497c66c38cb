//! The subtensor client against a loopback JSON-RPC node: heads, block
//! hashes, finalized window hashes, timestamps, the metagraph, and one test
//! per way a node can fail or lie.
#[path = "common/fake_subtensor.rs"]
mod fake_subtensor;

use std::time::Duration;

use fake_subtensor::{
    dead_endpoint, fake_block_hash, ChainState, FakeSubtensor, Fault, BLOCK_MS, GENESIS_MS,
    SUBTENSOR_KEYS_PREFIX, TIMESTAMP_NOW_KEY,
};
use grail_chain::subtensor::{
    hotkey_key, hotkeys_prefix, resolve_endpoint, storage_prefix, timestamp_now_key, twox128,
    ClientOptions, Header, SubtensorClient, SubtensorError, KEYS_PAGE_SIZE,
};
use serde_json::json;

/// Retries without long waits.
fn fast() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
    }
}

/// A node with blocks 0..=100, block 90 finalized, and its client.
fn node() -> (FakeSubtensor, SubtensorClient) {
    let node = FakeSubtensor::start(ChainState::new(101, 90));
    let client = SubtensorClient::with_options(&node.url(), fast()).unwrap();
    (node, client)
}

#[test]
fn twox128_known_answers() {
    assert_eq!(
        hex::encode(twox128(b"System")),
        "26aa394eea5630e07c48ae0c9558cef7"
    );
    assert_eq!(hex::encode(timestamp_now_key()), TIMESTAMP_NOW_KEY);
    assert_eq!(
        hex::encode(storage_prefix("Timestamp", "Now")),
        "f0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb"
    );
    // Computed with an independent xxHash64 implementation.
    assert_eq!(
        hex::encode(twox128(b"SubtensorModule")),
        "658faa385070e074c85bf6b568cf0555"
    );
    assert_eq!(
        hex::encode(storage_prefix("SubtensorModule", "Keys")),
        SUBTENSOR_KEYS_PREFIX
    );
}

#[test]
fn hotkey_keys_are_prefix_netuid_uid_little_endian() {
    let key = hotkey_key(0x0102, 0x0a0b);
    assert_eq!(key.len(), 36);
    assert_eq!(&key[..34], &hotkeys_prefix(0x0102)[..]);
    assert_eq!(hex::encode(&key[32..]), "02010b0a");
}

#[test]
fn endpoint_resolution() {
    let finney = "https://entrypoint-finney.opentensor.ai:443";
    assert_eq!(resolve_endpoint(None, None).unwrap(), finney);
    assert_eq!(resolve_endpoint(Some("finney"), None).unwrap(), finney);
    assert_eq!(
        resolve_endpoint(Some("test"), None).unwrap(),
        "https://test.finney.opentensor.ai:443"
    );
    assert_eq!(
        resolve_endpoint(Some("local"), None).unwrap(),
        "http://127.0.0.1:9944"
    );
    // The endpoint wins over the network.
    assert_eq!(
        resolve_endpoint(Some("finney"), Some("wss://node.example:443")).unwrap(),
        "https://node.example:443"
    );
    assert_eq!(
        resolve_endpoint(Some("ws://127.0.0.1:9945"), None).unwrap(),
        "http://127.0.0.1:9945"
    );
    assert!(matches!(
        resolve_endpoint(Some("nakamoto"), None),
        Err(SubtensorError::UnknownNetwork { .. })
    ));
    assert!(matches!(
        resolve_endpoint(None, Some("node.example:443")),
        Err(SubtensorError::InvalidEndpoint { .. })
    ));
    assert!(matches!(
        resolve_endpoint(None, Some("ftp://node.example")),
        Err(SubtensorError::InvalidEndpoint { .. })
    ));
}

#[tokio::test]
async fn best_head_is_number_and_hash_of_one_block() {
    let (_node, client) = node();
    let head = client.best_head().await.unwrap();
    assert_eq!(
        head,
        Header {
            number: 100,
            hash: fake_block_hash(100)
        }
    );
}

#[tokio::test]
async fn finalized_head_and_number() {
    let (node, client) = node();
    assert_eq!(client.finalized_head().await.unwrap(), fake_block_hash(90));
    assert_eq!(client.finalized_number().await.unwrap(), 90);
    node.state().finalize(95);
    assert_eq!(
        client.finalized_header().await.unwrap(),
        Header {
            number: 95,
            hash: fake_block_hash(95)
        }
    );
}

#[tokio::test]
async fn block_hash_known_and_unknown() {
    let (_node, client) = node();
    assert_eq!(
        client.block_hash(0).await.unwrap(),
        Some(fake_block_hash(0))
    );
    assert_eq!(
        client.block_hash(42).await.unwrap(),
        Some(fake_block_hash(42))
    );
    assert_eq!(client.block_hash(101).await.unwrap(), None);
    assert_eq!(client.block_hash(u64::MAX).await.unwrap(), None);
}

#[tokio::test]
async fn window_block_hash_only_for_finalized_blocks() {
    let (_node, client) = node();
    assert_eq!(
        client.window_block_hash(60).await.unwrap(),
        fake_block_hash(60)
    );
    assert_eq!(
        client.window_block_hash(90).await.unwrap(),
        fake_block_hash(90)
    );
    // Block 91 exists but is not final.
    match client.window_block_hash(91).await {
        Err(SubtensorError::NotFinalized {
            block: 91,
            finalized: 90,
            ..
        }) => {}
        other => panic!("expected NotFinalized, got {other:?}"),
    }
}

#[tokio::test]
async fn window_block_hash_missing_below_finalized_is_an_error() {
    let (node, client) = node();
    // finalized head, its header, then a null for the finalized block 60.
    node.push_fault(Fault::Result(json!(fake_subtensor_hash(90))));
    node.push_fault(Fault::Result(json!({"number": "0x5a"})));
    node.push_fault(Fault::Result(json!(null)));
    assert!(matches!(
        client.window_block_hash(60).await,
        Err(SubtensorError::MissingFinalizedBlock { block: 60, .. })
    ));
}

fn fake_subtensor_hash(n: u64) -> String {
    format!("0x{}", hex::encode(fake_block_hash(n)))
}

#[tokio::test]
async fn block_timestamp_is_scale_u64_little_endian() {
    let (_node, client) = node();
    let ts = client
        .block_timestamp_ms(&fake_block_hash(30))
        .await
        .unwrap();
    assert_eq!(ts, GENESIS_MS + 30 * BLOCK_MS);
}

#[tokio::test]
async fn block_timestamp_wrong_length_or_null_is_typed() {
    let (node, client) = node();
    node.push_fault(Fault::Result(json!("0x01020304")));
    match client.block_timestamp_ms(&fake_block_hash(30)).await {
        Err(SubtensorError::Malformed {
            method: "state_getStorage",
            field: "Timestamp.Now",
            ..
        }) => {}
        other => panic!("expected Malformed, got {other:?}"),
    }
    node.push_fault(Fault::Result(json!(null)));
    assert!(matches!(
        client.block_timestamp_ms(&fake_block_hash(30)).await,
        Err(SubtensorError::NullResult {
            method: "state_getStorage",
            ..
        })
    ));
}

#[tokio::test]
async fn rpc_error_object_is_typed() {
    let (node, client) = node();
    node.push_fault(Fault::RpcError(-32601, "Method not found".to_owned()));
    let err = client.finalized_head().await.unwrap_err();
    match &err {
        SubtensorError::Rpc {
            method,
            code,
            message,
            endpoint,
        } => {
            assert_eq!(*method, "chain_getFinalizedHead");
            assert_eq!(*code, -32601);
            assert_eq!(message, "Method not found");
            assert_eq!(*endpoint, node.url());
        }
        other => panic!("expected Rpc, got {other:?}"),
    }
    // An RPC error is an answer: not retried.
    assert_eq!(node.requests().len(), 1);
    let text = err.to_string();
    assert!(
        text.contains("chain_getFinalizedHead") && text.contains(&node.url()),
        "{text}"
    );
}

#[tokio::test]
async fn http_500_then_success_is_retried() {
    let (node, client) = node();
    node.push_fault(Fault::Status(500));
    node.push_fault(Fault::Status(503));
    assert_eq!(client.finalized_head().await.unwrap(), fake_block_hash(90));
    assert_eq!(node.requests().len(), 3);
}

#[tokio::test]
async fn http_500_every_time_gives_up_after_max_attempts() {
    let (node, client) = node();
    for _ in 0..5 {
        node.push_fault(Fault::Status(500));
    }
    assert!(matches!(
        client.finalized_head().await,
        Err(SubtensorError::HttpStatus { status: 500, .. })
    ));
    assert_eq!(node.requests().len(), fast().max_attempts as usize);
}

#[tokio::test]
async fn http_404_is_not_retried() {
    let (node, client) = node();
    node.push_fault(Fault::Status(404));
    assert!(matches!(
        client.finalized_head().await,
        Err(SubtensorError::HttpStatus { status: 404, .. })
    ));
    assert_eq!(node.requests().len(), 1);
}

#[tokio::test]
async fn invalid_json_is_typed() {
    let (node, client) = node();
    node.push_fault(Fault::RawBody("<html>bad gateway</html>".to_owned()));
    assert!(matches!(
        client.block_hash(1).await,
        Err(SubtensorError::InvalidJson {
            method: "chain_getBlockHash",
            ..
        })
    ));
}

#[tokio::test]
async fn mismatched_response_id_is_typed() {
    let (node, client) = node();
    node.push_fault(Fault::RawBody(
        r#"{"jsonrpc":"2.0","id":999999,"result":null}"#.to_owned(),
    ));
    assert!(matches!(
        client.block_hash(1).await,
        Err(SubtensorError::InvalidJson { .. })
    ));
}

#[tokio::test]
async fn oversized_response_is_refused() {
    let (node, client) = node();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":"0x{}"}}"#,
        "00".repeat(grail_chain::subtensor::MAX_RESPONSE_BYTES / 2 + 1)
    );
    node.push_fault(Fault::RawBody(body));
    assert!(matches!(
        client.block_hash(1).await,
        Err(SubtensorError::ResponseTooLarge { .. })
    ));
}

#[tokio::test]
async fn timeout_is_typed() {
    let node = FakeSubtensor::start(ChainState::new(10, 5));
    let options = ClientOptions {
        timeout: Duration::from_millis(200),
        max_attempts: 1,
        initial_backoff: Duration::from_millis(10),
    };
    let client = SubtensorClient::with_options(&node.url(), options).unwrap();
    node.push_fault(Fault::Delay(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    match client.finalized_head().await {
        Err(SubtensorError::Timeout {
            timeout_ms: 200, ..
        }) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn dead_endpoint_is_a_transport_error_naming_it() {
    let url = dead_endpoint();
    let client = SubtensorClient::with_options(&url, fast()).unwrap();
    let err = client.finalized_head().await.unwrap_err();
    assert!(matches!(err, SubtensorError::Transport { .. }), "{err:?}");
    assert!(err.is_unreachable());
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn malformed_hashes_and_numbers_are_typed() {
    let (node, client) = node();
    for bad in [json!("0x1234"), json!("1111"), json!("0xzz"), json!(7)] {
        node.push_fault(Fault::Result(bad.clone()));
        match client.finalized_head().await {
            Err(SubtensorError::Malformed {
                method: "chain_getFinalizedHead",
                ..
            }) => {}
            other => panic!("{bad}: expected Malformed, got {other:?}"),
        }
    }
    node.push_fault(Fault::Result(json!(null)));
    assert!(matches!(
        client.finalized_head().await,
        Err(SubtensorError::NullResult {
            method: "chain_getFinalizedHead",
            ..
        })
    ));
    for bad in [
        json!({"number": 5}),
        json!({"number": "5"}),
        json!({"number": "0x"}),
        json!({"number": "0x1ffffffffffffffff"}),
        json!({"parentHash": "0x00"}),
    ] {
        node.push_fault(Fault::Result(json!(fake_subtensor_hash(90))));
        node.push_fault(Fault::Result(bad.clone()));
        match client.finalized_number().await {
            Err(SubtensorError::Malformed {
                method: "chain_getHeader",
                field: "number",
                ..
            }) => {}
            other => panic!("{bad}: expected Malformed number, got {other:?}"),
        }
    }
}

fn hotkey_of(uid: u16) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..2].copy_from_slice(&uid.to_be_bytes());
    h[31] = 0xaa;
    h
}

#[tokio::test]
async fn hotkeys_of_a_subnet_sorted_by_uid() {
    let (node, client) = node();
    {
        let mut s = node.state();
        // uid 256 sorts before uid 1 by key bytes (little-endian).
        for uid in [5u16, 0, 256, 1, 3] {
            s.set_hotkey(81, uid, &hotkey_of(uid));
        }
        // Other subnets are not part of netuid 81.
        s.set_hotkey(80, 2, &[0xbb; 32]);
        s.set_hotkey(82, 0, &[0xcc; 32]);
    }
    let hotkeys = client.hotkeys(81).await.unwrap();
    let want: Vec<(u16, [u8; 32])> = [0u16, 1, 3, 5, 256]
        .iter()
        .map(|&u| (u, hotkey_of(u)))
        .collect();
    assert_eq!(hotkeys, want);
    assert_eq!(client.hotkeys(83).await.unwrap(), vec![]);
}

#[tokio::test]
async fn hotkeys_more_than_a_page() {
    let (node, client) = node();
    let n = KEYS_PAGE_SIZE as u16 * 2 + 7;
    {
        let mut s = node.state();
        for uid in 0..n {
            s.set_hotkey(1, uid, &hotkey_of(uid));
        }
    }
    let hotkeys = client.hotkeys_at(1, &fake_block_hash(90)).await.unwrap();
    assert_eq!(hotkeys.len(), n as usize);
    assert!(hotkeys
        .iter()
        .enumerate()
        .all(|(i, (uid, hk))| *uid as usize == i && *hk == hotkey_of(*uid)));
    let pages = node
        .requests()
        .iter()
        .filter(|m| *m == "state_getKeysPaged")
        .count();
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn hotkeys_malformed_value_is_typed() {
    let (node, client) = node();
    {
        let mut s = node.state();
        s.set_hotkey(81, 0, &hotkey_of(0));
        s.set_hotkey(81, 7, &[0x55; 31]);
    }
    match client.hotkeys(81).await {
        Err(SubtensorError::Malformed {
            method: "state_queryStorageAt",
            field: "hotkey",
            detail,
            ..
        }) => {
            assert!(detail.contains("uid 7"), "{detail}");
        }
        other => panic!("expected Malformed hotkey, got {other:?}"),
    }
}

#[tokio::test]
async fn hotkeys_foreign_or_unordered_keys_are_typed() {
    let (node, client) = node();
    let foreign = format!("0x{}", hex::encode(hotkey_key(80, 1)));
    node.push_fault(Fault::Result(json!([foreign])));
    assert!(matches!(
        client.hotkeys_at(81, &fake_block_hash(90)).await,
        Err(SubtensorError::Malformed {
            method: "state_getKeysPaged",
            field: "storage key",
            ..
        })
    ));
    let k = |uid| format!("0x{}", hex::encode(hotkey_key(81, uid)));
    node.push_fault(Fault::Result(json!([k(2), k(1)])));
    assert!(matches!(
        client.hotkeys_at(81, &fake_block_hash(90)).await,
        Err(SubtensorError::Malformed {
            method: "state_getKeysPaged",
            ..
        })
    ));
}
