//! Runs compiled SRQL ([`vigil_srql::Compiled`]) against the database: bound
//! parameters, a read-only transaction, a statement timeout, and rows
//! converted to JSON values by column type.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use vigil_srql::{Column, Compiled, Param};

use crate::{Pool, StoreError};

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

fn to_sql(p: &Param) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    Ok(match p {
        Param::Text(s) => Box::new(s.clone()),
        Param::Int(i) => Box::new(*i),
        Param::Float(f) => Box::new(*f),
        Param::Bool(b) => Box::new(*b),
        Param::Time(t) => Box::new(*t),
        Param::TextArray(v) => Box::new(v.clone()),
        Param::IntArray(v) => Box::new(v.clone()),
        Param::Embedding(_) | Param::EmbeddingModel => {
            return Err(StoreError::Unsupported(
                "SIMILAR_TO needs event embeddings, which this server does not compute yet".into(),
            ))
        }
    })
}

/// Runs `compiled` in a read-only transaction with `opts.statement_timeout`.
pub async fn run(pool: &Pool, compiled: &Compiled, opts: &QueryOptions) -> Result<QueryResult, StoreError> {
    let started = Instant::now();
    let params = compiled.params.iter().map(to_sql).collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    let mut client = pool.get().await?;
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
    let rows = tx.query(compiled.sql.as_str(), &refs).await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
            StoreError::Timeout(opts.statement_timeout)
        } else {
            StoreError::Db { context: "running the query".into(), source: e }
        }
    })?;
    tx.commit().await.map_err(StoreError::db("finishing the query"))?;
    let out = rows.iter().map(|r| row_values(r, &compiled.columns)).collect::<Result<Vec<_>, _>>()?;
    Ok(QueryResult { columns: compiled.columns.clone(), rows: out, took_ms: started.elapsed().as_millis() as u64 })
}

fn row_values(row: &Row, columns: &[Column]) -> Result<Vec<serde_json::Value>, StoreError> {
    columns
        .iter()
        .map(|c| {
            let idx = row
                .columns()
                .iter()
                .position(|rc| rc.name() == c.alias)
                .ok_or_else(|| StoreError::Unsupported(format!("result has no column {}", c.alias)))?;
            value(row, idx)
        })
        .collect()
}

fn value(row: &Row, idx: usize) -> Result<serde_json::Value, StoreError> {
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
        other => return Err(StoreError::Unsupported(format!("column type {other} is not supported in results"))),
    })
}
