//! `grail keys`: hotkey tools.
//!
//! `grail keys show` prints the SS58 address of the hotkey grail would sign
//! with: a btcli wallet hotkey file, or a well-known development key.
//!
//! The wallet flags fall back to btcli's environment variables
//! ([`ENV_WALLET_PATH`], [`ENV_WALLET_NAME`], [`ENV_WALLET_HOTKEY`]), then to
//! btcli's defaults. The fallback is resolved here, once, rather than by
//! clap's `env` attribute: clap counts a value taken from the environment as
//! given on the command line, so a `BT_WALLET_NAME` exported in the shell
//! would make every `--dev` invocation a flag conflict.
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::anyhow;
use grail_core::keys::{Hotkey, Keypair};
use grail_core::wallet::{self, WalletError};

use super::{print_out, Failure};

/// Environment variable: wallet directory when `--wallet.path` is not given (btcli's name).
pub const ENV_WALLET_PATH: &str = "BT_WALLET_PATH";
/// Environment variable: wallet name when `--wallet.name` is not given (btcli's name).
pub const ENV_WALLET_NAME: &str = "BT_WALLET_NAME";
/// Environment variable: hotkey name when `--wallet.hotkey` is not given (btcli's name).
pub const ENV_WALLET_HOTKEY: &str = "BT_WALLET_HOTKEY";
/// Environment variable: the home directory a leading `~` in the wallet path stands for.
pub const ENV_HOME: &str = "HOME";

/// `grail keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print the SS58 address of a hotkey: a btcli wallet hotkey file, or a dev key.
    Show(ShowArgs),
}

/// Flags of `grail keys show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Directory holding btcli wallets; a leading `~` is $HOME.
    /// [env: BT_WALLET_PATH] [default: ~/.bittensor/wallets]
    #[arg(long = "wallet.path", value_name = "DIR", conflicts_with = "dev")]
    pub wallet_path: Option<PathBuf>,
    /// Wallet (coldkey) name: a directory inside the wallet path.
    /// [env: BT_WALLET_NAME] [default: default]
    #[arg(long = "wallet.name", value_name = "NAME", conflicts_with = "dev")]
    pub wallet_name: Option<String>,
    /// Hotkey name: the file `<wallet.path>/<wallet.name>/hotkeys/<NAME>`.
    /// [env: BT_WALLET_HOTKEY] [default: default]
    #[arg(long = "wallet.hotkey", value_name = "NAME", conflicts_with = "dev")]
    pub wallet_hotkey: Option<String>,
    /// Use a publicly known development key instead of a wallet: alice, bob,
    /// charlie, dave, eve or ferdie (`//Alice`, ... on the Substrate dev
    /// phrase). Anyone can sign as these keys; for local testing only.
    #[arg(long, value_name = "NAME")]
    pub dev: Option<String>,
    /// Print `{"ss58": ..., "public_key": "<hex>"}` instead of the bare address.
    #[arg(long)]
    pub json: bool,
}

/// Where the key comes from, after flags, environment and defaults are merged.
#[derive(Debug, PartialEq, Eq)]
enum KeySource {
    Dev(String),
    File(PathBuf),
}

/// Run a `grail keys` subcommand.
pub fn run(cmd: &KeysCommand) -> Result<(), Failure> {
    match cmd {
        KeysCommand::Show(args) => show(args),
    }
}

fn show(args: &ShowArgs) -> Result<(), Failure> {
    let source = resolve(args, &|name| std::env::var_os(name))?;
    let keypair = match &source {
        KeySource::Dev(name) => Keypair::dev(name).map_err(|e| Failure::Usage(e.into()))?,
        KeySource::File(path) => wallet::load_hotkey(path).map_err(wallet_failure)?,
    };
    let hotkey = keypair.hotkey();
    tracing::debug!(hotkey = %hotkey, source = ?source, "loaded hotkey");
    print_hotkey(&hotkey, args.json)
}

