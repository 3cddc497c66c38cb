//! grail validator library and the `grail` command-line tool: the
//! verification pipeline ([`verify`]), window values and beacons
//! ([`context`]), scoring ([`score`]) and state ([`state`]), the service
//! ([`service`]), and the one-process local network ([`devnet`]).
pub mod bench;
pub mod cli;
pub mod context;
pub mod devnet;
pub mod score;
pub mod service;
pub mod state;
pub mod verify;
