//! Command-line misuse the miner refuses before it touches the network or
//! the store.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `--gemm` picks the CUDA backend's products: with the CPU backend it is a
/// usage error (exit 2) naming the flag, raised before the miner connects
/// to anything or creates its store.
#[test]
fn gemm_without_the_cuda_backend_is_a_usage_error() {
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("never-created");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/stories260K");
    let mut child = Command::new(env!("CARGO_BIN_EXE_grail-miner"))
        .args(["run", "--model", model, "--dev", "alice"])
        // a port nothing listens on: a miner that went on would keep
        // trying to reach it (killed below)
        .args(["--devnet", "http://127.0.0.1:9"])
        .arg("--store")
        .arg(format!("file://{}", dir.display()))
        .args(["--backend", "cpu", "--gemm", "grail"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the miner went on past --gemm with --backend cpu");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--gemm") && stderr.contains("--backend cpu"),
        "{stderr}"
    );
    assert!(!dir.exists(), "the store was created");
}
