//! Queries over the connection graph: blast radius, shortest and top-k paths,
//! and neighbourhoods for the UI.
//!
//! This module owns the query inputs ([`Start`], [`Direction`], [`BlastQuery`]),
//! their results ([`BlastRadius`], [`Path`], [`Neighbourhood`], all
//! `Serialize`), the risk score and [`GraphError`]. Every query reads the graph
//! as it is (`&self`); nothing is rebuilt per query.
//!
//! # Conventions
//!
//! - A query starts from a [`Start`]: a host (all of its IPs, each at hop 0), an
//!   IP, or a process on a host. From a process only that process's outbound
//!   connections are followed for the **first** hop; later hops follow anything.
//!   Connections *to* a process cannot be told apart (rows carry the source
//!   process only), so a process start with [`Direction::In`] is an error.
//! - [`Direction::Out`] follows connections from source to destination ("what
//!   can X reach"), [`Direction::In`] against them ("what reaches X"),
//!   [`Direction::Both`] either way.
//! - A [`Hop`] lists the step in traversal order (`from` is nearer the start);
//!   `reversed` says the connection itself ran `to` → `from` (an inbound step),
//!   in which case `src_process` ran on `to`. A hop shows one flow of the link:
//!   among the flows that pass the query's filters, the most recently seen
//!   (ties: higher count, then lower port, protocol, process).

use std::cmp::Reverse;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::{NodeIndexable, VisitMap, Visitable};
use serde::{Deserialize, Serialize};

use crate::model::{is_excluded, normalise_protocol, Flow, Graph, Link, RiskFacts, Sym};

/// Most hops a query may ask for.
pub const MAX_HOPS: u32 = 6;
/// Most paths [`Graph::paths`] returns.
pub const MAX_PATHS: usize = 100;
/// Edge inspections one [`Graph::paths`] call may spend (search for distances
/// plus enumeration). Roughly two full scans of a million-flow graph.
pub const PATH_BUDGET: usize = 4_000_000;

/// Why a query could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The start is not in the graph; the message names what was not found.
    #[error("unknown start: {0}")]
    UnknownStart(String),
    /// The path target is not in the graph; the message names what was not found.
    #[error("unknown target: {0}")]
    UnknownTarget(String),
    #[error("hops must be between 1 and {max}, got {got}")]
    HopsOutOfRange { got: u32, max: u32 },
    #[error("k must be between 1 and {max}, got {got}")]
    KOutOfRange { got: usize, max: usize },
    /// A start that does not parse (see [`Start`]'s `FromStr`).
    #[error("invalid start '{input}': {reason}")]
    InvalidStart { input: String, reason: &'static str },
    #[error("invalid direction '{0}': expected out, in or both")]
    InvalidDirection(String),
    /// A well-formed query that asks for something the graph cannot answer.
    #[error("{0}")]
    InvalidQuery(&'static str),
}

/// Where a query starts.
///
/// Parses (`FromStr`, surrounding whitespace ignored) as:
/// - an IP address (`10.0.0.5`, `fe80::1`) → [`Start::Ip`];
/// - `host/process` (split at the first `/`, so `web-01//usr/sbin/sshd` names
///   the process `/usr/sbin/sshd`) → [`Start::Process`];
/// - anything else non-empty → [`Start::Host`] (matched case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Start {
    Host(String),
    Ip(IpAddr),
    Process { host: String, name: String },
}

impl FromStr for Start {
    type Err = GraphError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let invalid = |reason| GraphError::InvalidStart { input: s.to_string(), reason };
        if t.is_empty() {
            return Err(invalid("empty"));
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Start::Ip(ip));
        }
        match t.split_once('/') {
            Some((host, name)) => {
                let host = host.trim();
                if host.is_empty() {
                    return Err(invalid("no host before '/'"));
                }
                if name.is_empty() {
                    return Err(invalid("no process after '/'"));
                }
                Ok(Start::Process { host: host.to_string(), name: name.to_string() })
            }
            None => Ok(Start::Host(t.to_string())),
        }
    }
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Start::Host(h) => f.write_str(h),
            Start::Ip(ip) => write!(f, "{ip}"),
            Start::Process { host, name } => write!(f, "{host}/{name}"),
        }
    }
}

