//! grail's GPU kernels: the CUDA sources in `kernels/cuda/` (one `.cu` per
//! op), their CPU twins ([`twins`]), and, with the `cuda` feature, the CUDA
//! backend built from them ([`cuda`]): weights and KV caches on the device,
//! dense products through cuBLAS (or, chosen with `CudaModel::set_gemm`,
//! gemm.cu's tensor-core kernel for bf16 products of up to 64 rows: decode
//! steps, with the activation and rope fused into the products before
//! them), everything else in our own kernels.
//!
//! Kernels are compiled at build time by nvcc (`build.rs`) into fatbins
//! embedded in the binary (SASS for sm_80 and sm_90, PTX for later GPUs); at
//! run time the CUDA driver and cuBLAS are loaded dynamically, so a machine
//! without them gets an error naming what is missing.
//!
//! The backend's numerical contract, per model storage type:
//! - f32 checkpoints (and f16, widened at upload): f32 weights, activations
//!   and KV cache, f32 GEMMs (no TF32): the CPU engine's arithmetic up to
//!   summation order.
//! - bf16 checkpoints: bf16 weights and KV cache; GEMMs read activations
//!   rounded to bf16 and accumulate in f32 (cuBLAS or gemm.cu, f32 output); residual
//!   stream, norms, softmax and sampling in f32/f64.

pub mod twins;

#[cfg(feature = "host")]
pub mod cuda;