/// Merge flags, environment (through `env`) and btcli defaults.
fn resolve(args: &ShowArgs, env: &dyn Fn(&str) -> Option<OsString>) -> Result<KeySource, Failure> {
    if let Some(name) = &args.dev {
        return Ok(KeySource::Dev(name.clone()));
    }
    let wallet_path = match &args.wallet_path {
        Some(path) => path.clone(),
        None => env(ENV_WALLET_PATH)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(wallet::DEFAULT_WALLET_PATH)),
    };
    let name = flag_or_env(
        &args.wallet_name,
        env,
        ENV_WALLET_NAME,
        wallet::DEFAULT_WALLET_NAME,
    )?;
    let hotkey = flag_or_env(
        &args.wallet_hotkey,
        env,
        ENV_WALLET_HOTKEY,
        wallet::DEFAULT_HOTKEY_NAME,
    )?;
    // An empty HOME is no home: expanding `~` to "" would silently make the
    // path relative to the working directory.
    let home = env(ENV_HOME).filter(|h| !h.is_empty()).map(PathBuf::from);
    let wallet_path = wallet::expand_home(&wallet_path, home.as_deref()).map_err(wallet_failure)?;
    let path = wallet::hotkey_path(&wallet_path, &name, &hotkey).map_err(wallet_failure)?;
    Ok(KeySource::File(path))
}

fn flag_or_env(
    flag: &Option<String>,
    env: &dyn Fn(&str) -> Option<OsString>,
    var: &str,
    default: &str,
) -> Result<String, Failure> {
    if let Some(value) = flag {
        return Ok(value.clone());
    }
    match env(var) {
        Some(value) => value
            .into_string()
            .map_err(|_| Failure::Usage(anyhow!("environment variable {var} is not valid UTF-8"))),
        None => Ok(default.to_owned()),
    }
}

/// A file that could not be found or read, or a bad location, is a usage
/// error (exit 2); a file that was read and found wrong is invalid (exit 1).
fn wallet_failure(e: WalletError) -> Failure {
    match e {
        WalletError::NoHome { .. }
        | WalletError::BadName { .. }
        | WalletError::Missing { .. }
        | WalletError::Unreadable { .. } => Failure::Usage(e.into()),
        _ => Failure::Invalid(e.into()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args() -> ShowArgs {
        ShowArgs {
            wallet_path: None,
            wallet_name: None,
            wallet_hotkey: None,
            dev: None,
            json: false,
        }
    }

    fn resolve_with(args: &ShowArgs, vars: &[(&str, &str)]) -> Result<KeySource, Failure> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        resolve(args, &move |name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_btcli_defaults() {
        assert_eq!(
            resolve_with(&args(), &[(ENV_HOME, "/home/m")]).unwrap(),
            KeySource::File("/home/m/.bittensor/wallets/default/hotkeys/default".into())
        );
    }

    #[test]
    fn env_fills_missing_flags_and_flags_win() {
        let env = [
            (ENV_WALLET_PATH, "/env/w"),
            (ENV_WALLET_NAME, "env-name"),
            (ENV_WALLET_HOTKEY, "env-hot"),
        ];
        assert_eq!(
            resolve_with(&args(), &env).unwrap(),
            KeySource::File("/env/w/env-name/hotkeys/env-hot".into())
        );
        let mut a = args();
        a.wallet_name = Some("flag-name".into());
        assert_eq!(
            resolve_with(&a, &env).unwrap(),
            KeySource::File("/env/w/flag-name/hotkeys/env-hot".into())
        );
    }

    #[test]
    fn dev_ignores_wallet_environment() {
        let mut a = args();
        a.dev = Some("alice".into());
        assert_eq!(
            resolve_with(&a, &[(ENV_WALLET_NAME, "x")]).unwrap(),
            KeySource::Dev("alice".into())
        );
    }

    #[test]
    fn tilde_without_home_is_usage_error() {
        assert!(matches!(
            resolve_with(&args(), &[(ENV_HOME, "")]),
            Err(Failure::Usage(_))
        ));
    }
}
