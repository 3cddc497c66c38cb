//! The miner against a real S3-compatible server (s3s-fs) on loopback: two
//! windows uploaded through `s3://bucket/prefix`, with a server that answers
//! some requests 503 and one that crashes and restarts in the middle of an
//! upload. Every file is checked from scratch.
mod common;

use std::time::Duration;

use common::{check_window_file, fast_devnet};
use grail_core::generation::window_object_key;
use grail_core::keys::Keypair;
use grail_miner::store::StoreTuning;
use grail_miner::{Shutdown, StoreArgs, WindowOutcome, WindowStore};
use grail_tests::s3::{Faults, S3Config, S3Server};

const BUCKET: &str = "grail-test";

async fn s3_run(faults: Faults, key: &str) -> (S3Server, Vec<WindowOutcome>) {
    common::init_logs();
    let _cpu = common::CPU.lock().await;
    let data = tempfile::tempdir().unwrap();
    let server = S3Server::start(
        data.path(),
        S3Config {
            bucket: BUCKET.into(),
            access_key: "grail-access".into(),
            secret_key: "grail-secret".into(),
            faults,
        },
    )
    .await
    .unwrap();
    std::mem::forget(data); // the server outlives this function
    let store = WindowStore::open(
        &StoreArgs {
            url: format!("s3://{BUCKET}/miners/m1"),
            endpoint: Some(server.endpoint()),
            region: Some("us-east-1".into()),
            access_key_id: Some("grail-access".into()),
            secret_access_key: Some("grail-secret".into()),
        },
        StoreTuning {
            timeout: Duration::from_secs(5),
            max_retries: 8,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(800),
        },
    )
    .unwrap();
    let devnet = fast_devnet(2).await;
    let mut miner = common::miner_for(&devnet.chain_url(), store.clone(), key, 2).await;
    let outcomes = miner.run(&Shutdown::default()).await.unwrap();
    let hotkey = Keypair::dev(key).unwrap().hotkey();
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        let WindowOutcome::Uploaded(s) = o else {
            panic!("window not uploaded: {o:?}");
        };
        assert_eq!(s.key, window_object_key(&hotkey, s.window));
        // read back through a fresh client, and straight from the server's disk
        let bytes = store.get(&s.key).await.unwrap();
        let on_disk = std::fs::read(server.object_path(&format!("miners/m1/{}", s.key))).unwrap();
        assert_eq!(bytes, on_disk);
        check_window_file(&bytes, &devnet, &hotkey, s.window);
    }
    devnet.shutdown().await;
    (server, outcomes)
}

/// Two windows through a server that answers every third request 503 and
/// crashes (restarting 400 ms later) in the middle of the first upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_to_s3_that_fails_requests_and_restarts_mid_upload() {
    let (server, _) = s3_run(
        Faults {
            fail_every: 3,
            crash_on_put: 1,
            restart_pause: Duration::from_millis(400),
        },
        "charlie",
    )
    .await;
    let log = server.requests();
    assert!(log.failed >= 1, "{log:?}");
    assert_eq!(log.crashes, 1, "{log:?}");
    assert!(log.restarts >= 1, "{log:?}");
    let puts: Vec<Option<u16>> = log
        .served
        .iter()
        .filter(|s| s.method == "PUT")
        .map(|s| s.status)
        .collect();
    assert!(puts.contains(&None), "the crashed put: {puts:?}");
    assert!(
        puts.iter().filter(|s| **s == Some(200)).count() >= 2,
        "{puts:?}"
    );
    assert!(server.in_progress_files().unwrap().is_empty());
}
