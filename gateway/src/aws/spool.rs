//! The durable local spool: when S3, KMS or CloudWatch Logs fails or throttles, a vault object
//! or an audit/access event is written here instead, and the request is still acknowledged; a
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
//! **KMS outages.** The vault's key provider on AWS is [`Spool::keys`] in front of
//! [`KmsKeys`]: when KMS cannot give a key-encryption key (an error, throttling, a timeout, or
//! the KMS pause after a recent failure), the record is still sealed exactly as usual (AES-256-GCM
//! under a fresh data key, the encryption context `{requestId, userSub, feature}` as AAD), but
//! its data key is wrapped locally under the spool KEK (`<data_dir>/keys/spool-kek.key`,
//! AES-256-GCM with the same context as AAD; key id [`LOCAL_KEY_ID`]). Such an envelope never
//! goes to S3: it is spooled, and replay unwraps the data key locally, re-wraps it under a KMS
//! KEK ([`KmsKeys::wrap_data_key`]) and puts the envelope to S3. The record's ciphertext is never
//! decrypted on the way, no plaintext is written anywhere, and a record moved to another
//! context fails both the local unwrap and the record's AEAD.
//!
//! **Order.** While the backlog is non-zero, new objects and events go straight to the spool
//! (behind what is already waiting) instead of to AWS, so AWS receives everything in the order
//! it was written, and a hanging service costs one timeout, not one per request. Replay takes
//! the oldest entries in windows of [`REPLAY_WINDOW`], delivers a window concurrently (audit
//! events of one window reach CloudWatch in order, as one batch), removes each delivered entry,
//! and stops the pass at a window with a transient failure; it runs every few seconds while
//! there is a backlog (backing off up to [`MAX_REPLAY_BACKOFF`] while nothing gets through),
//! back to back while it is making progress, and after restarts (the backlog is re-read from
//! disk).
//!
//! **Undeliverable entries.** A failure is transient (throttling, a 5xx, a timeout, no
//! connection, and refusals about the deployment rather than the entry: access denied, a KMS
//! key disabled; retried, and the pass stops so order is kept) or deterministic (the service
//! refuses the entry itself: validation, too large, a timestamp CloudWatch will not take; or
//! the entry is corrupt: it does not decrypt or decode). A deterministic failure
//! moves the entry to `spool/dead/` (same file, plus `<name>.reason` saying why) and replay
//! goes on behind it, so one bad entry never blocks delivery. [`Spool::dead_letters`] counts
//! them (`/readyz` `deadLetterRecords`, the console's overview). Dead-lettered files stay
//! encrypted; to retry them, stop the gateway and move them back into `spool/`.
//!
//! **Bounded.** Waiting and dead-lettered entries together are at most
//! [`SpoolLimits::max_entries`] files and [`SpoolLimits::max_bytes`] bytes; beyond that a new
//! record is refused (the request fails with 503) rather than an acknowledged one dropped.
//!
//! **Exactly once.** S3 puts are write-once (`If-None-Match: *`; an existing object is an
//! earlier attempt of the same put, see `super::s3`), so a replay that repeats a put is
//! harmless. CloudWatch's PutLogEvents is not idempotent (and is sent without SDK retries for
//! that reason), so an audit or access event that may have reached CloudWatch without an answer
//! is looked up (`find` / `accesses`) before it is sent again: one spooled after a failed direct
//! write (marked `attempted`), one whose replay failed in this process, and, after a restart,
//! the first window (it may have been in flight when the previous process died). Entries
//! spooled without an attempt (the backlog rule) need no lookup.
//!
//! **One owner.** The first process to open a data dir's spool holds `spool/.lock`; another
//! process on the same data dir (say `gateway vault open` beside a running gateway) writes to
//! AWS directly and, when AWS fails, fails instead of spooling, so two processes never share
//! sequence numbers or replay each other's entries.
//!
//! DynamoDB needs no spool (the throttle falls back to in-process counters). A record is not
//! openable (`vault open`) until its object has been delivered. On Lambda the data dir is the
//! sandbox's `/tmp`: the spool survives between invocations of a sandbox but not its
//! recycling, so there it narrows the loss window rather than closing it.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::kms::KmsKeys;
use crate::audit::{
    AccessEvent, AccessFilter, AuditError, AuditEvent, AuditStore, MinuteCount, UsageSummary,
};
use crate::vault::envelope::Envelope;
use crate::vault::local_keys::context_aad;
use crate::vault::{DataKey, EncryptionContext, KeyProvider, ObjectStore, VaultError};

/// The spool key's file name under `<data_dir>/keys/`.
pub const KEY_FILE: &str = "spool.key";
/// The spool KEK's file name under `<data_dir>/keys/`: wraps data keys while KMS is away.
pub const KEK_FILE: &str = "spool-kek.key";
/// The envelope key id of a data key wrapped under the spool KEK (never seen in S3).
pub const LOCAL_KEY_ID: &str = "spool:local";
/// Entries delivered concurrently in one replay step.
pub const REPLAY_WINDOW: usize = 64;
/// Longest wait for one direct S3 put before the object is spooled instead.
pub const DIRECT_PUT_TIMEOUT: Duration = Duration::from_secs(5);
/// The replayer's pause after a pass that delivered some entries and then failed.
const RETRY_SOON: Duration = Duration::from_millis(250);
/// Longest wait for one object put during replay.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest spool file read back.
const MAX_ENTRY_BYTES: u64 = 96 * 1024 * 1024;
/// Longest pause between replay passes that deliver nothing.
pub const MAX_REPLAY_BACKOFF: Duration = Duration::from_secs(30);
/// The dead-letter directory under `spool/`.
pub const DEAD_DIR: &str = "dead";
/// Longest reason text kept beside a dead-lettered entry.
const MAX_REASON_BYTES: usize = 1024;

