//! The `ingest_errors` table: inputs the pipeline refused, with the reason
//! and the original bytes.

use crate::{Pool, StoreError};

/// One refused input.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// `nats`, `http` or `file`.
    pub channel: &'static str,
    pub origin: String,
    /// JetStream stream sequence.
    pub stream_seq: Option<i64>,
    /// Identity of the input; a second letter with the same key is not stored.
    pub dedup_key: Option<String>,
    /// Stable machine-readable reason (`invalid_json`, `oversize`, …).
    pub reason_code: &'static str,
    pub reason: String,
    pub payload: Vec<u8>,
}

/// A stable key for `payload` received on `channel` at `origin` (a file's
/// `path:line`, a message's `subject#sequence`).
pub fn input_key(channel: &str, origin: &str, payload: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in payload {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{channel}:{origin}:{h:016x}")
}

/// Stores dead letters in one transaction; returns how many were new.
pub async fn store(pool: &Pool, letters: &[DeadLetter]) -> Result<u64, StoreError> {
    if letters.is_empty() {
        return Ok(0);
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await.map_err(StoreError::db("starting a dead-letter batch"))?;
    let stmt = tx
        .prepare(
            "INSERT INTO ingest_errors (channel, origin, stream_seq, dedup_key, reason_code, reason, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING",
        )
        .await
        .map_err(StoreError::db("preparing the dead-letter insert"))?;
    let mut stored = 0;
    for l in letters {
        stored += tx
            .execute(
                &stmt,
                &[&l.channel, &l.origin, &l.stream_seq, &l.dedup_key, &l.reason_code, &l.reason, &l.payload],
            )
            .await
            .map_err(StoreError::db("storing a dead letter"))?;
    }
    tx.commit().await.map_err(StoreError::db("committing dead letters"))?;
    Ok(stored)
}
