//! Console sign-in through an OpenID Connect provider (the Cognito hosted UI in AWS).
//!
//! The authorization-code flow with PKCE (S256): `GET /auth/oidc/login` sends the browser to
//! the provider with a fresh `state`, `nonce` and code challenge; `GET /auth/oidc/callback`
//! takes the code back, checks `state` against the cookie set at the start (so a code can't be
//! injected into someone else's browser), redeems the code with the verifier, and checks the ID
//! token: signature by the provider's JWKS (RS256/ES256 only, the algorithm fixed by the key),
//! `iss`, `aud` = the client id, `exp`, and `nonce`. The console role comes from the groups claim
//! (`cognito:groups`): the strongest of admin > soc > viewer that the groups name; a user in no
//! console group is refused (deny by default). The user is kept as a federated account named
//! `sso.<username>` (it has no password) and gets an ordinary console session.
//!
//! Pending sign-ins live in memory, at most [`MAX_PENDING`] at once and for [`PENDING_TTL`]
//! each, and are used once. Errors shown to the browser are generic; the detail goes to the log
//! without any token or code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway::auth::jwks::{HttpJwks, KeyCache};
use gateway::config::OidcConfig;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use app::accounts::{Accounts, Role, session};

/// At most this many sign-ins may be in progress at once.
pub const MAX_PENDING: usize = 1024;
/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// The cookie that binds a pending sign-in to the browser that started it.
const STATE_COOKIE: &str = "gp_oidc_state";
/// Time limit for each call to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest discovery document or token response read.
const MAX_PROVIDER_BODY: usize = 256 * 1024;
/// Leeway for the ID token's `exp`/`iat`.
const CLOCK_LEEWAY_SECS: u64 = 60;

/// The parts of the provider's discovery document the flow uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Pending {
    verifier: String,
    nonce: String,
    started: Instant,
}

/// The sign-in flow's state: configuration, the provider's endpoints and keys (fetched on first
/// use, so a provider that is down at start-up doesn't stop the console), pending sign-ins.
pub struct Oidc {
    config: OidcConfig,
    accounts: Accounts,
    http: reqwest::Client,
    provider: OnceCell<(Discovery, Arc<KeyCache>)>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Whether cookies get `Secure` (the redirect URL is https).
    secure: bool,
    /// The console's stylesheet, for the failure page.
    stylesheet: String,
}

/// Why a sign-in failed, as far as the browser is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Unknown, expired or reused `state`, or a `state` from another browser.
    Expired,
    /// The provider reported an error, or the code or ID token did not check out.
    Rejected,
    /// The user's groups name no console role, or the account is disabled.
    NoRole,
    /// The provider could not be reached or answered nonsense.
    Unavailable,
    /// Too many sign-ins in progress.
    Busy,
}

impl Failure {
    fn status(self) -> StatusCode {
        match self {
            Failure::Expired | Failure::Rejected => StatusCode::BAD_REQUEST,
            Failure::NoRole => StatusCode::FORBIDDEN,
            Failure::Unavailable => StatusCode::BAD_GATEWAY,
            Failure::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Failure::Expired => "This sign-in expired or was already used. Please start again.",
            Failure::Rejected => "The identity provider's answer could not be verified.",
            Failure::NoRole => "Your account is not in a console group (admin, soc or viewer).",
            Failure::Unavailable => {
                "The identity provider could not be reached. Try again shortly."
            }
            Failure::Busy => "Too many sign-ins are in progress. Try again in a minute.",
        }
    }
}

impl Oidc {
    /// `stylesheet`: the console's CSS path (`/<site-pkg-dir>/<output-name>.css`).
    pub fn new(config: OidcConfig, accounts: Accounts, stylesheet: String) -> anyhow::Result<Oidc> {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let secure = config.redirect_url.starts_with("https://");
        Ok(Oidc {
            config,
            accounts,
            http,
            provider: OnceCell::new(),
            pending: Mutex::new(HashMap::new()),
            secure,
            stylesheet,
        })
    }

