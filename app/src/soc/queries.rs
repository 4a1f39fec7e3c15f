//! The SOC's Insights query manager: StartQuery / GetQueryResults / StopQuery over an
//! [`InsightsBackend`].
//!
//! Each query runs on its own task with a [`CancelToken`]; its owner polls for the status
//! (Scheduled → Running → Complete / Failed / Cancelled / Timeout), the events read so far
//! (the backend reports them through the token) and, once finished, the results. Everything is
//! bounded: running queries per user and overall, queries kept per user, how long finished
//! results are kept, rows per query and the query text's length. A caller only ever sees and
//! stops their own queries: anyone else's id answers "not found", exactly like an unknown one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gateway::insights::{
    CancelToken, InsightsBackend, InsightsError, ParseError, QueryRequest, QueryResults,
    QueryStatus, TimeRange,
};

/// The longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 10_000;

/// How much the manager allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Queries one user may have scheduled or running at once.
    pub running_per_user: usize,
    /// Queries scheduled or running at once, all users together.
    pub running_overall: usize,
    /// Queries (finished ones included) kept per user; the oldest finished goes first.
    pub kept_per_user: usize,
    /// How long a finished query's results are kept.
    pub keep_for: Duration,
    /// A query's deadline.
    pub timeout: Duration,
    /// Rows a query returns at most.
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            running_per_user: 3,
            running_overall: 12,
            kept_per_user: 20,
            keep_for: Duration::from_secs(30 * 60),
            timeout: Duration::from_secs(5 * 60),
            max_rows: 10_000,
        }
    }
}

/// Why a query was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("query syntax, {0}")]
    Parse(ParseError),
    #[error("{0}")]
    Invalid(String),
    #[error("you already have {0} queries running; wait for one or cancel it")]
    TooManyForUser(usize),
    #[error("{0} queries are running on the console; try again in a moment")]
    TooManyOverall(usize),
    #[error("the query could not be started")]
    Unavailable,
}

/// What a poll sees of one query (GetQueryResults plus what the page shows around it).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub query: String,
    pub range: TimeRange,
    pub status: QueryStatus,
    /// Events read so far (or in total, once finished).
    pub scanned: u64,
    pub started_ms: i64,
    pub elapsed: Duration,
    /// Present once the query completed.
    pub results: Option<Arc<QueryResults>>,
    /// Why it failed; safe to show (store detail is logged, not kept here).
    pub error: Option<String>,
}

struct Entry {
    owner: String,
    query: String,
    range: TimeRange,
    status: QueryStatus,
    cancel: CancelToken,
    started_ms: i64,
    started: Instant,
    finished: Option<Instant>,
    results: Option<Arc<QueryResults>>,
    error: Option<String>,
}

impl Entry {
    fn is_active(&self) -> bool {
        matches!(self.status, QueryStatus::Scheduled | QueryStatus::Running)
    }

    fn snapshot(&self, id: &str, now: Instant) -> Snapshot {
        let scanned = match &self.results {
            Some(r) => (r.statistics.records_scanned as u64).max(self.cancel.scanned()),
            None => self.cancel.scanned(),
        };
        Snapshot {
            id: id.to_string(),
            query: self.query.clone(),
            range: self.range,
            status: self.status,
            scanned,
            started_ms: self.started_ms,
            elapsed: self.finished.unwrap_or(now).duration_since(self.started),
            results: self.results.clone(),
            error: self.error.clone(),
        }
    }
}

type Entries = Arc<Mutex<HashMap<String, Entry>>>;

/// Runs the SOC's queries in the background; shared by every request (cheap to clone).
#[derive(Clone)]
pub struct QueryManager {
    backend: Arc<dyn InsightsBackend>,
    limits: Limits,
    entries: Entries,
}

