//! `config.json` and `generation_config.json`: the model's shape and the
//! choices that change its arithmetic (rotary base and scaling, norm epsilon,
//! biases, tied embeddings), validated before any weight is touched.
//!
//! Both spellings transformers has written are read: `rope_theta` and
//! `rope_scaling` at the top level (transformers 4 and the Hub's checkpoints)
//! and the `rope_parameters` object of transformers 5.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::EngineError;

/// Largest `config.json` / `generation_config.json` read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Bounds on configured sizes. Generous for any real checkpoint, small
/// enough that a hostile config cannot make size arithmetic overflow or ask
/// for terabytes of scratch memory.
const MAX_HIDDEN: usize = 1 << 16;
const MAX_INTERMEDIATE: usize = 1 << 18;
const MAX_LAYERS: usize = 1 << 10;
const MAX_HEADS: usize = 1 << 10;
const MAX_HEAD_DIM: usize = 1 << 11;
const MAX_VOCAB: usize = 1 << 22;
const MAX_POSITIONS: usize = 1 << 24;

/// The architectures the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `LlamaForCausalLM`: optional biases on all four attention projections
    /// (`attention_bias`) and on the MLP (`mlp_bias`).
    Llama,
    /// `Qwen2ForCausalLM`: biases on q, k and v only, always.
    Qwen2,
}

impl Architecture {
    /// The `architectures` entry of `config.json`.
    pub fn hf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
        }
    }
}

/// How rotary frequencies are adjusted for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE (`rope_type` absent, null or `"default"`).
    None,
    /// `"linear"`: every frequency divided by `factor`.
    Linear { factor: f64 },
    /// `"llama3"`: low frequencies divided by `factor`, high ones kept, a
    /// smooth blend between (Llama 3.1+).
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// A validated model configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections.
    pub qkv_bias: bool,
    /// Bias on the output projection.
    pub o_bias: bool,
    /// Biases on the gate, up and down projections.
    pub mlp_bias: bool,
    pub bos_token_id: Option<u32>,
    /// Tokens that end a generation: `generation_config.json`'s
    /// `eos_token_id` when that file sets one (what transformers' `generate`
    /// uses), else `config.json`'s. Possibly empty.
    pub eos_token_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    pretraining_tp: Option<usize>,
}

/// The bytes of `path`, refusing files over `max` bytes before reading.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, EngineError> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > max {
        return Err(EngineError::Config {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, more than the {max} allowed"),
        });
    }
    std::fs::read(path).map_err(io)
}

/// A JSON file of at most [`MAX_CONFIG_BYTES`].
pub(crate) fn read_json(path: &Path) -> Result<Value, EngineError> {
    let bytes = read_capped(path, MAX_CONFIG_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
        path: path.to_path_buf(),
        reason: format!("not valid JSON: {e}"),
    })
}

/// Token ids from a JSON `null`, number or list of numbers.
fn token_ids(v: &Value) -> Option<Vec<u32>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Number(n) => Some(vec![u32::try_from(n.as_u64()?).ok()?]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_u64().and_then(|n| u32::try_from(n).ok()))
            .collect(),
        _ => None,
    }
}

