//! The [`AuditStore`] on CloudWatch Logs.
//!
//! Writing, `audit_sink = "cloudwatch"`: one background task owns PutLogEvents. `record` hands
//! its event to the task and waits for the answer, so an event is acknowledged only once
//! CloudWatch has accepted it; while one PutLogEvents is in flight the next events queue up
//! and go out together (group commit). Batches respect the service limits ([`plan_batches`]):
//! at most 10,000 events and 1,048,576 bytes (message bytes + 26 per event), at most 24 hours
//! between the first and last event, in chronological order. Audit events go to the configured
//! stream, vault openings to `<stream>-access`. [`CloudWatchAudit::flush`] waits for everything
//! handed over so far; dropping the store lets the task drain and stop.
//!
//! Writing, `audit_sink = "stdout"` (on Lambda): one JSON line per event on stdout, flushed
//! before `record` returns; the Lambda runtime ships stdout to the function's log group.
//!
//! Reading (`find`, `accesses`, `requests_per_minute`, `usage`, `requests_by_feature`,
//! `access_log`) uses FilterLogEvents over the group. The
//! JSON filter pattern narrows the scan in AWS; every event is also checked here after parsing,
//! because emulators (moto) ignore JSON patterns. Scans are bounded by [`MAX_SCAN_PAGES`].

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::{mpsc, oneshot};

use super::{describe, error_code};
use crate::audit::rollup::{UsageBuilder, whole_minutes};
use crate::audit::{
    AccessEvent, AccessFilter, AuditError, AuditEvent, AuditStore, MAX_ACCESS_LOG, MinuteCount,
    UsageSummary,
};

/// Most events in one PutLogEvents.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Most bytes in one PutLogEvents, counting [`EVENT_OVERHEAD`] per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What CloudWatch adds to each event's message size when counting a batch.
pub const EVENT_OVERHEAD: usize = 26;
/// Longest span between the first and last event of one batch.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3_600_000;
/// Largest single event (CloudWatch's per-event limit is 256 KiB including the overhead).
pub const MAX_EVENT_BYTES: usize = 256 * 1024 - EVENT_OVERHEAD;
/// Events waiting for the writer before `record` waits for room.
const QUEUE: usize = 65_536;
/// Most FilterLogEvents pages one read walks.
pub const MAX_SCAN_PAGES: usize = 200;

/// Which stream an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Audit,
    Access,
}

struct Pending {
    stream: Stream,
    timestamp: i64,
    message: String,
    done: oneshot::Sender<Result<(), AuditError>>,
}

enum Msg {
    Event(Pending),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
enum Sink {
    PutLogEvents(mpsc::Sender<Msg>),
    Stdout,
}

/// Audit and access events in one CloudWatch Logs group.
#[derive(Debug)]
pub struct CloudWatchAudit {
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
    access_stream: String,
    sink: Sink,
}

impl CloudWatchAudit {
    /// Write with batched PutLogEvents to `group`/`stream` (both created if missing), read back
    /// with FilterLogEvents. Must be called inside a tokio runtime (it starts the writer task).
    pub async fn put_log_events(
        client: aws_sdk_cloudwatchlogs::Client,
        group: &str,
        stream: &str,
    ) -> Result<CloudWatchAudit, AuditError> {
        let access_stream = format!("{stream}-access");
        for s in [stream, access_stream.as_str()] {
            ensure_stream(&client, group, s).await?;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(
            client.clone(),
            group.to_string(),
            stream.to_string(),
            access_stream.clone(),
            rx,
        ));
        Ok(CloudWatchAudit {
            client,
            group: group.to_string(),
            stream: stream.to_string(),
            access_stream,
            sink: Sink::PutLogEvents(tx),
        })
    }

    /// Write JSON lines to stdout (Lambda ships them to `group`), read back from `group`.
    pub fn stdout(client: aws_sdk_cloudwatchlogs::Client, group: &str) -> CloudWatchAudit {
        CloudWatchAudit {
            client,
            group: group.to_string(),
            stream: String::new(),
            access_stream: String::new(),
            sink: Sink::Stdout,
        }
    }

    /// Wait until every event handed over before this call has been answered.
    pub async fn flush(&self) {
        if let Sink::PutLogEvents(tx) = &self.sink {
            let (done, wait) = oneshot::channel();
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    async fn write(
        &self,
        stream: Stream,
        timestamp: i64,
        message: String,
    ) -> Result<(), AuditError> {
        if message.len() > MAX_EVENT_BYTES {
            return Err(AuditError::Store(format!(
                "audit event of {} bytes exceeds CloudWatch's {MAX_EVENT_BYTES}-byte limit",
                message.len()
            )));
        }
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{message}")
                    .and_then(|()| out.flush())
                    .map_err(|e| AuditError::Store(format!("cannot write to stdout: {e}")))
            }
            Sink::PutLogEvents(tx) => {
                let (done, wait) = oneshot::channel();
                let pending = Pending {
                    stream,
                    timestamp,
                    message,
                    done,
                };
                tx.send(Msg::Event(pending))
                    .await
                    .map_err(|_| AuditError::Store("the CloudWatch writer has stopped".into()))?;
                wait.await
                    .map_err(|_| AuditError::Store("the CloudWatch writer has stopped".into()))?
            }
        }
    }

