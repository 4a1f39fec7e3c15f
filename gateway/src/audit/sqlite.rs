//! The embedded audit store: SQLite (WAL) in `<data_dir>/audit.db`, written by one writer thread
//! that commits in groups, so a burst of requests costs one commit, and every `record` returns
//! only after its event is committed.
//!
//! Shape:
//! - **One writer thread** (`audit-writer`, a plain `std::thread`) owns the only write
//!   connection. Callers send it a job over a channel and await a `tokio::sync::oneshot` reply.
//!   The thread takes the first queued job, drains whatever else is already queued (up to
//!   [`MAX_BATCH`]), inserts them all in one `BEGIN IMMEDIATE … COMMIT`, then answers every
//!   waiter. Each job gets its own result: a duplicate request id fails that one event, not the
//!   batch.
//! - **Readers** use a small pool of read-only connections on the blocking thread pool; in WAL
//!   mode they never block the writer, nor the writer them.
//! - **Failure never hangs:** if the writer thread is gone, sending fails or the reply channel is
//!   dropped, and the caller gets an [`AuditError`].
//!
//! Durability ([`Durability`]): WAL with `synchronous=NORMAL` (the default, [`Durability::Process`])
//! writes every commit to the WAL file before `COMMIT` returns, so a committed event survives the
//! process being killed (`kill -9`, OOM, Lambda freeze); the last commits before a power loss or
//! kernel crash may be lost. [`Durability::PowerLoss`] uses `synchronous=FULL` (an fsync of the
//! WAL per commit; group commit keeps that at one fsync per burst).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use std::collections::BTreeMap;

use super::rollup::{
    self, FeatureUsage, LATENCY_BUCKETS, LatencyHistogram, MAX_TOP, Ranked, UsageSummary,
};
use super::{
    AccessEvent, AccessFilter, AuditError, AuditEvent, AuditStore, MAX_ACCESS_LOG, MinuteCount,
};

/// The most events committed in one transaction; the rest wait for the next one.
pub const MAX_BATCH: usize = 512;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The schema this code writes (`PRAGMA user_version`). Version 2 added `log_events`
/// (imported CloudWatch/audit exports for the Insights engine) and the covering index
/// `audit_events_metrics`; opening a version-1 database creates both, nothing else changes.
/// Version 3 added the overview's rollups ([`super::rollup::sqlite_schema`]: per minute and
/// feature, per hour and user, per minute and policy), kept equal to `audit_events` by triggers
/// in the same transaction as each insert; opening an older database builds them once.
const SCHEMA_VERSION: i64 = 3;
/// The first version with the rollups.
const ROLLUP_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_events (
    id                INTEGER PRIMARY KEY,
    timestamp         INTEGER NOT NULL,
    request_id        TEXT    NOT NULL,
    user_sub          TEXT    NOT NULL,
    feature           TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    model_alias       TEXT    NOT NULL,
    prompt_hash       TEXT    NOT NULL,
    latency_ms        INTEGER NOT NULL,
    model_latency_ms  INTEGER NOT NULL,
    guardrail_id      TEXT    NOT NULL,
    guardrail_version TEXT    NOT NULL,
    guardrail_action  TEXT    NOT NULL,
    input_action      TEXT    NOT NULL,
    output_action     TEXT    NOT NULL,
    policies          TEXT    NOT NULL, -- JSON array of strings
    input_tokens      INTEGER NOT NULL,
    output_tokens     INTEGER NOT NULL,
    status            INTEGER NOT NULL,
    stream            INTEGER NOT NULL,
    vault_key         TEXT,
    source_ip         TEXT    NOT NULL,
    user_agent        TEXT    NOT NULL,
    event_json        TEXT    NOT NULL  -- the full event as one JSON line (DESIGN §5)
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_events_request_id ON audit_events (request_id);
CREATE INDEX IF NOT EXISTS audit_events_timestamp ON audit_events (timestamp);
CREATE INDEX IF NOT EXISTS audit_events_user_sub_timestamp ON audit_events (user_sub, timestamp);
CREATE INDEX IF NOT EXISTS audit_events_feature_timestamp ON audit_events (feature, timestamp);
-- Covering index for Logs Insights over the metric columns (version 2): `stats … by model`,
-- `bin()` and friends read this narrow copy instead of the wide rows (which carry event_json).
CREATE INDEX IF NOT EXISTS audit_events_metrics ON audit_events (
    timestamp, user_sub, feature, model, status, latency_ms, model_latency_ms, input_tokens,
    output_tokens, guardrail_action
);

CREATE TABLE IF NOT EXISTS access_events (
    id         INTEGER PRIMARY KEY,
    timestamp  INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    vault_key  TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    origin     TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS access_events_request_id ON access_events (request_id, timestamp);
CREATE INDEX IF NOT EXISTS access_events_timestamp ON access_events (timestamp);

-- Events imported for offline investigation (`gateway logs import`): the message verbatim
-- plus CloudWatch's stream metadata; the indexed audit fields are copied out of JSON messages.
CREATE TABLE IF NOT EXISTS log_events (
    id             INTEGER PRIMARY KEY,
    timestamp      INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    log_group      TEXT    NOT NULL,
    log_stream     TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    user_sub       TEXT,
    feature        TEXT,
    request_id     TEXT
);
CREATE INDEX IF NOT EXISTS log_events_timestamp ON log_events (timestamp);
CREATE INDEX IF NOT EXISTS log_events_user_sub_timestamp ON log_events (user_sub, timestamp);
CREATE INDEX IF NOT EXISTS log_events_feature_timestamp ON log_events (feature, timestamp);
CREATE INDEX IF NOT EXISTS log_events_request_id ON log_events (request_id);
";

/// How much a "durable" write survives. Shared by the embedded stores (the vault's
/// [`crate::vault::files::FileStore`] takes the same option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives the process being killed at any point (`kill -9`): data reaches the OS before a
    /// write is acknowledged. A power loss or kernel crash may lose the last writes.
    #[default]
    Process,
    /// Also survives power loss: every acknowledged write is fsynced (SQLite
    /// `synchronous=FULL`; files and their directories fsynced).
    PowerLoss,
}

/// Counters of the writer thread, for tests and the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Events (audit and access) committed.
    pub events: u64,
    /// The most events committed in one transaction.
    pub largest_batch: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    events: AtomicU64,
    largest_batch: AtomicU64,
}

