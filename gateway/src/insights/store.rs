//! The embedded backend: runs a plan over `audit.db` — the gateway's own `audit_events` and the
//! imported `log_events` — reading only the columns the query needs, pushing the time range and
//! indexed equalities (`userSub`, `feature`, `requestId`) into SQL, and streaming rows into
//! the executor on a blocking thread, with a deadline, a cancel token and a scan cap.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, Rows};

use super::event::{AUDIT_LOG_GROUP, AUDIT_LOG_STREAM, json_field};
use super::exec::{Executor, Flow};
use super::plan::{Plan, Pushdown};
use super::value::Value;
use super::{
    CancelToken, DEFAULT_LIMIT, InsightsBackend, InsightsError, MAX_LIMIT, QueryRequest,
    QueryResults, QueryStatistics, QueryStatus,
};

/// Bytes of the database a query connection maps into memory.
const MMAP_BYTES: i64 = 4 << 30;

/// Limits of one query on the embedded backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events one query may read before it fails with [`InsightsError::ScanLimit`].
    pub max_scanned: u64,
    /// Default deadline (a request may ask for another).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_scanned: 50_000_000,
            timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// Logs Insights over the embedded audit store.
#[derive(Debug, Clone)]
pub struct SqliteInsights {
    path: PathBuf,
    limits: Limits,
}

#[async_trait]
impl InsightsBackend for SqliteInsights {
    async fn run(
        &self,
        request: &QueryRequest,
        cancel: &CancelToken,
    ) -> Result<QueryResults, InsightsError> {
        let this = self.clone();
        let request = request.clone();
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || this.run_blocking(&request, &cancel))
            .await
            .map_err(|e| InsightsError::Store(format!("query task failed: {e}")))?
    }
}

