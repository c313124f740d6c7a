//! `GET /api/v1/agents` and `GET /api/v1/vulnerabilities`: what is deployed
//! and what is exposed, for dashboards and scripts.
//!
//! Agents are known from their heartbeats (a `log` event from `vigil-agent`
//! with `raw.type = "heartbeat"`), so nothing has to register them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_store::StoreError;

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// An agent silent for longer than this is reported offline (3 missed heartbeats at the default 30 s).
const OFFLINE_AFTER_S: i64 = 90;

/// The answer of `GET /api/v1/agents`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentInfo>,
}

/// An agent, from its latest heartbeat.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentInfo {
    #[schema(required)]
    pub agent_id: Option<String>,
    #[schema(required)]
    pub host: Option<String>,
    #[schema(required)]
    pub version: Option<String>,
    /// What the agent reported it can do (free-form JSON).
    #[schema(required)]
    pub capabilities: Option<Value>,
    pub last_heartbeat: DateTime<Utc>,
    /// Heard from within the last 90 s.
    pub online: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentsQuery {
    /// Agents heard from within this many days (default 7, at most 90).
    pub days: Option<i64>,
}

/// Every agent heard from recently: its host, version, capabilities, last
/// heartbeat and whether it is online.
#[utoipa::path(get, path = "/api/v1/agents", tag = "inventory", params(AgentsQuery),
    responses((status = 200, description = "Agents: id, host, version, capabilities, last heartbeat, online", body = AgentList),
        (status = 400, description = "A bad `days` (`bad_days`)", body = ErrorBody)),
    security(("token" = [])))]
pub async fn agents(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AgentsQuery>,
) -> Result<Json<AgentList>, ApiError> {
    caller.require(Permission::Inventory)?;
    let days = q.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_days", format!("`days` must be 1..=90, not {days}")));
    }
    let client = state.pool.get().await.map_err(StoreError::from)?;
    let rows = client
        .query(
            "SELECT DISTINCT ON (raw->>'agent_id') raw->>'agent_id', host, raw->>'version', raw->'capabilities', time
               FROM events
              WHERE kind = 'log' AND source = 'vigil-agent' AND raw->>'type' = 'heartbeat'
                AND time > now() - make_interval(days => $1::int)
              ORDER BY raw->>'agent_id', time DESC",
            &[&(days as i32)],
        )
        .await
        .map_err(StoreError::db("listing agents"))?;
    let now = Utc::now();
    let agents = rows
        .iter()
        .map(|r| {
            let last: DateTime<Utc> = r.get(4);
            AgentInfo {
                agent_id: r.get(0),
                host: r.get(1),
                version: r.get(2),
                capabilities: r.get(3),
                last_heartbeat: last,
                online: (now - last).num_seconds() <= OFFLINE_AFTER_S,
            }
        })
        .collect();
    Ok(Json(AgentList { agents }))
}

/// The answer of `GET /api/v1/vulnerabilities`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VulnerabilityList {
    pub vulnerabilities: Vec<Vulnerability>,
}

/// A vulnerable package on a host.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Vulnerability {
    pub host: String,
    pub cve: String,
    pub package: String,
    #[schema(required)]
    pub installed_version: Option<String>,
    #[schema(required)]
    pub fixed_version: Option<String>,
    /// OCSF severity id (0–6; 4 = high).
    pub severity_id: i16,
    /// `running`, `dormant` or `fixed`.
    pub status: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VulnQuery {
    pub host: Option<String>,
    /// `running`, `dormant` or `fixed`.
    pub status: Option<String>,
    /// Lowest severity id (0–6; 4 = high).
    pub min_severity: Option<i16>,
    /// Most rows (default 500, at most 5,000).
    pub limit: Option<i64>,
}

/// Vulnerable packages per host, running ones (a vulnerable binary in a live
/// process) first, then by severity.
#[utoipa::path(get, path = "/api/v1/vulnerabilities", tag = "inventory", params(VulnQuery),
    responses((status = 200, description = "Vulnerabilities: host, CVE, package, versions, severity, status, first and last seen", body = VulnerabilityList),
        (status = 400, description = "A bad `status`, `min_severity` or `limit`", body = ErrorBody)),
    security(("token" = [])))]
pub async fn vulnerabilities(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<VulnQuery>,
) -> Result<Json<VulnerabilityList>, ApiError> {
    caller.require(Permission::Inventory)?;
    if let Some(s) = &q.status {
        if !["running", "dormant", "fixed"].contains(&s.as_str()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_status",
                format!("`status` must be running, dormant or fixed, not {s:?}"),
            ));
        }
    }
    let min = q.min_severity.unwrap_or(0);
    if !(0..=6).contains(&min) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_severity", "`min_severity` must be 0..=6"));
    }
    let limit = q.limit.unwrap_or(500);
    if !(1..=5_000).contains(&limit) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_limit", "`limit` must be 1..=5000"));
    }
    let client = state.pool.get().await.map_err(StoreError::from)?;
    let rows = client
        .query(
            "SELECT host, cve, package, installed_version, fixed_version, severity_id, status, first_seen, last_seen
               FROM vulnerabilities
              WHERE ($1::text IS NULL OR host = $1) AND ($2::text IS NULL OR status = $2) AND severity_id >= $3
              ORDER BY (status = 'running') DESC, severity_id DESC, host, cve
              LIMIT $4",
            &[&q.host, &q.status, &min, &limit],
        )
        .await
        .map_err(StoreError::db("listing vulnerabilities"))?;
    let vulnerabilities = rows
        .iter()
        .map(|r| Vulnerability {
            host: r.get(0),
            cve: r.get(1),
            package: r.get(2),
            installed_version: r.get(3),
            fixed_version: r.get(4),
            severity_id: r.get(5),
            status: r.get(6),
            first_seen: r.get(7),
            last_seen: r.get(8),
        })
        .collect();
    Ok(Json(VulnerabilityList { vulnerabilities }))
}
