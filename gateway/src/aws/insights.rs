//! Logs Insights on AWS: [`CloudWatchInsights`] runs the SOC's queries on CloudWatch Logs
//! Insights behind the same [`InsightsBackend`] edge the embedded engine fills, and
//! [`backend_for`] picks one of the two from `backend`.
//!
//! One query is StartQuery (the text as is: CloudWatch runs the same language) over the
//! configured log group, then GetQueryResults polled with a growing delay until the query ends,
//! the caller cancels (→ StopQuery) or the deadline passes (→ StopQuery, status `Timeout`). While
//! it runs, `statistics.recordsScanned` is reported through the [`CancelToken`]. Choices:
//!
//! - The text is parsed locally first, so a syntax error names its line and column without a
//!   round trip or a slot of the account's concurrent queries. Commands the embedded engine
//!   cannot run (`pattern`, `diff`, `SOURCE`, …) still parse, and CloudWatch runs them.
//! - The time range: [`TimeRange`] is inclusive milliseconds; StartQuery takes inclusive epoch
//!   seconds (A18). The range is widened to whole seconds (`floor(start / 1000)`,
//!   `floor(end / 1000)`), the exact inverse of [`TimeRange::from_secs`]; times before 1970
//!   are clamped to 0 (a range wholly before it is empty and never sent).
//! - Rows: the request's limit (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`], StartQuery's
//!   own maximum) is sent as `limit`; completed results are read in GetQueryResults pages of at
//!   most 10,000 rows (`nextToken`), never more than the limit, and never more than
//!   [`PollLimits::max_result_bytes`] in total. `@ptr` (a record pointer for GetLogRecord) is
//!   dropped; a field without a value is omitted (A3).
//! - Errors never carry event contents: service messages are bounded and name only the query,
//!   parameters or resources. A query that ends `Cancelled` or `Timeout` is a result with that
//!   status (like the embedded engine's); `Failed`, `Unknown` and service errors are
//!   [`InsightsError`]s: a rejected query (MalformedQueryException, with its line and column),
//!   too many concurrent queries (LimitExceededException) and refused parameters
//!   (InvalidParameterException) as query errors the analyst can act on; a missing log group or
//!   an unreachable service as store errors (the console logs those and shows a generic line).
//! - A query abandoned mid-way (its future dropped, or an error while polling) is stopped on a
//!   background task, so it does not hold one of the account's concurrent query slots.
//!
//! The SDK client is made by [`super::sdk_config`] and [`super::Clients`], lazily on the first
//! query when built from the configuration (the console builds its backends synchronously).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput;
use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryError;
use aws_sdk_cloudwatchlogs::types::QueryStatus as SdkStatus;
use tokio::sync::OnceCell;

use super::describe;
use crate::config::{AwsConfig, Backend, Config};
use crate::insights::store::SqliteInsights;
use crate::insights::{
    CancelToken, DEFAULT_LIMIT, InsightsBackend, InsightsError, MAX_LIMIT, QueryRequest,
    QueryResults, QueryStatistics, QueryStatus, ResultField, ResultRow, TimeRange,
};

/// StartQuery's longest query string, in characters.
pub const MAX_QUERY_CHARS: usize = 10_000;
/// Rows one GetQueryResults page holds at most.
pub const PAGE_ROWS: usize = 10_000;
/// GetQueryResults pages read for one query at most (100,000 rows in pages of 500 or more).
const MAX_PAGES: usize = 200;
/// Log groups one StartQuery may name.
pub const MAX_LOG_GROUPS: usize = 50;
/// The latest second StartQuery is asked about (9999-12-31T23:59:59Z).
const MAX_EPOCH_SECS: i64 = 253_402_300_799;
/// How often a wait between polls looks at the cancel token.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// How a query is polled and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollLimits {
    /// Wait before the first GetQueryResults...
    pub first_poll: Duration,
    /// ...growing by half each poll up to this (GetQueryResults is rate limited per account).
    pub max_poll: Duration,
    /// Default deadline (a request may ask for another); the query is stopped when it passes.
    pub timeout: Duration,
    /// Bytes of field names and values kept from one query's results.
    pub max_result_bytes: usize,
}

