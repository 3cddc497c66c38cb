//! Shared by the miner's integration tests: a fast devnet, the bundled
//! model, and an independent check of a window file that rebuilds every
//! input from grail-core, the challenge crate and the engine directly (not
//! through the miner's own `rollout` module).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grail_chain::devnet::{Devnet, DevnetConfig, DevnetHandle};
use grail_core::keys::{verify, Hotkey, Keypair};
use grail_core::params::{ROLLOUTS_PER_PROBLEM, WINDOW_LENGTH};
use grail_core::sampling::{sample_with_logprob, Uniforms};
use grail_core::seeds::{problem_seed, rollout_seed, sketch_key, window_randomness};
use grail_core::sketch::SketchPlanes;
use grail_core::tensors::fingerprint_model_dir;
use grail_core::window::generation_round;
use grail_core::wire::WindowFile;
use grail_engine::{ChatMessage, LogitsFor, Model, Tokenizer};
use grail_miner::{
    CpuBackend, Follower, Miner, MinerOptions, NetworkSource, Shutdown, WindowStore,
};
use std::sync::Arc;

/// Milliseconds between devnet blocks in these tests: 30-block windows of 9 s.
pub const BLOCK_MS: u64 = 300;

/// Held by every test that mines, so the tests of one binary take turns on
/// the CPU (the miner plans against its measured speed; two miners sharing
/// two cores would each measure half).
pub static CPU: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn stories_dir() -> PathBuf {
    grail_tests::tests_dir().join("fixtures/stories260K")
}

/// A devnet with fast blocks and 1 s drand rounds whose genesis is `lead_s`
/// seconds from now (window 0 starts then).
pub async fn fast_devnet(lead_s: u64) -> DevnetHandle {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Devnet::start(DevnetConfig {
        block_ms: BLOCK_MS,
        drand_period_s: 1,
        genesis_time: Some(now + lead_s),
        ..DevnetConfig::default()
    })
    .await
    .unwrap()
}

/// What a checked file held.
#[derive(Debug)]
pub struct Checked {
    pub problems: u32,
    pub rollouts: usize,
    pub tokens: usize,
}

