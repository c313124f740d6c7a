//! `/api/v1/hunts`: scheduled hunts (create, read, replace, delete), their
//! recorded runs, and a run on demand. Viewers read; analysts and admins
//! change; every change (and every refused change) is in the audit log.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_hunts::hunt::Run;
use vigil_hunts::{hunt, Hunt, HuntSpec, RunReport, Runner, SystemClock};

use crate::audit::Entry;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody, InQuery};
use crate::shared::{audited, parse_id};
use crate::AppState;

/// Every hunt, by name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HuntList {
    pub hunts: Vec<Hunt>,
}

/// A hunt's recorded runs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HuntRuns {
    pub runs: Vec<Run>,
}

fn runner(state: &AppState) -> Runner {
    Runner::new(state.pool.clone(), (*state.hunt_settings).clone(), Arc::new(SystemClock))
}

fn validate(state: &AppState, spec: &HuntSpec) -> Result<hunt::Validated, ApiError> {
    spec.validate(state.hunt_settings.row_limit, &state.hunt_settings.delivery).map_err(|e| e.in_query(&spec.query))
}

fn body_of(body: Result<Json<HuntSpec>, axum::extract::rejection::JsonRejection>) -> Result<HuntSpec, ApiError> {
    body.map(|Json(b)| b).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `GET /api/v1/hunts`
#[utoipa::path(get, path = "/api/v1/hunts", operation_id = "list_hunts", tag = "hunts",
    responses((status = 200, description = "Every hunt, by name", body = HuntList)), security(("token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<HuntList>, ApiError> {
    caller.require(Permission::HuntsRead)?;
    let hunts = hunt::list(&state.pool).await?;
    Ok(Json(HuntList { hunts }))
}

/// `POST /api/v1/hunts` with a hunt (see docs/hunts.md).
#[utoipa::path(post, path = "/api/v1/hunts", operation_id = "create_hunt", tag = "hunts", request_body = HuntSpec,
    responses((status = 201, description = "The stored hunt", body = Hunt),
        (status = 400, description = "An SRQL error (with `span`) or a bad schedule, severity, group-by, suppression, action or correlation (with `field`)", body = ErrorBody),
        (status = 409, description = "A hunt of that name exists", body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<HuntSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Hunt>), ApiError> {
    caller.require(Permission::HuntsWrite)?;
    let mut entry = Entry::new("hunt.create");
    let result = async {
        let spec = body_of(body)?;
        entry = entry.clone().detail(json!({"name": spec.name, "query": spec.query, "schedule": spec.schedule}));
        let v = validate(&state, &spec)?;
        let settle = state.hunt_settings.settle;
        let h = hunt::create(&state.pool, &v, Some(&caller.token.name), chrono::Utc::now(), settle)
            .await
            .map_err(|e| e.in_query(&spec.query))?;
        entry = entry.clone().target(h.id);
        Ok(h)
    }
    .await;
    let h = audited(&state, &caller, entry.size(1), result).await?;
    Ok((StatusCode::CREATED, Json(h)))
}

/// `GET /api/v1/hunts/{id}`
#[utoipa::path(get, path = "/api/v1/hunts/{id}", operation_id = "get_hunt", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    responses((status = 200, description = "The hunt", body = Hunt), (status = 404, description = "No such hunt", body = ErrorBody)),
    security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Hunt>, ApiError> {
    caller.require(Permission::HuntsRead)?;
    let id = parse_id(&id, "hunt")?;
    let h = hunt::get(&state.pool, id).await?;
    Ok(Json(h))
}

/// `PUT /api/v1/hunts/{id}` with the whole hunt; its watermark stays.
#[utoipa::path(put, path = "/api/v1/hunts/{id}", operation_id = "update_hunt", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    request_body = HuntSpec,
    responses((status = 200, description = "The stored hunt", body = Hunt),
        (status = 400, description = "As for `POST /api/v1/hunts`", body = ErrorBody),
        (status = 404, description = "No such hunt", body = ErrorBody),
        (status = 409, description = "Another hunt has that name", body = ErrorBody)),
    security(("token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<HuntSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Hunt>, ApiError> {
    caller.require(Permission::HuntsWrite)?;
    let mut entry = Entry::new("hunt.update").target(&id);
    let result = async {
        let id = parse_id(&id, "hunt")?;
        let spec = body_of(body)?;
        entry = entry.clone().detail(json!({"name": spec.name, "query": spec.query, "schedule": spec.schedule,
            "enabled": spec.enabled}));
        let v = validate(&state, &spec)?;
        hunt::update(&state.pool, id, &v).await.map_err(|e| e.in_query(&spec.query))
    }
    .await;
    let h = audited(&state, &caller, entry.size(1), result).await?;
    Ok(Json(h))
}

/// `DELETE /api/v1/hunts/{id}`: the hunt and its runs; its alerts stay.
#[utoipa::path(delete, path = "/api/v1/hunts/{id}", operation_id = "delete_hunt", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such hunt", body = ErrorBody)),
    security(("token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::HuntsWrite)?;
    let entry = Entry::new("hunt.delete").target(&id);
    let result = async {
        let id = parse_id(&id, "hunt")?;
        let h = hunt::get(&state.pool, id).await?;
        hunt::delete(&state.pool, id).await?;
        Ok(h)
    }
    .await;
    let entry = match &result {
        Ok(h) => entry.detail(json!({"name": h.name, "query": h.query})).size(1),
        Err(_) => entry,
    };
    audited(&state, &caller, entry, result).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    limit: Option<i64>,
}

/// `GET /api/v1/hunts/{id}/runs?limit=50`: newest first.
#[utoipa::path(get, path = "/api/v1/hunts/{id}/runs", operation_id = "hunt_runs", tag = "hunts",
    params(("id" = String, Path, description = "Hunt id"), ("limit" = Option<i64>, Query, description = "At most this many (default 50, max 1000)")),
    responses((status = 200, description = "The runs, newest first", body = HuntRuns),
        (status = 404, description = "No such hunt", body = ErrorBody)),
    security(("token" = [])))]
pub async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<HuntRuns>, ApiError> {
    caller.require(Permission::HuntsRead)?;
    let id = parse_id(&id, "hunt")?;
    hunt::get(&state.pool, id).await?;
    let runs = hunt::runs(&state.pool, id, q.limit.unwrap_or(50).clamp(1, 1000)).await?;
    Ok(Json(HuntRuns { runs }))
}

/// `POST /api/v1/hunts/{id}/run`: runs now over what was ingested since the
/// last run (up to now − settle) and answers with what the run did.
#[utoipa::path(post, path = "/api/v1/hunts/{id}/run", operation_id = "run_hunt", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    responses((status = 200, description = "The run's report", body = RunReport),
        (status = 404, description = "No such hunt", body = ErrorBody)),
    security(("token" = [])))]
pub async fn run_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunReport>, ApiError> {
    caller.require(Permission::HuntsWrite)?;
    let entry = Entry::new("hunt.run").target(&id);
    let result = async {
        let id = parse_id(&id, "hunt")?;
        runner(&state).run_now_deliver_later(id).await.map_err(ApiError::from)
    }
    .await;
    let entry = match &result {
        Ok(r) => entry
            .detail(json!({"matches": r.matches, "alerts_created": r.alerts_created, "error": r.error}))
            .size(r.alerts_created as usize),
        Err(_) => entry,
    };
    let r = audited(&state, &caller, entry, result).await?;
    Ok(Json(r))
}
