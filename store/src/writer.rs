//! The event batch writer. For each batch, in order: drop events repeated
//! within it (same id and time); make sure a partition exists for every day
//! it covers (native partitioning; a no-op on TimescaleDB); then, in one
//! transaction, set a savepoint and stream the rows with binary COPY straight
//! into `events`. That is the whole work of a batch of new events. When the
//! COPY hits a unique violation (some events are already stored: a
//! redelivered batch), roll back to the savepoint, COPY the rows into a
//! per-connection temporary staging table instead and move them with one
//! `INSERT … ON CONFLICT (event_id, time) DO NOTHING`, which skips what is
//! stored. Either way the batch is committed whole or not at all.

use std::collections::BTreeSet;
use std::sync::Mutex;

use chrono::{NaiveDate, NaiveTime};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use vigil_event::Event;

use crate::{Pool, StoreError};

/// Column order shared by the COPY, the staging table and the INSERT.
const COLUMNS: &str = "time, event_id, tenant, kind, source, host, class_uid, category_uid, activity_id, \
     severity_id, status_id, message, user_name, process_pid, process_ppid, process_name, process_path, \
     process_cmdline, src_ip, src_port, dst_ip, dst_port, protocol, raw, schema_version";

const TYPES: [Type; 25] = [
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
    Type::INT4,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INET,
    Type::INT4,
    Type::INET,
    Type::INT4,
    Type::TEXT,
    Type::JSONB,
    Type::INT2,
];

/// What one [`EventWriter::write`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Events handed to the writer.
    pub received: u64,
    /// Rows added to `events`.
    pub inserted: u64,
    /// Events already stored (or repeated within the batch), not added again.
    pub duplicates: u64,
}

/// Writes batches of events, idempotently on event id.
#[derive(Debug)]
pub struct EventWriter {
    pool: Pool,
    /// Days whose partitions are known to exist, so the common batch costs no
    /// extra round trip.
    ready_days: Mutex<BTreeSet<NaiveDate>>,
}

impl EventWriter {
    pub fn new(pool: Pool) -> Self {
        EventWriter { pool, ready_days: Mutex::new(BTreeSet::new()) }
    }

