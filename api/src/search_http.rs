//! `POST /api/v1/search`, `POST /api/v1/search/explain` and `GET /api/v1/fields`:
//! SRQL over HTTP with pages, totals and the plan, and the field registry
//! that editors autocomplete from.
//!
//! A page is the query run again with a pinned `now` (so relative windows do
//! not slide between pages) and a larger limit; the cursor carries the
//! offset, the pinned time and a digest of the query it belongs to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vigil_srql::registry::EntityDef;
use vigil_srql::Visualization;

use crate::audit::{self, Entry};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody, InQuery};
use crate::AppState;

/// Rows per page unless the request says otherwise, and the most it may ask for.
pub const DEFAULT_PAGE: u64 = 100;
pub const MAX_PAGE: u64 = 1_000;

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

/// One page of a query's results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub columns: Vec<ResultColumn>,
    /// One object per row, keyed by column name; a cell is any JSON value.
    #[schema(value_type = Vec<std::collections::BTreeMap<String, Value>>)]
    pub rows: Vec<Value>,
    /// Rows the query matches: exactly (`total_relation: eq`) or at least (`gte`).
    pub total: u64,
    pub total_relation: TotalRelation,
    pub took_ms: u64,
    pub visualization: Visualization,
    /// The planner's steps and the executor's choices.
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    /// Fewer rows may have come back than exist (a search stopped at a limit).
    pub partial: bool,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required)]
    pub next_cursor: Option<String>,
    /// The instant relative times were evaluated at (pinned across pages).
    pub now: DateTime<Utc>,
}

/// A result column: its name and type.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResultColumn {
    pub name: String,
    /// A field type (`keyword`, `int`, `time`, …) or a result type (`float`, `json`, …).
    #[serde(rename = "type")]
    pub ty: &'static str,
}

impl ResultColumn {
    fn of(columns: &[vigil_srql::Column]) -> Vec<ResultColumn> {
        columns.iter().map(|c| ResultColumn { name: c.name.clone(), ty: c.ty }).collect()
    }
}

/// Whether `total` is exact (`eq`) or a lower bound (`gte`).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TotalRelation {
    Eq,
    Gte,
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

/// Runs one page of an SRQL query.
#[utoipa::path(post, path = "/api/v1/search", tag = "search", request_body = SearchRequest,
    responses(
        (status = 200, description = "One page of rows, with the total, the plan and the cursor of the next page", body = SearchPage),
        (status = 400, description = "An SRQL error (with `span`, `expected`, `suggestions`, `rendered`) or a bad limit or cursor", body = ErrorBody),
        (status = 504, description = "Cancelled at the statement timeout (`query_timeout`)", body = ErrorBody)),
    security(("token" = [])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SearchRequest>,
) -> Result<Json<SearchPage>, ApiError> {
    caller.require(Permission::Search)?;
    let result = run_page(&state, &req).await;
    let entry = Entry::new("search").detail(json!({"query": req.query, "cursor": req.cursor.is_some()}));
    match &result {
        Ok(page) => audit::record(&state.pool, &caller, entry.size(page.rows.len())).await,
        Err(e) => audit::record(&state.pool, &caller, entry.outcome(e.code)).await,
    }
    result.map(Json)
}

async fn run_page(state: &AppState, req: &SearchRequest) -> Result<SearchPage, ApiError> {
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
    let mut result = searcher.search(&req.query, now).await.map_err(|e| e.in_query(&req.query))?;
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
    Ok(SearchPage {
        columns: ResultColumn::of(&result.columns),
        rows,
        total,
        total_relation: if total_exact { TotalRelation::Eq } else { TotalRelation::Gte },
        took_ms: result.took_ms,
        visualization: result.visualization,
        plan: result.plan,
        warnings: result.warnings,
        partial: result.partial,
        next_cursor,
        now,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    pub query: String,
    pub now: Option<DateTime<Utc>>,
}

/// A query's plan, without its rows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// The entity searched (`events`, `connections`, …).
    pub entity: &'static str,
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    pub sql: String,
    /// The SQL's parameters in order, rendered as `type:value`.
    pub params: Vec<String>,
    pub columns: Vec<ResultColumn>,
    pub visualization: Visualization,
    /// The time window searched, when the query has one.
    #[schema(required)]
    pub window: Option<TimeWindow>,
}

/// A time range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The plan, SQL and parameters of a query, and for `SIMILAR_TO` the path the
/// executor would take and why; nothing runs but the planner's estimate.
#[utoipa::path(post, path = "/api/v1/search/explain", tag = "search", request_body = ExplainRequest,
    responses((status = 200, description = "The plan, the SQL and its parameters, the columns and the window", body = Explanation),
        (status = 400, description = "An SRQL error", body = ErrorBody)),
    security(("token" = [])))]
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<ExplainRequest>,
) -> Result<Json<Explanation>, ApiError> {
    caller.require(Permission::Search)?;
    let now = req.now.unwrap_or_else(Utc::now);
    let result = state.searcher.explain(&req.query, now).await.map_err(|e| e.in_query(&req.query));
    let entry = Entry::new("search.explain").detail(json!({"query": req.query}));
    match &result {
        Ok(_) => audit::record(&state.pool, &caller, entry).await,
        Err(e) => audit::record(&state.pool, &caller, entry.outcome(e.code)).await,
    }
    let x = result?;
    Ok(Json(Explanation {
        entity: x.compiled.entity,
        plan: x.plan,
        params: x.compiled.params.iter().map(|p| p.render()).collect(),
        columns: ResultColumn::of(&x.compiled.columns),
        visualization: x.compiled.visualization,
        window: x.compiled.window.map(|(start, end)| TimeWindow { start, end }),
        warnings: x.compiled.warnings,
        sql: x.compiled.sql,
    }))
}

/// The field registry and the server's query limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldRegistry {
    pub entities: &'static [EntityDef],
    /// The pipe names (`stats`, `where`, …).
    pub pipes: &'static [&'static str],
    pub limits: QueryLimits,
}

/// The server's query limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueryLimits {
    /// The window of a query without `time:`, in seconds.
    pub default_window_s: i64,
    /// The longest time window a query may span, in seconds.
    pub max_span_s: i64,
    /// Rows a query returns without `limit:`.
    pub default_limit: u64,
    /// The most rows a query may return (over all its pages).
    pub max_rows: u64,
    pub statement_timeout_ms: u64,
    /// The most rows one page may ask for.
    pub max_page: u64,
}

/// The field registry: entities, their fields (type, aliases, description,
/// enum values), the pipes, and the server's limits.
#[utoipa::path(get, path = "/api/v1/fields", tag = "search",
    responses((status = 200, description = "Entities (fields with types, aliases, descriptions, enum values), pipes and limits", body = FieldRegistry)),
    security(("token" = [])))]
pub async fn fields(State(state): State<AppState>, caller: Caller) -> Result<Json<FieldRegistry>, ApiError> {
    caller.require(Permission::Search)?;
    let o = state.searcher.options();
    Ok(Json(FieldRegistry {
        entities: vigil_srql::registry::ENTITIES,
        pipes: vigil_srql::PIPES,
        limits: QueryLimits {
            default_window_s: o.srql.default_window.num_seconds(),
            max_span_s: o.srql.max_span.num_seconds(),
            default_limit: o.srql.default_limit,
            max_rows: o.srql.max_limit,
            statement_timeout_ms: o.query.statement_timeout.as_millis() as u64,
            max_page: MAX_PAGE,
        },
    }))
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
