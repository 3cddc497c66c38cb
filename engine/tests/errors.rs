//! Every bad input gives a typed [`EngineError`] whose message names the
//! culprit (file, tensor, token), never a panic; a failed call leaves the
//! sequences it was given as they were.
//!
//! Broken model directories are built in temporary directories from a copy
//! of a committed fixture with one thing broken.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use grail_engine::{generate_group, EngineError, GenerateOptions, LogitsFor, Model, Sampler};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use tempfile::TempDir;

fn fixture(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    if name == "stories260K" {
        root.join(name)
    } else {
        root.join("engine").join(name)
    }
}

/// A temporary copy of a fixture directory.
fn copy_fixture(name: &str) -> TempDir {
    let tmp = TempDir::new().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

/// An owned safetensors tensor.
#[derive(Clone)]
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn read_tensors(path: &Path) -> BTreeMap<String, Tensor> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, t)| {
            let t = Tensor {
                dtype: t.dtype(),
                shape: t.shape().to_vec(),
                data: t.data().to_vec(),
            };
            (name, t)
        })
        .collect()
}

fn write_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>) {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, t)| {
            let view = TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap();
            (name.as_str(), view)
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A copy of the single-file fixture `name` with its tensors edited.
fn with_tensors(name: &str, edit: impl FnOnce(&mut BTreeMap<String, Tensor>)) -> TempDir {
    let tmp = copy_fixture(name);
    let path = tmp.path().join("model.safetensors");
    let mut tensors = read_tensors(&path);
    edit(&mut tensors);
    write_tensors(&path, &tensors);
    tmp
}

/// A copy of the fixture `name` with its `config.json` edited.
fn with_config(name: &str, edit: impl FnOnce(&mut Value)) -> TempDir {
    let tmp = copy_fixture(name);
    let path = tmp.path().join("config.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    tmp
}

fn load_err(dir: &Path) -> EngineError {
    match Model::load(dir) {
        Ok(_) => panic!("{} loaded but should not have", dir.display()),
        Err(e) => e,
    }
}

/// Asserts that the message of `e` mentions every needle.
fn assert_names(e: &EngineError, needles: &[&str]) {
    let msg = e.to_string();
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
}

// ---------------------------------------------------------------- files

#[test]
fn missing_directory_is_missing_file() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("no-such-model");
    let e = load_err(&dir);
    assert!(matches!(e, EngineError::MissingFile { .. }), "{e:?}");
    assert_names(&e, &[&dir.display().to_string()]);
    assert!(!e.is_invalid_input());
}

#[test]
fn missing_config_json_is_missing_file_naming_it() {
    let tmp = copy_fixture("llama-tiny");
    std::fs::remove_file(tmp.path().join("config.json")).unwrap();
    let e = load_err(tmp.path());
    match &e {
        EngineError::MissingFile { path } => assert_eq!(path, &tmp.path().join("config.json")),
        other => panic!("{other:?}"),
    }
    assert_names(&e, &["config.json"]);
    assert!(!e.is_invalid_input());
}

#[test]
fn missing_weights_are_not_invalid_input() {
    let tmp = copy_fixture("llama-tiny");
    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Tensors(_)), "{e:?}");
    assert_names(&e, &[&tmp.path().display().to_string()]);
    assert!(!e.is_invalid_input());

    // a shard named by the index that is not there
    let tmp = copy_fixture("qwen2-tiny");
    std::fs::remove_file(tmp.path().join("model-00002-of-00002.safetensors")).unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Tensors(_)), "{e:?}");
    assert_names(&e, &["model-00002-of-00002.safetensors"]);
    assert!(!e.is_invalid_input());
}

#[test]
fn config_json_not_json_names_the_file() {
    let tmp = copy_fixture("llama-tiny");
    std::fs::write(tmp.path().join("config.json"), b"{\"architectures\": [").unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Config { .. }), "{e:?}");
    assert_names(&e, &["config.json", "not valid JSON"]);
    assert!(e.is_invalid_input());

    // valid JSON of the wrong shape
    let tmp = copy_fixture("llama-tiny");
    std::fs::write(tmp.path().join("config.json"), b"[1, 2, 3]").unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Config { .. }), "{e:?}");
    assert_names(&e, &["config.json", "not a JSON object"]);
}

