//! Bedrock's guardrail REST API on the gateway, so `aws-sdk-bedrock`, `aws-sdk-bedrockruntime`
//! and boto3 work against it by `endpoint_url`:
//!
//! | route | operation |
//! |---|---|
//! | `POST /guardrails` | CreateGuardrail (202) |
//! | `GET /guardrails` | ListGuardrails (`guardrailIdentifier`, `maxResults`, `nextToken`) |
//! | `GET /guardrails/{id}` | GetGuardrail (`guardrailVersion`, default DRAFT) |
//! | `PUT /guardrails/{id}` | UpdateGuardrail (202) |
//! | `POST /guardrails/{id}` | CreateGuardrailVersion (202) |
//! | `DELETE /guardrails/{id}` | DeleteGuardrail (`guardrailVersion`) (202); refused with
//! `ResourceInUseException` while a feature pins it (configuration or console override) |
//! | `POST /guardrail/{id}/version/{v}/apply` | ApplyGuardrail (Bedrock Runtime) |
//!
//! Every request is SigV4-verified ([`sigv4`](super::sigv4)) against locally issued access
//! keys before its body is parsed: handlers reach the body only through the [`Signed`]
//! extractor. A request that changes the registry (POST, PUT, DELETE; not ApplyGuardrail, see
//! [`changes_state`]) whose signature was already accepted is refused (403): a captured
//! request cannot be replayed within its 15-minute window. Errors are restJson1-shaped: the
//! status of the error shape, `x-amzn-ErrorType`, and `{"message": ...}`; messages name
//! fields, never echo guarded text.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::GuardrailRef;
use super::assess::ApplyGuardrailRequest;
use super::policy::GuardrailPolicy;
use super::registry::{Registry, RegistryError, parse_identifier, parse_version};
use super::registry_api::check_unpinned;
use super::sigv4;
use crate::state::AppState;

/// ListGuardrails page size bounds (Bedrock's `MaxResults`).
const MAX_RESULTS: usize = 1000;
const DEFAULT_RESULTS: usize = 20;

/// The routes, to merge into the gateway's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardrails", post(create).get(list))
        .route(
            "/guardrails/{id}",
            post(create_version).get(get).put(update).delete(delete),
        )
        .route("/guardrail/{id}/version/{version}/apply", post(apply))
        .route_layer(axum::middleware::from_fn(forget_failed))
}

/// A Bedrock error: status, `x-amzn-ErrorType`, `{"message"}`.
#[derive(Debug)]
pub struct AwsError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl AwsError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }
}

