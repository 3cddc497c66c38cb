//! The generation interface the miner drives: the CPU engine, and the CUDA
//! backend (feature `cuda`) behind the same trait.
use std::path::Path;
use std::sync::atomic::AtomicBool;

use grail_core::hash::Digest;
use grail_core::sketch::SketchPlanes;
use grail_engine::generate::GroupRequest;
use grail_engine::{
    generate_groups, verifiable_groups, Completion, EngineError, GenerateOptions, Model,
    ModelConfig,
};

/// One group to generate: a prompt and one sampling seed per rollout.
#[derive(Debug, Clone, Copy)]
pub struct GroupJob<'a> {
    pub prompt: &'a [u32],
    pub seeds: &'a [Digest],
}

/// What every group of one call shares.
#[derive(Debug, Clone, Copy)]
pub struct JobOptions<'a> {
    pub temperature: f64,
    pub max_new_tokens: usize,
    /// Completion ends after any of these (kept as the last token).
    pub stop_tokens: &'a [u32],
    pub planes: &'a SketchPlanes,
    /// Set to stop at the next decode step ([`EngineError::Cancelled`]).
    pub cancel: Option<&'a AtomicBool>,
}

/// A rollout generator: verifiable sampling, per-token logprobs and sketches.
pub trait Backend: Send + Sync {
    /// For logs: which backend, on what.
    fn describe(&self) -> String;
    /// The model's shape.
    fn model_config(&self) -> &ModelConfig;
    /// The model's hidden size (the sketch planes' dimension).
    fn hidden_size(&self) -> usize {
        self.model_config().hidden_size
    }
    /// The model's end-of-sequence ids.
    fn eos_tokens(&self) -> &[u32] {
        &self.model_config().eos_token_ids
    }
    /// Generate every group's rollouts; `out[g][r]` is rollout `r` of group
    /// `g`, with tokens, logprobs and sketches.
    fn generate(
        &self,
        jobs: &[GroupJob<'_>],
        opts: &JobOptions<'_>,
    ) -> Result<Vec<Vec<Completion>>, EngineError>;
}

/// Which backend `--backend` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The CPU engine (grail-engine).
    Cpu,
    /// The CUDA backend (grail-kernels; built with `--features cuda`).
    #[cfg(feature = "cuda")]
    Cuda,
}

/// Which code multiplies by the weights in the CUDA backend (`--gemm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GemmKind {
    /// cuBLAS for every product.
    Cublas,
    /// grail's own tensor-core kernel (kernels/cuda/gemm.cu) for the bf16
    /// products of decode steps (up to 64 rows), with rope and the SwiGLU
    /// activation fused in; cuBLAS for the rest.
    Grail,
}

/// The CPU engine: groups prefilled in one pass, all rollouts decoded as one batch.
#[derive(Debug)]
pub struct CpuBackend {
    model: Model,
}

impl CpuBackend {
    /// Load `dir`, allowing `context_limit` positions when that is more than
    /// the checkpoint's own limit.
    pub fn load(dir: &Path, context_limit: Option<u32>) -> Result<CpuBackend, EngineError> {
        let mut model = Model::load(dir)?;
        if let Some(limit) = context_limit {
            let limit = limit as usize;
            if limit > model.max_positions() {
                model.set_max_positions(limit)?;
            }
        }
        Ok(CpuBackend { model })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!(
            "cpu engine, {} threads, {} ({} layers, hidden {})",
            threads(),
            self.model.config().architecture.hf_name(),
            self.model.config().num_layers,
            self.model.config().hidden_size
        )
    }

    fn model_config(&self) -> &ModelConfig {
        self.model.config()
    }

    fn generate(
        &self,
        jobs: &[GroupJob<'_>],
        opts: &JobOptions<'_>,
    ) -> Result<Vec<Vec<Completion>>, EngineError> {
        generate_groups(&self.model, &requests(jobs, opts), &engine_options(opts))
    }
}

/// The CUDA backend: the same groups, generated on GPU 0 by grail-kernels.
#[cfg(any(feature = "cuda", feature = "cuda-emulated"))]
#[derive(Debug)]
pub struct CudaBackend {
    model: grail_kernels::cuda::CudaModel,
}

#[cfg(any(feature = "cuda", feature = "cuda-emulated"))]
impl CudaBackend {
    /// Load `dir` (as [`CpuBackend::load`]) and upload it to GPU 0, its
    /// products with the weights computed by `gemm`.
    pub fn load(
        dir: &Path,
        context_limit: Option<u32>,
        gemm: GemmKind,
    ) -> Result<CudaBackend, EngineError> {
        let cpu = CpuBackend::load(dir, context_limit)?;
        let gpu = grail_kernels::cuda::Gpu::new(0)?;
        let mut model = grail_kernels::cuda::CudaModel::new(gpu, cpu.model)?;
        model.set_gemm(match gemm {
            GemmKind::Cublas => grail_kernels::cuda::Gemm::Cublas,
            GemmKind::Grail => grail_kernels::cuda::Gemm::Grail,
        });
        Ok(CudaBackend { model })
    }
}

#[cfg(any(feature = "cuda", feature = "cuda-emulated"))]
impl Backend for CudaBackend {
    fn describe(&self) -> String {
        let c = self.model.config();
        format!(
            "cuda, {}, {:?} storage, {:?} GEMMs, {} ({} layers, hidden {})",
            self.model.gpu().describe(),
            self.model.dt(),
            self.model.gemm(),
            c.architecture.hf_name(),
            c.num_layers,
            c.hidden_size
        )
    }

    fn model_config(&self) -> &ModelConfig {
        self.model.config()
    }

    fn generate(
        &self,
        jobs: &[GroupJob<'_>],
        opts: &JobOptions<'_>,
    ) -> Result<Vec<Vec<Completion>>, EngineError> {
        self.model
            .generate_groups(&requests(jobs, opts), &engine_options(opts))
    }
}

/// The engine's request for each job: the protocol sampler at the window's
/// temperature, one seed per rollout.
fn requests<'a>(jobs: &[GroupJob<'a>], opts: &JobOptions<'_>) -> Vec<GroupRequest<'a>> {
    verifiable_groups(jobs.iter().map(|j| (j.prompt, j.seeds)), opts.temperature)
}

/// The engine's options for a call: sketches on, hidden states not kept.
fn engine_options<'a>(opts: &JobOptions<'a>) -> GenerateOptions<'a> {
    GenerateOptions {
        max_new_tokens: opts.max_new_tokens,
        stop_tokens: opts.stop_tokens,
        keep_hidden: false,
        sketch: Some(opts.planes),
        cancel: opts.cancel,
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
