//! Hybrid search: runs compiled SRQL with what SQL alone cannot supply, and
//! keeps the event vectors it needs up to date.
//!
//! This crate owns:
//! - SRQL execution ([`run`], [`run_bound`]): the compiled query's parameters
//!   bound (with the values only the executor knows, [`Bindings`]), a
//!   read-only transaction with a statement timeout ([`QueryOptions`]), rows
//!   converted to JSON by column type ([`QueryResult`]);
//! - [`Searcher`]: embeds a `SIMILAR_TO` text (cached), chooses between an
//!   exact scan of the candidates' vectors and the HNSW index from the
//!   estimated candidate count (and says why in the plan), falls back to the
//!   exact path when the index returns fewer than `k` rows, turns the
//!   per-text rows of `| cluster` into groups, and walks the connection graph
//!   from the start points of `| blast_radius`;
//! - [`Vectorizer`]: tails `events` by a durable watermark, selects the events
//!   worth a vector, embeds each distinct normalised text once and links the
//!   events to it.
//!
//! PostgreSQL stays the system of record; the vectors can be rebuilt from it.

mod cluster;
mod error;
mod execute;
mod searcher;
mod vectorize;

pub use error::SearchError;
pub use execute::{run, run_bound, Bindings, QueryOptions, QueryResult, SimilarHits};
pub use searcher::{Explained, SearchOptions, SearchResult, Searcher};
pub use vectorize::{VectorizeStats, Vectorizer};
