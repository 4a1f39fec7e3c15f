//! A wire-level fake of CloudWatch Logs Insights for the black-box tests (moto accepts
//! StartQuery but does not run queries): an axum server on 127.0.0.1 and port 0 speaking
//! CloudWatch Logs' awsJson1_1 protocol (`POST /`, `X-Amz-Target: Logs_20140328.<Operation>`,
//! JSON bodies, errors as HTTP 400 with `{"__type": ..., "message": ...}`) for `StartQuery`,
//! `GetQueryResults` and `StopQuery`, with the shapes of botocore's `logs` 2014-03-28 model.
//!
//! Queries really run: StartQuery checks the request as the service does (exactly one of
//! `logGroupName`/`logGroupNames`/`logGroupIdentifiers`, known groups, `startTime` ≤ `endTime`,
//! `limit` 1..=100,000, query ≤ 10,000 characters), parses the text with the project's own
//! parser (a syntax error is a `MalformedQueryException` whose `queryCompileError.location`
//! points at it), then runs it with the project's embedded engine over the events the test gave
//! for those groups, in the inclusive second range `[startTime, endTime]`. GetQueryResults then
//! plays the query's life: `Scheduled` for [`FakeOptions::scheduled_polls`] polls, `Running`
//! with growing `recordsScanned` (and partial rows) for [`FakeOptions::running_polls`], then
//! `Complete` (or [`FakeOptions::final_status`]) with the engine's rows, each non-`stats` row
//! with an `@ptr`, in pages of at most `maxItems` and [`FakeOptions::page_rows`] linked by
//! `nextToken`. StopQuery cancels a scheduled or running query (`Cancelled`); a query that has
//! ended answers `InvalidParameterException`. More than [`FakeOptions::max_concurrent`]
//! scheduled or running queries answer `LimitExceededException`, as CloudWatch's concurrency
//! quota does. Every request is recorded ([`InsightsFake::requests`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gateway::audit::sqlite::SqliteAuditStore;
use gateway::insights::import::{ImportOptions, convert_line};
use gateway::insights::store::SqliteInsights;
use gateway::insights::{
    CancelToken, InsightsBackend, InsightsError, QueryRequest, QueryResults, TimeRange,
};
use serde_json::{Value, json};

