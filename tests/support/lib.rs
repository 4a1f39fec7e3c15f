//! Test support for the black-box suites: locate the built binaries, start them on port 0 with
//! a temp data dir, read the address they announce, mint and forge tokens, and stop them.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: failing loudly is the point"
)]

pub mod bedrock_fake;
pub mod fault_proxy;
pub mod insights_fake;
pub mod kms_fake;
pub mod moto;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `target/<profile>/<name>`, next to the test binary's `deps/` directory.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p gateway -p server`)",
        path.display()
    );
    path
}

/// A running `gateway serve` with its own data dir, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub config: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Gateway {
    /// Start with the embedded defaults, plus `config` (TOML) and `env` overrides.
    pub fn start(config: Option<&str>, env: &[(&str, &str)]) -> Gateway {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let config_path = config.map(|text| {
            let p = data_dir.path().join("gateway.toml");
            std::fs::write(&p, text).expect("write config");
            p
        });
        Gateway::start_in(data_dir, config_path, env)
    }

    /// Start (again) on an existing data dir.
    pub fn start_in(
        data_dir: tempfile::TempDir,
        config: Option<PathBuf>,
        env: &[(&str, &str)],
    ) -> Gateway {
        Gateway::start_limited(data_dir, config, env, None)
    }

    /// [`Gateway::start_in`] with the process's open-file limit (soft and hard) set to
    /// `nofile` first, through `sh -c 'ulimit -n …'`.
    pub fn start_limited(
        data_dir: tempfile::TempDir,
        config: Option<PathBuf>,
        env: &[(&str, &str)],
        nofile: Option<u32>,
    ) -> Gateway {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        env.push((
            "GOLDEN_PATH_DATA_DIR".into(),
            data_dir.path().display().to_string(),
        ));
        env.push(("GOLDEN_PATH_SERVER__LISTEN".into(), "127.0.0.1:0".into()));
        let mut cmd = match nofile {
            None => Command::new(binary("gateway")),
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(binary("gateway"));
                sh
            }
        };
        cmd.arg("serve")
            .envs(env.iter().cloned())
            .env("RUST_LOG", "warn");
        if let Some(c) = &config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gateway");
        let base = read_announcement(&mut child, "gateway listening on ");
        Gateway {
            child,
            base,
            data_dir,
            config,
            env,
        }
    }

    /// Run a `gateway` CLI command against this instance's config and data dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("gateway"));
        cmd.args(args)
            .envs(self.env.iter().cloned())
            .env("RUST_LOG", "warn");
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.output().expect("run gateway cli")
    }

    /// A token from the embedded issuer via `gateway token`.
    pub fn token(&self, sub: &str, feature: &str) -> String {
        let out = self.cli(&["token", "--sub", sub, "--feature", feature]);
        assert!(
            out.status.success(),
            "gateway token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL the process and wait for it; returns the data dir for inspection or restart.
    pub fn kill9(mut self) -> (tempfile::TempDir, Option<PathBuf>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("tempdir"));
        (dir, self.config.take())
    }

    pub fn audit_db(&self) -> rusqlite::Connection {
        open_audit_db(self.data_dir.path())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn open_audit_db(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data_dir.join("audit.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open audit.db")
}

/// Read the child's stdout until a line starting with `prefix`; returns the rest of the line.
/// Later stdout is drained in the background so the child never blocks on a full pipe.
pub fn read_announcement(child: &mut Child, prefix: &str) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let wanted = prefix.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(rest) = line.strip_prefix(&wanted) {
                let _ = tx.send(rest.trim().to_string());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            panic!("the process never printed {prefix:?}");
        }
    }
}

/// Sign claims with the embedded issuer's own key (read from the data dir), to forge tokens
/// that are valid in every respect but the one a test breaks.
pub fn sign_with_issuer_key(
    data_dir: &Path,
    header: jsonwebtoken::Header,
    claims: &serde_json::Value,
) -> String {
    let pem = std::fs::read(data_dir.join("keys/issuer-es256.pem")).expect("issuer key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("ec key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// Split a compact JWS into its three parts.
pub fn jws_parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    let parts = (
        it.next().unwrap().to_string(),
        it.next().unwrap().to_string(),
        it.next().unwrap().to_string(),
    );
    assert!(it.next().is_none());
    parts
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
