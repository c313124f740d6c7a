//! Retention and metric rollups: what Vigil keeps, for how long, and the SQL
//! that forgets the rest (docs/retention.md).
//!
//! * Events live in one table partitioned by day, so per-kind retention is two
//!   mechanisms: whole days older than the *longest* kind retention are dropped
//!   (`drop_chunks` on TimescaleDB, `DROP TABLE` of the daily partition on the
//!   native path: metadata operations, no row scans), and each kind with a
//!   shorter retention is deleted in bounded batches through the
//!   `(kind, time)` index, its vectors (`event_embeddings`) in the same
//!   statement.
//! * Other tables (hunt alerts, audit log, dead letters, agent commands,
//!   metric rollups) are deleted in bounded batches by their time column;
//!   vectors of texts no event refers to any more go too.
//! * Metric rollups *move* `metric` events older than the rollup age into
//!   hourly rows of `metric_rollups` (count, sum, min, max per series and
//!   numeric field): one statement deletes the raw rows and upserts their
//!   aggregates, so every observation is counted exactly once whatever runs
//!   twice or arrives late.
//!
//! Every statement binds its values; table and column names come only from
//! the constants below (partition names are formatted from parsed dates).
//! The BM25 index lives outside PostgreSQL: the caller applies
//! [`RetentionPolicy::kind_cutoffs`] to it (see `vigil_api::maintenance`).

use std::fmt;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use vigil_event::Kind;

use crate::{storage_mode, Pool, StorageMode, StoreError};

/// How long something is kept: `None` is forever.
pub type Keep = Option<Duration>;

/// Rows each batched `DELETE` removes at most (one short transaction each).
pub const DEFAULT_BATCH: i64 = 10_000;
/// Vectors of texts no event refers to are deleted only once this old, so a
/// vectorizer that just stored a text has time to link its events.
pub const ORPHAN_TEXT_GRACE: Duration = Duration::days(1);
/// Raw metric rows are moved into rollups this many hours per statement.
const ROLLUP_STEP_HOURS: i64 = 6;

/// A table other than `events` with a retention, and its time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Alerts raised by hunts and detections (`alerts`).
    Alerts,
    /// The API audit log (`audit_log`).
    Audit,
    /// Refused ingest input (`ingest_errors`).
    DeadLetters,
    /// Commands sent to agents (`agent_commands`).
    AgentCommands,
    /// Hourly metric rollups (`metric_rollups`).
    Rollups,
    /// Runs of scheduled hunts (`hunt_runs`).
    HuntRuns,
}

impl Table {
    pub const ALL: [Table; 6] =
        [Table::Alerts, Table::Audit, Table::DeadLetters, Table::AgentCommands, Table::Rollups, Table::HuntRuns];

    /// The policy key.
    pub fn key(self) -> &'static str {
        match self {
            Table::Alerts => "alerts",
            Table::Audit => "audit",
            Table::DeadLetters => "dead_letters",
            Table::AgentCommands => "agent_commands",
            Table::Rollups => "rollups",
            Table::HuntRuns => "hunt_runs",
        }
    }

    /// The SQL table (a constant).
    pub fn table(self) -> &'static str {
        match self {
            Table::Alerts => "alerts",
            Table::Audit => "audit_log",
            Table::DeadLetters => "ingest_errors",
            Table::AgentCommands => "agent_commands",
            Table::Rollups => "metric_rollups",
            Table::HuntRuns => "hunt_runs",
        }
    }

    /// The time a row is kept from, given the table's columns: an alert is
    /// kept while it keeps firing (`last_seen`, set by hunts since migration
    /// 0013), else from when it was raised. `None`: the table is not there.
    fn time_expr(self, columns: &[String]) -> Option<&'static str> {
        let has = |c: &str| columns.iter().any(|h| h == c);
        let (expr, needs): (&'static str, &[&str]) = match self {
            Table::Alerts if has("last_seen") => ("coalesce(last_seen, time)", &["last_seen", "time"]),
            Table::Alerts => ("time", &["time"]),
            Table::Audit => ("at", &["at"]),
            Table::DeadLetters => ("received_at", &["received_at"]),
            Table::AgentCommands => ("sent_at", &["sent_at"]),
            Table::Rollups => ("bucket", &["bucket"]),
            Table::HuntRuns => ("finished_at", &["finished_at"]),
        };
        needs.iter().all(|c| has(c)).then_some(expr)
    }

    fn default_keep(self) -> Keep {
        Some(match self {
            Table::Alerts | Table::Audit | Table::Rollups => Duration::days(365),
            Table::DeadLetters => Duration::days(14),
            Table::AgentCommands | Table::HuntRuns => Duration::days(90),
        })
    }
}