/// Which way connections are followed. Parses `out`/`outbound`, `in`/`inbound`,
/// `both` (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Source → destination: what the start can reach.
    #[default]
    Out,
    /// Destination → source: what can reach the start.
    In,
    /// Either way.
    Both,
}

impl FromStr for Direction {
    type Err = GraphError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "out" | "outbound" => Ok(Direction::Out),
            "in" | "inbound" => Ok(Direction::In),
            "both" => Ok(Direction::Both),
            _ => Err(GraphError::InvalidDirection(s.to_string())),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Out => "out",
            Direction::In => "in",
            Direction::Both => "both",
        })
    }
}

/// A blast-radius query. A link is followed when at least one of its flows
/// passes every filter.
#[derive(Debug, Clone, PartialEq)]
pub struct BlastQuery {
    pub start: Start,
    /// 1..=[`MAX_HOPS`].
    pub hops: u32,
    pub direction: Direction,
    /// Destination ports; empty = any.
    pub ports: Vec<u16>,
    /// Protocols (case-insensitive); empty = any.
    pub protocols: Vec<String>,
    /// Only flows with `last_seen >= since`.
    pub since: Option<DateTime<Utc>>,
    /// Most reached nodes listed (the count of all is in [`BlastRadius::total_reached`]).
    pub limit: usize,
}

impl BlastQuery {
    /// 3 hops outbound, no filters, at most 100 nodes listed.
    pub fn new(start: Start) -> Self {
        BlastQuery {
            start,
            hops: 3,
            direction: Direction::Out,
            ports: Vec::new(),
            protocols: Vec::new(),
            since: None,
            limit: 100,
        }
    }
}

/// A node's risk: the facts, the unscaled score and the score for this result.
///
/// `base = 10·running_vulnerable + 5·critical_cves + 2·high_cves + 3·recent_alerts`
/// of the node's host ([`RiskFacts::base_score`]); `score = base / hops` (closer
/// is more urgent), and `score = base` for a start node.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Risk {
    pub facts: RiskFacts,
    pub base: u32,
    pub score: f64,
}

impl Risk {
    fn new(facts: RiskFacts, hops: u32) -> Self {
        let base = facts.base_score();
        Risk { facts, base, score: f64::from(base) / f64::from(hops.max(1)) }
    }
}

/// One step of a path (see the [module docs](self) for direction).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hop {
    #[schema(value_type = String)]
    pub from: IpAddr,
    #[schema(required)]
    pub from_host: Option<String>,
    #[schema(value_type = String)]
    pub to: IpAddr,
    #[schema(required)]
    pub to_host: Option<String>,
    /// The connection ran `to` → `from`.
    pub reversed: bool,
    pub dst_port: u16,
    pub protocol: String,
    pub src_process: String,
}

/// A node in a blast radius.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reached {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    #[schema(required)]
    pub host: Option<String>,
    /// 0 for a start node.
    pub hops: u32,
    /// From a start node to this one; empty for a start node.
    pub path: Vec<Hop>,
    pub risk: Risk,
}

/// The answer to [`Graph::blast_radius`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BlastRadius {
    /// The start's nodes (hop 0), by IP.
    pub starts: Vec<Reached>,
    /// Reached nodes by hops, then risk (highest first), then IP; at most `limit`.
    pub reached: Vec<Reached>,
    /// All nodes reached (not counting starts), listed or not.
    pub total_reached: usize,
    /// More nodes were reached than listed.
    pub truncated: bool,
}

/// A node on a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PathNode {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    #[schema(required)]
    pub host: Option<String>,
}

/// A loopless path between two starts: `nodes.len() == hops.len() + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = GraphPath)]
pub struct Path {
    pub nodes: Vec<PathNode>,
    pub hops: Vec<Hop>,
}

impl Path {
    /// Number of hops.
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The node addresses in order.
    pub fn ips(&self) -> Vec<IpAddr> {
        self.nodes.iter().map(|n| n.ip).collect()
    }
}

/// A node of a [`Neighbourhood`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NeighbourNode {
    /// The IP as text; what edges refer to.
    pub id: String,
    #[schema(value_type = String)]
    pub ip: IpAddr,
    #[schema(required)]
    pub host: Option<String>,
    /// Hops from the center (0 for the center's nodes).
    pub hops: u32,
    pub risk: Risk,
}

