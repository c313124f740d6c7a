use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
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
    /// Every stage's metrics, encoded by `/metrics` ([`metrics_registry`]).
    pub metrics: Arc<Registry>,
    pub writer: Arc<EventWriter>,
    pub derived: crate::derived::Derived,
    /// For commands to agents (request/reply); `None` without NATS.
    pub nats: Option<async_nats::Client>,
    /// Requests per token.
    pub rate: Arc<crate::rate::RateLimiter>,
    /// Runs SRQL for searches, on its own small pool (`with_query_pool`) so
    /// that slow queries cannot take the connections ingest needs.
    pub searcher: vigil_search::Searcher,
    query_pool: Pool,
    search_options: vigil_search::SearchOptions,
    /// The UI build served at `/` (`crate::web`); `None` serves a landing page.
    pub web_dir: Option<std::path::PathBuf>,
}

impl AppState {
    /// `metrics`: the registry every stage registered in ([`metrics_registry`]).
    pub fn new(pool: Pool, storage_mode: StorageMode, ingest_metrics: Arc<Metrics>, metrics: Registry) -> Self {
        let writer = Arc::new(EventWriter::new(pool.clone()));
        let search_options = crate::search_http::options_from_env();
        AppState {
            searcher: vigil_search::Searcher::new(pool.clone(), None, search_options.clone()),
            query_pool: pool.clone(),
            search_options,
            pool,
            storage_mode,
            started: Arc::new(std::time::Instant::now()),
            ingest_metrics,
            metrics: Arc::new(metrics),
            writer,
            derived: Default::default(),
            nats: None,
            rate: Arc::new(crate::rate::RateLimiter::from_env()),
            web_dir: crate::web::locate(),
        }
    }

    /// Searches run on `pool` instead of the shared one.
    pub fn with_query_pool(mut self, pool: Pool) -> Self {
        self.query_pool = pool;
        self.rebuild_searcher();
        self
    }

    fn rebuild_searcher(&mut self) {
        let d = &self.derived;
        let mut s =
            vigil_search::Searcher::new(self.query_pool.clone(), d.embedder.clone(), self.search_options.clone());
        if let Some(t) = &d.text_index {
            s = s.with_text_index(t.clone());
        }
        if let Some(g) = &d.graph {
            s = s.with_graph(g.clone());
        }
        self.searcher = s;
    }

    /// With a NATS connection, so commands can reach agents.
    pub fn with_nats(mut self, client: async_nats::Client) -> Self {
        self.nats = Some(client);
        self
    }

    /// With the background workers' handles.
    pub fn with_derived(mut self, derived: crate::derived::Derived) -> Self {
        self.derived = derived;
        self.rebuild_searcher();
        self
    }
}

/// The server's one metrics registry (prefix `vigil`): the stages that count
/// process-wide register here; the others register when they start
/// (`Metrics::register`, [`crate::derived::start`], [`crate::maintenance::start`]).
pub fn metrics_registry() -> Registry {
    let mut registry = Registry::with_prefix("vigil");
    vigil_hunts::metrics::register(&mut registry);
    crate::audit::register(&mut registry);
    registry
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route(
            "/api/v1/ingest",
            axum::routing::post(crate::ingest_http::ingest)
                .layer(axum::extract::DefaultBodyLimit::max(crate::ingest_http::MAX_BODY_BYTES)),
        )
        .route("/api/v1/search", axum::routing::post(crate::search_http::search))
        .route("/api/v1/search/explain", axum::routing::post(crate::search_http::explain))
        .route("/api/v1/fields", get(crate::search_http::fields))
        .route("/api/v1/tail", get(crate::tail_http::tail))
        .route("/api/v1/agents", get(crate::inventory_http::agents))
        .route("/api/v1/vulnerabilities", get(crate::inventory_http::vulnerabilities))
        .route("/api/v1/agents/{id}/commands", get(crate::agents_http::history).post(crate::agents_http::send))
        .route("/api/v1/graph/blast-radius", get(crate::graph_http::blast_radius))
        .route("/api/v1/graph/paths", get(crate::graph_http::paths))
        .route("/api/v1/graph/neighbourhood", get(crate::graph_http::neighbourhood))
        .route("/api/v1/hunts", get(crate::hunts_http::list).post(crate::hunts_http::create))
        .route(
            "/api/v1/hunts/{id}",
            get(crate::hunts_http::get).put(crate::hunts_http::update).delete(crate::hunts_http::delete),
        )
        .route("/api/v1/hunts/{id}/runs", get(crate::hunts_http::runs))
        .route("/api/v1/hunts/{id}/run", axum::routing::post(crate::hunts_http::run_now))
        .route(
            "/api/v1/sigma/import",
            axum::routing::post(crate::sigma_http::import)
                .layer(axum::extract::DefaultBodyLimit::max(crate::sigma_http::MAX_BODY_BYTES)),
        )
        .route("/api/v1/alerts", get(crate::alerts_http::list))
        .route("/api/v1/alerts/{id}", get(crate::alerts_http::get))
        .route("/api/v1/alerts/{id}/acknowledge", axum::routing::post(crate::alerts_http::acknowledge))
        .route("/api/v1/alerts/{id}/assign", axum::routing::post(crate::alerts_http::assign))
        .route("/api/v1/alerts/{id}/close", axum::routing::post(crate::alerts_http::close))
        .route("/api/v1/session", get(crate::session_http::session))
        // Everything else: the UI's files (or a JSON 404 under /api/).
        .fallback(|State(state): State<AppState>, req: axum::extract::Request| crate::web::fallback(state.web_dir, req))
        // JSON bodies are small; ingest sets its own, larger limit above.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .with_state(state)
}

/// Largest request body outside ingest.
pub const MAX_JSON_BODY_BYTES: usize = 256 * 1024;

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
#[utoipa::path(get, path = "/health", tag = "server",
    responses((status = 200, description = "The database answers", body = Object), (status = 503, description = "It does not", body = Object)))]
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

/// Prometheus text: every stage's counters (the server's registry).
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text: per-stage counters", content_type = "text/plain", body = String)),
    security(("token" = [])))]
async fn metrics(State(state): State<AppState>, _caller: Caller) -> impl IntoResponse {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut body, &state.metrics) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the metrics: {e}")).into_response();
    }
    ([(axum::http::header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], body)
        .into_response()
}