/// A retention policy that does not make sense, naming the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retention policy: `{part}`: {reason}")]
pub struct PolicyError {
    /// The offending `key=value` part (or the keys in conflict).
    pub part: String,
    pub reason: String,
}

/// How long each kind of data is kept, and when metrics are rolled up.
///
/// Defaults: telemetry (process, network, log, metric) 30 days; auth and
/// package 90 days; alert and vuln events 365 days; hunt alerts, the audit
/// log and metric rollups 365 days; agent commands 90 days; dead letters 14
/// days; hunt runs 90 days; metrics are rolled up into hourly rows once 30
/// days old.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Per event kind, in [`Kind::ALL`] order.
    kinds: [Keep; 8],
    /// Per table, in [`Table::ALL`] order.
    tables: [Keep; 6],
    /// Metric events older than this are rolled up (`None`: never).
    pub rollup_after: Keep,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        let kinds = Kind::ALL.map(|k| {
            Some(Duration::days(match k {
                Kind::Process | Kind::Network | Kind::Log | Kind::Metric => 30,
                Kind::Auth | Kind::Package => 90,
                Kind::Alert | Kind::Vuln => 365,
            }))
        });
        RetentionPolicy { kinds, tables: Table::ALL.map(Table::default_keep), rollup_after: Some(Duration::days(30)) }
    }
}

fn kind_index(k: Kind) -> usize {
    Kind::ALL.iter().position(|x| *x == k).unwrap_or(0)
}

fn table_index(t: Table) -> usize {
    Table::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

/// `30d`, `12h`, `2w`, or `off`/`forever` (keep forever).
fn parse_keep(v: &str) -> Result<Keep, String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("`{v}` is not a duration like 30d, 12h or 2w (or `off`)"))?;
    let d = match unit {
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        _ => return Err(format!("`{v}`: the unit must be h, d or w (like 30d), or the value `off`")),
    };
    if n == 0 {
        return Err("a retention of 0 would delete everything at once; use `off` to keep forever".into());
    }
    if d > Duration::days(36_500) {
        return Err(format!("`{v}` is more than 100 years; use `off` to keep forever"));
    }
    Ok(Some(d))
}

fn fmt_keep(k: Keep) -> String {
    match k {
        None => "off".into(),
        Some(d) if d.num_hours() % 24 == 0 => format!("{}d", d.num_days()),
        Some(d) => format!("{}h", d.num_hours()),
    }
}

