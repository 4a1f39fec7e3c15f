//! The SOC pages' server functions and the types they exchange: Insights (start / poll / stop a
//! query, CSV export) and user investigation (a user's timeline, opening a vault record with a
//! reason). Every function calls `require_role(&[Role::Soc])` first on the server; the ones
//! that change state are POSTs.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, StreamingText, TextStream};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// The time windows the range picker offers (`?range=`), plus `custom` (`?start=&end=`).
pub const WINDOWS: [(&str, &str); 5] = [
    ("15m", "15 min"),
    ("1h", "1 h"),
    ("24h", "24 h"),
    ("7d", "7 days"),
    ("30d", "30 days"),
];

/// The language's commands, offered above the editor (inserted at the cursor once hydrated).
pub const COMMANDS: [&str; 8] = [
    "fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup",
];
/// Functions and keywords offered next to the commands.
pub const FUNCTIONS: [&str; 12] = [
    "count(*)",
    "avg()",
    "pct( , 99)",
    "sum()",
    "count_distinct()",
    "bin(5m)",
    "like",
    "in [ ]",
    "by",
    "as",
    "desc",
    "ispresent()",
];

/// A canned query the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub key: &'static str,
    pub label: &'static str,
    /// The query; `{user}` is replaced by the quoted user field.
    pub query: &'static str,
}

pub const PRESETS: [Preset; 3] = [
    Preset {
        key: "prompts-by-user",
        label: "Every prompt by user",
        query: "fields @timestamp, requestId, userSub, feature, modelAlias, guardrailAction, inputAction, outputAction, status\n| filter userSub = {user}\n| sort @timestamp desc\n| limit 500",
    },
    Preset {
        key: "interventions-by-policy",
        label: "Interventions by policy",
        query: "filter guardrailAction = \"INTERVENED\"\n| stats count(*) as interventions by inputAction, outputAction\n| sort interventions desc",
    },
    Preset {
        key: "latency-by-model",
        label: "Latency by model",
        query: "stats count(*) as requests, avg(latencyMs) as avgMs, pct(latencyMs, 99) as p99Ms by model\n| sort requests desc",
    },
];

/// A string literal of the query language (double quotes, `\` escapes).
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Preset {
    /// The preset's query text for `user` (only "every prompt by user" uses it).
    pub fn text(&self, user: &str) -> String {
        self.query.replace("{user}", &quote_string(user))
    }

    pub fn find(key: &str) -> Option<Preset> {
        PRESETS.into_iter().find(|p| p.key == key)
    }
}

/// `s` percent-encoded for a URL query value (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Insights page's URL for a query, range and (when it runs) query id.
pub fn insights_url(query: &str, range: &str, start: &str, end: &str, id: &str) -> String {
    let mut url = format!(
        "/insights?query={}&range={}",
        encode_component(query),
        encode_component(range)
    );
    if range == "custom" {
        url.push_str(&format!(
            "&start={}&end={}",
            encode_component(start),
            encode_component(end)
        ));
    }
    if !id.is_empty() {
        url.push_str("&id=");
        url.push_str(&encode_component(id));
    }
    url
}

/// Where a query stops parsing: 1-based line and column, and the line itself for the caret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub line_text: String,
}

/// One query's state as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryView {
    pub id: String,
    /// `Scheduled`, `Running`, `Complete`, `Failed`, `Cancelled`, `Timeout`.
    pub status: String,
    /// Still scheduled or running: poll again.
    pub active: bool,
    /// Events read so far (progress), or in total once finished.
    pub scanned: u64,
    pub matched: u64,
    pub elapsed_ms: u64,
    pub columns: Vec<String>,
    /// Cells by column ("" where the row has no value), at most [`MAX_SHOWN_ROWS`].
    pub rows: Vec<Vec<String>>,
    /// Rows the query returned (the CSV has them all).
    pub total_rows: usize,
    pub error: Option<String>,
    /// A time series chart (SVG) when the query groups `by bin(...)`.
    pub chart_svg: Option<String>,
    /// The chart's series names, in the order of its colours (the legend is HTML beside it,
    /// `swatch-s<i>`).
    pub chart_legend: Vec<String>,
}

/// Rows sent to the page; the CSV export has every row.
pub const MAX_SHOWN_ROWS: usize = 1_000;

/// Everything the Insights page shows for one URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightsData {
    pub syntax_error: Option<SyntaxError>,
    pub run: Option<QueryView>,
    /// A message about the URL's query id or a refused start (e.g. too many running).
    pub notice: Option<String>,
    /// The range as understood, in words ("last 24 hours", "2024-05-01 10:00 → …").
    pub range_label: String,
    /// The language's words (from the gateway's parser), for colouring the editor.
    pub vocabulary: crate::soc::highlight::Vocabulary,
}

/// One request in a user's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub timestamp: String,
    pub request_id: String,
    pub feature: String,
    pub model: String,
    pub action: String,
    pub input_action: String,
    pub output_action: String,
    pub status: String,
    pub latency_ms: String,
    /// Whether the request has a vault record that can be opened.
    pub has_record: bool,
}

/// One user's investigation page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub user: String,
    pub range_label: String,
    pub requests: u64,
    pub interventions: u64,
    pub entries: Vec<TimelineEntry>,
    /// Requests and interventions over time (SVG).
    pub chart_svg: String,
    /// More requests matched than the timeline shows.
    pub truncated: bool,
    /// The record (or the refusal) of an "open record" posted without JavaScript, handed to
    /// this page by the redirect's `shown` token.
    pub opened: Option<Result<OpenedRecord, ApiError>>,
}

