//! `grail fingerprint`.
//! (being written)
//!
//! TEMPORARY stub on branch `keys` so that `grail-validator` compiles and
//! `grail keys` can be tested; the real module (branch `fingerprint`)
//! replaces this file.
use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<(), Failure> {
    Err(Failure::Usage(anyhow::anyhow!(
        "`grail fingerprint` is not implemented in this build"
    )))
}
