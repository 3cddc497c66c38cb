//! The miner, run in-process for two windows against an in-process devnet
//! with the bundled stories260K model, on local storage: every uploaded file
//! is checked from scratch (`common::check_window_file`).
mod common;

use common::{check_window_file, fast_devnet, miner_for, next_window};
use grail_core::generation::window_object_key;
use grail_core::keys::Keypair;
use grail_miner::store::StoreTuning;
use grail_miner::{Shutdown, StoreArgs, WindowOutcome, WindowStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_on_local_storage_verify_from_scratch() {
    common::init_logs();
    let _cpu = common::CPU.lock().await;
    let devnet = fast_devnet(2).await;
    let dir = tempfile::tempdir().unwrap();
    let store = WindowStore::open(
        &StoreArgs {
            url: format!("file://{}", dir.path().display()),
            ..StoreArgs::default()
        },
        StoreTuning::default(),
    )
    .unwrap();
    let mut miner = miner_for(&devnet.chain_url(), store.clone(), "alice", 2).await;
    let outcomes = miner.run(&Shutdown::default()).await.unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let alice = Keypair::dev("alice").unwrap().hotkey();
    let mut windows = Vec::new();
    for o in &outcomes {
        let WindowOutcome::Uploaded(s) = o else {
            panic!("window not uploaded: {o:?}");
        };
        assert_eq!(s.key, window_object_key(&alice, s.window));
        let bytes = store.get(&s.key).await.unwrap();
        assert_eq!(bytes.len(), s.bytes);
        let checked = check_window_file(&bytes, &devnet, &alice, s.window);
        assert_eq!(checked.problems, s.problems);
        assert_eq!(checked.rollouts, s.rollouts);
        assert_eq!(checked.tokens as u64, s.tokens);
        windows.push(s.window);
    }
    assert_eq!(windows[1], next_window(windows[0]));
    // exactly the two files, under the documented key layout
    let listed = store.list("grail/windows").await.unwrap();
    assert_eq!(
        listed,
        windows
            .iter()
            .map(|&w| window_object_key(&alice, w))
            .collect::<Vec<_>>()
    );
    devnet.shutdown().await;
}