#[test]
fn config_field_of_the_wrong_type_names_the_field() {
    let tmp = with_config("llama-tiny", |c| c["hidden_size"] = "64".into());
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Config { .. }), "{e:?}");
    assert_names(&e, &["config.json", "hidden_size"]);
    assert!(e.is_invalid_input());
}

#[test]
fn generation_config_not_json_names_that_file() {
    let tmp = copy_fixture("llama-tiny");
    std::fs::write(tmp.path().join("generation_config.json"), b"not json").unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Config { .. }), "{e:?}");
    assert_names(&e, &["generation_config.json"]);
    assert!(e.is_invalid_input());
}

#[test]
fn unsupported_architecture_is_named() {
    let tmp = with_config("llama-tiny", |c| {
        c["architectures"] = serde_json::json!(["MistralForCausalLM"])
    });
    let e = load_err(tmp.path());
    match &e {
        EngineError::UnsupportedArchitecture { found, .. } => {
            assert_eq!(found, &["MistralForCausalLM".to_string()])
        }
        other => panic!("{other:?}"),
    }
    assert_names(&e, &["MistralForCausalLM", "config.json"]);
    assert!(e.is_invalid_input());

    // no architectures at all
    let tmp = with_config("llama-tiny", |c| {
        c.as_object_mut().unwrap().remove("architectures");
    });
    let e = load_err(tmp.path());
    assert!(
        matches!(e, EngineError::UnsupportedArchitecture { .. }),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- tensors

#[test]
fn missing_tensor_is_named() {
    let name = "model.layers.1.mlp.up_proj.weight";
    let tmp = with_tensors("llama-tiny", |t| {
        t.remove(name).unwrap();
    });
    let e = load_err(tmp.path());
    match &e {
        EngineError::MissingTensor { tensor, dir } => {
            assert_eq!(tensor, name);
            assert_eq!(dir, tmp.path());
        }
        other => panic!("{other:?}"),
    }
    assert_names(&e, &[name]);
    assert!(e.is_invalid_input());
}

#[test]
fn untied_config_without_lm_head_is_missing_lm_head() {
    let tmp = with_config("llama-tiny", |c| c["tie_word_embeddings"] = false.into());
    let e = load_err(tmp.path());
    match &e {
        EngineError::MissingTensor { tensor, .. } => assert_eq!(tensor, "lm_head.weight"),
        other => panic!("{other:?}"),
    }
    assert_names(&e, &["lm_head.weight"]);
}

#[test]
fn misshaped_tensor_names_tensor_and_both_shapes() {
    let name = "model.layers.0.mlp.gate_proj.weight";
    // the same bytes read as the transpose: (64, 96) where (96, 64) belongs
    let tmp = with_tensors("llama-tiny", |t| {
        t.get_mut(name).unwrap().shape = vec![64, 96];
    });
    let e = load_err(tmp.path());
    match &e {
        EngineError::TensorShape {
            tensor,
            file,
            found,
            expected,
        } => {
            assert_eq!(tensor, name);
            assert_eq!(file, &tmp.path().join("model.safetensors"));
            assert_eq!(found, &[64, 96]);
            assert_eq!(expected, &[96, 64]);
        }
        other => panic!("{other:?}"),
    }
    assert_names(&e, &[name, "[64, 96]", "[96, 64]", "model.safetensors"]);
    assert!(e.is_invalid_input());

    // a norm of the wrong length, and a matrix stored flat
    let tmp = with_tensors("llama-tiny", |t| {
        let n = t.get_mut("model.norm.weight").unwrap();
        n.shape = vec![32];
        n.data.truncate(32 * 4);
    });
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::TensorShape { .. }), "{e:?}");
    assert_names(&e, &["model.norm.weight", "[32]", "[64]"]);

    let tmp = with_tensors("llama-tiny", |t| {
        t.get_mut("model.embed_tokens.weight").unwrap().shape = vec![512 * 64];
    });
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::TensorShape { .. }), "{e:?}");
    assert_names(&e, &["model.embed_tokens.weight", "[32768]", "[512, 64]"]);
}