impl ModelConfig {
    /// Reads `config.json` and, when present, `generation_config.json` from
    /// the model directory.
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        let path = dir.join("config.json");
        if !path.exists() {
            return Err(EngineError::MissingFile { path });
        }
        let json = read_json(&path)?;
        let gen_path = dir.join("generation_config.json");
        let gen = if gen_path.exists() {
            Some(read_json(&gen_path)?)
        } else {
            None
        };
        Self::from_json(&path, &json, gen.as_ref().map(|g| (gen_path.as_path(), g)))
    }

    /// Validates a parsed `config.json` (`path` is only for messages) and an
    /// optional parsed `generation_config.json`.
    pub fn from_json(
        path: &Path,
        json: &Value,
        generation: Option<(&Path, &Value)>,
    ) -> Result<Self, EngineError> {
        let bad = |reason: String| EngineError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let Some(object) = json.as_object() else {
            return Err(bad("not a JSON object".into()));
        };
        let raw: RawConfig = serde_json::from_value(json.clone()).map_err(|e| {
            // serde's message names the type but not the field: find the
            // field by reading each one alone (all fields are optional).
            let field = object.iter().find(|(k, v)| {
                let alone = Value::Object([((*k).clone(), (*v).clone())].into_iter().collect());
                serde_json::from_value::<RawConfig>(alone).is_err()
            });
            match field {
                Some((k, _)) => bad(format!("{k}: {e}")),
                None => bad(e.to_string()),
            }
        })?;

        let archs = raw.architectures.unwrap_or_default();
        let architecture = match archs.as_slice() {
            [a] if a == "LlamaForCausalLM" => Architecture::Llama,
            [a] if a == "Qwen2ForCausalLM" => Architecture::Qwen2,
            _ => {
                return Err(EngineError::UnsupportedArchitecture {
                    path: path.to_path_buf(),
                    found: archs,
                })
            }
        };

        let need = |name: &str, v: Option<usize>, max: usize| -> Result<usize, EngineError> {
            match v {
                None => Err(bad(format!("missing {name}"))),
                Some(0) => Err(bad(format!("{name} is 0"))),
                Some(n) if n > max => Err(bad(format!("{name} = {n} exceeds {max}"))),
                Some(n) => Ok(n),
            }
        };
        let hidden_size = need("hidden_size", raw.hidden_size, MAX_HIDDEN)?;
        let intermediate_size = need("intermediate_size", raw.intermediate_size, MAX_INTERMEDIATE)?;
        let num_layers = need("num_hidden_layers", raw.num_hidden_layers, MAX_LAYERS)?;
        let num_heads = need("num_attention_heads", raw.num_attention_heads, MAX_HEADS)?;
        let num_kv_heads = need(
            "num_key_value_heads",
            Some(raw.num_key_value_heads.unwrap_or(num_heads)),
            MAX_HEADS,
        )?;
        let vocab_size = need("vocab_size", raw.vocab_size, MAX_VOCAB)?;
        let max_position_embeddings = need(
            "max_position_embeddings",
            raw.max_position_embeddings,
            MAX_POSITIONS,
        )?;
        if num_heads % num_kv_heads != 0 {
            return Err(bad(format!(
                "num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
            )));
        }
        let head_dim = match raw.head_dim {
            Some(d) => need("head_dim", Some(d), MAX_HEAD_DIM)?,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(bad(format!(
                    "no head_dim and hidden_size {hidden_size} is not a multiple of num_attention_heads {num_heads}"
                )))
            }
        };
        if head_dim % 2 != 0 || head_dim > MAX_HEAD_DIM {
            return Err(bad(format!(
                "head_dim {head_dim} must be even and at most {MAX_HEAD_DIM}"
            )));
        }
        if let Some(act) = &raw.hidden_act {
            if act != "silu" {
                return Err(bad(format!(
                    "hidden_act {act:?} is not supported (only \"silu\")"
                )));
            }
        }
        if raw.use_sliding_window == Some(true) {
            return Err(bad("use_sliding_window = true is not supported".into()));
        }
        if raw.pretraining_tp.is_some_and(|tp| tp != 1) {
            return Err(bad("pretraining_tp other than 1 is not supported".into()));
        }

        let eps = raw.rms_norm_eps.unwrap_or(1e-6);
        if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
            return Err(bad(format!("rms_norm_eps {eps} outside (0, 1)")));
        }

        // rope_theta: top level (transformers 4) or inside rope_parameters (5).
        let params = raw.rope_parameters.as_ref().filter(|v| !v.is_null());
        if let Some(p) = params.filter(|p| !p.is_object()) {
            return Err(bad(format!("rope_parameters is not an object: {p}")));
        }
        let nested_theta =
            match params.and_then(|p| p.get("rope_theta")) {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| {
                    bad(format!("rope_parameters.rope_theta is not a number: {v}"))
                })?),
            };
        let rope_theta = raw.rope_theta.or(nested_theta).unwrap_or(10_000.0);
        if !(rope_theta.is_finite() && rope_theta > 1.0) {
            return Err(bad(format!(
                "rope_theta {rope_theta} must be finite and > 1"
            )));
        }
        let scaling = raw
            .rope_scaling
            .as_ref()
            .filter(|v| !v.is_null())
            .or(params);
        let rope_scaling = parse_rope_scaling(scaling).map_err(bad)?;

        let (qkv_bias, o_bias, mlp_bias) = match architecture {
            Architecture::Qwen2 => (true, false, false),
            Architecture::Llama => {
                let attn = raw.attention_bias.unwrap_or(false);
                (attn, attn, raw.mlp_bias.unwrap_or(false))
            }
        };

        let ids = |field: &str, v: &Option<Value>, p: &Path| -> Result<Vec<u32>, EngineError> {
            match v {
                None => Ok(Vec::new()),
                Some(v) => token_ids(v).ok_or_else(|| EngineError::Config {
                    path: p.to_path_buf(),
                    reason: format!("{field} is not a token id or a list of token ids: {v}"),
                }),
            }
        };
        let bos = ids("bos_token_id", &raw.bos_token_id, path)?;
        let mut eos_token_ids = ids("eos_token_id", &raw.eos_token_id, path)?;
        if let Some((gpath, gen)) = generation {
            if let Some(v) = gen.get("eos_token_id") {
                eos_token_ids = ids("eos_token_id", &Some(v.clone()), gpath)?;
            }
        }
        for &t in bos.iter().chain(&eos_token_ids) {
            if t as usize >= vocab_size {
                return Err(bad(format!(
                    "special token id {t} is outside the vocabulary of {vocab_size}"
                )));
            }
        }

        Ok(ModelConfig {
            architecture,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            max_position_embeddings,
            rms_norm_eps: eps as f32,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias,
            bos_token_id: bos.first().copied(),
            eos_token_ids,
        })
    }

    /// Bytes of one position's K and V across all layers, in the f32 cache.
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.num_layers * self.num_kv_heads * self.head_dim * 4
    }
}

