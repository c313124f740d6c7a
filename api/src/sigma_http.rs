//! Sigma rule import over HTTP: `POST /api/v1/sigma/import`. Rules are
//! converted by `vigil-sigma` (pure) and stored as hunts by the hunts crate
//! ([`vigil_hunts::sigma_import`]); this module reads the request, checks the
//! caller, audits and answers, converting with the mapping the server read at
//! start (`VIGIL_SIGMA_MAPPING`, see [`crate::config`]). See docs/sigma.md.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use vigil_hunts::sigma_import::{store, ImportSummary, Refused, Stored};
use vigil_sigma::{convert_all, Options, Source};

use crate::audit::Entry;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::shared::audited;
use crate::AppState;

/// The most rules one request may carry.
const MAX_RULES: usize = 5_000;
/// A request's body limit: a rule set is larger than other JSON bodies.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The answer of `POST /api/v1/sigma/import`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ImportResponse {
    pub converted: Vec<Stored>,
    pub failed: Vec<Refused>,
    pub summary: ImportSummary,
}

/// The request body of `POST /api/v1/sigma/import`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Sigma YAML texts; each may hold several documents.
    pub rules: Vec<String>,
    /// Cron of the created hunts (default `*/5 * * * *`).
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Convert and validate only.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/v1/sigma/import`
#[utoipa::path(post, path = "/api/v1/sigma/import", operation_id = "import_sigma", tag = "hunts", request_body = ImportRequest,
    responses((status = 200, description = "The hunts stored, the rules refused and why, and a summary", body = ImportResponse),
        (status = 400, description = "A malformed body or too many rules", body = ErrorBody)),
    security(("token" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ImportRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ImportResponse>, ApiError> {
    caller.require(Permission::HuntsWrite)?;
    let mut entry = Entry::new("sigma.import");
    let result = async {
        let req = body.map(|Json(b)| b).map_err(|e| ApiError::bad_request(e.body_text()))?;
        if req.rules.len() > MAX_RULES {
            return Err(ApiError::bad_request(format!("at most {MAX_RULES} rules per request")));
        }
        let opts = Options {
            schedule: req.schedule.clone().unwrap_or_else(|| vigil_sigma::DEFAULT_SCHEDULE.into()),
            enabled: req.enabled.unwrap_or(true),
        };
        let origins: Vec<String> = (0..req.rules.len()).map(|i| format!("rules[{i}]")).collect();
        let sources: Vec<Source<'_>> =
            req.rules.iter().zip(&origins).map(|(y, o)| Source { origin: o, yaml: y }).collect();
        let report = convert_all(&sources, &state.sigma_mapping, &opts);
        let settle = state.hunt_settings.settle;
        let out =
            store(&state.pool, report, Some(&caller.token.name), settle, req.dry_run).await.map_err(ApiError::from)?;
        entry =
            entry.clone().detail(json!({"rules": req.rules.len(), "dry_run": req.dry_run, "summary": out.summary()}));
        Ok(out)
    }
    .await;
    let out = audited(&state, &caller, entry.size(1), result).await?;
    let summary = out.summary();
    Ok(Json(ImportResponse { converted: out.converted, failed: out.failed, summary }))
}
