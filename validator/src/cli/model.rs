//! `grail model forward` and `grail model generate`: run a checkpoint on the
//! CPU engine. Every failure (bad flags, a missing or corrupt model, a token
//! outside the vocabulary) is a usage error, exit 2.
use std::path::PathBuf;

use anyhow::anyhow;
use grail_core::params::{MAX_COMPLETION_TOKENS, MAX_TEMPERATURE_MILLI};
use grail_engine::{
    generate_group, ChatMessage, Completion, FinishReason, GenerateOptions, LogitsFor, Model,
    Sampler, Tokenizer,
};
use serde_json::json;

use super::{print_out, Failure};

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Run one sequence of token ids; print every position's final hidden
    /// state (the LM head's input) and logits.
    Forward(ForwardArgs),
    /// Generate a continuation of a text prompt.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// Model directory (config.json and safetensors weights).
    #[arg(long)]
    pub model: PathBuf,
    /// Comma-separated token ids, e.g. 1,5,7.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub tokens: Vec<u32>,
    /// Print `{"tokens": [...], "hidden": [[...]...], "logits": [[...]...],
    /// "logprobs": [...]}` (logprobs: log-softmax of the next token, null at
    /// the last position) instead of a per-position summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Model directory (config.json, safetensors weights, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Stop after this many new tokens (or at an EOS token).
    #[arg(long)]
    pub max_new_tokens: u32,
    /// Argmax decoding (the default when no --temperature is given).
    #[arg(long, conflicts_with_all = ["temperature", "seed"])]
    pub greedy: bool,
    /// Sample with the protocol's verifiable sampler at this temperature
    /// (a multiple of 0.001, at most MAX_TEMPERATURE_MILLI / 1000).
    #[arg(long, requires = "seed")]
    pub temperature: Option<f64>,
    /// Rollout seed for the sampler's uniforms: 64 hex digits.
    #[arg(long, requires = "temperature")]
    pub seed: Option<String>,
    /// Print JSON: prompt and completion text, token ids, logprobs.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: &ModelCommand) -> Result<(), Failure> {
    match cmd {
        ModelCommand::Forward(a) => forward(a),
        ModelCommand::Generate(a) => generate(a),
    }
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

fn load(dir: &std::path::Path) -> Result<Model, Failure> {
    Model::load(dir)
        .map_err(|e| usage(anyhow!(e).context(format!("loading model {}", dir.display()))))
}

fn forward(a: &ForwardArgs) -> Result<(), Failure> {
    let model = load(&a.model)?;
    let mut seq = model.new_sequence();
    let out = model
        .forward(&mut [&mut seq], &[&a.tokens], LogitsFor::All)
        .map_err(usage)?;
    let n = a.tokens.len();
    if a.json {
        let hidden: Vec<&[f32]> = (0..n).map(|r| out.hidden_row(r)).collect();
        let logits: Vec<&[f32]> = (0..n).map(|r| out.logits_row(r)).collect();
        // log-softmax of the next token at each position (none after the last)
        let mut logprobs: Vec<Option<f64>> = Vec::with_capacity(n);
        for r in 0..n {
            logprobs.push(match a.tokens.get(r + 1) {
                Some(&t) => Some(
                    out.logprob(r, 1.0, t)
                        .map_err(|e| usage(anyhow!("position {r}: {e}")))?,
                ),
                None => None,
            });
        }
        let v =
            json!({"tokens": a.tokens, "hidden": hidden, "logits": logits, "logprobs": logprobs});
        return print_out(&v.to_string());
    }
    let mut lines = vec![format!(
        "{} positions, hidden size {}, vocabulary {}",
        n, out.hidden_size, out.vocab_size
    )];
    for r in 0..n {
        let logits = out.logits_row(r);
        let h = out.hidden_row(r);
        let norm = h.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        let mut top: Vec<usize> = (0..logits.len()).collect();
        top.sort_by(|&i, &j| logits[j].total_cmp(&logits[i]).then(i.cmp(&j)));
        let top5: Vec<String> = top
            .iter()
            .take(5)
            .map(|&i| format!("{i}:{:.4}", logits[i]))
            .collect();
        let next = match a.tokens.get(r + 1) {
            Some(&t) => format!(
                "{:.5}",
                grail_core::sampling::logprob(logits, 1.0, t)
                    .map_err(|e| usage(anyhow!("position {r}: {e}")))?
            ),
            None => "-".into(),
        };
        lines.push(format!(
            "pos {r:>4} token {:>6}  |hidden| {norm:>9.4}  logprob(next) {next:>10}  top5 {}",
            a.tokens[r],
            top5.join(" ")
        ));
    }
    print_out(&lines.join("\n"))
}

