//! The server side of the SOC's server functions: time ranges, turning query snapshots into
//! what the page shows, the CSV export, a user's timeline, and the audited opening of a vault
//! record (access event first, then decryption).

use std::time::Duration;

use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::http::request::Parts;
use gateway::audit::AccessEvent;
use gateway::insights::output::columns;
use gateway::insights::value::{days_from_civil, format_time};
use gateway::insights::{CancelToken, QueryRequest, QueryResults, QueryStatus, TimeRange};
use gateway::vault::VaultError;
use leptos::prelude::*;

use super::api::{
    Access, InsightsData, Investigation, MAX_REASON, MAX_SHOWN_ROWS, MIN_REASON, Message,
    OpenedRecord, QueryView, SyntaxError, TimelineEntry, WINDOWS, insights_url, quote_string,
};
use super::highlight::Vocabulary;
use super::queries::{Snapshot, StartError};
use super::{Soc, chart, csv as csv_text};
use crate::accounts::User;
use crate::api::ApiError;
use crate::context::{Console, client_ip};

/// How long a page load waits for a query to finish before showing it as running.
const PAGE_WAIT: Duration = Duration::from_millis(1500);
/// User subjects are at most this long.
const MAX_USER: usize = 256;
/// Timeline rows shown.
const TIMELINE_ROWS: usize = 500;

fn soc(console: &Console) -> Result<&Soc, ApiError> {
    console.soc.as_ref().ok_or_else(|| {
        tracing::error!("SOC backends missing from the console context");
        ApiError::Unavailable
    })
}

/// The time range of `?range=` (or `custom` with `start`/`end` as `YYYY-MM-DDTHH:MM[:SS]`,
/// UTC) ending now, and its label.
pub fn resolve_range(
    range: &str,
    start: &str,
    end: &str,
    now_ms: i64,
) -> Result<(TimeRange, String), ApiError> {
    let minutes = match range {
        "15m" => 15,
        "1h" | "" => 60,
        "24h" => 24 * 60,
        "7d" => 7 * 24 * 60,
        "30d" => 30 * 24 * 60,
        "custom" => {
            let (Some(s), Some(e)) = (parse_local(start), parse_local(end)) else {
                return Err(ApiError::Invalid(
                    "a custom range needs a start and an end (YYYY-MM-DD HH:MM, UTC)".into(),
                ));
            };
            if s > e {
                return Err(ApiError::Invalid(
                    "the time range starts after it ends".into(),
                ));
            }
            let label = format!("{} → {} UTC", &format_time(s)[..16], &format_time(e)[..16]);
            return Ok((
                TimeRange {
                    start_ms: s,
                    end_ms: e,
                },
                label,
            ));
        }
        _ => return Err(ApiError::Invalid("unknown time range".into())),
    };
    let label = WINDOWS
        .iter()
        .find(|(key, _)| *key == range || (range.is_empty() && *key == "1h"))
        .map_or_else(String::new, |(_, l)| format!("last {l}"));
    Ok((
        TimeRange {
            start_ms: now_ms - minutes * 60_000,
            end_ms: now_ms,
        },
        label,
    ))
}

/// `YYYY-MM-DDTHH:MM[:SS]` (an `<input type=datetime-local>` value, or with a space) as UTC ms.
pub fn parse_local(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 16 || s.len() > 19 || !s.is_ascii() {
        return None;
    }
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let sep = |i: usize, c: &[u8]| s.as_bytes().get(i).is_some_and(|b| c.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"T ") && sep(13, b":")) {
        return None;
    }
    let (y, mo, d, h, mi) = (
        num(0, 4)?,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
    );
    let sec = if s.len() == 19 && sep(16, b":") {
        num(17, 19)?
    } else if s.len() == 16 {
        0
    } else {
        return None;
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000)
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (a result timestamp) as UTC ms.
pub fn parse_result_time(s: &str) -> Option<i64> {
    if s.len() != 23 || s.as_bytes().get(19) != Some(&b'.') {
        return None;
    }
    let base = parse_local(s.get(..19)?)?;
    let ms = s.get(20..)?.parse::<i64>().ok()?;
    Some(base + ms)
}

