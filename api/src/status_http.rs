//! `/health` and `/metrics`: what load balancers and scrapers poll.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::AppState;

/// The answer of `/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: &'static str,
    /// `ok`, or why the database did not answer.
    pub database: String,
    pub storage_mode: String,
    /// The server's version.
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_s: u64,
}

/// Liveness and readiness in one: 200 when the database answers, 503 when not.
/// Unauthenticated by design (load balancers and `vigil up` poll it), so it
/// reveals nothing about the data.
#[utoipa::path(get, path = "/health", tag = "server",
    responses((status = 200, description = "The database answers", body = Health), (status = 503, description = "It does not", body = Health)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db = tokio::time::timeout(Duration::from_secs(2), async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client.query_one("SELECT 1", &[]).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })
    .await
    .unwrap_or_else(|_| Err("timed out after 2s".into()));
    let (code, status, database) = match db {
        Ok(()) => (StatusCode::OK, "ok", "ok".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, "degraded", e),
    };
    let body = Health {
        status,
        database,
        storage_mode: state.storage_mode.to_string(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
    };
    (code, Json(body))
}

/// Prometheus text: every stage's counters (the server's registry), for
/// tokens that may read (not ingest-only ones).
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text: per-stage counters", content_type = "text/plain", body = String)),
    security(("token" = [])))]
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::ServerRead)?;
    Ok(encode_metrics(&state))
}

fn encode_metrics(state: &AppState) -> axum::response::Response {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut body, &state.metrics) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the metrics: {e}")).into_response();
    }
    ([(axum::http::header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], body)
        .into_response()
}