/// One imported log event (a row of `log_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEventRow {
    /// Event time, ms since the epoch.
    pub timestamp: i64,
    /// When CloudWatch ingested it (the event time for audit-event lines).
    pub ingestion_time: i64,
    pub log_group: String,
    pub log_stream: String,
    /// The event text exactly as exported.
    pub message: String,
    /// Top-level `userSub`, `feature`, `requestId` of a JSON message, for the indexes.
    pub user_sub: Option<String>,
    pub feature: Option<String>,
    pub request_id: Option<String>,
}

/// The SQLite audit store. Cheap to share behind an `Arc`; dropping it lets the writer thread
/// finish what is queued and exit.
pub struct SqliteAuditStore {
    jobs: mpsc::Sender<Job>,
    readers: Arc<ReadPool>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SqliteAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuditStore")
            .field("path", &self.readers.path)
            .finish_non_exhaustive()
    }
}

impl SqliteAuditStore {
    /// Open (creating it and its parent directory if needed) the store at `path`, with
    /// [`Durability::Process`].
    pub fn open(path: &Path) -> Result<SqliteAuditStore, AuditError> {
        SqliteAuditStore::open_with(path, Durability::Process)
    }

    /// Open the store at `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteAuditStore, AuditError> {
        SqliteAuditStore::open_inner(path, durability, WAL_LIMIT)
    }

    fn open_inner(
        path: &Path,
        durability: Durability,
        wal_limit: u64,
    ) -> Result<SqliteAuditStore, AuditError> {
        // The database holds user ids and client addresses: owner-only.
        crate::secret_file::private_sqlite(path)
            .map_err(|e| AuditError::Store(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(|e| sql_err("open audit database", &e))?;
        configure_writer(&conn, durability)?;
        // A checkpoint copies the WAL into the database and syncs it, which takes milliseconds;
        // inside a commit it would stall every request waiting on that commit. The writer never
        // checkpoints; a thread of its own does, PASSIVE, so it never blocks the writer.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| sql_err("disable automatic checkpoints", &e))?;

        let counters = Arc::new(Counters::default());
        spawn_checkpointer(path, Arc::downgrade(&counters))?;
        // Under sustained load the checkpointer's PASSIVE passes never catch the writer with
        // the WAL fully folded back, so the WAL would never restart and grow without bound
        // (1M events → 20 GB). Past a limit the writer folds the rest back itself, between
        // transactions, so its next transaction restarts the WAL; the file is then cut back.
        conn.pragma_update(
            None,
            "journal_size_limit",
            i64::try_from(wal_limit).unwrap_or(i64::MAX),
        )
        .map_err(|e| sql_err("set journal_size_limit", &e))?;
        let wal = WalLimit {
            path: wal_path(path),
            limit: wal_limit,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run_writer(conn, &queue, &thread_counters, &wal))
            .map_err(|e| AuditError::Store(format!("cannot start the audit writer thread: {e}")))?;

        Ok(SqliteAuditStore {
            jobs,
            readers: Arc::new(ReadPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
            counters,
        })
    }

    /// How many audit events are stored.
    pub async fn count(&self) -> Result<u64, AuditError> {
        self.read(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
                .map_err(|e| sql_err("count audit events", &e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// The newest `limit` audit events, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<AuditEvent>, AuditError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT event_json FROM audit_events ORDER BY timestamp DESC, id DESC LIMIT ?1",
                )
                .map_err(|e| sql_err("read recent events", &e))?;
            let rows = stmt
                .query_map([limit], |r| r.get::<_, String>(0))
                .map_err(|e| sql_err("read recent events", &e))?;
            rows.map(|row| {
                row.map_err(|e| sql_err("read recent events", &e))
                    .and_then(|json| parse_event(&json))
            })
            .collect()
        })
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.readers.path
    }

    /// Append imported events in one transaction on the writer thread (all or none).
    pub async fn import_log_events(&self, rows: Vec<LogEventRow>) -> Result<(), AuditError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(Payload::Imported(rows)).await
    }

    /// How many imported events are stored.
    pub async fn imported_count(&self) -> Result<u64, AuditError> {
        self.read(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM log_events", [], |r| r.get(0))
                .map_err(|e| sql_err("count imported events", &e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// The writer thread's counters so far.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            events: self.counters.events.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Hand one write to the writer thread and wait until it is committed (or failed).
    async fn write(&self, payload: Payload) -> Result<(), AuditError> {
        let (reply, done) = oneshot::channel();
        self.jobs
            .send(Job { payload, reply })
            .map_err(|_| writer_gone())?;
        done.await.map_err(|_| writer_gone())?
    }

    /// Run one read on a pooled read-only connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, AuditError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AuditError> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || pool.run(f))
            .await
            .map_err(|e| AuditError::Store(format!("audit read task failed: {e}")))?
    }
}

#[async_trait]
impl AuditStore for SqliteAuditStore {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let row = EventRow::new(event)?;
        self.write(Payload::Event(Box::new(row))).await
    }

    async fn record_access(&self, event: &AccessEvent) -> Result<(), AuditError> {
        self.write(Payload::Access(event.clone())).await
    }

    async fn find(&self, request_id: &str) -> Result<Option<AuditEvent>, AuditError> {
        let request_id = request_id.to_string();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT event_json FROM audit_events WHERE request_id = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row([&request_id], |r| r.get::<_, String>(0))
                        .optional()
                })
                .map_err(|e| sql_err("find audit event", &e))?;
            json.as_deref().map(parse_event).transpose()
        })
        .await
    }

    async fn accesses(&self, request_id: &str) -> Result<Vec<AccessEvent>, AuditError> {
        let request_id = request_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT timestamp, actor, request_id, vault_key, reason, origin
                     FROM access_events WHERE request_id = ?1 ORDER BY timestamp, id",
                )
                .map_err(|e| sql_err("read access events", &e))?;
            let rows = stmt
                .query_map([&request_id], |r| {
                    Ok(AccessEvent {
                        timestamp: r.get(0)?,
                        actor: r.get(1)?,
                        request_id: r.get(2)?,
                        vault_key: r.get(3)?,
                        reason: r.get(4)?,
                        origin: r.get(5)?,
                    })
                })
                .map_err(|e| sql_err("read access events", &e))?;
            rows.map(|row| row.map_err(|e| sql_err("read access events", &e)))
                .collect()
        })
        .await
    }

    async fn requests_per_minute(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<MinuteCount>, AuditError> {
        if since_ms.rem_euclid(60_000) == 0 && until_ms.rem_euclid(60_000) == 0 {
            // Whole minutes: the rollup answers exactly, without touching the events.
            return self
                .usage(since_ms, until_ms, 0)
                .await
                .map(|usage| usage.minutes);
        }
        self.read(move |conn| {
            // The covering index, named: after ANALYZE, SQLite's planner prefers a skip-scan
            // over (user_sub, timestamp), twice as slow at 1,000,000 events (server/benches/pages.rs).
            let mut stmt = conn
                .prepare_cached(
                    "SELECT timestamp / 60000 AS minute,
                            COUNT(*),
                            COALESCE(SUM(guardrail_action = 'INTERVENED'), 0)
                     FROM audit_events INDEXED BY audit_events_metrics
                     WHERE timestamp >= ?1 AND timestamp < ?2
                     GROUP BY minute ORDER BY minute",
                )
                .map_err(|e| sql_err("count requests per minute", &e))?;
            let rows = stmt
                .query_map([since_ms, until_ms], |r| {
                    let minute: i64 = r.get(0)?;
                    let requests: i64 = r.get(1)?;
                    let interventions: i64 = r.get(2)?;
                    Ok(MinuteCount {
                        minute: minute.saturating_mul(60_000),
                        requests: u64::try_from(requests).unwrap_or(0),
                        interventions: u64::try_from(interventions).unwrap_or(0),
                    })
                })
                .map_err(|e| sql_err("count requests per minute", &e))?;
            rows.map(|row| row.map_err(|e| sql_err("count requests per minute", &e)))
                .collect()
        })
        .await
    }

    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        top: usize,
    ) -> Result<UsageSummary, AuditError> {
        let (since_ms, until_ms) = rollup::whole_minutes(since_ms, until_ms);
        self.read(move |conn| usage_from_rollups(conn, since_ms, until_ms, top))
            .await
    }

    async fn requests_by_feature(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<BTreeMap<String, u64>, AuditError> {
        self.read(move |conn| {
            let err = |e: rusqlite::Error| sql_err("count requests by feature", &e);
            // Whole minutes from the rollup, the edges from the events.
            let ((m0, m1), [(a0, a1), (b0, b1)]) = split_range(since_ms, until_ms, 60_000);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT feature, SUM(n) FROM (
                         SELECT feature, requests AS n FROM audit_minutes
                         WHERE minute >= ?1 AND minute < ?2
                         UNION ALL
                         SELECT feature, 1 FROM audit_events INDEXED BY audit_events_metrics
                         WHERE timestamp >= ?3 AND timestamp < ?4
                         UNION ALL
                         SELECT feature, 1 FROM audit_events INDEXED BY audit_events_metrics
                         WHERE timestamp >= ?5 AND timestamp < ?6)
                     GROUP BY feature",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map([m0, m1, a0, a1, b0, b1], |r| {
                    Ok((r.get::<_, String>(0)?, count(r.get(1)?)))
                })
                .map_err(err)?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (feature, n) = row.map_err(err)?;
                if n > 0 {
                    out.insert(feature, n);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn access_log(&self, filter: &AccessFilter) -> Result<Vec<AccessEvent>, AuditError> {
        let since = filter.since_ms.unwrap_or(i64::MIN);
        let actor = filter.actor.clone();
        let limit = i64::try_from(filter.limit.min(MAX_ACCESS_LOG)).unwrap_or(0);
        self.read(move |conn| {
            let err = |e: rusqlite::Error| sql_err("list access events", &e);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT timestamp, actor, request_id, vault_key, reason, origin
                     FROM access_events WHERE timestamp >= ?1 AND (?2 IS NULL OR actor = ?2)
                     ORDER BY timestamp DESC, id DESC LIMIT ?3",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(params![since, actor, limit], |r| {
                    Ok(AccessEvent {
                        timestamp: r.get(0)?,
                        actor: r.get(1)?,
                        request_id: r.get(2)?,
                        vault_key: r.get(3)?,
                        reason: r.get(4)?,
                        origin: r.get(5)?,
                    })
                })
                .map_err(err)?;
            rows.map(|r| r.map_err(err)).collect()
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// The writer thread.

struct Job {
    payload: Payload,
    reply: oneshot::Sender<Result<(), AuditError>>,
}

enum Payload {
    Event(Box<EventRow>),
    Access(AccessEvent),
    Imported(Vec<LogEventRow>),
}

/// An audit event converted to column values on the caller's task, so the writer thread only
/// inserts.
struct EventRow {
    event: AuditEvent,
    latency_ms: i64,
    model_latency_ms: i64,
    input_tokens: i64,
    output_tokens: i64,
    policies_json: String,
    event_json: String,
}

impl EventRow {
    fn new(event: &AuditEvent) -> Result<EventRow, AuditError> {
        let int = |v: u64, field: &str| {
            i64::try_from(v)
                .map_err(|_| AuditError::Store(format!("audit event {field} out of range")))
        };
        Ok(EventRow {
            latency_ms: int(event.latency_ms, "latencyMs")?,
            model_latency_ms: int(event.model_latency_ms, "modelLatencyMs")?,
            input_tokens: int(event.input_tokens, "inputTokens")?,
            output_tokens: int(event.output_tokens, "outputTokens")?,
            policies_json: serde_json::to_string(&event.policies)
                .map_err(|e| AuditError::Store(format!("cannot encode policies: {e}")))?,
            event_json: serde_json::to_string(event)
                .map_err(|e| AuditError::Store(format!("cannot encode audit event: {e}")))?,
            event: event.clone(),
        })
    }
}

/// WAL size past which the writer checkpoints itself (see [`SqliteAuditStore::open_with`]).
const WAL_LIMIT: u64 = 64 << 20;

struct WalLimit {
    path: PathBuf,
    limit: u64,
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn run_writer(
    mut conn: Connection,
    queue: &mpsc::Receiver<Job>,
    counters: &Counters,
    wal: &WalLimit,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (payloads, replies): (Vec<Payload>, Vec<_>) =
            batch.into_iter().map(|j| (j.payload, j.reply)).unzip();
        let results = commit_batch(&mut conn, &payloads, counters);
        for (reply, result) in replies.into_iter().zip(results) {
            // The waiter may have gone (request cancelled); the event is committed regardless.
            let _ = reply.send(result);
        }
        // After the waiters are answered: fold back what the checkpointer has not yet, so the
        // next transaction starts the WAL over (PASSIVE: never waits for readers).
        if std::fs::metadata(&wal.path).is_ok_and(|m| m.len() > wal.limit)
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "audit WAL checkpoint by the writer failed");
        }
    }
    tracing::debug!("audit writer stopped: every store handle was dropped");
}

/// Insert every payload in one transaction; one result per payload, in order.
fn commit_batch(
    conn: &mut Connection,
    payloads: &[Payload],
    counters: &Counters,
) -> Vec<Result<(), AuditError>> {
    let failed_all = |reason: String| {
        tracing::error!(%reason, events = payloads.len(), "audit batch failed");
        payloads
            .iter()
            .map(|_| Err(AuditError::Store(reason.clone())))
            .collect()
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed_all(format!("begin audit transaction: {e}")),
    };
    let mut results = Vec::with_capacity(payloads.len());
    for payload in payloads {
        let result = insert(&tx, payload);
        if result.is_err() && tx.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, disk full): nothing of this
            // batch is stored, so nothing may be acknowledged.
            drop(tx);
            return failed_all("audit transaction rolled back by SQLite".into());
        }
        results.push(result);
    }
    if let Err(e) = tx.commit() {
        return failed_all(format!("commit audit transaction: {e}"));
    }
    let stored = results
        .iter()
        .zip(payloads)
        .filter(|(r, p)| r.is_ok() && !matches!(p, Payload::Imported(_)))
        .count() as u64;
    counters.commits.fetch_add(1, Ordering::Relaxed);
    counters.events.fetch_add(stored, Ordering::Relaxed);
    counters
        .largest_batch
        .fetch_max(payloads.len() as u64, Ordering::Relaxed);
    results
}