fn started_error(e: StartError) -> &'static str {
    match e {
        StartError::TooManyForUser(_) => "busy",
        StartError::TooManyOverall(_) => "overall",
        StartError::Invalid(_) => "invalid",
        StartError::Parse(_) => "parse",
        StartError::Unavailable => "unavailable",
    }
}

/// The message of an `?error=` code the start function redirected with.
fn notice_for(code: &str, limits: super::queries::Limits) -> Option<String> {
    Some(match code {
        "busy" => format!(
            "You already have {} queries running. Wait for one to finish or cancel it.",
            limits.running_per_user
        ),
        "overall" => {
            "The console is running as many queries as it allows. Try again shortly.".to_string()
        }
        "invalid" => "Write a query (at most 10,000 characters) first.".to_string(),
        "range" => "That time range is not valid.".to_string(),
        "unavailable" => ApiError::Unavailable.to_string(),
        _ => return None,
    })
}

/// The body of `insights_start`: admit the query and redirect to its page.
pub fn start(
    console: &Console,
    user: &User,
    query: &str,
    range: &str,
    start: &str,
    end: &str,
) -> Result<(), ApiError> {
    let soc = soc(console)?;
    // Echo the query in the URL only when it is of a size a URL carries.
    let query = if query.len() > super::queries::MAX_QUERY_BYTES {
        ""
    } else {
        query
    };
    let page = |id: &str, error: &str| {
        let mut url = insights_url(query, range, start, end, id);
        if !error.is_empty() {
            url.push_str("&error=");
            url.push_str(error);
        }
        url
    };
    let time = match resolve_range(range, start, end, gateway::now_ms()) {
        Ok((time, _)) => time,
        Err(_) => {
            leptos_axum::redirect(&page("", "range"));
            return Ok(());
        }
    };
    match soc.queries.start(&user.name, query, time) {
        Ok(id) => {
            tracing::info!(user = %user.name, query_id = %id, "insights query started");
            leptos_axum::redirect(&page(&id, ""));
        }
        // The page parses the query again and shows where it stops making sense.
        Err(StartError::Parse(_)) => leptos_axum::redirect(&page("", "")),
        Err(e) => leptos_axum::redirect(&page("", started_error(e))),
    }
    Ok(())
}

/// The body of `insights_stop`.
pub fn stop(console: &Console, user: &User, id: &str, back: &str) -> Result<(), ApiError> {
    let soc = soc(console)?;
    if soc.queries.stop(&user.name, id).is_none() {
        return Err(ApiError::NotFound("no such query of yours".into()));
    }
    tracing::info!(user = %user.name, query_id = %id, "insights query cancelled");
    // Only ever back to the Insights page (no open redirect), and only in characters a header
    // carries (the redirect would panic on others).
    let back = if back.starts_with("/insights?")
        && back.len() <= 16_000
        && back.bytes().all(|b| b.is_ascii_graphic())
    {
        back
    } else {
        "/insights"
    };
    leptos_axum::redirect(back);
    Ok(())
}

