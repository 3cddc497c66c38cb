//! `grail keys`.
//! (being written)
//!
//! TEMPORARY stub on branch `fingerprint` so that `grail-validator` compiles
//! and `grail fingerprint` can be tested; the real module replaces this file.
use super::Failure;

/// Hotkey tools (not yet implemented on this branch).
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {}

pub fn run(cmd: &KeysCommand) -> Result<(), Failure> {
    match *cmd {}
}
