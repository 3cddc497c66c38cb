//! The drand client against loopback relays serving real recorded beacons
//! (tests/fixtures/drand/beacons.json), some of them misbehaving.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use grail_chain::drand::{
    BeaconCache, BeaconJson, ClientConfig, DrandClient, DrandError, RelayError,
};
use grail_core::beacon::{BeaconError, DrandChain};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_millis(400);

fn config() -> ClientConfig {
    ClientConfig {
        timeout: TIMEOUT,
        attempts: 2,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        check_info: true,
    }
}

fn fixture_beacons(chain: &str) -> Vec<BeaconJson> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/drand/beacons.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(v["beacons"][chain].clone()).unwrap()
}

/// How a loopback relay behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Good,
    Status500,
    /// Sleeps longer than the client's timeout before answering.
    Slow,
    /// One signature bit flipped.
    Forged,
    /// Serves the next fixture beacon instead of the one asked for.
    OtherRound,
    InvalidJson,
    /// `/info` with another public key (beacons themselves fine).
    WrongInfoKey,
    /// A body over the client's cap.
    Huge,
}

struct Relay {
    mode: Mode,
    chain: DrandChain,
    beacons: Vec<BeaconJson>,
    /// Requests for beacons (not `/info`).
    hits: AtomicUsize,
}

type Reply = (StatusCode, String);

async fn info(State(r): State<Arc<Relay>>, Path(hash): Path<String>) -> Reply {
    if hash != r.chain.hash_hex() {
        return (StatusCode::NOT_FOUND, "unknown chain".into());
    }
    let mut key = r.chain.public_key().to_vec();
    if r.mode == Mode::WrongInfoKey {
        key[7] ^= 1;
    }
    let body = json!({
        "public_key": hex::encode(key),
        "period": r.chain.period(),
        "genesis_time": r.chain.genesis_time(),
        "genesis_seed": hex::encode(r.chain.genesis_seed()),
        "chain_hash": r.chain.hash_hex(),
        "scheme": r.chain.scheme().id(),
        "beacon_id": r.chain.name(),
    });
    (StatusCode::OK, body.to_string())
}

async fn public(State(r): State<Arc<Relay>>, Path((hash, round)): Path<(String, String)>) -> Reply {
    r.hits.fetch_add(1, Ordering::SeqCst);
    if hash != r.chain.hash_hex() {
        return (StatusCode::NOT_FOUND, "unknown chain".into());
    }
    let index = if round == "latest" {
        Some(r.beacons.len() - 1)
    } else {
        let n: u64 = round.parse().unwrap_or(0);
        r.beacons.iter().position(|b| b.round == n)
    };
    let Some(index) = index else {
        return (StatusCode::NOT_FOUND, "no such round".into());
    };
    let mut b = r.beacons[index].clone();
    match r.mode {
        Mode::Good | Mode::WrongInfoKey => {}
        Mode::Status500 => return (StatusCode::INTERNAL_SERVER_ERROR, "down".into()),
        Mode::Slow => tokio::time::sleep(TIMEOUT * 4).await,
        Mode::Forged => {
            let mut sig = hex::decode(&b.signature).unwrap();
            sig[0] ^= 0x20;
            b.signature = hex::encode(sig);
        }
        Mode::OtherRound => b = r.beacons[(index + 1) % r.beacons.len()].clone(),
        Mode::InvalidJson => return (StatusCode::OK, "{\"round\": 1, \"randomness\":".into()),
        Mode::Huge => return (StatusCode::OK, " ".repeat(100_000)),
    }
    (StatusCode::OK, serde_json::to_string(&b).unwrap())
}

