//! `gateway logs import`: JSON-lines exports into the embedded store's `log_events`, so an
//! analyst can investigate offline. Each line is either an audit event (a JSON object with a
//! `timestamp` in ms; the line itself becomes `@message`) or a CloudWatch Logs event as
//! GetLogEvents/FilterLogEvents return it (`timestamp`, `message`, and `ingestionTime`,
//! `logStreamName`/`logStream`, `logGroup`, `eventId`); its `message` is kept verbatim as
//! `@message` and its JSON fields are discovered at query time. Bad lines are reported by line
//! number and reason (never their content), never silently dropped.

use std::io::BufRead;

use serde_json::{Map, Value as Json};

use super::InsightsError;
use super::event::top_level_str;
use crate::audit::sqlite::{LogEventRow, SqliteAuditStore};

/// Events committed per transaction.
const BATCH: usize = 2000;
/// Reasons kept for the report (all bad lines are counted).
const MAX_REASONS: usize = 1000;
/// The latest timestamp accepted (9999-12-31).
const MAX_TIMESTAMP: i64 = 253_402_300_799_999;

/// Where imported events without their own group/stream go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// `@log` of lines that name no `logGroup`.
    pub log_group: String,
    /// `@logStream` of lines that name no stream.
    pub log_stream: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read (including blank and rejected ones).
    pub lines: u64,
    pub imported: u64,
    pub blank: u64,
    /// Rejected lines.
    pub rejected: u64,
    /// The first rejected lines: (1-based line number, reason).
    pub reasons: Vec<(u64, String)>,
}

/// Progress while importing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub lines: u64,
    pub bytes: u64,
    pub imported: u64,
}

/// Classify and convert one non-blank line.
pub fn convert_line(line: &str, opts: &ImportOptions) -> Result<LogEventRow, String> {
    let json: Json = serde_json::from_str(line).map_err(|e| {
        format!(
            "not valid JSON (column {}: {})",
            e.column(),
            json_error_kind(&e)
        )
    })?;
    let Json::Object(obj) = json else {
        return Err("not a JSON object".into());
    };
    let timestamp = millis(&obj, "timestamp")?
        .ok_or_else(|| "no \"timestamp\" (milliseconds since the epoch)".to_string())?;
    if is_cloudwatch_event(&obj) {
        let Some(Json::String(message)) = obj.get("message") else {
            return Err("\"message\" must be a string".into());
        };
        let ingestion_time = millis(&obj, "ingestionTime")?.unwrap_or(timestamp);
        let text_of = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| obj.get(*k).and_then(Json::as_str))
                .map(str::to_string)
        };
        let parsed: Option<Json> = serde_json::from_str(message).ok();
        let field = |k: &str| parsed.as_ref().and_then(|j| top_level_str(j, k));
        Ok(LogEventRow {
            timestamp,
            ingestion_time,
            log_group: text_of(&["logGroup", "logGroupName"])
                .unwrap_or_else(|| opts.log_group.clone()),
            log_stream: text_of(&["logStreamName", "logStream"])
                .unwrap_or_else(|| opts.log_stream.clone()),
            user_sub: field("userSub"),
            feature: field("feature"),
            request_id: field("requestId"),
            message: message.clone(),
        })
    } else {
        let obj = Json::Object(obj);
        Ok(LogEventRow {
            timestamp,
            ingestion_time: timestamp,
            log_group: opts.log_group.clone(),
            log_stream: opts.log_stream.clone(),
            user_sub: top_level_str(&obj, "userSub"),
            feature: top_level_str(&obj, "feature"),
            request_id: top_level_str(&obj, "requestId"),
            message: line.to_string(),
        })
    }
}

fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "truncated",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "read error",
    }
}

/// A CloudWatch event line: a string `message` plus only CloudWatch's own keys.
fn is_cloudwatch_event(obj: &Map<String, Json>) -> bool {
    const KEYS: &[&str] = &[
        "timestamp",
        "message",
        "ingestionTime",
        "logStreamName",
        "logStream",
        "logGroup",
        "logGroupName",
        "eventId",
    ];
    obj.contains_key("message") && obj.keys().all(|k| KEYS.contains(&k.as_str()))
}