/// Check a window file as a validator would, from scratch: header, every
/// signature, every problem's prompt, group completeness, and every token
/// against the verifiable sampler's choice under the engine's own
/// probabilities (one forward pass over prompt + completion), plus logprobs,
/// sketches, rewards and advantages.
pub fn check_window_file(
    bytes: &[u8],
    devnet: &DevnetHandle,
    hotkey: &Hotkey,
    window: u64,
) -> Checked {
    let file = WindowFile::decode(bytes).expect("window file decodes");
    let h = &file.header;
    let info_netuid = grail_chain::devnet::DEFAULT_NETUID;
    let generation = grail_chain::devnet::default_generation();
    assert_eq!(h.netuid, info_netuid);
    assert_eq!(h.window, window);
    assert_eq!(&h.hotkey, hotkey.as_bytes());
    let model_dir = stories_dir();
    assert_eq!(
        h.model_fingerprint,
        fingerprint_model_dir(&model_dir).unwrap().0
    );

    let chain = devnet.chain();
    let block_hash = chain.block_hash(window);
    let round = generation_round(&devnet.drand_chain().schedule(), chain.timestamp_ms(window));
    let beacon = devnet.beacon().sign(round);
    let wr = window_randomness(&block_hash, &beacon.randomness);
    let mut model = Model::load(&model_dir).unwrap();
    model
        .set_max_positions(generation.context_limit.unwrap() as usize)
        .unwrap();
    let tokenizer = Tokenizer::load(&model_dir).unwrap();
    let planes = SketchPlanes::new(&sketch_key(&wr), model.config().hidden_size).unwrap();
    let temperature = f64::from(generation.temperature_milli) / 1000.0;
    let eos = &model.config().eos_token_ids;

    let mut problems = 0u32;
    let mut tokens = 0usize;
    for group in file.rollouts.chunks(ROLLOUTS_PER_PROBLEM as usize) {
        let p = group[0].problem_index;
        assert_eq!(p, problems, "problem indices are contiguous from 0");
        problems += 1;
        assert_eq!(
            group.len(),
            ROLLOUTS_PER_PROBLEM as usize,
            "group {p} complete"
        );
        let seed = problem_seed(h.netuid, &h.hotkey, &block_hash, p);
        let (kind, difficulty) = grail_challenges::assignment(&seed);
        let problem = grail_challenges::Problem::generate(kind, &seed, difficulty);
        let messages: Vec<ChatMessage> = problem
            .messages()
            .iter()
            .map(|m| {
                let role = serde_json::to_value(m.role).unwrap();
                ChatMessage::new(role.as_str().unwrap(), m.content.clone())
            })
            .collect();
        let prompt = tokenizer.encode_chat(&messages).unwrap();
        let mut base = model.new_sequence();
        let base_out = model
            .forward(&mut [&mut base], &[&prompt], LogitsFor::Last)
            .unwrap();
        let mut rewards = Vec::new();
        for (r, rec) in group.iter().enumerate() {
            assert_eq!(rec.problem_index, p);
            assert_eq!(rec.rollout_index, r as u32);
            assert_eq!(rec.sampling, generation.sampling());
            assert_eq!(rec.prompt, prompt, "problem {p} prompt");
            verify(hotkey, &rec.signed_message(h), &rec.signature).expect("signature verifies");

            let completion = rec.completion();
            tokens += completion.len();
            let ends_with_eos = eos.contains(completion.last().unwrap());
            assert!(
                ends_with_eos || completion.len() == generation.max_new_tokens as usize,
                "rollout {p}/{r} ends with EOS or at the cap"
            );
            assert!(
                completion[..completion.len() - 1]
                    .iter()
                    .all(|t| !eos.contains(t)),
                "no EOS before the last token"
            );
            // the prompt is prefilled once per group (below, `base`); each
            // rollout forks it and feeds its completion but the last token
            let mut seq = base.clone();
            let rest = &completion[..completion.len() - 1];
            let out = (!rest.is_empty()).then(|| {
                model
                    .forward(&mut [&mut seq], &[rest], LogitsFor::All)
                    .unwrap()
            });
            let mut u = Uniforms::new(&rollout_seed(&wr, &h.hotkey, p, r as u32));
            for (t, c) in rec.commitments.iter().enumerate() {
                let (logits, hidden) = match (t, &out) {
                    (0, _) => (
                        base_out.logits_row(0),
                        base_out.hidden_row(base_out.logit_rows[0]),
                    ),
                    (_, Some(o)) => (o.logits_row(t - 1), o.hidden_row(o.logit_rows[t - 1])),
                    (_, None) => unreachable!("a completion of one token has one position"),
                };
                let (token, logprob) =
                    sample_with_logprob(logits, temperature, u.at(t as u32)).unwrap();
                assert_eq!(
                    c.token, token,
                    "rollout {p}/{r} position {t}: sampler's choice"
                );
                assert!(
                    (f64::from(c.logprob) - logprob).abs() < 1e-3,
                    "rollout {p}/{r} position {t}: logprob {} vs {logprob}",
                    c.logprob
                );
                let sketch = planes.sketch(hidden).unwrap();
                assert!(
                    sketch.hamming(&c.sketch) <= 2,
                    "rollout {p}/{r} position {t}: sketch distance {}",
                    sketch.hamming(&c.sketch)
                );
            }
            let text = tokenizer.decode(&completion, true).unwrap();
            let reward = problem.score(&text).total;
            assert_eq!(rec.reward, reward, "rollout {p}/{r} reward");
            rewards.push(reward);
        }
        let adv = grail_challenges::reward::advantages(&rewards);
        for (rec, a) in group.iter().zip(adv) {
            assert_eq!(rec.advantage.to_bits(), a.to_bits(), "advantage");
        }
    }
    assert!(problems > 0);
    Checked {
        problems,
        rollouts: file.rollouts.len(),
        tokens,
    }
}

/// The window after `w`.
pub fn next_window(w: u64) -> u64 {
    w + WINDOW_LENGTH
}

/// Poll `f` every 50 ms until it returns `Some`, at most `limit`.
pub async fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if let Some(v) = f() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Send the miner's logs to the test output (shown when a test fails).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}

/// An in-process miner following the devnet at `devnet_url` with dev key
/// `key`: at most 2 problems per window, for `windows` windows.
pub async fn miner_for(devnet_url: &str, store: WindowStore, key: &str, windows: u64) -> Miner {
    let shutdown = Shutdown::default();
    let follower = Follower::connect(
        &NetworkSource::Devnet {
            url: devnet_url.to_owned(),
        },
        &shutdown,
    )
    .await
    .unwrap()
    .unwrap();
    let backend = CpuBackend::load(&stories_dir(), follower.generation.context_limit).unwrap();
    Miner::new(
        Arc::new(backend),
        Arc::new(Tokenizer::load(&stories_dir()).unwrap()),
        Keypair::dev(key).unwrap(),
        fingerprint_model_dir(&stories_dir()).unwrap().0,
        store,
        follower,
        MinerOptions {
            max_problems: 2,
            batch_groups: 2,
            margin: Some(Duration::from_millis(300)),
            windows: Some(windows),
            progress: false,
        },
    )
}
