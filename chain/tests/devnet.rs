//! The devnet, started in-process and read with the production clients: its
//! beacons verify under the devnet chain with `DrandClient` and
//! `grail_core::beacon::verify`, a quicknet-pinned client rejects it, and
//! `SubtensorClient` reads its heads, hashes, timestamps and hotkeys.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grail_chain::devnet::beacon::{public_key, DevnetBeacon};
use grail_chain::devnet::chain::{DevnetChain, FINALITY_LAG};
use grail_chain::devnet::{default_hotkeys, Devnet, DevnetConfig, DEFAULT_NETUID};
use grail_chain::drand::{ClientConfig, DrandClient, DrandError, RelayError};
use grail_chain::subtensor::{ClientOptions, SubtensorClient};
use grail_core::beacon::{verify, BeaconError, DrandChain};
use grail_core::keys::Keypair;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fast_drand() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(5),
        attempts: 1,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(10),
        check_info: true,
    }
}

fn fast_subtensor() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 1,
        initial_backoff: Duration::from_millis(10),
    }
}

/// A devnet whose genesis was 300 s ago: ~100 drand rounds, ~300 blocks.
fn config() -> DevnetConfig {
    DevnetConfig {
        genesis_time: Some(unix_now() - 300),
        ..DevnetConfig::default()
    }
}

#[test]
fn devnet_key_is_deterministic_from_the_seed() {
    assert_eq!(public_key(b"seed-a"), public_key(b"seed-a"));
    assert_ne!(public_key(b"seed-a"), public_key(b"seed-b"));
    let a = DevnetBeacon::from_seed(b"seed-a", 1_700_000_000, 3).unwrap();
    let b = DevnetBeacon::from_seed(b"seed-a", 1_700_000_000, 3).unwrap();
    assert_eq!(a.chain(), b.chain());
    assert_eq!(a.chain().public_key(), &public_key(b"seed-a")[..]);
    assert_eq!(a.sign(7), b.sign(7));
    // The chain pinned by hand from the public key is the same chain.
    let pinned = DrandChain::devnet(&public_key(b"seed-a"), 1_700_000_000, 3).unwrap();
    assert_eq!(&pinned, a.chain());
}

#[test]
fn devnet_signatures_verify_with_grail_core_and_only_for_their_round() {
    let b = DevnetBeacon::from_seed(b"grail-devnet", 1_700_000_000, 3).unwrap();
    for round in [1, 2, 1000] {
        let beacon = b.sign(round);
        assert_eq!(beacon.signature.len(), 48);
        verify(b.chain(), &beacon).unwrap();
    }
    let mut wrong = b.sign(5);
    wrong.round = 6;
    assert!(matches!(
        verify(b.chain(), &wrong),
        Err(BeaconError::BadSignature { round: 6, .. })
    ));
    let other = DevnetBeacon::from_seed(b"other-seed", 1_700_000_000, 3).unwrap();
    assert!(matches!(
        verify(other.chain(), &b.sign(5)),
        Err(BeaconError::BadSignature { .. })
    ));
}

#[tokio::test]
async fn drand_client_fetches_and_verifies_devnet_rounds() {
    let devnet = Devnet::start(config()).await.unwrap();
    let chain = devnet.drand_chain().clone();
    let client = DrandClient::new(chain.clone(), vec![devnet.drand_url()], fast_drand()).unwrap();
    let v = client.fetch(3).await.unwrap();
    assert_eq!(v.round(), 3);
    assert_eq!(v.chain_hash(), chain.hash());
    let latest = client.latest().await.unwrap();
    let expected = chain.schedule().round_at(unix_now());
    assert!(latest.round() + 1 >= expected && latest.round() <= expected);
    // Re-verified independently of the client.
    verify(&chain, latest.beacon()).unwrap();
    devnet.shutdown().await;
}

#[tokio::test]
async fn devnet_relay_serves_404_for_future_rounds() {
    let devnet = Devnet::start(config()).await.unwrap();
    let client = DrandClient::new(
        devnet.drand_chain().clone(),
        vec![devnet.drand_url()],
        fast_drand(),
    )
    .unwrap();
    let err = client.fetch(1_000_000).await.unwrap_err();
    let DrandError::AllRelaysFailed { failures, .. } = err else {
        panic!("unexpected error {err}");
    };
    assert!(matches!(
        failures[0].error,
        RelayError::Status { status: 404 }
    ));
}

#[tokio::test]
async fn quicknet_client_rejects_the_devnet_relay() {
    let devnet = Devnet::start(config()).await.unwrap();
    // Checking /info: the relay has no quicknet chain (404 on quicknet's hash).
    let client = DrandClient::new(
        DrandChain::quicknet(),
        vec![devnet.drand_url()],
        fast_drand(),
    )
    .unwrap();
    assert!(client.fetch(3).await.is_err());
    // Even asked by the devnet hash path, a devnet beacon fails quicknet's key.
    let beacon = devnet.beacon().sign(3);
    assert!(matches!(
        verify(&DrandChain::quicknet(), &beacon),
        Err(BeaconError::BadSignature { .. })
    ));
    // A client pinned to a devnet with another seed rejects the relay's info.
    let other = DevnetBeacon::from_seed(
        b"another seed",
        devnet.drand_chain().genesis_time(),
        devnet.drand_chain().period(),
    )
    .unwrap();
    let client = DrandClient::new(
        other.chain().clone(),
        vec![devnet.drand_url()],
        fast_drand(),
    )
    .unwrap();
    assert!(client.fetch(3).await.is_err());
}

