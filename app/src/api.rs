//! The console's server functions and the types they exchange with the browser.
//!
//! Every function here runs on the server and checks the caller's session there (deny by
//! default); the only exceptions are [`login`], which creates a session, and [`logout`], which
//! only ever removes one. Paths are fixed (`/api/<name>`) so the server's session gate and the
//! browser test can name them.

use std::fmt;

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// The time range the overview shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Range {
    #[serde(rename = "15m")]
    Minutes15,
    #[default]
    #[serde(rename = "1h")]
    Hour1,
    #[serde(rename = "24h")]
    Hours24,
}

impl Range {
    /// Every range, in the order the range control shows them.
    pub const ALL: [Range; 3] = [Range::Minutes15, Range::Hour1, Range::Hours24];

    /// The value in the `?range=` query parameter.
    pub fn as_query(self) -> &'static str {
        match self {
            Range::Minutes15 => "15m",
            Range::Hour1 => "1h",
            Range::Hours24 => "24h",
        }
    }

    /// Parse a `?range=` value; anything unknown is the default (1 h).
    pub fn from_query(value: Option<&str>) -> Range {
        match value {
            Some("15m") => Range::Minutes15,
            Some("24h") => Range::Hours24,
            _ => Range::Hour1,
        }
    }

    /// Short label for the range control.
    pub fn label(self) -> &'static str {
        match self {
            Range::Minutes15 => "15 min",
            Range::Hour1 => "1 h",
            Range::Hours24 => "24 h",
        }
    }

    /// Label in running text ("in the last …").
    pub fn long_label(self) -> &'static str {
        match self {
            Range::Minutes15 => "last 15 minutes",
            Range::Hour1 => "last hour",
            Range::Hours24 => "last 24 hours",
        }
    }

    /// Length of the range in minutes.
    pub fn minutes(self) -> i64 {
        match self {
            Range::Minutes15 => 15,
            Range::Hour1 => 60,
            Range::Hours24 => 24 * 60,
        }
    }
}

/// The signed-in user, as the top bar shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    /// `admin`, `soc` or `viewer`.
    pub role: String,
}

/// Everything the overview page shows for one range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub range: Range,
    /// Start of the first minute shown, ms since the epoch.
    pub since_ms: i64,
    /// End of the last minute shown (exclusive), ms since the epoch.
    pub until_ms: i64,
    /// When the numbers were read, ms since the epoch.
    pub generated_ms: i64,
    pub requests: u64,
    /// Requests where a guardrail intervened.
    pub interventions: u64,
    /// The busiest minute's request count.
    pub peak_per_minute: u64,
    /// P50, P95 and P99 of the request latency, read from per-minute histograms (empty when
    /// there were no requests).
    pub latency: Vec<Percentile>,
    /// Tokens by feature, most first.
    pub features: Vec<FeatureTokens>,
    /// Users with the most requests, most first.
    pub top_users: Vec<TopEntry>,
    /// Policies that intervened most often (once per request), most first.
    pub top_policies: Vec<TopEntry>,
    /// The requests-per-minute chart, an SVG document rendered on the server.
    pub chart_svg: String,
    /// The tokens-by-feature chart, an SVG document rendered on the server.
    pub tokens_svg: String,
    /// On `backend = "aws"`: records in this process's local spool, waiting for S3, KMS or
    /// CloudWatch (as `/readyz` reports them); `None` on the embedded default.
    #[serde(default)]
    pub spooled_records: Option<u64>,
    /// On `backend = "aws"`: spooled records that can never be delivered (refused by the
    /// service, or corrupt), kept in `spool/dead/` (`/readyz` `deadLetterRecords`).
    #[serde(default)]
    pub dead_letter_records: Option<u64>,
}

/// A latency percentile as the histogram knows it: in `[lower_ms, upper_ms)`, `upper_ms`
/// `None` past the last bucket (100 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentile {
    /// `P50`, `P95`, `P99`.
    pub label: String,
    pub lower_ms: u64,
    pub upper_ms: Option<u64>,
}

impl Percentile {
    /// What the page shows: the bucket's upper bound ("≤ 237 ms", "≤ 1.3 s").
    pub fn display(&self) -> String {
        match self.upper_ms {
            Some(ms) if ms < 1_000 => format!("≤ {ms} ms"),
            Some(ms) => {
                let s = format!("{:.1}", ms as f64 / 1000.0);
                format!("≤ {} s", s.trim_end_matches(".0"))
            }
            None => format!("≥ {} s", self.lower_ms / 1000),
        }
    }
}

/// One feature's traffic in the overview's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureTokens {
    pub feature: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A name and its count in a top list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopEntry {
    pub name: String,
    pub count: u64,
}

