//! The grail inference engine on CPU: loads Hugging Face Llama and Qwen2
//! checkpoints (safetensors, memory-mapped, f32 / bf16 / f16), runs batched
//! prefill and decode with a KV cache, and generates groups of rollouts
//! through the protocol's verifiable sampler.
//!
//! It is the reference every accelerated backend is checked against and the
//! path `grail verify` runs on a laptop. Parity with transformers is tested
//! on committed fixtures (`tests/fixtures/engine/`, written by
//! `scripts/make_engine_fixtures.py`) and on the trained stories260K model.
#![deny(unsafe_code)]

pub mod config;
pub mod error;
pub mod generate;
pub mod kernels;
pub mod model;
pub mod synthetic;
pub mod tokenizer;

pub use config::{Architecture, ModelConfig, RopeScaling};
pub use error::EngineError;
pub use generate::{generate_group, Completion, FinishReason, GenerateOptions, Sampler};
pub use model::{ForwardOutput, LogitsFor, Model, Sequence};
pub use tokenizer::{ChatMessage, Tokenizer};