/// A loopback relay; aborting the handle stops accepting connections.
async fn serve(
    mode: Mode,
    chain: &DrandChain,
    beacons: &[BeaconJson],
) -> (String, Arc<Relay>, tokio::task::JoinHandle<()>) {
    let relay = Arc::new(Relay {
        mode,
        chain: chain.clone(),
        beacons: beacons.to_vec(),
        hits: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/{hash}/info", get(info))
        .route("/{hash}/public/{round}", get(public))
        .with_state(relay.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, relay, task)
}

/// A loopback URL where nothing listens.
async fn dead_relay() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// The first relay misbehaves in `mode`, the second is good: the client
/// returns the second's (verified) beacon and asked the first as expected.
async fn failover(mode: Mode) -> usize {
    let chain = DrandChain::quicknet();
    let beacons = fixture_beacons("quicknet");
    let (bad, bad_relay, _t1) = serve(mode, &chain, &beacons).await;
    let (good, good_relay, _t2) = serve(Mode::Good, &chain, &beacons).await;
    let client = DrandClient::new(chain, vec![bad, good], config()).unwrap();
    let v = client.fetch(123).await.unwrap();
    assert_eq!(v.round(), 123);
    assert_eq!(hex::encode(v.randomness()), beacons[3].randomness);
    assert_eq!(good_relay.hits.load(Ordering::SeqCst), 1);
    bad_relay.hits.load(Ordering::SeqCst)
}

#[tokio::test]
async fn failover_when_first_relay_returns_500() {
    // 5xx is transient: retried `attempts` times, then the next relay
    assert_eq!(failover(Mode::Status500).await, 2);
}

#[tokio::test]
async fn failover_when_first_relay_times_out() {
    let start = std::time::Instant::now();
    assert_eq!(failover(Mode::Slow).await, 2);
    assert!(start.elapsed() < TIMEOUT * 4, "{:?}", start.elapsed());
}

#[tokio::test]
async fn failover_when_first_relay_serves_a_forged_beacon() {
    // a forged beacon is not retried on the same relay
    assert_eq!(failover(Mode::Forged).await, 1);
}

#[tokio::test]
async fn failover_when_first_relay_serves_another_round() {
    assert_eq!(failover(Mode::OtherRound).await, 1);
}

#[tokio::test]
async fn failover_when_first_relay_serves_invalid_json() {
    assert_eq!(failover(Mode::InvalidJson).await, 1);
}

#[tokio::test]
async fn failover_when_first_relay_serves_an_oversized_body() {
    assert_eq!(failover(Mode::Huge).await, 1);
}

#[tokio::test]
async fn relay_with_wrong_info_public_key_is_never_asked_for_beacons() {
    assert_eq!(failover(Mode::WrongInfoKey).await, 0);
}

#[tokio::test]
async fn all_relays_failing_is_an_error_listing_each_relay() {
    let chain = DrandChain::quicknet();
    let beacons = fixture_beacons("quicknet");
    let (a, _ra, _t1) = serve(Mode::Status500, &chain, &beacons).await;
    let (b, _rb, _t2) = serve(Mode::Forged, &chain, &beacons).await;
    let (c, _rc, _t3) = serve(Mode::WrongInfoKey, &chain, &beacons).await;
    let (d, _rd, _t4) = serve(Mode::OtherRound, &chain, &beacons).await;
    let e = dead_relay().await;
    let relays = vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()];
    let client = DrandClient::new(chain, relays.clone(), config()).unwrap();
    let err = client.fetch(1000).await.unwrap_err();
    let text = err.to_string();
    for r in &relays {
        assert!(text.contains(r.as_str()), "{text}");
    }
    assert!(
        text.contains("quicknet") && text.contains("round 1000"),
        "{text}"
    );
    let DrandError::AllRelaysFailed { failures, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 5);
    assert!(matches!(
        failures[0].error,
        RelayError::Status { status: 500 }
    ));
    assert!(matches!(
        failures[1].error,
        RelayError::Beacon(BeaconError::BadSignature { round: 1000, .. })
    ));
    assert!(matches!(
        failures[2].error,
        RelayError::Info(BeaconError::InfoPublicKey { .. })
    ));
    assert!(matches!(
        failures[3].error,
        RelayError::WrongRound {
            requested: 1000,
            ..
        }
    ));
    assert!(matches!(failures[4].error, RelayError::Transport { .. }));
    assert_eq!(failures[4].relay, e);
}

#[tokio::test]
async fn latest_and_the_chained_default_chain() {
    let chain = DrandChain::default_chain();
    let beacons = fixture_beacons("default");
    let (url, _r, _t) = serve(Mode::Good, &chain, &beacons).await;
    let client = DrandClient::new(chain, vec![url], config()).unwrap();
    assert_eq!(client.latest().await.unwrap().round(), 72785);
    let v = client.fetch(1).await.unwrap();
    assert_eq!(
        v.previous_signature().unwrap(),
        client.chain().genesis_seed()
    );
}

#[tokio::test]
async fn second_fetch_is_served_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let chain = DrandChain::quicknet();
    let beacons = fixture_beacons("quicknet");
    let (url, relay, task) = serve(Mode::Good, &chain, &beacons).await;
    let client = DrandClient::new(chain.clone(), vec![url.clone()], config())
        .unwrap()
        .with_cache(BeaconCache::open(dir.path()).unwrap());
    let first = client.fetch(2).await.unwrap();
    assert_eq!(relay.hits.load(Ordering::SeqCst), 1);
    let cache = BeaconCache::open(dir.path()).unwrap();
    assert!(cache.path(&chain, 2).exists());
    // no temporary files left behind
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    task.abort();
    let _ = task.await;
    // a fresh client (no pooled connections) over the dead relay, same cache
    let client = DrandClient::new(chain, vec![url], config())
        .unwrap()
        .with_cache(cache);
    let second = client.fetch(2).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(relay.hits.load(Ordering::SeqCst), 1);
    // and a round not cached fails closed
    assert!(matches!(
        client.fetch(3).await,
        Err(DrandError::AllRelaysFailed { .. })
    ));
}