#[tokio::test]
async fn subtensor_client_reads_the_devnet_chain() {
    let cfg = config();
    let genesis_ms = cfg.genesis_time.unwrap() * 1000;
    let devnet = Devnet::start(cfg).await.unwrap();
    let client = SubtensorClient::with_options(&devnet.chain_url(), fast_subtensor()).unwrap();
    let local = DevnetChain::new(b"grail-devnet", genesis_ms, 1000);

    let head = client.best_head().await.unwrap();
    assert!((299..=302).contains(&head.number), "best {}", head.number);
    let finalized = client.finalized_number().await.unwrap();
    assert!(finalized + FINALITY_LAG >= head.number && finalized < head.number);
    assert_eq!(
        client.finalized_head().await.unwrap(),
        local.block_hash(finalized)
    );

    let h10 = client.block_hash(10).await.unwrap().unwrap();
    assert_eq!(h10, local.block_hash(10));
    assert_ne!(h10, local.block_hash(11));
    assert_eq!(client.block_hash(1_000_000).await.unwrap(), None);
    assert_eq!(
        client.block_timestamp_ms(&h10).await.unwrap(),
        genesis_ms + 10 * 1000
    );

    let hotkeys = client.hotkeys(DEFAULT_NETUID).await.unwrap();
    let want: Vec<(u16, [u8; 32])> = ["alice", "bob", "charlie"]
        .iter()
        .zip(0u16..)
        .map(|(n, uid)| (uid, *Keypair::dev(n).unwrap().hotkey().as_bytes()))
        .collect();
    assert_eq!(hotkeys, want);
    assert_eq!(default_hotkeys().len(), 3);
    assert!(client.hotkeys(2).await.unwrap().is_empty());
    devnet.shutdown().await;
}

#[test]
fn devnet_chain_is_deterministic_and_clocked() {
    let a = DevnetChain::new(b"s", 1_000_000, 500);
    let b = DevnetChain::new(b"s", 1_000_000, 500);
    let c = DevnetChain::new(b"t", 1_000_000, 500);
    assert_eq!(a.block_hash(5), b.block_hash(5));
    assert_ne!(a.block_hash(5), c.block_hash(5));
    assert_eq!(a.best(999_999), 0);
    assert_eq!(a.best(1_000_000 + 499), 0);
    assert_eq!(a.best(1_000_000 + 500), 1);
    assert_eq!(a.finalized(1_000_000 + 500 * 10), 8);
    assert_eq!(a.timestamp_ms(4), 1_002_000);
}

#[test]
fn devnet_chain_hash_lookup_is_bounded() {
    use grail_chain::devnet::chain::MAX_BLOCK_LOOKUP;
    // Genesis at the epoch: billions of blocks; a lookup still returns quickly.
    let chain = DevnetChain::new(b"s", 0, 1000);
    let best = chain.best(unix_now() * 1000);
    assert_eq!(
        chain.number_of(&chain.block_hash(best - 5), best),
        Some(best - 5)
    );
    assert_eq!(
        chain.number_of(&chain.block_hash(best - MAX_BLOCK_LOOKUP), best),
        None
    );
    assert_eq!(chain.number_of(&[0u8; 32], best), None);
    // Unknown `at` is a JSON-RPC error, malformed params are errors, not panics.
    let now = unix_now() * 1000;
    let at = serde_json::json!(format!("0x{}", hex::encode([7u8; 32])));
    assert!(chain
        .answer("state_getStorage", &[serde_json::json!("0x00"), at], now)
        .is_err());
    assert!(chain
        .answer("state_getStorage", &[serde_json::json!(5)], now)
        .is_err());
    assert!(chain
        .answer(
            "state_getKeysPaged",
            &[serde_json::json!("0x"), serde_json::json!(1u64 << 40)],
            now
        )
        .is_err());
    assert!(chain
        .answer("chain_getBlockHash", &[serde_json::json!(-1)], now)
        .is_err());
    assert!(chain.answer("no_such_method", &[], now).is_err());
}

#[tokio::test]
async fn devnet_info_describes_the_running_devnet() {
    let devnet = Devnet::start(config()).await.unwrap();
    let client = SubtensorClient::with_options(&devnet.chain_url(), fast_subtensor()).unwrap();
    let info = client.devnet_info().await.unwrap();
    assert_eq!(info.drand_url, devnet.drand_url());
    assert_eq!(&info.drand_chain().unwrap(), devnet.drand_chain());
    assert_eq!(info.netuid, DEFAULT_NETUID);
    assert_eq!(info.block_ms, devnet.chain().block_ms());
    assert_eq!(info.generation, grail_chain::devnet::default_generation());
    info.generation.validate().unwrap();
    // A client pinned from the info verifies the devnet's beacons.
    let drand = DrandClient::new(
        info.drand_chain().unwrap(),
        vec![info.drand_url],
        fast_drand(),
    )
    .unwrap();
    assert_eq!(drand.fetch(2).await.unwrap().round(), 2);
    devnet.shutdown().await;
}

#[test]
fn a_chain_without_info_does_not_know_the_method() {
    let chain = DevnetChain::new(b"s", 0, 1000);
    let err = chain.answer("grail_devnetInfo", &[], 5_000).unwrap_err();
    assert_eq!(err.0, -32601);
}
