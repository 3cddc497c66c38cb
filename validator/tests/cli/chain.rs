//! `grail chain`, run as a process against a loopback subtensor node: output,
//! exit codes, error messages.
#[path = "../../../chain/tests/common/fake_subtensor.rs"]
mod fake_subtensor;

use std::process::Output;

use fake_subtensor::{dead_endpoint, fake_block_hash, ChainState, FakeSubtensor};

/// `grail chain <args>` with no subtensor variables in the environment except `env`.
fn chain(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = crate::grail();
    cmd.arg("chain").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run grail")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn hash_hex(n: u64) -> String {
    format!("0x{}", hex::encode(fake_block_hash(n)))
}

/// Blocks 0..=40, block 30 finalized.
fn node() -> FakeSubtensor {
    FakeSubtensor::start(ChainState::new(41, 30))
}

#[test]
fn head_prints_best_block_number_and_hash() {
    let node = node();
    let out = chain(&["head", "--endpoint", &node.url()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("40 {}\n", hash_hex(40)));
}

#[test]
fn finalized_prints_finalized_head_as_json() {
    let node = node();
    let out = chain(
        &[
            "finalized",
            "--subtensor.chain_endpoint",
            &node.url(),
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v, serde_json::json!({"number": 30, "hash": hash_hex(30)}));
}

#[test]
fn block_hash_prints_number_and_hash() {
    let node = node();
    let out = chain(&["block-hash", "12", "--endpoint", &node.url()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("12 {}\n", hash_hex(12)));
}

#[test]
fn endpoint_from_environment() {
    let node = node();
    let url = node.url().replace("http://", "ws://");
    let out = chain(
        &["block-hash", "7"],
        &[("BT_SUBTENSOR_CHAIN_ENDPOINT", &url)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("7 {}\n", hash_hex(7)));
}

#[test]
fn unknown_block_is_exit_1() {
    let node = node();
    let out = chain(&["block-hash", "41", "--endpoint", &node.url()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("block 41 not found"), "{err}");
    assert!(err.contains(&node.url()), "{err}");
}

#[test]
fn dead_endpoint_is_exit_2_naming_it() {
    let url = dead_endpoint();
    let out = chain(&["head", "--endpoint", &url], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&url), "{err}");
}

#[test]
fn unknown_network_is_exit_2() {
    let out = chain(&["head", "--network", "nakamoto"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nakamoto"), "{}", stderr(&out));
}
