//! Network edges of grail: the drand HTTP client with relay failover and a
//! persistent cache of verified beacons ([`drand`]), and the subtensor
//! JSON-RPC block source and metagraph reader ([`subtensor`]), and a local
//! devnet serving both APIs on loopback ([`devnet`]). Everything
//! that is verified is verified by `grail_core`; nothing here substitutes
//! local randomness or unverified data for what the network failed to give.
#![forbid(unsafe_code)]

pub mod devnet;
pub mod drand;
mod http;
pub mod subtensor;
