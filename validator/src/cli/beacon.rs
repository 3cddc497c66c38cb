//! `grail beacon`: verify a drand beacon, or fetch a verified one from relays.
//!
//! `grail beacon verify` checks one beacon against a pinned chain (BLS
//! signature, chaining, `randomness == sha256(signature)`); exit 0 valid,
//! 1 invalid, 2 usage error. `grail beacon fetch` asks relays (in order, with
//! failover) for a beacon, verifies it and prints it as JSON; exit 1 when no
//! relay served a valid one. Neither ever falls back to local randomness.
use std::path::PathBuf;

use anyhow::anyhow;
use grail_chain::drand::{BeaconCache, ClientConfig, DrandClient, DrandError, DEFAULT_RELAYS};
use grail_core::beacon::{randomness_of, verify, Beacon, DrandChain, VerifiedBeacon};

use super::{current_thread_runtime, print_out, Failure};

/// A pinned drand chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChainName {
    /// quicknet: unchained, 3 s rounds (the chain grail uses).
    Quicknet,
    /// The League of Entropy default chain: chained, 30 s rounds.
    Default,
    /// A local devnet (`grail devnet serve`): quicknet's scheme under the key
    /// given by --devnet-public-key, with --devnet-genesis-time and --devnet-period.
    Devnet,
}

/// The devnet chain's parameters, as `grail devnet serve` prints them
/// (only with `--chain devnet`).
#[derive(Debug, clap::Args)]
pub struct DevnetChainArgs {
    /// Devnet drand public key, hex (compressed G2, 96 bytes).
    #[arg(long, value_name = "HEX")]
    pub devnet_public_key: Option<String>,
    /// Devnet drand genesis time (unix seconds).
    #[arg(long, value_name = "T")]
    pub devnet_genesis_time: Option<u64>,
    /// Devnet drand period (seconds).
    #[arg(long, value_name = "S", default_value_t = grail_chain::devnet::DEFAULT_DRAND_PERIOD_S)]
    pub devnet_period: u64,
}

impl ChainName {
    fn chain(self, devnet: &DevnetChainArgs) -> Result<DrandChain, Failure> {
        match self {
            ChainName::Quicknet => Ok(DrandChain::quicknet()),
            ChainName::Default => Ok(DrandChain::default_chain()),
            ChainName::Devnet => {
                let (Some(key), Some(genesis_time)) =
                    (&devnet.devnet_public_key, devnet.devnet_genesis_time)
                else {
                    return Err(Failure::Usage(anyhow!(
                        "--chain devnet needs --devnet-public-key and --devnet-genesis-time"
                    )));
                };
                let key = hex_arg("devnet-public-key", key)?;
                DrandChain::devnet(&key, genesis_time, devnet.devnet_period)
                    .map_err(|e| Failure::Usage(e.into()))
            }
        }
    }
}

/// `grail beacon` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BeaconCommand {
    /// Verify one beacon against a pinned chain: exit 0 valid, 1 invalid, 2 usage error.
    Verify(VerifyArgs),
    /// Fetch a beacon from drand relays, verify it, and print it as JSON.
    Fetch(FetchArgs),
}

/// Flags of `grail beacon verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The chain the beacon claims to belong to.
    #[arg(long, value_enum)]
    pub chain: ChainName,
    #[command(flatten)]
    pub devnet: DevnetChainArgs,
    /// The beacon's round (>= 1).
    #[arg(long)]
    pub round: u64,
    /// The BLS signature, hex.
    #[arg(long, value_name = "HEX")]
    pub signature: String,
    /// The previous round's signature, hex (chained chains only; round 1's is
    /// the genesis seed).
    #[arg(long, value_name = "HEX")]
    pub previous_signature: Option<String>,
    /// The claimed randomness, hex (32 bytes); checked to equal
    /// sha256(signature). Omitted: computed from the signature and printed.
    #[arg(long, value_name = "HEX")]
    pub randomness: Option<String>,
}