impl Default for PollLimits {
    fn default() -> PollLimits {
        PollLimits {
            first_poll: Duration::from_millis(250),
            max_poll: Duration::from_secs(2),
            timeout: Duration::from_secs(15 * 60),
            max_result_bytes: 64 << 20,
        }
    }
}

/// Where the SDK client comes from.
#[derive(Debug)]
enum ClientSource {
    /// Made on first use from `[aws]` (`None`: the section is missing).
    Config(Option<Box<AwsConfig>>),
    Given,
}

/// Logs Insights on CloudWatch Logs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CloudWatchInsights {
    client: Arc<OnceCell<aws_sdk_cloudwatchlogs::Client>>,
    source: Arc<ClientSource>,
    log_groups: Arc<[String]>,
    limits: PollLimits,
}

/// The Insights backend `config.backend` names: CloudWatch Logs Insights over `[aws]
/// log_group` on `aws`, the embedded engine over `embedded_db` (normally
/// `<data_dir>/audit.db`) otherwise.
pub fn backend_for(config: &Config, embedded_db: &Path) -> Arc<dyn InsightsBackend> {
    match config.backend {
        Backend::Aws => Arc::new(CloudWatchInsights::from_config(config)),
        Backend::Embedded => Arc::new(SqliteInsights::new(embedded_db)),
    }
}

impl CloudWatchInsights {
    /// Query `log_groups` (1 to [`MAX_LOG_GROUPS`]) with `client`.
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, log_groups: Vec<String>) -> Self {
        CloudWatchInsights {
            client: Arc::new(OnceCell::new_with(Some(client))),
            source: Arc::new(ClientSource::Given),
            log_groups: log_groups.into(),
            limits: PollLimits::default(),
        }
    }

    /// Query `[aws] log_group`; the client is made on the first query (region, endpoint
    /// override, timeouts and the default credential chain, as every other AWS backend).
    pub fn from_config(config: &Config) -> Self {
        let aws = config.aws.clone();
        let log_groups: Vec<String> = aws.iter().map(|a| a.log_group.clone()).collect();
        CloudWatchInsights {
            client: Arc::new(OnceCell::new()),
            source: Arc::new(ClientSource::Config(aws.map(Box::new))),
            log_groups: log_groups.into(),
            limits: PollLimits::default(),
        }
    }

    pub fn with_limits(mut self, limits: PollLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The log groups every query covers.
    pub fn log_groups(&self) -> &[String] {
        &self.log_groups
    }

    async fn client(&self) -> Result<&aws_sdk_cloudwatchlogs::Client, InsightsError> {
        let aws = match &*self.source {
            ClientSource::Config(Some(aws)) => aws,
            ClientSource::Config(None) => {
                return Err(InsightsError::Store(
                    "backend = \"aws\" needs an [aws] section".into(),
                ));
            }
            ClientSource::Given => {
                return self
                    .client
                    .get()
                    .ok_or_else(|| InsightsError::Store("no CloudWatch Logs client".into()));
            }
        };
        Ok(self
            .client
            .get_or_init(|| async {
                let sdk = super::sdk_config(aws, None).await;
                super::Clients::new(&sdk, aws).logs
            })
            .await)
    }
}

/// StartQuery's inclusive epoch seconds for an inclusive millisecond range, or `None` when the
/// range lies wholly before 1970 or after 9999 (nothing to query).
pub fn query_seconds(range: TimeRange) -> Option<(i64, i64)> {
    let start = range.start_ms.div_euclid(1000).max(0);
    let end = range.end_ms.div_euclid(1000).min(MAX_EPOCH_SECS);
    (range.end_ms >= 0 && start <= MAX_EPOCH_SECS && start <= end).then_some((start, end))
}

/// 1-based line and column (in characters) of character `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let (mut line, mut column) = (1, 1);
    for c in text.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