impl RetentionPolicy {
    /// The defaults changed by `spec`: comma-separated `key=value` parts,
    /// e.g. `metric=30d,alert=365d,audit=2w,rollup_after=7d,dead_letters=off`.
    /// Keys: each event kind, `events` (every kind), the tables
    /// (`alerts`, `audit`, `dead_letters`, `agent_commands`, `rollups`,
    /// `hunt_runs`) and
    /// `rollup_after`. Values: a whole number of hours, days or weeks
    /// (`12h`, `30d`, `2w`) or `off` (keep forever; for `rollup_after`, no rollups).
    pub fn parse(spec: &str) -> Result<Self, PolicyError> {
        let mut p = RetentionPolicy::default();
        for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |reason: String| PolicyError { part: part.to_string(), reason };
            let (key, value) = part.split_once('=').ok_or_else(|| bad("expected key=value, like metric=30d".into()))?;
            let key = key.trim().to_ascii_lowercase();
            let keep = parse_keep(value).map_err(bad)?;
            if key == "events" {
                p.kinds = [keep; 8];
            } else if key == "rollup_after" {
                p.rollup_after = keep;
            } else if let Ok(k) = key.parse::<Kind>() {
                p.kinds[kind_index(k)] = keep;
            } else if let Some(t) = Table::ALL.iter().find(|t| t.key() == key) {
                p.tables[table_index(*t)] = keep;
            } else {
                let mut keys: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                keys.push("events");
                keys.extend(Table::ALL.iter().map(|t| t.key()));
                keys.push("rollup_after");
                return Err(bad(format!("unknown key `{key}` (expected one of {})", keys.join(", "))));
            }
        }
        p.validate()?;
        Ok(p)
    }

    /// Rejects combinations that would lose what the policy promises to keep.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Some(after) = self.rollup_after {
            let metric = self.kind(Kind::Metric);
            if metric.is_some_and(|m| m < after) {
                return Err(PolicyError {
                    part: format!("metric={},rollup_after={}", fmt_keep(metric), fmt_keep(Some(after))),
                    reason: "raw metrics would be deleted before they are rolled up; keep metrics at least as \
                             long as rollup_after, or set rollup_after=off"
                        .into(),
                });
            }
            let longest = self.longest_event_keep();
            if longest.is_some_and(|m| m < after) {
                return Err(PolicyError {
                    part: format!("rollup_after={}", fmt_keep(Some(after))),
                    reason: format!(
                        "is longer than every event kind's retention (the longest is {}): whole days are dropped \
                         before metrics in them are rolled up",
                        fmt_keep(longest)
                    ),
                });
            }
            let rollups = self.table(Table::Rollups);
            if rollups.is_some_and(|r| r < after) {
                return Err(PolicyError {
                    part: format!("rollups={},rollup_after={}", fmt_keep(rollups), fmt_keep(Some(after))),
                    reason: "rollup rows would be deleted as soon as they are written; keep rollups at least as \
                             long as rollup_after"
                        .into(),
                });
            }
        }
        Ok(())
    }

    pub fn kind(&self, k: Kind) -> Keep {
        self.kinds[kind_index(k)]
    }

    pub fn set_kind(&mut self, k: Kind, keep: Keep) {
        self.kinds[kind_index(k)] = keep;
    }

    pub fn table(&self, t: Table) -> Keep {
        self.tables[table_index(t)]
    }

    pub fn set_table(&mut self, t: Table, keep: Keep) {
        self.tables[table_index(t)] = keep;
    }

    /// The longest retention of any event kind (`None`: some kind is kept forever).
    pub fn longest_event_keep(&self) -> Keep {
        let mut longest = Duration::zero();
        for k in self.kinds {
            longest = longest.max(k?);
        }
        Some(longest)
    }

    /// Each kind's cutoff at `now` (rows with `time` before it go), for kinds
    /// with a retention. With rollups on, metrics are never deleted after the
    /// rollup cutoff (an hour boundary, so up to an hour before `now - metric`):
    /// what the rollup has not moved yet is not lost.
    pub fn kind_cutoffs(&self, now: DateTime<Utc>) -> Vec<(Kind, DateTime<Utc>)> {
        Kind::ALL
            .iter()
            .filter_map(|k| {
                let cutoff = now - self.kind(*k)?;
                Some(match (k, self.rollup_cutoff(now)) {
                    (Kind::Metric, Some(r)) => (*k, cutoff.min(r)),
                    _ => (*k, cutoff),
                })
            })
            .collect()
    }

    /// Where whole days of events are dropped: before the longest kind retention.
    pub fn events_cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.longest_event_keep().map(|d| now - d)
    }

    /// The hour before which metric rows are rolled up at `now`.
    pub fn rollup_cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.rollup_after.map(|d| floor_hour(now - d))
    }
}

impl fmt::Display for RetentionPolicy {
    /// The whole policy in the syntax [`RetentionPolicy::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Kind::ALL.iter().map(|k| format!("{k}={}", fmt_keep(self.kind(*k)))).collect();
        parts.extend(Table::ALL.iter().map(|t| format!("{}={}", t.key(), fmt_keep(self.table(*t)))));
        parts.push(format!("rollup_after={}", fmt_keep(self.rollup_after)));
        f.write_str(&parts.join(","))
    }
}

/// The start of the UTC hour `t` is in.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp().div_euclid(3600) * 3600;
    Utc.timestamp_opt(s, 0).single().unwrap_or(t)
}

// ------------------------------------------------------------ reports

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Whole TimescaleDB chunks dropped.
    DropChunks,
    /// Whole daily partitions dropped (native storage).
    DropPartitions,
    /// Rows deleted in batches.
    Delete,
    /// Raw metric rows moved into hourly rollups.
    RollUp,
}

/// One step of a pass: what it acted on, up to when, and how much.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `rollup[metric]`, `events`, `events[kind=auth]`, `event_embeddings`,
    /// `embedding_texts`, a table name (`audit_log` …), `bm25` or `bm25[kind=auth]`.
    pub target: String,
    pub action: Action,
    /// Rows with a time before this went (or would go, on a dry run).
    pub cutoff: Option<DateTime<Utc>>,
    /// Rows deleted, dropped or moved (would be, on a dry run).
    pub rows: u64,
    /// Chunks or partitions dropped.
    pub chunks: u64,
    /// Rows deleted alongside (vectors of deleted events; rollup rows written).
    pub related: u64,
    pub took_ms: u64,
    /// Why this step failed (the pass goes on with the next step).
    pub error: Option<String>,
}

impl StepReport {
    pub fn new(target: impl Into<String>, action: Action, cutoff: Option<DateTime<Utc>>) -> Self {
        StepReport { target: target.into(), action, cutoff, rows: 0, chunks: 0, related: 0, took_ms: 0, error: None }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub dry_run: bool,
    /// The policy applied, in `VIGIL_RETENTION` syntax.
    pub policy: String,
    pub steps: Vec<StepReport>,
}

impl RetentionReport {
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.error.is_none())
    }

    /// Rows removed from `target` (or moved, for rollups), 0 if it had no step.
    pub fn rows(&self, target: &str) -> u64 {
        self.steps.iter().filter(|s| s.target == target).map(|s| s.rows).sum()
    }
}

