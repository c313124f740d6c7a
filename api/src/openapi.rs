//! The OpenAPI document, generated from the handlers' annotations and served
//! at `/api/openapi.json` (to any valid token: it describes, it reveals no data).

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Vigil API", description = "Search, hunts, alerts, graph and ingest for the Vigil SIEM. \
        Every endpoint but /health takes `Authorization: Bearer <token>` (`vigil token create --role …`)."),
    paths(
        crate::status_http::health,
        crate::status_http::metrics,
        crate::session_http::session,
        crate::ingest_http::ingest,
        crate::search_http::search,
        crate::search_http::explain,
        crate::search_http::fields,
        crate::tail_http::tail,
        crate::inventory_http::agents,
        crate::inventory_http::vulnerabilities,
        crate::agents_http::send,
        crate::agents_http::history,
        crate::graph_http::blast_radius,
        crate::graph_http::paths,
        crate::graph_http::neighbourhood,
        crate::hunts_http::list,
        crate::hunts_http::create,
        crate::hunts_http::get,
        crate::hunts_http::update,
        crate::hunts_http::delete,
        crate::hunts_http::runs,
        crate::hunts_http::run_now,
        crate::sigma_http::import,
        crate::alerts_http::list,
        crate::alerts_http::get,
        crate::alerts_http::acknowledge,
        crate::alerts_http::assign,
        crate::alerts_http::close,
        document,
    ),
    modifiers(&BearerToken)
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "server",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
    security(("token" = [])))]
pub async fn document(_caller: Caller) -> Result<Json<utoipa::openapi::OpenApi>, ApiError> {
    Ok(Json(ApiDoc::openapi()))
}
