//! The Lambda entry: the same axum [`router`](crate::router::router) behind API Gateway
//! (HTTP API v2 and REST v1 proxy events) through `lambda_http`. [`run`] is what the
//! `gateway-lambda` binary calls; [`app`] and [`invoke`] are the same path without the Lambda
//! Runtime API, so tests feed event JSON through exactly what the runtime would.
//!
//! What differs from `gateway serve`, all in [`app`]'s one middleware, which runs before
//! routing:
//! - `lambda_http` puts a REST API's stage in front of the path (`/prod/v1/models`); it is
//!   taken off again, so the routes are the same behind any stage (name no stage after a route's
//!   first segment, such as `v1`);
//! - the client address is API Gateway's `requestContext` source IP (there is no socket), put
//!   where the router looks for the peer address, so audit events carry it;
//! - API Gateway's Lambda proxy integration buffers the whole response, so a `stream: true`
//!   request gets its complete SSE body at the end (valid for any SSE client, `[DONE]` after
//!   the records as always), marked `x-golden-path-streaming: buffered`. Everything, records
//!   included, is finished before the response is returned, so nothing is left running when
//!   Lambda freezes the environment.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{LambdaEvent, RequestExt, Service};

use crate::config::{Config, ENV_CONFIG_FILE};
use crate::state::AppState;

/// Response header telling a streaming client its SSE body was delivered whole.
pub const STREAMING_HEADER: &str = "x-golden-path-streaming";

/// The largest event accepted by [`invoke`] (API Gateway's own payload limit is 10 MB).
pub const MAX_EVENT_BYTES: usize = 10 * 1024 * 1024;

/// `gateway-lambda`'s `main`: JSON logs, config from `GOLDEN_PATH_CONFIG` and the
/// environment, then serve Lambda invocations until the environment is shut down.
pub fn main() -> ExitCode {
    crate::cli::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Load the configuration, build the state, and serve Lambda invocations.
pub async fn run() -> anyhow::Result<()> {
    // lambda_http panics without the Runtime API's address; say what is wrong instead.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        anyhow::bail!(
            "gateway-lambda runs inside AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set); \
             run `gateway serve` to serve HTTP directly"
        );
    }
    let file = std::env::var_os(ENV_CONFIG_FILE).map(PathBuf::from);
    let config = Config::load(file.as_deref())?;
    let state = AppState::build(config).await?;
    lambda_http::run(app(state))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

/// The gateway's router as the Lambda serves it (see the module docs). The gateway's router
/// is the fallback of an empty outer one so that the middleware runs before its routing.
pub fn app(state: AppState) -> Router {
    Router::new()
        .fallback_service(crate::router::router(state))
        .layer(axum::middleware::from_fn(lambda_layer))
}

async fn lambda_layer(mut request: Request, next: Next) -> Response {
    strip_stage(&mut request);
    if let Some(ip) = source_ip(&request) {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
        request.extensions_mut().insert(crate::net::ClientAddr(ip));
    }
    let mut response = next.run(request).await;
    let is_sse = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        response
            .headers_mut()
            .insert(STREAMING_HEADER, HeaderValue::from_static("buffered"));
    }
    response
}

/// Take the API Gateway stage off the front of the path, where `lambda_http` put it.
fn strip_stage<B>(request: &mut axum::http::Request<B>) {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return;
    };
    let path = request.uri().path();
    let Some(rest) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage.as_str()))
    else {
        return;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return;
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match request.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
}

/// The caller's address as API Gateway saw it.
fn source_ip<B>(request: &axum::http::Request<B>) -> Option<IpAddr> {
    let context = request.request_context_ref()?;
    let ip = if let RequestContext::ApiGatewayV2(c) = context {
        c.http.source_ip.as_deref()
    } else if let RequestContext::ApiGatewayV1(c) = context {
        c.identity.source_ip.as_deref()
    } else {
        None
    };
    ip?.parse().ok()
}

/// One API Gateway event (HTTP API v2 or REST v1 proxy JSON) through `lambda_http`'s request
/// conversion, [`app`], and its response conversion: the proxy response JSON the runtime
/// would return to API Gateway.
pub async fn invoke(app: Router, event: &[u8]) -> anyhow::Result<serde_json::Value> {
    if event.len() > MAX_EVENT_BYTES {
        anyhow::bail!("event of {} bytes is over {MAX_EVENT_BYTES}", event.len());
    }
    let payload: LambdaRequest =
        serde_json::from_slice(event).context("not an API Gateway proxy event")?;
    let mut adapter = lambda_http::Adapter::from(app);
    let response = adapter
        .call(LambdaEvent::new(payload, lambda_http::Context::default()))
        .await
        .map_err(|e| anyhow::anyhow!("router: {e:?}"))?;
    serde_json::to_value(response).context("response does not serialise")
}
