//! `grail fingerprint`: print the weight fingerprint of a model directory.
use std::path::PathBuf;

use grail_core::tensors::fingerprint_model_dir;

use super::{print_out, Failure};

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
    print_out(&fingerprint.to_string())
}