    /// The two routes, to merge into the console's router (both public: they create sessions).
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/auth/oidc/login", get(start))
            .route("/auth/oidc/callback", get(callback))
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self)
    }

    async fn provider(&self) -> Result<&(Discovery, Arc<KeyCache>), Failure> {
        self.provider
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let body = self.read(self.http.get(&url)).await?;
                let discovery: Discovery = serde_json::from_slice(&body).map_err(|e| {
                    tracing::warn!(error = %e, "OIDC discovery document is not valid");
                    Failure::Unavailable
                })?;
                if discovery.issuer != self.config.issuer {
                    tracing::warn!(
                        expected = %self.config.issuer,
                        found = %discovery.issuer,
                        "OIDC discovery names another issuer"
                    );
                    return Err(Failure::Unavailable);
                }
                let keys = Arc::new(KeyCache::new(
                    Arc::new(HttpJwks::new(discovery.jwks_uri.clone())),
                    Duration::from_secs(30),
                ));
                Ok((discovery, keys))
            })
            .await
    }

    /// Send `request`; the body of a 2xx answer, bounded in size.
    async fn read(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, Failure> {
        let mut response = request.send().await.map_err(|e| {
            tracing::warn!(error = %e, "OIDC provider unreachable");
            Failure::Unavailable
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| Failure::Unavailable)? {
            if body.len() + chunk.len() > MAX_PROVIDER_BODY {
                tracing::warn!("OIDC provider answer too large");
                return Err(Failure::Unavailable);
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            Ok(body)
        } else if status.is_client_error() {
            tracing::warn!(
                status = status.as_u16(),
                "OIDC provider refused the request"
            );
            Err(Failure::Rejected)
        } else {
            tracing::warn!(status = status.as_u16(), "OIDC provider failed");
            Err(Failure::Unavailable)
        }
    }

    /// Remember a new sign-in; its `state`, or [`Failure::Busy`].
    fn remember(&self, verifier: String, nonce: String) -> Result<String, Failure> {
        let state = random_token().ok_or(Failure::Unavailable)?;
        let mut pending = self.pending.lock().map_err(|_| Failure::Unavailable)?;
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        if pending.len() >= MAX_PENDING {
            return Err(Failure::Busy);
        }
        pending.insert(
            state.clone(),
            Pending {
                verifier,
                nonce,
                started: Instant::now(),
            },
        );
        Ok(state)
    }

    /// Take the pending sign-in for `state` (once), if it is still fresh.
    fn take(&self, state: &str) -> Result<Pending, Failure> {
        let mut pending = self.pending.lock().map_err(|_| Failure::Unavailable)?;
        match pending.remove(state) {
            Some(p) if p.started.elapsed() < PENDING_TTL => Ok(p),
            _ => Err(Failure::Expired),
        }
    }

    /// The console role `groups` grant, strongest first.
    fn role_for(&self, groups: &[String]) -> Option<Role> {
        let has = |g: &str| groups.iter().any(|x| x == g);
        if has(&self.config.admin_group) {
            Some(Role::Admin)
        } else if has(&self.config.soc_group) {
            Some(Role::Soc)
        } else if has(&self.config.viewer_group) {
            Some(Role::Viewer)
        } else {
            None
        }
    }

    fn state_cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        // Lax, not Strict: the cookie must come back on the provider's top-level redirect.
        format!(
            "{STATE_COOKIE}={value}; Path=/auth/oidc; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        )
    }

    /// Redeem `code` and check the ID token; the user name and role.
    async fn finish(&self, code: &str, pending: &Pending) -> Result<(String, Role), Failure> {
        let (discovery, keys) = self.provider().await?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.config.redirect_url)
            .append_pair("code_verifier", &pending.verifier)
            .append_pair("client_id", &self.config.client_id)
            .finish();
        let mut request = self
            .http
            .post(&discovery.token_endpoint)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(axum::http::header::ACCEPT, "application/json")
            .body(form);
        if let Some(secret) = &self.config.client_secret {
            request = request.basic_auth(&self.config.client_id, Some(secret.expose()));
        }
        let body = self.read(request).await?;
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: String,
        }
        let tokens: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            tracing::warn!("OIDC token response has no id_token");
            Failure::Rejected
        })?;
        let claims = self
            .verify_id_token(&tokens.id_token, keys, pending)
            .await?;
        let groups = groups(&claims, &self.config.groups_claim);
        let Some(role) = self.role_for(&groups) else {
            tracing::warn!("OIDC sign-in refused: no console group");
            return Err(Failure::NoRole);
        };
        let name = user_name(&claims).ok_or_else(|| {
            tracing::warn!("OIDC ID token has no usable user name");
            Failure::Rejected
        })?;
        Ok((name, role))
    }

    async fn verify_id_token(
        &self,
        token: &str,
        keys: &KeyCache,
        pending: &Pending,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
        let rejected = |why: &str| {
            tracing::warn!(reason = why, "OIDC ID token rejected");
            Failure::Rejected
        };
        if token.len() > 16 * 1024 {
            return Err(rejected("too large"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected("bad header"))?;
        let kid = header.kid.as_deref().ok_or_else(|| rejected("no kid"))?;
        let (key, alg) = keys
            .key_for(kid)
            .await
            .map_err(|_| rejected("unknown key"))?;
        if header.alg != alg {
            return Err(rejected("algorithm does not match the key"));
        }
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = CLOCK_LEEWAY_SECS;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|_| rejected("signature or claims"))?;
        let nonce = data
            .claims
            .get("nonce")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if !bool::from(nonce.as_bytes().ct_eq(pending.nonce.as_bytes())) {
            return Err(rejected("nonce"));
        }
        Ok(data.claims)
    }
}