/// All flows of one link between two nodes of a [`Neighbourhood`], summed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NeighbourEdge {
    pub source: String,
    pub target: String,
    /// Distinct destination ports, ascending.
    pub ports: Vec<u16>,
    /// Distinct protocols, sorted.
    pub protocols: Vec<String>,
    /// Distinct source processes, sorted.
    pub processes: Vec<String>,
    pub flows: usize,
    pub count: i64,
    pub bytes: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// The answer to [`Graph::neighbourhood`], shaped for a graph view.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Neighbourhood {
    /// By hops, then risk (highest first), then IP.
    pub nodes: Vec<NeighbourNode>,
    /// Every link between listed nodes, by (source, target) address.
    pub edges: Vec<NeighbourEdge>,
    /// More nodes were within reach than listed.
    pub truncated: bool,
}

/// A resolved start: its nodes by IP, and the first-hop process if any.
struct Resolved {
    nodes: Vec<NodeIndex>,
    process: Option<Sym>,
}

/// Flow filters compiled against the graph's symbols.
struct Filter {
    ports: Vec<u16>,
    /// `None` = any; `Some(empty)` = none of the named protocols occur.
    protocols: Option<Vec<Sym>>,
    since: Option<DateTime<Utc>>,
}

impl Filter {
    fn any() -> Self {
        Filter { ports: Vec::new(), protocols: None, since: None }
    }

    fn new(g: &Graph, ports: &[u16], protocols: &[String], since: Option<DateTime<Utc>>) -> Self {
        let protocols = (!protocols.is_empty())
            .then(|| protocols.iter().filter_map(|p| g.protocols.get(&normalise_protocol(p))).collect());
        Filter { ports: ports.to_vec(), protocols, since }
    }

    fn is_any(&self) -> bool {
        self.ports.is_empty() && self.protocols.is_none() && self.since.is_none()
    }

    fn flow(&self, f: &Flow, process: Option<Sym>) -> bool {
        process.is_none_or(|p| f.process == p)
            && (self.ports.is_empty() || self.ports.contains(&f.dst_port))
            && self.protocols.as_ref().is_none_or(|ps| ps.contains(&f.protocol))
            && self.since.is_none_or(|s| f.last_seen >= s)
    }

    /// Whether a link may be followed.
    fn link(&self, link: &Link, process: Option<Sym>) -> bool {
        (process.is_none() && self.is_any()) || link.flows.iter().any(|f| self.flow(f, process))
    }
}

/// One BFS entry: `parent` is a position in the same queue.
#[derive(Debug, Clone, Copy)]
struct Visit {
    node: NodeIndex,
    parent: u32,
    edge: EdgeIndex,
    reversed: bool,
    hops: u8,
}

const NO_PARENT: u32 = u32::MAX;

fn check_hops(hops: u32) -> Result<(), GraphError> {
    if (1..=MAX_HOPS).contains(&hops) {
        Ok(())
    } else {
        Err(GraphError::HopsOutOfRange { got: hops, max: MAX_HOPS })
    }
}

const PROCESS_INBOUND: &str =
    "a process start needs outbound connections: rows do not say which process received a connection";