/// Options of a pass.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Count what would go; change nothing.
    pub dry_run: bool,
    /// Rows per batched DELETE.
    pub batch: i64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { dry_run: false, batch: DEFAULT_BATCH }
    }
}

// ------------------------------------------------------------ the pass

/// Runs one pass at `now`: rollups first (so metrics are moved, not deleted),
/// then event retention, vectors, and the other tables. A failing step is
/// recorded in its [`StepReport`] and the pass goes on; only a database that
/// cannot be reached at all is an error.
pub async fn run(
    pool: &Pool,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    opts: RunOptions,
) -> Result<RetentionReport, StoreError> {
    let mode = storage_mode(pool)
        .await?
        .ok_or_else(|| StoreError::Unsupported("the database is not migrated (no storage mode)".into()))?;
    let mut report = RetentionReport {
        started: now,
        finished: now,
        dry_run: opts.dry_run,
        policy: policy.to_string(),
        steps: vec![],
    };
    let batch = opts.batch.max(1);

    if let Some(cutoff) = policy.rollup_cutoff(now) {
        report.steps.push(timed(roll_up(pool, cutoff, opts.dry_run), "rollup[metric]", Action::RollUp, cutoff).await);
    }
    if let Some(cutoff) = policy.events_cutoff(now) {
        let action = match mode {
            StorageMode::TimescaleDb => Action::DropChunks,
            StorageMode::Native => Action::DropPartitions,
        };
        report.steps.push(timed(drop_event_days(pool, mode, cutoff, opts.dry_run), "events", action, cutoff).await);
    }
    for (kind, cutoff) in policy.kind_cutoffs(now) {
        let target = format!("events[kind={kind}]");
        // Rollups run first and move every metric row before their cutoff:
        // a dry run must not count those as deleted too.
        let cutoff_for_count = match (kind, policy.rollup_cutoff(now), opts.dry_run) {
            (Kind::Metric, Some(r), true) => Some(r),
            _ => None,
        };
        report.steps.push(
            timed(
                delete_kind(pool, kind, cutoff, cutoff_for_count, batch, opts.dry_run),
                &target,
                Action::Delete,
                cutoff,
            )
            .await,
        );
    }
    if let Some(cutoff) = policy.events_cutoff(now) {
        let action = match mode {
            StorageMode::TimescaleDb => Action::DropChunks,
            StorageMode::Native => Action::Delete,
        };
        let fut = drop_embeddings(pool, mode, cutoff, batch, opts.dry_run);
        report.steps.push(timed(fut, "event_embeddings", action, cutoff).await);
    }
    let grace = now - ORPHAN_TEXT_GRACE;
    report.steps.push(
        timed(delete_orphan_texts(pool, grace, batch, opts.dry_run), "embedding_texts", Action::Delete, grace).await,
    );
    for t in Table::ALL {
        if let Some(keep) = policy.table(t) {
            let cutoff = now - keep;
            let step =
                timed(delete_table(pool, t, cutoff, batch, opts.dry_run), t.table(), Action::Delete, cutoff).await;
            // A table this database does not have (yet) is no error and no news.
            if step.error.as_deref() != Some(MISSING) {
                report.steps.push(step);
            }
        }
    }
    report.finished = Utc::now().max(now);
    Ok(report)
}

const MISSING: &str = "table missing";

/// (rows, chunks, related) of a step.
type Counts = (u64, u64, u64);

async fn timed(
    fut: impl std::future::Future<Output = Result<Counts, StoreError>>,
    target: &str,
    action: Action,
    cutoff: DateTime<Utc>,
) -> StepReport {
    let t = Instant::now();
    let mut step = StepReport::new(target, action, Some(cutoff));
    match fut.await {
        Ok((rows, chunks, related)) => {
            step.rows = rows;
            step.chunks = chunks;
            step.related = related;
        }
        Err(StoreError::Unsupported(m)) if m == MISSING => step.error = Some(MISSING.into()),
        Err(e) => {
            tracing::warn!("retention: {target}: {e}");
            step.error = Some(e.to_string());
        }
    }
    step.took_ms = t.elapsed().as_millis() as u64;
    step
}

fn n(v: i64) -> u64 {
    v.max(0) as u64
}

