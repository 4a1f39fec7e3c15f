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
    /// The requests-per-minute chart, an SVG document rendered on the server.
    pub chart_svg: String,
}

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
            ApiError::Invalid(message) => f.write_str(message),
            ApiError::Unavailable => {
                f.write_str("The console could not reach its data. Try again shortly.")
            }
            ApiError::Transport(_) => f.write_str("The server could not be reached."),
        }
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Transport(value.to_string())
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
    crate::context::overview(&console, range, gateway::now_ms()).await
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
}
