//! `POST /api/v1/search`, `POST /api/v1/search/explain` and `GET /api/v1/fields`:
//! SRQL over HTTP with pages, totals and the plan, and the field registry
//! that editors autocomplete from.
//!
//! A page is the query run again with a pinned `now` (so relative windows do
//! not slide between pages) and a larger limit; the cursor carries the
//! offset, the pinned time and a digest of the query it belongs to.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vigil_search::{SearchError, SearchOptions};

use crate::audit::{self, Entry};
use crate::auth::{ApiError, Caller, Role};
use crate::AppState;

/// Rows per page unless the request says otherwise, and the most it may ask for.
pub const DEFAULT_PAGE: u64 = 100;
pub const MAX_PAGE: u64 = 1_000;

/// Who may search: everyone but ingest-only tokens.
const SEARCHERS: &[Role] = &[Role::Viewer, Role::Analyst, Role::Admin];

/// The executor's limits: `VIGIL_QUERY_TIMEOUT` (default 30 s) and
/// `VIGIL_QUERY_MAX_ROWS` (default 10,000).
pub fn options_from_env() -> SearchOptions {
    let mut o = SearchOptions { count_cap: 10_000, ..SearchOptions::default() };
    o.query.statement_timeout = query_timeout();
    o.srql.max_limit = env_u64("VIGIL_QUERY_MAX_ROWS", o.srql.max_limit, 1..=1_000_000);
    o.count_cap = o.count_cap.max(o.srql.max_limit);
    o
}

/// `VIGIL_QUERY_TIMEOUT`: seconds (`30`), or with a unit (`500ms`, `2m`).
fn query_timeout() -> Duration {
    const DEFAULT: Duration = Duration::from_secs(30);
    let Ok(v) = std::env::var("VIGIL_QUERY_TIMEOUT") else { return DEFAULT };
    let t = v.trim();
    let parsed = if let Some(ms) = t.strip_suffix("ms") {
        ms.parse::<u64>().ok().map(Duration::from_millis)
    } else if let Ok(secs) = t.parse::<u64>() {
        Some(Duration::from_secs(secs))
    } else {
        vigil_srql::time::parse_duration(t).and_then(|d| d.to_std().ok())
    };
    match parsed {
        Some(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(3_600) => d,
        _ => {
            tracing::error!(
                "VIGIL_QUERY_TIMEOUT={v:?} is not a duration from 1ms to 1h (e.g. 30, 500ms, 2m); using 30 s"
            );
            DEFAULT
        }
    }
}

fn env_u64(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                tracing::error!("{name}={v:?} is not a number in {range:?}; using {default}");
                default
            }
        },
        Err(_) => default,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The SRQL query.
    pub query: String,
    /// Rows per page (default 100, at most 1,000).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Evaluate relative times (`time:last_1h`) as of this instant instead of now.
    pub now: Option<DateTime<Utc>>,
}

/// What a cursor remembers between pages.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cursor {
    /// Digest of the query text: a cursor only continues its own query.
    q: String,
    now: DateTime<Utc>,
    offset: u64,
    total: u64,
    total_exact: bool,
}