/// Drops whole days of `events` that end at or before `cutoff`.
async fn drop_event_days(
    pool: &Pool,
    mode: StorageMode,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> Result<Counts, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await.map_err(StoreError::db("starting the events drop"))?;
    let (rows, chunks) = match mode {
        StorageMode::TimescaleDb => {
            // The chunks drop_chunks takes: those whose range ends at or before the cutoff.
            let r = tx
                .query_one(
                    "SELECT count(*), max(range_end) FROM timescaledb_information.chunks \
                     WHERE hypertable_schema = current_schema() AND hypertable_name = 'events' \
                       AND range_end <= $1::timestamptz",
                    &[&cutoff],
                )
                .await
                .map_err(StoreError::db("listing event chunks"))?;
            let chunks: i64 = r.get(0);
            let end: Option<DateTime<Utc>> = r.get(1);
            let rows = match end {
                Some(end) => count_before(&tx, end).await?,
                None => 0,
            };
            if !dry_run && chunks > 0 {
                tx.query("SELECT drop_chunks('events', older_than => $1::timestamptz)", &[&cutoff])
                    .await
                    .map_err(StoreError::db("dropping event chunks"))?;
            }
            (rows, n(chunks))
        }
        StorageMode::Native => {
            let days = expired_partitions(&tx, cutoff).await?;
            let rows = match days.last() {
                Some(last) => count_before(&tx, day_start(*last + Duration::days(1))).await?,
                None => 0,
            };
            if !dry_run {
                for day in &days {
                    // The name is formatted from a parsed date: never from input.
                    let sql = format!("DROP TABLE {}", partition_name(*day));
                    tx.batch_execute(&sql).await.map_err(StoreError::db("dropping an event partition"))?;
                }
            }
            (rows, days.len() as u64)
        }
    };
    tx.commit().await.map_err(StoreError::db("committing the events drop"))?;
    Ok((rows, chunks, 0))
}

async fn count_before(tx: &tokio_postgres::Transaction<'_>, end: DateTime<Utc>) -> Result<u64, StoreError> {
    let r = tx
        .query_one("SELECT count(*) FROM events WHERE time < $1::timestamptz", &[&end])
        .await
        .map_err(StoreError::db("counting expired events"))?;
    Ok(n(r.get(0)))
}

fn partition_name(day: NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

/// Daily partitions of `events` (named `events_pYYYYMMDD` by
/// `vigil_ensure_event_partitions`) that end at or before `cutoff`, oldest first.
async fn expired_partitions(
    tx: &tokio_postgres::Transaction<'_>,
    cutoff: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, StoreError> {
    let rows = tx
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await
        .map_err(StoreError::db("listing event partitions"))?;
    let mut days: Vec<NaiveDate> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            NaiveDate::parse_from_str(name.strip_prefix("events_p")?, "%Y%m%d").ok()
        })
        .filter(|d| day_start(*d + Duration::days(1)) <= cutoff)
        .collect();
    days.sort();
    Ok(days)
}

/// Deletes events of one kind older than `cutoff`, with their vectors, in
/// batches. A dry run counts rows from `not_before` on (what an earlier step
/// of the pass would have left).
async fn delete_kind(
    pool: &Pool,
    kind: Kind,
    cutoff: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
    batch: i64,
    dry_run: bool,
) -> Result<Counts, StoreError> {
    let client = pool.get().await?;
    let kind = kind.as_str();
    if dry_run {
        let r = client
            .query_one(
                "SELECT (SELECT count(*) FROM events WHERE kind = $1::text AND time < $2::timestamptz \
                   AND ($3::timestamptz IS NULL OR time >= $3::timestamptz)), \
                        (SELECT count(*) FROM event_embeddings v JOIN events e ON e.event_id = v.event_id \
                          AND e.time = v.time WHERE e.kind = $1::text AND e.time < $2::timestamptz \
                          AND ($3::timestamptz IS NULL OR e.time >= $3::timestamptz))",
                &[&kind, &cutoff, &not_before],
            )
            .await
            .map_err(StoreError::db("counting expired events of a kind"))?;
        return Ok((n(r.get(0)), 0, n(r.get(1))));
    }
    let (mut rows, mut related) = (0u64, 0u64);
    loop {
        let r = client
            .query_one(
                "WITH d AS (DELETE FROM events WHERE (event_id, time) IN \
                     (SELECT event_id, time FROM events WHERE kind = $1::text AND time < $2::timestamptz LIMIT $3::bigint) \
                     RETURNING event_id, time), \
                 v AS (DELETE FROM event_embeddings e USING d WHERE e.event_id = d.event_id AND e.time = d.time RETURNING 1) \
                 SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM v)",
                &[&kind, &cutoff, &batch],
            )
            .await
            .map_err(StoreError::db("deleting expired events of a kind"))?;
        let (d, v): (i64, i64) = (r.get(0), r.get(1));
        rows += n(d);
        related += n(v);
        if d < batch {
            return Ok((rows, 0, related));
        }
    }
}

