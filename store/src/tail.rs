//! Tailing `events` in ingestion order, for indexes kept outside PostgreSQL
//! (the BM25 full-text index, embeddings): read the rows ingested after a
//! durable watermark, process them, then save the new watermark. A consumer
//! whose output lives in PostgreSQL too can save the watermark in the same
//! transaction as its writes ([`Tail::lock_in`], [`Tail::save_in`]) and so
//! process every row exactly once.
//!
//! Rows are read in `(ingested_at, event_id)` order with keyset pagination, so
//! a large writer transaction (all its rows share one `ingested_at`, the
//! transaction's start time) is never split or skipped across pages.
//!
//! # The settle window
//!
//! `ingested_at` is the writer transaction's *start* time, but its rows only
//! become visible when it commits. A consumer that had already moved its
//! watermark past that start time would never see them. [`Tail`] therefore
//! reads only rows with `ingested_at < now() - settle` (5 s by default), which
//! is far longer than a writer batch takes. A writer transaction that stays
//! open longer than `settle` can still commit rows behind a consumer's
//! watermark; those rows are missed by the tail until the consumer rebuilds
//! (`vigil reindex` for the BM25 index). PostgreSQL stays the system of record
//! either way: nothing is lost, only missing from the secondary index.
//!
//! # Cost
//!
//! The `events_ingested_at_brin` index (migration 0006) keeps the scan to the
//! block ranges at or after the watermark. To keep a catch-up over millions of
//! rows from re-scanning everything after the watermark for every page, each
//! read looks in a bounded `ingested_at` window that widens until it holds a
//! page (or reaches the settle cutoff), and remembers a window size that fits.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::{Pool, StoreError};

/// Columns every [`TailRow`] carries, in the order it reads them.
const COLUMNS: &str =
    "event_id, time, ingested_at, kind, host, severity_id, status_id, message, process_cmdline, user_name";

/// Insert or update a watermark: `$1` name, `$2` ingested_at, `$3` event_id.
const SAVE_SQL: &str = "INSERT INTO index_watermarks (name, ingested_at, event_id, updated_at)
     VALUES ($1, $2, $3, now())
     ON CONFLICT (name) DO UPDATE
       SET ingested_at = EXCLUDED.ingested_at, event_id = EXCLUDED.event_id, updated_at = now()";

/// How often (at most) a read asks PostgreSQL to summarize new BRIN ranges (ms).
const SUMMARIZE_EVERY_MS: i64 = 10_000;

/// Summarizes the block ranges of every `ingested_at` BRIN index (one per
/// chunk/partition) that autovacuum has not summarized yet: unsummarized
/// ranges match every query, so after a bulk load the tail would scan whole
/// chunks until autovacuum catches up. Incremental and cheap when there is
/// nothing new; gives up quickly if autovacuum holds the lock.
const SUMMARIZE_SQL: &str = "SELECT coalesce(sum(brin_summarize_new_values(i.indexrelid)), 0)::int8
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid AND ic.relkind = 'i'
       JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] AND a.attname = 'ingested_at'";

/// The window a read starts with when it has no better guess (1 s).
const START_SPAN_US: i64 = 1_000_000;
/// Never narrower than this, so the window always makes progress (1 ms).
const MIN_SPAN_US: i64 = 1_000;

/// A named reader of `events` in ingestion order with a durable watermark
/// (table `index_watermarks`).
#[derive(Debug)]
pub struct Tail {
    name: String,
    settle: Duration,
    /// The `ingested_at` window (µs) the next read starts with: adapts to the
    /// ingest rate so a page holds about `limit` rows without a scan of
    /// everything after the watermark.
    span_us: AtomicI64,
    /// When this tail last summarized BRIN ranges (Unix ms; 0 = never).
    summarized_ms: AtomicI64,
}

/// One event as a tailing consumer sees it: the searchable text and the
/// fields an index filters or shows on.
#[derive(Debug, Clone, PartialEq)]
pub struct TailRow {
    pub event_id: Uuid,
    pub time: DateTime<Utc>,
    pub ingested_at: DateTime<Utc>,
    pub kind: String,
    pub host: Option<String>,
    pub severity_id: i16,
    pub status_id: Option<i16>,
    pub message: String,
    pub process_cmdline: Option<String>,
    pub user_name: Option<String>,
}

impl TailRow {
    /// The watermark that marks this row (and every row before it) as done.
    pub fn watermark(&self) -> Watermark {
        Watermark { ingested_at: self.ingested_at, event_id: self.event_id }
    }
}

