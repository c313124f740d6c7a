//! `/api/v1/alerts`: alerts raised by hunts (list with filters and a cursor,
//! one with its linked events and actions) and their triage (acknowledge,
//! assign, close with a reason). Viewers read; analysts and admins triage;
//! every change is in the audit log.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use vigil_hunts::actions::{self, ActionRecord};
use vigil_hunts::alerts::{self, Alert, LinkedEvent};

use crate::audit::Entry;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::shared::{audited, parse_id};
use crate::AppState;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// An alert with its linked events and its actions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    /// The linked events' ids (at most 1,000), oldest first.
    pub event_ids: Vec<Uuid>,
    /// The linked events (at most 1,000), oldest first.
    pub events: Vec<LinkedEvent>,
    /// Its actions (webhooks, AWX) and their deliveries.
    pub actions: Vec<ActionRecord>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// At least this severity (name or 0–6).
    severity: Option<String>,
    hunt: Option<String>,
    assignee: Option<String>,
    /// RFC 3339; alerts raised at or after.
    since: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /api/v1/alerts?status=open&severity=high&hunt=…&assignee=…&since=…&limit=50&cursor=…`
#[utoipa::path(get, path = "/api/v1/alerts", operation_id = "list_alerts", tag = "alerts",
    params(("status" = Option<String>, Query, description = "open, acknowledged or closed"),
        ("severity" = Option<String>, Query, description = "At least this severity"),
        ("hunt" = Option<String>, Query, description = "Hunt id"),
        ("assignee" = Option<String>, Query, description = "Assigned to"),
        ("since" = Option<String>, Query, description = "Raised at or after (RFC 3339)"),
        ("limit" = Option<i64>, Query, description = "Page size (default 50, max 1000)"),
        ("cursor" = Option<String>, Query, description = "The previous page's next_cursor")),
    responses((status = 200, description = "Alerts, newest first, and next_cursor", body = vigil_hunts::alerts::Page),
        (status = 400, description = "A bad filter, limit or cursor", body = ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<alerts::Page>, ApiError> {
    caller.require(Permission::AlertsRead)?;
    if let Some(s) = &q.status {
        if !alerts::STATUSES.contains(&s.as_str()) {
            return Err(bad(format!("status {s:?} is not one of {}", alerts::STATUSES.join(", "))));
        }
    }
    let min_severity = match &q.severity {
        None => None,
        Some(s) => Some(
            vigil_srql::registry::SEVERITY
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(s))
                .map(|(_, i)| *i as i16)
                .or_else(|| s.parse::<i16>().ok().filter(|i| (0..=6).contains(i)))
                .ok_or_else(|| bad(format!("severity {s:?} is not info, low, medium, high, critical or 0-6")))?,
        ),
    };
    let hunt_id = match &q.hunt {
        None => None,
        Some(h) => Some(h.parse().map_err(|_| bad(format!("hunt {h:?} is not a hunt id")))?),
    };
    let since = match &q.since {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| bad(format!("since {s:?} is not an RFC 3339 time like 2026-03-01T12:00:00Z")))?
                .with_timezone(&chrono::Utc),
        ),
    };
    let cursor = match &q.cursor {
        None => None,
        Some(c) => Some(alerts::Cursor::decode(c).ok_or_else(|| bad("the cursor is not one this server gave"))?),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit must be 1 to 1000"));
    }
    let filter = alerts::Filter {
        status: q.status.clone(),
        min_severity,
        hunt_id,
        assignee: q.assignee.clone(),
        since,
        cursor,
        limit,
    };
    let page = alerts::list(&state.pool, &filter).await?;
    Ok(Json(page))
}

/// `GET /api/v1/alerts/{id}`: the alert, its linked events and its actions.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", operation_id = "get_alert", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The alert, its linked events and its actions", body = AlertDetail),
        (status = 404, description = "No such alert", body = ErrorBody)),
    security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, ApiError> {
    caller.require(Permission::AlertsRead)?;
    let id = parse_id(&id, "alert")?;
    let alert = alerts::get(&state.pool, id).await?;
    let events = alerts::events(&state.pool, id, 1000).await?;
    let acts = actions::for_alert(&state.pool, id).await?;
    let event_ids = events.iter().map(|e| e.event_id).collect();
    Ok(Json(AlertDetail { alert, event_ids, events, actions: acts }))
}

/// `POST /api/v1/alerts/{id}/acknowledge`
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", operation_id = "acknowledge_alert", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The alert", body = Alert), (status = 404, description = "No such alert", body = ErrorBody),
        (status = 409, description = "Closed", body = ErrorBody)),
    security(("token" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Permission::AlertsWrite)?;
    let entry = Entry::new("alert.acknowledge").target(&id);
    let result = async {
        let id = parse_id(&id, "alert")?;
        alerts::acknowledge(&state.pool, id, &caller.token.name).await.map_err(ApiError::from)
    }
    .await;
    let a = audited(&state, &caller, entry.size(1), result).await?;
    Ok(Json(a))
}

/// Whom to assign an alert to.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Who handles it; null or "" unassigns.
    assignee: Option<String>,
}

/// `POST /api/v1/alerts/{id}/assign` `{"assignee": "alice"}`
#[utoipa::path(post, path = "/api/v1/alerts/{id}/assign", operation_id = "assign_alert", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")), request_body = AssignBody,
    responses((status = 200, description = "The alert", body = Alert),
        (status = 400, description = "A malformed body or a name over 200 characters", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody)),
    security(("token" = [])))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<AssignBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Permission::AlertsWrite)?;
    let mut entry = Entry::new("alert.assign").target(&id);
    let result = async {
        let id = parse_id(&id, "alert")?;
        let Json(b) = body.map_err(|e| bad(e.body_text()))?;
        let assignee = b.assignee.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
        if assignee.as_ref().is_some_and(|a| a.chars().count() > 200) {
            return Err(bad("assignee is longer than 200 characters"));
        }
        entry = entry.clone().detail(json!({ "assignee": assignee }));
        alerts::assign(&state.pool, id, assignee.as_deref()).await.map_err(ApiError::from)
    }
    .await;
    let a = audited(&state, &caller, entry.size(1), result).await?;
    Ok(Json(a))
}

/// Why an alert is closed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    reason: Option<String>,
}

/// `POST /api/v1/alerts/{id}/close` `{"reason": "false positive: …"}` (reason required)
#[utoipa::path(post, path = "/api/v1/alerts/{id}/close", operation_id = "close_alert", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")), request_body = CloseBody,
    responses((status = 200, description = "The alert", body = Alert),
        (status = 400, description = "No reason (`reason_required`), or one over 2,000 characters", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody), (status = 409, description = "Already closed", body = ErrorBody)),
    security(("token" = [])))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<CloseBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Permission::AlertsWrite)?;
    let mut entry = Entry::new("alert.close").target(&id);
    let result = async {
        let id = parse_id(&id, "alert")?;
        let Json(b) = body.map_err(|e| bad(e.body_text()))?;
        let reason = b.reason.unwrap_or_default();
        if reason.chars().count() > 2000 {
            return Err(bad("reason is longer than 2000 characters"));
        }
        entry = entry.clone().detail(json!({ "reason": reason }));
        alerts::close(&state.pool, id, &reason, &caller.token.name).await.map_err(ApiError::from)
    }
    .await;
    let a = audited(&state, &caller, entry.size(1), result).await?;
    Ok(Json(a))
}