impl Graph {
    /// What is at risk if `q.start` is compromised: every node within `q.hops`
    /// hops (breadth-first, so each node's path is a shortest one), with the
    /// path that reaches it and its [`Risk`].
    ///
    /// Errors: [`GraphError::HopsOutOfRange`], [`GraphError::UnknownStart`],
    /// [`GraphError::InvalidQuery`] for a process start with [`Direction::In`].
    pub fn blast_radius(&self, q: &BlastQuery) -> Result<BlastRadius, GraphError> {
        check_hops(q.hops)?;
        let start = self.resolve(&q.start).map_err(GraphError::UnknownStart)?;
        if start.process.is_some() && q.direction == Direction::In {
            return Err(GraphError::InvalidQuery(PROCESS_INBOUND));
        }
        let filter = Filter::new(self, &q.ports, &q.protocols, q.since);
        let visits = self.bfs(&start, q.hops, q.direction, &filter);
        let n_starts = start.nodes.len();
        let mut order: Vec<(u8, Reverse<u32>, IpAddr, u32)> = visits[n_starts..]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (v.hops, Reverse(self.node_risk(v.node).base_score()), self.g[v.node].ip, (n_starts + i) as u32)
            })
            .collect();
        let total_reached = order.len();
        let truncated = total_reached > q.limit;
        if truncated {
            order.select_nth_unstable(q.limit);
            order.truncate(q.limit);
        }
        order.sort_unstable();
        let reached = order.iter().map(|o| self.reached(&visits, o.3 as usize, &filter, start.process)).collect();
        let starts = (0..n_starts).map(|i| self.reached(&visits, i, &filter, start.process)).collect();
        Ok(BlastRadius { starts, reached, total_reached, truncated })
    }

    /// The shortest path and further loopless paths from `from` to `to`, at most
    /// `k` (1..=[`MAX_PATHS`]) and at most `max_hops` hops each, ordered by length
    /// and, within a length, by the sequence of node addresses.
    ///
    /// A path starts at one of `from`'s nodes, ends at one of `to`'s, has at
    /// least one hop, and passes through neither endpoint's other nodes. `to`
    /// must be a host or an IP.
    ///
    /// Method: a breadth-first search backwards from `to`, one level at a time
    /// and only as deep as needed, gives each node's distance to the target; a
    /// depth-first enumeration from `from` for length 1, 2, … then steps only to
    /// nodes that can still reach the target in the hops left, so it explores
    /// little beyond the paths it returns. **Bound**: the whole call inspects at
    /// most [`PATH_BUDGET`] edges; if that runs out, the paths found so far are
    /// returned (still the shortest ones, in order), possibly fewer than `k`.
    pub fn paths(
        &self,
        from: &Start,
        to: &Start,
        k: usize,
        max_hops: u32,
        direction: Direction,
    ) -> Result<Vec<Path>, GraphError> {
        check_hops(max_hops)?;
        if !(1..=MAX_PATHS).contains(&k) {
            return Err(GraphError::KOutOfRange { got: k, max: MAX_PATHS });
        }
        let src = self.resolve(from).map_err(GraphError::UnknownStart)?;
        if matches!(to, Start::Process { .. }) {
            return Err(GraphError::InvalidQuery(
                "a path target is a host or an IP address: rows do not say which process received a connection",
            ));
        }
        let dst = self.resolve(to).map_err(GraphError::UnknownTarget)?;
        if src.process.is_some() && direction == Direction::In {
            return Err(GraphError::InvalidQuery(PROCESS_INBOUND));
        }
        let mut s = PathSearch::new(self, direction, &src, &dst, k);
        for len in 1..=max_hops as u8 {
            if !s.levels_to(len - 1) {
                break;
            }
            for &n in &src.nodes {
                s.stack.clear();
                s.root = n;
                s.dfs(n, len);
                if s.found.len() >= k || s.budget == 0 {
                    break;
                }
            }
            if s.found.len() >= k || s.budget == 0 {
                break;
            }
        }
        if s.budget == 0 {
            tracing::debug!(from = %from, to = %to, found = s.found.len(), "path search budget exhausted");
        }
        let filter = Filter::any();
        Ok(s.found
            .iter()
            .map(|(first, steps)| {
                let mut nodes = vec![self.path_node(*first)];
                let mut hops = Vec::with_capacity(steps.len());
                let mut prev = *first;
                for (i, st) in steps.iter().enumerate() {
                    let process = if i == 0 { src.process } else { None };
                    hops.push(self.hop(prev, st.node, st.edge, st.reversed, &filter, process));
                    nodes.push(self.path_node(st.node));
                    prev = st.node;
                }
                Path { nodes, hops }
            })
            .collect())
    }

    /// The nodes within `hops` (1..=[`MAX_HOPS`]) of `center`, following
    /// connections either way, and every link among them: nearest first, then
    /// riskiest, at most `limit` nodes (the center's always included).
    pub fn neighbourhood(&self, center: &Start, hops: u32, limit: usize) -> Result<Neighbourhood, GraphError> {
        check_hops(hops)?;
        let start = self.resolve(center).map_err(GraphError::UnknownStart)?;
        let visits = self.bfs(&start, hops, Direction::Both, &Filter::any());
        let n_starts = start.nodes.len();
        let key = |v: &Visit| (v.hops, Reverse(self.node_risk(v.node).base_score()), self.g[v.node].ip);
        let mut order: Vec<(u8, Reverse<u32>, IpAddr, u32)> =
            visits.iter().enumerate().map(|(i, v)| (key(v).0, key(v).1, key(v).2, i as u32)).collect();
        let keep = limit.max(n_starts);
        let truncated = order.len() > keep;
        if truncated {
            order.select_nth_unstable(keep);
            order.truncate(keep);
        }
        order.sort_unstable();

        let mut listed = self.g.visit_map();
        let nodes: Vec<NeighbourNode> = order
            .iter()
            .map(|o| {
                let v = visits[o.3 as usize];
                listed.visit(v.node);
                let ip = self.g[v.node].ip;
                NeighbourNode {
                    id: ip.to_string(),
                    ip,
                    host: self.label(v.node),
                    hops: u32::from(v.hops),
                    risk: Risk::new(self.node_risk(v.node), u32::from(v.hops)),
                }
            })
            .collect();
        let mut edges = Vec::new();
        for o in &order {
            let a = visits[o.3 as usize].node;
            for x in self.out_links(a) {
                if listed.is_visited(&x.node) {
                    edges.push(self.neighbour_edge(a, x.node, &self.g[x.edge]));
                }
            }
        }
        edges.sort_by_key(|e: &(IpAddr, IpAddr, NeighbourEdge)| (e.0, e.1));
        Ok(Neighbourhood { nodes, edges: edges.into_iter().map(|e| e.2).collect(), truncated })
    }

    /// Resolve a start to its nodes (sorted by IP); `Err` names what was not found.
    fn resolve(&self, s: &Start) -> Result<Resolved, String> {
        let host_nodes = |h: &str| -> Result<Vec<NodeIndex>, String> {
            let mut ids = self.host_node_ids(h).to_vec();
            if ids.is_empty() {
                return Err(format!("no host named '{h}' in the graph"));
            }
            ids.sort_by_key(|&n| self.g[n].ip);
            Ok(ids)
        };
        match s {
            Start::Host(h) => Ok(Resolved { nodes: host_nodes(h)?, process: None }),
            Start::Ip(ip) => match self.by_ip.get(ip) {
                Some(s) => Ok(Resolved { nodes: vec![s.node], process: None }),
                None if is_excluded(*ip) => Err(format!(
                    "{ip} is a multicast, broadcast, unspecified or loopback address, which the graph does not hold"
                )),
                None => Err(format!("no node with IP {ip} in the graph")),
            },
            Start::Process { host, name } => {
                let nodes = host_nodes(host)?;
                let used = self.processes.get(name).filter(|&p| {
                    nodes
                        .iter()
                        .any(|&n| self.out_links(n).iter().any(|a| self.g[a.edge].flows.iter().any(|f| f.process == p)))
                });
                match used {
                    Some(p) => Ok(Resolved { nodes, process: Some(p) }),
                    None => Err(format!("no connections from process '{name}' on host '{host}'")),
                }
            }
        }
    }

    /// Breadth-first search up to `hops`; the queue (starts first, then by
    /// hops) is the result, each entry pointing at its parent's position.
    ///
    /// A level is expanded top-down (scan the frontier's links) while the
    /// frontier is smaller than what is left unvisited, and bottom-up once it
    /// is larger (each unvisited node looks for a parent in the frontier among
    /// its own links, the one earliest in the queue) — both directions through
    /// a hub reach nearly every node in two hops, and the third hop then costs
    /// the few nodes left instead of every link in the graph.
    fn bfs(&self, start: &Resolved, hops: u32, dir: Direction, filter: &Filter) -> Vec<Visit> {
        let mut seen = self.g.visit_map();
        let mut q: Vec<Visit> = Vec::with_capacity(64);
        for &n in &start.nodes {
            if seen.visit(n) {
                q.push(Visit { node: n, parent: NO_PARENT, edge: EdgeIndex::end(), reversed: false, hops: 0 });
            }
        }
        let all = self.node_count();
        let out = matches!(dir, Direction::Out | Direction::Both);
        let inn = matches!(dir, Direction::In | Direction::Both);
        // Queue position by node index, filled on the first bottom-up level.
        let mut pos_of: Vec<u32> = Vec::new();
        let (mut level_start, mut level) = (0usize, 0u8);
        while level_start < q.len() && u32::from(level) < hops && q.len() < all {
            let level_end = q.len();
            let next = level + 1;
            if level > 0 && level_end - level_start > all - q.len() {
                if pos_of.is_empty() {
                    pos_of = vec![NO_PARENT; self.g.node_bound()];
                }
                for (i, v) in q.iter().enumerate() {
                    pos_of[v.node.index()] = i as u32;
                }
                let any = filter.is_any();
                let in_frontier = |p: u32| p != NO_PARENT && (level_start..level_end).contains(&(p as usize));
                for u in (0..self.g.node_bound()).map(NodeIndex::new) {
                    if seen.is_visited(&u) {
                        continue;
                    }
                    let mut best: Option<(u32, bool, EdgeIndex)> = None;
                    let mut consider = |links: &[crate::model::Adj], reversed: bool| {
                        for a in links {
                            let p = pos_of[a.node.index()];
                            if in_frontier(p)
                                && best.is_none_or(|b| (p, reversed) < (b.0, b.1))
                                && (any || filter.link(&self.g[a.edge], None))
                            {
                                best = Some((p, reversed, a.edge));
                            }
                        }
                    };
                    if out {
                        consider(self.in_links(u), false);
                    }
                    if inn {
                        consider(self.out_links(u), true);
                    }
                    if let Some((parent, reversed, edge)) = best {
                        seen.visit(u);
                        q.push(Visit { node: u, parent, edge, reversed, hops: next });
                    }
                }
            } else {
                let process = if level == 0 { start.process } else { None };
                // Unfiltered: no need to look inside links.
                let any = process.is_none() && filter.is_any();
                for i in level_start..level_end {
                    let v = q[i];
                    if out {
                        for a in self.out_links(v.node) {
                            if !seen.is_visited(&a.node) && (any || filter.link(&self.g[a.edge], process)) {
                                seen.visit(a.node);
                                q.push(Visit {
                                    node: a.node,
                                    parent: i as u32,
                                    edge: a.edge,
                                    reversed: false,
                                    hops: next,
                                });
                            }
                        }
                    }
                    if inn && process.is_none() {
                        for a in self.in_links(v.node) {
                            if !seen.is_visited(&a.node) && (any || filter.link(&self.g[a.edge], None)) {
                                seen.visit(a.node);
                                q.push(Visit {
                                    node: a.node,
                                    parent: i as u32,
                                    edge: a.edge,
                                    reversed: true,
                                    hops: next,
                                });
                            }
                        }
                    }
                }
            }
            level_start = level_end;
            level = next;
        }
        q
    }

    fn reached(&self, visits: &[Visit], pos: usize, filter: &Filter, process: Option<Sym>) -> Reached {
        let v = visits[pos];
        let mut path = Vec::with_capacity(usize::from(v.hops));
        let mut p = pos;
        while visits[p].parent != NO_PARENT {
            let child = visits[p];
            let parent = visits[child.parent as usize];
            let first = if parent.hops == 0 { process } else { None };
            path.push(self.hop(parent.node, child.node, child.edge, child.reversed, filter, first));
            p = child.parent as usize;
        }
        path.reverse();
        let hops = u32::from(v.hops);
        Reached {
            ip: self.g[v.node].ip,
            host: self.label(v.node),
            hops,
            path,
            risk: Risk::new(self.node_risk(v.node), hops),
        }
    }

    fn hop(
        &self,
        from: NodeIndex,
        to: NodeIndex,
        edge: EdgeIndex,
        reversed: bool,
        filter: &Filter,
        process: Option<Sym>,
    ) -> Hop {
        let flow = self.g.edge_weight(edge).and_then(|l| self.pick(l, filter, process));
        Hop {
            from: self.g[from].ip,
            from_host: self.label(from),
            to: self.g[to].ip,
            to_host: self.label(to),
            reversed,
            dst_port: flow.map_or(0, |f| f.dst_port),
            protocol: flow.map_or_else(String::new, |f| self.protocols.name(f.protocol).to_string()),
            src_process: flow.map_or_else(String::new, |f| self.processes.name(f.process).to_string()),
        }
    }

    /// The flow a hop shows (see the module docs).
    fn pick<'a>(&self, link: &'a Link, filter: &Filter, process: Option<Sym>) -> Option<&'a Flow> {
        link.flows.iter().filter(|f| filter.flow(f, process)).max_by(|a, b| {
            a.last_seen
                .cmp(&b.last_seen)
                .then(a.count.cmp(&b.count))
                .then(b.dst_port.cmp(&a.dst_port))
                .then_with(|| self.protocols.name(b.protocol).cmp(self.protocols.name(a.protocol)))
                .then_with(|| self.processes.name(b.process).cmp(self.processes.name(a.process)))
        })
    }

    fn path_node(&self, n: NodeIndex) -> PathNode {
        PathNode { ip: self.g[n].ip, host: self.label(n) }
    }

    fn neighbour_edge(&self, a: NodeIndex, b: NodeIndex, link: &Link) -> (IpAddr, IpAddr, NeighbourEdge) {
        let (ia, ib) = (self.g[a].ip, self.g[b].ip);
        let mut ports: Vec<u16> = link.flows.iter().map(|f| f.dst_port).collect();
        ports.sort_unstable();
        ports.dedup();
        let names = |it: &mut dyn Iterator<Item = &str>| {
            let mut v: Vec<String> = it.map(str::to_string).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let protocols = names(&mut link.flows.iter().map(|f| self.protocols.name(f.protocol)));
        let processes = names(&mut link.flows.iter().map(|f| self.processes.name(f.process)));
        let edge = NeighbourEdge {
            source: ia.to_string(),
            target: ib.to_string(),
            ports,
            protocols,
            processes,
            flows: link.flows.len(),
            count: link.flows.iter().fold(0i64, |s, f| s.saturating_add(f.count)),
            bytes: link.flows.iter().fold(0i64, |s, f| s.saturating_add(f.bytes)),
            first_seen: link.flows.iter().map(|f| f.first_seen).min().unwrap_or_default(),
            last_seen: link.flows.iter().map(|f| f.last_seen).max().unwrap_or_default(),
        };
        (ia, ib, edge)
    }
}

