//! `grail fingerprint`: print the weight fingerprint of a model directory.
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use grail_core::tensors::fingerprint_model_dir;

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory: `model.safetensors`, or `model.safetensors.index.json`
    /// and the shard files it names.
    #[arg(long)]
    pub model: PathBuf,
}

/// Prints the 64-hex fingerprint on one line of stdout. Corrupt or
/// inconsistent model files are [`Failure::Invalid`]; a missing directory or
/// file, or an I/O error, is [`Failure::Usage`].
pub fn run(args: &Args) -> Result<(), Failure> {
    let fingerprint = fingerprint_model_dir(&args.model).map_err(|e| {
        if e.is_invalid_input() {
            Failure::Invalid(e.into())
        } else {
            Failure::Usage(e.into())
        }
    })?;
    tracing::debug!(model = %args.model.display(), %fingerprint, "fingerprinted");
    // Not `println!`: a closed stdout must be an error, not a panic.
    writeln!(std::io::stdout().lock(), "{fingerprint}")
        .context("cannot write to stdout")
        .map_err(Failure::Usage)
}
