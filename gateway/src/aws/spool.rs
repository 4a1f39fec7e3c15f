//! The durable local spool: when S3 or CloudWatch Logs fails or throttles, a vault object or an
//! audit/access event is written here instead, and the request is still acknowledged; a
//! replayer delivers the spool to AWS in the order it was written, and [`Spool::backlog`] says
//! how much is waiting (for `/readyz` and the console).
//!
//! One file per entry, `<data_dir>/spool/<sequence, 20 digits>.rec`, written to a temp file,
//! fsynced and renamed (then the directory fsynced), so an acknowledged entry survives a crash
//! or power loss. Each file is `nonce (12) || AES-256-GCM(spool key, entry JSON) || tag`, with
//! the file's sequence number in the AAD (files cannot be swapped or reordered unnoticed).
//! The spool key is 32 random bytes in `<data_dir>/keys/spool.key` (0600, created once).
//! Vault objects are already sealed envelopes; audit events never hold prompt text; the spool
//! encrypts both anyway, since they name users.
//!
//! Replay stops at the first entry that still fails, so order is kept; it runs every few
//! seconds while there is a backlog, and after restarts (the backlog is re-read from disk).
//! DynamoDB needs no spool (the throttle falls back to in-process counters), and a KMS outage
//! longer than a cached key's life fails the vault write: sealing needs a KMS key.
//! On Lambda the data dir is the sandbox's `/tmp`: the spool survives between invocations of a
//! sandbox but not its recycling, so there it narrows the loss window rather than closing it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::audit::{AccessEvent, AuditError, AuditEvent, AuditStore, MinuteCount};
use crate::vault::{ObjectStore, VaultError};

/// The spool key's file name under `<data_dir>/keys/`.
pub const KEY_FILE: &str = "spool.key";
/// Largest spool file read back.
const MAX_ENTRY_BYTES: u64 = 96 * 1024 * 1024;
const AAD_PREFIX: &str = "golden-path-spool-v1:";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Entry {
    Object { key: String, bytes: String },
    Audit { event: Box<AuditEvent> },
    Access { event: AccessEvent },
}

/// The spool and the AWS stores it stands in for.
pub struct Spool {
    dir: PathBuf,
    key: LessSafeKey,
    objects: Arc<dyn ObjectStore>,
    audit: Arc<dyn AuditStore>,
    next: AtomicU64,
    backlog: AtomicU64,
    replaying: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("backlog", &self.backlog())
            .finish_non_exhaustive()
    }
}

fn sequence_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".rec")?.parse().ok()
}

impl Spool {
    /// Open (or create) `<data_dir>/spool` in front of `objects` and `audit`.
    pub fn open(
        data_dir: &Path,
        objects: Arc<dyn ObjectStore>,
        audit: Arc<dyn AuditStore>,
    ) -> Result<Arc<Spool>, String> {
        let dir = data_dir.join("spool");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the spool dir {}: {e}", dir.display()))?;
        let key_path = data_dir.join("keys").join(KEY_FILE);
        let secret = crate::secret_file::load_or_create(&key_path, 32)
            .map_err(|e| format!("spool key {}: {e}", key_path.display()))?;
        let key = UnboundKey::new(&AES_256_GCM, &secret)
            .map(LessSafeKey::new)
            .map_err(|_| "spool key rejected by AES-256-GCM".to_string())?;
        let pending = list(&dir).map_err(|e| format!("cannot read the spool: {e}"))?;
        let next = pending.last().map_or(0, |(seq, _)| seq + 1);
        Ok(Arc::new(Spool {
            dir,
            key,
            objects,
            audit,
            next: AtomicU64::new(next),
            backlog: AtomicU64::new(pending.len() as u64),
            replaying: tokio::sync::Mutex::new(()),
        }))
    }

    /// Entries waiting to be delivered.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// The vault's object store with the spool behind it.
    pub fn objects(self: &Arc<Self>) -> Arc<dyn ObjectStore> {
        Arc::new(SpooledObjects(self.clone()))
    }

    /// The audit store with the spool behind it.
    pub fn audit(self: &Arc<Self>) -> Arc<dyn AuditStore> {
        Arc::new(SpooledAudit(self.clone()))
    }