#[tokio::test]
async fn tampered_cache_entry_is_rejected_and_refetched() {
    let dir = tempfile::tempdir().unwrap();
    let chain = DrandChain::quicknet();
    let beacons = fixture_beacons("quicknet");
    let (url, relay, _t) = serve(Mode::Good, &chain, &beacons).await;
    let cache = BeaconCache::open(dir.path()).unwrap();
    let client = DrandClient::new(chain.clone(), vec![url], config())
        .unwrap()
        .with_cache(cache.clone());
    let good = client.fetch(1000).await.unwrap();
    let path = cache.path(&chain, 1000);

    // a forged randomness in otherwise well-formed JSON
    let mut entry: BeaconJson = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    entry.randomness = "00".repeat(32);
    std::fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
    assert_eq!(client.fetch(1000).await.unwrap(), good);
    assert_eq!(relay.hits.load(Ordering::SeqCst), 2);
    // the entry was replaced by the verified one
    let entry: BeaconJson = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(entry.randomness, beacons[4].randomness);

    // another round's beacon under this round's name
    std::fs::write(&path, serde_json::to_vec(&beacons[0]).unwrap()).unwrap();
    assert_eq!(client.fetch(1000).await.unwrap(), good);
    assert_eq!(relay.hits.load(Ordering::SeqCst), 3);

    // garbage
    std::fs::write(&path, b"not json").unwrap();
    assert_eq!(client.fetch(1000).await.unwrap(), good);
    assert_eq!(relay.hits.load(Ordering::SeqCst), 4);

    // and an intact entry is used without asking the relay
    assert_eq!(client.fetch(1000).await.unwrap(), good);
    assert_eq!(relay.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn client_rejects_bad_configuration() {
    let chain = DrandChain::quicknet();
    assert!(matches!(
        DrandClient::new(chain.clone(), vec![], config()),
        Err(DrandError::NoRelays)
    ));
    assert!(matches!(
        DrandClient::new(chain, vec!["ftp://x".into()], config()),
        Err(DrandError::RelayUrl { .. })
    ));
}
