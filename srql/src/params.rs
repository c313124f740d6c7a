//! Bind parameters. Every value from the query reaches SQL as one of these,
//! written as `$n` with an explicit cast so the SQL's meaning never depends on
//! inference.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A bound value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    TextArray(Vec<String>),
    IntArray(Vec<i64>),
    /// The text whose embedding the executor binds (as pgvector text) for `SIMILAR_TO`.
    Embedding(String),
    /// The embedding model id the executor binds, so vectors of one model are never compared with another's.
    EmbeddingModel,
    /// Events the executor found by the HNSW path (ids, times and scores,
    /// bound as arrays of equal length).
    SimilarIds,
    SimilarTimes,
    SimilarScores,
    /// Free text the executor searches in the BM25 index: the matching
    /// events' ids, times and scores (arrays of equal length).
    TextIds {
        text: String,
        phrase: bool,
    },
    TextTimes {
        text: String,
        phrase: bool,
    },
    TextScores {
        text: String,
        phrase: bool,
    },
}

impl Param {
    /// The free text of a BM25 parameter.
    pub fn text_search(&self) -> Option<(&str, bool)> {
        match self {
            Param::TextIds { text, phrase }
            | Param::TextTimes { text, phrase }
            | Param::TextScores { text, phrase } => Some((text, *phrase)),
            _ => None,
        }
    }

    /// The SQL cast written after `$n`.
    pub fn cast(&self) -> &'static str {
        match self {
            Param::Text(_) => "::text",
            Param::Int(_) => "::bigint",
            Param::Float(_) => "::float8",
            Param::Bool(_) => "::boolean",
            Param::Time(_) => "::timestamptz",
            Param::TextArray(_) => "::text[]",
            Param::IntArray(_) => "::bigint[]",
            Param::Embedding(_) => "::text::vector",
            Param::EmbeddingModel => "::text",
            Param::SimilarIds => "::uuid[]",
            Param::SimilarTimes => "::timestamptz[]",
            Param::SimilarScores => "::float8[]",
            Param::TextIds { .. } => "::uuid[]",
            Param::TextTimes { .. } => "::timestamptz[]",
            Param::TextScores { .. } => "::float8[]",
        }
    }

    /// A compact, stable rendering for `explain` and the conformance files.
    pub fn render(&self) -> String {
        match self {
            Param::Text(s) => format!("text:{s:?}"),
            Param::Int(i) => format!("int:{i}"),
            Param::Float(f) => format!("float:{f}"),
            Param::Bool(b) => format!("bool:{b}"),
            Param::Time(t) => format!("time:{}", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Param::TextArray(v) => format!("text[]:{v:?}"),
            Param::IntArray(v) => format!("int[]:{v:?}"),
            Param::Embedding(s) => format!("embedding:{s:?}"),
            Param::EmbeddingModel => "embedding_model".to_string(),
            Param::SimilarIds => "similar_ids".to_string(),
            Param::SimilarTimes => "similar_times".to_string(),
            Param::SimilarScores => "similar_scores".to_string(),
            Param::TextIds { text, phrase } => format!("bm25_ids:{text:?}{}", if *phrase { " (phrase)" } else { "" }),
            Param::TextTimes { text, phrase } => {
                format!("bm25_times:{text:?}{}", if *phrase { " (phrase)" } else { "" })
            }
            Param::TextScores { text, phrase } => {
                format!("bm25_scores:{text:?}{}", if *phrase { " (phrase)" } else { "" })
            }
        }
    }
}

/// Collects parameters while SQL is written.
#[derive(Debug, Default)]
pub(crate) struct Params(pub(crate) Vec<Param>);

impl Params {
    /// Adds a parameter and returns its placeholder with cast, e.g. `$3::text`.
    pub(crate) fn add(&mut self, p: Param) -> String {
        let cast = p.cast();
        self.0.push(p);
        format!("${}{cast}", self.0.len())
    }
}