/// Flags of `grail beacon fetch`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["round", "latest"])))]
pub struct FetchArgs {
    /// The chain to fetch from.
    #[arg(long, value_enum)]
    pub chain: ChainName,
    #[command(flatten)]
    pub devnet: DevnetChainArgs,
    /// The round to fetch.
    #[arg(long)]
    pub round: Option<u64>,
    /// Fetch the latest round a relay serves.
    #[arg(long)]
    pub latest: bool,
    /// Relay base URL, asked in the order given (repeatable). Default: the
    /// League of Entropy relays api.drand.sh, api2.drand.sh, api3.drand.sh,
    /// drand.cloudflare.com (required with --chain devnet).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,
    /// Directory of verified beacons: read first (re-verified), written after
    /// a fetch.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// Run a `grail beacon` subcommand.
pub fn run(cmd: &BeaconCommand) -> Result<(), Failure> {
    match cmd {
        BeaconCommand::Verify(args) => verify_cmd(args),
        BeaconCommand::Fetch(args) => fetch_cmd(args),
    }
}

fn hex_arg(flag: &str, s: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(s.trim()).map_err(|e| Failure::Usage(anyhow!("--{flag}: not hex: {e}")))
}

fn verify_cmd(args: &VerifyArgs) -> Result<(), Failure> {
    let chain = args.chain.chain(&args.devnet)?;
    let signature = hex_arg("signature", &args.signature)?;
    let previous_signature = args
        .previous_signature
        .as_deref()
        .map(|s| hex_arg("previous-signature", s))
        .transpose()?;
    let randomness = match &args.randomness {
        Some(s) => hex_arg("randomness", s)?.try_into().map_err(|v: Vec<u8>| {
            Failure::Usage(anyhow!("--randomness: {} bytes, expected 32", v.len()))
        })?,
        None => randomness_of(&signature),
    };
    let beacon = Beacon {
        round: args.round,
        signature,
        previous_signature,
        randomness,
    };
    let v = verify(&chain, &beacon).map_err(|e| Failure::Invalid(e.into()))?;
    print_out(&format!(
        "valid: {} round {} randomness {}",
        chain.name(),
        v.round(),
        hex::encode(v.randomness())
    ))
}

fn fetch_cmd(args: &FetchArgs) -> Result<(), Failure> {
    let chain = args.chain.chain(&args.devnet)?;
    if args.chain == ChainName::Devnet && args.relays.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "--chain devnet needs --relay (the devnet's drand_url)"
        )));
    }
    let relays = if args.relays.is_empty() {
        DEFAULT_RELAYS.iter().map(|r| r.to_string()).collect()
    } else {
        args.relays.clone()
    };
    let mut client = DrandClient::new(chain.clone(), relays, ClientConfig::default())
        .map_err(|e| Failure::Usage(e.into()))?;
    if let Some(dir) = &args.cache {
        client = client.with_cache(BeaconCache::open(dir).map_err(|e| Failure::Usage(e.into()))?);
    }
    let runtime = current_thread_runtime()?;
    let result = runtime.block_on(async {
        match args.round {
            Some(round) => client.fetch(round).await,
            None => client.latest().await,
        }
    });
    let v = result.map_err(|e| match e {
        e @ DrandError::AllRelaysFailed { .. } => Failure::Invalid(e.into()),
        e => Failure::Usage(e.into()),
    })?;
    print_out(&beacon_json(&chain, &v).to_string())
}

fn beacon_json(chain: &DrandChain, v: &VerifiedBeacon) -> serde_json::Value {
    let mut j = serde_json::json!({
        "chain": chain.name(),
        "chain_hash": chain.hash_hex(),
        "round": v.round(),
        "randomness": hex::encode(v.randomness()),
        "signature": hex::encode(v.signature()),
    });
    if let Some(p) = v.previous_signature() {
        j["previous_signature"] = hex::encode(p).into();
    }
    j
}