/// One step on a path being enumerated.
#[derive(Debug, Clone, Copy)]
struct Step {
    node: NodeIndex,
    edge: EdgeIndex,
    reversed: bool,
}

const FAR: u8 = u8::MAX;

/// State of one [`Graph::paths`] call.
struct PathSearch<'g> {
    g: &'g Graph,
    out: bool,
    inn: bool,
    process: Option<Sym>,
    is_src: Vec<bool>,
    is_dst: Vec<bool>,
    /// Hops to the nearest target; exact up to `levels.len() - 1`, [`FAR`] beyond.
    dist: Vec<u8>,
    /// Nodes by distance to the targets (level 0 = the targets).
    levels: Vec<Vec<NodeIndex>>,
    /// `ball[j]`: nodes within `j` hops of the targets.
    ball: Vec<usize>,
    budget: usize,
    k: usize,
    /// The source node of the paths being enumerated.
    root: NodeIndex,
    stack: Vec<Step>,
    found: Vec<(NodeIndex, Vec<Step>)>,
}

impl<'g> PathSearch<'g> {
    fn new(g: &'g Graph, dir: Direction, src: &Resolved, dst: &Resolved, k: usize) -> Self {
        let bound = g.g.node_bound();
        let mut s = PathSearch {
            g,
            out: matches!(dir, Direction::Out | Direction::Both),
            inn: matches!(dir, Direction::In | Direction::Both),
            process: src.process,
            is_src: vec![false; bound],
            is_dst: vec![false; bound],
            dist: vec![FAR; bound],
            levels: vec![dst.nodes.clone()],
            ball: vec![dst.nodes.len()],
            budget: PATH_BUDGET,
            k,
            root: NodeIndex::end(),
            stack: Vec::with_capacity(MAX_HOPS as usize),
            found: Vec::new(),
        };
        for &n in &src.nodes {
            s.is_src[n.index()] = true;
        }
        for &n in &dst.nodes {
            s.is_dst[n.index()] = true;
            s.dist[n.index()] = 0;
        }
        s
    }