fn insert(conn: &Connection, payload: &Payload) -> Result<(), AuditError> {
    match payload {
        Payload::Event(row) => {
            let e = &row.event;
            conn.prepare_cached(
                "INSERT INTO audit_events (
                    timestamp, request_id, user_sub, feature, model, model_alias, prompt_hash,
                    latency_ms, model_latency_ms, guardrail_id, guardrail_version,
                    guardrail_action, input_action, output_action, policies, input_tokens,
                    output_tokens, status, stream, vault_key, source_ip, user_agent, event_json
                 ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                           ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    e.timestamp,
                    e.request_id,
                    e.user_sub,
                    e.feature,
                    e.model,
                    e.model_alias,
                    e.prompt_hash,
                    row.latency_ms,
                    row.model_latency_ms,
                    e.guardrail_id,
                    e.guardrail_version,
                    e.guardrail_action,
                    e.input_action,
                    e.output_action,
                    row.policies_json,
                    row.input_tokens,
                    row.output_tokens,
                    i64::from(e.status),
                    e.stream,
                    e.vault_key,
                    e.source_ip,
                    e.user_agent,
                    row.event_json,
                ])
            })
            .map(|_| ())
            .map_err(|err| {
                if is_unique_violation(&err) {
                    AuditError::Store(
                        "an audit event with this request id is already recorded".into(),
                    )
                } else {
                    sql_err("insert audit event", &err)
                }
            })
        }
        Payload::Access(a) => conn
            .prepare_cached(
                "INSERT INTO access_events (timestamp, actor, request_id, vault_key, reason, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    a.timestamp,
                    a.actor,
                    a.request_id,
                    a.vault_key,
                    a.reason,
                    a.origin
                ])
            })
            .map(|_| ())
            .map_err(|err| sql_err("insert access event", &err)),
        Payload::Imported(rows) => {
            // A savepoint makes each imported batch all-or-nothing inside the group commit.
            conn.execute_batch("SAVEPOINT import_batch")
                .map_err(|err| sql_err("begin import batch", &err))?;
            let result = insert_log_events(conn, rows);
            let end = if result.is_ok() {
                "RELEASE import_batch"
            } else {
                "ROLLBACK TO import_batch; RELEASE import_batch"
            };
            conn.execute_batch(end)
                .map_err(|err| sql_err("end import batch", &err))?;
            result
        }
    }
}

