//! The console's HTTP surface: Leptos pages and server functions, the built site's assets under
//! `/<site-pkg-dir>/` (gzip-compressed; pages are not, so no secret shares a compressed stream
//! with reflected input), and two layers around all of it.
//!
//! - **Session gate** (deny by default): every path needs a live session except `/login`, the
//!   site assets, and the `login`/`logout` server functions. Pages answer a missing session
//!   with a redirect to `/login`; server functions with 401. Each server function checks the
//!   session again itself.
//! - **Cross-origin guard** (CSRF): state-changing requests must come from the console's own
//!   pages (`Sec-Fetch-Site`/`Origin`), see [`cross_origin_guard`].
//! - **Security headers** on every response: CSP (pages set their own with the render's
//!   nonce; everything else gets a locked-down default), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`; `no-store` for
//!   everything but the assets, which are revalidated (`no-cache`) as their names carry no hash.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;
use leptos::server_fn::error::FromServerFnError;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

use app::api::ApiError;
use app::context::{Console, session_token};
use app::{App, shell};
use gateway::state::AppState;

/// CSP for responses that are not pages (assets, redirects, server-function answers).
const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// What the two layers need to know.
#[derive(Clone)]
struct Gate {
    console: Console,
    /// `/<site-pkg-dir>/`: where the assets are.
    assets: Arc<str>,
}

impl Gate {
    fn is_asset(&self, path: &str) -> bool {
        path.starts_with(&*self.assets)
    }

    /// Paths reachable without a session.
    fn is_public(&self, path: &str) -> bool {
        matches!(
            path,
            "/login" | "/api/login" | "/api/logout" | "/api/sso_available"
        ) || self.is_asset(path)
    }
}

/// The console router over `options` (site settings) and `console` (backends).
pub fn router(options: LeptosOptions, console: Console) -> Router {
    router_with_gateway(options, console, None)
}

/// [`router`] with the gateway's state in the server functions' context too (the admin pages
/// edit its guardrail registry and feature settings; without it they answer "unavailable").
pub fn router_with_gateway(
    options: LeptosOptions,
    console: Console,
    gateway: Option<AppState>,
) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let console = console.clone();
        move || {
            provide_context(console.clone());
            if let Some(state) = &gateway {
                provide_context(state.clone());
            }
        }
    };
    let render = {
        let options = options.clone();
        move || shell(options.clone())
    };
    let assets_route = options.site_pkg_dir_route_base();
    let assets = ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .service(ServeDir::new(
            Path::new(&*options.site_root).join(&*options.site_pkg_dir),
        ));
    let gate = Gate {
        console,
        assets: assets_route.clone().into(),
    };
    Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), render)
        .nest_service(assets_route.trim_end_matches('/'), assets)
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            LeptosOptions,
            _,
        >(context, shell))
        .layer(middleware::from_fn_with_state(gate.clone(), session_gate))
        .layer(middleware::from_fn(cross_origin_guard))
        .layer(middleware::from_fn_with_state(gate, security_headers))
        .with_state(options)
}

/// Let a request through only with a live session, unless its path is public. A signed-in
/// visit to `/login` goes to the overview instead.
async fn session_gate(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if gate.is_asset(&path) {
        return next.run(req).await;
    }
    let user = match session_token(req.headers()) {
        Some(token) => gate
            .console
            .accounts
            .session_user(&token, gateway::now_ms())
            .await
            .map_err(|e| tracing::error!(error = %e, "session lookup failed")),
        None => Ok(None),
    };
    let Ok(user) = user else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let is_page_request = matches!(*req.method(), Method::GET | Method::HEAD);
    match user {
        Some(_) if path == "/login" && is_page_request => see_other("/"),
        Some(_) => next.run(req).await,
        None if gate.is_public(&path) => next.run(req).await,
        None if path.starts_with("/api/") || !is_page_request => unauthorized(),
        None => see_other("/login"),
    }
}

fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// 401 with the body a server function itself would send, so the browser's client decodes it
/// as [`ApiError::Unauthorized`].
fn unauthorized() -> Response {
    let mut res = Response::new(Body::from(ApiError::Unauthorized.ser()));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// CSRF protection for every state-changing request (anything but GET, HEAD and OPTIONS):
/// a browser says where a request comes from, and only the console's own pages may post.
///
/// - `Sec-Fetch-Site` (every current browser sends it): only `same-origin` (or `none`, a
///   request the user typed) passes;
/// - otherwise `Origin` (older browsers): it must name this host (`Host`);
/// - a request with neither is not from a browser (curl, the tests), which cannot be forged
///   cross-site: it passes and still needs a session.
///
/// Together with the `SameSite=Strict` session cookie this needs no token in the forms, so the
/// plain-HTML forms served before the wasm loads are protected exactly like the `fetch` calls.
pub async fn cross_origin_guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || is_same_origin(req.headers())
    {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "cross-origin request refused");
    let mut res = Response::new(Body::from(ApiError::Forbidden.ser()));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Whether the browser headers of a request say it came from this origin (see
/// [`cross_origin_guard`]).
pub fn is_same_origin(headers: &axum::http::HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (text("origin"), text("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

async fn security_headers(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let asset = gate.is_asset(req.uri().path());
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let cache = if asset { "no-cache" } else { "no-store" };
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}