/// Vectors of events older than the longest event retention: whole chunks on
/// TimescaleDB, batched deletes on the native path (one plain table there).
async fn drop_embeddings(
    pool: &Pool,
    mode: StorageMode,
    cutoff: DateTime<Utc>,
    batch: i64,
    dry_run: bool,
) -> Result<Counts, StoreError> {
    let client = pool.get().await?;
    match mode {
        StorageMode::TimescaleDb => {
            let r = client
                .query_one(
                    "SELECT count(*), max(range_end) FROM timescaledb_information.chunks \
                     WHERE hypertable_schema = current_schema() AND hypertable_name = 'event_embeddings' \
                       AND range_end <= $1::timestamptz",
                    &[&cutoff],
                )
                .await
                .map_err(StoreError::db("listing vector chunks"))?;
            let (chunks, end): (i64, Option<DateTime<Utc>>) = (r.get(0), r.get(1));
            let rows = match end {
                Some(end) => n(client
                    .query_one("SELECT count(*) FROM event_embeddings WHERE time < $1::timestamptz", &[&end])
                    .await
                    .map_err(StoreError::db("counting expired vectors"))?
                    .get(0)),
                None => 0,
            };
            if !dry_run && chunks > 0 {
                client
                    .query("SELECT drop_chunks('event_embeddings', older_than => $1::timestamptz)", &[&cutoff])
                    .await
                    .map_err(StoreError::db("dropping vector chunks"))?;
            }
            Ok((rows, n(chunks), 0))
        }
        StorageMode::Native => {
            if dry_run {
                let r = client
                    .query_one("SELECT count(*) FROM event_embeddings WHERE time < $1::timestamptz", &[&cutoff])
                    .await
                    .map_err(StoreError::db("counting expired vectors"))?;
                return Ok((n(r.get(0)), 0, 0));
            }
            let mut rows = 0;
            loop {
                let d = client
                    .execute(
                        "DELETE FROM event_embeddings WHERE ctid IN \
                         (SELECT ctid FROM event_embeddings WHERE time < $1::timestamptz LIMIT $2::bigint)",
                        &[&cutoff, &batch],
                    )
                    .await
                    .map_err(StoreError::db("deleting expired vectors"))?;
                rows += d;
                if (d as i64) < batch {
                    return Ok((rows, 0, 0));
                }
            }
        }
    }
}

/// Vectors of texts no event refers to any more, created before `grace`.
async fn delete_orphan_texts(
    pool: &Pool,
    grace: DateTime<Utc>,
    batch: i64,
    dry_run: bool,
) -> Result<Counts, StoreError> {
    let client = pool.get().await?;
    const ORPHANS: &str = "SELECT id FROM embedding_texts t WHERE created_at < $1::timestamptz \
                           AND NOT EXISTS (SELECT 1 FROM event_embeddings v WHERE v.text_id = t.id)";
    if dry_run {
        let r = client
            .query_one(&format!("SELECT count(*) FROM ({ORPHANS}) AS o"), &[&grace])
            .await
            .map_err(StoreError::db("counting unreferenced vectors"))?;
        return Ok((n(r.get(0)), 0, 0));
    }
    let mut rows = 0;
    loop {
        let d = client
            .execute(
                &format!("DELETE FROM embedding_texts WHERE id IN ({ORPHANS} LIMIT $2::bigint)"),
                &[&grace, &batch],
            )
            .await
            .map_err(StoreError::db("deleting unreferenced vectors"))?;
        rows += d;
        if (d as i64) < batch {
            return Ok((rows, 0, 0));
        }
    }
}

/// The time expression of `t` (see [`Table::time_expr`]), or `None` when the table does not exist.
async fn time_column(client: &deadpool_postgres::Client, t: Table) -> Result<Option<&'static str>, StoreError> {
    let rows = client
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1::text",
            &[&t.table()],
        )
        .await
        .map_err(StoreError::db("looking up a table's columns"))?;
    let have: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(t.time_expr(&have))
}

