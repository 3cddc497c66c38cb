//! The tokenizer and chat templates: encoding and decoding as transformers'
//! fast tokenizers do, the exact text of the templates the engine renders,
//! where a template is taken from, and templates that fail (by design, by
//! mistake, or by never finishing) failing with a typed error.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grail_engine::tokenizer::{PLAIN_TEMPLATE, TEMPLATE_DATE};
use grail_engine::{ChatMessage, EngineError, Tokenizer};
use serde_json::{json, Value};
use tempfile::TempDir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn stories() -> PathBuf {
    fixtures().join("stories260K")
}

fn qwen2() -> PathBuf {
    fixtures().join("engine/qwen2-tiny")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// A directory with stories260K's `tokenizer.json` and a
/// `tokenizer_config.json` whose `chat_template` is `template` (left out
/// when `None`).
fn tokenizer_dir(template: Option<Value>) -> TempDir {
    let tmp = TempDir::new().unwrap();
    std::fs::copy(
        stories().join("tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    let mut config = json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"});
    if let Some(t) = template {
        config["chat_template"] = t;
    }
    std::fs::write(
        tmp.path().join("tokenizer_config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    tmp
}

/// A tokenizer whose chat template is `template`.
fn with_template(template: &str) -> Tokenizer {
    let tmp = tokenizer_dir(Some(json!(template)));
    Tokenizer::load(tmp.path()).unwrap()
}

fn msgs(pairs: &[(&str, &str)]) -> Vec<ChatMessage> {
    pairs
        .iter()
        .map(|(r, c)| ChatMessage::new(*r, *c))
        .collect()
}

fn template_err(e: EngineError) -> (PathBuf, String) {
    match e {
        EngineError::ChatTemplate { path, reason } => (path, reason),
        other => panic!("expected a chat template error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- encode / decode

#[test]
fn stories_encodes_once_upon_a_time() {
    let tok = Tokenizer::load(&stories()).unwrap();
    assert_eq!(tok.vocab_size(), 512);
    assert_eq!(
        tok.encode("Once upon a time", true).unwrap(),
        [1, 403, 407, 261, 378]
    );
    // without special tokens: no BOS
    assert_eq!(
        tok.encode("Once upon a time", false).unwrap(),
        [403, 407, 261, 378]
    );
    let expected: Value =
        serde_json::from_slice(&std::fs::read(stories().join("expected_greedy.json")).unwrap())
            .unwrap();
    assert_eq!(
        tok.encode("Once upon a time", true).unwrap(),
        ids(&expected["prompt_once_upon_a_time_ids"])
    );
}

#[test]
fn stories_decodes_the_greedy_continuation() {
    let tok = Tokenizer::load(&stories()).unwrap();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(stories().join("expected_greedy.json")).unwrap())
            .unwrap();
    let generated = ids(&expected["generated_ids"]);
    assert_eq!(generated.len(), 120);
    let text = expected["text"].as_str().unwrap();
    // The fixture's text starts "Once", with no leading space, as
    // transformers' `tokenizer.decode` gives it: the first token is
    // "▁Once", and the tokenizer's decoder chain (Replace "▁" -> " ",
    // ByteFallback, Fuse, Strip 1 leading space) drops the space the
    // SentencePiece prefix put there. transformers' fast tokenizer decodes
    // through this same `tokenizers` decoder, so the two agree.
    assert!(text.starts_with("Once upon a time,"), "{text:?}");
    assert_eq!(tok.decode(&generated, true).unwrap(), text);
    // with the BOS in front and skipped, the same text
    let mut with_bos = vec![1u32];
    with_bos.extend(&generated);
    assert_eq!(tok.decode(&with_bos, true).unwrap(), text);
    // and the text encodes back to the same tokens
    assert_eq!(tok.encode(text, false).unwrap(), generated);
}

#[test]
fn decode_keeps_special_tokens_unless_asked_to_skip_them() {
    let tok = Tokenizer::load(&stories()).unwrap();
    let ids = [1u32, 403, 407, 2];
    assert_eq!(tok.decode(&ids, true).unwrap(), "Once upon");
    let kept = tok.decode(&ids, false).unwrap();
    assert!(
        kept.starts_with("<s>") && kept.ends_with("</s>"),
        "{kept:?}"
    );
}

// ---------------------------------------------------------------- templates

#[test]
fn stories_without_a_template_uses_the_plain_one() {
    let tok = Tokenizer::load(&stories()).unwrap();
    assert_eq!(tok.template_source(), Path::new("<plain template>"));
    let chat = msgs(&[("system", "Be brief."), ("user", "Hi")]);
    assert_eq!(
        tok.render_chat(&chat, true).unwrap(),
        "system: Be brief.\n\nuser: Hi\n\nassistant: "
    );
    assert_eq!(tok.render_chat(&chat[1..], false).unwrap(), "user: Hi\n\n");
    // the same as rendering PLAIN_TEMPLATE from a file
    let explicit = with_template(PLAIN_TEMPLATE);
    assert_eq!(
        explicit.render_chat(&chat, true).unwrap(),
        tok.render_chat(&chat, true).unwrap()
    );
    // encode_chat: the rendered text, no BOS added
    assert_eq!(
        tok.encode_chat(&chat).unwrap(),
        tok.encode("system: Be brief.\n\nuser: Hi\n\nassistant: ", false)
            .unwrap()
    );
}

// Expected strings below are also what Python's jinja2 (3.1, sandboxed,
// trim_blocks + lstrip_blocks, as transformers renders chat templates) gives
// for this template.

#[test]
fn qwen2_chatml_with_a_system_message() {
    let tok = Tokenizer::load(&qwen2()).unwrap();
    assert_eq!(tok.template_source(), qwen2().join("tokenizer_config.json"));
    // content is trimmed by the template
    let chat = msgs(&[("system", "Be brief."), ("user", "  Hello there \n")]);
    assert_eq!(
        tok.render_chat(&chat, true).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n\
         <|im_start|>user\nHello there<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}

#[test]
fn qwen2_chatml_inserts_the_default_system_message() {
    let tok = Tokenizer::load(&qwen2()).unwrap();
    let chat = msgs(&[("user", "What is 2+2?")]);
    assert_eq!(
        tok.render_chat(&chat, true).unwrap(),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(
        tok.render_chat(&chat, false).unwrap(),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    );
}

#[test]
fn multi_line_templates_trim_and_lstrip_blocks() {
    // Block tags on their own indented lines leave no whitespace behind
    // (trim_blocks + lstrip_blocks); indentation before an expression
    // stays. The expected text is what Python's jinja2 renders with
    // transformers' settings. A single trailing newline of the template
    // is dropped, as jinja2 does by default.
    let template = "{% for message in messages %}\n    {% if message['role'] == 'system' %}\n<<SYS>>{{ message['content'] }}<</SYS>>\n    {% else %}\n[{{ message['role'] }}]\n  {{ message['content'] }}\n    {% endif %}\n{% endfor %}\n{% if add_generation_prompt %}\n[assistant]\n{% endif %}";
    let chat = msgs(&[("system", "S"), ("user", "U")]);
    let want = "<<SYS>>S<</SYS>>\n[user]\n  U\n[assistant]\n";
    assert_eq!(
        with_template(template).render_chat(&chat, true).unwrap(),
        want
    );
    let with_newline = format!("{template}\n");
    assert_eq!(
        with_template(&with_newline)
            .render_chat(&chat, true)
            .unwrap(),
        want
    );
}

#[test]
fn chat_template_jinja_takes_precedence_over_tokenizer_config() {
    let tmp = TempDir::new().unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(qwen2().join(f), tmp.path().join(f)).unwrap();
    }
    let jinja = tmp.path().join("chat_template.jinja");
    std::fs::write(
        &jinja,
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}",
    )
    .unwrap();
    let tok = Tokenizer::load(tmp.path()).unwrap();
    assert_eq!(tok.template_source(), jinja);
    assert_eq!(
        tok.render_chat(&msgs(&[("user", "hi")]), true).unwrap(),
        "[user] hi\n"
    );
}

#[test]
fn list_form_chat_template_uses_the_default_entry() {
    let tmp = tokenizer_dir(Some(json!([
        {"name": "tool_use", "template": "TOOLS"},
        {"name": "default", "template": "D:{{ messages[0]['content'] }}"},
    ])));
    let tok = Tokenizer::load(tmp.path()).unwrap();
    assert_eq!(
        tok.template_source(),
        tmp.path().join("tokenizer_config.json")
    );
    assert_eq!(
        tok.render_chat(&msgs(&[("user", "x")]), true).unwrap(),
        "D:x"
    );
}

#[test]
fn list_form_chat_template_without_default_is_an_error() {
    let tmp = tokenizer_dir(Some(json!([{"name": "tool_use", "template": "T"}])));
    let (path, reason) = template_err(Tokenizer::load(tmp.path()).unwrap_err());
    assert_eq!(path, tmp.path().join("tokenizer_config.json"));
    assert!(reason.contains("default"), "{reason:?}");

    // a "default" entry whose template is not a string
    let tmp = tokenizer_dir(Some(json!([{"name": "default", "template": 5}])));
    template_err(Tokenizer::load(tmp.path()).unwrap_err());
}

#[test]
fn chat_template_of_another_type_is_an_error() {
    let tmp = tokenizer_dir(Some(json!(42)));
    let e = Tokenizer::load(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("tokenizer_config.json"), "{e}");
    let (_, reason) = template_err(e);
    assert!(reason.contains("42"), "{reason:?}");
}

#[test]
fn null_chat_template_is_the_plain_template() {
    let tmp = tokenizer_dir(Some(Value::Null));
    let tok = Tokenizer::load(tmp.path()).unwrap();
    assert_eq!(tok.template_source(), Path::new("<plain template>"));
}

#[test]
fn raise_exception_fails_rendering_with_its_message() {
    let tok = with_template(
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('boom') }}{% endif %}ok",
    );
    assert_eq!(
        tok.render_chat(&msgs(&[("system", "s")]), true).unwrap(),
        "ok"
    );
    let e = tok.render_chat(&msgs(&[("user", "u")]), true).unwrap_err();
    assert!(e.to_string().contains("boom"), "{e}");
    let (path, reason) = template_err(e);
    assert!(path.ends_with("tokenizer_config.json"), "{path:?}");
    assert!(reason.contains("boom"), "{reason:?}");
    // encode_chat reports it the same way
    let e = tok.encode_chat(&msgs(&[("user", "u")])).unwrap_err();
    assert!(e.to_string().contains("boom"), "{e}");
}

#[test]
fn python_string_methods_render() {
    let tok = with_template(
        "{% for m in messages %}\
         {% if m['content'].startswith('Q:') %}{{ m['content'][2:].strip().upper() }}\
         {% elif m['role'].endswith('tem') %}<{{ m['content'].strip() }}>\
         {% else %}{{ m['content'].replace(' ', '_') }}{% endif %}|\
         {% endfor %}",
    );
    let chat = msgs(&[
        ("system", "  sys  "),
        ("user", "Q:  what now "),
        ("user", "a b"),
    ]);
    assert_eq!(tok.render_chat(&chat, true).unwrap(), "<sys>|WHAT NOW|a_b|");
}

#[test]
fn special_tokens_and_loop_controls_are_available() {
    let tok = with_template(
        "{{ bos_token }}{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}\
         {{ m['content'] }}{{ eos_token }}{% endfor %}",
    );
    let chat = msgs(&[("user", "one"), ("user", "two")]);
    assert_eq!(tok.render_chat(&chat, true).unwrap(), "<s>one</s>");
}

#[test]
fn strftime_now_is_the_fixed_template_date() {
    let tok = with_template("Today is {{ strftime_now('%d %b %Y') }}.");
    assert_eq!(
        tok.render_chat(&[], true).unwrap(),
        format!("Today is {TEMPLATE_DATE}.")
    );
    assert_eq!(TEMPLATE_DATE, "26 Jul 2024");
}

/// Asserts that rendering `template` fails, and quickly.
fn assert_fails_fast(template: &str) -> String {
    let tok = with_template(template);
    let start = Instant::now();
    let e = tok.render_chat(&msgs(&[("user", "u")]), true).unwrap_err();
    let elapsed = start.elapsed();
    eprintln!("{template:?} failed after {elapsed:?}");
    // well under a second in practice; the bound leaves room for a loaded
    // machine and an unoptimized build
    assert!(
        elapsed < Duration::from_secs(5),
        "{template:?} took {elapsed:?}"
    );
    let (_, reason) = template_err(e);
    reason
}

#[test]
fn huge_range_fails_instead_of_running() {
    // minijinja refuses ranges of more than 100,000 items outright
    let reason = assert_fails_fast("{% for i in range(100000000) %}x{% endfor %}");
    assert!(reason.contains("range"), "{reason:?}");
}

#[test]
fn runaway_loops_run_out_of_fuel() {
    // 10^10 iterations out of allowed ranges: only the fuel limit stops it
    let reason = assert_fails_fast(
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    );
    assert!(reason.contains("fuel"), "{reason:?}");
}

#[test]
fn runaway_string_growth_runs_out_of_fuel() {
    // a string doubled 64 times would need 2^64 bytes
    let reason = assert_fails_fast(
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    );
    assert!(reason.contains("fuel"), "{reason:?}");
}

#[test]
fn unbounded_recursion_fails() {
    let reason = assert_fails_fast("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    assert!(reason.contains("recursion"), "{reason:?}");
}

#[test]
fn syntax_error_fails_at_load_naming_the_file() {
    let tmp = tokenizer_dir(Some(json!("{% for m in messages %}{{ m['content'] }")));
    let e = Tokenizer::load(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("tokenizer_config.json"), "{e}");
    let (path, _) = template_err(e);
    assert_eq!(path, tmp.path().join("tokenizer_config.json"));

    let tmp = tokenizer_dir(None);
    let jinja = tmp.path().join("chat_template.jinja");
    std::fs::write(&jinja, "{% if %}").unwrap();
    let (path, _) = template_err(Tokenizer::load(tmp.path()).unwrap_err());
    assert_eq!(path, jinja);
}

#[test]
fn chat_template_jinja_not_utf8_is_an_error() {
    let tmp = tokenizer_dir(None);
    let jinja = tmp.path().join("chat_template.jinja");
    std::fs::write(&jinja, b"{{ messages }}\xff\xfe").unwrap();
    let (path, reason) = template_err(Tokenizer::load(tmp.path()).unwrap_err());
    assert_eq!(path, jinja);
    assert!(reason.contains("UTF-8"), "{reason:?}");
}

// ---------------------------------------------------------------- files

#[test]
fn missing_tokenizer_json_is_missing_file() {
    let tmp = tokenizer_dir(None);
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let e = Tokenizer::load(tmp.path()).unwrap_err();
    match &e {
        EngineError::MissingFile { path } => {
            assert_eq!(path, &tmp.path().join("tokenizer.json"))
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
    assert!(!e.is_invalid_input());
}

#[test]
fn corrupt_tokenizer_json_names_the_path() {
    let tmp = tokenizer_dir(None);
    let path = tmp.path().join("tokenizer.json");
    let good = std::fs::read(&path).unwrap();
    for bad in [
        &good[..good.len() / 2],
        b"not json at all".as_slice(),
        b"{\"model\": 5}".as_slice(),
        b"".as_slice(),
    ] {
        std::fs::write(&path, bad).unwrap();
        let e = Tokenizer::load(tmp.path()).unwrap_err();
        match &e {
            EngineError::Tokenizer { path: p, .. } => assert_eq!(p, &path),
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(e.is_invalid_input());
    }
}

#[test]
fn tokenizer_config_not_json_names_the_file() {
    let tmp = tokenizer_dir(None);
    let path = tmp.path().join("tokenizer_config.json");
    std::fs::write(&path, b"{\"chat_template\": ").unwrap();
    let e = Tokenizer::load(tmp.path()).unwrap_err();
    match &e {
        EngineError::Config { path: p, .. } => assert_eq!(p, &path),
        other => panic!("{other:?}"),
    }
    assert!(e.is_invalid_input());

    // JSON, but not an object: not silently read as "no settings"
    for not_object in ["[]", "\"{{ messages }}\"", "3"] {
        std::fs::write(&path, not_object).unwrap();
        let e = Tokenizer::load(tmp.path()).unwrap_err();
        match &e {
            EngineError::Config { path: p, reason } => {
                assert_eq!(p, &path);
                assert!(reason.contains("not a JSON object"), "{reason:?}");
            }
            other => panic!("{not_object}: {other:?}"),
        }
    }
}

#[test]
fn tokenizer_config_is_optional() {
    let tmp = tokenizer_dir(None);
    std::fs::remove_file(tmp.path().join("tokenizer_config.json")).unwrap();
    let tok = Tokenizer::load(tmp.path()).unwrap();
    assert_eq!(tok.template_source(), Path::new("<plain template>"));
    assert_eq!(
        tok.encode("Once upon a time", true).unwrap(),
        [1, 403, 407, 261, 378]
    );
}