/// How much the spool may hold (waiting and dead-lettered entries together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for SpoolLimits {
    /// 100,000 entries and 4 GiB: hours of traffic at a steady rate while AWS is away.
    fn default() -> SpoolLimits {
        SpoolLimits {
            max_entries: 100_000,
            max_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// Why an entry was not delivered.
#[derive(Debug)]
enum Failure {
    /// Worth retrying later: throttling, a 5xx, a timeout, no connection, a local I/O error.
    Transient(String),
    /// Fails the same way every time: the service refused the entry itself, or it is corrupt.
    Permanent(String),
}

/// Error codes and texts of AWS answers that refuse the entry itself: the same request would
/// be refused again. Anything else (throttling, 5xx, timeouts, connections) is transient, and
/// so are refusals that are about the deployment rather than the entry (access denied, a
/// disabled or pending-deletion KMS key): every entry fails alike, and they are delivered once
/// the operator has fixed it, as the KMS key-state tests require.
const PERMANENT_MARKERS: &[&str] = &[
    "ValidationException",
    "InvalidParameter",
    "InvalidRequest",
    "InvalidArgument",
    "EntityTooLarge",
    "KeyTooLong",
    "MalformedXML",
    "rejected the event's timestamp",
];

/// Classify a delivery error text (the stores' errors carry the AWS error code).
fn classify(text: String) -> Failure {
    if PERMANENT_MARKERS.iter().any(|m| text.contains(m)) {
        Failure::Permanent(text)
    } else {
        Failure::Transient(text)
    }
}

/// A vault error as a delivery failure: a malformed or undecryptable record never gets better.
fn vault_failure(e: VaultError) -> Failure {
    match e {
        VaultError::Malformed(_) | VaultError::Decrypt => Failure::Permanent(e.to_string()),
        // KMS refusals concern the key, not the entry: retried until the key is usable.
        VaultError::Keys(_) => Failure::Transient(e.to_string()),
        VaultError::Storage(_) => classify(e.to_string()),
        VaultError::NotFound | VaultError::Expired => Failure::Transient(e.to_string()),
    }
}
const AAD_PREFIX: &str = "golden-path-spool-v1:";
const KEK_AAD_PREFIX: &[u8] = b"golden-path-spool-kek-v1:";
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Entry {
    /// A sealed envelope for S3.
    Object { key: String, bytes: String },
    /// A sealed envelope whose data key is wrapped under the spool KEK: re-wrap with KMS, then S3.
    LocallyWrapped { key: String, bytes: String },
    Audit {
        event: Box<AuditEvent>,
        /// A direct write was tried and failed (it may still have landed).
        #[serde(default)]
        attempted: bool,
    },
    Access {
        event: AccessEvent,
        #[serde(default)]
        attempted: bool,
    },
}

/// The spool and the AWS stores it stands in for.
pub struct Spool {
    dir: PathBuf,
    key: LessSafeKey,
    kek: LessSafeKey,
    objects: Arc<dyn ObjectStore>,
    audit: Arc<dyn AuditStore>,
    /// The KMS key provider replay re-wraps locally wrapped data keys with ([`Spool::keys`]).
    kms: OnceLock<Arc<KmsKeys>>,
    next: AtomicU64,
    backlog: AtomicU64,
    /// Entries moved to `spool/dead/`.
    dead: AtomicU64,
    /// Files and bytes held (waiting, dead-lettered, and being written), against `limits`.
    used_entries: AtomicU64,
    used_bytes: AtomicU64,
    limits: SpoolLimits,
    replaying: tokio::sync::Mutex<()>,
    /// Entries whose delivery may have reached AWS without an answer: a failed replay attempt
    /// in this process, or (after a restart) the first window, which may have been in flight
    /// when the previous process died. Their audit events are looked up before being repeated.
    uncertain: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// Whether this process holds the spool's lock (see [`Spool::open`]).
    owner: bool,
    /// The open lock file; the lock lasts as long as it is open (the kernel drops it when the
    /// process dies, so a killed gateway's successor takes over).
    _lock: std::fs::File,
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

fn aes_key(data_dir: &Path, file: &str) -> Result<LessSafeKey, String> {
    let path = data_dir.join("keys").join(file);
    let secret = crate::secret_file::load_or_create(&path, KEY_LEN)
        .map_err(|e| format!("spool key {}: {e}", path.display()))?;
    UnboundKey::new(&AES_256_GCM, &secret)
        .map(LessSafeKey::new)
        .map_err(|_| format!("spool key {} rejected by AES-256-GCM", path.display()))
}

impl Spool {
    /// Open (or create) `<data_dir>/spool` in front of `objects` and `audit`.
    pub fn open(
        data_dir: &Path,
        objects: Arc<dyn ObjectStore>,
        audit: Arc<dyn AuditStore>,
    ) -> Result<Arc<Spool>, String> {
        Spool::open_with(data_dir, objects, audit, SpoolLimits::default())
    }

    /// [`Spool::open`] with explicit bounds.
    pub fn open_with(
        data_dir: &Path,
        objects: Arc<dyn ObjectStore>,
        audit: Arc<dyn AuditStore>,
        limits: SpoolLimits,
    ) -> Result<Arc<Spool>, String> {
        let dir = data_dir.join("spool");
        crate::secret_file::private_dir(&dir)
            .map_err(|e| format!("cannot create the spool dir {}: {e}", dir.display()))?;
        let key = aes_key(data_dir, KEY_FILE)?;
        let kek = aes_key(data_dir, KEK_FILE)?;
        // One process owns a spool: sequence numbers, the backlog count and replay are
        // per process, and a second writer (e.g. `gateway vault open` beside a running gateway on
        // the same data dir) could take a sequence number the owner also takes. A process that
        // does not get the lock writes to AWS directly and never spools or replays.
        let lock_path = dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        let owner = match lock.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()));
            }
        };
        let (pending, dead) = if owner {
            let dead_dir = dir.join(DEAD_DIR);
            let dead = if dead_dir.is_dir() {
                list(&dead_dir).map_err(|e| format!("cannot read the spool's dead letters: {e}"))?
            } else {
                Vec::new()
            };
            (
                list(&dir).map_err(|e| format!("cannot read the spool: {e}"))?,
                dead,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let used_bytes: u64 = pending
            .iter()
            .chain(&dead)
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum();
        // Past every sequence number in use, dead letters included (their names are kept).
        let next = pending
            .last()
            .into_iter()
            .chain(dead.last())
            .map(|(seq, _)| seq + 1)
            .max()
            .unwrap_or(0);
        let uncertain = pending
            .iter()
            .take(REPLAY_WINDOW)
            .map(|(seq, _)| *seq)
            .collect();
        Ok(Arc::new(Spool {
            dir,
            key,
            kek,
            objects,
            audit,
            kms: OnceLock::new(),
            next: AtomicU64::new(next),
            backlog: AtomicU64::new(pending.len() as u64),
            dead: AtomicU64::new(dead.len() as u64),
            used_entries: AtomicU64::new((pending.len() + dead.len()) as u64),
            used_bytes: AtomicU64::new(used_bytes),
            limits,
            replaying: tokio::sync::Mutex::new(()),
            uncertain: std::sync::Mutex::new(uncertain),
            owner,
            _lock: lock,
        }))
    }

    /// Entries waiting to be delivered.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Entries that can never be delivered, kept in `spool/dead/`.
    pub fn dead_letters(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }

    /// The vault's object store with the spool behind it.
    pub fn objects(self: &Arc<Self>) -> Arc<dyn ObjectStore> {
        Arc::new(SpooledObjects(self.clone()))
    }

    /// The audit store with the spool behind it.
    pub fn audit(self: &Arc<Self>) -> Arc<dyn AuditStore> {
        Arc::new(SpooledAudit(self.clone()))
    }

    /// The vault's key provider: `kms`, or the spool KEK while KMS is unavailable (see the
    /// module doc). Replay re-wraps with the same `kms`; the first call's `kms` is kept.
    pub fn keys(self: &Arc<Self>, kms: Arc<KmsKeys>) -> Arc<dyn KeyProvider> {
        let kms = self.kms.get_or_init(|| kms).clone();
        Arc::new(SpooledKeys {
            spool: self.clone(),
            kms,
        })
    }

    /// Replay every `every` while the backlog is non-zero (back to back while entries are being
    /// delivered); stops when the spool is dropped.
    pub fn start_replayer(self: &Arc<Self>, every: Duration) {
        if !self.owner {
            return;
        }
        let weak: Weak<Spool> = Arc::downgrade(self);
        tokio::spawn(async move {
            // Passes in a row that delivered nothing and failed: the pause doubles each time.
            let mut idle_failures = 0u32;
            loop {
                let (delivered, failed) = {
                    let Some(spool) = weak.upgrade() else { return };
                    if spool.backlog() == 0 {
                        (0, false)
                    } else {
                        let (delivered, error) = spool.replay_pass().await;
                        if let Some(e) = &error
                            && delivered == 0
                        {
                            tracing::warn!(backlog = spool.backlog(), error = %e, "spool replay paused");
                        }
                        (delivered, error.is_some())
                    }
                };
                match (delivered, failed) {
                    (0, true) => {
                        idle_failures = idle_failures.saturating_add(1);
                        tokio::time::sleep(backoff(every, idle_failures)).await;
                    }
                    (0, false) => {
                        idle_failures = 0;
                        tokio::time::sleep(every).await;
                    }
                    // Progress, then a failure: most likely a passing one; retry soon.
                    (_, true) => {
                        idle_failures = 0;
                        tokio::time::sleep(RETRY_SOON).await;
                    }
                    (_, false) => idle_failures = 0,
                }
            }
        });
    }

    /// Deliver spooled entries oldest first, a window at a time, dead-lettering entries that
    /// can never be delivered and stopping after the first window with a transient failure;
    /// returns how many were delivered or dead-lettered.
    pub async fn replay(&self) -> Result<u64, String> {
        match self.replay_pass().await {
            (delivered, None) => Ok(delivered),
            (_, Some(e)) => Err(e),
        }
    }

    /// One replay pass: how many entries were delivered or dead-lettered, and the error that
    /// stopped it.
    async fn replay_pass(&self) -> (u64, Option<String>) {
        let mut delivered = 0;
        let result = self.replay_into(&mut delivered).await;
        (delivered, result.err())
    }

    async fn replay_into(&self, delivered: &mut u64) -> Result<(), String> {
        if !self.owner {
            return Ok(());
        }
        let _one_at_a_time = self.replaying.lock().await;
        let dir = self.dir.clone();
        let pending = tokio::task::spawn_blocking(move || list(&dir))
            .await
            .map_err(|e| format!("spool listing failed: {e}"))?
            .map_err(|e| format!("cannot read the spool: {e}"))?;
        for window in pending.chunks(REPLAY_WINDOW) {
            let mut first_error = None;
            let mut entries = Vec::with_capacity(window.len());
            for (seq, path) in window {
                match self.read(*seq, path) {
                    Ok((entry, len)) => entries.push((*seq, path, entry, len)),
                    Err(Failure::Permanent(reason)) => {
                        self.dead_letter(*seq, path, &reason)?;
                        *delivered += 1;
                    }
                    Err(Failure::Transient(e)) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            // Polled in order: the audit events of a window reach the writer in order.
            let results = futures::future::join_all(
                entries
                    .iter()
                    .map(|(seq, _, entry, _)| self.deliver(*seq, entry)),
            )
            .await;
            for ((seq, path, _, len), result) in entries.iter().zip(results) {
                match result {
                    Ok(()) => {
                        std::fs::remove_file(path).map_err(|e| {
                            format!("cannot remove delivered spool entry {seq}: {e}")
                        })?;
                        self.uncertain_set().remove(seq);
                        self.backlog.fetch_sub(1, Ordering::Relaxed);
                        self.used_entries.fetch_sub(1, Ordering::Relaxed);
                        self.used_bytes.fetch_sub(*len, Ordering::Relaxed);
                        *delivered += 1;
                    }
                    Err(Failure::Permanent(reason)) => {
                        self.dead_letter(*seq, path, &reason)?;
                        *delivered += 1;
                    }
                    Err(Failure::Transient(e)) => {
                        self.uncertain_set().insert(*seq);
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(format!("not delivered yet: {e}"));
            }
        }
        Ok(())
    }

    /// Move an entry that can never be delivered to `spool/dead/`, with the reason beside it,
    /// so replay goes on behind it. The file stays as it was (encrypted); it still counts
    /// against the spool's bounds.
    fn dead_letter(&self, seq: u64, path: &Path, reason: &str) -> Result<(), String> {
        let dead = self.dir.join(DEAD_DIR);
        let name = path
            .file_name()
            .ok_or_else(|| format!("spool entry {seq} has no file name"))?;
        let moved = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dead)?;
            let mut why = reason.to_string();
            if why.len() > MAX_REASON_BYTES {
                let mut cut = MAX_REASON_BYTES;
                while !why.is_char_boundary(cut) {
                    cut -= 1;
                }
                why.truncate(cut);
            }
            let mut reason_name = name.to_os_string();
            reason_name.push(".reason");
            std::fs::write(dead.join(reason_name), format!("{why}\n"))?;
            std::fs::rename(path, dead.join(name))?;
            std::fs::File::open(&dead)?.sync_all()?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        moved.map_err(|e| format!("cannot dead-letter spool entry {seq}: {e}"))?;
        self.uncertain_set().remove(&seq);
        self.backlog.fetch_sub(1, Ordering::Relaxed);
        self.dead.fetch_add(1, Ordering::Relaxed);
        tracing::error!(seq, reason = %reason, "spool entry can never be delivered; moved to spool/dead");
        Ok(())
    }

    fn uncertain_set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<u64>> {
        match self.uncertain.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Deliver one entry. Object puts are bounded by [`REPLAY_TIMEOUT`] (a repeated put is
    /// harmless); audit events are not, since the CloudWatch writer may still deliver an event
    /// whose wait was abandoned; it answers within the SDK's own operation timeout.
    async fn deliver(&self, seq: u64, entry: &Entry) -> Result<(), Failure> {
        let tag = |failure: Failure| match failure {
            Failure::Transient(e) => Failure::Transient(format!("spool entry {seq}: {e}")),
            Failure::Permanent(e) => Failure::Permanent(format!("spool entry {seq}: {e}")),
        };
        let audit_failure = |e: AuditError| tag(classify(e.to_string()));
        let uncertain = self.uncertain_set().contains(&seq);
        match entry {
            Entry::Object { key, bytes } => {
                let bytes = B64.decode(bytes).map_err(|_| {
                    tag(Failure::Permanent("corrupt entry: bad object bytes".into()))
                })?;
                bounded(self.objects.put(key, bytes)).await.map_err(tag)
            }
            Entry::LocallyWrapped { key, bytes } => {
                let bytes = B64.decode(bytes).map_err(|_| {
                    tag(Failure::Permanent("corrupt entry: bad object bytes".into()))
                })?;
                let bytes = self
                    .rewrap_with_kms(&bytes)
                    .await
                    .map_err(|e| tag(vault_failure(e)))?;
                bounded(self.objects.put(key, bytes)).await.map_err(tag)
            }
            Entry::Audit { event, attempted } => {
                if (*attempted || uncertain)
                    && let Some(found) = self
                        .audit
                        .find(&event.request_id)
                        .await
                        .map_err(|e| tag(Failure::Transient(e.to_string())))?
                    && found.timestamp == event.timestamp
                {
                    tracing::debug!(seq, "spooled audit event had reached AWS; not repeated");
                    return Ok(());
                }
                self.audit.record(event).await.map_err(audit_failure)
            }
            Entry::Access { event, attempted } => {
                if (*attempted || uncertain)
                    && self
                        .audit
                        .accesses(&event.request_id)
                        .await
                        .map_err(|e| tag(Failure::Transient(e.to_string())))?
                        .contains(event)
                {
                    return Ok(());
                }
                self.audit.record_access(event).await.map_err(audit_failure)
            }
        }
    }

    /// A locally wrapped envelope with its data key re-wrapped under a KMS KEK.
    async fn rewrap_with_kms(&self, bytes: &[u8]) -> Result<Vec<u8>, VaultError> {
        let kms = self.kms.get().ok_or_else(|| {
            VaultError::Keys("no KMS key provider to re-wrap a spooled record with".into())
        })?;
        let mut envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|_| VaultError::Malformed("spooled record is not an envelope".into()))?;
        if envelope.key_id != LOCAL_KEY_ID {
            return Err(VaultError::Malformed(
                "spooled record is not locally wrapped".into(),
            ));
        }
        let wrapped = B64
            .decode(&envelope.wrapped_key)
            .map_err(|_| VaultError::Malformed("wrappedKey is not valid base64".into()))?;
        let data_key = self.unwrap_local(&wrapped, &envelope.encryption_context)?;
        let (wrapped, key_id) = kms
            .wrap_data_key(&envelope.encryption_context, &data_key)
            .await?;
        envelope.key_id = key_id;
        envelope.wrapped_key = B64.encode(wrapped);
        serde_json::to_vec(&envelope)
            .map_err(|e| VaultError::Malformed(format!("cannot encode the envelope: {e}")))
    }

    /// A fresh data key wrapped under the spool KEK, bound to `context`.
    fn wrap_local(&self, context: &EncryptionContext) -> Result<DataKey, VaultError> {
        let rng = SystemRandom::new();
        let rng_failed = || VaultError::Keys("system random number generator failed".into());
        let mut plaintext = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill(plaintext.as_mut_slice())
            .map_err(|_| rng_failed())?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| rng_failed())?;
        let aad = local_aad(context)?;
        let mut sealed = Zeroizing::new(*plaintext);
        let tag = self
            .kek
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                sealed.as_mut_slice(),
            )
            .map_err(|_| VaultError::Keys("cannot wrap the data key".into()))?;
        let mut wrapped = Vec::with_capacity(NONCE_LEN + KEY_LEN + TAG_LEN);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(sealed.as_slice());
        wrapped.extend_from_slice(tag.as_ref());
        Ok(DataKey {
            plaintext,
            wrapped,
            key_id: LOCAL_KEY_ID.to_string(),
        })
    }

    fn unwrap_local(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(VaultError::Malformed(
                "wrappedKey is not a spool-wrapped key".into(),
            ));
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| VaultError::Malformed("wrappedKey nonce".into()))?;
        let aad = local_aad(context)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let opened = self
            .kek
            .open_in_place(nonce, Aad::from(aad.as_slice()), buf.as_mut_slice())
            .map_err(|_| VaultError::Decrypt)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(opened);
        Ok(key)
    }

    /// Read and open one entry, with its file's size. A file that is too large, truncated,
    /// does not decrypt or does not decode is corrupt: it never gets better.
    fn read(&self, seq: u64, path: &Path) -> Result<(Entry, u64), Failure> {
        let corrupt = |what: &str| Failure::Permanent(format!("spool entry {seq} {what}"));
        let len = std::fs::metadata(path)
            .map_err(|e| Failure::Transient(format!("spool entry {seq}: {e}")))?
            .len();
        if len > MAX_ENTRY_BYTES {
            return Err(corrupt("is too large"));
        }
        let mut buf = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| Failure::Transient(format!("spool entry {seq}: {e}")))?,
        );
        if buf.len() < NONCE_LEN {
            return Err(corrupt("is truncated"));
        }
        let (nonce, sealed) = buf.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt("is truncated"))?;
        let aad = format!("{AAD_PREFIX}{seq}");
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), sealed)
            .map_err(|_| corrupt("does not decrypt (wrong key or damaged)"))?;
        let entry = serde_json::from_slice(plain).map_err(|_| corrupt("is malformed"))?;
        Ok((entry, len))
    }

    /// Write one entry durably.
    async fn push(&self, entry: Entry) -> Result<(), String> {
        if !self.owner {
            return Err(
                "the local spool belongs to another process on this data dir (a running \
                        gateway), so nothing is spooled here"
                    .into(),
            );
        }
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
        let size = file.len() as u64;
        // Reserve room first (concurrent pushes cannot overshoot together); a full spool
        // refuses the record, so the request fails instead of an acknowledged record being lost.
        let entries = self.used_entries.fetch_add(1, Ordering::Relaxed);
        let bytes = self.used_bytes.fetch_add(size, Ordering::Relaxed);
        let release = || {
            self.used_entries.fetch_sub(1, Ordering::Relaxed);
            self.used_bytes.fetch_sub(size, Ordering::Relaxed);
        };
        if entries >= self.limits.max_entries || bytes.saturating_add(size) > self.limits.max_bytes
        {
            release();
            if log_now(&FULL_LOGGED) {
                tracing::error!(
                    backlog = self.backlog(),
                    dead_letters = self.dead_letters(),
                    "the local spool is full; refusing new records"
                );
            }
            return Err(format!(
                "the local spool is full ({} entries waiting, {} dead-lettered); AWS must \
                 accept the backlog first",
                self.backlog(),
                self.dead_letters()
            ));
        }
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || write_durably(&dir, seq, &file))
            .await
            .map_err(|e| format!("spool write failed: {e}"))
            .and_then(|r| r.map_err(|e| format!("spool write failed: {e}")));
        if let Err(e) = written {
            release();
            return Err(e);
        }
        self.backlog.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The AAD of a data key wrapped under the spool KEK: a prefix and the record's context.