    /// Complete the backward search up to `level`; false when the budget ran out.
    fn levels_to(&mut self, level: u8) -> bool {
        while self.levels.len() <= usize::from(level) {
            let next = self.levels.len() as u8;
            let mut frontier = Vec::new();
            for &v in &self.levels[self.levels.len() - 1] {
                // Predecessors in traversal terms: for Out, u → v; for In, v → u.
                let (a, b) =
                    (if self.out { self.g.in_links(v) } else { &[] }, if self.inn { self.g.out_links(v) } else { &[] });
                self.budget = self.budget.saturating_sub(a.len() + b.len());
                for x in a.iter().chain(b) {
                    let d = &mut self.dist[x.node.index()];
                    if *d == FAR {
                        *d = next;
                        frontier.push(x.node);
                    }
                }
                if self.budget == 0 {
                    return false;
                }
            }
            self.ball.push(self.ball[self.ball.len() - 1] + frontier.len());
            self.levels.push(frontier);
        }
        true
    }

    /// Whether `w` may come next when `left` hops remain (counting this one).
    fn admits(&self, w: NodeIndex, left: u8) -> bool {
        let i = w.index();
        !self.is_src[i]
            && if left == 1 { self.is_dst[i] } else { !self.is_dst[i] && self.dist[i] < left }
            && !self.stack.iter().any(|st| st.node == w)
    }