fn parse_rope_scaling(v: Option<&Value>) -> Result<RopeScaling, String> {
    let Some(v) = v else {
        return Ok(RopeScaling::None);
    };
    if !v.is_object() {
        return Err(format!("rope scaling is not an object: {v}"));
    }
    let kind = match v.get("rope_type").or_else(|| v.get("type")) {
        None | Some(Value::Null) => "default",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("rope_type is not a string: {other}")),
    };
    let num = |k: &str| -> Result<f64, String> {
        let x = v
            .get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("rope scaling {kind:?} needs a number {k}"))?;
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(format!(
                "rope scaling {k} = {x} must be finite and positive"
            ))
        }
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: num("factor")?,
        }),
        "llama3" => {
            let s = RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            };
            if let RopeScaling::Llama3 {
                low_freq_factor,
                high_freq_factor,
                ..
            } = s
            {
                if high_freq_factor <= low_freq_factor {
                    return Err(
                        "llama3 rope scaling needs high_freq_factor > low_freq_factor".into(),
                    );
                }
            }
            Ok(s)
        }
        other => Err(format!(
            "rope scaling type {other:?} is not supported (default, linear, llama3)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "eos_token_id": 2,
            "bos_token_id": 1
        })
    }

    fn parse(v: &Value) -> Result<ModelConfig, EngineError> {
        ModelConfig::from_json(Path::new("config.json"), v, None)
    }

    #[test]
    fn defaults_and_derived_fields() {
        let c = parse(&base()).unwrap();
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.rope_theta, 10_000.0);
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert_eq!(c.eos_token_ids, vec![2]);
        assert!(!c.qkv_bias && !c.o_bias && !c.mlp_bias && !c.tie_word_embeddings);
    }

    #[test]
    fn qwen2_has_qkv_bias_only() {
        let mut v = base();
        v["architectures"] = json!(["Qwen2ForCausalLM"]);
        v["attention_bias"] = json!(true); // ignored by Qwen2, as in transformers
        let c = parse(&v).unwrap();
        assert!(c.qkv_bias && !c.o_bias && !c.mlp_bias);
    }

    #[test]
    fn both_rope_spellings() {
        let mut v4 = base();
        v4["rope_theta"] = json!(500000.0);
        v4["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let mut v5 = base();
        v5["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let (a, b) = (parse(&v4).unwrap(), parse(&v5).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.rope_theta, 500000.0);
        assert!(matches!(a.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
    }

    #[test]
    fn generation_config_eos_wins() {
        let gen = json!({"eos_token_id": [2, 7]});
        let c = ModelConfig::from_json(
            Path::new("config.json"),
            &base(),
            Some((Path::new("generation_config.json"), &gen)),
        )
        .unwrap();
        assert_eq!(c.eos_token_ids, vec![2, 7]);
    }

    #[test]
    fn rejections_name_the_problem() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"architectures": ["MistralForCausalLM"]}),
                "MistralForCausalLM",
            ),
            (
                {
                    let mut v = base();
                    v["num_key_value_heads"] = json!(3);
                    v
                },
                "multiple",
            ),
            (
                {
                    let mut v = base();
                    v["hidden_size"] = json!(0);
                    v
                },
                "hidden_size is 0",
            ),
            (
                {
                    let mut v = base();
                    v["vocab_size"] = json!(1u64 << 40);
                    v
                },
                "vocab_size",
            ),
            (
                {
                    let mut v = base();
                    v.as_object_mut().unwrap().remove("intermediate_size");
                    v
                },
                "intermediate_size",
            ),
            (
                {
                    let mut v = base();
                    v["hidden_act"] = json!("gelu");
                    v
                },
                "gelu",
            ),
            (
                {
                    let mut v = base();
                    v["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0});
                    v
                },
                "yarn",
            ),
            (
                {
                    let mut v = base();
                    v["eos_token_id"] = json!(100);
                    v
                },
                "100",
            ),
            (
                {
                    let mut v = base();
                    v["eos_token_id"] = json!("x");
                    v
                },
                "eos_token_id",
            ),
            (
                {
                    let mut v = base();
                    v["head_dim"] = json!(15);
                    v
                },
                "even",
            ),
            (
                {
                    let mut v = base();
                    v["rms_norm_eps"] = json!(-1.0);
                    v
                },
                "rms_norm_eps",
            ),
            (
                {
                    let mut v = base();
                    v["num_hidden_layers"] = json!("2");
                    v
                },
                "num_hidden_layers: invalid type",
            ),
            (
                {
                    let mut v = base();
                    v["rope_theta"] = json!([1.0]);
                    v
                },
                "rope_theta: invalid type",
            ),
            (
                {
                    let mut v = base();
                    v["rope_parameters"] = json!({"rope_type": "default", "rope_theta": "1e6"});
                    v
                },
                "rope_parameters.rope_theta is not a number",
            ),
            (
                {
                    let mut v = base();
                    v["rope_parameters"] = json!("llama3");
                    v
                },
                "rope_parameters is not an object",
            ),
            (
                {
                    let mut v = base();
                    v["rope_scaling"] = json!({"rope_type": 3, "factor": 8.0});
                    v
                },
                "rope_type is not a string",
            ),
            (
                {
                    let mut v = base();
                    v["rope_scaling"] = json!("linear");
                    v
                },
                "rope scaling is not an object",
            ),
            (json!([1, 2, 3]), "not a JSON object"),
            (json!(null), "not a JSON object"),
        ];
        for (v, needle) in cases {
            let e = parse(&v).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        }
    }
}
