//! Sigma rule import: `POST /api/v1/sigma/import` and the storing half of
//! `vigil sigma import`. Rules are converted by `vigil-sigma` (pure), each
//! hunt spec is validated by the hunts crate like any other hunt, and stored:
//! created, or replacing the hunt with the same Sigma id (in its meta) or,
//! failing that, the same name. See docs/sigma.md.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_hunts::{hunt, HuntSpec, Settings};
use vigil_sigma::{convert_all, Options, Report, Source};
use vigil_store::Pool;

use crate::audit::Entry;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::shared::audited;
use crate::AppState;

/// The most rules one request may carry.
const MAX_RULES: usize = 5_000;
/// A request's body limit: a rule set is larger than other JSON bodies.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One rule's outcome in an import.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Stored {
    /// The hunt's id (none on a dry run).
    #[schema(required)]
    pub id: Option<Uuid>,
    pub name: String,
    #[schema(required)]
    pub sigma_id: Option<String>,
    /// `created`, `replaced`, or `validated` (dry run).
    pub action: &'static str,
    pub correlation: bool,
    /// `[k, n]`: part k of a rule split into n hunts (too large for one query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<[usize; 2]>,
}

/// A rule that did not become a hunt.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Refused {
    /// Where it came from (a path or `rules[i]`).
    pub rule: String,
    #[schema(required)]
    pub sigma_id: Option<String>,
    #[schema(required)]
    pub title: Option<String>,
    pub reason: String,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    pub converted: Vec<Stored>,
    pub failed: Vec<Refused>,
    /// Base rules used only inside correlations (`generate: false`).
    pub referenced_only: usize,
}

impl Outcome {
    /// Rules converted: a rule split into parts counts once.
    pub fn rules_converted(&self) -> usize {
        self.converted.iter().filter(|c| c.part.is_none_or(|[k, _]| k == 1)).count()
    }

    pub fn summary(&self) -> ImportSummary {
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for f in &self.failed {
            *by_reason.entry(f.reason.clone()).or_insert(0) += 1;
        }
        ImportSummary {
            converted: self.rules_converted(),
            hunts: self.converted.len(),
            failed: self.failed.len(),
            referenced_only: self.referenced_only,
            by_reason,
        }
    }

    /// `converted N, failed M`, then the failures grouped by reason with their rules.
    pub fn render(&self) -> String {
        let mut out = format!("converted {}, failed {}", self.rules_converted(), self.failed.len());
        if self.rules_converted() != self.converted.len() {
            out.push_str(&format!(" ({} hunts: rules too large for one query are split)", self.converted.len()));
        }
        if self.referenced_only > 0 {
            out.push_str(&format!(" ({} base rules used only by correlations)", self.referenced_only));
        }
        out.push('\n');
        let mut groups: BTreeMap<&str, Vec<&Refused>> = BTreeMap::new();
        for f in &self.failed {
            groups.entry(f.reason.as_str()).or_default().push(f);
        }
        for (reason, fs) in groups {
            out.push_str(&format!("  {reason}: {}\n", fs.len()));
            for f in fs {
                out.push_str(&format!("    {}: {}\n", f.rule, f.message));
            }
        }
        out
    }
}

/// Validates every converted hunt with the hunts crate and (unless
/// `dry_run`) stores it, replacing a hunt of the same Sigma id or name.
pub async fn store(
    pool: &Pool,
    report: Report,
    created_by: Option<&str>,
    settle: TimeDelta,
    dry_run: bool,
) -> Result<Outcome, vigil_hunts::HuntError> {
    let mut out = Outcome { referenced_only: report.referenced_only.len(), ..Outcome::default() };
    for f in &report.failed {
        out.failed.push(Refused {
            rule: f.origin.clone(),
            sigma_id: f.sigma_id.clone(),
            title: f.title.clone(),
            reason: f.error.reason().to_string(),
            message: f.error.to_string(),
        });
    }
    let existing = if dry_run { Vec::new() } else { hunt::list(pool).await? };
    for c in report.converted {
        let refuse = |reason: String, message: String| Refused {
            rule: c.origin.clone(),
            sigma_id: c.sigma_id.clone(),
            title: Some(c.title.clone()),
            reason,
            message,
        };
        let spec: HuntSpec = match serde_json::from_value(c.spec.clone()) {
            Ok(s) => s,
            Err(e) => {
                out.failed.push(refuse("rejected_by_hunts".into(), format!("the hunts crate refused the spec: {e}")));
                continue;
            }
        };
        let v = match spec.validate(Settings::default().row_limit) {
            Ok(v) => v,
            Err(e) => {
                out.failed.push(refuse("rejected_by_hunts".into(), e.to_string()));
                continue;
            }
        };
        if dry_run {
            out.converted.push(Stored {
                id: None,
                name: c.name,
                sigma_id: c.sigma_id,
                action: "validated",
                correlation: c.correlation,
                part: c.part,
            });
            continue;
        }
        let part = c.part.map(|[k, _]| k as u64);
        let same = existing
            .iter()
            .find(|h| {
                c.sigma_id.is_some()
                    && h.meta.pointer("/sigma/id").and_then(Value::as_str) == c.sigma_id.as_deref()
                    && h.meta.pointer("/sigma/part/index").and_then(Value::as_u64) == part
            })
            .or_else(|| existing.iter().find(|h| h.name == c.name));
        let (h, action) = match same {
            Some(h) => (hunt::update(pool, h.id, &v).await, "replaced"),
            None => (hunt::create(pool, &v, created_by, chrono::Utc::now(), settle).await, "created"),
        };
        match h {
            Ok(h) => out.converted.push(Stored {
                id: Some(h.id),
                name: h.name,
                sigma_id: c.sigma_id,
                action,
                correlation: c.correlation,
                part: c.part,
            }),
            Err(vigil_hunts::HuntError::Conflict(m)) => out.failed.push(refuse("conflict".into(), m)),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// An import in numbers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Rules converted (a rule split into parts counts once).
    pub converted: usize,
    /// Hunts stored (or validated, on a dry run).
    pub hunts: usize,
    pub failed: usize,
    /// Base rules used only inside correlations.
    pub referenced_only: usize,
    /// Failed rules per reason.
    pub by_reason: BTreeMap<String, usize>,
}

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
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("at most {MAX_RULES} rules per request"),
            ));
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
