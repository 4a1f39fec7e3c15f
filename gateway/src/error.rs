//! The gateway's client-facing errors: one enum, one exhaustive mapping to an HTTP status and
//! OpenAI's error body (`{"error": {"message", "type", "param", "code"}}`) with stable codes.
//! Internal detail never reaches the client; it is logged once, where the error is converted.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed, expired or otherwise unacceptable credentials. Always the same body.
    #[error("unauthorized")]
    Unauthorized,
    /// The request is well-formed JSON but asks for something invalid.
    #[error("invalid request: {message}")]
    InvalidRequest {
        message: String,
        param: Option<&'static str>,
        code: &'static str,
    },
    /// The body is not valid JSON, or not the expected shape.
    #[error("malformed body: {0}")]
    MalformedBody(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("rate limit {limit} exceeded")]
    RateLimited {
        limit: &'static str,
        retry_after_secs: u64,
    },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The model provider failed or answered nonsense. Detail is internal.
    #[error("model provider failed: {0}")]
    ModelFailed(String),
    #[error("model provider timed out")]
    ModelTimeout,
    /// A backend the request needs (guardrail, audit, vault) failed. Detail is internal.
    #[error("{what} failed: {detail}")]
    Backend { what: &'static str, detail: String },
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&'static str>) -> ApiError {
        ApiError::InvalidRequest {
            message: message.into(),
            param,
            code: "invalid_request",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::InvalidRequest { .. } | ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ModelFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::ModelTimeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Backend { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The OpenAI-shaped body: (message, type, param, code). Never internal detail.
    fn body(&self) -> (String, &'static str, Option<&'static str>, &'static str) {
        match self {
            ApiError::Unauthorized => (
                "Invalid or missing bearer token.".into(),
                "authentication_error",
                None,
                "invalid_token",
            ),
            ApiError::InvalidRequest {
                message,
                param,
                code,
            } => (message.clone(), "invalid_request_error", *param, code),
            ApiError::MalformedBody(message) => (
                format!("Request body is not valid: {message}"),
                "invalid_request_error",
                None,
                "malformed_body",
            ),
            ApiError::PayloadTooLarge { limit } => (
                format!("Request body exceeds the limit of {limit} bytes."),
                "invalid_request_error",
                None,
                "payload_too_large",
            ),
            ApiError::RateLimited {
                limit,
                retry_after_secs,
            } => (
                format!(
                    "Rate limit exceeded for this feature ({limit}); retry after {retry_after_secs} s."
                ),
                "rate_limit_error",
                None,
                "rate_limit_exceeded",
            ),
            ApiError::NotFound => (
                "Not found.".into(),
                "invalid_request_error",
                None,
                "not_found",
            ),
            ApiError::MethodNotAllowed => (
                "Method not allowed.".into(),
                "invalid_request_error",
                None,
                "method_not_allowed",
            ),
            ApiError::ModelFailed(_) => (
                "The model provider failed to answer.".into(),
                "api_error",
                None,
                "model_error",
            ),
            ApiError::ModelTimeout => (
                "The model provider did not answer in time.".into(),
                "api_error",
                None,
                "model_timeout",
            ),
            ApiError::Backend { what, .. } => (
                format!("The gateway could not complete the request ({what} unavailable)."),
                "api_error",
                None,
                "backend_unavailable",
            ),
        }
    }

    /// The JSON body, for places that write it themselves (SSE error events).
    pub fn to_json(&self) -> serde_json::Value {
        let (message, kind, param, code) = self.body();
        json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, axum::Json(self.to_json())).into_response();
        match &self {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::InvalidRequest { .. }
            | ApiError::MalformedBody(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::NotFound
            | ApiError::MethodNotAllowed
            | ApiError::ModelFailed(_)
            | ApiError::ModelTimeout
            | ApiError::Backend { .. } => {}
        }
        response
    }
}