/// The groups a claim lists (an array of strings, or one space/comma-separated string).
fn groups(claims: &serde_json::Map<String, serde_json::Value>, claim: &str) -> Vec<String> {
    match claims.get(claim) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .take(256)
            .collect(),
        Some(serde_json::Value::String(s)) => s
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .take(256)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The console name of a federated user: `sso.` + the first of `cognito:username`,
/// `preferred_username`, `email`, `sub` that is a valid account name.
fn user_name(claims: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    ["cognito:username", "preferred_username", "email", "sub"]
        .iter()
        .filter_map(|c| claims.get(*c).and_then(|v| v.as_str()))
        .map(|v| format!("sso.{v}"))
        .find(|name| app::accounts::is_valid_name(name))
}

/// 256 random bits, base64url.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v.trim())
        })
}

/// The console's headers for these pages: nothing may run or be framed, nothing is stored, and
/// the callback's URL (it carries the code) is never sent on as a referrer.
async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    for (name, value) in [
        (
            axum::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'",
        ),
        (axum::http::header::X_FRAME_OPTIONS, "DENY"),
        (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (axum::http::header::REFERRER_POLICY, "no-referrer"),
        (axum::http::header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// A small page for a failed sign-in, with a way back.
fn failure_page(oidc: &Oidc, failure: Failure) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign-in failed · Golden Path</title>\
         <link rel=\"stylesheet\" href=\"{}\"></head><body>\
         <main class=\"center-page login-page\"><section class=\"card narrow login-card\">\
         <h1>Sign-in failed</h1><p class=\"form-error\" role=\"alert\">{}</p>\
         <a class=\"btn btn-primary btn-block\" href=\"/login\">Back to sign-in</a>\
         </section></main></body></html>",
        oidc.stylesheet,
        failure.message()
    );
    let mut res = (
        failure.status(),
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&oidc.state_cookie("", 0)) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

async fn start(State(oidc): State<Arc<Oidc>>) -> Response {
    match begin(&oidc).await {
        Ok(res) => res,
        Err(failure) => failure_page(&oidc, failure),
    }
}

async fn begin(oidc: &Oidc) -> Result<Response, Failure> {
    let (discovery, _) = oidc.provider().await?;
    let verifier = random_token().ok_or(Failure::Unavailable)?;
    let nonce = random_token().ok_or(Failure::Unavailable)?;
    let challenge = pkce_challenge(&verifier);
    let state = oidc.remember(verifier, nonce.clone())?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("redirect_uri", &oidc.config.redirect_url)
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if discovery.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{query}", discovery.authorization_endpoint);
    let mut res = StatusCode::SEE_OTHER.into_response();
    let headers = res.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(&location).map_err(|_| Failure::Unavailable)?,
    );
    headers.append(
        SET_COOKIE,
        HeaderValue::from_str(&oidc.state_cookie(&state, PENDING_TTL.as_secs()))
            .map_err(|_| Failure::Unavailable)?,
    );
    Ok(res)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(oidc): State<Arc<Oidc>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    match complete(&oidc, &headers, query).await {
        Ok(res) => res,
        Err(failure) => failure_page(&oidc, failure),
    }
}

async fn complete(
    oidc: &Oidc,
    headers: &HeaderMap,
    query: CallbackQuery,
) -> Result<Response, Failure> {
    let state = query.state.as_deref().unwrap_or("");
    let cookie = cookie_value(headers, STATE_COOKIE).unwrap_or("");
    if state.is_empty()
        || state.len() > 128
        || !bool::from(state.as_bytes().ct_eq(cookie.as_bytes()))
    {
        return Err(Failure::Expired);
    }
    let pending = oidc.take(state)?;
    if let Some(error) = &query.error {
        // The provider's error code is a short ASCII token by spec; log it bounded.
        let error: String = error.chars().take(64).collect();
        tracing::warn!(error = %error, "OIDC provider returned an error");
        return Err(Failure::Rejected);
    }
    let code = query.code.as_deref().unwrap_or("");
    if code.is_empty() || code.len() > 4096 {
        return Err(Failure::Rejected);
    }
    let (name, role) = oidc.finish(code, &pending).await?;
    let previous = session::token_from_cookie_header(
        headers
            .get(COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let new_session = match oidc
        .accounts
        .federated_login(&name, role, previous, gateway::now_ms())
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::warn!(user = %name, "OIDC sign-in refused: account disabled or local");
            return Err(Failure::NoRole);
        }
        Err(e) => {
            tracing::error!(error = %e, "federated session could not be stored");
            return Err(Failure::Unavailable);
        }
    };
    tracing::info!(user = %name, role = role.as_str(), "console sign-in (OIDC)");
    // The session cookie is SameSite=Strict, and this response ends a navigation that started
    // at the provider's site, so a redirect would arrive without it. A page that navigates on
    // its own (same-site) does carry it.
    let body = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                <meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Signed in · Golden \
                Path</title></head><body><p>Signed in. <a href=\"/\">Continue</a></p></body></html>";
    let mut res = (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let headers = res.headers_mut();
    for cookie in [
        session::set_cookie(&new_session.token, oidc.secure),
        oidc.state_cookie("", 0),
    ] {
        headers.append(
            SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|_| Failure::Unavailable)?,
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn groups_from_array_or_string() {
        let c = claims(serde_json::json!({"cognito:groups": ["soc", "x"], "g": "a b,c"}));
        assert_eq!(groups(&c, "cognito:groups"), vec!["soc", "x"]);
        assert_eq!(groups(&c, "g"), vec!["a", "b", "c"]);
        assert!(groups(&c, "missing").is_empty());
    }

    #[test]
    fn user_name_prefers_username_and_skips_invalid() {
        let c = claims(
            serde_json::json!({"cognito:username": "bad name!", "email": "a@b.c", "sub": "1"}),
        );
        assert_eq!(user_name(&c).as_deref(), Some("sso.a@b.c"));
        let c = claims(serde_json::json!({"sub": "x".repeat(100)}));
        assert_eq!(user_name(&c), None);
    }

    #[test]
    fn pkce_challenge_is_unpadded_base64url_sha256() {
        // Expected value from Python: urlsafe_b64encode(sha256(verifier)).rstrip("=").
        // (The provider in tests/browser/oidc.test.mjs checks S256 end to end.)
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gXk-wEjXk"),
            "d0tWkOelzvFIvg8rRiNAiMslgk7fsJDIFWeyzEU3qH8"
        );
    }

    #[test]
    fn cookie_value_finds_the_named_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; gp_oidc_state=xyz; b=2"),
        );
        assert_eq!(cookie_value(&h, STATE_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
