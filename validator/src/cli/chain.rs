//! `grail chain`: subtensor queries — the best head, the finalized head, the
//! hash of a block.
//!
//! The node is chosen by `--endpoint` (alias `--subtensor.chain_endpoint`) or
//! `--network finney|test|local` (alias `--subtensor.network`). Precedence,
//! as in bittensor: a flag beats the environment, and an endpoint beats a
//! network: `--endpoint`, then `--network`, then [`ENV_SUBTENSOR_CHAIN_ENDPOINT`],
//! then [`ENV_SUBTENSOR_NETWORK`], then finney. The environment is read here,
//! once, rather than through clap's `env` attribute, which would count an
//! exported variable as a flag given on the command line.
//!
//! Exit codes: 0 ok; 1 the node answered, and the answer is not there or not
//! valid (unknown block, malformed hash); 2 usage, an unreachable node, or a
//! node that refused the request.
use std::ffi::OsString;

use anyhow::anyhow;
use grail_chain::subtensor::{self, Header, SubtensorClient, SubtensorError};

use super::{current_thread_runtime, print_out, Failure};

/// Environment variable: subtensor endpoint URL when no flag names a node (btcli's name).
pub const ENV_SUBTENSOR_CHAIN_ENDPOINT: &str = "BT_SUBTENSOR_CHAIN_ENDPOINT";
/// Environment variable: subtensor network when no flag names a node (btcli's name).
pub const ENV_SUBTENSOR_NETWORK: &str = "BT_SUBTENSOR_NETWORK";

/// `grail chain` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Print the best (newest, not necessarily final) block: number and hash.
    Head(NodeArgs),
    /// Print the finalized head: number and hash.
    Finalized(NodeArgs),
    /// Print the hash of block N of the canonical chain.
    BlockHash(BlockHashArgs),
}

/// Which node to ask, and how to print the answer.
#[derive(Debug, clap::Args)]
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
    /// Print `{"number": N, "hash": "0x..."}` instead of `N 0x...`.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `grail chain block-hash`.
#[derive(Debug, clap::Args)]
pub struct BlockHashArgs {
    /// Block number.
    #[arg(value_name = "N")]
    pub number: u64,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Run a `grail chain` subcommand.
pub fn run(cmd: &ChainCommand) -> Result<(), Failure> {
    let node = match cmd {
        ChainCommand::Head(node) | ChainCommand::Finalized(node) => node,
        ChainCommand::BlockHash(args) => &args.node,
    };
    let endpoint = resolve(node, &|name| std::env::var_os(name))?;
    tracing::debug!(endpoint = %endpoint, "subtensor endpoint");
    let client = SubtensorClient::new(&endpoint).map_err(chain_failure)?;
    let runtime = current_thread_runtime()?;
    let header = runtime.block_on(async {
        match cmd {
            ChainCommand::Head(_) => client.best_head().await.map_err(chain_failure),
            ChainCommand::Finalized(_) => client.finalized_header().await.map_err(chain_failure),
            ChainCommand::BlockHash(args) => match client.block_hash(args.number).await {
                Ok(Some(hash)) => Ok(Header {
                    number: args.number,
                    hash,
                }),
                Ok(None) => Err(Failure::Invalid(anyhow!(
                    "block {} not found at {}",
                    args.number,
                    client.endpoint()
                ))),
                Err(e) => Err(chain_failure(e)),
            },
        }
    })?;
    print_header(&header, node.json)
}

/// The endpoint URL from flags, then the environment (through `env`), then finney.
fn resolve(node: &NodeArgs, env: &dyn Fn(&str) -> Option<OsString>) -> Result<String, Failure> {
    let var = |name: &str| -> Result<Option<String>, Failure> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v.into_string().map(Some).map_err(|_| {
                Failure::Usage(anyhow!("environment variable {name} is not valid UTF-8"))
            }),
        }
    };
    let resolved = if node.endpoint.is_some() || node.network.is_some() {
        subtensor::resolve_endpoint(node.network.as_deref(), node.endpoint.as_deref())
    } else {
        let endpoint = var(ENV_SUBTENSOR_CHAIN_ENDPOINT)?;
        let network = var(ENV_SUBTENSOR_NETWORK)?;
        subtensor::resolve_endpoint(network.as_deref(), endpoint.as_deref())
    };
    resolved.map_err(|e| Failure::Usage(e.into()))
}

/// An unreachable node or a refused request is exit 2; an answer that is
/// missing or malformed is exit 1.
fn chain_failure(e: SubtensorError) -> Failure {
    if e.is_unreachable() || matches!(e, SubtensorError::Rpc { .. }) {
        Failure::Usage(e.into())
    } else {
        Failure::Invalid(e.into())
    }
}

fn print_header(header: &Header, json: bool) -> Result<(), Failure> {
    let hash = format!("0x{}", hex::encode(header.hash));
    let line = if json {
        serde_json::json!({"number": header.number, "hash": hash}).to_string()
    } else {
        format!("{} {hash}", header.number)
    };
    print_out(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(endpoint: Option<&str>, network: Option<&str>) -> NodeArgs {
        NodeArgs {
            endpoint: endpoint.map(str::to_owned),
            network: network.map(str::to_owned),
            json: false,
        }
    }

    fn resolve_with(args: &NodeArgs, vars: &[(&str, &str)]) -> Result<String, Failure> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        resolve(args, &move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    const FINNEY: &str = "https://entrypoint-finney.opentensor.ai:443";

    #[test]
    fn default_is_finney() {
        assert_eq!(resolve_with(&node(None, None), &[]).unwrap(), FINNEY);
    }

    #[test]
    fn flags_beat_environment_and_endpoint_beats_network() {
        let env = [
            (ENV_SUBTENSOR_CHAIN_ENDPOINT, "ws://10.0.0.1:9944"),
            (ENV_SUBTENSOR_NETWORK, "test"),
        ];
        assert_eq!(
            resolve_with(&node(None, None), &env).unwrap(),
            "http://10.0.0.1:9944"
        );
        assert_eq!(
            resolve_with(&node(None, None), &env[1..]).unwrap(),
            "https://test.finney.opentensor.ai:443"
        );
        assert_eq!(
            resolve_with(&node(None, Some("local")), &env).unwrap(),
            "http://127.0.0.1:9944"
        );
        assert_eq!(
            resolve_with(&node(Some("wss://n.example:443"), Some("local")), &env).unwrap(),
            "https://n.example:443"
        );
    }

    #[test]
    fn unknown_network_is_usage() {
        assert!(matches!(
            resolve_with(&node(None, Some("nakamoto")), &[]),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            resolve_with(&node(None, None), &[(ENV_SUBTENSOR_NETWORK, "nakamoto")]),
            Err(Failure::Usage(_))
        ));
    }
}