/// The body of `insights_page`.
pub async fn insights_page(
    console: &Console,
    user: &User,
    query: &str,
    range: &str,
    start: &str,
    end: &str,
    id: &str,
) -> Result<InsightsData, ApiError> {
    let soc = soc(console)?;
    let range_label = match resolve_range(range, start, end, gateway::now_ms()) {
        Ok((_, label)) => label,
        Err(e) => {
            return Ok(InsightsData {
                syntax_error: None,
                run: None,
                notice: Some(e.to_string()),
                range_label: String::new(),
                vocabulary: Vocabulary::from_parser(),
            });
        }
    };
    let mut page = InsightsData {
        syntax_error: None,
        run: None,
        notice: None,
        range_label,
        vocabulary: Vocabulary::from_parser(),
    };
    if id.is_empty() {
        if !query.trim().is_empty() && query.len() <= super::queries::MAX_QUERY_BYTES {
            page.syntax_error = syntax_error(query);
        }
        return Ok(page);
    }
    if id.len() > 64 {
        page.notice = Some("That query is not yours or has expired.".into());
        return Ok(page);
    }
    let waited = tokio::time::Instant::now();
    let snapshot = loop {
        let Some(s) = soc.queries.poll(&user.name, id) else {
            page.notice = Some(
                "That query is not yours or has expired (results are kept 30 minutes). Run it \
                 again."
                    .into(),
            );
            return Ok(page);
        };
        let active = matches!(s.status, QueryStatus::Scheduled | QueryStatus::Running);
        if !active || waited.elapsed() >= PAGE_WAIT {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    page.run = Some(view_of(&snapshot));
    Ok(page)
}

/// The notice for `?error=` on the page, given the manager's limits.
pub fn notice(console: &Console, code: &str) -> Option<String> {
    let soc = console.soc.as_ref()?;
    notice_for(code, soc.queries.limits())
}

fn syntax_error(query: &str) -> Option<SyntaxError> {
    let e = gateway::insights::parse(query).err()?;
    let line_text = query
        .lines()
        .nth(e.line.saturating_sub(1))
        .unwrap_or("")
        .chars()
        .take(500)
        .collect();
    Some(SyntaxError {
        line: e.line,
        column: e.column,
        message: format!("expected {}, found {}", e.expected, e.found),
        line_text,
    })
}

fn status_name(s: QueryStatus) -> &'static str {
    match s {
        QueryStatus::Scheduled => "Scheduled",
        QueryStatus::Running => "Running",
        QueryStatus::Complete => "Complete",
        QueryStatus::Failed => "Failed",
        QueryStatus::Cancelled => "Cancelled",
        QueryStatus::Timeout => "Timeout",
        QueryStatus::Unknown => "Unknown",
    }
}

/// A results table: column names and cells by column ("" where a row has no value).
pub fn table(results: &QueryResults, max_rows: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let cols = columns(&results.results);
    let rows = results
        .results
        .iter()
        .take(max_rows)
        .map(|row| {
            cols.iter()
                .map(|c| {
                    row.iter()
                        .find(|f| &f.field == c)
                        .map_or_else(String::new, |f| f.value.clone())
                })
                .collect()
        })
        .collect();
    (cols, rows)
}

fn view_of(s: &Snapshot) -> QueryView {
    let active = matches!(s.status, QueryStatus::Scheduled | QueryStatus::Running);
    let (columns, rows, total_rows, matched) = match &s.results {
        Some(r) => {
            let (c, rows) = table(r, MAX_SHOWN_ROWS);
            (
                c,
                rows,
                r.results.len(),
                r.statistics.records_matched as u64,
            )
        }
        None => (Vec::new(), Vec::new(), 0, 0),
    };
    let (chart_svg, chart_legend) = match &s.results {
        Some(r) if s.query.to_ascii_lowercase().contains("bin(") => {
            let (c, all) = table(r, usize::MAX);
            chart::bin_chart(&c, &all).map_or((None, Vec::new()), |(svg, names)| (Some(svg), names))
        }
        _ => (None, Vec::new()),
    };
    QueryView {
        id: s.id.clone(),
        status: status_name(s.status).to_string(),
        active,
        scanned: s.scanned,
        matched,
        elapsed_ms: u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
        columns,
        rows,
        total_rows,
        error: s.error.clone(),
        chart_svg,
        chart_legend,
    }
}

/// The body of `insights_csv`: every row of the caller's finished query.
pub fn csv(console: &Console, user: &User, id: &str) -> Result<String, ApiError> {
    let soc = soc(console)?;
    let Some(results) = soc
        .queries
        .poll(&user.name, id)
        .and_then(|s| s.results.clone())
    else {
        return Err(ApiError::NotFound(
            "no finished query with that id is yours".into(),
        ));
    };
    let (cols, rows) = table(&results, usize::MAX);
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        let name = format!(
            "attachment; filename=\"insights-{}.csv\"",
            id.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect::<String>()
        );
        if let Ok(v) = HeaderValue::from_str(&name) {
            res.insert_header(axum::http::header::CONTENT_DISPOSITION, v);
        }
    }
    tracing::info!(user = %user.name, query_id = %id, rows = rows.len(), "insights CSV export");
    Ok(csv_text::to_csv(&cols, &rows))
}

