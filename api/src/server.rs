//! The router: every route and its body limit, and serving it.

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(crate::status_http::health))
        .route("/metrics", get(crate::status_http::metrics))
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