fn start_error(
    query: &str,
    err: &aws_sdk_cloudwatchlogs::error::SdkError<StartQueryError>,
) -> InsightsError {
    use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
    let Some(service) = err.as_service_error() else {
        return InsightsError::Store(describe("StartQuery", err));
    };
    let message = bounded(service.message().unwrap_or(""), 200);
    match service {
        StartQueryError::MalformedQueryException(e) => {
            let compile = e.query_compile_error();
            let detail = compile
                .and_then(|c| c.message())
                .map(|m| bounded(m, 200))
                .filter(|m| !m.is_empty())
                .unwrap_or(if message.is_empty() {
                    "the query is not valid"
                } else {
                    message
                });
            let at = compile
                .and_then(|c| c.location())
                .and_then(|l| l.start_char_offset())
                .and_then(|o| usize::try_from(o).ok())
                .map(|o| {
                    let (line, column) = line_column(query, o);
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            InsightsError::Plan(format!(
                "CloudWatch Logs Insights rejected the query{at}: {detail}"
            ))
        }
        StartQueryError::LimitExceededException(_) => InsightsError::Plan(
            "CloudWatch Logs is already running as many Insights queries as this account may \
             run at once (LimitExceededException); wait for one to finish or stop one, then try \
             again"
                .into(),
        ),
        StartQueryError::InvalidParameterException(_) => InsightsError::Plan(format!(
            "CloudWatch Logs refused the query's parameters (InvalidParameterException: \
             {message}); check the time range and the log group"
        )),
        StartQueryError::ResourceNotFoundException(_) => InsightsError::Store(format!(
            "a log group to query does not exist (ResourceNotFoundException: {message})"
        )),
        _ => InsightsError::Store(describe("StartQuery", err)),
    }
}

fn statistics(out: &GetQueryResultsOutput) -> QueryStatistics {
    out.statistics()
        .map(|s| QueryStatistics {
            records_matched: s.records_matched(),
            records_scanned: s.records_scanned(),
            bytes_scanned: s.bytes_scanned(),
        })
        .unwrap_or_default()
}

/// Rows of one page into `rows` (at most `limit` in all): `@ptr` and valueless fields dropped.
fn take_rows(
    out: &GetQueryResultsOutput,
    rows: &mut Vec<ResultRow>,
    bytes: &mut usize,
    limit: usize,
    max_bytes: usize,
) -> Result<(), InsightsError> {
    for page_row in out.results() {
        if rows.len() >= limit {
            break;
        }
        let mut row: ResultRow = Vec::with_capacity(page_row.len());
        for f in page_row {
            let (Some(field), Some(value)) = (f.field(), f.value()) else {
                continue;
            };
            if field == "@ptr" {
                continue;
            }
            *bytes = bytes.saturating_add(field.len() + value.len());
            if *bytes > max_bytes {
                return Err(InsightsError::Plan(format!(
                    "the results are larger than {} MiB; ask for fewer rows or fields",
                    max_bytes >> 20
                )));
            }
            row.push(ResultField {
                field: field.to_string(),
                value: value.to_string(),
            });
        }
        rows.push(row);
    }
    Ok(())
}

/// Stops a started query when dropped armed: a query abandoned by an error or a dropped future
/// must not keep running (and holding a concurrent-query slot) until CloudWatch times it out.
struct StopOnDrop {
    client: aws_sdk_cloudwatchlogs::Client,
    query_id: Option<String>,
}

impl StopOnDrop {
    /// The query ended by itself (or was stopped already): nothing to do on drop.
    fn disarm(&mut self) {
        self.query_id = None;
    }

    /// Stop it now and wait for the answer.
    async fn stop(&mut self) {
        if let Some(id) = self.query_id.take() {
            stop_query(&self.client, &id).await;
        }
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.query_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("an abandoned Insights query could not be stopped (no runtime)");
            return;
        };
        let client = self.client.clone();
        // Best effort, not a must-happen task: the query ends on its own at CloudWatch's limit.
        runtime.spawn(async move { stop_query(&client, &id).await });
    }
}

async fn stop_query(client: &aws_sdk_cloudwatchlogs::Client, query_id: &str) {
    match client.stop_query().query_id(query_id).send().await {
        Ok(out) if out.success() => {}
        // It ended in the meantime (the service answers "not running").
        Ok(_) => tracing::debug!("StopQuery: the query had already ended"),
        Err(e) if super::error_code(&e) == Some("InvalidParameterException") => {
            tracing::debug!(error = %describe("StopQuery", &e), "the query had already ended");
        }
        Err(e) => {
            tracing::warn!(error = %describe("StopQuery", &e), "could not stop an Insights query")
        }
    }
}

/// Sleep `delay`, waking early when the query is cancelled or the deadline passes.
async fn wait(delay: Duration, cancel: &CancelToken, deadline: Instant) {
    let until = (Instant::now() + delay).min(deadline);
    while !cancel.is_cancelled() {
        let now = Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep((until - now).min(CANCEL_CHECK)).await;
    }
}

fn ended(status: QueryStatus, statistics: QueryStatistics) -> QueryResults {
    QueryResults {
        results: Vec::new(),
        statistics,
        status,
    }
}

#[async_trait]
impl InsightsBackend for CloudWatchInsights {
    async fn run(
        &self,
        request: &QueryRequest,
        cancel: &CancelToken,
    ) -> Result<QueryResults, InsightsError> {
        let started = Instant::now();
        let deadline = started + request.timeout.unwrap_or(self.limits.timeout);
        if request.range.start_ms > request.range.end_ms {
            return Err(InsightsError::Range("the start is after the end".into()));
        }
        if request.query.chars().count() > MAX_QUERY_CHARS {
            return Err(InsightsError::Plan(format!(
                "the query is longer than {MAX_QUERY_CHARS} characters (CloudWatch's limit)"
            )));
        }
        crate::insights::parse(&request.query)?;
        let client = self.client().await?;
        if self.log_groups.is_empty() || self.log_groups.len() > MAX_LOG_GROUPS {
            return Err(InsightsError::Store(format!(
                "a query needs 1 to {MAX_LOG_GROUPS} log groups, not {}",
                self.log_groups.len()
            )));
        }
        let Some((start_secs, end_secs)) = query_seconds(request.range) else {
            return Ok(ended(QueryStatus::Complete, QueryStatistics::default()));
        };
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);

        let started_query = client
            .start_query()
            .set_log_group_names(Some(self.log_groups.to_vec()))
            .start_time(start_secs)
            .end_time(end_secs)
            .query_string(&request.query)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| start_error(&request.query, &e))?;
        let query_id = started_query
            .query_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| InsightsError::Store("StartQuery answered without a query id".into()))?
            .to_string();
        let mut guard = StopOnDrop {
            client: client.clone(),
            query_id: Some(query_id.clone()),
        };

        let mut delay = self.limits.first_poll;
        let mut last = QueryStatistics::default();
        let out = loop {
            wait(delay, cancel, deadline).await;
            if cancel.is_cancelled() {
                guard.stop().await;
                return Ok(ended(QueryStatus::Cancelled, last));
            }
            if Instant::now() >= deadline {
                guard.stop().await;
                return Ok(ended(QueryStatus::Timeout, last));
            }
            let out = client
                .get_query_results()
                .query_id(&query_id)
                .send()
                .await
                .map_err(|e| InsightsError::Store(describe("GetQueryResults", &e)))?;
            last = statistics(&out);
            cancel.set_scanned(last.records_scanned.max(0.0) as u64);
            match out.status() {
                Some(SdkStatus::Scheduled | SdkStatus::Running) => {
                    delay = (delay + delay / 2).min(self.limits.max_poll);
                }
                Some(SdkStatus::Complete) => break out,
                Some(SdkStatus::Cancelled) => {
                    guard.disarm();
                    return Ok(ended(QueryStatus::Cancelled, last));
                }
                Some(SdkStatus::Timeout) => {
                    guard.disarm();
                    return Ok(ended(QueryStatus::Timeout, last));
                }
                Some(SdkStatus::Failed) => {
                    guard.disarm();
                    return Err(InsightsError::Plan(
                        "CloudWatch Logs Insights ended the query with status Failed; check the \
                         query and narrow the time range"
                            .into(),
                    ));
                }
                other => {
                    let status = other.map_or("none", |s| s.as_str());
                    return Err(InsightsError::Store(format!(
                        "GetQueryResults answered with status {:?}",
                        bounded(status, 40)
                    )));
                }
            }
        };
        guard.disarm();

        let max_bytes = self.limits.max_result_bytes;
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        take_rows(&out, &mut rows, &mut bytes, limit, max_bytes)?;
        let mut token = out.next_token().map(str::to_string);
        // Every page must add rows and bring a new token; this bounds a service that keeps
        // answering with fresh tokens anyway.
        let mut pages_left = MAX_PAGES;
        while let Some(t) = token.take().filter(|t| !t.is_empty()) {
            if rows.len() >= limit || pages_left == 0 || Instant::now() >= deadline {
                break;
            }
            pages_left -= 1;
            let page = client
                .get_query_results()
                .query_id(&query_id)
                .next_token(&t)
                .max_items(i32::try_from((limit - rows.len()).min(PAGE_ROWS)).unwrap_or(1))
                .send()
                .await
                .map_err(|e| InsightsError::Store(describe("GetQueryResults", &e)))?;
            let before = rows.len();
            take_rows(&page, &mut rows, &mut bytes, limit, max_bytes)?;
            token = page.next_token().filter(|n| *n != t).map(str::to_string);
            if rows.len() == before {
                break;
            }
        }
        Ok(QueryResults {
            results: rows,
            statistics: last,
            status: QueryStatus::Complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_become_inclusive_seconds() {
        // The exact inverse of from_secs.
        let r = TimeRange::from_secs(1_700_000_000, 1_700_000_060);
        assert_eq!(query_seconds(r), Some((1_700_000_000, 1_700_000_060)));
        // Sub-second bounds widen to whole seconds.
        let r = TimeRange {
            start_ms: 1_700_000_000_500,
            end_ms: 1_700_000_060_001,
        };
        assert_eq!(query_seconds(r), Some((1_700_000_000, 1_700_000_060)));
        // Everything: clamped to what StartQuery takes.
        assert_eq!(query_seconds(TimeRange::all()), Some((0, MAX_EPOCH_SECS)));
        // One millisecond: its second.
        let r = TimeRange {
            start_ms: 5_999,
            end_ms: 5_999,
        };
        assert_eq!(query_seconds(r), Some((5, 5)));
        // Wholly before 1970: nothing to ask.
        let r = TimeRange {
            start_ms: -10_000,
            end_ms: -1,
        };
        assert_eq!(query_seconds(r), None);
        let r = TimeRange {
            start_ms: -10_000,
            end_ms: 0,
        };
        assert_eq!(query_seconds(r), Some((0, 0)));
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let q = "fields a\n| filter (\n| x";
        assert_eq!(line_column(q, 0), (1, 1));
        assert_eq!(line_column(q, 9), (2, 1));
        assert_eq!(line_column(q, 18), (2, 10));
        assert_eq!(line_column("é\nb", 2), (2, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn bounded_cuts_at_a_character_boundary() {
        assert_eq!(bounded("ééé", 3), "é");
        assert_eq!(bounded("abc", 10), "abc");
    }

    #[tokio::test]
    async fn a_missing_aws_section_is_a_clear_error_before_any_call() {
        let config = Config {
            backend: Backend::Aws,
            ..Config::default()
        };
        let backend = CloudWatchInsights::from_config(&config);
        let err = backend
            .run(
                &QueryRequest::new("fields @message", TimeRange::all()),
                &CancelToken::new(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("[aws]"), "{err}");
    }
}
