//! Console sign-in through an OpenID Connect provider (the Cognito hosted UI in AWS).
//!
//! The authorization-code flow with PKCE (S256): `GET /auth/oidc/login` sends the browser to
//! the provider with a fresh `state`, `nonce` and code challenge; `GET /auth/oidc/callback`
//! takes the code back, checks `state` against the cookie set at the start (so a code can't be
//! injected into someone else's browser), redeems the code with the verifier, and checks the ID
//! token: signature by the provider's JWKS (RS256/ES256 only, the algorithm fixed by the key),
//! `iss`, `aud` = the client id, `exp`, and `nonce`. The console role comes from the groups claim
//! (`cognito:groups`): the strongest of admin > soc > viewer that the groups name; a user in no
//! console group is refused (deny by default). The user is kept as a federated account keyed on
//! the token's `(iss, sub)` and labelled `sso.<username>` (it has no password; see
//! [`app::accounts::federated`]) and gets an ordinary console session. `email` is used as a
//! label only when `email_verified` is true.
//!
//! A pending sign-in lives in the browser only: sealed in the state cookie ([`pending`]), for
//! [`PENDING_TTL`], cleared by the callback. Errors shown to the browser are generic; the detail
//! goes to the log without any token or code.

mod pending;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway::auth::jwks::{HttpJwks, KeyCache};
use gateway::auth::verify::MAX_SUB_BYTES;
use gateway::config::OidcConfig;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use app::accounts::federated::FederatedIdentity;
use app::accounts::{Accounts, Role, session};
use pending::{Pending, PendingSeal};

/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// The key that seals pending sign-ins when the client has no secret, relative to the data dir.
pub const STATE_KEY_FILE: &str = "keys/oidc-state.key";
/// The cookie that carries a pending sign-in in the browser that started it.
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

/// The sign-in flow's state: configuration, the provider's endpoints and keys (fetched on first
/// use, so a provider that is down at start-up doesn't stop the console), the key that seals
/// pending sign-ins.
pub struct Oidc {
    config: OidcConfig,
    accounts: Accounts,
    http: reqwest::Client,
    provider: OnceCell<(Discovery, Arc<KeyCache>)>,
    seal: PendingSeal,
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
}

impl Failure {
    fn status(self) -> StatusCode {
        match self {
            Failure::Expired | Failure::Rejected => StatusCode::BAD_REQUEST,
            Failure::NoRole => StatusCode::FORBIDDEN,
            Failure::Unavailable => StatusCode::BAD_GATEWAY,
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
        }
    }
}