/// Deletes a table's rows older than `cutoff`, in batches.
async fn delete_table(
    pool: &Pool,
    t: Table,
    cutoff: DateTime<Utc>,
    batch: i64,
    dry_run: bool,
) -> Result<Counts, StoreError> {
    let client = pool.get().await?;
    let Some(col) = time_column(&client, t).await? else {
        return Err(StoreError::Unsupported(MISSING.into()));
    };
    let table = t.table();
    if dry_run {
        let r = client
            .query_one(&format!("SELECT count(*) FROM {table} WHERE {col} < $1::timestamptz"), &[&cutoff])
            .await
            .map_err(StoreError::db(format!("counting expired rows of {table}")))?;
        return Ok((n(r.get(0)), 0, 0));
    }
    let sql = format!(
        "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {col} < $1::timestamptz LIMIT $2::bigint)"
    );
    let mut rows = 0;
    loop {
        let d = client
            .execute(&sql, &[&cutoff, &batch])
            .await
            .map_err(StoreError::db(format!("deleting expired rows of {table}")))?;
        rows += d;
        if (d as i64) < batch {
            return Ok((rows, 0, 0));
        }
    }
}

// ------------------------------------------------------------ rollups

/// The rollup statement: moves the raw metric rows of `[$1, $2)` into
/// `metric_rollups` (and deletes their vectors), returning (raw rows moved,
/// rollup rows written).
const ROLL_UP_SQL: &str = "\
WITH moved AS (
    DELETE FROM events WHERE kind = 'metric' AND time >= $1::timestamptz AND time < $2::timestamptz
    RETURNING event_id, time, tenant, host, source, raw
), vectors AS (
    DELETE FROM event_embeddings v USING moved m WHERE v.event_id = m.event_id AND v.time = m.time RETURNING 1
), obs AS (
    SELECT date_bin('1 hour', m.time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           m.tenant, coalesce(m.host, '') AS host, m.source,
           coalesce(vigil_json_text(m.raw -> 'metric'), '') AS metric,
           coalesce(vigil_json_text(m.raw -> 'mount'), vigil_json_text(m.raw -> 'interface'), '') AS series,
           f.field, f.v
    FROM moved m
    CROSS JOIN LATERAL (
        SELECT ''::text AS field, NULL::float8 AS v
        UNION ALL
        SELECT j.key, j.value::float8
        FROM jsonb_each(CASE WHEN jsonb_typeof(m.raw) = 'object' THEN m.raw ELSE '{}'::jsonb END) AS j
        WHERE jsonb_typeof(j.value) = 'number' AND abs(j.value::numeric) < 1e300
    ) AS f
), added AS (
    INSERT INTO metric_rollups AS r (bucket, tenant, host, source, metric, series, field, count, sum, min, max)
    SELECT bucket, tenant, host, source, metric, series, field, count(*), sum(v), min(v), max(v)
    FROM obs GROUP BY bucket, tenant, host, source, metric, series, field
    ON CONFLICT (bucket, tenant, host, source, metric, series, field) DO UPDATE SET
        count = r.count + EXCLUDED.count,
        sum = CASE WHEN r.sum IS NULL THEN EXCLUDED.sum WHEN EXCLUDED.sum IS NULL THEN r.sum
                   ELSE r.sum + EXCLUDED.sum END,
        min = least(r.min, EXCLUDED.min),
        max = greatest(r.max, EXCLUDED.max)
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added), (SELECT count(*) FROM vectors)";

/// Moves every raw metric row older than `cutoff` (an hour boundary) into
/// hourly rollups, a few hours per transaction, oldest first, then records
/// `cutoff` as the rollup boundary. Returns (raw rows moved, 0, rollup rows
/// written); on a dry run, the raw rows that would move.
pub async fn roll_up(pool: &Pool, cutoff: DateTime<Utc>, dry_run: bool) -> Result<Counts, StoreError> {
    let client = pool.get().await?;
    let first: Option<DateTime<Utc>> = client
        .query_one("SELECT min(time) FROM events WHERE kind = 'metric' AND time < $1::timestamptz", &[&cutoff])
        .await
        .map_err(StoreError::db("finding metrics to roll up"))?
        .get(0);
    if dry_run {
        let r = client
            .query_one("SELECT count(*) FROM events WHERE kind = 'metric' AND time < $1::timestamptz", &[&cutoff])
            .await
            .map_err(StoreError::db("counting metrics to roll up"))?;
        return Ok((n(r.get(0)), 0, 0));
    }
    let (mut moved, mut written) = (0u64, 0u64);
    if let Some(first) = first {
        let mut lo = floor_hour(first);
        while lo < cutoff {
            let hi = (lo + Duration::hours(ROLLUP_STEP_HOURS)).min(cutoff);
            let r = client.query_one(ROLL_UP_SQL, &[&lo, &hi]).await.map_err(StoreError::db("rolling metrics up"))?;
            moved += n(r.get(0));
            written += n(r.get(1));
            lo = hi;
        }
    }
    client
        .execute(
            "INSERT INTO metric_rollup_state (singleton, rolled_up_before) VALUES (true, $1::timestamptz) \
             ON CONFLICT (singleton) DO UPDATE SET \
                 rolled_up_before = greatest(metric_rollup_state.rolled_up_before, EXCLUDED.rolled_up_before), \
                 updated_at = now()",
            &[&cutoff],
        )
        .await
        .map_err(StoreError::db("recording the rollup boundary"))?;
    Ok((moved, 0, written))
}

/// The rollup boundary: metric rows before it are in `metric_rollups`, not in
/// `events`. `None` before the first rollup (or on a database without rollups).
pub async fn rollup_boundary(pool: &Pool) -> Result<Option<DateTime<Utc>>, StoreError> {
    let client = pool.get().await?;
    match client.query_opt("SELECT rolled_up_before FROM metric_rollup_state", &[]).await {
        Ok(r) => Ok(r.map(|r| r.get(0))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(StoreError::Db { context: "reading the rollup boundary".into(), source: e }),
    }
}

/// Records a pass in `retention_runs` (dry runs too); returns its id.
pub async fn record(pool: &Pool, report: &RetentionReport) -> Result<i64, StoreError> {
    let client = pool.get().await?;
    let json = serde_json::to_value(report).unwrap_or_default();
    let r = client
        .query_one(
            "INSERT INTO retention_runs (started_at, finished_at, dry_run, ok, report) \
             VALUES ($1::timestamptz, $2::timestamptz, $3::boolean, $4::boolean, $5::jsonb) RETURNING id",
            &[&report.started, &report.finished, &report.dry_run, &report.ok(), &json],
        )
        .await
        .map_err(StoreError::db("recording a retention run"))?;
    Ok(r.get(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_the_syntax() {
        let p = RetentionPolicy::default();
        assert_eq!(RetentionPolicy::parse(&p.to_string()).unwrap(), p);
        assert_eq!(p.kind(Kind::Metric), Some(Duration::days(30)));
        assert_eq!(p.kind(Kind::Alert), Some(Duration::days(365)));
        assert_eq!(p.table(Table::DeadLetters), Some(Duration::days(14)));
        assert_eq!(p.longest_event_keep(), Some(Duration::days(365)));
    }

    #[test]
    fn parses_overrides() {
        let p = RetentionPolicy::parse(" metric=60d, auth=2w ,alert=off,audit=12h,rollup_after=7d ").unwrap();
        assert_eq!(p.kind(Kind::Metric), Some(Duration::days(60)));
        assert_eq!(p.kind(Kind::Auth), Some(Duration::weeks(2)));
        assert_eq!(p.kind(Kind::Alert), None);
        assert_eq!(p.longest_event_keep(), None);
        assert_eq!(p.table(Table::Audit), Some(Duration::hours(12)));
        assert_eq!(p.rollup_after, Some(Duration::days(7)));
        let all = RetentionPolicy::parse("events=10d,rollup_after=off").unwrap();
        assert!(Kind::ALL.iter().all(|k| all.kind(*k) == Some(Duration::days(10))));
        assert_eq!(RetentionPolicy::parse("").unwrap(), RetentionPolicy::default());
    }

    #[test]
    fn bad_policies_name_the_part() {
        let err = |s: &str| RetentionPolicy::parse(s).unwrap_err().to_string();
        let e = err("metric=30d,alret=365d");
        assert!(e.contains("`alret=365d`") && e.contains("unknown key `alret`") && e.contains("alert"), "{e}");
        let e = err("metric=30x");
        assert!(e.contains("`metric=30x`") && e.contains("unit must be h, d or w"), "{e}");
        let e = err("audit=soon");
        assert!(e.contains("`audit=soon`") && e.contains("not a duration"), "{e}");
        let e = err("metric");
        assert!(e.contains("`metric`") && e.contains("key=value"), "{e}");
        let e = err("log=0d");
        assert!(e.contains("`log=0d`") && e.contains("use `off`"), "{e}");
        let e = err("metric=7d");
        assert!(e.contains("metric=7d,rollup_after=30d") && e.contains("before they are rolled up"), "{e}");
        let e = err("events=7d,rollup_after=10d");
        assert!(e.contains("metric=7d,rollup_after=10d"), "{e}");
        let e = err("rollups=7d");
        assert!(e.contains("rollups=7d,rollup_after=30d"), "{e}");
    }

    #[test]
    fn cutoffs() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 34, 56).unwrap();
        let p = RetentionPolicy::default();
        assert_eq!(p.rollup_cutoff(now), Some(Utc.with_ymd_and_hms(2026, 2, 8, 12, 0, 0).unwrap()));
        assert_eq!(p.events_cutoff(now), Some(now - Duration::days(365)));
        assert_eq!(
            floor_hour(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()).to_rfc3339(),
            "1999-12-31T23:00:00+00:00"
        );
    }
}
