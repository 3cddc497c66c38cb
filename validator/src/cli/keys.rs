//! `grail keys`: hotkey tools.
//!
//! `grail keys show` prints the SS58 address of the hotkey grail would sign
//! with: a btcli wallet hotkey file, or a well-known development key.
//!
//! The wallet flags and their fallbacks to btcli's environment variables
//! and defaults are [`grail_miner::args::WalletArgs`], shared with
//! `grail-miner`.
use grail_core::keys::Hotkey;
use grail_miner::args::{process_env, ArgsError, WalletArgs};

use super::{print_out, Failure};

/// `grail keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print the SS58 address of a hotkey: a btcli wallet hotkey file, or a dev key.
    Show(ShowArgs),
}

/// Flags of `grail keys show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// Print `{"ss58": ..., "public_key": "<hex>"}` instead of the bare address.
    #[arg(long)]
    pub json: bool,
}

/// Run a `grail keys` subcommand.
pub fn run(cmd: &KeysCommand) -> Result<(), Failure> {
    match cmd {
        KeysCommand::Show(args) => show(args),
    }
}

fn show(args: &ShowArgs) -> Result<(), Failure> {
    let source = args.wallet.key_source(&process_env).map_err(args_failure)?;
    let keypair = source.load().map_err(args_failure)?;
    let hotkey = keypair.hotkey();
    tracing::debug!(hotkey = %hotkey, source = ?source, "loaded hotkey");
    print_hotkey(&hotkey, args.json)
}

/// A file that could not be found or read, or a bad location, is a usage
/// error (exit 2); a file that was read and found wrong is invalid (exit 1).
fn args_failure(e: ArgsError) -> Failure {
    if e.is_usage() {
        Failure::Usage(e.into())
    } else {
        Failure::Invalid(e.into())
    }
}

fn print_hotkey(hotkey: &Hotkey, json: bool) -> Result<(), Failure> {
    let line = if json {
        serde_json::json!({
            "ss58": hotkey.to_ss58(),
            "public_key": hex::encode(hotkey.as_bytes()),
        })
        .to_string()
    } else {
        hotkey.to_ss58()
    };
    print_out(&line)
}