/// A position in ingestion order: everything at or before it is processed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watermark {
    pub ingested_at: DateTime<Utc>,
    pub event_id: Uuid,
}

impl Tail {
    /// A tail named `name` (the key of its watermark), with a 5 s settle window.
    pub fn new(name: &str) -> Self {
        Tail {
            name: name.to_string(),
            settle: Duration::from_secs(5),
            span_us: AtomicI64::new(START_SPAN_US),
            summarized_ms: AtomicI64::new(0),
        }
    }

    /// Rows younger than `now() - settle` are not read yet: their writer
    /// transaction may still be open (see the module docs).
    pub fn with_settle(mut self, d: Duration) -> Self {
        self.settle = d;
        self
    }

    /// The name the watermark is stored under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settle window.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// The saved watermark, or `None` when this tail has not saved one (start
    /// from the beginning).
    pub async fn watermark(&self, pool: &Pool) -> Result<Option<Watermark>, StoreError> {
        let client = pool.get().await?;
        let row = client
            .query_opt("SELECT ingested_at, event_id FROM index_watermarks WHERE name = $1", &[&self.name])
            .await
            .map_err(StoreError::db("reading an index watermark"))?;
        Ok(row.map(|r| Watermark { ingested_at: r.get(0), event_id: r.get(1) }))
    }

    /// The next rows after `after` (from the start when `None`) in
    /// `(ingested_at, event_id)` order, at most `limit`, and only rows with
    /// `ingested_at < now() - settle`. Keyset pagination: pass the last
    /// returned row's [`TailRow::watermark`] to read the following page. An
    /// empty result means the tail has caught up (for now).
    pub async fn next(&self, pool: &Pool, after: Option<Watermark>, limit: i64) -> Result<Vec<TailRow>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let mut client = pool.get().await?;
        let now_ms = Utc::now().timestamp_millis();
        if now_ms - self.summarized_ms.load(Ordering::Relaxed) >= SUMMARIZE_EVERY_MS {
            self.summarized_ms.store(now_ms, Ordering::Relaxed);
            summarize(&mut client).await;
        }
        // The window query is only fast on the BRIN index; without fresh
        // statistics (right after a bulk load) the planner may pick a
        // sequential scan of every chunk instead. Set for this transaction only.
        let client = client.transaction().await.map_err(StoreError::db("starting a tail read"))?;
        client
            .batch_execute("SET LOCAL enable_seqscan = off")
            .await
            .map_err(StoreError::db("preparing a tail read"))?;
        let settle_s = self.settle.as_secs_f64();
        let cutoff: DateTime<Utc> = client
            .query_one("SELECT now() - make_interval(secs => $1::float8)", &[&settle_s])
            .await
            .map_err(StoreError::db("reading the tail cutoff"))?
            .get(0);