    /// The pool the writer uses (for writing alongside it, e.g. dead letters).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Stores `events` in one transaction. Events already in the table (same
    /// id and time) are skipped and counted as duplicates, so re-sending a
    /// batch after a failure is always safe. Nothing is stored if it fails.
    pub async fn write(&self, events: &[Event]) -> Result<WriteStats, StoreError> {
        let received = events.len() as u64;
        if events.is_empty() {
            return Ok(WriteStats::default());
        }
        // Repeats inside the batch are dropped here, so the database needs no sort to do it.
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        let unique: Vec<&Event> = events.iter().filter(|e| seen.insert((e.id, e.time))).collect();
        self.ensure_partitions(events).await?;

        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(StoreError::db("starting a write batch"))?;
        // The common case has no duplicates: COPY straight into `events`. A
        // unique violation (a redelivered batch) rolls back to the savepoint
        // and takes the staging path, which skips what is already stored.
        tx.batch_execute("SAVEPOINT vigil_direct").await.map_err(StoreError::db("creating a savepoint"))?;
        let inserted = match copy_rows(&tx, "events", &unique).await {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT vigil_direct")
                    .await
                    .map_err(StoreError::db("releasing a savepoint"))?;
                unique.len() as u64
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT vigil_direct")
                    .await
                    .map_err(StoreError::db("rolling back a savepoint"))?;
                // Temporary and per connection: pooled connections keep it, and
                // ON COMMIT DELETE ROWS empties it after every batch.
                tx.batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS vigil_stage_events
                         (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                )
                .await
                .map_err(StoreError::db("creating the staging table"))?;
                copy_rows(&tx, "vigil_stage_events", &unique).await.map_err(StoreError::db("staging rows"))?;
                tx.execute(
                    &format!(
                        "INSERT INTO events ({COLUMNS})
                         SELECT {COLUMNS} FROM vigil_stage_events
                         ON CONFLICT (event_id, time) DO NOTHING"
                    ),
                    &[],
                )
                .await
                .map_err(StoreError::db("inserting staged events"))?
            }
            Err(e) => return Err(StoreError::Db { context: "copying events".into(), source: e }),
        };
        tx.commit().await.map_err(StoreError::db("committing a write batch"))?;
        Ok(WriteStats { received, inserted, duplicates: received - inserted })
    }

    /// The naive way, kept as the benchmark baseline: one autocommitted
    /// `INSERT … ON CONFLICT DO NOTHING` per event. Returns rows inserted.
    pub async fn write_row_by_row(&self, events: &[Event]) -> Result<u64, StoreError> {
        self.ensure_partitions(events).await?;
        let client = self.pool.get().await?;
        let placeholders: Vec<String> = (1..=TYPES.len()).map(|i| format!("${i}")).collect();
        let stmt = client
            .prepare_typed(
                &format!(
                    "INSERT INTO events ({COLUMNS}) VALUES ({}) ON CONFLICT (event_id, time) DO NOTHING",
                    placeholders.join(", ")
                ),
                &TYPES,
            )
            .await
            .map_err(StoreError::db("preparing the row insert"))?;
        let mut inserted = 0;
        for e in events {
            let row = Row::from(e);
            inserted += client.execute(&stmt, &row.values()).await.map_err(StoreError::db("inserting a row"))?;
        }
        Ok(inserted)
    }

    /// Makes sure a partition exists for every day in the batch (a no-op
    /// function on TimescaleDB, which creates chunks itself).
    async fn ensure_partitions(&self, events: &[Event]) -> Result<(), StoreError> {
        let days: BTreeSet<NaiveDate> = events.iter().map(|e| e.time.date_naive()).collect();
        let missing: Vec<NaiveDate> = {
            let ready = self.ready_days.lock().unwrap_or_else(|p| p.into_inner());
            days.into_iter().filter(|d| !ready.contains(d)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        for day in &missing {
            let start = day.and_time(NaiveTime::MIN).and_utc();
            client
                .execute("SELECT vigil_ensure_event_partitions($1, $1)", &[&start])
                .await
                .map_err(StoreError::db(format!("creating the partition for {day}")))?;
        }
        self.ready_days.lock().unwrap_or_else(|p| p.into_inner()).extend(missing);
        Ok(())
    }
}

/// Streams `rows` into `table` with binary COPY.
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    rows: &[&Event],
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in(&format!("COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)")).await?;
    let writer = BinaryCopyInWriter::new(sink, &TYPES);
    pin_mut!(writer);
    for e in rows {
        let row = Row::from(*e);
        writer.as_mut().write(&row.values()).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// One event flattened to the `events` columns, owning what needs converting.
struct Row<'a> {
    e: &'a Event,
    class_uid: i32,
    category_uid: i32,
    severity_id: i16,
    schema_version: i16,
    kind: &'static str,
    src_ip: Option<std::net::IpAddr>,
    src_port: Option<i32>,
    dst_ip: Option<std::net::IpAddr>,
    dst_port: Option<i32>,
    pid: Option<i32>,
    ppid: Option<i32>,
    name: Option<&'a str>,
    path: Option<&'a str>,
    cmdline: Option<&'a str>,
}

impl<'a> From<&'a Event> for Row<'a> {
    fn from(e: &'a Event) -> Self {
        let p = e.process.as_ref();
        Row {
            e,
            class_uid: e.class_uid(),
            category_uid: e.category_uid(),
            severity_id: e.severity.id(),
            schema_version: i16::try_from(e.schema_version).unwrap_or(i16::MAX),
            kind: e.kind.as_str(),
            src_ip: e.src.map(|s| s.ip),
            src_port: e.src.and_then(|s| s.port).map(i32::from),
            dst_ip: e.dst.map(|d| d.ip),
            dst_port: e.dst.and_then(|d| d.port).map(i32::from),
            pid: p.and_then(|p| p.pid),
            ppid: p.and_then(|p| p.ppid),
            name: p.and_then(|p| p.name.as_deref()),
            path: p.and_then(|p| p.path.as_deref()),
            cmdline: p.and_then(|p| p.cmdline.as_deref()),
        }
    }
}

impl Row<'_> {
    fn values(&self) -> [&(dyn ToSql + Sync); 25] {
        let e = self.e;
        [
            &e.time,
            &e.id,
            &e.tenant,
            &self.kind,
            &e.source,
            &e.host,
            &self.class_uid,
            &self.category_uid,
            &e.activity_id,
            &self.severity_id,
            &e.status_id,
            &e.message,
            &e.user,
            &self.pid,
            &self.ppid,
            &self.name,
            &self.path,
            &self.cmdline,
            &self.src_ip,
            &self.src_port,
            &self.dst_ip,
            &self.dst_port,
            &e.protocol,
            &e.raw,
            &self.schema_version,
        ]
    }
}
