//! The server side of the console's server functions: what they reach through Leptos context
//! ([`Console`]: the account store and the gateway's audit store), and the request helpers they
//! share (session cookie, client address, https detection).
//!
//! The server binary provides one [`Console`] to both the page renderer and the server-function
//! handler; a function that finds none answers [`ApiError::Unavailable`] (deny by default).

use std::sync::Arc;

use axum::http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use gateway::audit::AuditStore;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use crate::accounts::events::Refused;
use crate::accounts::{Accounts, LoginError, Role, User, session};
use crate::api::ApiError;
use crate::log_safe::LogSafe;

/// The backends the console's server functions use.
#[derive(Clone)]
pub struct Console {
    pub accounts: Accounts,
    pub audit: Arc<dyn AuditStore>,
    /// The SOC pages' backends (Insights queries, the vault); `None` answers them
    /// [`ApiError::Unavailable`].
    pub soc: Option<crate::soc::Soc>,
}

/// The [`Console`] provided for this request.
pub fn console() -> Result<Console, ApiError> {
    use_context::<Console>().ok_or_else(|| {
        tracing::error!("console context missing: server functions are not wired");
        ApiError::Unavailable
    })
}

/// The request being handled (provided by leptos_axum).
fn request_parts() -> Result<Parts, ApiError> {
    use_context::<Parts>().ok_or_else(|| {
        tracing::error!("request parts missing from the server-function context");
        ApiError::Unavailable
    })
}

/// The session token the request carries, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::token_from_cookie_header)
        .map(str::to_string)
}

/// The client's address, for the sign-in throttle, the audit trail and the log: the TCP peer,
/// or the client behind a trusted proxy (`gateway::net::client_addr`, set by the listener).
pub fn client_ip(parts: &Parts) -> String {
    gateway::net::ClientAddr::text(&parts.extensions)
}

/// Whether the browser reached the console over https (directly or through a proxy that says
/// so); then the session cookie is marked `Secure`.
pub fn is_https(headers: &HeaderMap, uri_scheme_https: bool) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let rfc7239_https = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    uri_scheme_https || forwarded_https || rfc7239_https
}

fn request_is_https(parts: &Parts) -> bool {
    let scheme_https = parts.uri.scheme_str() == Some("https");
    is_https(&parts.headers, scheme_https)
}

/// Whether the request came from a plain HTML form (no JavaScript yet), which expects a
/// redirect rather than a serialized result.
fn is_plain_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn response_options() -> Option<ResponseOptions> {
    use_context::<ResponseOptions>()
}

/// Answer a scripted server-function call that failed with `error`'s status
/// ([`ApiError::status`]). [`ApiError`]'s serializer calls this as the error becomes the
/// response, for every server function. Left alone: a plain form post (it is answered with a
/// redirect back to its page, which a 4xx would break) and a redirect status already set.
pub fn set_error_status(error: &ApiError) {
    let (Some(parts), Some(res)) = (use_context::<Parts>(), response_options()) else {
        return;
    };
    if is_plain_form(&parts.headers) {
        return;
    }
    let redirecting = res
        .0
        .read()
        .map(|r| r.status.is_some_and(|s| s.is_redirection()))
        .unwrap_or(true);
    if !redirecting {
        res.set_status(error.status());
    }
}

fn set_cookie(value: &str) {
    match (response_options(), HeaderValue::from_str(value)) {
        (Some(res), Ok(value)) => res.append_header(SET_COOKIE, value),
        _ => tracing::error!("could not set the session cookie"),
    }
}

/// The signed-in user of this request, or [`ApiError::Unauthorized`].
pub async fn require_user() -> Result<(Console, User), ApiError> {
    let console = console()?;
    let parts = request_parts()?;
    let Some(token) = session_token(&parts.headers) else {
        return Err(unauthorized());
    };
    match console
        .accounts
        .session_user(&token, gateway::now_ms())
        .await
    {
        Ok(Some(user)) => Ok((console, user)),
        Ok(None) => Err(unauthorized()),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(ApiError::Unavailable)
        }
    }
}

/// Whether the gateway's configuration names an OpenID Connect provider for console sign-in.
pub fn sso_available() -> bool {
    use_context::<gateway::state::AppState>().is_some_and(|s| s.config.console.oidc.is_some())
}