/// How a needed field is read from a table row.
#[derive(Debug, Clone)]
enum Source {
    /// Select-list index and how to type it.
    Column(usize, Kind),
    Const(Value),
    /// Discovered in the JSON text (at `TableScan::json_column`).
    Json(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
    Time,
    Ptr(char),
}

struct TableScan {
    sql: String,
    params: Vec<SqlValue>,
    /// (slot, source)
    sources: Vec<(usize, Source)>,
    /// The select-list index of the JSON text, when any field needs discovery.
    json_column: Option<usize>,
}

/// Column name and kind of the fields `audit_events` has as columns.
fn audit_column(name: &str) -> Option<(&'static str, Kind)> {
    Some(match name {
        "@timestamp" | "@ingestionTime" => ("timestamp", Kind::Time),
        "@ptr" => ("id", Kind::Ptr('a')),
        "@message" => ("event_json", Kind::Text),
        "timestamp" => ("timestamp", Kind::Int),
        "requestId" => ("request_id", Kind::Text),
        "userSub" => ("user_sub", Kind::Text),
        "feature" => ("feature", Kind::Text),
        "model" => ("model", Kind::Text),
        "modelAlias" => ("model_alias", Kind::Text),
        "promptHash" => ("prompt_hash", Kind::Text),
        "latencyMs" => ("latency_ms", Kind::Int),
        "modelLatencyMs" => ("model_latency_ms", Kind::Int),
        "guardrailId" => ("guardrail_id", Kind::Text),
        "guardrailVersion" => ("guardrail_version", Kind::Text),
        "guardrailAction" => ("guardrail_action", Kind::Text),
        "inputAction" => ("input_action", Kind::Text),
        "outputAction" => ("output_action", Kind::Text),
        "inputTokens" => ("input_tokens", Kind::Int),
        "outputTokens" => ("output_tokens", Kind::Int),
        "status" => ("status", Kind::Int),
        "stream" => ("stream", Kind::Bool),
        "vaultKey" => ("vault_key", Kind::Text),
        "sourceIp" => ("source_ip", Kind::Text),
        "userAgent" => ("user_agent", Kind::Text),
        _ => return None,
    })
}

fn log_column(name: &str) -> Option<(&'static str, Kind)> {
    Some(match name {
        "@timestamp" => ("timestamp", Kind::Time),
        "@ingestionTime" => ("ingestion_time", Kind::Time),
        "@ptr" => ("id", Kind::Ptr('i')),
        "@message" => ("message", Kind::Text),
        "@logStream" => ("log_stream", Kind::Text),
        "@log" => ("log_group", Kind::Text),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Audit,
    Imported,
}

fn table_scan(table: Table, plan: &Plan, range: super::TimeRange) -> TableScan {
    let (name, json_text) = match table {
        Table::Audit => ("audit_events", "event_json"),
        Table::Imported => ("log_events", "message"),
    };
    let mut columns: Vec<&'static str> = vec!["timestamp"];
    let index_of = |c: &'static str, columns: &mut Vec<&'static str>| -> usize {
        match columns.iter().position(|x| *x == c) {
            Some(i) => i,
            None => {
                columns.push(c);
                columns.len() - 1
            }
        }
    };
    let mut sources = Vec::new();
    let mut json_column = None;
    for (field, slot) in &plan.event_fields {
        if field == "@ptr" && !plan.with_ptr {
            continue;
        }
        let column = match table {
            Table::Audit => audit_column(field),
            Table::Imported => log_column(field),
        };
        let source = match (column, table, field.as_str()) {
            (Some((c, kind)), _, _) => Source::Column(index_of(c, &mut columns), kind),
            (None, Table::Audit, "@logStream") => {
                Source::Const(Value::Str(AUDIT_LOG_STREAM.into()))
            }
            (None, Table::Audit, "@log") => Source::Const(Value::Str(AUDIT_LOG_GROUP.into())),
            (None, _, f) if f.starts_with('@') && !f.starts_with("@@") => {
                Source::Const(Value::Null)
            }
            (None, _, f) => {
                let i = index_of(json_text, &mut columns);
                json_column = Some(i);
                Source::Json(f.to_string())
            }
        };
        sources.push((*slot, source));
    }
    let mut sql = format!(
        "SELECT {} FROM {name} WHERE timestamp >= ?1 AND timestamp <= ?2",
        columns.join(", ")
    );
    let mut params = vec![
        SqlValue::Integer(range.start_ms),
        SqlValue::Integer(range.end_ms),
    ];
    let Pushdown {
        user_sub,
        feature,
        request_id,
    } = &plan.pushdown;
    for (column, values) in [
        ("user_sub", user_sub),
        ("feature", feature),
        ("request_id", request_id),
    ] {
        let Some(values) = values else { continue };
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                params.push(SqlValue::Text(v.clone()));
                format!("?{}", params.len())
            })
            .collect();
        sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
    }
    if plan.ordered {
        sql.push_str(" ORDER BY timestamp DESC, id DESC");
    }
    TableScan {
        sql,
        params,
        sources,
        json_column,
    }
}

struct Loaded {
    ts: i64,
    row: Vec<Value>,
    bytes: u64,
}

fn load(
    scan: &TableScan,
    r: &rusqlite::Row<'_>,
    mut row: Vec<Value>,
) -> Result<Loaded, rusqlite::Error> {
    let ts: i64 = r.get(0)?;
    let mut bytes = 8u64;
    let json = match scan.json_column {
        Some(i) => {
            let text: String = r.get(i)?;
            bytes += text.len() as u64;
            serde_json::from_str::<serde_json::Value>(&text).ok()
        }
        None => None,
    };
    for (slot, source) in &scan.sources {
        let v = match source {
            Source::Const(v) => v.clone(),
            Source::Json(name) => json.as_ref().map_or(Value::Null, |j| json_field(j, name)),
            Source::Column(i, kind) => match kind {
                Kind::Text => match r.get::<_, Option<String>>(*i)? {
                    Some(s) => {
                        if Some(*i) != scan.json_column {
                            bytes += s.len() as u64;
                        }
                        Value::Str(s)
                    }
                    None => Value::Null,
                },
                Kind::Int => {
                    bytes += 8;
                    r.get::<_, Option<i64>>(*i)?.map_or(Value::Null, Value::Int)
                }
                Kind::Bool => {
                    bytes += 1;
                    r.get::<_, Option<i64>>(*i)?
                        .map_or(Value::Null, |b| Value::Bool(b != 0))
                }
                Kind::Time => r
                    .get::<_, Option<i64>>(*i)?
                    .map_or(Value::Null, Value::Time),
                Kind::Ptr(prefix) => {
                    let id: i64 = r.get(*i)?;
                    Value::Str(format!("{prefix}{id}"))
                }
            },
        };
        if let Some(cell) = row.get_mut(*slot) {
            *cell = v;
        }
    }
    Ok(Loaded { ts, row, bytes })
}

fn store_err(what: &str, e: &rusqlite::Error) -> InsightsError {
    InsightsError::Store(format!("{what}: {e}"))
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, InsightsError> {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| store_err("read schema", &e))
}

impl SqliteInsights {
    /// Query the audit database at `path` (created by [`crate::audit::sqlite::SqliteAuditStore`]).
    pub fn new(path: &Path) -> SqliteInsights {
        SqliteInsights::with_limits(path, Limits::default())
    }