fn valid_user(user: &str) -> Result<&str, ApiError> {
    let user = user.trim();
    if user.is_empty() || user.len() > MAX_USER || user.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "name a user subject of 1 to {MAX_USER} characters"
        )));
    }
    Ok(user)
}

/// `bin()` period and its length for a timeline over `minutes`.
fn bucket_for(minutes: i64) -> (&'static str, i64) {
    if minutes <= 15 {
        ("1m", 60_000)
    } else if minutes <= 60 {
        ("5m", 5 * 60_000)
    } else if minutes <= 1440 {
        ("1h", 3_600_000)
    } else if minutes <= 10_080 {
        ("6h", 6 * 3_600_000)
    } else {
        ("1d", 86_400_000)
    }
}

async fn run_query(
    soc: &Soc,
    query: String,
    range: TimeRange,
    limit: usize,
) -> Result<QueryResults, ApiError> {
    let request = QueryRequest {
        query,
        range,
        limit: Some(limit),
        timeout: Some(Duration::from_secs(20)),
    };
    let results = soc
        .insights
        .run(&request, &CancelToken::new())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "investigation query failed");
            ApiError::Unavailable
        })?;
    if results.status != QueryStatus::Complete {
        return Err(ApiError::Invalid(
            "the timeline took too long; choose a shorter range".into(),
        ));
    }
    Ok(results)
}

/// The body of `investigate`: the user's requests, newest first, and an activity chart.
pub async fn investigate(
    console: &Console,
    user: &str,
    range: &str,
) -> Result<Investigation, ApiError> {
    let soc = soc(console)?;
    let user = valid_user(user)?;
    let now = gateway::now_ms();
    let (time, range_label) = resolve_range(range, "", "", now)?;
    let who = quote_string(user);
    let timeline = format!(
        "fields @timestamp, requestId, feature, modelAlias, guardrailAction, inputAction, \
         outputAction, status, latencyMs, vaultKey | filter userSub = {who} \
         | sort @timestamp desc | limit {TIMELINE_ROWS}"
    );
    let minutes = (time.end_ms - time.start_ms) / 60_000;
    let (period, bucket_ms) = bucket_for(minutes);
    let activity = format!(
        "filter userSub = {who} | stats count(*) as n by bin({period}) as t, guardrailAction"
    );
    let rows = run_query(soc, timeline, time, TIMELINE_ROWS).await?;
    let counts = run_query(soc, activity, time, 100_000).await?;

    let (cols, cells) = table(&rows, TIMELINE_ROWS);
    let at = |name: &str| cols.iter().position(|c| c == name);
    let get = |row: &Vec<String>, name: &str| {
        at(name)
            .and_then(|i| row.get(i).cloned())
            .unwrap_or_default()
    };
    let entries: Vec<TimelineEntry> = cells
        .iter()
        .map(|row| TimelineEntry {
            timestamp: get(row, "@timestamp"),
            request_id: get(row, "requestId"),
            feature: get(row, "feature"),
            model: get(row, "modelAlias"),
            action: get(row, "guardrailAction"),
            input_action: get(row, "inputAction"),
            output_action: get(row, "outputAction"),
            status: get(row, "status"),
            latency_ms: get(row, "latencyMs"),
            has_record: !get(row, "vaultKey").is_empty(),
        })
        .collect();

    let (ccols, ccells) = table(&counts, usize::MAX);
    let (ti, ai, ni) = (
        ccols.iter().position(|c| c == "t"),
        ccols.iter().position(|c| c == "guardrailAction"),
        ccols.iter().position(|c| c == "n"),
    );
    let mut buckets: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
    let (mut requests, mut interventions) = (0u64, 0u64);
    for row in &ccells {
        let t = ti
            .and_then(|i| row.get(i))
            .and_then(|v| parse_result_time(v));
        let n = ni
            .and_then(|i| row.get(i))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let intervened = ai
            .and_then(|i| row.get(i))
            .is_some_and(|v| v == "INTERVENED");
        requests += n;
        if let Some(t) = t {
            let b = buckets.entry(t).or_default();
            b.0 += n;
            if intervened {
                b.1 += n;
                interventions += n;
            }
        } else if intervened {
            interventions += n;
        }
    }
    let buckets: Vec<(i64, u64, u64)> = buckets.into_iter().map(|(t, (r, i))| (t, r, i)).collect();
    let chart_svg =
        chart::activity(&buckets, time.start_ms, time.end_ms, bucket_ms).map_err(|e| {
            tracing::error!(error = %e, "chart rendering failed");
            ApiError::Unavailable
        })?;
    Ok(Investigation {
        user: user.to_string(),
        range_label,
        requests,
        interventions,
        truncated: requests > entries.len() as u64,
        entries,
        chart_svg,
        opened: None,
    })
}