/// One log event in a log group.
#[derive(Debug, Clone)]
pub struct FakeEvent {
    pub log_group: String,
    pub log_stream: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

impl FakeEvent {
    /// An event as the gateway writes audit events to CloudWatch Logs: the JSON of `event`.
    pub fn audit(log_group: &str, event: &gateway::audit::AuditEvent) -> FakeEvent {
        FakeEvent {
            log_group: log_group.into(),
            log_stream: "gateway".into(),
            timestamp: event.timestamp,
            message: serde_json::to_string(event).expect("audit event json"),
        }
    }
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// GetQueryResults calls answered `Scheduled` first...
    pub scheduled_polls: u32,
    /// ...then `Running`, with growing `recordsScanned`...
    pub running_polls: u32,
    /// ...then this status (`Complete` unless set: `Failed`, `Timeout`, `Unknown`, …).
    pub final_status: Option<&'static str>,
    /// Scheduled or running queries allowed at once (CloudWatch's quota is per account).
    pub max_concurrent: usize,
    /// Rows a GetQueryResults page holds at most (CloudWatch's cap is 10,000; `maxItems`
    /// may ask for fewer).
    pub page_rows: usize,
    /// Log groups that exist without events.
    pub empty_groups: Vec<String>,
}

impl Default for FakeOptions {
    fn default() -> FakeOptions {
        FakeOptions {
            scheduled_polls: 1,
            running_polls: 2,
            final_status: None,
            max_concurrent: 30,
            page_rows: 10_000,
            empty_groups: Vec::new(),
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    /// The operation, e.g. `StartQuery`.
    pub operation: String,
    pub body: Value,
    pub at: Instant,
}

struct Query {
    results: QueryResults,
    aggregated: bool,
    polls: u32,
    /// `Scheduled`, `Running`, or the final status once reached.
    status: &'static str,
    /// Records scanned when stopped.
    stopped_at: Option<f64>,
}

struct Inner {
    events: Vec<FakeEvent>,
    groups: BTreeSet<String>,
    options: FakeOptions,
    queries: HashMap<String, Query>,
    requests: Vec<FakeRequest>,
    next_id: u64,
}

type Shared = Arc<(Mutex<Inner>, tempfile::TempDir)>;

/// The running fake; the server stops when this is dropped.
pub struct InsightsFake {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub base: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl InsightsFake {
    /// Serve `events` (their log groups exist, plus `options.empty_groups`).
    pub async fn start(events: Vec<FakeEvent>, options: FakeOptions) -> InsightsFake {
        let mut groups: BTreeSet<String> = events.iter().map(|e| e.log_group.clone()).collect();
        groups.extend(options.empty_groups.iter().cloned());
        let inner = Inner {
            events,
            groups,
            options,
            queries: HashMap::new(),
            requests: Vec::new(),
            next_id: 0,
        };
        let shared: Shared = Arc::new((Mutex::new(inner), tempfile::tempdir().expect("tempdir")));
        let app = axum::Router::new()
            .route("/", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind insights fake");
        let addr = listener.local_addr().expect("fake address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        InsightsFake {
            base: format!("http://{addr}"),
            shared,
            task,
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.lock().requests.clone()
    }

    /// The bodies of the requests for `operation`, in order.
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.operation == operation)
            .map(|r| r.body.clone())
            .collect()
    }

    /// Wait until `n` requests for `operation` have arrived; panics after `timeout`.
    pub async fn wait_for(&self, operation: &str, n: usize, timeout: Duration) {
        let until = Instant::now() + timeout;
        while self.bodies(operation).len() < n {
            assert!(
                Instant::now() < until,
                "the fake saw {} {operation} requests, not {n}: {:?}",
                self.bodies(operation).len(),
                self.requests()
                    .iter()
                    .map(|r| r.operation.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The current status of query `id` as the fake sees it.
    pub fn status(&self, id: &str) -> Option<&'static str> {
        self.lock().queries.get(id).map(|q| q.status)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.0.lock().expect("fake lock")
    }
}

impl Drop for InsightsFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(kind: &str, message: &str, extra: Option<(&str, Value)>) -> Response {
    let mut body = json!({"__type": kind, "message": message});
    if let Some((k, v)) = extra {
        body[k] = v;
    }
    let status = if kind == "ServiceUnavailableException" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(operation) = target.strip_prefix("Logs_20140328.") else {
        return error("UnknownOperationException", "no X-Amz-Target", None);
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                "SerializationException",
                "the body is not a JSON object",
                None,
            );
        }
    };
    shared
        .0
        .lock()
        .expect("fake lock")
        .requests
        .push(FakeRequest {
            operation: operation.to_string(),
            body: body.clone(),
            at: Instant::now(),
        });
    match operation {
        "StartQuery" => start_query(&shared, &body).await,
        "GetQueryResults" => get_query_results(&shared, &body),
        "StopQuery" => stop_query(&shared, &body),
        _ => error(
            "UnknownOperationException",
            "the insights fake serves StartQuery, GetQueryResults and StopQuery",
            None,
        ),
    }
}

/// The character offset of 1-based (line, column) in `text`.
fn char_offset(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1);
        }
        offset += l.chars().count() + 1;
    }
    offset
}

async fn start_query(shared: &Shared, body: &Value) -> Response {
    let Some(query) = body["queryString"].as_str() else {
        return error("InvalidParameterException", "queryString is required", None);
    };
    if query.chars().count() > 10_000 {
        return error(
            "InvalidParameterException",
            "queryString is longer than 10000 characters",
            None,
        );
    }
    let (Some(start), Some(end)) = (body["startTime"].as_i64(), body["endTime"].as_i64()) else {
        return error(
            "InvalidParameterException",
            "startTime and endTime are required",
            None,
        );
    };
    if start < 0 || end < 0 {
        return error(
            "InvalidParameterException",
            "startTime and endTime must not be negative",
            None,
        );
    }
    if end < start {
        return error(
            "InvalidParameterException",
            "End time should not be before the start time",
            None,
        );
    }
    let limit = body["limit"].as_i64().unwrap_or(10_000);
    if !(1..=100_000).contains(&limit) {
        return error(
            "InvalidParameterException",
            "limit must be between 1 and 100000",
            None,
        );
    }
    let named: Vec<Vec<String>> = ["logGroupName", "logGroupNames", "logGroupIdentifiers"]
        .iter()
        .filter_map(|k| match &body[*k] {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(a) => Some(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    let groups = match named.as_slice() {
        [one] if !one.is_empty() && one.len() <= 50 => one.clone(),
        _ => {
            return error(
                "InvalidParameterException",
                "exactly one of logGroupName, logGroupNames and logGroupIdentifiers (1 to 50 \
                 groups) is required",
                None,
            );
        }
    };

    if let Err(e) = gateway::insights::parse(query) {
        let start_offset = char_offset(query, e.line, e.column);
        return error(
            "MalformedQueryException",
            "Query is malformed",
            Some((
                "queryCompileError",
                json!({
                    "location": {"startCharOffset": start_offset, "endCharOffset": start_offset + 1},
                    "message": format!("unexpected symbol: expected {}", e.expected),
                }),
            )),
        );
    }
    let aggregated = gateway::insights::parse(query).is_ok_and(|q| {
        q.commands
            .iter()
            .any(|c| matches!(c, gateway::insights::ast::Command::Stats { .. }))
    });

    // Admission and the events to query, under the lock; the run itself outside it.
    let (rows, path) = {
        let mut inner = shared.0.lock().expect("fake lock");
        if let Some(missing) = groups.iter().find(|g| !inner.groups.contains(*g)) {
            return error(
                "ResourceNotFoundException",
                &format!("Log group {missing} does not exist"),
                None,
            );
        }
        let active = inner
            .queries
            .values()
            .filter(|q| matches!(q.status, "Scheduled" | "Running"))
            .count();
        if active >= inner.options.max_concurrent {
            return error(
                "LimitExceededException",
                &format!(
                    "Account maximum query concurrency limit of [{}] reached.",
                    inner.options.max_concurrent
                ),
                None,
            );
        }
        inner.next_id += 1;
        let path = shared.1.path().join(format!("query-{}.db", inner.next_id));
        let opts = ImportOptions {
            log_group: String::new(),
            log_stream: String::new(),
        };
        let rows: Vec<_> = inner
            .events
            .iter()
            .filter(|e| groups.contains(&e.log_group))
            .map(|e| {
                let line = json!({
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "logGroup": e.log_group,
                    "logStreamName": e.log_stream,
                })
                .to_string();
                convert_line(&line, &opts).expect("a fake event converts")
            })
            .collect();
        (rows, path)
    };
    let store = SqliteAuditStore::open(&path).expect("fake store");
    store.import_log_events(rows).await.expect("fake import");
    drop(store);
    let request = QueryRequest {
        query: query.to_string(),
        range: TimeRange::from_secs(start, end),
        limit: Some(usize::try_from(limit).unwrap_or(10_000)),
        timeout: None,
    };
    let results = match SqliteInsights::new(&path)
        .run(&request, &CancelToken::new())
        .await
    {
        Ok(r) => r,
        Err(e @ (InsightsError::Plan(_) | InsightsError::Unsupported(_))) => {
            return error(
                "MalformedQueryException",
                "Query is malformed",
                Some(("queryCompileError", json!({"message": e.to_string()}))),
            );
        }
        Err(e) => return error("ServiceUnavailableException", &e.to_string(), None),
    };
    let mut inner = shared.0.lock().expect("fake lock");
    let id = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        inner.next_id,
        std::process::id()
    );
    inner.queries.insert(
        id.clone(),
        Query {
            results,
            aggregated,
            polls: 0,
            status: "Scheduled",
            stopped_at: None,
        },
    );
    ok(json!({"queryId": id}))
}

fn row_json(row: &[gateway::insights::ResultField], ptr: Option<String>) -> Value {
    let mut cells: Vec<Value> = row
        .iter()
        .map(|f| json!({"field": f.field, "value": f.value}))
        .collect();
    if let Some(p) = ptr {
        cells.push(json!({"field": "@ptr", "value": p}));
    }
    Value::Array(cells)
}

fn get_query_results(shared: &Shared, body: &Value) -> Response {
    let Some(id) = body["queryId"].as_str() else {
        return error("InvalidParameterException", "queryId is required", None);
    };
    let mut inner = shared.0.lock().expect("fake lock");
    let options = inner.options.clone();
    let Some(q) = inner.queries.get_mut(id) else {
        return error(
            "ResourceNotFoundException",
            "The specified query does not exist",
            None,
        );
    };
    let total = &q.results.statistics;
    if matches!(q.status, "Scheduled" | "Running") {
        q.polls += 1;
        q.status = if q.polls <= options.scheduled_polls {
            "Scheduled"
        } else if q.polls <= options.scheduled_polls + options.running_polls {
            "Running"
        } else {
            options.final_status.unwrap_or("Complete")
        };
    }
    let ptr = |i: usize| (!q.aggregated).then(|| format!("CmQKIgofZmFrZS1wdHItAAAA{id}-{i}"));
    let (rows, stats, next): (Vec<Value>, Value, Option<String>) = match q.status {
        "Scheduled" => (Vec::new(), json!({}), None),
        "Running" => {
            let k = q.polls - options.scheduled_polls;
            let share = f64::from(k) / f64::from(options.running_polls + 1);
            let shown = q.results.results.len() * k as usize / (options.running_polls as usize + 1);
            let rows = q.results.results[..shown]
                .iter()
                .enumerate()
                .map(|(i, r)| row_json(r, ptr(i)))
                .collect();
            let stats = json!({
                "recordsMatched": (total.records_matched * share).floor(),
                "recordsScanned": (total.records_scanned * share).floor(),
                "bytesScanned": (total.bytes_scanned * share).floor(),
            });
            (rows, stats, None)
        }
        "Cancelled" => {
            let scanned = q.stopped_at.unwrap_or(0.0);
            (Vec::new(), json!({"recordsScanned": scanned}), None)
        }
        "Complete" => {
            let offset: usize = match body["nextToken"].as_str() {
                Some(t) => match t.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                    Some(n) => n,
                    None => return error("InvalidParameterException", "bad nextToken", None),
                },
                None => 0,
            };
            let page = body["maxItems"]
                .as_u64()
                .map_or(options.page_rows, |n| n as usize)
                .min(options.page_rows)
                .min(10_000);
            let all = &q.results.results;
            let end = (offset + page).min(all.len());
            let rows = all[offset.min(end)..end]
                .iter()
                .enumerate()
                .map(|(i, r)| row_json(r, ptr(offset + i)))
                .collect();
            let next = (end < all.len()).then(|| format!("page-{end}"));
            let stats = json!({
                "recordsMatched": total.records_matched,
                "recordsScanned": total.records_scanned,
                "bytesScanned": total.bytes_scanned,
            });
            (rows, stats, next)
        }
        _ => (Vec::new(), json!({"recordsScanned": 0.0}), None),
    };
    let mut answer = json!({
        "queryLanguage": "CWLI",
        "results": rows,
        "statistics": stats,
        "status": q.status,
    });
    if let Some(n) = next {
        answer["nextToken"] = Value::String(n);
    }
    ok(answer)
}

fn stop_query(shared: &Shared, body: &Value) -> Response {
    let Some(id) = body["queryId"].as_str() else {
        return error("InvalidParameterException", "queryId is required", None);
    };
    let mut inner = shared.0.lock().expect("fake lock");
    let options = inner.options.clone();
    let Some(q) = inner.queries.get_mut(id) else {
        return error(
            "ResourceNotFoundException",
            "The specified query does not exist",
            None,
        );
    };
    if !matches!(q.status, "Scheduled" | "Running") {
        return error(
            "InvalidParameterException",
            &format!("Query {id} is not running"),
            None,
        );
    }
    let k = q.polls.saturating_sub(options.scheduled_polls);
    q.stopped_at = Some(
        (q.results.statistics.records_scanned * f64::from(k)
            / f64::from(options.running_polls + 1))
        .floor(),
    );
    q.status = "Cancelled";
    ok(json!({"success": true}))
}