fn local_aad(context: &EncryptionContext) -> Result<Vec<u8>, VaultError> {
    let mut aad = KEK_AAD_PREFIX.to_vec();
    aad.extend_from_slice(&context_aad(context)?);
    Ok(aad)
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
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(&name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// An object put bounded by [`REPLAY_TIMEOUT`].
async fn bounded(put: impl Future<Output = Result<(), VaultError>>) -> Result<(), Failure> {
    match tokio::time::timeout(REPLAY_TIMEOUT, put).await {
        Ok(result) => result.map_err(vault_failure),
        Err(_) => Err(Failure::Transient("timed out".to_string())),
    }
}

/// The pause after `failures` replay passes in a row that delivered nothing: `every`,
/// doubling, at most [`MAX_REPLAY_BACKOFF`] (never less than `every`).
fn backoff(every: Duration, failures: u32) -> Duration {
    let doubled = every.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_REPLAY_BACKOFF.max(every))
}

/// Whether `bytes` is an envelope whose data key is wrapped under the spool KEK.
fn is_locally_wrapped(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct KeyId {
        #[serde(rename = "keyId")]
        key_id: String,
    }
    serde_json::from_slice::<KeyId>(bytes).is_ok_and(|k| k.key_id == LOCAL_KEY_ID)
}

struct SpooledKeys {
    spool: Arc<Spool>,
    kms: Arc<KmsKeys>,
}

/// When the "spooled locally" warning was last logged (ms): during an outage every record is
/// spooled, and one line per [`LOG_EVERY_MS`] says so instead of one per record.
static SPOOLING_LOGGED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);
/// When "the spool is full" was last logged (ms).
static FULL_LOGGED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);
const LOG_EVERY_MS: i64 = 5_000;