    /// Messages in the group (optionally one stream) in `[start, end)` matching `pattern`.
    async fn scan(
        &self,
        stream: Option<&str>,
        pattern: Option<&str>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        mut each: impl FnMut(&str) -> bool,
    ) -> Result<(), AuditError> {
        let mut token: Option<String> = None;
        let mut previous: Option<String> = None;
        for _ in 0..MAX_SCAN_PAGES {
            let mut req = self
                .client
                .filter_log_events()
                .log_group_name(&self.group)
                .set_filter_pattern(pattern.map(str::to_string))
                .set_start_time(start_ms)
                .set_end_time(end_ms.map(|e| e.saturating_sub(1)))
                .set_next_token(token.take());
            if let Some(s) = stream.filter(|s| !s.is_empty()) {
                req = req.log_stream_names(s);
            }
            let page = req
                .send()
                .await
                .map_err(|e| AuditError::Store(describe("CloudWatch FilterLogEvents", &e)))?;
            for event in page.events() {
                if !each(event.message().unwrap_or("")) {
                    return Ok(());
                }
            }
            match page.next_token() {
                Some(t) if previous.as_deref() != Some(t) => {
                    previous = Some(t.to_string());
                    token = Some(t.to_string());
                }
                _ => return Ok(()),
            }
        }
        Err(AuditError::Store(format!(
            "CloudWatch scan stopped after {MAX_SCAN_PAGES} pages; narrow the time range \
             or use Logs Insights"
        )))
    }
}

/// How far a request's event may lie from the time in its (UUIDv7) id.
const ID_SKEW_MS: i64 = 3_600_000;

/// Where to look for a request's events: `None` when the id cannot be a request id (the
/// gateway's ids are UUIDs, so nothing else is scanned for, and nothing else ever reaches a
/// filter pattern); for a UUIDv7, from an hour before the time it carries.
fn search_from(request_id: &str) -> Option<Option<i64>> {
    let id = uuid::Uuid::try_parse(request_id).ok()?;
    let from = id.get_timestamp().map(|ts| {
        let (secs, nanos) = ts.to_unix();
        let ms = i64::try_from(secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
            .saturating_add(i64::from(nanos / 1_000_000));
        ms.saturating_sub(ID_SKEW_MS)
    });
    Some(from)
}

#[async_trait]
impl AuditStore for CloudWatchAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let message = serde_json::to_string(event)
            .map_err(|e| AuditError::Store(format!("cannot encode the audit event: {e}")))?;
        self.write(Stream::Audit, event.timestamp, message).await
    }

    async fn record_access(&self, event: &AccessEvent) -> Result<(), AuditError> {
        let mut value = serde_json::to_value(event)
            .map_err(|e| AuditError::Store(format!("cannot encode the access event: {e}")))?;
        // Marks access events apart from audit events when both share a stream (stdout).
        if let Some(map) = value.as_object_mut() {
            map.insert("eventType".into(), "vaultAccess".into());
        }
        self.write(Stream::Access, event.timestamp, value.to_string())
            .await
    }

    async fn find(&self, request_id: &str) -> Result<Option<AuditEvent>, AuditError> {
        let Some(from) = search_from(request_id) else {
            return Ok(None);
        };
        let until = from.map(|f| f.saturating_add(2 * ID_SKEW_MS));
        let pattern = format!("{{ $.requestId = \"{request_id}\" }}");
        let mut found = None;
        self.scan(
            Some(&self.stream),
            Some(&pattern),
            from,
            until,
            |m| match serde_json::from_str::<AuditEvent>(m) {
                Ok(e) if e.request_id == request_id && !m.contains("\"eventType\"") => {
                    found = Some(e);
                    false
                }
                _ => true,
            },
        )
        .await?;
        Ok(found)
    }

    async fn accesses(&self, request_id: &str) -> Result<Vec<AccessEvent>, AuditError> {
        let Some(from) = search_from(request_id) else {
            return Ok(Vec::new());
        };
        let pattern =
            format!("{{ $.requestId = \"{request_id}\" && $.eventType = \"vaultAccess\" }}");
        let mut out = Vec::new();
        self.scan(Some(&self.access_stream), Some(&pattern), from, None, |m| {
            if let Ok(e) = serde_json::from_str::<AccessEventLine>(m)
                && e.event_type == "vaultAccess"
                && e.event.request_id == request_id
            {
                out.push(e.event);
            }
            true
        })
        .await?;
        out.sort_by_key(|e| e.timestamp);
        Ok(out)
    }