fn insert_log_events(conn: &Connection, rows: &[LogEventRow]) -> Result<(), AuditError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO log_events (timestamp, ingestion_time, log_group, log_stream, message,
                                     user_sub, feature, request_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(|err| sql_err("insert imported event", &err))?;
    for r in rows {
        stmt.execute(params![
            r.timestamp,
            r.ingestion_time,
            r.log_group,
            r.log_stream,
            r.message,
            r.user_sub,
            r.feature,
            r.request_id
        ])
        .map_err(|err| sql_err("insert imported event", &err))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connections.

/// How often the checkpointer folds the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoint the WAL every [`CHECKPOINT_EVERY`] until the store (`alive`) is gone.
fn spawn_checkpointer(path: &Path, alive: std::sync::Weak<Counters>) -> Result<(), AuditError> {
    let conn = Connection::open(path).map_err(|e| sql_err("open checkpoint connection", &e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_err("set busy timeout", &e))?;
    std::thread::Builder::new()
        .name("audit-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "audit WAL checkpoint failed");
                }
            }
        })
        .map_err(|e| AuditError::Store(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

fn configure_writer(conn: &Connection, durability: Durability) -> Result<(), AuditError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_err("set busy timeout", &e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| sql_err("enable WAL", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AuditError::Store(format!(
            "audit database refused WAL mode (got {mode})"
        )));
    }
    let synchronous = match durability {
        Durability::Process => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(|e| sql_err("set synchronous", &e))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| sql_err("read schema version", &e))?;
    if version > SCHEMA_VERSION {
        return Err(AuditError::Store(format!(
            "audit database schema {version} is newer than this gateway understands ({SCHEMA_VERSION})"
        )));
    }
    conn.execute_batch(SCHEMA)
        .map_err(|e| sql_err("create audit schema", &e))?;
    // The rollups, their triggers and (for an older database) their first fill, all in one
    // transaction: no event can be inserted between the fill and the triggers.
    let backfill = if version < ROLLUP_VERSION {
        rollup::sqlite_backfill()
    } else {
        String::new()
    };
    let started = std::time::Instant::now();
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {} {backfill} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
        rollup::sqlite_schema()
    ))
    .map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        sql_err("create audit rollups", &e)
    })?;
    if version > 0 && version < ROLLUP_VERSION {
        tracing::info!(
            from = version,
            ms = started.elapsed().as_millis() as u64,
            "audit database migrated: rollups built"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads of the rollups.

/// `ceil(a / b)` for `b > 0`.
fn div_ceil(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// Split `[since_ms, until_ms)` into whole `unit`s in the middle (as unit numbers
/// `[first, end)`, possibly empty) and the raw edges before and after them (ms ranges, possibly
/// empty). Together they cover the range exactly once.
fn split_range(since_ms: i64, until_ms: i64, unit: i64) -> ((i64, i64), [(i64, i64); 2]) {
    let first = div_ceil(since_ms, unit);
    let end = until_ms.div_euclid(unit);
    if first < end {
        (
            (first, end),
            [
                (since_ms, first.saturating_mul(unit)),
                (end.saturating_mul(unit), until_ms),
            ],
        )
    } else {
        ((0, 0), [(since_ms, until_ms), (0, 0)])
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The usage summary of whole minutes `[since_ms, until_ms)` from the rollups (plus raw events
/// at the edges of whole hours, for the top users).
fn usage_from_rollups(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
    top: usize,
) -> Result<UsageSummary, AuditError> {
    let err = |e: rusqlite::Error| sql_err("read the usage rollups", &e);
    let (first_minute, end_minute) = (since_ms.div_euclid(60_000), until_ms.div_euclid(60_000));
    let columns = rollup::histogram_columns().join(", ");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT minute, feature, requests, interventions, input_tokens, output_tokens,
                    {columns}
             FROM audit_minutes WHERE minute >= ?1 AND minute < ?2 ORDER BY minute"
        ))
        .map_err(err)?;
    let mut minutes: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut features: BTreeMap<String, FeatureUsage> = BTreeMap::new();
    let mut latency = LatencyHistogram::default();
    let mut rows = stmt.query([first_minute, end_minute]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let minute: i64 = r.get(0).map_err(err)?;
        let requests = count(r.get(2).map_err(err)?);
        if requests == 0 {
            continue;
        }
        let interventions = count(r.get(3).map_err(err)?);
        let slot = minutes.entry(minute * 60_000).or_default();
        slot.0 += requests;
        slot.1 += interventions;
        let feature: String = r.get(1).map_err(err)?;
        let f = features
            .entry(feature)
            .or_insert_with_key(|k| FeatureUsage {
                feature: k.clone(),
                ..FeatureUsage::default()
            });
        f.requests += requests;
        f.interventions += interventions;
        f.input_tokens = f.input_tokens.saturating_add(count(r.get(4).map_err(err)?));
        f.output_tokens = f
            .output_tokens
            .saturating_add(count(r.get(5).map_err(err)?));
        for i in 0..LATENCY_BUCKETS {
            latency.add_to_bucket(i, count(r.get(6 + i).map_err(err)?));
        }
    }
    drop(rows);

    let mut features: Vec<FeatureUsage> = features.into_values().collect();
    rollup::sort_features(&mut features);
    let limit = i64::try_from(top.min(MAX_TOP)).unwrap_or(0);
    let ranked = |stmt: &mut rusqlite::CachedStatement<'_>,
                  params: &[&dyn rusqlite::ToSql]|
     -> Result<Vec<Ranked>, AuditError> {
        let rows = stmt
            .query_map(params, |r| {
                Ok(Ranked {
                    name: r.get(0)?,
                    count: count(r.get(1)?),
                })
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    };
    if limit == 0 {
        return Ok(summary(
            since_ms,
            until_ms,
            minutes,
            features,
            latency,
            vec![],
            vec![],
        ));
    }
    let top_policies = ranked(
        &mut conn
            .prepare_cached(
                "SELECT policy, SUM(hits) AS n FROM audit_minute_policies
                 WHERE minute >= ?1 AND minute < ?2
                 GROUP BY policy HAVING n > 0 ORDER BY n DESC, policy LIMIT ?3",
            )
            .map_err(err)?,
        &[&first_minute, &end_minute, &limit],
    )?;
    let ((first_hour, end_hour), [(a0, a1), (b0, b1)]) = split_range(since_ms, until_ms, 3_600_000);
    let top_users = ranked(
        &mut conn
            .prepare_cached(
                "SELECT user_sub, SUM(n) AS total FROM (
                     SELECT user_sub, requests AS n FROM audit_hour_users
                     WHERE hour >= ?1 AND hour < ?2
                     UNION ALL
                     SELECT user_sub, 1 FROM audit_events INDEXED BY audit_events_metrics
                     WHERE timestamp >= ?3 AND timestamp < ?4
                     UNION ALL
                     SELECT user_sub, 1 FROM audit_events INDEXED BY audit_events_metrics
                     WHERE timestamp >= ?5 AND timestamp < ?6)
                 GROUP BY user_sub HAVING total > 0 ORDER BY total DESC, user_sub LIMIT ?7",
            )
            .map_err(err)?,
        &[&first_hour, &end_hour, &a0, &a1, &b0, &b1, &limit],
    )?;
    Ok(summary(
        since_ms,
        until_ms,
        minutes,
        features,
        latency,
        top_users,
        top_policies,
    ))
}

fn summary(
    since_ms: i64,
    until_ms: i64,
    minutes: BTreeMap<i64, (u64, u64)>,
    features: Vec<FeatureUsage>,
    latency: LatencyHistogram,
    top_users: Vec<Ranked>,
    top_policies: Vec<Ranked>,
) -> UsageSummary {
    UsageSummary {
        since_ms,
        until_ms,
        minutes: minutes
            .into_iter()
            .map(|(minute, (requests, interventions))| MinuteCount {
                minute,
                requests,
                interventions,
            })
            .collect(),
        features,
        latency,
        top_users,
        top_policies,
    }
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn run<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    fn connect(&self) -> Result<Connection, AuditError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_err("open audit read connection", &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_err("set busy timeout", &e))?;
        Ok(conn)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn parse_event(json: &str) -> Result<AuditEvent, AuditError> {
    serde_json::from_str(json)
        .map_err(|e| AuditError::Store(format!("stored audit event is not valid: {e}")))
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == ErrorCode::ConstraintViolation
                && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn sql_err(what: &str, e: &rusqlite::Error) -> AuditError {
    AuditError::Store(format!("{what}: {e}"))
}

fn writer_gone() -> AuditError {
    AuditError::Store("the audit writer thread has stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_id: &str, timestamp: i64, action: &str) -> AuditEvent {
        AuditEvent {
            timestamp,
            request_id: request_id.into(),
            user_sub: "alice".into(),
            feature: "support-bot".into(),
            model: "anthropic.claude-3-haiku".into(),
            model_alias: "fast".into(),
            prompt_hash: "hmac-sha256:00ff".into(),
            latency_ms: 120,
            model_latency_ms: 100,
            guardrail_id: "gr-1".into(),
            guardrail_version: "1".into(),
            guardrail_action: action.into(),
            input_action: "NONE".into(),
            output_action: "NONE".into(),
            policies: vec!["pii:EMAIL".into(), "topic:Investing".into()],
            input_tokens: 10,
            output_tokens: 20,
            status: 200,
            stream: true,
            vault_key: Some(format!("prompts/2025/01/01/00/{request_id}")),
            source_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        }
    }

    fn store() -> (tempfile::TempDir, SqliteAuditStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAuditStore::open(&dir.path().join("nested/audit.db")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn record_then_find_round_trips() {
        let (dir, store) = store();
        let e = event("req-1", 1_700_000_000_000, "INTERVENED");
        store.record(&e).await.unwrap();
        assert_eq!(store.find("req-1").await.unwrap(), Some(e.clone()));
        assert_eq!(store.find("missing").await.unwrap(), None);
        assert_eq!(store.count().await.unwrap(), 1);

        // The columns are there for queries, the full line too.
        let conn = Connection::open(dir.path().join("nested/audit.db")).unwrap();
        let (policies, json, mode): (String, String, String) = conn
            .query_row(
                "SELECT policies, event_json, (SELECT journal_mode FROM pragma_journal_mode)
                 FROM audit_events WHERE request_id = 'req-1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(policies, r#"["pii:EMAIL","topic:Investing"]"#);
        assert_eq!(serde_json::from_str::<AuditEvent>(&json).unwrap(), e);
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn reopen_keeps_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let e = event("req-1", 1_700_000_000_000, "NONE");
        {
            let store = SqliteAuditStore::open_with(&path, Durability::PowerLoss).unwrap();
            store.record(&e).await.unwrap();
        }
        let store = SqliteAuditStore::open(&path).unwrap();
        assert_eq!(store.find("req-1").await.unwrap(), Some(e));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_records_are_all_acknowledged_and_stored() {
        let (_dir, store) = store();
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .record(&event(&format!("req-{i}"), 1_700_000_000_000 + i, "NONE"))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.count().await.unwrap(), 200);
        for i in 0..200 {
            assert!(store.find(&format!("req-{i}")).await.unwrap().is_some());
        }
        let stats = store.writer_stats();
        assert_eq!(stats.events, 200);
        assert!(stats.commits <= 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_costs_about_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = Arc::new(SqliteAuditStore::open(&path).unwrap());
        // Another connection holds the write lock, so the whole burst queues up behind the
        // writer's first transaction, as it would behind a slow fsync.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .record(&event(&format!("req-{i}"), 1_700_000_000_000 + i, "NONE"))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.writer_stats().commits, 0);
        blocker.execute_batch("ROLLBACK").unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = store.writer_stats();
        assert_eq!(stats.events, 200);
        assert!(stats.commits <= 3, "{stats:?}");
        assert!(stats.largest_batch >= 100, "{stats:?}");
        assert_eq!(store.count().await.unwrap(), 200);
    }

    #[tokio::test]
    async fn duplicate_request_id_is_an_error_and_does_not_fail_the_batch() {
        let (dir, store) = store();
        store
            .record(&event("req-1", 1_700_000_000_000, "NONE"))
            .await
            .unwrap();
        let dup = store
            .record(&event("req-1", 1_700_000_000_001, "INTERVENED"))
            .await;
        assert!(matches!(dup, Err(AuditError::Store(m)) if m.contains("already recorded")));
        // The original is untouched.
        let found = store.find("req-1").await.unwrap().unwrap();
        assert_eq!(found.guardrail_action, "NONE");

        // A duplicate in the same batch as good events fails alone: hold the write lock so
        // the events queue up into one batch behind it.
        let blocker = Connection::open(dir.path().join("nested/audit.db")).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let store = Arc::new(store);
        let spawn = |id: &'static str| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record(&event(id, 1, "NONE")).await })
        };
        let (a, b, c) = (spawn("req-2"), spawn("req-1"), spawn("req-3"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        blocker.execute_batch("ROLLBACK").unwrap();
        assert!(a.await.unwrap().is_ok());
        assert!(b.await.unwrap().is_err());
        assert!(c.await.unwrap().is_ok());
        assert_eq!(store.count().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn requests_per_minute_buckets() {
        let (_dir, store) = store();
        let base = 1_700_000_040_000; // a whole minute
        assert_eq!(base % 60_000, 0);
        let at = [
            (base, "NONE"),
            (base + 59_999, "INTERVENED"),
            (base + 60_000, "NONE"),
            (base + 180_500, "INTERVENED"),
            (base + 180_600, "INTERVENED"),
            (base + 240_000, "NONE"), // outside [since, until)
            (base - 1, "NONE"),       // outside
        ];
        for (i, (t, action)) in at.iter().enumerate() {
            store
                .record(&event(&format!("req-{i}"), *t, action))
                .await
                .unwrap();
        }
        let got = store
            .requests_per_minute(base, base + 240_000)
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![
                MinuteCount {
                    minute: base,
                    requests: 2,
                    interventions: 1
                },
                MinuteCount {
                    minute: base + 60_000,
                    requests: 1,
                    interventions: 0
                },
                MinuteCount {
                    minute: base + 180_000,
                    requests: 2,
                    interventions: 2
                },
            ]
        );
    }

    /// Deterministic varied events over about three hours from `base`: several per minute,
    /// features, users, latencies from 0 ms to past the last bucket, duplicate policies.
    fn varied_events(base: i64, n: u64) -> Vec<AuditEvent> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let policies = ["pii:EMAIL", "pii:NAME", "topic:Investing", "word:darn"];
        (0..n)
            .map(|i| {
                let r = next();
                let mut e = event(
                    &format!("req-{i}"),
                    base + (r % (3 * 3_600_000)) as i64,
                    if r % 4 == 0 { "INTERVENED" } else { "NONE" },
                );
                e.feature = ["chat", "search", "support"][(r >> 8) as usize % 3].into();
                e.user_sub = format!("user-{}", (r >> 12) % 7);
                e.latency_ms = match (r >> 16) % 5 {
                    0 => 0,
                    1 => (r >> 20) % 30,
                    2 => (r >> 20) % 5_000,
                    3 => 99_999 + (r >> 20) % 3,
                    _ => (r >> 20) % 300_000,
                };
                e.input_tokens = (r >> 24) % 1_000;
                e.output_tokens = (r >> 34) % 2_000;
                e.policies = (0..(r >> 44) % 4)
                    .map(|k| policies[((r >> (48 + k * 2)) % 4) as usize].to_string())
                    .collect();
                e
            })
            .collect()
    }

    fn reference(events: &[AuditEvent], since: i64, until: i64, top: usize) -> UsageSummary {
        let mut b = rollup::UsageBuilder::new(since, until, top);
        for e in events {
            b.add(e);
        }
        b.finish()
    }

    /// The rollup answers exactly what the raw events say, for ranges on and off hour
    /// boundaries, after deletes and updates too.
    #[tokio::test]
    async fn the_rollups_stay_equal_to_the_raw_events() {
        let (dir, store) = store();
        let base = 1_700_000_000_000 / 3_600_000 * 3_600_000;
        let mut events = varied_events(base, 1_500);
        for e in &events {
            store.record(e).await.unwrap();
        }
        let ranges = [
            (base - 60_000, base + 4 * 3_600_000),
            (base + 17 * 60_000, base + 2 * 3_600_000 + 43 * 60_000),
            (base + 3_600_000, base + 2 * 3_600_000),
            (base + 5 * 60_000, base + 50 * 60_000),
            (base + 61_234, base + 3_599_999),
            (base + 120_000, base + 120_000),
        ];
        let check = |events: Vec<AuditEvent>| {
            let store = &store;
            async move {
                for (since, until) in ranges {
                    let got = store.usage(since, until, 5).await.unwrap();
                    assert_eq!(got, reference(&events, since, until, 5), "{since}..{until}");
                    let (s, u) = rollup::whole_minutes(since, until);
                    assert_eq!(
                        store.requests_per_minute(s, u).await.unwrap(),
                        got.minutes,
                        "{since}..{until}"
                    );
                    let mut by_feature = BTreeMap::new();
                    for e in events
                        .iter()
                        .filter(|e| (since..until).contains(&e.timestamp))
                    {
                        *by_feature.entry(e.feature.clone()).or_insert(0u64) += 1;
                    }
                    assert_eq!(
                        store.requests_by_feature(since, until).await.unwrap(),
                        by_feature,
                        "{since}..{until}"
                    );
                }
            }
        };
        check(events.clone()).await;
        let all = store.usage(base, base + 4 * 3_600_000, 50).await.unwrap();
        assert_eq!(all.latency.total(), 1_500);
        assert!(all.top_policies.len() == 4 && all.top_users.len() == 7);
        assert!(all.latency.counts[0] > 0 && all.latency.counts[LATENCY_BUCKETS - 1] > 0);

        // Events are write-once, but a delete or update by hand keeps the rollups exact too.
        let conn = Connection::open(dir.path().join("nested/audit.db")).unwrap();
        conn.execute_batch(
            "DELETE FROM audit_events WHERE id % 5 = 0;
             UPDATE audit_events SET feature = 'moved', latency_ms = 7, policies = 'not json'
             WHERE id % 7 = 0;",
        )
        .unwrap();
        let mut id = 0;
        events.retain_mut(|e| {
            id += 1;
            if id % 7 == 0 {
                e.feature = "moved".into();
                e.latency_ms = 7;
                e.policies.clear();
            }
            id % 5 != 0
        });
        check(events).await;
        let empties: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM audit_minutes WHERE requests = 0)
                      + (SELECT COUNT(*) FROM audit_minute_policies WHERE hits = 0)
                      + (SELECT COUNT(*) FROM audit_hour_users WHERE requests = 0)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(empties, 0);
    }

    #[test]
    fn ranges_split_into_whole_units_and_edges_without_overflow() {
        assert_eq!(
            split_range(90_000, 250_000, 60_000),
            ((2, 4), [(90_000, 120_000), (240_000, 250_000)])
        );
        assert_eq!(
            split_range(60_000, 120_000, 60_000),
            ((1, 2), [(60_000, 60_000), (120_000, 120_000)])
        );
        assert_eq!(
            split_range(61_000, 119_000, 60_000),
            ((0, 0), [(61_000, 119_000), (0, 0)])
        );
        let (whole, _) = split_range(i64::MIN, i64::MAX, 3_600_000);
        assert!(whole.0 < whole.1);
    }

    #[tokio::test]
    async fn an_older_database_gets_its_rollups_built_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let base = 1_700_000_000_000 / 3_600_000 * 3_600_000;
        let events = varied_events(base, 400);
        {
            let store = SqliteAuditStore::open(&path).unwrap();
            for e in &events {
                store.record(e).await.unwrap();
            }
        }
        // What a version-2 database looks like: no rollups, no triggers.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER audit_rollup_insert; DROP TRIGGER audit_rollup_delete;
             DROP TRIGGER audit_rollup_update; DROP TABLE audit_minutes;
             DROP TABLE audit_hour_users; DROP TABLE audit_minute_policies;
             PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(conn);
        let store = SqliteAuditStore::open(&path).unwrap();
        let (since, until) = (base + 7 * 60_000, base + 3 * 3_600_000 - 60_000);
        assert_eq!(
            store.usage(since, until, 10).await.unwrap(),
            reference(&events, since, until, 10)
        );
        // And the triggers work from then on.
        let late = event("late", base + 30 * 60_000, "INTERVENED");
        store.record(&late).await.unwrap();
        let mut all = events.clone();
        all.push(late);
        assert_eq!(
            store.usage(since, until, 10).await.unwrap(),
            reference(&all, since, until, 10)
        );
    }

    #[tokio::test]
    async fn the_access_log_is_newest_first_and_filtered() {
        let (_dir, store) = store();
        for (t, actor) in [(10, "alice"), (30, "bob"), (20, "alice"), (40, "alice")] {
            store
                .record_access(&AccessEvent {
                    timestamp: t,
                    actor: actor.into(),
                    request_id: format!("req-{t}"),
                    vault_key: "k".into(),
                    reason: "incident".into(),
                    origin: "console".into(),
                })
                .await
                .unwrap();
        }
        let log = |since_ms: Option<i64>, actor: Option<&str>, limit: usize| {
            let store = &store;
            let filter = AccessFilter {
                since_ms,
                actor: actor.map(str::to_string),
                limit,
            };
            async move {
                store
                    .access_log(&filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.timestamp)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(log(None, None, 10).await, [40, 30, 20, 10]);
        assert_eq!(log(Some(20), Some("alice"), 10).await, [40, 20]);
        assert_eq!(log(None, Some("alice"), 2).await, [40, 20]);
        assert!(log(None, Some("nobody"), 10).await.is_empty());
    }

    #[tokio::test]
    async fn access_events_come_back_oldest_first() {
        let (_dir, store) = store();
        let access = |t: i64, actor: &str| AccessEvent {
            timestamp: t,
            actor: actor.into(),
            request_id: "req-1".into(),
            vault_key: "prompts/2025/01/01/00/req-1".into(),
            reason: "incident 42".into(),
            origin: "console".into(),
        };
        store.record_access(&access(30, "carol")).await.unwrap();
        store.record_access(&access(10, "alice")).await.unwrap();
        store.record_access(&access(20, "bob")).await.unwrap();
        store.record_access(&access(20, "dave")).await.unwrap();
        let mut other = access(5, "eve");
        other.request_id = "req-2".into();
        store.record_access(&other).await.unwrap();

        let got = store.accesses("req-1").await.unwrap();
        let actors: Vec<_> = got.iter().map(|a| a.actor.as_str()).collect();
        assert_eq!(actors, ["alice", "bob", "dave", "carol"]);
        assert_eq!(got[0], access(10, "alice"));
        assert!(store.accesses("req-9").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_version_1_database_is_migrated_and_keeps_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        {
            let conn = Connection::open(&path).unwrap();
            // The schema as version 1 wrote it: no metrics index, no log_events.
            let (head, rest) = SCHEMA.split_once("-- Covering index").unwrap();
            let (_, tail) = rest.split_once(");").unwrap();
            let v1 = format!("{head}{}", tail.split("-- Events imported").next().unwrap());
            conn.execute_batch(&v1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO audit_events (timestamp, request_id, user_sub, feature, model,
                    model_alias, prompt_hash, latency_ms, model_latency_ms, guardrail_id,
                    guardrail_version, guardrail_action, input_action, output_action, policies,
                    input_tokens, output_tokens, status, stream, vault_key, source_ip,
                    user_agent, event_json)
                 VALUES (1, 'old', 'u', 'f', 'm', 'a', 'h', 1, 1, 'g', '1', 'NONE', 'NONE',
                    'NONE', '[]', 1, 1, 200, 0, NULL, 'ip', 'ua', ?1)",
                [serde_json::to_string(&event("old", 1, "NONE")).unwrap()],
            )
            .unwrap();
        }
        let store = SqliteAuditStore::open(&path).unwrap();
        assert_eq!(store.count().await.unwrap(), 1);
        assert!(store.find("old").await.unwrap().is_some());
        assert_eq!(store.imported_count().await.unwrap(), 0);
        let row = LogEventRow {
            timestamp: 5,
            ingestion_time: 6,
            log_group: "g".into(),
            log_stream: "s".into(),
            message: "{\"userSub\":\"u\"}".into(),
            user_sub: Some("u".into()),
            feature: None,
            request_id: None,
        };
        store
            .import_log_events(vec![row.clone(), row])
            .await
            .unwrap();
        assert_eq!(store.imported_count().await.unwrap(), 2);
        // Imported events are not audit events.
        assert_eq!(store.count().await.unwrap(), 1);
        assert_eq!(store.writer_stats().events, 0);
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_events_metrics'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_wal_stays_bounded_under_sustained_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let limit = 1 << 20;
        let store =
            Arc::new(SqliteAuditStore::open_inner(&path, Durability::Process, limit).unwrap());
        let tasks: Vec<_> = (0..32)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for k in 0..150 {
                        let mut e = event(&format!("req-{w}-{k}"), k, "NONE");
                        e.user_agent = "x".repeat(800);
                        store.record(&e).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.count().await.unwrap(), 32 * 150);
        // ~10 MB written; without the writer's own checkpoint the WAL keeps all of it.
        let wal = std::fs::metadata(wal_path(&path)).unwrap().len();
        assert!(wal <= 3 * limit, "WAL grew to {wal} bytes");
    }

    #[tokio::test]
    async fn recent_is_newest_first() {
        let (_dir, store) = store();
        for (i, t) in [300, 100, 200].iter().enumerate() {
            store
                .record(&event(&format!("req-{i}"), *t, "NONE"))
                .await
                .unwrap();
        }
        let got: Vec<_> = store
            .recent(2)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.timestamp)
            .collect();
        assert_eq!(got, [300, 200]);
    }

    #[tokio::test]
    async fn a_dead_writer_is_an_error_not_a_hang() {
        let (_dir, store) = store();
        // Replace the writer with one whose thread has exited.
        let (jobs, queue) = mpsc::channel::<Job>();
        drop(queue);
        let store = SqliteAuditStore { jobs, ..store };
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            store.record(&event("req-1", 1, "NONE")),
        )
        .await
        .unwrap();
        assert!(matches!(res, Err(AuditError::Store(m)) if m.contains("stopped")));

        // A writer that takes the job and dies without answering.
        let (jobs, queue) = mpsc::channel::<Job>();
        let dying = std::thread::spawn(move || {
            let _job = queue.recv();
        });
        let store = SqliteAuditStore { jobs, ..store };
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            store.record_access(&AccessEvent {
                timestamp: 1,
                actor: "a".into(),
                request_id: "r".into(),
                vault_key: "k".into(),
                reason: "x".into(),
                origin: "cli".into(),
            }),
        )
        .await
        .unwrap();
        assert!(res.is_err());
        dying.join().unwrap();
    }
}