/// Entries in the overview's top-users and top-policies lists.
pub const TOP_ENTRIES: usize = 8;

/// What a console server function can fail with. The messages are safe to show: internal
/// detail is logged on the server, never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiError {
    /// No session, or it expired: sign in again.
    Unauthorized,
    /// Wrong user name or password (one message for both).
    InvalidCredentials,
    /// Too many failed sign-ins for this user or address.
    Throttled,
    /// Signed in, but the role does not allow this page or function (deny by default).
    Forbidden,
    /// The input was refused; the message says what to change (never echoes secrets).
    Invalid(String),
    /// The id names nothing this caller may see: unknown, gone, or someone else's (one answer
    /// for all three, so ids of others cannot be probed).
    NotFound(String),
    /// The request conflicts with the current state: a name taken, a version a feature pins, a
    /// limit reached.
    Conflict(String),
    /// A backend failed; the detail is in the server log.
    Unavailable,
    /// The request did not reach the function or its answer did not come back.
    Transport(String),
}

impl ApiError {
    /// The code used in `/login?error=<code>` after a sign-in without JavaScript.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid",
            ApiError::Throttled => "throttled",
            ApiError::Forbidden => "forbidden",
            ApiError::Invalid(_) => "invalid-input",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable => "unavailable",
            ApiError::Transport(_) => "transport",
        }
    }

    /// The error a `/login?error=<code>` names, if any.
    pub fn from_code(code: &str) -> Option<ApiError> {
        match code {
            "unauthorized" => Some(ApiError::Unauthorized),
            "invalid" => Some(ApiError::InvalidCredentials),
            "throttled" => Some(ApiError::Throttled),
            "unavailable" => Some(ApiError::Unavailable),
            "forbidden" => Some(ApiError::Forbidden),
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str("Your session has ended. Please sign in."),
            ApiError::InvalidCredentials => f.write_str("Invalid user name or password."),
            ApiError::Throttled => {
                f.write_str("Too many failed sign-ins. Wait a minute and try again.")
            }
            ApiError::Forbidden => f.write_str("Your role does not allow this."),
            ApiError::Invalid(message)
            | ApiError::NotFound(message)
            | ApiError::Conflict(message) => f.write_str(message),
            ApiError::Unavailable => {
                f.write_str("The console could not reach its data. Try again shortly.")
            }
            ApiError::Transport(_) => f.write_str("The server could not be reached."),
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(feature = "ssr")]
impl ApiError {
    /// The HTTP status a server function answers with this error: one exhaustive mapping for
    /// every console server function (caller mistakes are 4xx, never 500).
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ApiError::Unauthorized | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // On the server these mean the caller sent arguments that do not fit the function
            // (a missing field, a value of the wrong type): the caller's mistake, a 400. The
            // detail may quote the input, so it is not echoed.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Args(_)
            | ServerFnErrorErr::MissingArg(_)
            | ServerFnErrorErr::Deserialization(_) => {
                ApiError::Invalid("the request's fields could not be read".into())
            }
            other => ApiError::Transport(other.to_string()),
        }
    }

    /// The error as the response body. On the server this is where every server function's
    /// error becomes its response, so it also sets the status from [`ApiError::status`]
    /// (through `ResponseOptions`, see [`crate::context::set_error_status`]): one place, so no
    /// function can forget it.
    fn ser(&self) -> leptos::server_fn::Bytes {
        #[cfg(feature = "ssr")]
        crate::context::set_error_status(self);
        <JsonEncoding as leptos::server_fn::Encodes<ApiError>>::encode(self).unwrap_or_else(|_| {
            leptos::server_fn::Bytes::from_static(br#"{"Transport":"unencodable error"}"#)
        })
    }
}

/// Sign in. On success the session cookie is set and the browser is sent to the overview; the
/// form also works before the wasm loads (a plain POST answered with a redirect).
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(name: String, password: String) -> Result<(), ApiError> {
    crate::context::login(name, password).await
}

/// Sign out: the session is deleted and the cookie cleared.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    crate::context::logout().await
}

/// Whether single sign-on (`[console.oidc]`) is configured, for the sign-in page's link. Public:
/// it tells nothing beyond what the sign-in page shows.
#[server(prefix = "/api", endpoint = "sso_available")]
pub async fn sso_available() -> Result<bool, ApiError> {
    Ok(crate::context::sso_available())
}

/// The signed-in user.
#[server(prefix = "/api", endpoint = "whoami")]
pub async fn whoami() -> Result<UserInfo, ApiError> {
    let (_, user) = crate::context::require_user().await?;
    Ok(UserInfo {
        name: user.name,
        role: user.role.as_str().to_string(),
    })
}

