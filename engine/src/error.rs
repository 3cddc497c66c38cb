//! Engine errors. Each names the file, tensor or token that is wrong.

use std::io;
use std::path::PathBuf;

use grail_core::tensors::TensorsError;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A file the model directory must have is not there.
    #[error("{path} does not exist")]
    MissingFile { path: PathBuf },
    /// A file exists but could not be read.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `config.json` / `generation_config.json` / `tokenizer_config.json`
    /// is malformed or asks for something unsupported.
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    /// `architectures` names no supported model class.
    #[error(
        "{path}: architectures {found:?} is not supported (LlamaForCausalLM or Qwen2ForCausalLM)"
    )]
    UnsupportedArchitecture { path: PathBuf, found: Vec<String> },
    /// The safetensors files are missing, corrupt or inconsistent.
    #[error(transparent)]
    Tensors(#[from] TensorsError),
    /// A tensor the configuration requires is not in the checkpoint.
    #[error("tensor {tensor:?} is missing from the checkpoint in {dir}")]
    MissingTensor { dir: PathBuf, tensor: String },
    /// A tensor has a shape other than the configuration implies.
    #[error("tensor {tensor:?} in {file} has shape {found:?}, expected {expected:?}")]
    TensorShape {
        tensor: String,
        file: PathBuf,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor is stored in a dtype the engine does not compute with.
    #[error("tensor {tensor:?} in {file} has dtype {dtype}; supported: F32, BF16, F16")]
    TensorDtype {
        tensor: String,
        file: PathBuf,
        dtype: String,
    },
    /// A tensor holds NaN or infinity (checked for the small f32 copies the
    /// engine makes: norms and biases).
    #[error("tensor {tensor:?} in {file} holds a non-finite value at element {index}")]
    NonFinite {
        tensor: String,
        file: PathBuf,
        index: usize,
    },
    /// A token id outside the model's vocabulary.
    #[error("token id {token} at input position {position} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        token: u32,
        position: usize,
        vocab: usize,
    },
    /// A sequence would grow beyond the model's context
    /// ([`Model::max_positions`](crate::Model::max_positions)).
    #[error("sequence length {len} exceeds the model's context limit {max} (max_position_embeddings unless raised with set_max_positions)")]
    ContextTooLong { len: usize, max: usize },
    /// [`Model::set_max_positions`](crate::Model::set_max_positions) was
    /// asked for a limit outside `1..=max`.
    #[error("a context limit of {requested} positions is outside 1..={max}")]
    MaxPositionsOutOfRange { requested: usize, max: usize },
    /// The tokenizer file could not be loaded or could not encode/decode.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    /// A chat template failed to parse or render.
    #[error("chat template from {path}: {reason}")]
    ChatTemplate { path: PathBuf, reason: String },
    /// The logits at a position are not finite (a broken checkpoint).
    #[error("sampling failed at completion position {position}: {source}")]
    Sampling {
        position: usize,
        #[source]
        source: grail_core::sampling::SamplingError,
    },
    /// A request that makes no sense (empty prompt, zero rollouts, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// What went wrong with one group of a
    /// [`generate_groups`](crate::generate_groups) request (its index in
    /// the request).
    #[error("group {group}: {source}")]
    Group {
        group: usize,
        source: Box<EngineError>,
    },
    /// Generation was cancelled through
    /// [`GenerateOptions::cancel`](crate::GenerateOptions::cancel).
    #[error("generation cancelled")]
    Cancelled,

    /// An accelerated backend failed (no driver, out of device memory, a
    /// kernel error); the message names the operation.
    #[error("{backend} backend: {message}")]
    Device {
        backend: &'static str,
        message: String,
    },
}

impl EngineError {
    /// This error, as concerning group `group` of a request.
    pub fn in_group(self, group: usize) -> Self {
        EngineError::Group {
            group,
            source: Box::new(self),
        }
    }

    /// True when the input was read and found wrong (bad config, corrupt
    /// tensors, a token out of range); false when something could not be
    /// read at all (missing file, I/O) or the work was cancelled. Tools map
    /// these to exit codes.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            EngineError::MissingFile { .. } | EngineError::Io { .. } => false,
            EngineError::Tensors(e) => e.is_invalid_input(),
            EngineError::Group { source, .. } => source.is_invalid_input(),
            EngineError::Cancelled => false,
            _ => true,
        }
    }
}
