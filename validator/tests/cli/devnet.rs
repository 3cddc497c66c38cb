//! `grail devnet serve`, run as a process on free ports: it prints its URLs
//! and drand chain, `grail chain head` reads its chain, the production drand
//! client verifies its beacons under the printed chain, and SIGINT stops it.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::grail;
use std::time::{Duration, Instant};

use grail_chain::drand::{ClientConfig, DrandClient};
use grail_core::beacon::DrandChain;

/// Kills the child if the test fails before stopping it.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `grail devnet serve` and read the six lines it prints.
fn serve(extra: &[&str]) -> (Guard, HashMap<String, String>) {
    let mut child = grail()
        .args(["devnet", "serve", "--port", "0", "--drand-port", "0", "-q"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run grail devnet serve");
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    let mut fields = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let (k, v) = line.split_once(' ').expect("KEY VALUE line");
        fields.insert(k.to_owned(), v.to_owned());
        if k == "drand_period" {
            break;
        }
    }
    assert_eq!(fields.len(), 6, "devnet printed {fields:?}");
    (guard, fields)
}

#[test]
fn devnet_serve_answers_chain_and_drand_queries_then_stops_on_sigint() {
    let (mut guard, f) = serve(&["--block-time-ms", "200", "--seed", "cli-test"]);

    // The chain, through the CLI.
    std::thread::sleep(Duration::from_millis(500));
    let out = grail()
        .args(["chain", "head", "--endpoint", &f["chain_url"]])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (number, hash) = text.trim().split_once(' ').unwrap();
    assert!(number.parse::<u64>().unwrap() >= 1, "head {text}");
    assert_eq!(hash.len(), 66);
    let out = grail()
        .args(["chain", "finalized", "--endpoint", &f["chain_url"]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // The beacon, through the production client pinned to the printed chain.
    let public_key = hex::decode(&f["drand_public_key"]).unwrap();
    let chain = DrandChain::devnet(
        &public_key,
        f["drand_genesis_time"].parse().unwrap(),
        f["drand_period"].parse().unwrap(),
    )
    .unwrap();
    assert_eq!(chain.hash_hex(), f["drand_chain_hash"]);
    let client =
        DrandClient::new(chain, vec![f["drand_url"].clone()], ClientConfig::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let beacon = runtime.block_on(client.fetch(1)).unwrap();
    assert_eq!(beacon.round(), 1);
    // The same through `grail beacon fetch --chain devnet`.
    let out = grail()
        .args(["beacon", "fetch", "--chain", "devnet", "--round", "1"])
        .args(["--devnet-public-key", &f["drand_public_key"]])
        .args(["--devnet-genesis-time", &f["drand_genesis_time"]])
        .args(["--devnet-period", &f["drand_period"]])
        .args(["--relay", &f["drand_url"]])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["chain_hash"], f["drand_chain_hash"].as_str());
    assert_eq!(json["round"], 1);
    // Pinned to quicknet, the CLI finds no valid beacon there (exit 1).
    let out = grail()
        .args(["beacon", "fetch", "--chain", "quicknet", "--round", "1"])
        .args(["--relay", &f["drand_url"]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // quicknet's client does not accept the devnet relay.
    let quicknet = DrandClient::new(
        DrandChain::quicknet(),
        vec![f["drand_url"].clone()],
        ClientConfig {
            attempts: 1,
            ..ClientConfig::default()
        },
    )
    .unwrap();
    assert!(runtime.block_on(quicknet.fetch(1)).is_err());

    // Ctrl-C stops it cleanly.
    let pid = guard.0.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "devnet did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn devnet_serve_with_same_seed_and_genesis_prints_the_same_drand_chain() {
    let args = ["--seed", "fixed", "--genesis-time", "1700000000"];
    let (_a, fa) = serve(&args);
    let (_b, fb) = serve(&args);
    assert_eq!(fa["drand_chain_hash"], fb["drand_chain_hash"]);
    assert_eq!(fa["drand_public_key"], fb["drand_public_key"]);
    assert_ne!(fa["chain_url"], fb["chain_url"]);
}

#[test]
fn beacon_fetch_devnet_without_its_key_or_relay_is_a_usage_error() {
    let out = grail()
        .args(["beacon", "fetch", "--chain", "devnet", "--round", "1"])
        .args(["--relay", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let key = hex::encode(grail_chain::devnet::beacon::public_key(b"k"));
    let out = grail()
        .args(["beacon", "fetch", "--chain", "devnet", "--round", "1"])
        .args(["--devnet-public-key", &key, "--devnet-genesis-time", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn devnet_serve_rejects_zero_block_time() {
    let out = grail()
        .args(["devnet", "serve", "--port", "0", "--block-time-ms", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