impl From<RegistryError> for AwsError {
    fn from(e: RegistryError) -> AwsError {
        match e {
            RegistryError::Validation(m) => AwsError::validation(m),
            RegistryError::NotFound(m) => {
                AwsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", m)
            }
            RegistryError::Conflict(m) => {
                AwsError::new(StatusCode::BAD_REQUEST, "ConflictException", m)
            }
            RegistryError::InUse(m) => {
                AwsError::new(StatusCode::BAD_REQUEST, "ResourceInUseException", m)
            }
            RegistryError::Quota(m) => {
                AwsError::new(StatusCode::BAD_REQUEST, "ServiceQuotaExceededException", m)
            }
            RegistryError::Internal(detail) => {
                tracing::error!(error = %detail, "guardrail registry failed");
                AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerException",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(json!({ "message": self.message }))).into_response();
        r.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        r
    }
}

fn registry(state: &AppState) -> &Registry {
    &state.registry
}

/// Verify the request's SigV4 signature; refusals are one 403 whatever the reason. When the
/// gateway's guardrails are Bedrock's, this service does not answer (it would be a second,
/// different set of guardrails): every route says so.
fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), AwsError> {
    if state.config.bedrock_guardrails() {
        return Err(AwsError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "this gateway's guardrails are Bedrock's (aws.guardrails = \"bedrock\"): call Bedrock",
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let reg = registry(state);
    let verified = sigv4::verify(method, uri, headers, body, now, |id| {
        reg.secret_for(id).ok().flatten()
    })
    .map_err(|reason| {
        tracing::warn!(%reason, "guardrail API request refused");
        AwsError::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "The request signature could not be verified.",
        )
    })?;
    if !changes_state(method, uri) {
        return Ok(());
    }
    match SEEN_SIGNATURES.admit(&verified, now.unix_timestamp()) {
        sigv4::Replay::Fresh => Ok(()),
        sigv4::Replay::Repeated => {
            tracing::warn!(
                access_key_id = %verified.access_key_id,
                "guardrail API request refused: signature replayed"
            );
            Err(AwsError::new(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "This signed request was already received; sign each request anew.",
            ))
        }
        sigv4::Replay::Full => Err(AwsError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many signed requests in the replay window; retry later.",
        )),
    }
}

/// Whether a request changes the registry: every POST, PUT and DELETE but ApplyGuardrail.
/// ApplyGuardrail changes nothing (a replay learns only the answer the original got), and
/// boto3 signs no per-call nonce (`amz-sdk-invocation-id` is added after signing), so two
/// identical applies within one second legitimately share a signature.
fn changes_state(method: &Method, uri: &Uri) -> bool {
    !(*method == Method::GET
        || *method == Method::HEAD
        || (uri.path().starts_with("/guardrail/") && uri.path().ends_with("/apply")))
}

/// Signatures of accepted requests that change the registry (create, update, version,
/// delete), so a captured one cannot be replayed within its 15-minute window. Per process
/// (each Lambda sandbox has its own).
static SEEN_SIGNATURES: std::sync::LazyLock<sigv4::ReplayCache> =
    std::sync::LazyLock::new(|| sigv4::ReplayCache::new(sigv4::MAX_REMEMBERED_SIGNATURES));

/// A mutating request that failed on our side (5xx) or was throttled may be retried by the
/// client with the same signature (the SDKs re-sign, but within the same second the signature
/// is the same): its signature is forgotten.
async fn forget_failed(req: Request, next: axum::middleware::Next) -> Response {
    let signature = sigv4::signature_of(req.headers());
    let response = next.run(req).await;
    let status = response.status();
    if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
        && let Some(signature) = signature
    {
        SEEN_SIGNATURES.forget(&signature);
    }
    response
}

/// A request whose SigV4 signature verified against a locally issued access key: its body.
pub struct Signed(Bytes);

impl FromRequest<AppState> for Signed {
    type Rejection = AwsError;

    async fn from_request(req: Request, state: &AppState) -> Result<Signed, AwsError> {
        let method = req.method().clone();
        let uri = req.uri().clone();
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            AwsError::new(
                e.status(),
                "ValidationException",
                "the request body could not be read",
            )
        })?;
        authenticate(state, &method, &uri, &headers, &body)?;
        Ok(Signed(body))
    }
}

impl Signed {
    /// The body as JSON (`{}` when empty).
    fn json(&self) -> Result<Value, AwsError> {
        json_body(&self.0)
    }
}

fn json_body(body: &[u8]) -> Result<Value, AwsError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| AwsError::validation(format!("request body is not valid JSON: {e}")))
}

/// The policy fields of a Create/Update body (request-only fields removed).
fn policy_from(mut body: Value) -> Result<(GuardrailPolicy, Option<String>), AwsError> {
    let token = body
        .as_object_mut()
        .and_then(|o| {
            o.remove("tags");
            o.remove("clientRequestToken")
        })
        .and_then(|t| t.as_str().map(str::to_string));
    if let Some(t) = &token {
        let ok = !t.is_empty()
            && t.len() <= 256
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(AwsError::validation(
                "clientRequestToken: must match [a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?",
            ));
        }
    }
    let policy: GuardrailPolicy =
        serde_json::from_value(body).map_err(|e| AwsError::validation(e.to_string()))?;
    Ok((policy, token))
}

fn accepted(v: Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(v)).into_response()
}

async fn create(State(state): State<AppState>, signed: Signed) -> Result<Response, AwsError> {
    let (policy, token) = policy_from(signed.json()?)?;
    let rec = registry(&state).create(&policy, token.as_deref())?;
    Ok(accepted(json!({
        "guardrailId": rec.id, "guardrailArn": rec.arn,
        "version": "DRAFT", "createdAt": rec.created_at,
    })))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed: Signed,
) -> Result<Response, AwsError> {
    let id = parse_identifier(&id)?;
    let (policy, _) = policy_from(signed.json()?)?;
    let rec = registry(&state).update(&id, &policy)?;
    Ok(accepted(json!({
        "guardrailId": rec.id, "guardrailArn": rec.arn,
        "version": "DRAFT", "updatedAt": rec.updated_at,
    })))
}