    async fn requests_per_minute(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<MinuteCount>, AuditError> {
        let mut minutes: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        self.scan(
            Some(&self.stream),
            Some("{ $.requestId = * }"),
            Some(since_ms),
            Some(until_ms),
            |m| {
                if let Ok(e) = serde_json::from_str::<AuditEvent>(m)
                    && !m.contains("\"eventType\"")
                    && (since_ms..until_ms).contains(&e.timestamp)
                {
                    let slot = minutes.entry(e.timestamp - e.timestamp.rem_euclid(60_000));
                    let (requests, interventions) = slot.or_default();
                    *requests += 1;
                    if e.guardrail_action == "INTERVENED" {
                        *interventions += 1;
                    }
                }
                true
            },
        )
        .await?;
        Ok(minutes
            .into_iter()
            .map(|(minute, (requests, interventions))| MinuteCount {
                minute,
                requests,
                interventions,
            })
            .collect())
    }

    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        top: usize,
    ) -> Result<UsageSummary, AuditError> {
        let (since_ms, until_ms) = whole_minutes(since_ms, until_ms);
        let mut usage = UsageBuilder::new(since_ms, until_ms, top);
        self.scan(
            Some(&self.stream),
            Some("{ $.requestId = * }"),
            Some(since_ms),
            Some(until_ms),
            |m| {
                if let Ok(e) = serde_json::from_str::<AuditEvent>(m)
                    && !m.contains("\"eventType\"")
                {
                    usage.add(&e);
                }
                true
            },
        )
        .await?;
        Ok(usage.finish())
    }

    async fn requests_by_feature(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<BTreeMap<String, u64>, AuditError> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        self.scan(
            Some(&self.stream),
            Some("{ $.requestId = * }"),
            Some(since_ms),
            Some(until_ms),
            |m| {
                if let Ok(e) = serde_json::from_str::<AuditEvent>(m)
                    && !m.contains("\"eventType\"")
                    && (since_ms..until_ms).contains(&e.timestamp)
                {
                    *counts.entry(e.feature).or_default() += 1;
                }
                true
            },
        )
        .await?;
        Ok(counts)
    }

    async fn access_log(&self, filter: &AccessFilter) -> Result<Vec<AccessEvent>, AuditError> {
        let limit = filter.limit.min(MAX_ACCESS_LOG);
        let mut newest: VecDeque<AccessEvent> = VecDeque::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The actor is matched here, never put into the filter pattern.
        self.scan(
            Some(&self.access_stream),
            Some("{ $.eventType = \"vaultAccess\" }"),
            filter.since_ms,
            None,
            |m| {
                if let Ok(e) = serde_json::from_str::<AccessEventLine>(m)
                    && e.event_type == "vaultAccess"
                    && filter.since_ms.is_none_or(|s| e.event.timestamp >= s)
                    && filter.actor.as_ref().is_none_or(|a| *a == e.event.actor)
                {
                    if newest.len() == limit {
                        newest.pop_front();
                    }
                    newest.push_back(e.event);
                }
                true
            },
        )
        .await?;
        let mut out: Vec<AccessEvent> = newest.into();
        // Newest first; CloudWatch returns events in time order, ties kept in arrival order.
        out.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        Ok(out)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessEventLine {
    event_type: String,
    #[serde(flatten)]
    event: AccessEvent,
}

async fn ensure_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Result<(), AuditError> {
    let create = || {
        client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
    };
    match create().await {
        Ok(_) => return Ok(()),
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => return Ok(()),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {}
        Err(e) => {
            return Err(AuditError::Store(describe(
                "CloudWatch CreateLogStream",
                &e,
            )));
        }
    }
    // The group is missing (the deployment template creates it, with retention; a local
    // emulator may not have it).
    match client.create_log_group().log_group_name(group).send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => {}
        Err(e) => return Err(AuditError::Store(describe("CloudWatch CreateLogGroup", &e))),
    }
    match create().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => Ok(()),
        Err(e) => Err(AuditError::Store(describe(
            "CloudWatch CreateLogStream",
            &e,
        ))),
    }
}

/// Split events (already in chronological order; `(timestamp, message bytes)`) into
/// consecutive ranges that each fit one PutLogEvents.
pub fn plan_batches(events: &[(i64, usize)]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &(ts, len)) in events.iter().enumerate() {
        let size = len + EVENT_OVERHEAD;
        let full = i > start
            && (i - start >= MAX_BATCH_EVENTS
                || bytes + size > MAX_BATCH_BYTES
                || ts - events[start].0 > MAX_BATCH_SPAN_MS);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    out
}

