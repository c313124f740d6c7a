//! `/api/v1/hunts`: scheduled hunts (create, read, replace, delete), their
//! recorded runs, and a run on demand. Viewers read; analysts and admins
//! change; every change (and every refused change) is in the audit log.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_hunts::{hunt, HuntError, HuntSpec, Runner, Settings, SystemClock};

use crate::audit::{self, Entry};
use crate::auth::{ApiError, Caller, Role};
use crate::AppState;

/// Who may read hunts and alerts.
pub(crate) const READERS: &[Role] = &[Role::Viewer, Role::Analyst, Role::Admin];
/// Who may change them.
pub(crate) const WRITERS: &[Role] = &[Role::Analyst, Role::Admin];

/// A hunt or alert error as the API's JSON error; `query` draws SRQL carets.
pub(crate) fn hunt_error(e: HuntError, query: &str) -> ApiError {
    match e {
        HuntError::Srql(e) => ApiError::srql(&e, query),
        HuntError::Invalid { field, code, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, code, message).with("field", json!(field))
        }
        HuntError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        HuntError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        e => {
            tracing::error!("hunts: {e}");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
        }
    }
}

pub(crate) fn parse_id(id: &str, what: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what} {id}")))
}

/// Records `entry` with the outcome of `result`, and passes the result on.
pub(crate) async fn audited<T>(
    state: &AppState,
    caller: &Caller,
    entry: Entry,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let entry = match &result {
        Ok(_) => entry,
        Err(e) => entry.outcome(e.code),
    };
    audit::record(&state.pool, caller, entry).await;
    result
}

fn runner(state: &AppState) -> Runner {
    Runner::new(state.pool.clone(), Settings::from_env(), Arc::new(SystemClock))
}

fn validate(spec: &HuntSpec) -> Result<hunt::Validated, ApiError> {
    spec.validate(Settings::default().row_limit).map_err(|e| hunt_error(e, &spec.query))
}

fn body_of(body: Result<Json<HuntSpec>, axum::extract::rejection::JsonRejection>) -> Result<HuntSpec, ApiError> {
    body.map(|Json(b)| b).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))
}

/// `GET /api/v1/hunts`
#[utoipa::path(get, path = "/api/v1/hunts", tag = "hunts",
    responses((status = 200, description = "Every hunt, by name", body = Object)), security(("token" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(READERS)?;
    let hunts = hunt::list(&state.pool).await.map_err(|e| hunt_error(e, ""))?;
    Ok(Json(json!({ "hunts": hunts })))
}

/// `POST /api/v1/hunts` with a hunt (see docs/hunts.md).
#[utoipa::path(post, path = "/api/v1/hunts", tag = "hunts", request_body = Object,
    responses((status = 201, description = "The stored hunt", body = Object),
        (status = 400, description = "An SRQL error (with `span`) or a bad schedule, severity, group-by, suppression, action or correlation", body = Object),
        (status = 409, description = "A hunt of that name exists", body = Object)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<HuntSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(WRITERS)?;
    let mut entry = Entry::new("hunt.create");
    let result = async {
        let spec = body_of(body)?;
        entry = entry.clone().detail(json!({"name": spec.name, "query": spec.query, "schedule": spec.schedule}));
        let v = validate(&spec)?;
        let r = runner(&state);
        let h = hunt::create(&state.pool, &v, Some(&caller.token.name), chrono::Utc::now(), r.settings().settle)
            .await
            .map_err(|e| hunt_error(e, &spec.query))?;
        entry = entry.clone().target(h.id);
        Ok(h)
    }
    .await;
    let h = audited(&state, &caller, entry.size(1), result).await?;
    Ok((StatusCode::CREATED, Json(json!(h))))
}

/// `GET /api/v1/hunts/{id}`
#[utoipa::path(get, path = "/api/v1/hunts/{id}", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    responses((status = 200, body = Object), (status = 404, body = Object)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READERS)?;
    let id = parse_id(&id, "hunt")?;
    let h = hunt::get(&state.pool, id).await.map_err(|e| hunt_error(e, ""))?;
    Ok(Json(json!(h)))
}

/// `PUT /api/v1/hunts/{id}` with the whole hunt; its watermark stays.
#[utoipa::path(put, path = "/api/v1/hunts/{id}", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)),
    security(("token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<HuntSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITERS)?;
    let mut entry = Entry::new("hunt.update").target(&id);
    let result = async {
        let id = parse_id(&id, "hunt")?;
        let spec = body_of(body)?;
        entry = entry.clone().detail(json!({"name": spec.name, "query": spec.query, "schedule": spec.schedule,
            "enabled": spec.enabled}));
        let v = validate(&spec)?;
        hunt::update(&state.pool, id, &v).await.map_err(|e| hunt_error(e, &spec.query))
    }
    .await;
    let h = audited(&state, &caller, entry.size(1), result).await?;
    Ok(Json(json!(h)))
}

/// `DELETE /api/v1/hunts/{id}`: the hunt and its runs; its alerts stay.
#[utoipa::path(delete, path = "/api/v1/hunts/{id}", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    responses((status = 204), (status = 404, body = Object)), security(("token" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITERS)?;
    let entry = Entry::new("hunt.delete").target(&id);
    let result = async {
        let id = parse_id(&id, "hunt")?;
        let h = hunt::get(&state.pool, id).await.map_err(|e| hunt_error(e, ""))?;
        hunt::delete(&state.pool, id).await.map_err(|e| hunt_error(e, ""))?;
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
#[utoipa::path(get, path = "/api/v1/hunts/{id}/runs", tag = "hunts",
    params(("id" = String, Path, description = "Hunt id"), ("limit" = Option<i64>, Query, description = "At most this many (default 50, max 1000)")),
    responses((status = 200, body = Object), (status = 404, body = Object)), security(("token" = [])))]
pub async fn runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(READERS)?;
    let id = parse_id(&id, "hunt")?;
    hunt::get(&state.pool, id).await.map_err(|e| hunt_error(e, ""))?;
    let runs =
        hunt::runs(&state.pool, id, q.limit.unwrap_or(50).clamp(1, 1000)).await.map_err(|e| hunt_error(e, ""))?;
    Ok(Json(json!({ "runs": runs })))
}

/// `POST /api/v1/hunts/{id}/run`: runs now over what was ingested since the
/// last run (up to now − settle) and answers with what the run did.
#[utoipa::path(post, path = "/api/v1/hunts/{id}/run", tag = "hunts", params(("id" = String, Path, description = "Hunt id")),
    responses((status = 200, description = "The run's report", body = Object), (status = 404, body = Object)),
    security(("token" = [])))]
pub async fn run_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITERS)?;
    let entry = Entry::new("hunt.run").target(&id);
    let result = async {
        let id = parse_id(&id, "hunt")?;
        runner(&state).run_now_deliver_later(id).await.map_err(|e| hunt_error(e, ""))
    }
    .await;
    let entry = match &result {
        Ok(r) => entry
            .detail(json!({"matches": r.matches, "alerts_created": r.alerts_created, "error": r.error}))
            .size(r.alerts_created as usize),
        Err(_) => entry,
    };
    let r = audited(&state, &caller, entry, result).await?;
    Ok(Json(json!(r)))
}