#[test]
fn unsupported_dtype_is_named() {
    // I32: same bytes, integer type
    let name = "model.layers.0.self_attn.k_proj.weight";
    let tmp = with_tensors("llama-tiny", |t| {
        t.get_mut(name).unwrap().dtype = Dtype::I32;
    });
    let e = load_err(tmp.path());
    match &e {
        EngineError::TensorDtype { tensor, dtype, .. } => {
            assert_eq!(tensor, name);
            assert_eq!(dtype, "I32");
        }
        other => panic!("{other:?}"),
    }
    assert_names(&e, &[name, "I32", "model.safetensors"]);
    assert!(e.is_invalid_input());

    // F64: the values widened
    let tmp = with_tensors("llama-tiny", |t| {
        let n = t.get_mut("model.norm.weight").unwrap();
        n.data = n
            .data
            .chunks_exact(4)
            .flat_map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes())
            .collect();
        n.dtype = Dtype::F64;
    });
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::TensorDtype { .. }), "{e:?}");
    assert_names(&e, &["model.norm.weight", "F64"]);
}

#[test]
fn truncated_safetensors_names_the_file() {
    let tmp = copy_fixture("llama-tiny");
    let path = tmp.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Tensors(_)), "{e:?}");
    assert_names(&e, &[&path.display().to_string()]);
    assert!(e.is_invalid_input());

    // cut inside the 8-byte header length, and an empty file
    for len in [5, 0] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let e = load_err(tmp.path());
        assert!(matches!(e, EngineError::Tensors(_)), "{len}: {e:?}");
        assert_names(&e, &["model.safetensors"]);
        assert!(e.is_invalid_input());
    }
}

#[test]
fn garbage_safetensors_names_the_file() {
    let tmp = copy_fixture("llama-tiny");
    let path = tmp.path().join("model.safetensors");
    // deterministic noise (xorshift), no valid header length
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &noise).unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Tensors(_)), "{e:?}");
    assert_names(&e, &["model.safetensors"]);
    assert!(e.is_invalid_input());

    // a header length that claims far more than the file holds
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(&path, &huge).unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Tensors(_)), "{e:?}");
    assert_names(&e, &["model.safetensors"]);

    // a plausible header that is not JSON
    let mut bad = 16u64.to_le_bytes().to_vec();
    bad.extend_from_slice(b"{\"a\": not json!}");
    std::fs::write(&path, &bad).unwrap();
    let e = load_err(tmp.path());
    assert!(matches!(e, EngineError::Tensors(_)), "{e:?}");
    assert_names(&e, &["model.safetensors"]);
}