async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    _signed: Signed,
) -> Result<Response, AwsError> {
    let id = parse_identifier(&id)?;
    let version = match q.get("guardrailVersion") {
        Some(v) => parse_version(v, true)?,
        None => None,
    };
    let rec = registry(&state).get(&id, version)?;
    Ok(axum::Json(rec.to_get()).into_response())
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    _signed: Signed,
) -> Result<Response, AwsError> {
    let id = q
        .get("guardrailIdentifier")
        .map(|i| parse_identifier(i))
        .transpose()?;
    let max = match q.get("maxResults") {
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| (1..=MAX_RESULTS).contains(m))
            .ok_or_else(|| {
                AwsError::validation(format!("maxResults: must be 1 to {MAX_RESULTS}"))
            })?,
        None => DEFAULT_RESULTS,
    };
    let offset = match q.get("nextToken") {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| AwsError::validation("nextToken: not a token this service issued"))?,
        None => 0,
    };
    let (page, next) = registry(&state).list(id.as_deref(), offset, max)?;
    let mut out = json!({ "guardrails": page.iter().map(|r| r.to_summary()).collect::<Vec<_>>() });
    if let (Some(n), Some(o)) = (next, out.as_object_mut()) {
        o.insert("nextToken".into(), Value::from(n.to_string()));
    }
    Ok(axum::Json(out).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    _signed: Signed,
) -> Result<Response, AwsError> {
    let id = parse_identifier(&id)?;
    let version = match q.get("guardrailVersion") {
        Some(v) => parse_version(v, false)?,
        None => None,
    };
    // Pinned by a feature, in the configuration or by a console override: refused.
    check_unpinned(&id, version, &state.features.pins(&state.config))?;
    registry(&state).delete(&id, version)?;
    Ok(accepted(json!({})))
}

async fn create_version(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed: Signed,
) -> Result<Response, AwsError> {
    let id = parse_identifier(&id)?;
    let b = signed.json()?;
    let description = b.get("description").and_then(Value::as_str);
    if let Some(d) = description
        && (d.is_empty() || d.chars().count() > super::policy::limits::DESCRIPTION_MAX)
    {
        return Err(AwsError::validation(
            "description: length must be between 1 and 200 characters",
        ));
    }
    let token = b.get("clientRequestToken").and_then(Value::as_str);
    let version = registry(&state).create_version(&id, description, token)?;
    Ok(accepted(json!({ "guardrailId": id, "version": version })))
}

async fn apply(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    signed: Signed,
) -> Result<Response, AwsError> {
    let id = parse_identifier(&id)?;
    parse_version(&version, true)?;
    // serde's message can quote the offending value (guarded text): report the place only.
    let req: ApplyGuardrailRequest = serde_json::from_slice(&signed.0).map_err(|e| {
        AwsError::validation(format!(
            "request body does not match ApplyGuardrail's shape (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let (source, full) = req.parse_source().map_err(AwsError::validation)?;
    let texts = req.texts().map_err(AwsError::validation)?;
    // Compiling and guarding are CPU work: off the runtime, bounded (`guard::offload`).
    let texts: Vec<(String, bool)> = texts.iter().map(|(t, q)| (t.to_string(), *q)).collect();
    let registry = std::sync::Arc::clone(&state.registry);
    let response = super::offload::run(move || {
        let compiled = registry.compiled(&GuardrailRef { id, version })?;
        let texts: Vec<(&str, bool)> = texts.iter().map(|(t, q)| (t.as_str(), *q)).collect();
        Ok(compiled.assess(source, &texts, full))
    })
    .await
    .and_then(|r| r)
    .map_err(|e| match e {
        super::GuardError::NotFound(m) => AwsError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("guardrail {m} not found"),
        ),
        super::GuardError::Backend(detail) => {
            tracing::error!(error = %detail, "guardrail failed to compile");
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "internal error",
            )
        }
        super::GuardError::Busy | super::GuardError::Budget => AwsError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "guardrail busy, retry later",
        ),
    })?;
    Ok(axum::Json(response).into_response())
}
