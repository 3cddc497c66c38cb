//! Tokenizer and chat template of a model directory.
//!
//! `tokenizer.json` is loaded with the `tokenizers` crate (the same code as
//! transformers' fast tokenizers). The chat template is, in order of
//! preference, `chat_template.jinja`, then `tokenizer_config.json`'s
//! `chat_template` (a string, or a list of named templates of which
//! `"default"` is used), then [`PLAIN_TEMPLATE`]. It is rendered with
//! minijinja configured as transformers configures Jinja for chat templates
//! (`trim_blocks`, `lstrip_blocks`, loop controls, Python string methods,
//! `raise_exception`), and the rendered text is encoded without adding
//! special tokens, as `apply_chat_template` does.
//!
//! Templates that call `strftime_now` get a fixed date ([`TEMPLATE_DATE`]):
//! a prompt must tokenize identically for the miner and every validator, on
//! any day.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::config::{read_capped, read_json, MAX_CONFIG_BYTES};
use crate::error::EngineError;

/// The template used when a model has none: each message as
/// `"{role}: {content}\n\n"`, then `"assistant: "` when a generation prompt
/// is asked for.
pub const PLAIN_TEMPLATE: &str = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";

/// The date `strftime_now` returns in chat templates (any format string):
/// fixed, so prompts do not depend on the day they are rendered.
pub const TEMPLATE_DATE: &str = "26 Jul 2024";

/// Largest tokenizer file read (real ones are a few MiB to ~30 MiB).
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// Template execution budget (minijinja fuel): ample for any real chat
/// template over protocol-sized prompts, fatal to a template that loops
/// over `range(10**9)`.
const TEMPLATE_FUEL: u64 = 5_000_000;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A model's tokenizer and chat template.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    template: String,
    template_source: PathBuf,
    special: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("template_source", &self.template_source)
            .finish()
    }
}

/// A token string from `tokenizer_config.json`: a string or an AddedToken
/// object with `content`.
fn token_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json` and the chat template from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(EngineError::MissingFile { path });
        }
        let bytes = read_capped(&path, MAX_TOKENIZER_BYTES)?;
        let inner =
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| EngineError::Tokenizer {
                path: path.clone(),
                reason: e.to_string(),
            })?;

        let config_path = dir.join("tokenizer_config.json");
        let config: Value = if config_path.exists() {
            read_json(&config_path)?
        } else {
            Value::Null
        };
        if !(config.is_null() || config.is_object()) {
            return Err(EngineError::Config {
                path: config_path,
                reason: "not a JSON object".into(),
            });
        }
        let mut special = Vec::new();
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            if let Some(s) = config.get(key).and_then(token_string) {
                special.push((key, s));
            }
        }

        let jinja = dir.join("chat_template.jinja");
        let (template, template_source) = if jinja.exists() {
            let bytes = read_capped(&jinja, MAX_CONFIG_BYTES)?;
            let text = String::from_utf8(bytes).map_err(|_| EngineError::ChatTemplate {
                path: jinja.clone(),
                reason: "not UTF-8".into(),
            })?;
            (text, jinja)
        } else {
            match config.get("chat_template") {
                None | Some(Value::Null) => (
                    PLAIN_TEMPLATE.to_string(),
                    PathBuf::from("<plain template>"),
                ),
                Some(Value::String(s)) => (s.clone(), config_path.clone()),
                Some(Value::Array(list)) => {
                    let default = list
                        .iter()
                        .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                        .and_then(|t| t.get("template"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| EngineError::ChatTemplate {
                            path: config_path.clone(),
                            reason: "chat_template is a list without a \"default\" entry".into(),
                        })?;
                    (default.to_string(), config_path.clone())
                }
                Some(other) => {
                    return Err(EngineError::ChatTemplate {
                        path: config_path,
                        reason: format!("chat_template is neither a string nor a list: {other}"),
                    })
                }
            }
        };
        let tok = Tokenizer {
            inner,
            path,
            template,
            template_source,
            special,
        };
        // Fail at load, not at the first prompt, on a template that does not parse.
        tok.environment()?;
        Ok(tok)
    }

    /// Where the chat template came from (a file, or `<plain template>`).
    pub fn template_source(&self) -> &Path {
        &self.template_source
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn tok_err(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::Tokenizer {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Token ids of `text`; `add_special_tokens` applies the tokenizer's
    /// post-processor (a BOS for Llama tokenizers), as transformers'
    /// `tokenizer(text)` does.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, EngineError> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.tok_err(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped when asked.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, EngineError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.tok_err(e))
    }

    fn environment(&self) -> Result<minijinja::Environment<'_>, EngineError> {
        let mut env = minijinja::Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default delimiters are valid"),
        );
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_function("strftime_now", |_format: String| TEMPLATE_DATE.to_string());
        env.add_template("chat", &self.template)
            .map_err(|e| EngineError::ChatTemplate {
                path: self.template_source.clone(),
                reason: e.to_string(),
            })?;
        Ok(env)
    }

    /// The chat template rendered over `messages`.
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        let env = self.environment()?;
        let tmpl = env.get_template("chat").map_err(|e| self.template_err(e))?;
        let mut ctx = serde_json::Map::new();
        ctx.insert(
            "messages".into(),
            serde_json::to_value(messages).expect("messages serialize"),
        );
        ctx.insert(
            "add_generation_prompt".into(),
            Value::Bool(add_generation_prompt),
        );
        for (k, v) in &self.special {
            ctx.insert((*k).into(), Value::String(v.clone()));
        }
        tmpl.render(minijinja::Value::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| self.template_err(e))
    }

    fn template_err(&self, e: minijinja::Error) -> EngineError {
        EngineError::ChatTemplate {
            path: self.template_source.clone(),
            reason: e.to_string(),
        }
    }

    /// Prompt tokens of a chat: the rendered template, encoded without
    /// adding special tokens (the template writes its own).
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, EngineError> {
        let text = self.render_chat(messages, true)?;
        self.encode(&text, false)
    }
}
