//! The console's own audit trail, as events (`ConsoleEvent`, `EventFilter`: shared by both
//! stores) and on CloudWatch Logs (`backend = "aws"`): one JSON message per console action
//! (`"eventType": "consoleEvent"`) in the audit log group (`aws.log_group`), stream
//! `<aws.log_stream>-console` (created if missing). The embedded default keeps the same events
//! in `console.db` (`app::accounts::events`).
//!
//! Writing is one PutLogEvents per event (console actions are rare; the call returns once
//! CloudWatch accepted the event). Reading ([`ConsoleEventLog::events`]) narrows the scan with
//! a JSON filter pattern ([`filter_pattern`]) and checks every event with the same rules as the
//! SQL query ([`EventFilter::matches`]), because emulators (moto) ignore JSON patterns and the
//! filter is the contract. It returns the newest events first, which FilterLogEvents (oldest
//! first within a time range) cannot do alone ([`ConsoleEventLog::newest`]): it walks time
//! windows backwards from the end of the range, each four times wider than the last (1 hour,
//! 4 hours, …), reading each window's pages in full and keeping its newest matches, until
//! enough events are found or the range is exhausted. At most [`MAX_CALLS`] FilterLogEvents
//! calls are made per read; when they run out, the windows read completely so far are
//! returned (still the newest, only fewer). Events never carry a password, a token or prompt
//! text; every field is capped at [`FIELD_MAX`] characters.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde::{Deserialize, Serialize};

use super::{describe, error_code};
use crate::config::Config;

/// The longest value stored in any text field of an event.
pub const FIELD_MAX: usize = 300;
/// The most events one query returns.
pub const QUERY_MAX: usize = 1000;
/// The `eventType` of console events in CloudWatch Logs.
pub const EVENT_TYPE: &str = "consoleEvent";

/// One console event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEvent {
    pub at_ms: i64,
    /// The console user who acted (or the name tried, for a refused sign-in).
    pub actor: String,
    /// `login`, `login.failed`, `logout`, `account.create`, `account.role`, `account.disable`,
    /// `account.enable`, `account.password`, `guardrail.edit`, `guardrail.version`,
    /// `feature.binding`, `feature.throttle`, `feature.model`.
    pub kind: String,
    /// What was acted on: a user, a guardrail id, a feature.
    pub target: String,
    /// A short human description of the change (no secrets).
    pub detail: String,
    /// The client address.
    pub client: String,
}

/// Which events to return; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub actor: Option<String>,
    /// A kind, or a prefix ending in `.` (`account.`).
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: usize,
}

/// `value` cut to [`FIELD_MAX`] characters, as stored.
pub fn cap(value: &str) -> String {
    value.chars().take(FIELD_MAX).collect()
}

impl EventFilter {
    /// Whether `event` (as stored: capped) passes: the SQL query's rules, for stores that
    /// filter in code.
    pub fn matches(&self, event: &ConsoleEvent) -> bool {
        let actor_ok = self.actor.as_ref().is_none_or(|a| event.actor == cap(a));
        let kind_ok = self.kind.as_ref().is_none_or(|k| {
            let k = cap(k);
            if k.ends_with('.') {
                event.kind.starts_with(&k)
            } else {
                event.kind == k
            }
        });
        actor_ok
            && kind_ok
            && self.since_ms.is_none_or(|s| event.at_ms >= s)
            && self.until_ms.is_none_or(|u| event.at_ms < u)
    }
}

/// The JSON message of one event in CloudWatch Logs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogLine {
    event_type: String,
    at: i64,
    actor: String,
    kind: String,
    target: String,
    detail: String,
    client: String,
}

/// The message stored for `event` (fields capped).
pub fn to_message(event: &ConsoleEvent) -> String {
    let line = LogLine {
        event_type: EVENT_TYPE.into(),
        at: event.at_ms,
        actor: cap(&event.actor),
        kind: cap(&event.kind),
        target: cap(&event.target),
        detail: cap(&event.detail),
        client: cap(&event.client),
    };
    // A struct of strings and an integer always encodes.
    serde_json::to_string(&line).unwrap_or_default()
}