/// Whether a rate-limited warning may be logged now (and note that it was).
fn log_now(last: &std::sync::atomic::AtomicI64) -> bool {
    let now = crate::now_ms();
    let prev = last.load(Ordering::Relaxed);
    now.saturating_sub(prev) >= LOG_EVERY_MS
        && last
            .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

#[async_trait]
impl KeyProvider for SpooledKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, VaultError> {
        match self.kms.generate_data_key(context).await {
            Ok(key) => Ok(key),
            Err(VaultError::Keys(e)) => {
                if log_now(&SPOOLING_LOGGED) {
                    tracing::warn!(error = %e, "KMS unavailable; data key wrapped locally and the record spooled");
                }
                self.spool.wrap_local(context)
            }
            Err(e) => Err(e),
        }
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        if key_id == LOCAL_KEY_ID {
            return self.spool.unwrap_local(wrapped, context);
        }
        self.kms.decrypt_data_key(wrapped, key_id, context).await
    }
}

struct SpooledObjects(Arc<Spool>);

impl SpooledObjects {
    async fn spool(&self, entry: Entry) -> Result<(), VaultError> {
        self.0.push(entry).await.map_err(VaultError::Storage)
    }
}

#[async_trait]
impl ObjectStore for SpooledObjects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), VaultError> {
        if is_locally_wrapped(&bytes) {
            return self
                .spool(Entry::LocallyWrapped {
                    key: key.to_string(),
                    bytes: B64.encode(&bytes),
                })
                .await;
        }
        let entry = |bytes: &[u8]| Entry::Object {
            key: key.to_string(),
            bytes: B64.encode(bytes),
        };
        if self.0.backlog() > 0 {
            return self.spool(entry(&bytes)).await;
        }
        let direct =
            tokio::time::timeout(DIRECT_PUT_TIMEOUT, self.0.objects.put(key, bytes.clone()));
        match direct.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(VaultError::Storage(e))) => {
                if log_now(&SPOOLING_LOGGED) {
                    tracing::warn!(error = %e, "vault store failed; record spooled locally");
                }
                self.spool(entry(&bytes)).await
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if log_now(&SPOOLING_LOGGED) {
                    tracing::warn!("vault store timed out; record spooled locally");
                }
                self.spool(entry(&bytes)).await
            }
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
        let spooled = |attempted| Entry::Audit {
            event: Box::new(event.clone()),
            attempted,
        };
        if self.0.backlog() > 0 {
            return self.0.push(spooled(false)).await.map_err(AuditError::Store);
        }
        match self.0.audit.record(event).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if log_now(&SPOOLING_LOGGED) {
                    tracing::warn!(error = %e, "audit store failed; event spooled locally");
                }
                self.0.push(spooled(true)).await.map_err(AuditError::Store)
            }
        }
    }
    async fn record_access(&self, event: &AccessEvent) -> Result<(), AuditError> {
        let spooled = |attempted| Entry::Access {
            event: event.clone(),
            attempted,
        };
        if self.0.backlog() > 0 {
            return self.0.push(spooled(false)).await.map_err(AuditError::Store);
        }
        match self.0.audit.record_access(event).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if log_now(&SPOOLING_LOGGED) {
                    tracing::warn!(error = %e, "audit store failed; access event spooled locally");
                }
                self.0.push(spooled(true)).await.map_err(AuditError::Store)
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
    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        top: usize,
    ) -> Result<UsageSummary, AuditError> {
        self.0.audit.usage(since_ms, until_ms, top).await
    }
    async fn requests_by_feature(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<BTreeMap<String, u64>, AuditError> {
        self.0.audit.requests_by_feature(since_ms, until_ms).await
    }
    async fn access_log(&self, filter: &AccessFilter) -> Result<Vec<AccessEvent>, AuditError> {
        self.0.audit.access_log(filter).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use serde_json::json;

    use super::*;
    use crate::audit::sqlite::SqliteAuditStore;
    use crate::aws::kms::{CacheLimits, CountingKms, KMS_RETRY_AFTER, KmsApi};
    use crate::vault::files::FileStore;
    use crate::vault::{Vault, VaultRecord};

    const SECRET: &str = "my card is 4111 1111 1111 1111";

    /// A [`KmsApi`] that is a local AES key and can be switched off: enough to test the KMS
    /// fallback without a network (the over-the-wire fault tests are in `tests/aws_faults.rs`).
    struct SwitchableKms {
        key: LessSafeKey,
        down: AtomicBool,
    }

    #[async_trait]
    impl KmsApi for SwitchableKms {
        async fn generate_data_key(
            &self,
            _key_id: &str,
            context: &BTreeMap<String, String>,
        ) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>, String), VaultError> {
            if self.down.load(Ordering::Relaxed) {
                return Err(VaultError::Keys(
                    "KMS GenerateDataKey failed: could not reach the service".into(),
                ));
            }
            let mut key = Zeroizing::new([0u8; 32]);
            SystemRandom::new().fill(key.as_mut_slice()).unwrap();
            let mut nonce = [0u8; NONCE_LEN];
            SystemRandom::new().fill(&mut nonce).unwrap();
            let aad = serde_json::to_vec(context).unwrap();
            let mut sealed = key.to_vec();
            self.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad.as_slice()),
                    &mut sealed,
                )
                .unwrap();
            let mut blob = nonce.to_vec();
            blob.extend_from_slice(&sealed);
            Ok((key, blob, "arn:local".into()))
        }
        async fn decrypt(
            &self,
            _key_id: &str,
            blob: &[u8],
            context: &BTreeMap<String, String>,
        ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
            let (nonce, sealed) = blob.split_at(NONCE_LEN);
            let aad = serde_json::to_vec(context).unwrap();
            let mut buf = sealed.to_vec();
            let plain = self
                .key
                .open_in_place(
                    Nonce::try_assume_unique_for_key(nonce).unwrap(),
                    Aad::from(aad.as_slice()),
                    &mut buf,
                )
                .map_err(|_| VaultError::Decrypt)?;
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(plain);
            Ok(key)
        }
    }

    fn record(request_id: &str) -> VaultRecord {
        VaultRecord {
            request_id: request_id.into(),
            timestamp: crate::now_ms(),
            user_sub: "alice".into(),
            feature: "support-bot".into(),
            model: "m".into(),
            model_alias: "fast".into(),
            raw_prompt: json!([{"role": "user", "content": SECRET}]),
            ..VaultRecord::default()
        }
    }

    fn spool_bytes(dir: &Path) -> Vec<Vec<u8>> {
        std::fs::read_dir(dir.join("spool"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_kms_outage_spools_sealed_records_and_replay_rewraps_them_with_kms() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::new(dir.path().join("s3")));
        let audit = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap());
        let spool = Spool::open(dir.path(), store.clone(), audit).unwrap();
        let kms = Arc::new(CountingKms::new(SwitchableKms {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9u8; 32]).unwrap()),
            down: AtomicBool::new(true),
        }));
        let limits = CacheLimits {
            max_age: Duration::from_secs(60),
            max_uses: 100,
        };
        let vault = Vault {
            keys: spool.keys(Arc::new(KmsKeys::new(kms.clone(), "k", limits))),
            objects: spool.objects(),
            retention_days: 90,
        };

        // KMS is down: both puts are acknowledged, spooled, and nothing reaches the store.
        let (a, b) = (record("req-a"), record("req-b"));
        let key_a = vault.put(&a).await.unwrap();
        let key_b = vault.put(&b).await.unwrap();
        assert_eq!(spool.backlog(), 2);
        // The second put did not wait for KMS: it is paused after the first failure.
        assert_eq!(kms.generate_calls(), 1);
        assert!(store.get(&key_a).await.unwrap().is_none());
        for bytes in spool_bytes(dir.path()) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("4111") && !text.contains("req-a") && !text.contains("alice"));
        }
        // Still down: replay delivers nothing and loses nothing.
        assert!(spool.replay().await.is_err());
        assert_eq!(spool.backlog(), 2);
        assert!(store.get(&key_a).await.unwrap().is_none());

        // KMS is back (after the pause): replay re-wraps with KMS and stores, in order.
        kms.inner.down.store(false, Ordering::Relaxed);
        tokio::time::sleep(KMS_RETRY_AFTER + Duration::from_millis(100)).await;
        assert_eq!(spool.replay().await.unwrap(), 2);
        assert_eq!(spool.backlog(), 0);
        for (key, rec) in [(&key_a, &a), (&key_b, &b)] {
            let bytes = store.get(key).await.unwrap().unwrap();
            let envelope: Envelope = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(envelope.key_id, "kms:arn:local");
            assert!(!String::from_utf8_lossy(&bytes).contains("4111"));
            assert_eq!(&vault.open(key).await.unwrap(), rec);
        }
        // Later records go straight through KMS to the store.
        let c = record("req-c");
        let key_c = vault.put(&c).await.unwrap();
        assert_eq!(spool.backlog(), 0);
        assert_eq!(vault.open(&key_c).await.unwrap(), c);
    }

    #[tokio::test]
    async fn a_second_process_on_the_data_dir_neither_spools_nor_replays() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            Spool::open(
                dir.path(),
                Arc::new(FileStore::new(dir.path().join("s3"))),
                Arc::new(SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap()),
            )
            .unwrap()
        };
        let owner = open();
        let entry = || Entry::Object {
            key: "prompts/x".into(),
            bytes: "c2VhbGVk".into(),
        };
        owner.push(entry()).await.unwrap();
        // A second open file of the lock (another process, as far as flock is concerned).
        let other = open();
        assert_eq!(
            other.backlog(),
            0,
            "the owner's entries are not the other's backlog"
        );
        let refused = other.push(entry()).await.unwrap_err();
        assert!(refused.contains("belongs to another process"), "{refused}");
        assert_eq!(other.replay().await.unwrap(), 0);
        assert_eq!(list(&dir.path().join("spool")).unwrap().len(), 1);
        // Once the owner is gone, the next process takes over the backlog.
        drop(owner);
        drop(other);
        let next = open();
        assert_eq!(next.backlog(), 1);
    }

    #[tokio::test]
    async fn a_locally_wrapped_key_is_bound_to_its_context() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::new(dir.path().join("s3")));
        let audit = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap());
        let spool = Spool::open(dir.path(), store, audit).unwrap();
        let context = EncryptionContext {
            request_id: "r1".into(),
            user_sub: "alice".into(),
            feature: "f".into(),
        };
        let key = spool.wrap_local(&context).unwrap();
        assert_eq!(key.key_id, LOCAL_KEY_ID);
        let opened = spool.unwrap_local(&key.wrapped, &context).unwrap();
        assert_eq!(*opened, *key.plaintext);
        for moved in [
            EncryptionContext {
                request_id: "r2".into(),
                ..context.clone()
            },
            EncryptionContext {
                user_sub: "mallory".into(),
                ..context.clone()
            },
            EncryptionContext {
                feature: "g".into(),
                ..context.clone()
            },
        ] {
            assert!(matches!(
                spool.unwrap_local(&key.wrapped, &moved),
                Err(VaultError::Decrypt)
            ));
        }
        assert!(matches!(
            spool.unwrap_local(&key.wrapped[..20], &context),
            Err(VaultError::Malformed(_))
        ));
        // The spool KEK survives a restart (same data dir): records spooled before a crash
        // can still be re-wrapped.
        let again = Spool::open(
            dir.path(),
            Arc::new(FileStore::new(dir.path().join("s3"))),
            Arc::new(SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap()),
        )
        .unwrap();
        assert_eq!(
            *again.unwrap_local(&key.wrapped, &context).unwrap(),
            *key.plaintext
        );
    }

    /// An S3 stand-in that refuses some keys: `bad` ones deterministically (as S3 refuses an
    /// object that is too large), `slow` ones transiently (as S3 throttles).
    #[derive(Default)]
    struct PickyStore {
        stored: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ObjectStore for PickyStore {
        async fn put(&self, key: &str, _bytes: Vec<u8>) -> Result<(), VaultError> {
            if key.contains("bad") {
                return Err(VaultError::Storage(
                    "S3 PutObject failed: EntityTooLarge: Your proposed upload exceeds the maximum allowed size".into(),
                ));
            }
            if key.contains("slow") {
                return Err(VaultError::Storage(
                    "S3 PutObject failed: SlowDown: Please reduce your request rate.".into(),
                ));
            }
            self.stored.lock().unwrap().push(key.to_string());
            Ok(())
        }
        async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, VaultError> {
            Ok(None)
        }
        async fn delete_older_than(&self, _before_ms: i64) -> Result<u64, VaultError> {
            Ok(0)
        }
    }

    fn object(key: &str) -> Entry {
        Entry::Object {
            key: key.into(),
            bytes: B64.encode(b"sealed"),
        }
    }

    fn picky_spool(dir: &Path, store: Arc<PickyStore>, limits: SpoolLimits) -> Arc<Spool> {
        let audit = Arc::new(SqliteAuditStore::open(&dir.join("audit.db")).unwrap());
        Spool::open_with(dir, store, audit, limits).unwrap()
    }

    fn dead_files(dir: &Path) -> Vec<(String, String)> {
        let dead = dir.join("spool").join(DEAD_DIR);
        let mut out: Vec<(String, String)> = list(&dead)
            .unwrap()
            .into_iter()
            .map(|(_, path)| {
                let mut reason = path.clone().into_os_string();
                reason.push(".reason");
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(reason).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[tokio::test]
    async fn an_undeliverable_or_corrupt_entry_is_dead_lettered_and_replay_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PickyStore::default());
        let spool = picky_spool(dir.path(), store.clone(), SpoolLimits::default());
        for key in [
            "prompts/a",
            "prompts/bad",
            "prompts/b",
            "prompts/corrupt",
            "prompts/c",
        ] {
            spool.push(object(key)).await.unwrap();
        }
        // Entry 3 is damaged on disk.
        std::fs::write(
            dir.path().join("spool").join(format!("{:020}.rec", 3)),
            b"not a spool entry at all",
        )
        .unwrap();
        assert_eq!(spool.backlog(), 5);

        // One pass: the good entries are delivered, the bad and the corrupt set aside.
        assert_eq!(spool.replay().await.unwrap(), 5);
        assert_eq!(
            *store.stored.lock().unwrap(),
            ["prompts/a", "prompts/b", "prompts/c"]
        );
        assert_eq!(spool.backlog(), 0);
        assert_eq!(spool.dead_letters(), 2);
        let dead = dead_files(dir.path());
        assert_eq!(dead.len(), 2);
        assert_eq!(dead[0].0, format!("{:020}.rec", 1));
        assert!(dead[0].1.contains("EntityTooLarge"), "{}", dead[0].1);
        assert_eq!(dead[1].0, format!("{:020}.rec", 3));
        assert!(dead[1].1.contains("does not decrypt"), "{}", dead[1].1);

        // A transient failure is kept for the next pass (nothing dead-lettered), and the
        // records behind it in the window still go.
        spool.push(object("prompts/slow")).await.unwrap();
        spool.push(object("prompts/d")).await.unwrap();
        assert!(spool.replay().await.is_err());
        assert_eq!(spool.backlog(), 1);
        assert_eq!(spool.dead_letters(), 2);
        assert!(
            store
                .stored
                .lock()
                .unwrap()
                .contains(&"prompts/d".to_string())
        );

        // After a restart the dead letters are still counted, and new entries never take
        // their sequence numbers.
        drop(spool);
        let spool = picky_spool(dir.path(), store.clone(), SpoolLimits::default());
        assert_eq!((spool.backlog(), spool.dead_letters()), (1, 2));
        spool.push(object("prompts/bad-again")).await.unwrap();
        assert!(spool.replay().await.is_err());
        assert_eq!(spool.dead_letters(), 3);
        assert_eq!(dead_files(dir.path()).len(), 3);
    }

    #[tokio::test]
    async fn a_full_spool_refuses_new_records_rather_than_dropping_any() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PickyStore::default());
        let limits = SpoolLimits {
            max_entries: 3,
            max_bytes: 1024 * 1024,
        };
        let spool = picky_spool(dir.path(), store.clone(), limits);
        // A dead letter counts against the bound too (it is still on disk).
        spool.push(object("prompts/bad")).await.unwrap();
        spool.replay().await.unwrap();
        spool.push(object("prompts/slow-1")).await.unwrap();
        spool.push(object("prompts/slow-2")).await.unwrap();
        let refused = spool.push(object("prompts/x")).await.unwrap_err();
        assert!(refused.contains("full"), "{refused}");
        // Through the vault's store: a storage error, which the request path answers with 503.
        let put = spool.objects().put("prompts/y", b"sealed".to_vec()).await;
        assert!(matches!(put, Err(VaultError::Storage(_))), "{put:?}");
        assert_eq!((spool.backlog(), spool.dead_letters()), (2, 1));
        // Bytes are bounded as well.
        let dir = tempfile::tempdir().unwrap();
        let small = picky_spool(
            dir.path(),
            store,
            SpoolLimits {
                max_entries: 100,
                max_bytes: 150,
            },
        );
        small.push(object("prompts/slow-1")).await.unwrap();
        assert!(small.push(object("prompts/slow-2")).await.is_err());
    }

    #[tokio::test]
    async fn readyz_reports_dead_letters() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(PickyStore::default());
        let spool = picky_spool(dir.path(), store, SpoolLimits::default());
        spool.push(object("prompts/bad")).await.unwrap();
        spool.push(object("prompts/slow")).await.unwrap();
        assert!(spool.replay().await.is_err());
        let config = crate::config::Config {
            data_dir: dir.path().join("gateway"),
            ..crate::config::Config::default()
        };
        let mut state = crate::state::AppState::build(config).await.unwrap();
        state.spool = Some(spool);
        let response = crate::router::router(state)
            .oneshot(
                axum::http::Request::get("/readyz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["spooledRecords"], 1, "{v}");
        assert_eq!(v["deadLetterRecords"], 1, "{v}");
    }

    #[test]
    fn failures_are_classified_and_backoff_is_bounded() {
        for permanent in [
            "S3 PutObject failed: EntityTooLarge: too big",
            "CloudWatch PutLogEvents failed: InvalidParameterException: bad",
            "CloudWatch rejected the event's timestamp (too old or too new)",
        ] {
            assert!(
                matches!(classify(permanent.into()), Failure::Permanent(_)),
                "{permanent}"
            );
        }
        for transient in [
            "S3 PutObject failed: SlowDown: reduce",
            "S3 PutObject failed: AccessDenied: Access Denied",
            "CloudWatch PutLogEvents failed: ThrottlingException: Rate exceeded",
            "S3 PutObject failed: could not reach the service",
            "S3 PutObject failed: timed out",
            "S3 PutObject failed: InternalError: We encountered an internal error",
        ] {
            assert!(
                matches!(classify(transient.into()), Failure::Transient(_)),
                "{transient}"
            );
        }
        assert!(matches!(
            vault_failure(VaultError::Keys(
                "KMS GenerateDataKey failed: DisabledException".into()
            )),
            Failure::Transient(_)
        ));
        assert!(matches!(
            vault_failure(VaultError::Decrypt),
            Failure::Permanent(_)
        ));
        let every = Duration::from_secs(5);
        assert_eq!(backoff(every, 1), every);
        assert_eq!(backoff(every, 2), Duration::from_secs(10));
        assert_eq!(backoff(every, 100), MAX_REPLAY_BACKOFF);
    }
}