fn parse_seed(hex_seed: &str) -> Result<[u8; 32], Failure> {
    let bytes =
        hex::decode(hex_seed).map_err(|e| usage(anyhow!("--seed {hex_seed:?} is not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        usage(anyhow!(
            "--seed must be 32 bytes (64 hex digits), got {} bytes",
            b.len()
        ))
    })
}

fn temperature_milli(t: f64) -> Result<u16, Failure> {
    let milli = (t * 1000.0).round();
    if !(t.is_finite()
        && (t * 1000.0 - milli).abs() < 1e-6
        && milli >= 1.0
        && milli <= f64::from(MAX_TEMPERATURE_MILLI))
    {
        return Err(usage(anyhow!(
            "--temperature {t} must be a multiple of 0.001 in 0.001..={}",
            f64::from(MAX_TEMPERATURE_MILLI) / 1000.0
        )));
    }
    Ok(milli as u16)
}

fn generate(a: &GenerateArgs) -> Result<(), Failure> {
    if a.max_new_tokens == 0 || a.max_new_tokens > MAX_COMPLETION_TOKENS {
        return Err(usage(anyhow!(
            "--max-new-tokens {} outside 1..={MAX_COMPLETION_TOKENS}",
            a.max_new_tokens
        )));
    }
    let seed = a.seed.as_deref().map(parse_seed).transpose()?;
    let milli = a.temperature.map(temperature_milli).transpose()?;
    let model = load(&a.model)?;
    let tokenizer = Tokenizer::load(&a.model).map_err(usage)?;
    let prompt = if a.chat {
        tokenizer.encode_chat(&[ChatMessage::new("user", a.prompt.clone())])
    } else {
        tokenizer.encode(&a.prompt, true)
    }
    .map_err(usage)?;
    if prompt.is_empty() {
        return Err(usage(anyhow!("the prompt encodes to no tokens")));
    }
    let seeds = seed.map(|s| [s]);
    let sampler = match (milli, &seeds) {
        (Some(m), Some(s)) => Sampler::Verifiable {
            temperature: f64::from(m) / 1000.0,
            seeds: s,
        },
        _ => Sampler::Greedy { n: 1 },
    };
    let opts = GenerateOptions {
        max_new_tokens: a.max_new_tokens as usize,
        stop_tokens: &model.config().eos_token_ids,
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let c: Completion = generate_group(&model, &prompt, sampler, &opts)
        .map_err(usage)?
        .pop()
        .expect("one rollout");
    let all: Vec<u32> = prompt.iter().chain(&c.tokens).copied().collect();
    let text = tokenizer.decode(&all, true).map_err(usage)?;
    let completion = tokenizer.decode(&c.tokens, true).map_err(usage)?;
    let finish = match c.finish {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    };
    if a.json {
        let v = json!({
            "prompt": a.prompt,
            "prompt_tokens": prompt,
            "text": text,
            "completion": completion,
            "tokens": c.tokens,
            "logprobs": c.logprobs,
            "finish": finish,
            "sampler": match milli {
                Some(m) => json!({"temperature_milli": m, "seed": a.seed}),
                None => json!("greedy"),
            },
        });
        return print_out(&v.to_string());
    }
    let logprobs: Vec<String> = c.logprobs.iter().map(|l| format!("{l:.4}")).collect();
    print_out(&format!(
        "{text}\n---\nprompt tokens ({}): {:?}\ncompletion tokens ({}, {finish}): {:?}\nlogprobs: [{}]",
        prompt.len(),
        prompt,
        c.tokens.len(),
        c.tokens,
        logprobs.join(", ")
    ))
}
