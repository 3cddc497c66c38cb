//! The `grail` command line, end to end: one test binary for every
//! subcommand (one binary instead of eight keeps the test build's link time
//! and disk use down).

mod beacon;
mod chain;
mod challenge;
mod devnet;
mod fingerprint;
mod inspect;
mod keys;
mod model;
mod network;
mod validate;

/// The `grail` binary with the environment variables it reads cleared.
pub fn grail() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_grail"));
    for var in [
        "BT_SUBTENSOR_CHAIN_ENDPOINT",
        "BT_SUBTENSOR_NETWORK",
        "BT_WALLET_PATH",
        "BT_WALLET_NAME",
        "BT_WALLET_HOTKEY",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `grail args` to completion; a panic (exit 101) fails the test
/// whatever the test expects of the exit code.
pub fn run(args: &[&str]) -> std::process::Output {
    let out = grail().args(args).output().expect("run grail");
    assert_ne!(
        out.status.code(),
        Some(101),
        "grail {args:?} panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
