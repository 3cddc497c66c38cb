//! `grail keys show`, run as a process: output, exit codes, error messages.
use std::path::{Path, PathBuf};
use std::process::Output;

const ALICE_SS58: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const ALICE_PUBLIC_HEX: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
/// `subkey inspect //Alice`: secret seed.
const ALICE_SEED_HEX: &str = "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a";
const BOB_SS58: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

/// `grail keys show <args>` with a clean environment: no btcli variables, and
/// HOME pointing at `home`.
fn keys_show(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = crate::grail();
    cmd.args(["keys", "show"]).args(args).env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run grail")
}

/// `grail keys show` for wallet `w`, hotkey `h` under `<home>/wallets`.
fn show_wallet_w_h(home: &Path) -> Output {
    let wallets = home.join("wallets");
    keys_show(
        home,
        &[
            "--wallet.path",
            wallets.to_str().unwrap(),
            "--wallet.name",
            "w",
            "--wallet.hotkey",
            "h",
        ],
        &[],
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Write a btcli hotkey file `<root>/wallets/<name>/hotkeys/<hotkey>`.
fn write_hotkey(root: &Path, name: &str, hotkey: &str, contents: &str) -> PathBuf {
    let dir = root.join("wallets").join(name).join("hotkeys");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(hotkey);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Alice's hotkey as bittensor-wallet writes an unencrypted file made from a seed.
fn alice_json() -> String {
    serde_json::json!({
        "accountId": format!("0x{ALICE_PUBLIC_HEX}"),
        "publicKey": format!("0x{ALICE_PUBLIC_HEX}"),
        "secretSeed": format!("0x{ALICE_SEED_HEX}"),
        "ss58Address": ALICE_SS58,
    })
    .to_string()
}

#[test]
fn dev_alice_prints_address() {
    let home = tempfile::tempdir().unwrap();
    let out = keys_show(home.path(), &["--dev", "alice"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{ALICE_SS58}\n"));
}

#[test]
fn dev_ignores_wallet_environment() {
    let home = tempfile::tempdir().unwrap();
    let out = keys_show(home.path(), &["--dev", "Bob"], &[("BT_WALLET_NAME", "x")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{BOB_SS58}\n"));
}

#[test]
fn json_output() {
    let home = tempfile::tempdir().unwrap();
    let out = keys_show(home.path(), &["--dev", "alice", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ss58"], ALICE_SS58);
    assert_eq!(v["public_key"], ALICE_PUBLIC_HEX);
}

#[test]
fn btcli_hotkey_file_prints_address() {
    let dir = tempfile::tempdir().unwrap();
    write_hotkey(dir.path(), "w", "h", &alice_json());
    let out = show_wallet_w_h(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{ALICE_SS58}\n"));
}

#[test]
fn btcli_hotkey_file_from_environment_and_home() {
    // `~/wallets` with HOME=<tmp>, names from BT_WALLET_NAME / BT_WALLET_HOTKEY.
    let dir = tempfile::tempdir().unwrap();
    write_hotkey(dir.path(), "cold", "hot", &alice_json());
    let out = keys_show(
        dir.path(),
        &[],
        &[
            ("BT_WALLET_PATH", "~/wallets"),
            ("BT_WALLET_NAME", "cold"),
            ("BT_WALLET_HOTKEY", "hot"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{ALICE_SS58}\n"));
}

#[test]
fn default_location_is_btcli_default() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".bittensor");
    write_hotkey(&dir, "default", "default", &alice_json());
    let out = keys_show(home.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{ALICE_SS58}\n"));
}

#[test]
fn encrypted_hotkey_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    write_hotkey(dir.path(), "w", "h", "$NACL\u{13}q\u{3}junk-ciphertext");
    let out = show_wallet_w_h(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("encrypted"), "{err}");
    assert!(err.contains("unencrypted hotkey file"), "{err}");
}

#[test]
fn inconsistent_hotkey_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let bad = alice_json().replace(ALICE_SS58, BOB_SS58);
    write_hotkey(dir.path(), "w", "h", &bad);
    let out = show_wallet_w_h(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ss58Address"), "{}", stderr(&out));
}

#[test]
fn missing_hotkey_is_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let wallets = dir.path().join("wallets");
    let out = keys_show(
        dir.path(),
        &[
            "--wallet.path",
            wallets.to_str().unwrap(),
            "--wallet.name",
            "w",
            "--wallet.hotkey",
            "nope",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("does not exist") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn dev_conflicts_with_wallet_flags() {
    let home = tempfile::tempdir().unwrap();
    let out = keys_show(home.path(), &["--dev", "alice", "--wallet.name", "w"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn unknown_dev_name_is_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let out = keys_show(home.path(), &["--dev", "mallory"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("mallory"), "{}", stderr(&out));
}
