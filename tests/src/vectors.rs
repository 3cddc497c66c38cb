//! Known-answer vectors (`tests/vectors/*.json`): each file is
//! `{"construction", "spec", "cases": [{"kind", "input", "output"}]}`; the
//! output of a case is what [`compute`] returns for its input. The `vectors`
//! test recomputes every case; `gen-vectors` writes the files; and
//! `scripts/protocol_ref.py` recomputes them independently from PROTOCOL.md.
//!
//! Conventions: byte strings are lowercase hex; f32 inputs are exact dyadic
//! values; uniforms are given both as the 53-bit integer (`u_int`, exact) and
//! as a number; logprobs and CDF bounds are compared to 1e-12.
use grail_challenges::{assignment, Difficulty, Kind, Problem};
use grail_core::beacon::{self, Beacon, DrandChain};
use grail_core::challenge::challenge_positions;
use grail_core::commit::{commit_root, CommitBinding, TokenCommitment};
use grail_core::fingerprint::{fingerprint, TensorEntry};
use grail_core::hash::{derive, label, Digest};
use grail_core::keys::{self, Hotkey, Keypair};
use grail_core::sampling::{cdf_interval, logprob, sample, SamplingParams, Uniforms};
use grail_core::seeds;
use grail_core::sketch::{quantize, Sketch, SketchPlanes};
use grail_core::tensors::fingerprint_model_dir;
use grail_core::window::{self, DrandSchedule};
use grail_core::wire::WindowFile;
use serde_json::{json, Value};

/// Result of one case's computation.
pub type Outcome = Result<Value, String>;

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field {name}"))
}

fn hex_bytes(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = field(v, name)?
        .as_str()
        .ok_or(format!("{name}: not a string"))?;
    hex::decode(s).map_err(|e| format!("{name}: {e}"))
}

fn digest(v: &Value, name: &str) -> Result<Digest, String> {
    hex_bytes(v, name)?
        .try_into()
        .map_err(|_| format!("{name}: not 32 bytes"))
}

fn uint(v: &Value, name: &str) -> Result<u64, String> {
    field(v, name)?
        .as_u64()
        .ok_or(format!("{name}: not an unsigned integer"))
}

fn f32s(v: &Value, name: &str) -> Result<Vec<f32>, String> {
    field(v, name)?
        .as_array()
        .ok_or(format!("{name}: not an array"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or(format!("{name}: not a number"))
        })
        .collect()
}

fn u32s(v: &Value, name: &str) -> Result<Vec<u32>, String> {
    field(v, name)?
        .as_array()
        .ok_or(format!("{name}: not an array"))?
        .iter()
        .map(|x| {
            x.as_u64()
                .map(|n| n as u32)
                .ok_or(format!("{name}: not an integer"))
        })
        .collect()
}

fn label_by_name(name: &str) -> Result<&'static str, String> {
    Ok(match name {
        "grail/v1/problem-seed" => label::PROBLEM_SEED,
        "grail/v1/window-randomness" => label::WINDOW_RANDOMNESS,
        "grail/v1/rollout-seed" => label::ROLLOUT_SEED,
        "grail/v1/sketch-key" => label::SKETCH_KEY,
        "grail/v1/challenge-randomness" => label::CHALLENGE_RANDOMNESS,
        "grail/v1/challenge-positions" => label::CHALLENGE_POSITIONS,
        "grail/v1/commit-root" => label::COMMIT_ROOT,
        "grail/v1/commit-binding" => label::COMMIT_BINDING,
        "grail/v1/window-file-checksum" => label::WINDOW_FILE_CHECKSUM,
        "grail/v1/weight-fingerprint" => label::WEIGHT_FINGERPRINT,
        other => return Err(format!("unknown label {other}")),
    })
}

fn commitments(v: &Value) -> Result<Vec<TokenCommitment>, String> {
    field(v, "commitments")?
        .as_array()
        .ok_or("commitments: not an array")?
        .iter()
        .map(|c| {
            let sketch: [u8; 16] = hex_bytes(c, "sketch")?
                .try_into()
                .map_err(|_| "sketch: not 16 bytes".to_string())?;
            Ok(TokenCommitment {
                token: uint(c, "token")? as u32,
                logprob: field(c, "logprob")?.as_f64().ok_or("logprob")? as f32,
                sketch: Sketch(sketch),
            })
        })
        .collect()
}

