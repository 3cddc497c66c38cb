//! `grail chain` (branch `chain`: being written).
use super::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {}

pub fn run(cmd: &ChainCommand) -> Result<(), Failure> {
    match *cmd {}
}
