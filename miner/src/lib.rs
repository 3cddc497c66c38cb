//! grail miner: every window, derive this hotkey's problems from the
//! finalized window block and a verified drand beacon, generate a GRPO group
//! of rollouts per problem with the verifiable sampler, commit per-token
//! logprobs and hidden-state sketches, score, sign, and upload one window
//! file before the deadline (PROTOCOL.md §14).
//!
//! | module | what |
//! |---|---|
//! | [`follow`] | chain and beacon: finalized window blocks, verified beacons, retries, shutdown |
//! | [`rollout`] | problems, prompt tokens, sampling seeds, signed records (shared with validators) |
//! | [`backend`] | the generation interface (CPU engine; CUDA later) |
//! | [`plan`] | how many problems fit before the deadline |
//! | [`store`] | `file://` and `s3://` window-file storage, atomic uploads |
//! | [`miner`] | the window loop |
//! | [`args`] | Bittensor's wallet and node flags |
//! | [`bench`] | generation throughput with and without commitments |
#![deny(unsafe_code)]

pub mod args;
pub mod backend;
pub mod bench;
pub mod follow;
pub mod miner;
pub mod plan;
pub mod rollout;
pub mod store;

#[cfg(any(feature = "cuda", feature = "cuda-emulated"))]
pub use backend::CudaBackend;
pub use backend::{Backend, BackendKind, CpuBackend, GemmKind};
pub use follow::{Follower, NetworkSource, Shutdown};
pub use miner::{Miner, MinerOptions, WindowOutcome, WindowSummary};
pub use store::{StoreArgs, WindowStore};