    /// Replay every `every` while the backlog is non-zero; stops when the spool is dropped.
    pub fn start_replayer(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Spool> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(spool) = weak.upgrade() else { return };
                if spool.backlog() > 0
                    && let Err(e) = spool.replay().await
                {
                    tracing::warn!(backlog = spool.backlog(), error = %e, "spool replay paused");
                }
            }
        });
    }

    /// Deliver spooled entries oldest first, stopping at the first that still fails; returns
    /// how many were delivered.
    pub async fn replay(&self) -> Result<u64, String> {
        let _one_at_a_time = self.replaying.lock().await;
        let dir = self.dir.clone();
        let pending = tokio::task::spawn_blocking(move || list(&dir))
            .await
            .map_err(|e| format!("spool listing failed: {e}"))?
            .map_err(|e| format!("cannot read the spool: {e}"))?;
        let mut delivered = 0;
        for (seq, path) in pending {
            let entry = self.read(seq, &path)?;
            let result = match &entry {
                Entry::Object { key, bytes } => {
                    let bytes = B64
                        .decode(bytes)
                        .map_err(|_| format!("spool entry {seq}: bad object bytes"))?;
                    self.objects
                        .put(key, bytes)
                        .await
                        .map_err(|e| e.to_string())
                }
                Entry::Audit { event } => self.audit.record(event).await.map_err(|e| e.to_string()),
                Entry::Access { event } => self
                    .audit
                    .record_access(event)
                    .await
                    .map_err(|e| e.to_string()),
            };
            result.map_err(|e| format!("spool entry {seq} not delivered yet: {e}"))?;
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove delivered spool entry {seq}: {e}"))?;
            self.backlog.fetch_sub(1, Ordering::Relaxed);
            delivered += 1;
        }
        Ok(delivered)
    }

    fn read(&self, seq: u64, path: &Path) -> Result<Entry, String> {
        let len = std::fs::metadata(path)
            .map_err(|e| format!("spool entry {seq}: {e}"))?
            .len();
        if len > MAX_ENTRY_BYTES {
            return Err(format!("spool entry {seq} is too large"));
        }
        let mut buf =
            Zeroizing::new(std::fs::read(path).map_err(|e| format!("spool entry {seq}: {e}"))?);
        if buf.len() < NONCE_LEN {
            return Err(format!("spool entry {seq} is truncated"));
        }
        let (nonce, sealed) = buf.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| format!("spool entry {seq} is truncated"))?;
        let aad = format!("{AAD_PREFIX}{seq}");
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), sealed)
            .map_err(|_| format!("spool entry {seq} does not decrypt (wrong key or damaged)"))?;
        serde_json::from_slice(plain).map_err(|_| format!("spool entry {seq} is malformed"))
    }

    /// Write one entry durably.
    async fn push(&self, entry: Entry) -> Result<(), String> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = Zeroizing::new(
            serde_json::to_vec(&entry).map_err(|e| format!("cannot encode a spool entry: {e}"))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "system random number generator failed".to_string())?;
        let aad = format!("{AAD_PREFIX}{seq}");
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                buf.as_mut_slice(),
            )
            .map_err(|_| "cannot seal a spool entry".to_string())?;
        let mut file = Vec::with_capacity(NONCE_LEN + buf.len() + tag.as_ref().len());
        file.extend_from_slice(&nonce);
        file.extend_from_slice(buf.as_slice());
        file.extend_from_slice(tag.as_ref());
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_durably(&dir, seq, &file))
            .await
            .map_err(|e| format!("spool write failed: {e}"))?
            .map_err(|e| format!("spool write failed: {e}"))?;
        self.backlog.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| sequence_of(&p).map(|s| (s, p)))
        .collect();
    out.sort_unstable_by_key(|(s, _)| *s);
    Ok(out)
}

fn write_durably(dir: &Path, seq: u64, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = format!("{seq:020}.rec");
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(&name))?;
    std::fs::File::open(dir)?.sync_all()
}

struct SpooledObjects(Arc<Spool>);

#[async_trait]
impl ObjectStore for SpooledObjects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), VaultError> {
        match self.0.objects.put(key, bytes.clone()).await {
            Ok(()) => Ok(()),
            Err(VaultError::Storage(e)) => {
                tracing::warn!(error = %e, "vault store failed; record spooled locally");
                self.0
                    .push(Entry::Object {
                        key: key.to_string(),
                        bytes: B64.encode(&bytes),
                    })
                    .await
                    .map_err(VaultError::Storage)
            }
            Err(e) => Err(e),
        }
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
        self.0.objects.get(key).await
    }
    async fn delete_older_than(&self, before_ms: i64) -> Result<u64, VaultError> {
        self.0.objects.delete_older_than(before_ms).await
    }
}

struct SpooledAudit(Arc<Spool>);

#[async_trait]
impl AuditStore for SpooledAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        match self.0.audit.record(event).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "audit store failed; event spooled locally");
                self.0
                    .push(Entry::Audit {
                        event: Box::new(event.clone()),
                    })
                    .await
                    .map_err(AuditError::Store)
            }
        }
    }
    async fn record_access(&self, event: &AccessEvent) -> Result<(), AuditError> {
        match self.0.audit.record_access(event).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "audit store failed; access event spooled locally");
                self.0
                    .push(Entry::Access {
                        event: event.clone(),
                    })
                    .await
                    .map_err(AuditError::Store)
            }
        }
    }
    async fn find(&self, request_id: &str) -> Result<Option<AuditEvent>, AuditError> {
        self.0.audit.find(request_id).await
    }
    async fn accesses(&self, request_id: &str) -> Result<Vec<AccessEvent>, AuditError> {
        self.0.audit.accesses(request_id).await
    }
    async fn requests_per_minute(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<MinuteCount>, AuditError> {
        self.0.audit.requests_per_minute(since_ms, until_ms).await
    }
}
