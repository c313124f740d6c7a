//! Runs compiled SRQL ([`vigil_srql::Compiled`]) against the database: bound
//! parameters (with the values only the executor knows, [`Bindings`]), a
//! read-only transaction, a statement timeout, and rows converted to JSON
//! values by column type.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use vigil_srql::{Column, Compiled, Param};
use vigil_store::{Pool, StoreError};

use crate::SearchError;

/// Limits for one query.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// The database cancels the query after this long.
    pub statement_timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions { statement_timeout: Duration::from_secs(30) }
    }
}

/// Rows of a query, by the compiled query's columns.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub took_ms: u64,
}

/// Values the executor supplies for parameters the planner cannot know.
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    /// pgvector text of the `SIMILAR_TO` text's embedding.
    pub embedding: Option<String>,
    /// The embedding model whose vectors are searched.
    pub model: Option<String>,
    /// Events the HNSW path found: ids, times and scores.
    pub similar: Option<SimilarHits>,
    /// BM25 hits per free text (text, phrase).
    pub text_hits: std::collections::HashMap<(String, bool), SimilarHits>,
}

/// Parallel arrays of events and their similarity scores.
#[derive(Debug, Default, Clone)]
pub struct SimilarHits {
    pub ids: Vec<uuid::Uuid>,
    pub times: Vec<chrono::DateTime<chrono::Utc>>,
    pub scores: Vec<f64>,
}

fn to_sql(p: &Param, b: &Bindings) -> Result<Box<dyn ToSql + Sync + Send>, SearchError> {
    Ok(match p {
        Param::Text(s) => Box::new(s.clone()),
        Param::Int(i) => Box::new(*i),
        Param::Float(f) => Box::new(*f),
        Param::Bool(b) => Box::new(*b),
        Param::Time(t) => Box::new(*t),
        Param::TextArray(v) => Box::new(v.clone()),
        Param::IntArray(v) => Box::new(v.clone()),
        Param::Embedding(_) => Box::new(b.embedding.clone().ok_or(SearchError::NoEmbedder("SIMILAR_TO"))?),
        Param::EmbeddingModel => Box::new(b.model.clone().ok_or(SearchError::NoEmbedder("this query"))?),
        Param::SimilarIds | Param::SimilarTimes | Param::SimilarScores => {
            let hits = b
                .similar
                .as_ref()
                .ok_or(SearchError::Unbound("the HNSW path's events were not supplied by the executor"))?;
            match p {
                Param::SimilarIds => Box::new(hits.ids.clone()),
                Param::SimilarTimes => Box::new(hits.times.clone()),
                _ => Box::new(hits.scores.clone()),
            }
        }
        Param::TextIds { text, phrase } | Param::TextTimes { text, phrase } | Param::TextScores { text, phrase } => {
            let hits = b
                .text_hits
                .get(&(text.clone(), *phrase))
                .ok_or(SearchError::Unbound("free text needs the BM25 index, which this server has not opened"))?;
            match p {
                Param::TextIds { .. } => Box::new(hits.ids.clone()),
                Param::TextTimes { .. } => Box::new(hits.times.clone()),
                _ => Box::new(hits.scores.clone()),
            }
        }
    })
}

/// Runs `compiled` in a read-only transaction with `opts.statement_timeout`.
pub async fn run(pool: &Pool, compiled: &Compiled, opts: &QueryOptions) -> Result<QueryResult, SearchError> {
    run_bound(pool, compiled, &Bindings::default(), opts).await
}

/// [`run`] with executor-supplied bindings.
pub async fn run_bound(
    pool: &Pool,
    compiled: &Compiled,
    bindings: &Bindings,
    opts: &QueryOptions,
) -> Result<QueryResult, SearchError> {
    let started = Instant::now();
    let rows = rows(pool, &compiled.sql, &compiled.params, bindings, opts).await?;
    let out = rows.iter().map(|r| row_values(r, &compiled.columns)).collect::<Result<Vec<_>, _>>()?;
    Ok(QueryResult { columns: compiled.columns.clone(), rows: out, took_ms: started.elapsed().as_millis() as u64 })
}

