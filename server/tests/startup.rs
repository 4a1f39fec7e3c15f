//! The `server` binary started for real (ports 0, a temp data dir, umask 022), checked for what
//! its start-up does to the data dir: vault records past retention are swept (as `gateway
//! serve` does), and nothing in the data dir is open to group or others, including files and
//! directories an older version left world-readable.
#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the server on `data` under umask 022; returns once both listeners are announced.
fn start(data: &Path) -> Running {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\"")
        .arg(env!("CARGO_BIN_EXE_server"))
        .env_remove("GOLDEN_PATH_CONFIG")
        .env_remove("GOLDEN_PATH_LEPTOS_TOML")
        .env("GOLDEN_PATH_DATA_DIR", data)
        .env("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("console listening on ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("the server did not start"));
    running
}

/// Every path under `root` (itself included) whose mode lets group or others in.
fn open_to_others(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push((path.clone(), mode));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
        }
    }
    out
}

#[test]
fn start_up_sweeps_expired_records_and_keeps_the_data_dir_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // What an older version left: a world-readable data dir and console database.
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&data)
        .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(data.join("console.db"))
        .unwrap();
    std::fs::set_permissions(
        data.join("console.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // A vault record from 2020, long past the default 90-day retention.
    let hour = data.join("vault/prompts/2020/01/01/00");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&hour)
        .unwrap();
    let old = hour.join("expired-record");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&old)
        .unwrap();

    let _server = start(&data);

    let deadline = Instant::now() + Duration::from_secs(20);
    while old.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !old.exists(),
        "the server did not sweep a record past retention"
    );

    for name in ["console.db", "audit.db", "guardrails.db", "features.db"] {
        assert!(data.join(name).exists(), "{name}");
    }
    let open: Vec<String> = open_to_others(&data)
        .into_iter()
        .map(|(path, mode)| format!("{} {mode:o}", path.display()))
        .collect();
    assert!(open.is_empty(), "open to group or others: {open:#?}");
}