#[test]
fn non_finite_norm_weight_is_named() {
    let name = "model.layers.1.post_attention_layernorm.weight";
    let tmp = with_tensors("llama-tiny", |t| {
        let n = t.get_mut(name).unwrap();
        n.data[3 * 4..4 * 4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let e = load_err(tmp.path());
    match &e {
        EngineError::NonFinite {
            tensor,
            file,
            index,
        } => {
            assert_eq!(tensor, name);
            assert_eq!(file, &tmp.path().join("model.safetensors"));
            assert_eq!(*index, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_names(&e, &[name, "element 3"]);
    assert!(e.is_invalid_input());
}

#[test]
fn non_finite_half_precision_bias_is_named() {
    // +inf in f16 (0x7C00), in a bias the engine copies to f32 at load
    let name = "model.layers.0.self_attn.k_proj.bias";
    let tmp = with_tensors("llama-bias-f16", |t| {
        let b = t.get_mut(name).unwrap();
        assert_eq!(b.dtype, Dtype::F16);
        b.data[2 * 2..3 * 2].copy_from_slice(&0x7C00u16.to_le_bytes());
    });
    let e = load_err(tmp.path());
    match &e {
        EngineError::NonFinite { tensor, index, .. } => {
            assert_eq!(tensor, name);
            assert_eq!(*index, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_finite_matrix_fails_sampling_not_silently() {
    // Matrices are not scanned at load; a NaN in the (tied) embedding
    // reaches the logits and generation must refuse to sample from them.
    let tmp = with_tensors("llama-tiny", |t| {
        let e = t.get_mut("model.embed_tokens.weight").unwrap();
        let row = 7 * 64 * 4;
        e.data[row..row + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let model = Model::load(tmp.path()).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: 4,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let e = generate_group(&model, &[1, 2, 3], Sampler::Greedy { n: 1 }, &opts).unwrap_err();
    match &e {
        EngineError::Sampling { position, .. } => assert_eq!(*position, 0),
        other => panic!("{other:?}"),
    }
    assert_names(&e, &["logit 7"]);
}

// ---------------------------------------------------------------- forward

fn llama_tiny() -> Model {
    Model::load(&fixture("llama-tiny")).unwrap()
}

#[test]
fn token_out_of_range_is_named_and_leaves_the_cache_unchanged() {
    let model = llama_tiny();
    let vocab = model.config().vocab_size as u32;
    let prefix = [1u32, 17, 42];
    let mut s = model.new_sequence();
    model
        .forward(&mut [&mut s], &[&prefix], LogitsFor::None)
        .unwrap();
    let before = format!("{s:?}");

    let e = model
        .forward(&mut [&mut s], &[&[5, 6, vocab]], LogitsFor::Last)
        .unwrap_err();
    match &e {
        EngineError::TokenOutOfRange {
            token,
            position,
            vocab: v,
        } => {
            assert_eq!(*token, vocab);
            assert_eq!(*position, 5);
            assert_eq!(*v, vocab as usize);
        }
        other => panic!("{other:?}"),
    }
    assert_names(&e, &["512", "position 5"]);
    assert!(e.is_invalid_input());
    assert_eq!(s.len(), prefix.len());
    assert_eq!(
        format!("{s:?}"),
        before,
        "cache changed by a failed forward"
    );

    // u32::MAX as well
    let e = model
        .forward(&mut [&mut s], &[&[u32::MAX]], LogitsFor::Last)
        .unwrap_err();
    assert!(matches!(e, EngineError::TokenOutOfRange { .. }), "{e:?}");
    assert_names(&e, &[&u32::MAX.to_string()]);
    assert_eq!(s.len(), prefix.len());

    // the sequence carries on exactly as a fresh one over the same tokens
    let next = [99u32, 100];
    let got = model
        .forward(&mut [&mut s], &[&next], LogitsFor::All)
        .unwrap();
    let mut fresh = model.new_sequence();
    model
        .forward(&mut [&mut fresh], &[&prefix], LogitsFor::None)
        .unwrap();
    let want = model
        .forward(&mut [&mut fresh], &[&next], LogitsFor::All)
        .unwrap();
    assert_eq!(got.logits, want.logits);
    assert_eq!(s.len(), prefix.len() + next.len());
}

#[test]
fn a_bad_token_in_one_sequence_of_a_batch_leaves_every_sequence_unchanged() {
    let model = llama_tiny();
    let mut a = model.new_sequence();
    let mut b = model.new_sequence();
    model
        .forward(&mut [&mut a, &mut b], &[&[1, 2], &[3]], LogitsFor::None)
        .unwrap();
    let (a0, b0) = (format!("{a:?}"), format!("{b:?}"));
    let e = model
        .forward(
            &mut [&mut a, &mut b],
            &[&[4, 5, 6], &[7, 100_000]],
            LogitsFor::Last,
        )
        .unwrap_err();
    match &e {
        EngineError::TokenOutOfRange {
            token, position, ..
        } => assert_eq!((*token, *position), (100_000, 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!((format!("{a:?}"), format!("{b:?}")), (a0, b0));
}

#[test]
fn malformed_forward_requests_are_invalid_requests() {
    let model = llama_tiny();
    let mut s = model.new_sequence();
    // more token lists than sequences
    let e = model
        .forward(&mut [&mut s], &[&[1], &[2]], LogitsFor::Last)
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    // a sequence with no new tokens
    let e = model
        .forward(&mut [&mut s], &[&[]], LogitsFor::Last)
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    assert_names(&e, &["sequence 0"]);
    assert!(s.is_empty());
}

#[test]
fn sequence_beyond_max_position_embeddings_is_context_too_long() {
    let model = llama_tiny();
    let max = model.config().max_position_embeddings;
    assert_eq!(max, 256);
    let mut s = model.new_sequence();
    let too_many = vec![1u32; max + 1];
    let e = model
        .forward(&mut [&mut s], &[&too_many], LogitsFor::Last)
        .unwrap_err();
    match &e {
        EngineError::ContextTooLong { len, max: m } => assert_eq!((*len, *m), (max + 1, max)),
        other => panic!("{other:?}"),
    }
    assert_names(&e, &["257", "256"]);
    assert!(s.is_empty());

    // exactly full is fine; one more token is not
    let full = vec![1u32; max];
    model
        .forward(&mut [&mut s], &[&full], LogitsFor::Last)
        .unwrap();
    assert_eq!(s.len(), max);
    let e = model
        .forward(&mut [&mut s], &[&[1]], LogitsFor::Last)
        .unwrap_err();
    assert!(
        matches!(e, EngineError::ContextTooLong { len: 257, .. }),
        "{e:?}"
    );
    assert_eq!(s.len(), max);
}

#[test]
fn raising_max_positions_admits_longer_sequences_and_keeps_the_earlier_rows() {
    let mut model = Model::load(&fixture("stories260K")).unwrap();
    let trained = model.config().max_position_embeddings;
    assert_eq!((trained, model.max_positions()), (512, 512));
    let toks: Vec<u32> = (0..600).map(|i| 3 + (i * 37) % 500).collect();
    let mut s = model.new_sequence();
    let e = model
        .forward(&mut [&mut s], &[&toks], LogitsFor::All)
        .unwrap_err();
    assert!(
        matches!(e, EngineError::ContextTooLong { len: 600, max: 512 }),
        "{e:?}"
    );
    assert_names(&e, &["600", "512", "max_position_embeddings"]);
    assert!(s.is_empty());

    // out of bounds: refused, and the limit stays as it was
    for n in [0, grail_engine::MAX_POSITIONS + 1, usize::MAX] {
        let e = model.set_max_positions(n).unwrap_err();
        assert!(
            matches!(e, EngineError::MaxPositionsOutOfRange { requested, .. } if requested == n),
            "{n}: {e:?}"
        );
        assert_names(&e, &[&n.to_string()]);
    }
    assert_eq!(model.max_positions(), 512);

    model.set_max_positions(4096).unwrap();
    assert_eq!(model.max_positions(), 4096);
    let long = model
        .forward(&mut [&mut s], &[&toks], LogitsFor::All)
        .unwrap();
    assert_eq!(s.len(), 600);
    // causal: the first 512 rows do not see the rest, bit for bit
    let mut short = model.new_sequence();
    let within = model
        .forward(&mut [&mut short], &[&toks[..trained]], LogitsFor::All)
        .unwrap();
    let (h, v) = (within.hidden_size, within.vocab_size);
    assert_eq!(within.hidden[..], long.hidden[..trained * h]);
    assert_eq!(within.logits[..], long.logits[..trained * v]);
    assert!(long.logits.iter().all(|z| z.is_finite()));

    // generation checks the raised limit too
    let opts = |max_new_tokens| GenerateOptions {
        max_new_tokens,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let ok = generate_group(&model, &toks, Sampler::Greedy { n: 1 }, &opts(3)).unwrap();
    assert_eq!(ok[0].tokens.len(), 3);
    let e = generate_group(&model, &toks, Sampler::Greedy { n: 1 }, &opts(4096)).unwrap_err();
    assert!(
        matches!(
            e,
            EngineError::ContextTooLong {
                len: 4695,
                max: 4096
            }
        ),
        "{e:?}"
    );
}

#[test]
fn forked_sequence_continues_like_the_original() {
    let model = Model::load(&fixture("stories260K")).unwrap();
    let prompt = [1u32, 403, 407, 261, 378];
    let mut original = model.new_sequence();
    model
        .forward(&mut [&mut original], &[&prompt], LogitsFor::None)
        .unwrap();
    let mut fork = original.clone();
    assert_eq!(fork.len(), original.len());

    let a = model
        .forward(&mut [&mut original], &[&[432]], LogitsFor::Last)
        .unwrap();
    let b = model
        .forward(&mut [&mut fork], &[&[432]], LogitsFor::Last)
        .unwrap();
    assert_eq!(a.logits, b.logits);
    assert_eq!(a.hidden, b.hidden);

    // the fork is independent: different next tokens give different logits,
    // and advancing one does not advance the other
    let c = model
        .forward(&mut [&mut fork], &[&[383]], LogitsFor::Last)
        .unwrap();
    assert_eq!(fork.len(), prompt.len() + 2);
    assert_eq!(original.len(), prompt.len() + 1);
    let d = model
        .forward(&mut [&mut original], &[&[286]], LogitsFor::Last)
        .unwrap();
    assert_ne!(c.logits, d.logits);
}

// ---------------------------------------------------------------- generate

#[test]
fn degenerate_generate_requests_are_invalid_requests() {
    let model = llama_tiny();
    let opts = |max_new_tokens| GenerateOptions {
        max_new_tokens,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let cases: [(&[u32], usize, usize); 3] = [
        (&[1, 2], 0, 4), // no rollouts
        (&[], 1, 4),     // empty prompt
        (&[1, 2], 1, 0), // nothing to generate
    ];
    for (prompt, n, max_new) in cases {
        let e = generate_group(&model, prompt, Sampler::Greedy { n }, &opts(max_new)).unwrap_err();
        assert!(
            matches!(e, EngineError::InvalidRequest(_)),
            "{n} rollouts, {} prompt tokens, max_new_tokens {max_new}: {e:?}",
            prompt.len()
        );
        assert!(e.is_invalid_input());
    }
    // no seeds for the verifiable sampler is zero rollouts
    let e = generate_group(
        &model,
        &[1, 2],
        Sampler::Verifiable {
            temperature: 1.0,
            seeds: &[],
        },
        &opts(4),
    )
    .unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    // a non-positive or non-finite temperature
    for temperature in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let seeds = [[0u8; 32]];
        let e = generate_group(
            &model,
            &[1, 2],
            Sampler::Verifiable {
                temperature,
                seeds: &seeds,
            },
            &opts(4),
        )
        .unwrap_err();
        assert!(
            matches!(e, EngineError::InvalidRequest(_)),
            "{temperature}: {e:?}"
        );
    }
    // a token outside the vocabulary in the prompt
    let e = generate_group(&model, &[1, 512], Sampler::Greedy { n: 1 }, &opts(4)).unwrap_err();
    assert!(
        matches!(
            e,
            EngineError::TokenOutOfRange {
                token: 512,
                position: 1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn generation_beyond_the_context_is_context_too_long() {
    let model = llama_tiny();
    let max = model.config().max_position_embeddings;
    let prompt = vec![1u32; 200];
    let opts = |max_new_tokens| GenerateOptions {
        max_new_tokens,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    // the last token is never fed back: prompt + max_new - 1 positions
    let e = generate_group(
        &model,
        &prompt,
        Sampler::Greedy { n: 1 },
        &opts(max - 200 + 2),
    )
    .unwrap_err();
    assert!(
        matches!(e, EngineError::ContextTooLong { len, max: m } if len == max + 1 && m == max),
        "{e:?}"
    );
    let ok = generate_group(
        &model,
        &prompt,
        Sampler::Greedy { n: 1 },
        &opts(max - 200 + 1),
    )
    .unwrap();
    assert_eq!(ok[0].tokens.len(), max - 200 + 1);
}

// ------------------------------------------- inputs that once panicked

#[test]
fn huge_max_new_tokens_is_context_too_long() {
    let model = llama_tiny();
    let opts = GenerateOptions {
        max_new_tokens: usize::MAX,
        stop_tokens: &[],
        keep_hidden: false,
        sketch: None,
        cancel: None,
    };
    let e = generate_group(&model, &[1, 2], Sampler::Greedy { n: 1 }, &opts).unwrap_err();
    assert!(matches!(e, EngineError::ContextTooLong { .. }), "{e:?}");
}

#[test]
fn sequence_of_another_model_is_rejected() {
    let tiny = llama_tiny(); // 2 layers x 1 KV head of 24
    let stories = Model::load(&fixture("stories260K")).unwrap(); // 5 layers x 4 KV heads of 8
    let mut s = tiny.new_sequence();
    let e = stories
        .forward(&mut [&mut s], &[&[1, 2]], LogitsFor::Last)
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    assert!(s.is_empty());

    let mut s = stories.new_sequence();
    stories
        .forward(&mut [&mut s], &[&[1, 2]], LogitsFor::None)
        .unwrap();
    let e = tiny
        .forward(&mut [&mut s], &[&[1, 2]], LogitsFor::Last)
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidRequest(_)), "{e:?}");
    assert_eq!(s.len(), 2);
}
