//! `grail devnet`: a whole local network for N windows (chain, beacon, M
//! miners, one validator; [`crate::devnet`]); `grail devnet serve`: only the
//! drand beacon and subtensor-like chain on loopback (see
//! [`grail_chain::devnet`]), until Ctrl-C.
//!
//! On start it prints, one per line on stdout, `chain_url URL`,
//! `drand_url URL`, `drand_chain_hash HEX`, `drand_public_key HEX`,
//! `drand_genesis_time T` and `drand_period P`: what a client needs to pin
//! the devnet's drand chain (`DrandChain::devnet(public_key, genesis_time,
//! period)`). Exit codes: 0 stopped by Ctrl-C, 2 usage or a port in use.

use anyhow::Context;
use grail_chain::devnet::{
    Devnet, DevnetConfig, DEFAULT_BLOCK_MS, DEFAULT_DRAND_PERIOD_S, DEFAULT_SEED,
};

use super::{print_out, Failure};

/// `grail devnet [FLAGS]` runs a local network; `grail devnet serve` only its chain and beacon.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevnetArgs {
    #[command(subcommand)]
    pub command: Option<DevnetCommand>,
    #[command(flatten)]
    pub run: crate::devnet::RunArgs,
}

/// `grail devnet` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DevnetCommand {
    /// Serve a local drand beacon and chain on 127.0.0.1 until Ctrl-C.
    Serve(ServeArgs),
}

/// Flags of `grail devnet serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port of the chain's JSON-RPC endpoint (0: any free port).
    #[arg(long, value_name = "P")]
    pub port: u16,
    /// Port of the drand relay API [default: P + 1, or any free port when P is 0].
    #[arg(long, value_name = "Q")]
    pub drand_port: Option<u16>,
    /// Milliseconds between blocks.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BLOCK_MS)]
    pub block_time_ms: u64,
    /// Seconds between drand rounds.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_DRAND_PERIOD_S)]
    pub drand_period: u64,
    /// Unix time (s) of block 0 and drand round 1 [default: now].
    #[arg(long, value_name = "T")]
    pub genesis_time: Option<u64>,
    /// Devnet seed: derives the drand key and the block hashes (public; never a secret).
    #[arg(long, value_name = "S", default_value = DEFAULT_SEED)]
    pub seed: String,
}

/// Run `grail devnet` or one of its subcommands.
pub fn run(args: &DevnetArgs) -> Result<(), Failure> {
    match &args.command {
        Some(DevnetCommand::Serve(serve_args)) => serve(serve_args),
        None => crate::devnet::run(&args.run),
    }
}

fn serve(args: &ServeArgs) -> Result<(), Failure> {
    if args.block_time_ms == 0 || args.drand_period == 0 {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--block-time-ms and --drand-period must be at least 1"
        )));
    }
    let drand_port = match (args.drand_port, args.port) {
        (Some(q), _) => q,
        (None, 0) => 0,
        (None, p) => p
            .checked_add(1)
            .context("--port 65535 needs an explicit --drand-port")
            .map_err(Failure::Usage)?,
    };
    let config = DevnetConfig {
        seed: args.seed.as_bytes().to_vec(),
        chain_port: args.port,
        drand_port,
        block_ms: args.block_time_ms,
        drand_period_s: args.drand_period,
        genesis_time: args.genesis_time,
        ..DevnetConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Usage)?;
    runtime.block_on(async {
        let devnet = Devnet::start(config)
            .await
            .context("starting the devnet")
            .map_err(Failure::Usage)?;
        let chain = devnet.drand_chain();
        let text = format!(
            "chain_url {}\ndrand_url {}\ndrand_chain_hash {}\ndrand_public_key {}\ndrand_genesis_time {}\ndrand_period {}\n",
            devnet.chain_url(),
            devnet.drand_url(),
            chain.hash_hex(),
            hex::encode(chain.public_key()),
            chain.genesis_time(),
            chain.period(),
        );
        print_out(text.trim_end_matches('\n'))?;
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")
            .map_err(Failure::Usage)?;
        tracing::info!("devnet stopping");
        devnet.shutdown().await;
        Ok(())
    })
}
