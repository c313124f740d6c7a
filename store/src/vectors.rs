//! Event embeddings in PostgreSQL (pgvector): one vector per distinct
//! normalised text and model in `embedding_texts`, and `event_embeddings`
//! linking each embedded event to its text. See migrations/0007_vectors.*.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Pool, StoreError};

/// The key of a normalised text: its SHA-256.
pub fn text_hash(normalised: &str) -> Vec<u8> {
    Sha256::digest(normalised.as_bytes()).to_vec()
}

/// pgvector's text form, `[0.1,0.2,…]`, which `::vector` parses.
pub fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Non-finite values would be refused by pgvector; a model never emits them.
        s.push_str(&format!("{x}"));
    }
    s.push(']');
    s
}

/// Creates the model's HNSW index if it does not exist yet (idempotent).
pub async fn ensure_index(pool: &Pool, model: &str) -> Result<String, StoreError> {
    let client = pool.get().await?;
    let row = client
        .query_one("SELECT vigil_ensure_embedding_index($1::text)", &[&model])
        .await
        .map_err(StoreError::db("creating the embedding index"))?;
    Ok(row.get(0))
}

/// Ids of the texts (by hash) this model already has vectors for.
pub async fn known_texts(pool: &Pool, model: &str, hashes: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, i64>, StoreError> {
    if hashes.is_empty() {
        return Ok(HashMap::new());
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT text_hash, id FROM embedding_texts WHERE model = $1::text AND text_hash = ANY($2::bytea[])",
            &[&model, &hashes],
        )
        .await
        .map_err(StoreError::db("looking up embedded texts"))?;
    Ok(rows.iter().map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1))).collect())
}

/// A distinct normalised text and its vector.
#[derive(Debug, Clone)]
pub struct NewText<'a> {
    pub text: &'a str,
    pub embedding: &'a [f32],
}

/// Stores new texts (a concurrent writer's copy wins; nothing is duplicated)
/// and returns the ids of all of them by hash.
pub async fn store_texts(pool: &Pool, model: &str, texts: &[NewText<'_>]) -> Result<HashMap<Vec<u8>, i64>, StoreError> {
    if texts.is_empty() {
        return Ok(HashMap::new());
    }
    let hashes: Vec<Vec<u8>> = texts.iter().map(|t| text_hash(t.text)).collect();
    let bodies: Vec<&str> = texts.iter().map(|t| t.text).collect();
    let vectors: Vec<String> = texts.iter().map(|t| vector_literal(t.embedding)).collect();
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO embedding_texts (model, text_hash, text, embedding) \
             SELECT $1::text, h, t, e::vector FROM unnest($2::bytea[], $3::text[], $4::text[]) AS u(h, t, e) \
             ON CONFLICT (model, text_hash) DO NOTHING",
            &[&model, &hashes, &bodies, &vectors],
        )
        .await
        .map_err(StoreError::db("storing embeddings"))?;
    drop(client);
    known_texts(pool, model, &hashes).await
}

/// Links events to their texts; re-linking an event adds nothing.
pub async fn link_events(pool: &Pool, links: &[(Uuid, DateTime<Utc>, i64)]) -> Result<u64, StoreError> {
    if links.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = links.iter().map(|l| l.0).collect();
    let times: Vec<DateTime<Utc>> = links.iter().map(|l| l.1).collect();
    let texts: Vec<i64> = links.iter().map(|l| l.2).collect();
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO event_embeddings (event_id, time, text_id) \
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) \
             ON CONFLICT DO NOTHING",
            &[&ids, &times, &texts],
        )
        .await
        .map_err(StoreError::db("linking events to embeddings"))
}

/// Counts for `/metrics` and tests: distinct texts and linked events of a model.
pub async fn counts(pool: &Pool, model: &str) -> Result<(i64, i64), StoreError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM embedding_texts WHERE model = $1::text), \
                    (SELECT count(*) FROM event_embeddings v JOIN embedding_texts t ON t.id = v.text_id WHERE t.model = $1::text)",
            &[&model],
        )
        .await
        .map_err(StoreError::db("counting embeddings"))?;
    Ok((row.get(0), row.get(1)))
}

/// The `n` texts of `model` nearest to `embedding` (pgvector text), nearest
/// first, by the model's HNSW index (iterative scan, so `n` may exceed
/// `hnsw.ef_search`).
pub async fn nearest_texts(pool: &Pool, model: &str, embedding: &str, n: i64) -> Result<Vec<(i64, f64)>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.build_transaction().read_only(true).start().await.map_err(StoreError::db("starting a search"))?;
    tx.batch_execute("SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = 100")
        .await
        .map_err(StoreError::db("configuring the HNSW scan"))?;
    // relaxed_order may return neighbours slightly out of order: re-sort.
    let rows = tx
        .query(
            "SELECT id, d FROM (SELECT id, embedding <=> $2::text::vector AS d FROM embedding_texts \
             WHERE model = $1::text ORDER BY embedding <=> $2::text::vector LIMIT $3::bigint) AS n ORDER BY d",
            &[&model, &embedding, &n],
        )
        .await
        .map_err(StoreError::db("searching the embedding index"))?;
    tx.commit().await.map_err(StoreError::db("finishing a search"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Up to `limit` events carrying text `text_id` inside `[from, to)`, newest
/// first, older than `before` when given (the `(text_id, time)` index).
pub async fn events_of_text(
    pool: &Pool,
    text_id: i64,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
    let (from, to) = window
        .unwrap_or((DateTime::<Utc>::UNIX_EPOCH, DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(3_000_000)));
    let (b_time, b_id) = before.map(|(t, id)| (Some(t), Some(id))).unwrap_or((None, None));
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT event_id, time FROM event_embeddings WHERE text_id = $1::bigint \
             AND time >= $2::timestamptz AND time < $3::timestamptz \
             AND ($4::timestamptz IS NULL OR (time, event_id) < ($4::timestamptz, $5::uuid)) \
             ORDER BY time DESC, event_id DESC LIMIT $6::bigint",
            &[&text_id, &from, &to, &b_time, &b_id, &limit],
        )
        .await
        .map_err(StoreError::db("reading the events of a text"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
