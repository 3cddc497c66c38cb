//! `grail beacon` (branch `chain`: being written).
use super::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum BeaconCommand {}

pub fn run(cmd: &BeaconCommand) -> Result<(), Failure> {
    match *cmd {}
}