impl Cursor {
    fn encode(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(s: &str) -> Option<Cursor> {
        if !s.len().is_multiple_of(2) || s.len() > 4_096 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
        serde_json::from_slice(&bytes?).ok()
    }
}

fn digest(query: &str) -> String {
    Sha256::digest(query.as_bytes()).iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// The API's answer to an executor error: the user's mistakes are 400s with
/// what was wrong; a query cancelled by its timeout is a 504; the rest are 5xx.
fn search_error(e: SearchError, query: &str) -> ApiError {
    match e {
        SearchError::Srql(e) => ApiError::srql(&e, query),
        SearchError::Timeout(t) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "query_timeout",
            format!("the query was cancelled after {t:?}; narrow its time window or filters"),
        ),
        e @ (SearchError::NoEmbedder(_) | SearchError::NoGraph) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_available", e.to_string())
        }
        e => {
            tracing::error!("search failed: {e}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "search_failed", e.to_string())
        }
    }
}

/// Runs one page of an SRQL query.
#[utoipa::path(post, path = "/api/v1/search", tag = "search", request_body = SearchRequest,
    responses(
        (status = 200, description = "One page: `columns`, `rows` (objects), `total`, `total_relation` (`eq`/`gte`), `took_ms`, `visualization`, `plan`, `warnings`, `partial`, `next_cursor`, `now`", body = Object),
        (status = 400, description = "An SRQL error (with `span`, `expected`, `suggestions`, `rendered`) or a bad limit or cursor", body = Object),
        (status = 504, description = "Cancelled at the statement timeout (`query_timeout`)", body = Object)),
    security(("token" = [])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SearchRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require(SEARCHERS)?;
    let result = run_page(&state, &req).await;
    let entry = Entry::new("search").detail(json!({"query": req.query, "cursor": req.cursor.is_some()}));
    match &result {
        Ok(body) => {
            let n = body.get("rows").and_then(Value::as_array).map_or(0, Vec::len);
            audit::record(&state.pool, &caller, entry.size(n)).await;
        }
        Err(e) => audit::record(&state.pool, &caller, entry.outcome(e.code)).await,
    }
    result.map(Json)
}

async fn run_page(state: &AppState, req: &SearchRequest) -> Result<Value, ApiError> {
    if req.query.trim().is_empty() {
        return Err(bad_request("empty_query", "`query` is empty; try `severity:>=high` or `in:events`"));
    }
    let page = req.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(bad_request("bad_limit", format!("`limit` must be 1..={MAX_PAGE}, not {page}")));
    }
    let q = digest(&req.query);
    let cursor = match &req.cursor {
        Some(c) => {
            let c =
                Cursor::decode(c).ok_or_else(|| bad_request("bad_cursor", "`cursor` is not a cursor this API made"))?;
            if c.q != q {
                return Err(bad_request("bad_cursor", "`cursor` belongs to a different query"));
            }
            Some(c)
        }
        None => None,
    };
    let now = cursor.as_ref().map(|c| c.now).or(req.now).unwrap_or_else(Utc::now);
    let offset = cursor.as_ref().map_or(0, |c| c.offset);
    let max_rows = state.searcher.options().srql.max_limit;
    // One row past the page tells whether another page exists.
    let want = offset.saturating_add(page).saturating_add(1);
    let searcher = state.searcher.with_default_limit(want);
    let mut result = searcher.search(&req.query, now).await.map_err(|e| search_error(e, &req.query))?;
    let (total, total_exact) = match &cursor {
        Some(c) => (c.total, c.total_exact),
        None => (result.total, result.total_exact),
    };
    let all = std::mem::take(&mut result.rows);
    let returned = all.len() as u64;
    let start = offset.min(returned) as usize;
    let end = offset.saturating_add(page).min(returned) as usize;
    let more = returned > offset.saturating_add(page);
    if !more && returned >= max_rows && (!total_exact || total > returned) {
        result.warnings.push(format!(
            "pages end at {max_rows} rows (the server's row cap, VIGIL_QUERY_MAX_ROWS); narrow the query to see the rest"
        ));
    }
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Value> = all
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|r| Value::Object(names.iter().map(|n| n.to_string()).zip(r).collect()))
        .collect();
    let next_cursor = more.then(|| Cursor { q, now, offset: end as u64, total, total_exact }.encode());
    Ok(json!({
        "columns": result.columns.iter().map(|c| json!({"name": c.name, "type": c.ty})).collect::<Vec<_>>(),
        "rows": rows,
        "total": total,
        "total_relation": if total_exact { "eq" } else { "gte" },
        "took_ms": result.took_ms,
        "visualization": result.visualization,
        "plan": result.plan,
        "warnings": result.warnings,
        "partial": result.partial,
        "next_cursor": next_cursor,
        "now": now,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    pub query: String,
    pub now: Option<DateTime<Utc>>,
}

/// The plan, SQL and parameters of a query, and for `SIMILAR_TO` the path the
/// executor would take and why; nothing runs but the planner's estimate.
#[utoipa::path(post, path = "/api/v1/search/explain", tag = "search", request_body = ExplainRequest,
    responses((status = 200, description = "`entity`, `plan`, `warnings`, `sql`, `params`, `columns`, `visualization`, `window`", body = Object),
        (status = 400, description = "An SRQL error", body = Object)),
    security(("token" = [])))]
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<ExplainRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require(SEARCHERS)?;
    let now = req.now.unwrap_or_else(Utc::now);
    let result = state.searcher.explain(&req.query, now).await.map_err(|e| search_error(e, &req.query));
    let entry = Entry::new("search.explain").detail(json!({"query": req.query}));
    match &result {
        Ok(_) => audit::record(&state.pool, &caller, entry).await,
        Err(e) => audit::record(&state.pool, &caller, entry.outcome(e.code)).await,
    }
    let x = result?;
    Ok(Json(json!({
        "entity": x.compiled.entity,
        "plan": x.plan,
        "warnings": x.compiled.warnings,
        "sql": x.compiled.sql,
        "params": x.compiled.params.iter().map(|p| p.render()).collect::<Vec<_>>(),
        "columns": x.compiled.columns.iter().map(|c| json!({"name": c.name, "type": c.ty})).collect::<Vec<_>>(),
        "visualization": x.compiled.visualization,
        "window": x.compiled.window.map(|(s, e)| json!({"start": s, "end": e})),
    })))
}

/// The field registry: entities, their fields (type, aliases, description,
/// enum values), the pipes, and the server's limits.
#[utoipa::path(get, path = "/api/v1/fields", tag = "search",
    responses((status = 200, description = "`entities` (fields with types, aliases, descriptions, enum values), `pipes`, `limits`", body = Object)),
    security(("token" = [])))]
pub async fn fields(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(SEARCHERS)?;
    let o = state.searcher.options();
    Ok(Json(json!({
        "entities": vigil_srql::registry::ENTITIES,
        "pipes": vigil_srql::PIPES,
        "limits": {
            "default_window_s": o.srql.default_window.num_seconds(),
            "max_span_s": o.srql.max_span.num_seconds(),
            "default_limit": o.srql.default_limit,
            "max_rows": o.srql.max_limit,
            "statement_timeout_ms": o.query.statement_timeout.as_millis() as u64,
            "max_page": MAX_PAGE,
        },
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor { q: digest("in:events"), now: Utc::now(), offset: 200, total: 1234, total_exact: false };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "zz", "abc", "7b7d", &"0".repeat(5_000)] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
