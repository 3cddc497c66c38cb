//! Bittensor's command-line conventions, shared by `grail-miner` and `grail`:
//! the wallet flags (`--wallet.path`, `--wallet.name`, `--wallet.hotkey`,
//! or `--dev NAME`) and the node flags (`--subtensor.chain_endpoint`,
//! `--subtensor.network`), each falling back to btcli's environment
//! variables, then to btcli's defaults.
//!
//! The environment is read here, once, through a closure, rather than by
//! clap's `env` attribute: clap counts a value taken from the environment as
//! given on the command line, so a `BT_WALLET_NAME` exported in the shell
//! would make every `--dev` invocation a flag conflict.
use std::ffi::OsString;
use std::path::PathBuf;

use grail_chain::subtensor::{self, SubtensorError};
use grail_core::keys::Keypair;
use grail_core::wallet::{self, WalletError};

/// Environment variable: wallet directory when `--wallet.path` is not given (btcli's name).
pub const ENV_WALLET_PATH: &str = "BT_WALLET_PATH";
/// Environment variable: wallet name when `--wallet.name` is not given (btcli's name).
pub const ENV_WALLET_NAME: &str = "BT_WALLET_NAME";
/// Environment variable: hotkey name when `--wallet.hotkey` is not given (btcli's name).
pub const ENV_WALLET_HOTKEY: &str = "BT_WALLET_HOTKEY";
/// Environment variable: the home directory a leading `~` in the wallet path stands for.
pub const ENV_HOME: &str = "HOME";
/// Environment variable: subtensor endpoint URL when no flag names a node (btcli's name).
pub const ENV_SUBTENSOR_CHAIN_ENDPOINT: &str = "BT_SUBTENSOR_CHAIN_ENDPOINT";
/// Environment variable: subtensor network when no flag names a node (btcli's name).
pub const ENV_SUBTENSOR_NETWORK: &str = "BT_SUBTENSOR_NETWORK";

/// Reads an environment variable (the process environment, or a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process environment.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Which hotkey signs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WalletArgs {
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
}

/// Which subtensor node to follow.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NodeArgs {
    /// Subtensor node URL (http(s):// or ws(s)://; websocket URLs are queried
    /// over HTTP on the same port). Wins over --network.
    /// [env: BT_SUBTENSOR_CHAIN_ENDPOINT]
    #[arg(long, visible_alias = "subtensor.chain_endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Network: finney, test or local.
    /// [env: BT_SUBTENSOR_NETWORK] [default: finney]
    #[arg(long, visible_alias = "subtensor.network", value_name = "NAME")]
    pub network: Option<String>,
}

/// Why the flags and environment name no usable key or node.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("environment variable {var} is not valid UTF-8")]
    NotUtf8 { var: &'static str },
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("unknown development key: {0}")]
    DevKey(String),
    #[error(transparent)]
    Endpoint(Box<SubtensorError>),
}

impl From<SubtensorError> for ArgsError {
    fn from(e: SubtensorError) -> Self {
        ArgsError::Endpoint(Box::new(e))
    }
}

impl ArgsError {
    /// Whether the error is in the command line or environment (missing or
    /// unreadable file, bad name) rather than in a file that was read and
    /// found invalid.
    pub fn is_usage(&self) -> bool {
        match self {
            ArgsError::Wallet(e) => matches!(
                e,
                WalletError::NoHome { .. }
                    | WalletError::BadName { .. }
                    | WalletError::Missing { .. }
                    | WalletError::Unreadable { .. }
            ),
            _ => true,
        }
    }
}

/// Where the key comes from, after flags, environment and defaults are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Dev(String),
    File(PathBuf),
}

impl KeySource {
    /// Load the key.
    pub fn load(&self) -> Result<Keypair, ArgsError> {
        match self {
            KeySource::Dev(name) => {
                Keypair::dev(name).map_err(|e| ArgsError::DevKey(e.to_string()))
            }
            KeySource::File(path) => Ok(wallet::load_hotkey(path)?),
        }
    }
}

fn var(env: Env<'_>, name: &'static str) -> Result<Option<String>, ArgsError> {
    match env(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|_| ArgsError::NotUtf8 { var: name }),
    }
}

impl WalletArgs {
    /// Merge flags, environment (through `env`) and btcli defaults.
    pub fn key_source(&self, env: Env<'_>) -> Result<KeySource, ArgsError> {
        if let Some(name) = &self.dev {
            return Ok(KeySource::Dev(name.clone()));
        }
        let wallet_path = match &self.wallet_path {
            Some(path) => path.clone(),
            None => var(env, ENV_WALLET_PATH)?
                .map_or_else(|| PathBuf::from(wallet::DEFAULT_WALLET_PATH), PathBuf::from),
        };
        let or_env = |flag: &Option<String>, name, default: &str| -> Result<String, ArgsError> {
            match flag {
                Some(v) => Ok(v.clone()),
                None => Ok(var(env, name)?.unwrap_or_else(|| default.to_owned())),
            }
        };
        let name = or_env(
            &self.wallet_name,
            ENV_WALLET_NAME,
            wallet::DEFAULT_WALLET_NAME,
        )?;
        let hotkey = or_env(
            &self.wallet_hotkey,
            ENV_WALLET_HOTKEY,
            wallet::DEFAULT_HOTKEY_NAME,
        )?;
        // An empty HOME is no home: expanding `~` to "" would silently make the
        // path relative to the working directory.
        let home = env(ENV_HOME).filter(|h| !h.is_empty()).map(PathBuf::from);
        let wallet_path = wallet::expand_home(&wallet_path, home.as_deref())?;
        Ok(KeySource::File(wallet::hotkey_path(
            &wallet_path,
            &name,
            &hotkey,
        )?))
    }
}

