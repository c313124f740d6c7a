//! The connection graph: hosts as nodes, observed connections as edges, kept
//! in memory for a time window and refreshed incrementally, with blast-radius
//! and path queries and running-vs-dormant vulnerability correlation.
//!
//! - [`live`]: the graph a server keeps in memory, refreshed from `connections`.
//! - [`model`]: the in-memory graph ([`Graph`]) and its edge records.
//! - [`query`]: blast radius, shortest and top-k paths, neighbourhoods.
//! - [`synthetic`]: reproducible synthetic graphs for benchmarks.
//! - [`sync`]: PostgreSQL side — connection events folded into the
//!   `connections` edge table, package inventories, running processes and the
//!   running-vs-dormant classification of vulnerabilities, exactly once per event.

pub mod live;
pub mod model;
pub mod query;
pub mod sync;
pub mod synthetic;

pub use model::{EdgeRecord, Graph, NodeId, RiskFacts, Upsert, UpsertSummary};
pub use query::{
    BlastQuery, BlastRadius, Direction, GraphError, Hop, NeighbourEdge, NeighbourNode, Neighbourhood, Path, PathNode,
    Reached, Risk, Start,
};