/// The event a message holds, if it is a console event.
pub fn from_message(message: &str) -> Option<ConsoleEvent> {
    let line: LogLine = serde_json::from_str(message).ok()?;
    (line.event_type == EVENT_TYPE).then_some(ConsoleEvent {
        at_ms: line.at,
        actor: line.actor,
        kind: line.kind,
        target: line.target,
        detail: line.detail,
        client: line.client,
    })
}

/// A value that may go inside a filter pattern's quotes as is (anything else is filtered in
/// code only, never spliced into a pattern).
fn pattern_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'))
}

/// The CloudWatch JSON filter pattern that narrows a scan for `filter` (time is narrowed by
/// the scan's range). Kind prefixes, and values with other characters than letters, digits and
/// `._-@:`, stay out of the pattern and are filtered after reading.
pub fn filter_pattern(filter: &EventFilter) -> String {
    let mut terms = vec![format!("$.eventType = \"{EVENT_TYPE}\"")];
    if let Some(actor) = filter.actor.as_deref().filter(|a| pattern_safe(a)) {
        terms.push(format!("$.actor = \"{actor}\""));
    }
    // A prefix (`account.`) stays out: only exact string equality is relied on in patterns.
    if let Some(kind) = filter
        .kind
        .as_deref()
        .filter(|k| pattern_safe(k) && !k.ends_with('.'))
    {
        terms.push(format!("$.kind = \"{kind}\""));
    }
    format!("{{ {} }}", terms.join(" && "))
}

/// Most FilterLogEvents calls one read makes.
pub const MAX_CALLS: usize = 50;
/// Largest message written (CloudWatch's event limit is 256 KiB including 26 bytes).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 - 26;
/// Most events one read returns.
pub const MAX_EVENTS: usize = 10_000;
/// The first (newest) window a read scans.
const FIRST_WINDOW_MS: i64 = 3_600_000;
/// How much wider each older window is.
const WINDOW_GROWTH: i64 = 4;
/// How far past "now" a read without an end looks (clock skew between writers).
const FUTURE_SKEW_MS: i64 = 5 * 60_000;

/// Which events a read scans: `[since_ms, until_ms)`, narrowed by `pattern` in AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// A CloudWatch filter pattern; the caller still checks each message.
    pub pattern: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// One event read back: its timestamp and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

/// The console's events in one CloudWatch Logs stream.
#[derive(Debug, Clone)]
pub struct ConsoleEventLog {
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
}

/// The console stream's name for an audit stream name.
pub fn console_stream(log_stream: &str) -> String {
    format!("{log_stream}-console")
}

impl ConsoleEventLog {
    /// The log of `config`'s `[aws]` section (group `log_group`, stream `<log_stream>-console`),
    /// creating the stream if it is missing.
    pub async fn open(
        config: &Config,
        credentials: Option<&super::StaticCredentials>,
    ) -> anyhow::Result<ConsoleEventLog> {
        let aws = config
            .aws
            .as_ref()
            .context("backend = \"aws\" needs an [aws] section")?;
        let sdk = super::sdk_config(aws, credentials).await;
        let clients = super::Clients::new(&sdk, aws);
        ConsoleEventLog::with_client(
            clients.logs,
            &aws.log_group,
            &console_stream(&aws.log_stream),
        )
        .await
        .map_err(|e| anyhow::anyhow!("console events in log group {:?}: {e}", aws.log_group))
    }

    /// The log on `group`/`stream` through `client`, creating the stream if it is missing.
    pub async fn with_client(
        client: aws_sdk_cloudwatchlogs::Client,
        group: &str,
        stream: &str,
    ) -> Result<ConsoleEventLog, String> {
        ensure_stream(&client, group, stream).await?;
        Ok(ConsoleEventLog {
            client,
            group: group.to_string(),
            stream: stream.to_string(),
        })
    }