/// The signed-in user of this request if their role is one of `allowed`; otherwise
/// [`ApiError::Unauthorized`] (no session) or [`ApiError::Forbidden`] (403). Every page loader
/// and server function beyond the overview calls this first: deny by default.
pub async fn require_role(allowed: &[Role]) -> Result<(Console, User), ApiError> {
    let (console, user) = require_user().await?;
    if allowed.contains(&user.role) {
        Ok((console, user))
    } else {
        // Pages too (a page render is not serialized as an error): 403.
        if let Some(res) = response_options() {
            res.set_status(ApiError::Forbidden.status());
        }
        Err(ApiError::Forbidden)
    }
}

fn unauthorized() -> ApiError {
    if let Some(res) = response_options() {
        res.set_status(ApiError::Unauthorized.status());
    }
    ApiError::Unauthorized
}

/// The body of the `login` server function.
///
/// Client-chosen values (the name, the address) reach the log only through [`LogSafe`];
/// refused sign-ins reach the audit trail counted per account and address
/// ([`Accounts::record_refused_sign_in`]), never one row each.
pub async fn login(name: String, password: String) -> Result<(), ApiError> {
    let console = console()?;
    let parts = request_parts()?;
    let ip = client_ip(&parts);
    let previous = session_token(&parts.headers);
    let name = name.trim();
    let now = gateway::now_ms();
    let result = console
        .accounts
        .login(name, &password, &ip, previous.as_deref(), now)
        .await;
    let (user, client) = (LogSafe(name), LogSafe(&ip));
    let refused = |kind: Refused| {
        let accounts = console.accounts.clone();
        let (name, ip) = (name.to_string(), ip.clone());
        async move {
            if let Err(e) = accounts.record_refused_sign_in(kind, &name, &ip, now).await {
                tracing::error!(error = %e, kind = kind.kind(), "console event not recorded");
            }
        }
    };
    let error = match result {
        Ok(session) => {
            tracing::info!(user = %LogSafe(&session.user.name), %client, "console sign-in");
            crate::admin::server::record_session_event(&console, &session.user.name, "login", &ip)
                .await;
            set_cookie(&session::set_cookie(
                &session.token,
                request_is_https(&parts),
            ));
            leptos_axum::redirect("/");
            return Ok(());
        }
        Err(LoginError::Invalid) => {
            tracing::warn!(%user, %client, "console sign-in failed");
            refused(Refused::Failed).await;
            ApiError::InvalidCredentials
        }
        Err(LoginError::Throttled) => {
            tracing::warn!(%user, %client, "console sign-in throttled");
            refused(Refused::Throttled).await;
            ApiError::Throttled
        }
        Err(LoginError::Busy) => {
            tracing::warn!(%user, %client, "console sign-in refused: too many in progress");
            refused(Refused::Throttled).await;
            if let Some(res) = response_options() {
                res.insert_header(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unavailable
        }
        Err(LoginError::Malformed(message)) => {
            tracing::warn!(%user, %client, "console sign-in refused: malformed");
            ApiError::Invalid(message.to_string())
        }
        Err(LoginError::Store(e)) => {
            tracing::error!(error = %e, "console sign-in could not be checked");
            ApiError::Unavailable
        }
    };
    if is_plain_form(&parts.headers) {
        // Without JavaScript the answer is a page: back to the form, with the message's code.
        leptos_axum::redirect(&format!("/login?error={}", error.code()));
    } else if let Some(res) = response_options() {
        res.set_status(match error {
            ApiError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        });
    }
    Err(error)
}

/// The body of the `logout` server function.
pub async fn logout() -> Result<(), ApiError> {
    let console = console()?;
    let parts = request_parts()?;
    if let Some(token) = session_token(&parts.headers)
        && let Ok(Some(user)) = console
            .accounts
            .session_user(&token, gateway::now_ms())
            .await
    {
        crate::admin::server::record_session_event(
            &console,
            &user.name,
            "logout",
            &client_ip(&parts),
        )
        .await;
    }
    if let Some(token) = session_token(&parts.headers)
        && let Err(e) = console.accounts.logout(&token).await
    {
        tracing::error!(error = %e, "could not delete the session");
        return Err(ApiError::Unavailable);
    }
    set_cookie(&session::clear_cookie(request_is_https(&parts)));
    leptos_axum::redirect("/login");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_detection_trusts_scheme_and_proxy_headers_only() {
        let mut h = HeaderMap::new();
        assert!(!is_https(&h, false));
        assert!(is_https(&h, true));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&h, false));
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        assert!(is_https(&h, false));
    }

    #[test]
    fn session_token_is_read_from_any_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=b"));
        h.append(COOKIE, HeaderValue::from_static("gp_session=tok; c=d"));
        assert_eq!(session_token(&h).as_deref(), Some("tok"));
    }
}
