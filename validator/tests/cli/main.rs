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