    /// Append one event; returns once CloudWatch accepted it.
    pub async fn put(&self, timestamp_ms: i64, message: String) -> Result<(), String> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "console event of {} bytes exceeds CloudWatch's limit",
                message.len()
            ));
        }
        let event = InputLogEvent::builder()
            .timestamp(timestamp_ms)
            .message(message)
            .build()
            .map_err(|e| format!("cannot build a log event: {e}"))?;
        let out = self
            .client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .log_events(event)
            .send()
            .await
            .map_err(|e| describe("CloudWatch PutLogEvents", &e))?;
        if out.rejected_log_events_info().is_some() {
            return Err("CloudWatch rejected the event's timestamp (too old or too new)".into());
        }
        Ok(())
    }

    /// Append one console event; returns once CloudWatch accepted it.
    pub async fn record(&self, event: &ConsoleEvent) -> Result<(), String> {
        self.put(event.at_ms, to_message(event)).await
    }

    /// Console events matching `filter`, newest first (ties: the later written first), at
    /// most `filter.limit` (capped at [`QUERY_MAX`]); gives up after [`READ_TIMEOUT`].
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<ConsoleEvent>, String> {
        let query = LogQuery {
            pattern: Some(filter_pattern(filter)),
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
        };
        let limit = filter.limit.clamp(1, QUERY_MAX);
        let keep = |e: &LogEvent| from_message(&e.message).is_some_and(|c| filter.matches(&c));
        let found = tokio::time::timeout(READ_TIMEOUT, self.newest(&query, limit, keep))
            .await
            .map_err(|_| "CloudWatch FilterLogEvents timed out".to_string())??;
        Ok(found
            .iter()
            .filter_map(|e| from_message(&e.message))
            .collect())
    }

    /// At most `limit` events of `query` that `keep` accepts, newest first (ties: the later
    /// written first).
    pub async fn newest(
        &self,
        query: &LogQuery,
        limit: usize,
        mut keep: impl FnMut(&LogEvent) -> bool,
    ) -> Result<Vec<LogEvent>, String> {
        let limit = limit.clamp(1, MAX_EVENTS);
        let floor = query.since_ms.unwrap_or(0).max(0);
        let mut end = query
            .until_ms
            .unwrap_or_else(|| crate::now_ms().saturating_add(FUTURE_SKEW_MS));
        let mut width = FIRST_WINDOW_MS;
        let mut calls = 0;
        let mut out: Vec<LogEvent> = Vec::new();
        while out.len() < limit && end > floor {
            let start = end.saturating_sub(width).max(floor);
            let Some(mut window) = self
                .window(query, start, end, limit - out.len(), &mut calls, &mut keep)
                .await?
            else {
                tracing::warn!(
                    calls,
                    "console events read stopped at its call budget; older events not shown"
                );
                break;
            };
            // Pages come oldest first; ties keep their written order, so reverse, then sort.
            window.reverse();
            window.sort_by_key(|e| std::cmp::Reverse(e.timestamp_ms));
            out.extend(window);
            end = start;
            width = width.saturating_mul(WINDOW_GROWTH);
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The newest `want` accepted events in `[start, end)`, oldest first; `None` when the call
    /// budget ran out before the window was read in full.
    async fn window(
        &self,
        query: &LogQuery,
        start: i64,
        end: i64,
        want: usize,
        calls: &mut usize,
        keep: &mut impl FnMut(&LogEvent) -> bool,
    ) -> Result<Option<Vec<LogEvent>>, String> {
        let mut found: VecDeque<LogEvent> = VecDeque::new();
        let mut token: Option<String> = None;
        loop {
            if *calls >= MAX_CALLS {
                return Ok(None);
            }
            *calls += 1;
            let page = self
                .client
                .filter_log_events()
                .log_group_name(&self.group)
                .log_stream_names(&self.stream)
                .set_filter_pattern(query.pattern.clone())
                .start_time(start)
                .end_time(end.saturating_sub(1))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| describe("CloudWatch FilterLogEvents", &e))?;
            for e in page.events() {
                let event = LogEvent {
                    timestamp_ms: e.timestamp().unwrap_or(0),
                    message: e.message().unwrap_or("").to_string(),
                };
                if (start..end).contains(&event.timestamp_ms) && keep(&event) {
                    found.push_back(event);
                    if found.len() > want {
                        found.pop_front();
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(Some(found.into())),
            }
        }
    }
}

/// Create `stream` in `group` unless it exists (and the group, for emulators without one).
async fn ensure_stream(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Result<(), String> {
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
        Err(e) => return Err(describe("CloudWatch CreateLogStream", &e)),
    }
    match client.create_log_group().log_group_name(group).send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => {}
        Err(e) => return Err(describe("CloudWatch CreateLogGroup", &e)),
    }
    match create().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => Ok(()),
        Err(e) => Err(describe("CloudWatch CreateLogStream", &e)),
    }
}

