use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use vigil_ingest::metrics::Metrics;
use vigil_store::{EventWriter, Pool, StorageMode};

use crate::auth::Caller;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: Pool,
    pub storage_mode: StorageMode,
    pub started: Arc<std::time::Instant>,
    pub ingest_metrics: Arc<Metrics>,
    pub writer: Arc<EventWriter>,
    pub derived: crate::derived::Derived,
    /// For commands to agents (request/reply); `None` without NATS.
    pub nats: Option<async_nats::Client>,
}

impl AppState {
    pub fn new(pool: Pool, storage_mode: StorageMode, ingest_metrics: Arc<Metrics>) -> Self {
        let writer = Arc::new(EventWriter::new(pool.clone()));
        AppState {
            pool,
            storage_mode,
            started: Arc::new(std::time::Instant::now()),
            ingest_metrics,
            writer,
            derived: Default::default(),
            nats: None,
        }
    }

    /// With a NATS connection, so commands can reach agents.
    pub fn with_nats(mut self, client: async_nats::Client) -> Self {
        self.nats = Some(client);
        self
    }

    /// With the background workers' handles (their counters join `/metrics`).
    pub fn with_derived(mut self, derived: crate::derived::Derived) -> Self {
        self.derived = derived;
        self
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/ingest",
            axum::routing::post(crate::ingest_http::ingest)
                .layer(axum::extract::DefaultBodyLimit::max(crate::ingest_http::MAX_BODY_BYTES)),
        )
        .route("/api/v1/agents/{id}/commands", get(crate::agents_http::history).post(crate::agents_http::send))
        .route("/api/v1/graph/blast-radius", get(crate::graph_http::blast_radius))
        .route("/api/v1/graph/paths", get(crate::graph_http::paths))
        .route("/api/v1/graph/neighbourhood", get(crate::graph_http::neighbourhood))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Liveness and readiness in one: 200 when the database answers, 503 when not.
/// Unauthenticated by design (load balancers and `vigil up` poll it), so it
/// reveals nothing about the data.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
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
    let body = json!({
        "status": status,
        "database": database,
        "storage_mode": state.storage_mode.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
    });
    (code, Json(body))
}

/// Prometheus text: per-stage ingest counters.
async fn metrics(State(state): State<AppState>, _caller: Caller) -> impl IntoResponse {
    let mut body = state.ingest_metrics.render();
    body.push_str(&state.derived.render_metrics());
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}