impl Oidc {
    /// `stylesheet`: the console's CSS path (`/<site-pkg-dir>/<output-name>.css`). Pending
    /// sign-ins are sealed under a key derived from the client secret when there is one (so
    /// every console task shares it), else under `<data_dir>/`[`STATE_KEY_FILE`] (created 0600).
    pub fn new(
        config: OidcConfig,
        accounts: Accounts,
        stylesheet: String,
        data_dir: &Path,
    ) -> anyhow::Result<Oidc> {
        let seal = PendingSeal::new(&state_key(&config, data_dir)?)?;
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
            seal,
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

    /// Redeem `code` and check the ID token; who signed in, and their role.
    async fn finish(
        &self,
        code: &str,
        pending: &Pending,
    ) -> Result<(FederatedIdentity, Role), Failure> {
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
        let identity = identity(&self.config.issuer, &claims).ok_or_else(|| {
            tracing::warn!("OIDC ID token has no usable subject");
            Failure::Rejected
        })?;
        Ok((identity, role))
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

/// Who an ID token names: its `(iss, sub)` (the account's key; `iss` already checked equal to
/// `issuer`) and a label, `sso.` + the first of `cognito:username`, `preferred_username`,
/// `email` (only when `email_verified` is true), `sub` that is a valid account name.
fn identity(
    issuer: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Option<FederatedIdentity> {
    let claim = |c: &str| claims.get(c).and_then(|v| v.as_str());
    let subject = claim("sub").filter(|s| !s.is_empty() && s.len() <= MAX_SUB_BYTES)?;
    let email_verified = matches!(
        claims.get("email_verified"),
        Some(serde_json::Value::Bool(true))
    ) || claim("email_verified") == Some("true");
    let as_name = |v: &str| Some(format!("sso.{v}")).filter(|n| app::accounts::is_valid_name(n));
    let email = claim("email").filter(|_| email_verified);
    let label = [
        claim("cognito:username"),
        claim("preferred_username"),
        email,
        Some(subject),
    ]
    .into_iter()
    .flatten()
    .find_map(as_name)
    .unwrap_or_else(|| "sso.user".to_string());
    // Names an account of this person had before (iss, sub) keying: only immutable claims.
    let legacy_names = [claim("cognito:username"), Some(subject)]
        .into_iter()
        .flatten()
        .filter_map(as_name)
        .collect();
    Some(FederatedIdentity {
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        label,
        legacy_names,
    })
}

/// The 256-bit key that seals pending sign-ins (see [`Oidc::new`]).
fn state_key(config: &OidcConfig, data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    if let Some(secret) = &config.client_secret {
        let key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose().as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, b"golden-path oidc pending sign-in key v1");
        return Ok(tag.as_ref().try_into()?);
    }
    let path = data_dir.join(STATE_KEY_FILE);
    let bytes = gateway::secret_file::load_or_create(&path, 32)
        .map_err(|e| anyhow::anyhow!("OIDC state key {}: {e}", path.display()))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("OIDC state key {} is not 32 bytes", path.display()))
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
    let state = random_token().ok_or(Failure::Unavailable)?;
    let sealed = oidc
        .seal
        .seal(&Pending {
            state: state.clone(),
            nonce: nonce.clone(),
            verifier,
            expires_at_ms: gateway::now_ms().saturating_add(PENDING_TTL.as_millis() as i64),
        })
        .ok_or(Failure::Unavailable)?;
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
        HeaderValue::from_str(&oidc.state_cookie(&sealed, PENDING_TTL.as_secs()))
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
    let pending = oidc
        .seal
        .open(cookie, gateway::now_ms())
        .ok_or(Failure::Expired)?;
    if state.is_empty()
        || state.len() > 128
        || !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes()))
    {
        return Err(Failure::Expired);
    }
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
    let (identity, role) = oidc.finish(code, &pending).await?;
    let previous = session::token_from_cookie_header(
        headers
            .get(COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let new_session = match oidc
        .accounts
        .federated_login(&identity, role, previous, gateway::now_ms())
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::warn!(user = %identity.label, "OIDC sign-in refused: account disabled");
            return Err(Failure::NoRole);
        }
        Err(e) => {
            tracing::error!(error = %e, "federated session could not be stored");
            return Err(Failure::Unavailable);
        }
    };
    let name = &new_session.user.name;
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
    fn identity_is_iss_and_sub_with_a_label_and_email_only_when_verified() {
        let label = |v: serde_json::Value| identity("https://idp", &claims(v)).map(|i| i.label);
        let c = claims(serde_json::json!({
            "cognito:username": "bad name!", "email": "a@b.c", "email_verified": true, "sub": "1"
        }));
        let id = identity("https://idp", &c).unwrap();
        assert_eq!(
            (id.issuer.as_str(), id.subject.as_str(), id.label.as_str()),
            ("https://idp", "1", "sso.a@b.c")
        );
        assert_eq!(id.legacy_names, vec!["sso.1"]);
        // An unverified e-mail is not even a label.
        for verified in [serde_json::json!(false), serde_json::json!("false")] {
            let v = serde_json::json!({"email": "a@b.c", "email_verified": verified, "sub": "1"});
            assert_eq!(label(v).as_deref(), Some("sso.1"));
        }
        let v = serde_json::json!({"email": "a@b.c", "email_verified": "true", "sub": "1"});
        assert_eq!(label(v).as_deref(), Some("sso.a@b.c"));
        let v =
            serde_json::json!({"preferred_username": "ana", "cognito:username": "u1", "sub": "s"});
        assert_eq!(label(v.clone()).as_deref(), Some("sso.u1"));
        let id = identity("https://idp", &claims(v)).unwrap();
        assert_eq!(id.legacy_names, vec!["sso.u1", "sso.s"]);
        // No valid name anywhere: a generic label (the key is (iss, sub) anyway).
        let v = serde_json::json!({"sub": "x".repeat(100)});
        assert_eq!(label(v).as_deref(), Some("sso.user"));
        // No subject, or an oversized one: refused.
        assert_eq!(
            label(serde_json::json!({"preferred_username": "ana"})),
            None
        );
        assert_eq!(label(serde_json::json!({"sub": "x".repeat(300)})), None);
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

/// The whole flow against a small provider on a local port (discovery, JWKS, a token endpoint
/// that checks PKCE and redeems each code once), driven through the routes without a socket.
#[cfg(test)]
mod flow_tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::extract::Form;
    use axum::http::Request;
    use axum::routing::post;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use tower::ServiceExt;

    use super::*;
    use app::accounts::password::HashCost;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    const CLIENT_ID: &str = "console";

    struct Provider {
        base: String,
        kid: String,
        key: EncodingKey,
        jwks: serde_json::Value,
        /// code → (ID token claims, PKCE challenge).
        codes: Mutex<HashMap<String, (serde_json::Value, String)>>,
    }

    async fn discovery(State(p): State<Arc<Provider>>) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({
            "issuer": p.base,
            "authorization_endpoint": format!("{}/authorize", p.base),
            "token_endpoint": format!("{}/token", p.base),
            "jwks_uri": format!("{}/jwks", p.base),
        }))
    }

    async fn jwks(State(p): State<Arc<Provider>>) -> axum::Json<serde_json::Value> {
        axum::Json(p.jwks.clone())
    }

    async fn token(
        State(p): State<Arc<Provider>>,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        let code = form.get("code").cloned().unwrap_or_default();
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let Some((claims, challenge)) = p.codes.lock().unwrap().remove(&code) else {
            return (StatusCode::BAD_REQUEST, "invalid_grant").into_response();
        };
        if pkce_challenge(&verifier) != challenge {
            return (StatusCode::BAD_REQUEST, "invalid_grant").into_response();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(p.kid.clone());
        let id_token = jsonwebtoken::encode(&header, &claims, &p.key).unwrap();
        axum::Json(serde_json::json!({"id_token": id_token, "token_type": "Bearer"}))
            .into_response()
    }

    struct Env {
        dir: tempfile::TempDir,
        provider: Arc<Provider>,
        oidc: Arc<Oidc>,
        router: Router,
        accounts: Accounts,
    }

    async fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = gateway::auth::issuer::LocalIssuer::load_or_create(dir.path(), &base).unwrap();
        let pem = std::fs::read(dir.path().join(gateway::auth::issuer::KEY_FILE)).unwrap();
        let provider = Arc::new(Provider {
            base: base.clone(),
            kid: issuer.kid().to_string(),
            key: EncodingKey::from_ec_pem(&pem).unwrap(),
            jwks: issuer.jwks_json(),
            codes: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
        let oidc = oidc_for(&base, &accounts, dir.path());
        let router = oidc.clone().routes();
        Env {
            dir,
            provider,
            oidc,
            router,
            accounts,
        }
    }

    fn oidc_for(issuer: &str, accounts: &Accounts, data_dir: &Path) -> Arc<Oidc> {
        let config: OidcConfig = serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "client_id": CLIENT_ID,
            "redirect_url": "http://console.test/auth/oidc/callback",
        }))
        .unwrap();
        Arc::new(
            Oidc::new(
                config,
                accounts.clone(),
                "/pkg/console.css".into(),
                data_dir,
            )
            .unwrap(),
        )
    }

    /// `GET /auth/oidc/login`: the state cookie (`name=value`) and the authorization query.
    async fn start(router: &Router) -> (String, HashMap<String, String>) {
        let res = router
            .clone()
            .oneshot(
                Request::get("/auth/oidc/login")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let location = res.headers()[LOCATION].to_str().unwrap();
        let query = location.split_once('?').unwrap().1;
        let params = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
        (cookie.split(';').next().unwrap().to_string(), params)
    }

    /// The user signs in at the provider: a code for an ID token with `claims` added.
    fn authorize(env: &Env, params: &HashMap<String, String>, claims: serde_json::Value) -> String {
        let now = gateway::now_ms() / 1000;
        let mut all = serde_json::json!({
            "iss": env.provider.base,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": params["nonce"],
        });
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        let code = random_token().unwrap();
        env.provider
            .codes
            .lock()
            .unwrap()
            .insert(code.clone(), (all, params["code_challenge"].clone()));
        code
    }

    /// `GET /auth/oidc/callback`: the status and the session's user, if one was started.
    async fn callback(
        env: &Env,
        code: &str,
        state: &str,
        cookie: &str,
    ) -> (StatusCode, Option<String>) {
        let uri = format!(
            "/auth/oidc/callback?code={}&state={}",
            urlencode(code),
            urlencode(state)
        );
        let res = env
            .router
            .clone()
            .oneshot(
                Request::get(uri)
                    .header(COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let cookies: Vec<&str> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        // Whatever the outcome, the pending sign-in is cleared from the browser.
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("gp_oidc_state=;") && c.contains("Max-Age=0")),
            "{cookies:?}"
        );
        let token = cookies.iter().find_map(|c| {
            c.strip_prefix("gp_session=")
                .map(|rest| rest.split(';').next().unwrap().to_string())
        });
        let user = match token {
            Some(t) => env
                .accounts
                .session_user(&t, gateway::now_ms())
                .await
                .unwrap()
                .map(|u| format!("{}:{}", u.name, u.role.as_str())),
            None => None,
        };
        (res.status(), user)
    }

    fn urlencode(v: &str) -> String {
        form_urlencoded::byte_serialize(v.as_bytes()).collect()
    }

    async fn sign_in(env: &Env, claims: serde_json::Value) -> (StatusCode, Option<String>) {
        let (cookie, params) = start(&env.router).await;
        let code = authorize(env, &params, claims);
        callback(env, &code, &params["state"], &cookie).await
    }

    /// Finding: 1,024 anonymous sign-in starts filled the server's table and locked single
    /// sign-on for ten minutes.
    #[tokio::test]
    async fn five_thousand_sign_in_starts_do_not_lock_out_a_real_sign_in() {
        let env = env().await;
        for i in 0..5_000 {
            let res = env
                .router
                .clone()
                .oneshot(
                    Request::get("/auth/oidc/login")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "start {i}");
        }
        let claims = serde_json::json!({"sub": "s-ana", "preferred_username": "ana",
                                        "cognito:groups": ["soc"]});
        assert_eq!(
            sign_in(&env, claims).await,
            (StatusCode::OK, Some("sso.ana:soc".into()))
        );
    }

    #[tokio::test]
    async fn tampered_expired_foreign_or_mismatched_pending_sign_ins_are_refused() {
        let env = env().await;
        let claims = serde_json::json!({"sub": "s-ana", "preferred_username": "ana",
                                        "cognito:groups": ["soc"]});
        let refused = (StatusCode::BAD_REQUEST, None);
        let (cookie_a, params_a) = start(&env.router).await;
        let (cookie_b, params_b) = start(&env.router).await;
        let code = authorize(&env, &params_a, claims.clone());
        let state_a = &params_a["state"];
        // Another browser's pending sign-in, or none.
        assert_eq!(callback(&env, &code, state_a, &cookie_b).await, refused);
        assert_eq!(
            callback(&env, &code, &params_b["state"], &cookie_a).await,
            refused
        );
        assert_eq!(callback(&env, &code, state_a, "").await, refused);
        assert_eq!(callback(&env, &code, "", &cookie_a).await, refused);
        // Tampered with.
        let (name, value) = cookie_a.split_once('=').unwrap();
        let mut bytes = value.as_bytes().to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
        assert_eq!(callback(&env, &code, state_a, &tampered).await, refused);
        // Sealed by another deployment (another key).
        let other_dir = tempfile::tempdir().unwrap();
        let other = oidc_for(&env.provider.base, &env.accounts, other_dir.path());
        let (foreign, params_f) = start(&other.routes()).await;
        let code_f = authorize(&env, &params_f, claims.clone());
        assert_eq!(
            callback(&env, &code_f, &params_f["state"], &foreign).await,
            refused
        );
        // Expired.
        let expired = env
            .oidc
            .seal
            .seal(&Pending {
                state: "s".into(),
                nonce: "n".into(),
                verifier: "v".into(),
                expires_at_ms: gateway::now_ms() - 1,
            })
            .unwrap();
        let expired = format!("{STATE_COOKIE}={expired}");
        assert_eq!(callback(&env, &code, "s", &expired).await, refused);
        // The real one still works once; a replay of its cookie and code does not.
        let ok = (StatusCode::OK, Some("sso.ana:soc".to_string()));
        assert_eq!(callback(&env, &code, state_a, &cookie_a).await, ok);
        assert_eq!(callback(&env, &code, state_a, &cookie_a).await, refused);
        // The key file is the server's own secret.
        let key = env.dir.path().join(STATE_KEY_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// Finding: accounts were keyed on mutable claims, so a disabled user who renamed came back
    /// as a new account, and a user who took another's name landed in that account.
    #[tokio::test]
    async fn accounts_follow_the_subject_not_the_name() {
        let env = env().await;
        let ok = |user: &str| (StatusCode::OK, Some(user.to_string()));
        let bob = serde_json::json!({"sub": "s-bob", "preferred_username": "bob",
                                     "cognito:groups": ["soc"]});
        assert_eq!(sign_in(&env, bob).await, ok("sso.bob:soc"));
        env.accounts.set_disabled("sso.bob", true).await.unwrap();
        for new_name in ["bobby", "bob2"] {
            let renamed = serde_json::json!({"sub": "s-bob", "preferred_username": new_name,
                                             "cognito:groups": ["soc"]});
            assert_eq!(sign_in(&env, renamed).await, (StatusCode::FORBIDDEN, None));
        }

        let ana = serde_json::json!({"sub": "s-ana", "preferred_username": "ana",
                                     "email": "ana@example.com", "email_verified": true,
                                     "cognito:groups": ["soc"]});
        assert_eq!(sign_in(&env, ana).await, ok("sso.ana:soc"));
        // Mallory takes ana's name, then her e-mail (unverified), then both.
        for claims in [
            serde_json::json!({"sub": "s-mal", "preferred_username": "ana",
                               "cognito:groups": ["viewer"]}),
            serde_json::json!({"sub": "s-mal", "email": "ana@example.com",
                               "email_verified": false, "cognito:groups": ["viewer"]}),
        ] {
            let (status, user) = sign_in(&env, claims).await;
            assert_eq!(status, StatusCode::OK);
            let user = user.unwrap();
            assert!(!user.starts_with("sso.ana:"), "{user}");
            assert!(user.ends_with(":viewer"), "{user}");
        }
        let names: Vec<String> = env
            .accounts
            .accounts(gateway::now_ms())
            .await
            .unwrap()
            .into_iter()
            .map(|a| format!("{}:{}", a.name, a.role.as_str()))
            .collect();
        assert_eq!(names, ["sso.ana:soc", "sso.ana.2:viewer", "sso.bob:soc"]);
    }
}
