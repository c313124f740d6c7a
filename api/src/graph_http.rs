//! `GET /api/v1/graph/…`: blast radius, paths and neighbourhoods over the
//! in-memory connection graph. Read-only, so viewers and up may ask; the
//! answer comes from memory, never from a database scan.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_graph::live::LiveGraph;
use vigil_graph::{BlastQuery, BlastRadius, Direction, GraphError, Neighbourhood, Path, Start};

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Most nodes one answer lists.
const MAX_LIMIT: usize = 5_000;

/// The graph's size, for context.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GraphSummary {
    pub nodes: usize,
    pub flows: usize,
    /// Connections older than this are dropped from the graph.
    pub window_hours: i64,
}

/// The answer of `GET /api/v1/graph/blast-radius`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BlastRadiusResponse {
    /// The start, as parsed.
    pub from: String,
    pub hops: u32,
    pub direction: Direction,
    pub took_ms: f64,
    pub graph: GraphSummary,
    pub result: BlastRadius,
}

/// The answer of `GET /api/v1/graph/paths`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PathsResponse {
    pub from: String,
    pub to: String,
    pub k: usize,
    pub max_hops: u32,
    pub direction: Direction,
    pub took_ms: f64,
    pub graph: GraphSummary,
    /// Shortest first.
    pub paths: Vec<Path>,
}

/// The answer of `GET /api/v1/graph/neighbourhood`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NeighbourhoodResponse {
    /// The center, as parsed.
    pub node: String,
    pub graph: GraphSummary,
    pub result: Neighbourhood,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlastParams {
    /// A host name, an IP, or `host/process`.
    from: String,
    hops: Option<u32>,
    direction: Option<String>,
    /// Destination ports, comma-separated.
    ports: Option<String>,
    /// Protocols, comma-separated.
    protocols: Option<String>,
    /// Only connections seen since this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathParams {
    from: String,
    to: String,
    k: Option<usize>,
    max_hops: Option<u32>,
    direction: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NeighbourhoodParams {
    node: String,
    hops: Option<u32>,
    limit: Option<usize>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn graph(state: &AppState) -> Result<&LiveGraph, ApiError> {
    state
        .derived
        .graph
        .as_deref()
        .ok_or_else(|| ApiError::unavailable("the connection graph is not running on this server"))
}

fn parse_start(what: &str, s: &str) -> Result<Start, ApiError> {
    s.parse().map_err(|e: GraphError| bad(format!("{what}: {e}")))
}

fn parse_direction(s: Option<&str>) -> Result<Direction, ApiError> {
    s.map(str::parse).transpose().map_err(|e: GraphError| bad(e.to_string())).map(Option::unwrap_or_default)
}

fn parse_ports(s: Option<&str>) -> Result<Vec<u16>, ApiError> {
    let Some(s) = s else { return Ok(Vec::new()) };
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().map_err(|_| bad(format!("ports: `{p}` is not a port number (0-65535)"))))
        .collect()
}

fn limit(l: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match l.unwrap_or(default) {
        0 => Err(bad("limit must be at least 1")),
        n if n > MAX_LIMIT => Err(bad(format!("limit must be at most {MAX_LIMIT}"))),
        n => Ok(n),
    }
}

fn summary(g: &LiveGraph) -> GraphSummary {
    let r = g.read();
    GraphSummary { nodes: r.node_count(), flows: r.edge_count(), window_hours: g.window().num_hours() }
}

/// `GET /api/v1/graph/blast-radius?from=web-01&hops=2&direction=out&ports=22,443&protocols=tcp`
#[utoipa::path(get, path = "/api/v1/graph/blast-radius", tag = "graph", params(BlastParams),
    responses((status = 200, description = "Reached nodes with hop counts and risk", body = BlastRadiusResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody), (status = 404, description = "An unknown host or IP", body = ErrorBody),
        (status = 503, description = "The connection graph is not running on this server", body = ErrorBody)),
    security(("token" = [])))]
pub async fn blast_radius(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<BlastParams>,
) -> Result<Json<BlastRadiusResponse>, ApiError> {
    caller.require(Permission::Graph)?;
    let g = graph(&state)?;
    let q = BlastQuery {
        start: parse_start("from", &p.from)?,
        hops: p.hops.unwrap_or(2),
        direction: parse_direction(p.direction.as_deref())?,
        ports: parse_ports(p.ports.as_deref())?,
        protocols: p.protocols.as_deref().map(split_list).unwrap_or_default(),
        since: p.since,
        limit: limit(p.limit, 500)?,
    };
    let t = Instant::now();
    let result = g.read().blast_radius(&q)?;
    Ok(Json(BlastRadiusResponse {
        from: q.start.to_string(),
        hops: q.hops,
        direction: q.direction,
        took_ms: t.elapsed().as_secs_f64() * 1000.0,
        graph: summary(g),
        result,
    }))
}

/// `GET /api/v1/graph/paths?from=a&to=b&k=3&max_hops=6&direction=out`
#[utoipa::path(get, path = "/api/v1/graph/paths", tag = "graph", params(PathParams),
    responses((status = 200, description = "Up to k shortest paths", body = PathsResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody), (status = 404, description = "An unknown host or IP", body = ErrorBody),
        (status = 503, description = "The connection graph is not running on this server", body = ErrorBody)),
    security(("token" = [])))]
pub async fn paths(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<PathParams>,
) -> Result<Json<PathsResponse>, ApiError> {
    caller.require(Permission::Graph)?;
    let g = graph(&state)?;
    let (from, to) = (parse_start("from", &p.from)?, parse_start("to", &p.to)?);
    let direction = parse_direction(p.direction.as_deref())?;
    let (k, max_hops) = (p.k.unwrap_or(3), p.max_hops.unwrap_or(6));
    let t = Instant::now();
    let found = g.read().paths(&from, &to, k, max_hops, direction)?;
    Ok(Json(PathsResponse {
        from: from.to_string(),
        to: to.to_string(),
        k,
        max_hops,
        direction,
        took_ms: t.elapsed().as_secs_f64() * 1000.0,
        graph: summary(g),
        paths: found,
    }))
}

/// `GET /api/v1/graph/neighbourhood?node=web-01&hops=1&limit=200`: nodes and
/// edges for a graph view.
#[utoipa::path(get, path = "/api/v1/graph/neighbourhood", tag = "graph", params(NeighbourhoodParams),
    responses((status = 200, description = "Nodes and edges around a node", body = NeighbourhoodResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody), (status = 404, description = "An unknown host or IP", body = ErrorBody),
        (status = 503, description = "The connection graph is not running on this server", body = ErrorBody)),
    security(("token" = [])))]
pub async fn neighbourhood(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<NeighbourhoodParams>,
) -> Result<Json<NeighbourhoodResponse>, ApiError> {
    caller.require(Permission::Graph)?;
    let g = graph(&state)?;
    let center = parse_start("node", &p.node)?;
    let n = g.read().neighbourhood(&center, p.hops.unwrap_or(1), limit(p.limit, 200)?)?;
    Ok(Json(NeighbourhoodResponse { node: center.to_string(), graph: summary(g), result: n }))
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}