fn lock(entries: &Entries) -> MutexGuard<'_, HashMap<String, Entry>> {
    // A panic while holding the lock leaves the map consistent (every update is one
    // assignment), so a poisoned lock is still usable.
    entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl QueryManager {
    pub fn new(backend: Arc<dyn InsightsBackend>, limits: Limits) -> QueryManager {
        QueryManager {
            backend,
            limits,
            entries: Arc::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// StartQuery: check the text, admit the query under the limits and run it on a task.
    /// Returns the query's id.
    pub fn start(&self, owner: &str, query: &str, range: TimeRange) -> Result<String, StartError> {
        if query.trim().is_empty() {
            return Err(StartError::Invalid("write a query first".into()));
        }
        if query.len() > MAX_QUERY_BYTES {
            return Err(StartError::Invalid(format!(
                "the query is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        if range.start_ms > range.end_ms {
            return Err(StartError::Invalid(
                "the time range starts after it ends".into(),
            ));
        }
        gateway::insights::parse(query).map_err(StartError::Parse)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            tracing::error!("insights query started outside the async runtime");
            StartError::Unavailable
        })?;
        let id = new_id()?;
        let cancel = CancelToken::new();
        let now = Instant::now();
        {
            let mut entries = lock(&self.entries);
            self.expire(&mut entries, now);
            let active = entries.values().filter(|e| e.is_active()).count();
            if active >= self.limits.running_overall {
                return Err(StartError::TooManyOverall(active));
            }
            let mine = entries
                .values()
                .filter(|e| e.owner == owner && e.is_active())
                .count();
            if mine >= self.limits.running_per_user {
                return Err(StartError::TooManyForUser(mine));
            }
            // Keep at most `kept_per_user` per user: forget the oldest finished ones first
            // (active ones are at most `running_per_user`, which is smaller).
            loop {
                let kept: Vec<(&String, &Entry)> =
                    entries.iter().filter(|(_, e)| e.owner == owner).collect();
                if kept.len() < self.limits.kept_per_user {
                    break;
                }
                let Some(oldest) = kept
                    .iter()
                    .filter(|(_, e)| !e.is_active())
                    .min_by_key(|(_, e)| e.started)
                    .map(|(id, _)| (*id).clone())
                else {
                    break;
                };
                entries.remove(&oldest);
            }
            entries.insert(
                id.clone(),
                Entry {
                    owner: owner.to_string(),
                    query: query.to_string(),
                    range,
                    status: QueryStatus::Scheduled,
                    cancel: cancel.clone(),
                    started_ms: gateway::now_ms(),
                    started: now,
                    finished: None,
                    results: None,
                    error: None,
                },
            );
        }
        let request = QueryRequest {
            query: query.to_string(),
            range,
            limit: Some(self.limits.max_rows),
            timeout: Some(self.limits.timeout),
        };
        let (backend, entries, task_id) = (self.backend.clone(), self.entries.clone(), id.clone());
        // Not a must-happen task (STYLE 16): a query nobody polls any more may die with the
        // process; its entry is then simply gone.
        runtime.spawn(async move {
            {
                let mut map = lock(&entries);
                match map.get_mut(&task_id) {
                    Some(e) if e.status == QueryStatus::Scheduled => {
                        e.status = QueryStatus::Running;
                    }
                    // Stopped before it began, or forgotten.
                    _ => return,
                }
            }
            let outcome = backend.run(&request, &cancel).await;
            let mut map = lock(&entries);
            let Some(e) = map.get_mut(&task_id) else {
                return;
            };
            e.finished = Some(Instant::now());
            match outcome {
                Ok(results) => {
                    cancel.set_scanned(results.statistics.records_scanned as u64);
                    // A stop that came in while it ran wins over a late "Complete".
                    if e.status != QueryStatus::Cancelled {
                        e.status = results.status;
                    }
                    if e.status == QueryStatus::Complete {
                        e.results = Some(Arc::new(results));
                    }
                }
                Err(err) => {
                    if e.status != QueryStatus::Cancelled {
                        e.status = QueryStatus::Failed;
                        e.error = Some(failure_message(&err));
                    }
                }
            }
        });
        Ok(id)
    }

    /// GetQueryResults: the owner's view of query `id`, or `None` (unknown, expired or not
    /// theirs — indistinguishable on purpose).
    pub fn poll(&self, owner: &str, id: &str) -> Option<Snapshot> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        self.expire(&mut entries, now);
        entries
            .get(id)
            .filter(|e| e.owner == owner)
            .map(|e| e.snapshot(id, now))
    }

    /// StopQuery: cancel the owner's query `id`. `Some(true)` if it was still running,
    /// `Some(false)` if it had already finished, `None` if there is no such query of theirs.
    pub fn stop(&self, owner: &str, id: &str) -> Option<bool> {
        let mut entries = lock(&self.entries);
        let e = entries.get_mut(id).filter(|e| e.owner == owner)?;
        if !e.is_active() {
            return Some(false);
        }
        e.cancel.cancel();
        e.status = QueryStatus::Cancelled;
        e.finished = Some(Instant::now());
        Some(true)
    }

    /// The owner's queries, newest first.
    pub fn list(&self, owner: &str) -> Vec<Snapshot> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        self.expire(&mut entries, now);
        let mut mine: Vec<Snapshot> = entries
            .iter()
            .filter(|(_, e)| e.owner == owner)
            .map(|(id, e)| e.snapshot(id, now))
            .collect();
        mine.sort_by_key(|s| std::cmp::Reverse(s.started_ms));
        mine
    }

    /// Forget finished queries past `keep_for`, and give up on tasks that outlived their
    /// deadline by a minute (their task died without reporting).
    fn expire(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        let keep_for = self.limits.keep_for;
        let stale = self.limits.timeout + Duration::from_secs(60);
        entries.retain(|_, e| match e.finished {
            Some(done) => now.saturating_duration_since(done) < keep_for,
            None => true,
        });
        for e in entries.values_mut() {
            if e.is_active() && now.saturating_duration_since(e.started) > stale {
                e.cancel.cancel();
                e.status = QueryStatus::Timeout;
                e.finished = Some(now);
            }
        }
    }
}

/// A failure as the analyst may see it: query mistakes verbatim, store trouble generically
/// (the detail, which may name paths, goes to the log).
fn failure_message(err: &InsightsError) -> String {
    match err {
        InsightsError::Store(_) => {
            tracing::error!(error = %err, "insights query failed");
            "The audit store could not be read; the detail is in the server log.".into()
        }
        InsightsError::Parse(_)
        | InsightsError::Plan(_)
        | InsightsError::Unsupported(_)
        | InsightsError::ScanLimit { .. }
        | InsightsError::TooManyGroups(_)
        | InsightsError::Range(_) => err.to_string(),
    }
}

/// 128 random bits, hex.
fn new_id() -> Result<String, StartError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
        tracing::error!("the system random generator failed");
        StartError::Unavailable
    })?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use gateway::audit::sqlite::SqliteAuditStore;
    use gateway::audit::{AuditEvent, AuditStore};
    use gateway::insights::QueryStatistics;
    use gateway::insights::store::SqliteInsights;

    /// A backend that runs until cancelled, reporting progress as it goes (a long scan).
    struct Endless;

    #[async_trait]
    impl InsightsBackend for Endless {
        async fn run(
            &self,
            _request: &QueryRequest,
            cancel: &CancelToken,
        ) -> Result<QueryResults, InsightsError> {
            let mut scanned = 0;
            while !cancel.is_cancelled() {
                scanned += 512;
                cancel.set_scanned(scanned);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(QueryResults {
                results: Vec::new(),
                statistics: QueryStatistics {
                    records_scanned: scanned as f64,
                    ..QueryStatistics::default()
                },
                status: QueryStatus::Cancelled,
            })
        }
    }

    async fn wait_done(m: &QueryManager, owner: &str, id: &str) -> Snapshot {
        for _ in 0..400 {
            let s = m.poll(owner, id).unwrap();
            if !matches!(s.status, QueryStatus::Scheduled | QueryStatus::Running) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("query {id} did not finish");
    }

    async fn real_store() -> (tempfile::TempDir, QueryManager) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = SqliteAuditStore::open(&path).unwrap();
        for i in 0..30 {
            store
                .record(&AuditEvent {
                    timestamp: 1_700_000_000_000 + i * 1000,
                    request_id: format!("req-{i}"),
                    user_sub: format!("user-{}", i % 3),
                    feature: "default".into(),
                    status: 200,
                    ..AuditEvent::default()
                })
                .await
                .unwrap();
        }
        let m = QueryManager::new(Arc::new(SqliteInsights::new(&path)), Limits::default());
        (dir, m)
    }

    #[tokio::test]
    async fn runs_a_real_query_to_completion_for_its_owner_only() {
        let (_dir, m) = real_store().await;
        let id = m
            .start(
                "ana",
                "fields requestId | filter userSub = \"user-1\" | sort @timestamp desc",
                TimeRange::all(),
            )
            .unwrap();
        let s = wait_done(&m, "ana", &id).await;
        assert_eq!(s.status, QueryStatus::Complete);
        let results = s.results.unwrap();
        assert_eq!(results.results.len(), 10);
        assert_eq!(s.scanned, 10, "only user-1's events are read (pushed down)");
        // Someone else can neither see nor stop it.
        assert!(m.poll("bob", &id).is_none());
        assert_eq!(m.stop("bob", &id), None);
        assert!(m.list("bob").is_empty());
        assert_eq!(m.list("ana").len(), 1);
        // Stopping a finished query changes nothing.
        assert_eq!(m.stop("ana", &id), Some(false));
        assert_eq!(m.poll("ana", &id).unwrap().status, QueryStatus::Complete);
    }

    #[tokio::test]
    async fn parse_errors_say_where_and_nothing_starts() {
        let (_dir, m) = real_store().await;
        match m.start("ana", "fields a\n| filter (", TimeRange::all()) {
            Err(StartError::Parse(e)) => assert_eq!((e.line, e.column), (2, 11), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            m.start("ana", "  ", TimeRange::all()),
            Err(StartError::Invalid(_))
        ));
        let long = format!("fields {}", "a".repeat(MAX_QUERY_BYTES));
        assert!(matches!(
            m.start("ana", &long, TimeRange::all()),
            Err(StartError::Invalid(_))
        ));
        assert!(m.list("ana").is_empty());
    }

    #[tokio::test]
    async fn a_long_query_reports_progress_and_stops_when_cancelled() {
        let m = QueryManager::new(Arc::new(Endless), Limits::default());
        let id = m.start("ana", "fields a", TimeRange::all()).unwrap();
        let mut seen = 0;
        for _ in 0..200 {
            let s = m.poll("ana", &id).unwrap();
            seen = s.scanned;
            if s.status == QueryStatus::Running && seen > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen > 0, "progress is visible while it runs");
        assert_eq!(m.stop("ana", &id), Some(true));
        let s = m.poll("ana", &id).unwrap();
        assert_eq!(s.status, QueryStatus::Cancelled);
        assert!(s.results.is_none());
        // The task saw the cancellation and ended; the status stays Cancelled.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(m.poll("ana", &id).unwrap().status, QueryStatus::Cancelled);
    }

    #[tokio::test]
    async fn running_queries_are_bounded_per_user_and_overall() {
        let limits = Limits {
            running_per_user: 2,
            running_overall: 3,
            ..Limits::default()
        };
        let m = QueryManager::new(Arc::new(Endless), limits);
        let a1 = m.start("ana", "fields a", TimeRange::all()).unwrap();
        m.start("ana", "fields a", TimeRange::all()).unwrap();
        assert_eq!(
            m.start("ana", "fields a", TimeRange::all()),
            Err(StartError::TooManyForUser(2))
        );
        m.start("bob", "fields a", TimeRange::all()).unwrap();
        assert_eq!(
            m.start("cy", "fields a", TimeRange::all()),
            Err(StartError::TooManyOverall(3))
        );
        // Stopping one frees a slot.
        assert_eq!(m.stop("ana", &a1), Some(true));
        m.start("cy", "fields a", TimeRange::all()).unwrap();
        for s in m
            .list("ana")
            .into_iter()
            .chain(m.list("bob"))
            .chain(m.list("cy"))
        {
            m.stop(&owner_of(&m, &s.id), &s.id);
        }
    }

    fn owner_of(m: &QueryManager, id: &str) -> String {
        lock(&m.entries).get(id).unwrap().owner.clone()
    }

    #[tokio::test]
    async fn finished_results_expire_and_kept_queries_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        SqliteAuditStore::open(&path).unwrap();
        let limits = Limits {
            kept_per_user: 3,
            keep_for: Duration::from_millis(200),
            ..Limits::default()
        };
        let m = QueryManager::new(Arc::new(SqliteInsights::new(&path)), limits);
        let mut ids = Vec::new();
        for _ in 0..5 {
            let id = m.start("ana", "fields a", TimeRange::all()).unwrap();
            wait_done(&m, "ana", &id).await;
            ids.push(id);
        }
        assert_eq!(m.list("ana").len(), 3, "only the newest three are kept");
        assert!(m.poll("ana", &ids[0]).is_none());
        assert!(m.poll("ana", &ids[4]).is_some());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(m.poll("ana", &ids[4]).is_none(), "expired");
        assert!(m.list("ana").is_empty());
    }

    /// `CloudWatchInsights` on the wire-level CloudWatch Logs Insights fake (which runs the
    /// query with the embedded engine over the events it is given), polling every few ms.
    async fn cloudwatch(
        options: e2e::insights_fake::FakeOptions,
    ) -> (e2e::insights_fake::InsightsFake, QueryManager) {
        use e2e::insights_fake::{FakeEvent, InsightsFake};
        use gateway::aws::insights::{CloudWatchInsights, PollLimits};
        let events = (0..30)
            .map(|i| {
                FakeEvent::audit(
                    "/golden-path/gateway",
                    &AuditEvent {
                        timestamp: 1_700_000_000_000 + i * 1000,
                        request_id: format!("req-{i}"),
                        user_sub: format!("user-{}", i % 3),
                        feature: "default".into(),
                        status: 200,
                        ..AuditEvent::default()
                    },
                )
            })
            .collect();
        let fake = InsightsFake::start(events, options).await;
        let aws: gateway::config::AwsConfig = serde_json::from_value(serde_json::json!({
            "region": "us-east-1",
            "endpoint_url": fake.base,
            "vault_bucket": "unused",
            "kms_key_id": "unused",
            "log_group": "/golden-path/gateway",
            "throttle_table": "unused",
        }))
        .unwrap();
        let credentials = gateway::aws::StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: gateway::config::Secret::new("testing"),
        };
        let sdk = gateway::aws::sdk_config(&aws, Some(&credentials)).await;
        let backend = CloudWatchInsights::new(
            gateway::aws::Clients::new(&sdk, &aws).logs,
            vec![aws.log_group.clone()],
        )
        .with_limits(PollLimits {
            first_poll: Duration::from_millis(5),
            max_poll: Duration::from_millis(20),
            ..PollLimits::default()
        });
        (
            fake,
            QueryManager::new(Arc::new(backend), Limits::default()),
        )
    }

    #[tokio::test]
    async fn runs_queries_on_cloudwatch_logs_insights_with_progress() {
        let (fake, m) = cloudwatch(e2e::insights_fake::FakeOptions {
            running_polls: 8,
            ..Default::default()
        })
        .await;
        let id = m
            .start(
                "ana",
                "fields requestId | filter userSub = \"user-1\" | sort @timestamp desc",
                TimeRange::from_secs(1_700_000_000, 1_700_000_019),
            )
            .unwrap();
        let mut progress = Vec::new();
        let done = loop {
            let s = m.poll("ana", &id).unwrap();
            if !matches!(s.status, QueryStatus::Scheduled | QueryStatus::Running) {
                break s;
            }
            progress.push(s.scanned);
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        assert_eq!(done.status, QueryStatus::Complete, "{:?}", done.error);
        let rows = &done.results.unwrap().results;
        let ids: Vec<&str> = rows
            .iter()
            .map(|r| {
                assert!(r.iter().all(|f| f.field != "@ptr"), "{r:?}");
                r[0].value.as_str()
            })
            .collect();
        assert_eq!(
            ids,
            [
                "req-19", "req-16", "req-13", "req-10", "req-7", "req-4", "req-1"
            ]
        );
        assert!(
            progress.iter().any(|n| (1..done.scanned).contains(n)),
            "progress before the end: {progress:?} (final {})",
            done.scanned
        );
        // What CloudWatch was asked: the manager's row bound, the range in seconds.
        let start = &fake.bodies("StartQuery")[0];
        assert_eq!(start["limit"], 10_000);
        assert_eq!(
            (&start["startTime"], &start["endTime"]),
            (
                &serde_json::json!(1_700_000_000),
                &serde_json::json!(1_700_000_019)
            )
        );
    }

    #[tokio::test]
    async fn stopping_a_cloudwatch_query_stops_it_there_and_the_quota_is_explained() {
        let (fake, m) = cloudwatch(e2e::insights_fake::FakeOptions {
            running_polls: 1_000_000,
            max_concurrent: 1,
            ..Default::default()
        })
        .await;
        let first = m
            .start("ana", "fields requestId", TimeRange::all())
            .unwrap();
        fake.wait_for("GetQueryResults", 1, Duration::from_secs(10))
            .await;
        // The account's only slot is taken: the second query fails with a reason to act on.
        let second = m
            .start("bob", "fields requestId", TimeRange::all())
            .unwrap();
        let s = wait_done(&m, "bob", &second).await;
        assert_eq!(s.status, QueryStatus::Failed);
        let error = s.error.unwrap();
        assert!(error.contains("at once"), "{error}");
        // Stop → StopQuery on CloudWatch for that query.
        assert_eq!(m.stop("ana", &first), Some(true));
        fake.wait_for("StopQuery", 1, Duration::from_secs(10)).await;
        let stopped = fake.bodies("StopQuery")[0]["queryId"].clone();
        assert_eq!(fake.status(stopped.as_str().unwrap()), Some("Cancelled"));
        assert_eq!(
            m.poll("ana", &first).unwrap().status,
            QueryStatus::Cancelled
        );
    }

    #[test]
    fn store_failures_are_not_shown_verbatim() {
        let msg = failure_message(&InsightsError::Store("no audit database at /srv/x".into()));
        assert!(!msg.contains("/srv"));
        let msg = failure_message(&InsightsError::TooManyGroups(10));
        assert!(msg.contains("groups"));
    }
}
