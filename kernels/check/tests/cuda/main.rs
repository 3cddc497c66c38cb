//! The CUDA backend's test suite, one executable: on the CPU emulation of
//! the driver, cuBLAS and the kernels by default (CI), on GPU 0 when built
//! with `--features cuda` (scripts/gpu-check.sh), as `grail_cuda_check`
//! decides from the build.
//! - `kernels`: every kernel against its CPU twin, and the forward pass
//!   against the CPU engine;
//! - `generation`: rollouts against the CPU engine's, token for token;
//! - `rollouts`: 1,024 rollouts through the CPU validator (GPU only);
//! - `bench`: cuda-bench's measurement and step breakdown, at a small size.
mod bench;
mod generation;
mod kernels;
mod rollouts;