/// Headline numbers and the requests-per-minute chart for `range`, read from the audit store.
#[server(prefix = "/api", endpoint = "overview")]
pub async fn load_overview(range: Range) -> Result<Overview, ApiError> {
    let (console, _) = crate::context::require_user().await?;
    let mut overview = read_overview(&console, range, gateway::now_ms()).await?;
    let spool = leptos::prelude::use_context::<gateway::state::AppState>()
        .and_then(|state| state.spool.clone());
    overview.spooled_records = spool.as_ref().map(|spool| spool.backlog());
    overview.dead_letter_records = spool.as_ref().map(|spool| spool.dead_letters());
    Ok(overview)
}

/// Read the numbers for `range` ending at `now_ms` (whole minutes, the current one included)
/// in one [`gateway::audit::AuditStore::usage`] call, and render the charts.
#[cfg(feature = "ssr")]
pub async fn read_overview(
    console: &crate::context::Console,
    range: Range,
    now_ms: i64,
) -> Result<Overview, ApiError> {
    use crate::chart;

    let until_ms = (now_ms.div_euclid(60_000) + 1) * 60_000;
    let since_ms = until_ms - range.minutes() * 60_000;
    let usage = console
        .audit
        .usage(since_ms, until_ms, TOP_ENTRIES)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "audit store could not summarise usage");
            ApiError::Unavailable
        })?;
    let counts = &usage.minutes;
    let requests = counts.iter().map(|c| c.requests).sum();
    let interventions = counts.iter().map(|c| c.interventions).sum();
    let peak_per_minute = counts.iter().map(|c| c.requests).max().unwrap_or(0);
    let latency = [("P50", 0.50), ("P95", 0.95), ("P99", 0.99)]
        .into_iter()
        .filter_map(|(label, p)| {
            usage.latency.percentile(p).map(|b| Percentile {
                label: label.to_string(),
                lower_ms: b.lower_ms,
                upper_ms: b.upper_ms,
            })
        })
        .collect();
    let rendering = |e: String| {
        tracing::error!(error = %e, "chart rendering failed");
        ApiError::Unavailable
    };
    let chart_svg = chart::requests_per_minute(counts, since_ms, until_ms).map_err(rendering)?;
    let bars: Vec<chart::FeatureTokens<'_>> = usage
        .features
        .iter()
        .map(|f| chart::FeatureTokens {
            feature: &f.feature,
            input: f.input_tokens,
            output: f.output_tokens,
        })
        .collect();
    let tokens_svg = chart::tokens_by_feature(&bars).map_err(rendering)?;
    let top = |list: &[gateway::audit::rollup::Ranked]| {
        list.iter()
            .map(|r| TopEntry {
                name: r.name.clone(),
                count: r.count,
            })
            .collect()
    };
    Ok(Overview {
        spooled_records: None,
        dead_letter_records: None,
        range,
        since_ms,
        until_ms,
        generated_ms: now_ms,
        requests,
        interventions,
        peak_per_minute,
        latency,
        features: usage
            .features
            .iter()
            .map(|f| FeatureTokens {
                feature: f.feature.clone(),
                requests: f.requests,
                input_tokens: f.input_tokens,
                output_tokens: f.output_tokens,
            })
            .collect(),
        top_users: top(&usage.top_users),
        top_policies: top(&usage.top_policies),
        chart_svg,
        tokens_svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_query_round_trips_and_defaults_to_one_hour() {
        for range in Range::ALL {
            assert_eq!(Range::from_query(Some(range.as_query())), range);
        }
        assert_eq!(Range::from_query(None), Range::Hour1);
        assert_eq!(Range::from_query(Some("7d")), Range::Hour1);
    }

    #[test]
    fn error_codes_round_trip_and_messages_are_generic() {
        for e in [
            ApiError::Unauthorized,
            ApiError::InvalidCredentials,
            ApiError::Throttled,
            ApiError::Unavailable,
        ] {
            assert_eq!(ApiError::from_code(e.code()), Some(e));
        }
        let msg = ApiError::Transport("db path /secret".into()).to_string();
        assert!(!msg.contains("secret"));
    }

    #[test]
    fn percentiles_show_the_bucket_bound() {
        let p = |lower_ms, upper_ms| Percentile {
            label: "P50".into(),
            lower_ms,
            upper_ms,
        };
        assert_eq!(p(178, Some(237)).display(), "≤ 237 ms");
        assert_eq!(p(750, Some(1_000)).display(), "≤ 1 s");
        assert_eq!(p(1_000, Some(1_334)).display(), "≤ 1.3 s");
        assert_eq!(p(100_000, None).display(), "≥ 100 s");
    }
}
