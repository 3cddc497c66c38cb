//! The CUDA backend: a device ([`Gpu`]: context, stream, cuBLAS, the
//! kernels), the model on it ([`CudaModel`]) and rollout generation
//! ([`CudaModel::generate_groups`]), the GPU counterpart of
//! `grail_engine::generate_groups`.
#![allow(unsafe_code)]

mod device;
mod generate;
mod model;

pub use device::{AttnScratch, DBuf, Gpu, RopeKv};
pub use generate::decode_graph_rows;

/// Whether this build carries nvcc-compiled kernels (feature `cuda`), or
/// only the placeholders of feature `emulated`, which run nowhere but on
/// kernels/check's CPU emulation of the driver.
pub const REAL_KERNELS: bool = cfg!(feature = "cuda");

/// The device name kernels/check's emulated driver reports.
pub const EMULATOR_NAME: &str = "grail CPU emulator";
pub use model::{CudaModel, DeviceForward, ForwardOp, Gemm, KvCache, Workspace};

/// What went wrong on the device; every message names the operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    #[error(
        "the CUDA driver library (libcuda.so) could not be loaded: is an NVIDIA driver installed?"
    )]
    NoDriver,
    #[error("cuBLAS (libcublas.so.13) could not be loaded: put CUDA 13's lib directory on LD_LIBRARY_PATH")]
    NoCublas,
    #[error("{op}: {source}")]
    Driver {
        op: String,
        source: cudarc::driver::DriverError,
    },
    #[error("{op}: {source}")]
    Cublas {
        op: String,
        source: cudarc::cublas::result::CublasError,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Engine(#[from] grail_engine::EngineError),
}

impl From<CudaError> for grail_engine::EngineError {
    fn from(e: CudaError) -> Self {
        match e {
            CudaError::Engine(e) => e,
            other => grail_engine::EngineError::Device {
                backend: "cuda",
                message: other.to_string(),
            },
        }
    }
}

/// Adds the operation's name to a driver error.
trait Op<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T, CudaError>;
}

impl<T> Op<T> for Result<T, cudarc::driver::DriverError> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T, CudaError> {
        self.map_err(|source| CudaError::Driver { op: op(), source })
    }
}
