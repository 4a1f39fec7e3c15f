//! The moto fixture: one `moto` server (PyPI `moto[server]`, pinned in
//! `tests/python/requirements.txt`, installed into `.venv-test` by `scripts/setup.sh --test`)
//! per test binary, on 127.0.0.1 and a port the OS picks, shared by every test through
//! [`endpoint`].
//!
//! It runs moto's own `ThreadedMotoServer` (what `moto_server` serves) under
//! `.venv-test/bin/python`, bound to port 0, and reads back the port it got. The server's stdin
//! is a pipe held by this process: when the test binary exits, however it exits, the pipe closes
//! and the server stops, so no emulator outlives its tests. The script makes moto's DynamoDB item
//! operations atomic (one lock), as the service's conditional writes are; without it two racing
//! conditional updates on moto's server threads can both succeed. Tests share one server, so each
//! names its own bucket, key, table and log group (see [`unique`]) instead of resetting state.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

/// The script run under the venv's Python: serve, announce the port, stop when stdin closes.
const SERVE: &str = r#"
import logging, sys, threading
from moto.server import ThreadedMotoServer
from moto.dynamodb.models import DynamoDBBackend
logging.getLogger("werkzeug").setLevel(logging.ERROR)
# DynamoDB applies a conditional write atomically; moto checks and writes in separate steps on
# concurrent server threads, so two racing conditional updates can both succeed. One lock
# around moto's item operations restores the service's guarantee.
_items = threading.RLock()
def _atomic(op):
    def run(self, *args, **kwargs):
        with _items:
            return op(self, *args, **kwargs)
    return run
for _name in ("update_item", "put_item", "delete_item", "transact_write_items",
              "get_item", "batch_get_item", "query", "scan"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"moto listening on http://{host}:{port}", flush=True)
sys.stdin.read()
server.stop()
"#;

struct Moto {
    endpoint: String,
    // Held for the life of the process: dropping the write end stops the server.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The moto server's base URL (`http://127.0.0.1:PORT`), starting it on first use.
pub fn endpoint() -> &'static str {
    &MOTO.get_or_init(start).endpoint
}

/// Region and credentials the emulator accepts (any static pair works).
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";

/// A lowercase name unique to this process and call, valid as an S3 bucket, table or group.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("GOLDEN_PATH_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-test/bin/python")
}

fn start() -> Moto {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: run `scripts/setup.sh --test` to install moto[server]",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(SERVE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start moto under {}: {e}", python.display()));
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(url) = line.strip_prefix("moto listening on ") {
                let _ = tx.send(url.trim().to_string());
                sent = true;
            }
        }
    });
    let endpoint = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            panic!("moto did not start (is moto[server] installed in .venv-test?)");
        }
    };
    Moto {
        endpoint,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    }
}