/// How long a read waits for CloudWatch before giving up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_ms: i64, actor: &str, kind: &str) -> ConsoleEvent {
        ConsoleEvent {
            at_ms,
            actor: actor.into(),
            kind: kind.into(),
            target: "t".into(),
            detail: "d".into(),
            client: "10.0.0.1".into(),
        }
    }

    #[test]
    fn messages_round_trip_capped_and_other_lines_are_not_events() {
        let mut long = event(5, "ana", "login");
        long.detail = "é".repeat(FIELD_MAX + 50);
        let message = to_message(&long);
        assert!(
            message.contains("\"eventType\":\"consoleEvent\""),
            "{message}"
        );
        let back = from_message(&message).unwrap();
        assert_eq!(back.detail.chars().count(), FIELD_MAX);
        assert_eq!((back.at_ms, back.actor.as_str()), (5, "ana"));
        assert_eq!(from_message(r#"{"requestId":"r","timestamp":1}"#), None);
        let other = message.replace("consoleEvent", "vaultAccess");
        assert_eq!(from_message(&other), None);
        assert_eq!(from_message("not json"), None);
    }

    #[test]
    fn filters_match_like_the_sql_query() {
        let e = event(20, "admin", "account.create");
        let f = |actor: Option<&str>, kind: Option<&str>, since, until| EventFilter {
            actor: actor.map(str::to_string),
            kind: kind.map(str::to_string),
            since_ms: since,
            until_ms: until,
            limit: 10,
        };
        assert!(f(None, None, None, None).matches(&e));
        assert!(f(Some("admin"), Some("account."), Some(20), Some(21)).matches(&e));
        assert!(!f(Some("adm"), None, None, None).matches(&e));
        assert!(!f(None, Some("account"), None, None).matches(&e));
        assert!(!f(None, Some("account.c"), None, None).matches(&e));
        assert!(!f(None, None, Some(21), None).matches(&e));
        assert!(!f(None, None, None, Some(20)).matches(&e));
    }

    #[test]
    fn only_plain_values_reach_the_filter_pattern() {
        let f = |actor: Option<&str>, kind: Option<&str>| EventFilter {
            actor: actor.map(str::to_string),
            kind: kind.map(str::to_string),
            ..EventFilter::default()
        };
        assert_eq!(
            filter_pattern(&f(None, None)),
            r#"{ $.eventType = "consoleEvent" }"#
        );
        assert_eq!(
            filter_pattern(&f(Some("ana@example.com"), Some("login.failed"))),
            r#"{ $.eventType = "consoleEvent" && $.actor = "ana@example.com" && $.kind = "login.failed" }"#
        );
        assert_eq!(
            filter_pattern(&f(None, Some("account."))),
            r#"{ $.eventType = "consoleEvent" }"#
        );
        // Quotes, spaces, braces or wildcards never get into the pattern.
        for hostile in [r#"x" || $.a = "y"#, "a b", "}", "*", "a\\\"b"] {
            let p = filter_pattern(&f(Some(hostile), Some(hostile)));
            assert_eq!(p, r#"{ $.eventType = "consoleEvent" }"#, "{hostile}");
        }
    }
}
