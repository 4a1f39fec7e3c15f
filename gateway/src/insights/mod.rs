//! The Logs Insights engine: the SOC's query language (`../shared/reference/insights-language.md`)
//! run by the gateway itself over the embedded audit store, with the semantics decisions A1–A31.
//!
//! Shape: [`parser`] (text → [`ast::Query`], precise errors) → [`plan`] (names → slots, rules,
//! output columns, push-down) → [`exec`] (streaming stages, hash aggregation, top-k) fed by a
//! backend. [`InsightsBackend`] is the narrow edge a backend fills: [`store::SqliteInsights`] on
//! the embedded default; [`crate::aws::insights::CloudWatchInsights`] on AWS (the query text as
//! is, through StartQuery / GetQueryResults / StopQuery).
//! [`import`] loads JSON-lines exports (audit events or CloudWatch events) for offline work;
//! [`output`] prints results as a table, JSON or CSV.

pub mod ast;
pub mod command;
pub mod event;
pub mod exec;
pub mod functions;
pub mod import;
pub mod output;
pub mod parser;
pub mod plan;
pub mod store;
pub mod value;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use ast::Query;
pub use parser::{ParseError, parse};

/// Rows returned when a query has no `limit` (A27).
pub const DEFAULT_LIMIT: usize = 10_000;
/// The most rows a query may ask for.
pub const MAX_LIMIT: usize = 100_000;

/// The events a query covers: `[start_ms, end_ms]`, both ends inclusive (StartQuery's range
/// is inclusive, A18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeRange {
    /// StartQuery's epoch-second bounds; the end second is included up to its last ms.
    pub fn from_secs(start: i64, end: i64) -> TimeRange {
        TimeRange {
            start_ms: start.saturating_mul(1000),
            end_ms: end.saturating_mul(1000).saturating_add(999),
        }
    }

    /// Everything.
    pub fn all() -> TimeRange {
        TimeRange {
            start_ms: i64::MIN,
            end_ms: i64::MAX,
        }
    }
}

/// One query to run.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub query: String,
    pub range: TimeRange,
    /// Rows to return at most (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    pub limit: Option<usize>,
    /// Give up after this long (the backend's default otherwise).
    pub timeout: Option<Duration>,
}

impl QueryRequest {
    pub fn new(query: impl Into<String>, range: TimeRange) -> QueryRequest {
        QueryRequest {
            query: query.into(),
            range,
            limit: None,
            timeout: None,
        }
    }
}

/// One cell of a result row, as GetQueryResults gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultField {
    pub field: String,
    pub value: String,
}

/// One result row: its non-null fields (A3).
pub type ResultRow = Vec<ResultField>;

/// GetQueryResults' `statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatistics {
    pub records_matched: f64,
    pub records_scanned: f64,
    /// Bytes read from the store to answer the query (only the fields it needs).
    pub bytes_scanned: f64,
}

/// GetQueryResults' `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryStatus {
    Scheduled,
    Running,
    Complete,
    Failed,
    Cancelled,
    Timeout,
    Unknown,
}

/// GetQueryResults' shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResults {
    pub results: Vec<ResultRow>,
    pub statistics: QueryStatistics,
    pub status: QueryStatus,
}

/// Stops a running query; cheap to clone and share. It also carries the query's progress
/// (events read so far) from the backend to whoever watches it (the console's query manager).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: AtomicBool,
    scanned: AtomicU64,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }
    /// A backend reports how many events it has read so far.
    pub fn set_scanned(&self, events: u64) {
        self.0.scanned.store(events, Ordering::Relaxed);
    }
    /// Events read so far, as last reported by the backend.
    pub fn scanned(&self) -> u64 {
        self.0.scanned.load(Ordering::Relaxed)
    }
}

impl From<ParseError> for InsightsError {
    fn from(e: ParseError) -> InsightsError {
        InsightsError::Parse(e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    /// Not `#[source]`: the message already carries the parse error, and a chain printer
    /// (`{:#}`) would print it twice.
    #[error("query syntax, {0}")]
    Parse(ParseError),
    #[error("query: {0}")]
    Plan(String),
    #[error("{0} is not supported on the embedded backend")]
    Unsupported(String),
    #[error(
        "the query would scan more than {limit} events; narrow the time range or filter on \
         userSub, feature or requestId first"
    )]
    ScanLimit { limit: u64 },
    #[error("stats produced more than {0} groups; group by fewer or coarser fields")]
    TooManyGroups(usize),
    #[error("time range: {0}")]
    Range(String),
    #[error("insights store: {0}")]
    Store(String),
}

/// What a Logs Insights backend does: run one query over a time range until it completes,
/// times out or is cancelled. The embedded default is [`store::SqliteInsights`]; the AWS
/// backend sends the text to StartQuery and polls GetQueryResults behind the same call.
#[async_trait]
pub trait InsightsBackend: Send + Sync {
    async fn run(
        &self,
        request: &QueryRequest,
        cancel: &CancelToken,
    ) -> Result<QueryResults, InsightsError>;
}
