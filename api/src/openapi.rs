//! The OpenAPI document, generated from the handlers' annotations and served
//! at `/api/openapi.json` to tokens that may read (viewer, analyst, admin;
//! not ingest-only tokens, which have no use for it).
//!
//! Every JSON answer has a schema: the handlers return the very types the
//! schemas are derived from, and every 4xx/5xx is an [`ErrorBody`]. A copy of
//! the document is kept in `web/src/api/openapi.json`, from which the web UI
//! generates its API types (`npm run gen:api`); a test here fails when that
//! copy is stale.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};

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
    modifiers(&BearerToken, &CommonErrors)
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The failures any endpoint that takes a token may answer, added to each
/// such operation that does not list them itself.
const COMMON_ERRORS: [(&str, &str, &str); 5] = [
    ("401", "Unauthorized", "No, unknown or revoked token (`unauthorized`), or an expired one (`token_expired`)"),
    ("403", "Forbidden", "The token's role may not do this (`forbidden`)"),
    ("429", "RateLimited", "Too many requests from this token, or too many failed token checks from this address (`rate_limited`); see `Retry-After`"),
    ("500", "InternalError", "A failure the caller cannot fix; `error_id` names it in the server's log"),
    ("503", "Unavailable", "The database (or the part of the server asked for) is unavailable; retry shortly"),
];

struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.entry(ErrorBody::name().into_owned()).or_insert_with(ErrorBody::schema);
        for (_, name, description) in COMMON_ERRORS {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build();
            let response = ResponseBuilder::new().description(description).content("application/json", content).build();
            components.responses.insert(name.to_string(), RefOr::T(response));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                add_common_errors(op);
            }
        }
    }
}

fn add_common_errors(op: &mut Operation) {
    if op.security.as_ref().is_none_or(|s| s.is_empty()) {
        return;
    }
    for (status, name, _) in COMMON_ERRORS {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "server",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
    security(("token" = [])))]
pub async fn document(caller: Caller) -> Result<Json<utoipa::openapi::OpenApi>, ApiError> {
    caller.require(Permission::ServerRead)?;
    Ok(Json(ApiDoc::openapi()))
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::ApiDoc;

    /// The copy the web UI generates its API types from (`npm run gen:api`).
    const COPY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/src/api/openapi.json");

    #[test]
    fn the_web_uis_copy_of_the_document_is_current() {
        let doc = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| panic!("the document: {e}")) + "\n";
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::write(COPY, &doc).unwrap_or_else(|e| panic!("writing {COPY}: {e}"));
            return;
        }
        let committed = std::fs::read_to_string(COPY).unwrap_or_default();
        if committed != doc {
            let line = committed
                .lines()
                .zip(doc.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| committed.lines().count().min(doc.lines().count()) + 1, |i| i + 1);
            panic!(
                "web/src/api/openapi.json is stale (first difference at line {line}): \
                 VIGIL_BLESS=1 cargo test -p vigil-api --lib openapi rewrites it; then `npm run build` in web/"
            );
        }
    }

    #[test]
    fn every_json_answer_has_a_schema() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let mut untyped = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    let schema = &response["content"]["application/json"]["schema"];
                    let free_form = schema.get("$ref").is_none() && schema.get("type") == Some(&"object".into());
                    if free_form && path != "/api/openapi.json" {
                        untyped.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(untyped.is_empty(), "answers without a schema: {untyped:?}");
    }

    /// Generated clients name their functions after these.
    #[test]
    fn operation_ids_are_unique() {
        let doc = ApiDoc::openapi();
        let mut seen = std::collections::BTreeSet::new();
        for item in doc.paths.paths.values() {
            for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(seen.insert(id.clone()), "operation id {id:?} is used twice");
            }
        }
    }
}