/// The variant name of an error enum value (`Truncated`, `BadSignature`, ...).
pub fn variant_name(e: &dyn std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    s.split([' ', '{', '(']).next().unwrap_or("").to_string()
}

/// Compute the output of one vector case.
pub fn compute(kind: &str, input: &Value) -> Outcome {
    match kind {
        "derive" => {
            let l = label_by_name(field(input, "label")?.as_str().ok_or("label")?)?;
            let parts: Vec<Vec<u8>> = field(input, "parts")?
                .as_array()
                .ok_or("parts")?
                .iter()
                .map(|p| hex::decode(p.as_str().unwrap_or("?")).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            Ok(json!({ "digest": hex::encode(derive(l, &refs)) }))
        }
        "seeds" => {
            let netuid = uint(input, "netuid")? as u16;
            let hotkey = digest(input, "hotkey")?;
            let block_hash = digest(input, "window_block_hash")?;
            let beacon = digest(input, "generation_beacon_randomness")?;
            let deadline_hash = digest(input, "deadline_block_hash")?;
            let challenge_beacon = digest(input, "challenge_beacon_randomness")?;
            let problem = uint(input, "problem_index")? as u32;
            let rollout = uint(input, "rollout_index")? as u32;
            let wr = seeds::window_randomness(&block_hash, &beacon);
            Ok(json!({
                "problem_seed": hex::encode(seeds::problem_seed(netuid, &hotkey, &block_hash, problem)),
                "window_randomness": hex::encode(wr),
                "rollout_seed": hex::encode(seeds::rollout_seed(&wr, &hotkey, problem, rollout)),
                "sketch_key": hex::encode(seeds::sketch_key(&wr)),
                "challenge_randomness": hex::encode(seeds::challenge_randomness(&deadline_hash, &challenge_beacon)),
            }))
        }
        "window" => {
            let block = uint(input, "block")?;
            let schedule = DrandSchedule {
                genesis_time: uint(input, "drand_genesis_time")?,
                period: uint(input, "drand_period")?,
            };
            let ts = uint(input, "window_block_timestamp_ms")?;
            let dts = uint(input, "deadline_block_timestamp_ms")?;
            let w = window::window_start(block);
            Ok(json!({
                "window_start": w,
                "deadline_block": window::deadline_block(w),
                "generation_round": window::generation_round(&schedule, ts),
                "challenge_round": window::challenge_round(&schedule, dts),
            }))
        }
        "uniforms" => {
            let mut u = Uniforms::new(&digest(input, "rollout_seed")?);
            let out: Vec<Value> = u32s(input, "positions")?
                .into_iter()
                .map(|t| {
                    let x = u.at(t);
                    json!({ "position": t, "u_int": (x * (1u64 << 53) as f64) as u64, "u": x })
                })
                .collect();
            Ok(json!({ "uniforms": out }))
        }
        "sample" => {
            let logits = f32s(input, "logits")?;
            let params = SamplingParams {
                temperature_milli: uint(input, "temperature_milli")? as u16,
                max_new_tokens: 1,
            };
            let t = params.temperature();
            let u_int = uint(input, "u_int")?;
            let u = u_int as f64 / (1u64 << 53) as f64;
            let token = sample(&logits, t, u).map_err(|e| e.to_string())?;
            let lp = logprob(&logits, t, token).map_err(|e| e.to_string())?;
            let (lo, hi) = cdf_interval(&logits, t, token).map_err(|e| e.to_string())?;
            Ok(json!({ "token": token, "logprob": lp, "cdf_lo": lo, "cdf_hi": hi }))
        }
        "sketch" => {
            let key = digest(input, "sketch_key")?;
            let hidden = f32s(input, "hidden")?;
            let planes = SketchPlanes::new(&key, hidden.len()).map_err(|e| e.to_string())?;
            let q = quantize(&hidden).map_err(|e| e.to_string())?;
            let s = planes.sketch(&hidden).map_err(|e| e.to_string())?;
            let first_planes: Vec<String> = planes
                .words()
                .iter()
                .take(2)
                .map(|w| hex::encode(w.to_le_bytes()))
                .collect();
            Ok(json!({
                "quantized": q,
                "first_plane_words_le": first_planes,
                "sketch": hex::encode(s.0),
            }))
        }
        "commit" => {
            let cs = commitments(input)?;
            let encoded: Vec<String> = cs.iter().map(|c| hex::encode(c.to_bytes())).collect();
            let root = commit_root(&cs);
            let hotkey = digest(input, "hotkey")?;
            let fingerprint = digest(input, "model_fingerprint")?;
            let prompt = u32s(input, "prompt")?;
            let completion: Vec<u32> = cs.iter().map(|c| c.token).collect();
            let binding = CommitBinding {
                netuid: uint(input, "netuid")? as u16,
                window: uint(input, "window")?,
                hotkey: &hotkey,
                problem_index: uint(input, "problem_index")? as u32,
                rollout_index: uint(input, "rollout_index")? as u32,
                model_fingerprint: &fingerprint,
                prompt: &prompt,
                completion: &completion,
                commit_root: root,
                sampling: SamplingParams {
                    temperature_milli: uint(input, "temperature_milli")? as u16,
                    max_new_tokens: uint(input, "max_new_tokens")? as u32,
                },
                reward: field(input, "reward")?.as_f64().ok_or("reward")?,
                advantage: field(input, "advantage")?.as_f64().ok_or("advantage")?,
            };
            Ok(json!({
                "encoded_commitments": encoded,
                "commit_root": hex::encode(root),
                "binding_message": hex::encode(binding.message()),
            }))
        }
        "challenge_positions" => {
            let p = challenge_positions(
                &digest(input, "challenge_randomness")?,
                &digest(input, "commit_root")?,
                uint(input, "n")? as u32,
                uint(input, "k")? as usize,
            );
            Ok(json!({ "positions": p }))
        }
        "window_file" => {
            let bytes = hex_bytes(input, "file")?;
            match WindowFile::decode(&bytes) {
                Ok(f) => Ok(json!({
                    "valid": true,
                    "netuid": f.header.netuid,
                    "window": f.header.window,
                    "rollouts": f.rollouts.iter().map(|r| json!({
                        "problem_index": r.problem_index,
                        "rollout_index": r.rollout_index,
                        "prompt_len": r.prompt.len(),
                        "completion_len": r.commitments.len(),
                        "commit_root": hex::encode(r.commit_root()),
                        "signed_message": hex::encode(r.signed_message(&f.header)),
                    })).collect::<Vec<_>>(),
                })),
                Err(e) => Ok(json!({ "valid": false, "error": variant_name(&e) })),
            }
        }
        "keys" => {
            let suri = field(input, "suri")?.as_str().ok_or("suri")?;
            let pair = Keypair::from_suri(suri).map_err(|e| e.to_string())?;
            Ok(json!({
                "public_key": hex::encode(pair.hotkey().as_bytes()),
                "ss58": pair.hotkey().to_ss58(),
            }))
        }
        "verify" => {
            let address = field(input, "ss58")?.as_str().ok_or("ss58")?;
            let hotkey = match Hotkey::from_ss58(address) {
                Ok(h) => h,
                Err(e) => return Ok(json!({ "valid": false, "error": variant_name(&e) })),
            };
            let sig: [u8; 64] = hex_bytes(input, "signature")?
                .try_into()
                .map_err(|_| "signature: not 64 bytes".to_string())?;
            match keys::verify(&hotkey, &hex_bytes(input, "message")?, &sig) {
                Ok(()) => Ok(json!({ "valid": true })),
                Err(e) => Ok(json!({ "valid": false, "error": variant_name(&e) })),
            }
        }
        "beacon" => {
            let name = field(input, "chain")?.as_str().ok_or("chain")?;
            let chain = DrandChain::by_name(name).ok_or(format!("unknown chain {name}"))?;
            let beacon = Beacon {
                round: uint(input, "round")?,
                signature: hex_bytes(input, "signature")?,
                previous_signature: match input.get("previous_signature") {
                    Some(_) => Some(hex_bytes(input, "previous_signature")?),
                    None => None,
                },
                randomness: digest(input, "randomness")?,
            };
            match beacon::verify(&chain, &beacon) {
                Ok(v) => Ok(json!({ "valid": true, "randomness": hex::encode(v.randomness()) })),
                Err(e) => Ok(json!({ "valid": false, "error": variant_name(&e) })),
            }
        }
        "fingerprint" => {
            let tensors = field(input, "tensors")?.as_array().ok_or("tensors")?;
            let owned: Vec<(String, String, Vec<usize>, Vec<u8>)> = tensors
                .iter()
                .map(|t| {
                    Ok((
                        field(t, "name")?.as_str().ok_or("name")?.to_string(),
                        field(t, "dtype")?.as_str().ok_or("dtype")?.to_string(),
                        u32s(t, "shape")?.into_iter().map(|d| d as usize).collect(),
                        hex_bytes(t, "data")?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            let entries = owned.iter().map(|(name, dtype, shape, data)| TensorEntry {
                name,
                dtype,
                shape,
                data,
            });
            let fp = fingerprint(entries).map_err(|e| e.to_string())?;
            Ok(json!({ "fingerprint": fp.to_hex() }))
        }
        "fingerprint_model_dir" => {
            let dir = crate::tests_dir().join(field(input, "dir")?.as_str().ok_or("dir")?);
            let fp = fingerprint_model_dir(&dir).map_err(|e| e.to_string())?;
            Ok(json!({ "fingerprint": fp.to_hex() }))
        }
        "challenge" => {
            let seed = digest(input, "seed")?;
            let kind = match field(input, "kind")?.as_str() {
                Some("sat") => Kind::Sat,
                Some("math") => Kind::Math,
                other => return Err(format!("kind {other:?}")),
            };
            let difficulty =
                Difficulty::new(uint(input, "difficulty")? as u8).ok_or("difficulty")?;
            let p = Problem::generate(kind, &seed, difficulty);
            Ok(json!({
                "parameters": p.parameters_json(),
                "messages": p.messages(),
                "reference_answer": p.reference_answer(),
                "dimacs": match &p { Problem::Sat(s) => Value::String(s.to_dimacs()), _ => Value::Null },
            }))
        }
        "challenge_assignment" => {
            let (kind, difficulty) = assignment(&digest(input, "seed")?);
            Ok(json!({ "kind": kind, "difficulty": difficulty.level() }))
        }
        "challenge_score" => {
            let seed = digest(input, "seed")?;
            let kind = if field(input, "kind")?.as_str() == Some("sat") {
                Kind::Sat
            } else {
                Kind::Math
            };
            let difficulty =
                Difficulty::new(uint(input, "difficulty")? as u8).ok_or("difficulty")?;
            let p = Problem::generate(kind, &seed, difficulty);
            let completion = field(input, "completion")?.as_str().ok_or("completion")?;
            let completion = completion.replace("{reference}", &p.reference_answer());
            Ok(serde_json::to_value(p.score(&completion)).map_err(|e| e.to_string())?)
        }
        "advantages" => {
            let rewards: Vec<f64> = field(input, "rewards")?
                .as_array()
                .ok_or("rewards")?
                .iter()
                .map(|x| x.as_f64().ok_or("reward"))
                .collect::<Result<_, _>>()?;
            let a = grail_challenges::reward::advantages(&rewards);
            Ok(json!({
                "advantages": a,
                "advantage_bits": a.iter().map(|x| format!("{:016x}", x.to_bits())).collect::<Vec<_>>(),
            }))
        }
        other => Err(format!("unknown vector kind {other}")),
    }
}

/// Compare a stored output with a recomputed one: exact, except numbers
/// that are not integers, which may differ by 1e-12 (relative).
pub fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b))
            if !(a.is_u64() || a.is_i64()) || !(b.is_u64() || b.is_i64()) =>
        {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            (a - b).abs() <= 1e-12 * a.abs().max(1.0)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => want == got,
    }
}
