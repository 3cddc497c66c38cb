//! `grail chain`: subtensor queries — the best head, the finalized head, the
//! hash of a block.
//!
//! The node is chosen by `--endpoint` (alias `--subtensor.chain_endpoint`) or
//! `--network finney|test|local` (alias `--subtensor.network`), with
//! bittensor's precedence ([`grail_miner::args::NodeArgs`]): a flag beats the
//! environment, and an endpoint beats a network; then finney.
//!
//! Exit codes: 0 ok; 1 the node answered, and the answer is not there or not
//! valid (unknown block, malformed hash); 2 usage, an unreachable node, or a
//! node that refused the request.
use anyhow::anyhow;
use grail_chain::subtensor::{Header, SubtensorClient, SubtensorError};
use grail_miner::args::process_env;

use super::{current_thread_runtime, print_out, Failure};

/// `grail chain` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Print the best (newest, not necessarily final) block: number and hash.
    Head(QueryArgs),
    /// Print the finalized head: number and hash.
    Finalized(QueryArgs),
    /// Print the hash of block N of the canonical chain.
    BlockHash(BlockHashArgs),
}

/// Which node to ask, and how to print the answer.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub node: grail_miner::args::NodeArgs,
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
    pub node: QueryArgs,
}

/// Run a `grail chain` subcommand.
pub fn run(cmd: &ChainCommand) -> Result<(), Failure> {
    let node = match cmd {
        ChainCommand::Head(node) | ChainCommand::Finalized(node) => node,
        ChainCommand::BlockHash(args) => &args.node,
    };
    let endpoint = node
        .node
        .endpoint(&process_env)
        .map_err(|e| Failure::Usage(e.into()))?;
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
