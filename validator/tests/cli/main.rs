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
    cmd.env_remove("BT_SUBTENSOR_CHAIN_ENDPOINT")
        .env_remove("BT_SUBTENSOR_NETWORK")
        .env_remove("RUST_LOG");
    cmd
}
