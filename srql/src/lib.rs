//! SRQL, the hunt language: a pest grammar ([`parse`]) to an AST with byte
//! spans ([`ast`]), checked against the field registry ([`registry`]),
//! planned and compiled to parameterized SQL ([`compile`]).
//!
//! This crate does no I/O: `vigil-search` executes what it plans. Values from the
//! query reach SQL only as bind parameters ([`Param`]); identifiers come only
//! from the registry. Errors carry the span of what was wrong
//! ([`SrqlError::render`] draws the caret).
//!
//! ```
//! let now = chrono::Utc::now();
//! let c = vigil_srql::compile("host:web-01 severity:>=high", &vigil_srql::Config::default(), now).unwrap();
//! assert!(c.sql.contains("host = $3::text"));
//! assert!(!c.sql.contains("web-01"));
//! ```

pub mod ast;
pub mod casefile;
mod cond;
mod error;
mod params;
mod parse;
mod plan;
pub mod registry;
mod suggest;
pub mod time;

pub use error::{ErrorKind, SrqlError};
pub use params::Param;
pub use parse::{parse, MAX_QUERY_BYTES};
pub use plan::{
    compile, compile_query, BlastRadius, Cluster, Column, Compiled, Config, GraphDirection, PostStage, Similarity,
    SimilarityPath, Visualization,
};

/// Every pipe the grammar knows.
pub const PIPES: &[&str] =
    &["SIMILAR_TO", "stats", "timechart", "where", "sort", "head", "dedup", "fields", "cluster", "blast_radius"];
