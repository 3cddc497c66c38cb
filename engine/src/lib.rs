//! The grail inference engine on CPU: loads Hugging Face Llama and Qwen2
//! checkpoints (safetensors, memory-mapped, f32 / bf16 / f16), runs batched
//! prefill and decode with a KV cache, and generates groups of rollouts
//! through the protocol's verifiable sampler.
//!
//! It is the reference every accelerated backend is checked against and the
//! path `grail verify` runs on a laptop. Parity with transformers is tested
//! on committed fixtures (`tests/fixtures/engine/`, written by
//! `scripts/make_engine_fixtures.py`) and on the trained stories260K model.
//!
//! ```
//! use grail_engine::{
//!     generate_group, generate_groups, GenerateOptions, GroupRequest, LogitsFor, Model, Sampler, Tokenizer,
//! };
//! # let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/stories260K"));
//! let model = Model::load(dir)?;
//! let tokenizer = Tokenizer::load(dir)?;
//! let prompt = tokenizer.encode("Once upon a time", true)?; // [1, 403, 407, 261, 378]
//!
//! // one forward pass: final hidden states and logits at every position
//! let mut seq = model.new_sequence();
//! let out = model.forward(&mut [&mut seq], &[&prompt], LogitsFor::All)?;
//! assert_eq!(out.hidden.len(), prompt.len() * model.config().hidden_size);
//!
//! // a group of 4 rollouts with the protocol's verifiable sampler
//! let seeds = [[1u8; 32], [2; 32], [3; 32], [4; 32]];
//! let opts = GenerateOptions { max_new_tokens: 20, stop_tokens: &model.config().eos_token_ids, keep_hidden: true, sketch: None, cancel: None };
//! let group = generate_group(&model, &prompt, Sampler::Verifiable { temperature: 0.8, seeds: &seeds }, &opts)?;
//! assert_eq!(group.len(), 4);
//! for c in &group {
//!     assert_eq!(c.logprobs.len(), c.tokens.len());
//!     assert_eq!(c.hidden.as_ref().unwrap().len(), c.tokens.len() * model.config().hidden_size);
//! }
//!
//! // several groups at once: one prefill, one decode batch; each group's
//! // rollouts are bit for bit those it gets alone
//! let other = tokenizer.encode("The cat", true)?;
//! let groups = [
//!     GroupRequest { prompt: &prompt, sampler: Sampler::Verifiable { temperature: 0.8, seeds: &seeds } },
//!     GroupRequest { prompt: &other, sampler: Sampler::Greedy { n: 2 } },
//! ];
//! let both = generate_groups(&model, &groups, &opts)?;
//! assert_eq!(both[0][3].tokens, group[3].tokens);
//! assert_eq!(both[1].len(), 2);
//! # Ok::<(), grail_engine::EngineError>(())
//! ```
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
pub use generate::{
    generate_group, generate_groups, validate_groups, verifiable_groups, Completion, FinishReason,
    GenerateOptions, GroupRequest, Sampler,
};
pub use model::{ForwardOutput, LayerWeights, LogitsFor, Model, Sequence, MAX_POSITIONS};
pub use tokenizer::{ChatMessage, Tokenizer};