/// One message of a prompt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Who opened a record, when, why and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub when: String,
    pub actor: String,
    pub reason: String,
    pub origin: String,
}

/// A decrypted vault record. Shown once, never stored by the page beyond its lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedRecord {
    pub request_id: String,
    pub when: String,
    pub user: String,
    pub feature: String,
    pub model: String,
    pub input_action: String,
    pub output_action: String,
    pub policies: Vec<String>,
    pub raw_prompt: Vec<Message>,
    pub model_input: Vec<Message>,
    pub raw_output: String,
    pub delivered_output: String,
    /// Every opening of this record, this one included, oldest first.
    pub accesses: Vec<Access>,
}

/// Reasons are required: 4 to 1000 characters.
pub const MIN_REASON: usize = 4;
pub const MAX_REASON: usize = 1000;

/// The Insights page's data for its URL: the syntax error of `query` (when there is no run),
/// or the run `id` (waiting briefly for it to finish).
#[server(prefix = "/api", endpoint = "insights_page")]
pub async fn insights_page(
    query: String,
    range: String,
    start: String,
    end: String,
    id: String,
    error: String,
) -> Result<InsightsData, ApiError> {
    let (console, user) = crate::context::require_role(&[crate::accounts::Role::Soc]).await?;
    let mut page =
        crate::soc::server::insights_page(&console, &user, &query, &range, &start, &end, &id)
            .await?;
    if page.notice.is_none() && !error.is_empty() {
        page.notice = crate::soc::server::notice(&console, &error);
    }
    Ok(page)
}

/// StartQuery. Answers with a redirect to `/insights?query=…&range=…&id=…` (a plain form post
/// follows it; the hydrated page navigates), or without `id` when the query does not parse
/// (the page then shows where).
#[server(prefix = "/api", endpoint = "insights_start")]
pub async fn insights_start(
    query: Option<String>,
    range: Option<String>,
    start: Option<String>,
    end: Option<String>,
    preset: Option<String>,
    user: Option<String>,
) -> Result<(), ApiError> {
    let (console, analyst) = crate::context::require_role(&[crate::accounts::Role::Soc]).await?;
    // A preset button runs its query (with the user field, for "every prompt by user").
    let query = match preset.as_deref().and_then(Preset::find) {
        Some(p) => p.text(user.as_deref().unwrap_or("").trim()),
        None => query.unwrap_or_default(),
    };
    crate::soc::server::start(
        &console,
        &analyst,
        &query,
        range.as_deref().unwrap_or("1h"),
        start.as_deref().unwrap_or(""),
        end.as_deref().unwrap_or(""),
    )
}

/// StopQuery; back to the page afterwards.
#[server(prefix = "/api", endpoint = "insights_stop")]
pub async fn insights_stop(id: String, back: String) -> Result<(), ApiError> {
    let (console, user) = crate::context::require_role(&[crate::accounts::Role::Soc]).await?;
    crate::soc::server::stop(&console, &user, &id, &back)
}

/// A finished query's rows as `text/csv` (every row, formula-injection safe), for a plain
/// `<a href="/api/insights_csv?id=…">` download.
#[server(prefix = "/api", endpoint = "insights_csv", input = GetUrl, output = StreamingText)]
pub async fn insights_csv(id: String) -> Result<TextStream<ApiError>, ApiError> {
    let (console, user) = crate::context::require_role(&[crate::accounts::Role::Soc]).await?;
    let csv = crate::soc::server::csv(&console, &user, &id)?;
    Ok(TextStream::new(futures::stream::once(
        async move { Ok(csv) },
    )))
}

/// One user's timeline over `range`, from the audit store; with `shown`, also the record an
/// "open record" form post without JavaScript left for this page (`soc::handoff`).
#[server(prefix = "/api", endpoint = "investigate")]
pub async fn investigate(
    user: String,
    range: String,
    shown: Option<String>,
) -> Result<Investigation, ApiError> {
    let (console, me) = crate::context::require_role(&[crate::accounts::Role::Soc]).await?;
    let mut inv = crate::soc::server::investigate(&console, &user, &range).await?;
    if let Some(token) = shown.filter(|t| !t.is_empty()) {
        inv.opened = crate::soc::server::handed_off(&console, &me, &token);
    }
    Ok(inv)
}

/// Open one request's vault record: the access event (who, which record, why, when, from
/// where) is written first, then the record is decrypted. A plain form post (no JavaScript yet)
/// is answered with a redirect to `back` (an `/investigate` URL) that shows the record.
#[server(prefix = "/api", endpoint = "open_record")]
pub async fn open_record(
    request_id: String,
    reason: String,
    back: Option<String>,
) -> Result<OpenedRecord, ApiError> {
    let (console, user) = crate::context::require_role(&[crate::accounts::Role::Soc]).await?;
    let result = crate::soc::server::open_record(&console, &user, &request_id, &reason).await;
    crate::soc::server::hand_off_to_page(&console, &user, back.as_deref(), &result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_quote_the_user() {
        let p = Preset::find("prompts-by-user").unwrap_or(PRESETS[0]);
        let q = p.text("a\"b\\c@example.com");
        assert!(q.contains(r#"userSub = "a\"b\\c@example.com""#), "{q}");
    }

    #[test]
    fn urls_encode_every_part() {
        let url = insights_url(
            "fields a | filter b = \"x&y\"",
            "custom",
            "2024-01-01T00:00",
            "",
            "ab12",
        );
        assert_eq!(
            url,
            "/insights?query=fields%20a%20%7C%20filter%20b%20%3D%20%22x%26y%22&range=custom\
             &start=2024-01-01T00%3A00&end=&id=ab12"
        );
    }
}