fn millis(obj: &Map<String, Json>, key: &str) -> Result<Option<i64>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(t) if (0..=MAX_TIMESTAMP).contains(&t) => Ok(Some(t)),
            _ => Err(format!(
                "\"{key}\" must be whole milliseconds since the epoch"
            )),
        },
    }
}

/// Import every line of `reader` into `store`. `progress` is called every 50,000 lines.
pub async fn import_jsonl(
    store: &SqliteAuditStore,
    mut reader: impl BufRead,
    opts: &ImportOptions,
    mut progress: impl FnMut(Progress),
) -> Result<ImportReport, InsightsError> {
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| InsightsError::Store(format!("cannot read the file: {e}")))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        report.lines += 1;
        let line_no = report.lines;
        let reject = |report: &mut ImportReport, reason: String| {
            report.rejected += 1;
            if report.reasons.len() < MAX_REASONS {
                report.reasons.push((line_no, reason));
            }
        };
        let Ok(text) = std::str::from_utf8(&buf) else {
            reject(&mut report, "not UTF-8".into());
            continue;
        };
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            report.blank += 1;
            continue;
        }
        match convert_line(text, opts) {
            Ok(row) => batch.push(row),
            Err(reason) => reject(&mut report, reason),
        }
        if batch.len() >= BATCH {
            report.imported += batch.len() as u64;
            store
                .import_log_events(std::mem::take(&mut batch))
                .await
                .map_err(|e| InsightsError::Store(e.to_string()))?;
        }
        if report.lines % 50_000 == 0 {
            progress(Progress {
                lines: report.lines,
                bytes,
                imported: report.imported,
            });
        }
    }
    report.imported += batch.len() as u64;
    store
        .import_log_events(batch)
        .await
        .map_err(|e| InsightsError::Store(e.to_string()))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ImportOptions {
        ImportOptions {
            log_group: "imported".into(),
            log_stream: "file.jsonl".into(),
        }
    }

    #[test]
    fn classifies_lines() {
        let cw = r#"{"timestamp":1000,"ingestionTime":1005,"logStreamName":"s1","message":"{\"userSub\":\"u1\",\"x\":1}"}"#;
        let row = convert_line(cw, &opts()).unwrap();
        assert_eq!(row.log_stream, "s1");
        assert_eq!(row.log_group, "imported");
        assert_eq!(row.ingestion_time, 1005);
        assert_eq!(row.message, r#"{"userSub":"u1","x":1}"#);
        assert_eq!(row.user_sub.as_deref(), Some("u1"));

        let audit = r#"{"timestamp":2000,"requestId":"r1","userSub":"u2"}"#;
        let row = convert_line(audit, &opts()).unwrap();
        assert_eq!(row.message, audit);
        assert_eq!(row.request_id.as_deref(), Some("r1"));
        assert_eq!(row.ingestion_time, 2000);

        for (bad, why) in [
            ("{", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"a":1}"#, "no \"timestamp\""),
            (r#"{"timestamp":"x"}"#, "whole milliseconds"),
            (r#"{"timestamp":1,"message":5}"#, "must be a string"),
        ] {
            let e = convert_line(bad, &opts()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn reports_bad_lines_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAuditStore::open(&dir.path().join("audit.db")).unwrap();
        let text = "{\"timestamp\":1,\"a\":1}\n\nnot json secret-text\r\n{\"timestamp\":2}\n{\"timestamp\":3,\"message\":\"m\"}";
        let report = import_jsonl(&store, text.as_bytes(), &opts(), |_| {})
            .await
            .unwrap();
        assert_eq!(report.lines, 5);
        assert_eq!(report.imported, 3);
        assert_eq!(report.blank, 1);
        assert_eq!(report.rejected, 1);
        assert_eq!(report.reasons[0].0, 3);
        assert!(!report.reasons[0].1.contains("secret"));
        assert_eq!(store.imported_count().await.unwrap(), 3);
    }
}