/// The one task that calls PutLogEvents.
async fn writer(
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
    access_stream: String,
    mut rx: mpsc::Receiver<Msg>,
) {
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut audit = Vec::new();
        let mut access = Vec::new();
        let mut flushes = Vec::new();
        for m in msgs {
            match m {
                Msg::Event(p) if p.stream == Stream::Audit => audit.push(p),
                Msg::Event(p) => access.push(p),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        put_all(&client, &group, &stream, audit).await;
        put_all(&client, &group, &access_stream, access).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn put_all(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    mut events: Vec<Pending>,
) {
    if events.is_empty() {
        return;
    }
    events.sort_by_key(|p| p.timestamp);
    let sizes: Vec<(i64, usize)> = events
        .iter()
        .map(|p| (p.timestamp, p.message.len()))
        .collect();
    let mut rest = events.into_iter();
    for range in plan_batches(&sizes) {
        let batch: Vec<Pending> = rest.by_ref().take(range.len()).collect();
        let result = put_batch(client, group, stream, &batch).await;
        for (i, p) in batch.into_iter().enumerate() {
            let _ = p.done.send(match &result {
                Ok(rejected) if rejected.contains(&i) => Err(AuditError::Store(
                    "CloudWatch rejected the event's timestamp (too old or too new)".into(),
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(AuditError::Store(e.clone())),
            });
        }
    }
}

/// One PutLogEvents; returns the indexes CloudWatch rejected.
async fn put_batch(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    batch: &[Pending],
) -> Result<Vec<usize>, String> {
    let mut events = Vec::with_capacity(batch.len());
    for p in batch {
        events.push(
            InputLogEvent::builder()
                .timestamp(p.timestamp)
                .message(p.message.clone())
                .build()
                .map_err(|e| format!("cannot build a log event: {e}"))?,
        );
    }
    let out = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        // No SDK retries: PutLogEvents is not idempotent, so a retry after a lost answer would
        // log the batch twice. A failure goes to the spool, which checks before repeating it.
        .customize()
        .config_override(
            aws_sdk_cloudwatchlogs::config::Config::builder()
                .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(|e| describe("CloudWatch PutLogEvents", &e))?;
    let Some(info) = out.rejected_log_events_info() else {
        return Ok(Vec::new());
    };
    let idx = |i: Option<i32>| i.and_then(|i| usize::try_from(i).ok());
    let mut rejected = Vec::new();
    if let Some(end) = idx(info.too_old_log_event_end_index()) {
        rejected.extend(0..end.min(batch.len()));
    }
    if let Some(end) = idx(info.expired_log_event_end_index()) {
        rejected.extend(0..end.min(batch.len()));
    }
    if let Some(start) = idx(info.too_new_log_event_start_index()) {
        rejected.extend(start.min(batch.len())..batch.len());
    }
    Ok(rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: usize, len: usize) -> Vec<(i64, usize)> {
        (0..n).map(|i| (i as i64, len)).collect()
    }

    #[test]
    fn batches_respect_count_bytes_and_span() {
        let b = plan_batches(&sizes(25_000, 10));
        assert_eq!(b, vec![0..10_000, 10_000..20_000, 20_000..25_000]);

        // 1,000-byte messages: 1,026 bytes each, 1,022 fit in 1,048,576.
        let b = plan_batches(&sizes(2_100, 1_000));
        assert_eq!(b[0], 0..1_022);
        for r in &b {
            assert!(r.len() * 1_026 <= MAX_BATCH_BYTES);
        }
        assert_eq!(b.iter().map(Range::len).sum::<usize>(), 2_100);

        let day = MAX_BATCH_SPAN_MS;
        let b = plan_batches(&[(0, 1), (day, 1), (day + 1, 1), (2 * day + 2, 1)]);
        assert_eq!(b, vec![0..2, 2..3, 3..4]);

        assert!(plan_batches(&[]).is_empty());
        // Events at the size limit: exactly four fit in one batch.
        assert_eq!(plan_batches(&[(0, MAX_EVENT_BYTES); 5]), vec![0..4, 4..5]);
    }

    #[test]
    fn only_request_ids_are_looked_up_near_the_time_they_carry() {
        let id = uuid::Uuid::now_v7().to_string();
        let from = search_from(&id).unwrap().unwrap();
        assert!((crate::now_ms() - ID_SKEW_MS - from).abs() < 5_000);
        assert_eq!(
            search_from("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            Some(None)
        );
        assert_eq!(search_from("x\" } || { $.a = \"b"), None);
        assert_eq!(search_from("readyz-probe"), None);
        assert_eq!(search_from(""), None);
    }
}
