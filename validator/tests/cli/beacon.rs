//! `grail beacon` end to end: verifying the recorded fixture beacons and
//! tampered ones, usage errors, and fetching from a loopback relay.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Output;

use serde_json::Value;

use crate::run as grail;

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/drand/beacons.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `grail beacon verify` arguments for a fixture beacon.
fn verify_args(chain: &str, b: &Value, with_randomness: bool) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "beacon".into(),
        "verify".into(),
        "--chain".into(),
        chain.into(),
        "--round".into(),
        b["round"].to_string(),
        "--signature".into(),
        b["signature"].as_str().unwrap().into(),
    ];
    if let Some(p) = b.get("previous_signature") {
        a.extend(["--previous-signature".into(), p.as_str().unwrap().into()]);
    }
    if with_randomness {
        a.extend([
            "--randomness".into(),
            b["randomness"].as_str().unwrap().into(),
        ]);
    }
    a
}

fn run(args: &[String]) -> Output {
    grail(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn flip_hex_bit(s: &str, byte: usize, mask: u8) -> String {
    let mut b = hex::decode(s).unwrap();
    b[byte] ^= mask;
    hex::encode(b)
}

#[test]
fn every_fixture_beacon_verifies() {
    let f = fixture();
    for chain in ["quicknet", "default"] {
        for b in f["beacons"][chain].as_array().unwrap() {
            for with_randomness in [true, false] {
                let o = run(&verify_args(chain, b, with_randomness));
                assert_eq!(o.status.code(), Some(0), "{}", text(&o));
                let out = String::from_utf8_lossy(&o.stdout);
                assert!(out.contains(b["randomness"].as_str().unwrap()), "{out}");
                assert!(
                    out.contains(&format!("{chain} round {}", b["round"])),
                    "{out}"
                );
            }
        }
    }
}

#[test]
fn tampered_beacons_are_invalid() {
    let f = fixture();
    for chain in ["quicknet", "default"] {
        let other = if chain == "quicknet" {
            "default"
        } else {
            "quicknet"
        };
        for b in f["beacons"][chain].as_array().unwrap() {
            let mut cases: Vec<(Vec<String>, &str)> = vec![];
            let mut t = b.clone();
            t["signature"] = flip_hex_bit(b["signature"].as_str().unwrap(), 0, 0x20).into();
            cases.push((verify_args(chain, &t, false), "does not verify"));
            let mut t = b.clone();
            t["round"] = (b["round"].as_u64().unwrap() + 1).into();
            cases.push((verify_args(chain, &t, false), "round"));
            let mut t = b.clone();
            t["randomness"] = flip_hex_bit(b["randomness"].as_str().unwrap(), 3, 1).into();
            cases.push((verify_args(chain, &t, true), "randomness"));
            cases.push((verify_args(other, b, false), "signature is"));
            if chain == "default" {
                let mut t = b.clone();
                t["previous_signature"] =
                    flip_hex_bit(b["previous_signature"].as_str().unwrap(), 4, 2).into();
                cases.push((verify_args(chain, &t, false), "previous_signature"));
            }
            for (args, needle) in cases {
                let o = run(&args);
                assert_eq!(o.status.code(), Some(1), "{args:?}\n{}", text(&o));
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains(needle)
                        || needle == "previous_signature" && err.contains("does not verify"),
                    "{args:?}: {err}"
                );
            }
        }
    }
}

#[test]
fn bad_hex_is_a_usage_error() {
    let b = &fixture()["beacons"]["quicknet"][0];
    let mut a = verify_args("quicknet", b, false);
    a[7] = "zz".into();
    let o = run(&a);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let mut a = verify_args("quicknet", b, false);
    a.extend(["--randomness".into(), "abcd".into()]);
    assert_eq!(run(&a).status.code(), Some(2));
    let a = verify_args("fastnet", b, false);
    assert_eq!(run(&a).status.code(), Some(2));
    // fetch needs --round or --latest
    assert_eq!(
        grail(&["beacon", "fetch", "--chain", "quicknet"])
            .status
            .code(),
        Some(2)
    );
}

/// A one-thread HTTP/1.1 relay on loopback serving `/info` and
/// `/public/{round|latest}` for quicknet from the fixture, `Connection: close`.
fn serve_quicknet() -> String {
    let f = fixture();
    let chain = &f["chains"]["quicknet"];
    let hash = chain["hash"].as_str().unwrap().to_string();
    let info = serde_json::json!({
        "public_key": chain["public_key"],
        "period": chain["period"],
        "genesis_time": chain["genesis_time"],
        "genesis_seed": chain["genesis_seed"],
        "chain_hash": chain["hash"],
        "scheme": chain["scheme"],
        "beacon_id": chain["beacon_id"],
    })
    .to_string();
    let beacons: Vec<Value> = f["beacons"]["quicknet"].as_array().unwrap().clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let body = if path == format!("/{hash}/info") {
                Some(info.clone())
            } else if let Some(round) = path.strip_prefix(&format!("/{hash}/public/")) {
                beacons
                    .iter()
                    .find(|b| {
                        round == "latest" && b["round"] == 1000
                            || round.parse::<u64>().ok() == b["round"].as_u64()
                    })
                    .map(|b| b.to_string())
            } else {
                None
            };
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", "not found".to_string()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn fetch_from_a_loopback_relay_prints_verified_json() {
    let url = serve_quicknet();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    for which in [&["--round", "123"][..], &["--latest"][..]] {
        let mut args = vec![
            "beacon", "fetch", "--chain", "quicknet", "--relay", &url, "--cache", cache,
        ];
        args.extend_from_slice(which);
        let o = grail(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        let want = if which[0] == "--latest" { 1000 } else { 123 };
        assert_eq!(j["round"], want);
        assert_eq!(j["chain"], "quicknet");
        let b = fixture()["beacons"]["quicknet"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["round"] == want)
            .unwrap()
            .clone();
        assert_eq!(j["randomness"], b["randomness"]);
        assert_eq!(j["signature"], b["signature"]);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn fetch_from_a_dead_relay_is_invalid() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let o = grail(&[
        "beacon", "fetch", "--chain", "quicknet", "--round", "5", "--relay", &url,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&url) && err.contains("round 5"), "{err}");
    assert!(o.stdout.is_empty());
}