        // Where ingestion order starts for this read.
        let mut cursor = match after {
            Some(w) => w,
            None => {
                let first = client
                    .query_opt(
                        "SELECT ingested_at, event_id FROM events WHERE ingested_at < $1
                          ORDER BY ingested_at, event_id LIMIT 1",
                        &[&cutoff],
                    )
                    .await
                    .map_err(StoreError::db("finding the first event to tail"))?;
                let Some(first) = first else {
                    client.commit().await.map_err(StoreError::db("finishing a tail read"))?;
                    return Ok(Vec::new());
                };
                // Just before the first row, so the keyset condition includes it.
                Watermark { ingested_at: first.get(0), event_id: Uuid::nil() }
            }
        };
        let from = cursor.ingested_at;
        if from >= cutoff {
            client.commit().await.map_err(StoreError::db("finishing a tail read"))?;
            return Ok(Vec::new());
        }
        let include_nil = after.is_none();

        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events
                  WHERE ingested_at >= $1 AND ingested_at < $2
                    AND (ingested_at > $1 OR event_id > $3 OR ($4 AND event_id = $3))
                  ORDER BY ingested_at, event_id
                  LIMIT $5"
            ))
            .await
            .map_err(StoreError::db("preparing the tail query"))?;

        let mut span = self.span_us.load(Ordering::Relaxed).max(MIN_SPAN_US);
        let mut out: Vec<TailRow> = Vec::new();
        let mut first_round = true;
        loop {
            let upper = from.checked_add_signed(TimeDelta::microseconds(span)).map_or(cutoff, |u| u.min(cutoff));
            let remaining = limit - out.len() as i64;
            let nil_ok = include_nil && out.is_empty();
            let rows = client
                .query(&stmt, &[&cursor.ingested_at, &upper, &cursor.event_id, &nil_ok, &remaining])
                .await
                .map_err(StoreError::db("reading the next tail page"))?;
            let got = rows.len() as i64;
            out.extend(rows.iter().map(|r| TailRow {
                event_id: r.get(0),
                time: r.get(1),
                ingested_at: r.get(2),
                kind: r.get(3),
                host: r.get(4),
                severity_id: r.get(5),
                status_id: r.get(6),
                message: r.get(7),
                process_cmdline: r.get(8),
                user_name: r.get(9),
            }));
            if got == remaining {
                // A full page. If the first window already held it, the next
                // read tries a narrower one (it may have held far more).
                let next_span = if first_round { (span / 2).max(MIN_SPAN_US) } else { span };
                self.span_us.store(next_span, Ordering::Relaxed);
                break;
            }
            if upper >= cutoff {
                break;
            }
            if let Some(last) = out.last() {
                cursor = last.watermark();
            }
            span = span.saturating_mul(2);
            first_round = false;
        }
        client.commit().await.map_err(StoreError::db("finishing a tail read"))?;
        Ok(out)
    }

    /// Stores `w` as this tail's watermark (insert or update). Save only after
    /// what the rows fed is durable, so a crash re-processes rather than skips.
    pub async fn save(&self, pool: &Pool, w: Watermark) -> Result<(), StoreError> {
        let client = pool.get().await?;
        client
            .execute(SAVE_SQL, &[&self.name, &w.ingested_at, &w.event_id])
            .await
            .map_err(StoreError::db("saving an index watermark"))?;
        Ok(())
    }

    /// Inside `tx`: takes a transaction-scoped advisory lock on this tail's
    /// name, then reads its saved watermark. For consumers that write what a
    /// page feeds and [`Tail::save_in`] the new watermark in one transaction
    /// (exactly once): a second consumer with the same name waits here until
    /// the first commits, then sees the watermark it saved, so it can tell
    /// that the page it read was already done. Under REPEATABLE READ the
    /// snapshot predates the wait, so the second instead fails with a
    /// serialization error (SQLSTATE 40001): here when the watermark row
    /// already existed (it is read `FOR UPDATE`), else at [`Tail::save_in`].
    /// Roll back and read again.
    pub async fn lock_in(&self, tx: &Transaction<'_>) -> Result<Option<Watermark>, StoreError> {
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('vigil_tail:' || $1, 0))", &[&self.name])
            .await
            .map_err(StoreError::db("locking an index watermark"))?;
        let row = tx
            .query_opt("SELECT ingested_at, event_id FROM index_watermarks WHERE name = $1 FOR UPDATE", &[&self.name])
            .await
            .map_err(StoreError::db("reading an index watermark"))?;
        Ok(row.map(|r| Watermark { ingested_at: r.get(0), event_id: r.get(1) }))
    }

    /// [`Tail::save`] inside the caller's transaction: the watermark becomes
    /// durable exactly when (and only if) what the rows fed commits with it.
    pub async fn save_in(&self, tx: &Transaction<'_>, w: Watermark) -> Result<(), StoreError> {
        tx.execute(SAVE_SQL, &[&self.name, &w.ingested_at, &w.event_id])
            .await
            .map_err(StoreError::db("saving an index watermark"))?;
        Ok(())
    }

    /// Forgets the watermark: the next read starts from the beginning.
    pub async fn reset(&self, pool: &Pool) -> Result<(), StoreError> {
        let client = pool.get().await?;
        client
            .execute("DELETE FROM index_watermarks WHERE name = $1", &[&self.name])
            .await
            .map_err(StoreError::db("resetting an index watermark"))?;
        self.span_us.store(START_SPAN_US, Ordering::Relaxed);
        Ok(())
    }
}

/// Best effort: a failure (no privilege, autovacuum holding the lock) only
/// costs speed, and is logged.
async fn summarize(client: &mut deadpool_postgres::Client) {
    let result = async {
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL lock_timeout = '200ms'").await?;
        let n: i64 = tx.query_one(SUMMARIZE_SQL, &[]).await?.get(0);
        tx.commit().await?;
        Ok::<i64, tokio_postgres::Error>(n)
    }
    .await;
    match result {
        Ok(0) => {}
        Ok(n) => tracing::debug!(ranges = n, "summarized new BRIN ranges on events.ingested_at"),
        Err(e) => tracing::debug!("could not summarize BRIN ranges on events.ingested_at: {e}"),
    }
}
