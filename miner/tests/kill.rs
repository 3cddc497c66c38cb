//! The `grail-miner` binary killed mid-window (SIGKILL, and SIGTERM for a
//! graceful stop) leaves no object for that window; started again, it
//! resumes with the next window and uploads a valid file.
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{check_window_file, fast_devnet, next_window, stories_dir};
use grail_core::generation::window_object_key;
use grail_core::keys::Keypair;

/// Start the miner; a thread forwards its stderr lines to the returned channel.
fn spawn_miner(devnet: &str, store: &Path, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grail-miner"))
        .args(["run", "--devnet", devnet, "--dev", "dave", "--no-progress"])
        .arg("--model")
        .arg(stories_dir())
        .arg("--store")
        .arg(format!("file://{}", store.display()))
        .args(["--batch-groups", "1", "--margin-ms", "300"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[miner] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait (blocking) for a log line containing all of `needles`; returns it.
fn wait_line(rx: &mpsc::Receiver<String>, needles: &[&str], limit: Duration) -> String {
    let end = std::time::Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needles:?} within {limit:?}"));
        if needles.iter().all(|n| line.contains(n)) {
            return line;
        }
    }
}

/// The first `window=N` of a log line (the span's field, or the event's).
fn window_of(line: &str) -> u64 {
    let start = line.find("window=").expect("a window field") + "window=".len();
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn window_files(store: &Path) -> Vec<String> {
    let dir = store.join("grail/windows");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Start the miner, wait until it generates for a window, send `signal`;
/// returns the window it was killed in.
fn kill_mid_window(devnet: &str, store: &Path, signal: &str) -> u64 {
    let (mut child, rx) = spawn_miner(devnet, store, &[]);
    // generation starts right after the window's randomness is ready; with
    // no --max-problems the miner keeps generating until its deadline
    let line = wait_line(&rx, &["window randomness ready"], Duration::from_secs(90));
    let killed = window_of(&line);
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    if signal == "-TERM" {
        assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
        wait_line(&rx, &["abandoned"], Duration::from_secs(5));
    }
    assert!(
        window_files(store).is_empty(),
        "no object after {signal}: {:?}",
        window_files(store)
    );
    killed
}

/// SIGTERM (graceful) and then SIGKILL mid-window leave no object; a third
/// start resumes with the window after the killed one and uploads a valid file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_window_leaves_nothing_and_restart_resumes_with_the_next_window() {
    common::init_logs();
    let devnet = fast_devnet(1).await;
    let store = tempfile::tempdir().unwrap();
    let dave = Keypair::dev("dave").unwrap().hotkey();
    let url = devnet.chain_url();
    let (store_path, url2) = (store.path().to_owned(), url.clone());
    let killed = tokio::task::spawn_blocking(move || {
        kill_mid_window(&url2, &store_path, "-TERM");
        kill_mid_window(&url2, &store_path, "-KILL")
    })
    .await
    .unwrap();

    let store_path = store.path().to_owned();
    let uploaded = tokio::task::spawn_blocking(move || {
        let (mut child, rx) = spawn_miner(&url, &store_path, &["--windows", "1"]);
        let line = wait_line(&rx, &["window uploaded"], Duration::from_secs(90));
        assert!(child.wait().unwrap().success());
        window_of(&line)
    })
    .await
    .unwrap();
    assert_eq!(
        uploaded,
        next_window(killed),
        "resumes with the next window"
    );
    let key = window_object_key(&dave, uploaded);
    assert_eq!(
        window_files(store.path()),
        vec![key.trim_start_matches("grail/windows/").to_owned()]
    );
    let bytes = std::fs::read(store.path().join(&key)).unwrap();
    check_window_file(&bytes, &devnet, &dave, uploaded);
    devnet.shutdown().await;
}
