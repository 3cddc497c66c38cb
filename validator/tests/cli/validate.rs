//! `grail validate` killed with SIGKILL mid-run and restarted: the window it
//! had scored is kept as it was, the next one is scored once, and nothing is
//! counted twice. The devnet and one miner (bob) run in this process.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use grail_chain::devnet::{Devnet, DevnetConfig};
use grail_core::keys::Keypair;
use grail_core::tensors::fingerprint_model_dir;
use grail_engine::Tokenizer;
use grail_miner::store::StoreTuning;
use grail_miner::{
    CpuBackend, Follower, Miner, MinerOptions, NetworkSource, Shutdown, StoreArgs, WindowStore,
};
use grail_validator::score::Outcome;
use grail_validator::state::ValidatorDb;

const STORIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/stories260K");

fn validate(url: &str, store: &Path, out: &Path, windows: Option<u64>) -> Command {
    let mut cmd = crate::grail();
    cmd.args([
        "-q", "validate", "--devnet", url, "--model", STORIES, "--store",
    ])
    .arg(format!("file://{}", store.display()))
    .arg("--out")
    .arg(out)
    .stdout(Stdio::null());
    if let Some(n) = windows {
        cmd.args(["--windows", &n.to_string()]);
    }
    cmd
}

fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn killed_validator_resumes_without_losing_or_double_counting() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let devnet = rt
        .block_on(Devnet::start(DevnetConfig {
            block_ms: 300,
            drand_period_s: 1,
            genesis_time: Some(now + 8),
            ..DevnetConfig::default()
        }))
        .unwrap();
    let url = devnet.chain_url();
    let tmp = tempfile::tempdir().unwrap();
    let store_dir: PathBuf = tmp.path().join("store");
    let out = tmp.path().join("validator");
    let shutdown = Shutdown::default();
    let miner = {
        let (url, store_dir, shutdown) = (url.clone(), store_dir.clone(), shutdown.clone());
        rt.spawn(async move {
            let follower = Follower::connect(&NetworkSource::Devnet { url }, &shutdown)
                .await
                .unwrap()
                .unwrap();
            let model = Path::new(STORIES);
            let store = WindowStore::open(
                &StoreArgs {
                    url: format!("file://{}", store_dir.display()),
                    ..StoreArgs::default()
                },
                StoreTuning::default(),
            )
            .unwrap();
            let mut m = Miner::new(
                Arc::new(CpuBackend::load(model, follower.generation.context_limit).unwrap()),
                Arc::new(Tokenizer::load(model).unwrap()),
                Keypair::dev("bob").unwrap(),
                fingerprint_model_dir(model).unwrap().0,
                store,
                follower,
                MinerOptions {
                    max_problems: 2,
                    batch_groups: 2,
                    windows: Some(3),
                    progress: false,
                    ..MinerOptions::default()
                },
            );
            m.run(&shutdown).await.unwrap()
        })
    };

    // first run: killed once window 0 is scored
    let mut first = validate(&url, &store_dir, &out, None).spawn().unwrap();
    let w0 = out.join("weights/window-0.json");
    assert!(
        wait_for_file(&w0, Duration::from_secs(90)),
        "window 0 scored"
    );
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let w0_before = std::fs::read(&w0).unwrap();
    {
        let db = ValidatorDb::open(&out.join("validator.sqlite")).unwrap();
        assert_eq!(db.last_scored_window().unwrap(), Some(0));
    }

    // second run: resumes with window 30, scores it once, stops
    let status = validate(&url, &store_dir, &out, Some(1)).status().unwrap();
    assert!(status.success());
    shutdown.request();
    let _ = rt.block_on(miner);

    let db = ValidatorDb::open(&out.join("validator.sqlite")).unwrap();
    assert!(db.is_scored(0).unwrap() && db.is_scored(30).unwrap());
    assert!(!db.is_scored(60).unwrap());
    let history = db.history(0).unwrap();
    // three registered hotkeys (alice, bob, charlie), one record each per window
    for w in [0, 30] {
        let rows: Vec<_> = history.iter().filter(|r| r.window == w).collect();
        assert_eq!(rows.len(), 3, "window {w}: {rows:?}");
        let bob = rows.iter().find(|r| r.uid == 1).unwrap();
        assert!(
            matches!(bob.outcome, Outcome::Passed { rollouts: 32, .. }),
            "window {w}: {:?}",
            bob.outcome
        );
    }
    assert_eq!(std::fs::read(&w0).unwrap(), w0_before, "window 0 untouched");
    assert!(out.join("weights/window-30.json").exists());
    rt.block_on(devnet.shutdown());
}
