//! `grail inspect`.
//! (being written)
//!
//! TEMPORARY stub on branch `fingerprint` so that `grail-validator` compiles
//! and `grail fingerprint` can be tested; the real module replaces this file.
use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<(), Failure> {
    Err(Failure::Usage(anyhow::anyhow!(
        "`grail inspect` is not implemented in this build"
    )))
}