    pub fn with_limits(path: &Path, limits: Limits) -> SqliteInsights {
        SqliteInsights {
            path: path.to_path_buf(),
            limits,
        }
    }

    /// Run one query on this thread (blocking). [`InsightsBackend::run`] calls this on the
    /// blocking pool.
    pub fn run_blocking(
        &self,
        request: &QueryRequest,
        cancel: &CancelToken,
    ) -> Result<QueryResults, InsightsError> {
        let started = Instant::now();
        let deadline = started + request.timeout.unwrap_or(self.limits.timeout);
        if request.range.start_ms > request.range.end_ms {
            return Err(InsightsError::Range("the start is after the end".into()));
        }
        let query = super::parse(&request.query)?;
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let plan = super::plan::plan(&query, limit)?;
        let now_secs = crate::now_ms().div_euclid(1000);

        if !self.path.exists() {
            return Err(InsightsError::Store(format!(
                "no audit database at {}",
                self.path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| store_err("open the audit database", &e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| store_err("set busy timeout", &e))?;
        // Large scans read through a memory map instead of copying page by page.
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)
            .map_err(|e| store_err("set mmap_size", &e))?;

        let mut scans = Vec::new();
        for (table, name) in [
            (Table::Audit, "audit_events"),
            (Table::Imported, "log_events"),
        ] {
            if table_exists(&conn, name)? {
                scans.push(table_scan(table, &plan, request.range));
            }
        }
        let mut statements = Vec::new();
        for scan in &scans {
            statements.push(
                conn.prepare(&scan.sql)
                    .map_err(|e| store_err("prepare the scan", &e))?,
            );
        }
        let mut cursors: Vec<Rows<'_>> = Vec::new();
        for (stmt, scan) in statements.iter_mut().zip(&scans) {
            cursors.push(
                stmt.query(rusqlite::params_from_iter(scan.params.iter()))
                    .map_err(|e| store_err("scan", &e))?,
            );
        }

        let mut exec = Executor::new(&plan, now_secs);
        let mut stats = QueryStatistics::default();
        let mut scanned: u64 = 0;
        let mut bytes: u64 = 0;
        let mut heads: Vec<Option<Loaded>> = Vec::with_capacity(cursors.len());
        for (cursor, scan) in cursors.iter_mut().zip(&scans) {
            heads.push(next_loaded(cursor, scan, exec.new_row())?);
        }
        let mut status = QueryStatus::Complete;
        loop {
            // Newest first across tables when order matters; otherwise table by table.
            let pick = if plan.ordered {
                heads
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| h.as_ref().map(|l| (i, l.ts)))
                    .max_by_key(|(i, ts)| (*ts, std::cmp::Reverse(*i)))
                    .map(|(i, _)| i)
            } else {
                heads.iter().position(Option::is_some)
            };
            let Some(i) = pick else { break };
            let Some(loaded) = heads[i].take() else { break };
            scanned += 1;
            bytes += loaded.bytes;
            if scanned > self.limits.max_scanned {
                return Err(InsightsError::ScanLimit {
                    limit: self.limits.max_scanned,
                });
            }
            if scanned.is_multiple_of(512) {
                cancel.set_scanned(scanned);
                if cancel.is_cancelled() {
                    status = QueryStatus::Cancelled;
                    break;
                }
                if Instant::now() >= deadline {
                    status = QueryStatus::Timeout;
                    break;
                }
            }
            if exec.push(loaded.row)? == Flow::Stop {
                break;
            }
            heads[i] = next_loaded(&mut cursors[i], &scans[i], exec.new_row())?;
        }
        stats.records_scanned = scanned as f64;
        stats.bytes_scanned = bytes as f64;
        if status != QueryStatus::Complete {
            stats.records_matched = exec.matched as f64;
            return Ok(QueryResults {
                results: Vec::new(),
                statistics: stats,
                status,
            });
        }
        let (results, matched) = exec.finish()?;
        stats.records_matched = matched as f64;
        Ok(QueryResults {
            results,
            statistics: stats,
            status,
        })
    }
}

fn next_loaded(
    cursor: &mut Rows<'_>,
    scan: &TableScan,
    row: Vec<Value>,
) -> Result<Option<Loaded>, InsightsError> {
    match cursor.next() {
        Ok(Some(r)) => load(scan, r, row)
            .map(Some)
            .map_err(|e| store_err("read an event", &e)),
        Ok(None) => Ok(None),
        Err(e) => Err(store_err("scan", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::sqlite::{LogEventRow, SqliteAuditStore};
    use crate::audit::{AuditEvent, AuditStore};
    use crate::insights::{ResultField, TimeRange};

    fn event(i: i64) -> AuditEvent {
        AuditEvent {
            timestamp: 1_700_000_000_000 + i * 60_000,
            request_id: format!("req-{i}"),
            user_sub: format!("user-{}", i % 3),
            feature: if i % 2 == 0 { "chat" } else { "search" }.into(),
            model: "m1".into(),
            latency_ms: u64::try_from(100 + i).unwrap(),
            status: 200,
            policies: vec!["pii:EMAIL".into()],
            ..AuditEvent::default()
        }
    }

    async fn fixture() -> (tempfile::TempDir, SqliteInsights) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = SqliteAuditStore::open(&path).unwrap();
        for i in 0..10 {
            store.record(&event(i)).await.unwrap();
        }
        store
            .import_log_events(vec![LogEventRow {
                timestamp: 1_700_000_000_000 + 30_000,
                ingestion_time: 1_700_000_000_000 + 31_000,
                log_group: "/aws/gw".into(),
                log_stream: "s1".into(),
                message: r#"{"userSub":"user-1","latencyMs":7,"feature":"chat"}"#.into(),
                user_sub: Some("user-1".into()),
                feature: Some("chat".into()),
                request_id: None,
            }])
            .await
            .unwrap();
        (dir, SqliteInsights::new(&path))
    }

    async fn rows(backend: &SqliteInsights, q: &str) -> Vec<Vec<(String, String)>> {
        let res = backend
            .run(&QueryRequest::new(q, TimeRange::all()), &CancelToken::new())
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(res.status, QueryStatus::Complete);
        res.results
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .filter(|f| f.field != "@ptr")
                    .map(|ResultField { field, value }| (field, value))
                    .collect()
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn queries_both_tables() {
        let (_dir, b) = fixture().await;
        assert_eq!(
            rows(
                &b,
                "filter userSub = \"user-1\" | fields latencyMs, @log | sort latencyMs desc"
            )
            .await,
            vec![
                pairs(&[("latencyMs", "107"), ("@log", "golden-path-audit")]),
                pairs(&[("latencyMs", "104"), ("@log", "golden-path-audit")]),
                pairs(&[("latencyMs", "101"), ("@log", "golden-path-audit")]),
                pairs(&[("latencyMs", "7"), ("@log", "/aws/gw")]),
            ]
        );
        assert_eq!(
            rows(&b, "stats count(*) as n, avg(latencyMs) by feature").await,
            vec![
                pairs(&[
                    ("feature", "chat"),
                    ("n", "6"),
                    ("avg(latencyMs)", "87.83333333333333")
                ]),
                pairs(&[("feature", "search"), ("n", "5"), ("avg(latencyMs)", "105")]),
            ]
        );
        // No sort: newest first across both tables, default columns.
        let got = rows(&b, "fields @timestamp, requestId | limit 3").await;
        assert_eq!(got[0][0].1, "2023-11-14 22:22:20.000");
        assert_eq!(got.len(), 3);
        let got = rows(
            &b,
            "filter @logStream = \"s1\" | fields @ingestionTime, policies.0",
        )
        .await;
        assert_eq!(
            got,
            vec![pairs(&[("@ingestionTime", "2023-11-14 22:13:51.000")])]
        );
        let got = rows(
            &b,
            "filter requestId = \"req-3\" | fields policies.0, stream",
        )
        .await;
        assert_eq!(
            got,
            vec![pairs(&[("policies.0", "pii:EMAIL"), ("stream", "0")])]
        );
    }

    #[tokio::test]
    async fn statistics_limits_and_cancel() {
        let (dir, b) = fixture().await;
        let res = b
            .run(
                &QueryRequest::new("filter userSub = \"user-2\"", TimeRange::all()),
                &CancelToken::new(),
            )
            .await
            .unwrap();
        // Push-down: only user-2's three events are read.
        assert_eq!(res.statistics.records_scanned, 3.0);
        assert_eq!(res.statistics.records_matched, 3.0);
        assert!(res.statistics.bytes_scanned > 0.0);

        let range = TimeRange {
            start_ms: 1_700_000_000_000 + 60_000,
            end_ms: 1_700_000_000_000 + 120_000,
        };
        let res = b
            .run(
                &QueryRequest::new("stats count(*)", range),
                &CancelToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(res.results[0][0].value, "2");

        let small = SqliteInsights::with_limits(
            &dir.path().join("audit.db"),
            Limits {
                max_scanned: 5,
                ..Limits::default()
            },
        );
        let err = small
            .run(
                &QueryRequest::new("stats count(*)", TimeRange::all()),
                &CancelToken::new(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, InsightsError::ScanLimit { limit: 5 }),
            "{err}"
        );

        let cancel = CancelToken::new();
        cancel.cancel();
        let mut many = Vec::new();
        let store = SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap();
        for i in 0..2000 {
            many.push(LogEventRow {
                timestamp: i,
                ingestion_time: i,
                log_group: "g".into(),
                log_stream: "s".into(),
                message: "x".into(),
                user_sub: None,
                feature: None,
                request_id: None,
            });
        }
        store.import_log_events(many).await.unwrap();
        let res = b
            .run(
                &QueryRequest::new("stats count(*)", TimeRange::all()),
                &cancel,
            )
            .await
            .unwrap();
        assert_eq!(res.status, QueryStatus::Cancelled);
        let mut req = QueryRequest::new("stats count(*)", TimeRange::all());
        req.timeout = Some(Duration::ZERO);
        let res = b.run(&req, &CancelToken::new()).await.unwrap();
        assert_eq!(res.status, QueryStatus::Timeout);
    }
}