/// Runs any planner-made SQL read-only, with the timeout, and returns the
/// raw rows.
pub(crate) async fn rows(
    pool: &Pool,
    sql: &str,
    params: &[Param],
    bindings: &Bindings,
    opts: &QueryOptions,
) -> Result<Vec<Row>, SearchError> {
    let params = params.iter().map(|p| to_sql(p, bindings)).collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    let mut client = pool.get().await.map_err(StoreError::from)?;
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(StoreError::db("starting a query transaction"))?;
    // SET does not take bind parameters; the value is a number we format.
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {}", opts.statement_timeout.as_millis().max(1)))
        .await
        .map_err(StoreError::db("setting the statement timeout"))?;
    let rows = tx.query(sql, &refs).await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
            SearchError::Timeout(opts.statement_timeout)
        } else {
            StoreError::Db { context: "running the query".into(), source: e }.into()
        }
    })?;
    tx.commit().await.map_err(StoreError::db("finishing the query"))?;
    Ok(rows)
}

/// The planner's estimate of how many rows `sql` returns (`EXPLAIN`).
pub(crate) async fn estimate_rows(
    pool: &Pool,
    sql: &str,
    params: &[Param],
    bindings: &Bindings,
) -> Result<f64, SearchError> {
    let params = params.iter().map(|p| to_sql(p, bindings)).collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    let client = pool.get().await.map_err(StoreError::from)?;
    let row = client
        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &refs)
        .await
        .map_err(StoreError::db("estimating the candidate count"))?;
    let plan: serde_json::Value = row.get(0);
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0))
}

fn row_values(row: &Row, columns: &[Column]) -> Result<Vec<serde_json::Value>, SearchError> {
    columns
        .iter()
        .map(|c| {
            let idx = row
                .columns()
                .iter()
                .position(|rc| rc.name() == c.alias)
                .ok_or_else(|| SearchError::Result(format!("result has no column {}", c.alias)))?;
            value(row, idx)
        })
        .collect()
}

/// A result cell as JSON, by its column's PostgreSQL type.
fn value(row: &Row, idx: usize) -> Result<serde_json::Value, SearchError> {
    use serde_json::Value as J;
    let ty = row.columns()[idx].type_().clone();
    let err = |e: tokio_postgres::Error| StoreError::Db { context: format!("reading a {ty} column"), source: e };
    Ok(match ty {
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(idx).map_err(err)?.map(J::String).unwrap_or(J::Null)
        }
        Type::INT2 => row.try_get::<_, Option<i16>>(idx).map_err(err)?.map(J::from).unwrap_or(J::Null),
        Type::INT4 => row.try_get::<_, Option<i32>>(idx).map_err(err)?.map(J::from).unwrap_or(J::Null),
        Type::INT8 => row.try_get::<_, Option<i64>>(idx).map_err(err)?.map(J::from).unwrap_or(J::Null),
        Type::FLOAT4 => {
            row.try_get::<_, Option<f32>>(idx).map_err(err)?.map(|f| J::from(f64::from(f))).unwrap_or(J::Null)
        }
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(idx).map_err(err)?.map(J::from).unwrap_or(J::Null),
        Type::BOOL => row.try_get::<_, Option<bool>>(idx).map_err(err)?.map(J::Bool).unwrap_or(J::Null),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(idx)
            .map_err(err)?
            .map(|t| J::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .unwrap_or(J::Null),
        Type::UUID => {
            row.try_get::<_, Option<uuid::Uuid>>(idx).map_err(err)?.map(|u| J::String(u.to_string())).unwrap_or(J::Null)
        }
        Type::INET => row
            .try_get::<_, Option<std::net::IpAddr>>(idx)
            .map_err(err)?
            .map(|a| J::String(a.to_string()))
            .unwrap_or(J::Null),
        Type::JSONB | Type::JSON => row.try_get::<_, Option<serde_json::Value>>(idx).map_err(err)?.unwrap_or(J::Null),
        other => return Err(SearchError::Result(format!("column type {other} is not supported in results"))),
    })
}
