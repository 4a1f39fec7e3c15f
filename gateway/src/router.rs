//! HTTP surface of the gateway: `POST /v1/chat/completions`, `GET /v1/models`, `/healthz`,
//! `/readyz`, and the embedded issuer's JWKS at `/.well-known/jwks.json`. One [`router`] serves
//! both the plain server ([`serve`], over [`crate::net::serve`]) and the Lambda entry.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio_stream_shim::ReceiverStream;
use tracing::Instrument;

use crate::auth::{AuthError, Caller};
use crate::chat::{ChatReply, RequestMeta, chat};
use crate::error::ApiError;
use crate::net::{ClientAddr, Edge};
use crate::openai::{ModelEntry, ModelList};
use crate::state::AppState;

/// The gateway's router over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .merge(crate::guard::api::routes())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serve the gateway on `listener` until the process ends.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_with_shutdown(state, listener, std::future::pending()).await
}

/// Serve the gateway on `listener` until `shutdown` resolves, then finish in-flight requests,
/// with the timeouts and connection caps of `[server]` ([`crate::net::serve`]).
pub async fn serve_with_shutdown(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let edge = Edge::from_config(&state.config.server)?;
    crate::net::serve(router(state), listener, edge, shutdown).await
}

/// An authenticated caller, extracted from `Authorization: Bearer`.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let result = match token {
            None => Err(AuthError::Missing),
            Some(token) => state.verifier.verify(token).await,
        };
        match result {
            Ok(caller) => Ok(Authenticated(caller)),
            Err(reason) => {
                tracing::warn!(source_ip = %peer(parts), %reason, "authentication refused");
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// The client's address ([`ClientAddr`]: the TCP peer, or the client behind a trusted proxy;
/// `unknown` where none was set).
pub struct PeerIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(peer(parts)))
    }
}

fn peer(parts: &Parts) -> String {
    ClientAddr::text(&parts.extensions)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName, max: usize) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(max).collect())
        .unwrap_or_default()
}

async fn chat_completions(
    State(state): State<AppState>,
    PeerIp(source_ip): PeerIp,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let meta = RequestMeta {
        request_id: uuid::Uuid::now_v7().to_string(),
        started: Instant::now(),
        timestamp_ms: crate::now_ms(),
        source_ip,
        user_agent: header_text(&headers, header::USER_AGENT, 256),
    };
    let span =
        tracing::info_span!("request", request_id = %meta.request_id, user_sub = %caller.sub);
    let request_id = meta.request_id.clone();
    let result = async {
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: state.config.server.max_body_bytes,
                }
            } else {
                ApiError::MalformedBody(rejection.body_text())
            }
        });
        match body {
            Ok(body) => chat(&state, &caller, meta, &body).await,
            Err(e) => Err(e),
        }
    }
    .instrument(span)
    .await;
    let mut response = match result {
        Ok(ChatReply::Complete {
            body,
            guardrail_action,
        }) => {
            let mut r = Json(body).into_response();
            r.headers_mut().insert(
                "x-guardrail-action",
                HeaderValue::from_static(guardrail_action),
            );
            r
        }
        Ok(ChatReply::Stream {
            events,
            guardrail_action,
        }) => {
            let stream = ReceiverStream::new(events);
            let mut r = Sse::new(stream)
                .keep_alive(KeepAlive::default())
                .into_response();
            r.headers_mut().insert(
                "x-guardrail-action",
                HeaderValue::from_static(guardrail_action),
            );
            r
        }
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn models(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<ModelList>, ApiError> {
    let (_, feature) = state
        .config
        .feature_for_client(&caller.client_id)
        .ok_or(ApiError::Unauthorized)?;
    let data = feature
        .models
        .iter()
        .filter_map(|alias| {
            let provider = state.models.get(alias)?;
            let (owned_by, description) = provider.describe();
            Some(ModelEntry {
                id: alias.clone(),
                object: "model",
                created: 0,
                owned_by: owned_by.into(),
                description,
            })
        })
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the audit store answers a read.
async fn readyz(State(state): State<AppState>) -> Response {
    // Records waiting in the durable spool (AWS backends) are not lost, but an operator should
    // see them: the gateway stays ready and says how many there are.
    let spooled = state.spool.as_ref().map_or(0, |spool| spool.backlog());
    // Records that can never be delivered (kept in `spool/dead/`) need an operator too.
    let dead = state.spool.as_ref().map_or(0, |spool| spool.dead_letters());
    match state.audit.find("readyz-probe").await {
        Ok(_) => Json(json!({
            "status": "ready",
            "spooledRecords": spooled,
            "deadLetterRecords": dead,
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "not ready: audit store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "failing": ["audit"] })),
            )
                .into_response()
        }
    }
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let issuer = state.issuer.as_ref().ok_or(ApiError::NotFound)?;
    let mut r = Json(issuer.jwks()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(r)
}

/// A `Stream` over an mpsc receiver (what `tokio-stream`'s wrapper does, without the crate).
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::response::sse::Event;
    use tokio::sync::mpsc;

    pub struct ReceiverStream(mpsc::Receiver<Event>);

    impl ReceiverStream {
        pub fn new(rx: mpsc::Receiver<Event>) -> ReceiverStream {
            ReceiverStream(rx)
        }
    }

    impl futures::Stream for ReceiverStream {
        type Item = Result<Event, std::convert::Infallible>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0.poll_recv(cx).map(|o| o.map(Ok))
        }
    }
}