    /// The link for a step `u` → `w` in traversal terms, preferring the
    /// connection's own direction; `process` restricts a first hop.
    fn step(&self, u: NodeIndex, w: NodeIndex, process: Option<Sym>) -> Option<(EdgeIndex, bool)> {
        let has = |e: EdgeIndex| process.is_none_or(|p| self.g.g[e].flows.iter().any(|f| f.process == p));
        if self.out {
            if let Some(e) = self.g.link_id(u, w).filter(|&e| has(e)) {
                return Some((e, false));
            }
        }
        if self.inn && process.is_none() {
            if let Some(e) = self.g.link_id(w, u) {
                return Some((e, true));
            }
        }
        None
    }

    /// Enumerate paths of exactly `len` hops from `u` (the stack holds the way
    /// here), in address order, until `k` are found or the budget is spent.
    ///
    /// The next node must lie within the hops left of a target, so candidates
    /// come from whichever is smaller: `u`'s adjacency, or that ball around the
    /// targets (checked against `u` by link lookups) — a hub's 100 000 links
    /// are never scanned to find the one that ends at the target.
    fn dfs(&mut self, u: NodeIndex, len: u8) {
        let left = len - self.stack.len() as u8; // ≥ 1
        let process = if self.stack.is_empty() { self.process } else { None };
        let outs = if self.out { self.g.out_links(u) } else { &[] };
        let ins = if self.inn && process.is_none() { self.g.in_links(u) } else { &[] };
        let ball = self.ball[usize::from(left - 1)];
        let mut cands: Vec<(IpAddr, bool, NodeIndex, EdgeIndex)> = Vec::new();
        if ball < outs.len() + ins.len() {
            self.budget = self.budget.saturating_sub(ball);
            for level in &self.levels[..usize::from(left)] {
                for &w in level {
                    if self.admits(w, left) {
                        if let Some((e, reversed)) = self.step(u, w, process) {
                            cands.push((self.g.g[w].ip, reversed, w, e));
                        }
                    }
                }
            }
        } else {
            self.budget = self.budget.saturating_sub(outs.len() + ins.len());
            let has = |e: EdgeIndex| process.is_none_or(|p| self.g.g[e].flows.iter().any(|f| f.process == p));
            for x in outs {
                if self.admits(x.node, left) && has(x.edge) {
                    cands.push((self.g.g[x.node].ip, false, x.node, x.edge));
                }
            }
            for x in ins {
                if self.admits(x.node, left) {
                    cands.push((self.g.g[x.node].ip, true, x.node, x.edge));
                }
            }
            // A pair linked both ways is one step, shown in the connection's direction.
            cands.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            cands.dedup_by(|b, a| a.0 == b.0);
        }
        if self.budget == 0 {
            return;
        }
        cands.sort_unstable_by_key(|c| c.0);
        for (_, reversed, w, edge) in cands {
            self.stack.push(Step { node: w, edge, reversed });
            if left == 1 {
                self.found.push((self.root, self.stack.clone()));
            } else {
                self.dfs(w, len);
            }
            self.stack.pop();
            if self.found.len() >= self.k || self.budget == 0 {
                return;
            }
        }
    }
}