impl NodeArgs {
    /// The endpoint URL: flags (an endpoint beats a network), then the
    /// environment (likewise), then finney.
    pub fn endpoint(&self, env: Env<'_>) -> Result<String, ArgsError> {
        Ok(if self.endpoint.is_some() || self.network.is_some() {
            subtensor::resolve_endpoint(self.network.as_deref(), self.endpoint.as_deref())?
        } else {
            let endpoint = var(env, ENV_SUBTENSOR_CHAIN_ENDPOINT)?;
            let network = var(env, ENV_SUBTENSOR_NETWORK)?;
            subtensor::resolve_endpoint(network.as_deref(), endpoint.as_deref())?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn wallet_defaults_are_btcli_defaults() {
        assert_eq!(
            WalletArgs::default()
                .key_source(&env_of(&[(ENV_HOME, "/home/m")]))
                .unwrap(),
            KeySource::File("/home/m/.bittensor/wallets/default/hotkeys/default".into())
        );
    }

    #[test]
    fn env_fills_missing_wallet_flags_and_flags_win() {
        let env = env_of(&[
            (ENV_WALLET_PATH, "/env/w"),
            (ENV_WALLET_NAME, "env-name"),
            (ENV_WALLET_HOTKEY, "env-hot"),
        ]);
        assert_eq!(
            WalletArgs::default().key_source(&env).unwrap(),
            KeySource::File("/env/w/env-name/hotkeys/env-hot".into())
        );
        let a = WalletArgs {
            wallet_name: Some("flag-name".into()),
            ..WalletArgs::default()
        };
        assert_eq!(
            a.key_source(&env).unwrap(),
            KeySource::File("/env/w/flag-name/hotkeys/env-hot".into())
        );
    }

    #[test]
    fn dev_ignores_wallet_environment() {
        let a = WalletArgs {
            dev: Some("alice".into()),
            ..WalletArgs::default()
        };
        assert_eq!(
            a.key_source(&env_of(&[(ENV_WALLET_NAME, "x")])).unwrap(),
            KeySource::Dev("alice".into())
        );
        assert!(KeySource::Dev("mallory".into())
            .load()
            .unwrap_err()
            .is_usage());
    }

    #[test]
    fn tilde_without_home_is_usage_error() {
        let e = WalletArgs::default()
            .key_source(&env_of(&[(ENV_HOME, "")]))
            .unwrap_err();
        assert!(e.is_usage());
    }

    const FINNEY: &str = "https://entrypoint-finney.opentensor.ai:443";

    fn node(endpoint: Option<&str>, network: Option<&str>) -> NodeArgs {
        NodeArgs {
            endpoint: endpoint.map(str::to_owned),
            network: network.map(str::to_owned),
        }
    }

    #[test]
    fn default_node_is_finney() {
        assert_eq!(node(None, None).endpoint(&env_of(&[])).unwrap(), FINNEY);
    }

    #[test]
    fn node_flags_beat_environment_and_endpoint_beats_network() {
        let both = env_of(&[
            (ENV_SUBTENSOR_CHAIN_ENDPOINT, "ws://10.0.0.1:9944"),
            (ENV_SUBTENSOR_NETWORK, "test"),
        ]);
        let network_only = env_of(&[(ENV_SUBTENSOR_NETWORK, "test")]);
        assert_eq!(
            node(None, None).endpoint(&both).unwrap(),
            "http://10.0.0.1:9944"
        );
        assert_eq!(
            node(None, None).endpoint(&network_only).unwrap(),
            "https://test.finney.opentensor.ai:443"
        );
        assert_eq!(
            node(None, Some("local")).endpoint(&both).unwrap(),
            "http://127.0.0.1:9944"
        );
        assert_eq!(
            node(Some("wss://n.example:443"), Some("local"))
                .endpoint(&both)
                .unwrap(),
            "https://n.example:443"
        );
    }

    #[test]
    fn unknown_network_is_usage() {
        assert!(node(None, Some("nakamoto"))
            .endpoint(&env_of(&[]))
            .unwrap_err()
            .is_usage());
        assert!(node(None, None)
            .endpoint(&env_of(&[(ENV_SUBTENSOR_NETWORK, "nakamoto")]))
            .unwrap_err()
            .is_usage());
    }
}