fn messages(value: &serde_json::Value) -> Vec<Message> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|m| Message {
                role: m
                    .get("role")
                    .and_then(|r| r.as_str())
                    .unwrap_or("message")
                    .to_string(),
                content: m.get("content").map(text).unwrap_or_default(),
            })
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![Message {
            role: "message".into(),
            content: text(other),
        }],
    }
}

fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Whether `back` may be redirected to: an `/investigate` URL of printable ASCII (no other
/// page, no other site, nothing a header cannot carry).
fn investigate_url(back: &str) -> bool {
    back.len() <= 2048
        && (back == "/investigate" || back.starts_with("/investigate?"))
        && back.bytes().all(|b| b.is_ascii_graphic())
}

/// After `open_record` answered a plain form post (no JavaScript): leave `result` for the page
/// and redirect there with its one-time token (see [`super::handoff`]). Scripted calls get the
/// result in the response as usual.
pub fn hand_off_to_page(
    console: &Console,
    user: &User,
    back: Option<&str>,
    result: &Result<OpenedRecord, ApiError>,
) {
    let plain_form = use_context::<Parts>().is_some_and(|p| {
        p.headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    });
    let Ok(soc) = soc(console) else {
        return;
    };
    if !plain_form {
        return;
    }
    let page = back
        .filter(|b| investigate_url(b))
        .unwrap_or("/investigate");
    match soc
        .handoff
        .put(&user.name, result.clone(), gateway::now_ms())
    {
        Some(token) => {
            let sep = if page.contains('?') { '&' } else { '?' };
            leptos_axum::redirect(&format!("{page}{sep}shown={token}"));
        }
        None => tracing::error!("no random token for a record hand-off"),
    }
}

/// What a plain form post left for `user` under `token`, taken once.
pub fn handed_off(
    console: &Console,
    user: &User,
    token: &str,
) -> Option<Result<OpenedRecord, ApiError>> {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    soc(console)
        .ok()?
        .handoff
        .take(token, &user.name, gateway::now_ms())
}

/// The body of `open_record`: access event first, then decryption; the answer is `no-store`.
pub async fn open_record(
    console: &Console,
    user: &User,
    request_id: &str,
    reason: &str,
) -> Result<OpenedRecord, ApiError> {
    let soc = soc(console)?;
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let request_id = request_id.trim();
    if !valid_request_id(request_id) {
        return Err(ApiError::Invalid("that is not a request id".into()));
    }
    let reason = reason.trim();
    let reason_chars = reason.chars().count();
    if !(MIN_REASON..=MAX_REASON).contains(&reason_chars) {
        return Err(ApiError::Invalid(format!(
            "say why you open this record, in {MIN_REASON} to {MAX_REASON} characters"
        )));
    }
    let store_err = |e: gateway::audit::AuditError| {
        tracing::error!(error = %e, "audit store failed while opening a record");
        ApiError::Unavailable
    };
    let event = console
        .audit
        .find(request_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::NotFound("no such request in the audit trail".into()))?;
    let vault_key = event.vault_key.ok_or_else(|| {
        ApiError::NotFound(
            "this request has no vault record (it was refused before its prompt was processed)"
                .into(),
        )
    })?;
    let from = use_context::<Parts>()
        .map(|p| client_ip(&p))
        .unwrap_or_else(|| "unknown".into());
    console
        .audit
        .record_access(&AccessEvent {
            timestamp: gateway::now_ms(),
            actor: user.name.clone(),
            request_id: request_id.to_string(),
            vault_key: vault_key.clone(),
            reason: reason.to_string(),
            origin: format!("console {from}"),
        })
        .await
        .map_err(store_err)?;
    tracing::info!(user = %user.name, request_id, client = %from, "vault record opened");
    let record = soc.vault.open(&vault_key).await.map_err(|e| match e {
        VaultError::NotFound => ApiError::NotFound("the record is no longer in the vault".into()),
        VaultError::Expired => {
            ApiError::NotFound("the record is past retention and can no longer be opened".into())
        }
        other => {
            tracing::error!(error = %other, "vault record could not be opened");
            ApiError::Unavailable
        }
    })?;
    let accesses = console
        .audit
        .accesses(request_id)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|a| Access {
            when: format_time(a.timestamp),
            actor: a.actor,
            reason: a.reason,
            origin: a.origin,
        })
        .collect();
    Ok(OpenedRecord {
        request_id: record.request_id,
        when: format_time(record.timestamp),
        user: record.user_sub,
        feature: record.feature,
        model: record.model_alias,
        input_action: record.input_action,
        output_action: record.output_action,
        policies: record.policies,
        raw_prompt: messages(&record.raw_prompt),
        model_input: messages(&record.model_input),
        raw_output: record.raw_output,
        delivered_output: record.delivered_output,
        accesses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_parse_as_utc() {
        assert_eq!(parse_local("1970-01-01T00:01"), Some(60_000));
        assert_eq!(parse_local("1970-01-02 00:00:05"), Some(86_405_000));
        assert_eq!(parse_local("2024-13-01T00:00"), None);
        assert_eq!(parse_local("2024-01-01"), None);
        assert_eq!(parse_local("2024-01-01T00:00:5"), None);
        let t = 1_717_171_717_123;
        assert_eq!(parse_result_time(&format_time(t)), Some(t));
    }

    #[test]
    fn ranges_resolve_and_refuse_nonsense() {
        let (r, label) = resolve_range("24h", "", "", 100_000_000_000).unwrap();
        assert_eq!(r.end_ms - r.start_ms, 24 * 3_600_000);
        assert_eq!(label, "last 24 h");
        assert!(resolve_range("1y", "", "", 0).is_err());
        assert!(resolve_range("custom", "2024-01-02T00:00", "2024-01-01T00:00", 0).is_err());
        let (r, _) = resolve_range("custom", "2024-01-01T00:00", "2024-01-01T01:00", 0).unwrap();
        assert_eq!(r.end_ms - r.start_ms, 3_600_000);
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let e = syntax_error("fields a\n| sort b desc desc").unwrap();
        assert_eq!(e.line, 2);
        assert_eq!(e.line_text, "| sort b desc desc");
        assert!(e.column > 1);
        assert!(syntax_error("fields a").is_none());
    }

    #[test]
    fn only_investigation_pages_are_redirect_targets() {
        assert!(investigate_url(
            "/investigate?user=a%40b&range=24h&open=r-1"
        ));
        assert!(investigate_url("/investigate"));
        for bad in [
            "https://evil.example/investigate?",
            "//evil.example",
            "/investigatex",
            "/investigate?user=a\r\nSet-Cookie:x",
            "/insights?x",
        ] {
            assert!(!investigate_url(bad), "{bad}");
        }
    }

    #[test]
    fn prompts_read_as_messages() {
        let v = serde_json::json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]}
        ]);
        let m = messages(&v);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].content, "hi");
        assert!(messages(&serde_json::Value::Null).is_empty());
    }
}
