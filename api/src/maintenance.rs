//! The maintenance loop: retention and metric rollups
//! ([`vigil_store::retention`], docs/retention.md), run by `vigil serve` and
//! `vigil up` every hour (`VIGIL_MAINTENANCE_EVERY`, e.g. `30m`, `6h`, `off`)
//! with the policy in `VIGIL_RETENTION`, and once by `vigil retention run`.
//!
//! A pass rolls metrics up, applies retention in PostgreSQL, then removes
//! what went from the BM25 index (which lives outside PostgreSQL), records
//! itself in `retention_runs` and updates the counters `/metrics` shows.
//! Passes are serialised across processes by an advisory lock: with several
//! servers on one database, one of them does the work.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_fulltext::TextIndex;
use vigil_ingest::shutdown::Shutdown;
use vigil_store::retention::{self, Action, RetentionPolicy, RetentionReport, RunOptions, StepReport};
use vigil_store::{Pool, StoreError};

/// Advisory lock key of a maintenance pass ("vigilret" in ASCII).
const LOCK: i64 = 0x76_69_67_69_6c_72_65_74;
/// The first pass waits this long after start, so it never competes with start-up.
const FIRST_PASS_DELAY: Duration = Duration::from_secs(60);

/// What the loop runs and how often.
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    pub policy: RetentionPolicy,
    /// Between passes; `None`: the loop does not run.
    pub every: Option<Duration>,
    pub batch: i64,
}

impl MaintenanceConfig {
    /// From the server's configuration (`VIGIL_RETENTION`, `VIGIL_MAINTENANCE_EVERY`).
    pub fn new(settings: &crate::config::MaintenanceSettings) -> Self {
        MaintenanceConfig {
            policy: (*settings.retention).clone(),
            every: settings.maintenance_every.0,
            batch: retention::DEFAULT_BATCH,
        }
    }
}

/// `30m`, `1h`, `6h`, `1d` or `off`.
pub fn parse_every(v: &str) -> Result<Option<Duration>, String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{v}` is not an interval like 30m, 1h or 1d (or `off`)"))?;
    let secs = match unit {
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{v}`: the unit must be m, h or d (like 1h), or the value `off`")),
    };
    if secs < 60 {
        return Err(format!("`{v}` is shorter than a minute"));
    }
    Ok(Some(Duration::from_secs(secs)))
}

// ------------------------------------------------------------ counters

static RUNS: AtomicU64 = AtomicU64::new(0);
static FAILED_RUNS: AtomicU64 = AtomicU64::new(0);
static SKIPPED_RUNS: AtomicU64 = AtomicU64::new(0);
static LAST_RUN_UNIX: AtomicI64 = AtomicI64::new(0);
static LAST_RUN_MS: AtomicU64 = AtomicU64::new(0);

/// Rows and chunks per (target, action), summed over real passes.
#[derive(Default)]
struct Totals {
    rows: BTreeMap<(String, &'static str), u64>,
    chunks: BTreeMap<String, u64>,
}

fn totals() -> &'static Mutex<Totals> {
    static T: std::sync::OnceLock<Mutex<Totals>> = std::sync::OnceLock::new();
    T.get_or_init(Default::default)
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::DropChunks => "drop_chunks",
        Action::DropPartitions => "drop_partitions",
        Action::Delete => "delete",
        Action::RollUp => "roll_up",
    }
}

fn count(report: &RetentionReport) {
    RUNS.fetch_add(1, Ordering::Relaxed);
    if !report.ok() {
        FAILED_RUNS.fetch_add(1, Ordering::Relaxed);
    }
    LAST_RUN_UNIX.store(report.finished.timestamp(), Ordering::Relaxed);
    let ms = (report.finished - report.started).num_milliseconds().max(0) as u64;
    LAST_RUN_MS.store(ms, Ordering::Relaxed);
    if report.dry_run {
        return;
    }
    let Ok(mut t) = totals().lock() else { return };
    for s in &report.steps {
        *t.rows.entry((s.target.clone(), action_name(s.action))).or_default() += s.rows;
        if s.chunks > 0 {
            *t.chunks.entry(s.target.clone()).or_default() += s.chunks;
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The maintenance counters in Prometheus text.
pub fn render_metrics() -> String {
    let mut out = format!(
        "# TYPE vigil_maintenance_runs_total counter\nvigil_maintenance_runs_total {}\n\
         # TYPE vigil_maintenance_failed_runs_total counter\nvigil_maintenance_failed_runs_total {}\n\
         # TYPE vigil_maintenance_skipped_runs_total counter\nvigil_maintenance_skipped_runs_total {}\n\
         # TYPE vigil_maintenance_last_run_timestamp_seconds gauge\nvigil_maintenance_last_run_timestamp_seconds {}\n\
         # TYPE vigil_maintenance_last_run_duration_seconds gauge\nvigil_maintenance_last_run_duration_seconds {:.3}\n",
        RUNS.load(Ordering::Relaxed),
        FAILED_RUNS.load(Ordering::Relaxed),
        SKIPPED_RUNS.load(Ordering::Relaxed),
        LAST_RUN_UNIX.load(Ordering::Relaxed),
        LAST_RUN_MS.load(Ordering::Relaxed) as f64 / 1000.0,
    );
    if let Ok(t) = totals().lock() {
        out.push_str("# TYPE vigil_retention_rows_total counter\n");
        for ((target, action), n) in &t.rows {
            out.push_str(&format!(
                "vigil_retention_rows_total{{target=\"{}\",action=\"{action}\"}} {n}\n",
                label(target)
            ));
        }
        out.push_str("# TYPE vigil_retention_chunks_dropped_total counter\n");
        for (target, n) in &t.chunks {
            out.push_str(&format!("vigil_retention_chunks_dropped_total{{target=\"{}\"}} {n}\n", label(target)));
        }
    }
    out
}

// ------------------------------------------------------------ a pass

/// One pass at `now`: PostgreSQL, then the BM25 index (if given; skipped on
/// a dry run, where it would mirror what PostgreSQL reports). Recorded in
/// `retention_runs` and counted. `Ok(None)` when another process holds the
/// maintenance lock.
pub async fn pass(
    pool: &Pool,
    policy: &RetentionPolicy,
    text_index: Option<&Arc<TextIndex>>,
    now: DateTime<Utc>,
    opts: RunOptions,
) -> Result<Option<RetentionReport>, StoreError> {
    let lock = pool.get().await?;
    let got: bool = lock
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(StoreError::db("taking the maintenance lock"))?
        .get(0);
    if !got {
        SKIPPED_RUNS.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    let result = pass_locked(pool, policy, text_index, now, opts).await;
    let _ = lock.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]).await;
    result.map(Some)
}

async fn pass_locked(
    pool: &Pool,
    policy: &RetentionPolicy,
    text_index: Option<&Arc<TextIndex>>,
    now: DateTime<Utc>,
    opts: RunOptions,
) -> Result<RetentionReport, StoreError> {
    let mut report = retention::run(pool, policy, now, opts).await?;
    if let (Some(index), false) = (text_index, opts.dry_run) {
        let steps = bm25(index.clone(), policy, now).await;
        report.steps.extend(steps);
    }
    report.finished = Utc::now().max(report.started);
    count(&report);
    if let Err(e) = retention::record(pool, &report).await {
        tracing::warn!("maintenance: could not record the pass: {e}");
    }
    Ok(report)
}

/// Removes from the BM25 index what retention and rollups removed from PostgreSQL.
async fn bm25(index: Arc<TextIndex>, policy: &RetentionPolicy, now: DateTime<Utc>) -> Vec<StepReport> {
    let mut jobs: Vec<(String, Option<&'static str>, DateTime<Utc>)> = Vec::new();
    if let Some(c) = policy.events_cutoff(now) {
        jobs.push(("bm25".into(), None, c));
    }
    for (kind, c) in policy.kind_cutoffs(now) {
        jobs.push((format!("bm25[kind={kind}]"), Some(kind.as_str()), c));
    }
    // Metrics kept forever as rows but rolled up: their documents go when they move.
    if let (None, Some(c)) = (policy.kind(vigil_event::Kind::Metric), policy.rollup_cutoff(now)) {
        jobs.push(("bm25[kind=metric]".into(), Some("metric"), c));
    }
    let run = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|(target, kind, cutoff)| {
                let t = std::time::Instant::now();
                let mut step = StepReport::new(target, Action::Delete, Some(cutoff));
                let res = match kind {
                    None => index.delete_before(cutoff),
                    Some(k) => index.delete_kind_before(k, cutoff),
                };
                match res {
                    Ok(n) => step.rows = n,
                    Err(e) => step.error = Some(e.to_string()),
                }
                step.took_ms = t.elapsed().as_millis() as u64;
                step
            })
            .collect::<Vec<_>>()
    });
    match run.await {
        Ok(steps) => steps,
        Err(e) => {
            let mut step = StepReport::new("bm25", Action::Delete, None);
            step.error = Some(format!("the BM25 retention task failed: {e}"));
            vec![step]
        }
    }
}

// ------------------------------------------------------------ the loop

/// Starts the loop (unless `cfg.every` is off); it stops with `stop`.
pub fn start(pool: &Pool, cfg: MaintenanceConfig, text_index: Option<Arc<TextIndex>>, stop: Shutdown) {
    let Some(every) = cfg.every else {
        tracing::info!("maintenance: off (VIGIL_MAINTENANCE_EVERY=off)");
        return;
    };
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut delay = FIRST_PASS_DELAY.min(every);
        loop {
            tokio::select! {
                _ = stop.wait() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = every;
            let opts = RunOptions { dry_run: false, batch: cfg.batch };
            // A pass stops at the next statement when the server stops.
            let work = pass(&pool, &cfg.policy, text_index.as_ref(), Utc::now(), opts);
            let outcome = tokio::select! {
                _ = stop.wait() => return,
                r = work => r,
            };
            match outcome {
                Ok(Some(r)) => log(&r),
                Ok(None) => tracing::info!("maintenance: another process is running a pass; skipped"),
                Err(e) => {
                    FAILED_RUNS.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("maintenance: pass failed: {e}");
                }
            }
        }
    });
}

fn log(r: &RetentionReport) {
    let did: Vec<String> =
        r.steps.iter().filter(|s| s.rows > 0 || s.chunks > 0).map(|s| format!("{} {}", s.target, s.rows)).collect();
    let failed: Vec<String> =
        r.steps.iter().filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.target))).collect();
    if failed.is_empty() {
        tracing::info!(
            "maintenance: pass done: {}",
            if did.is_empty() { "nothing to do".into() } else { did.join(", ") }
        );
    } else {
        tracing::warn!("maintenance: pass done with errors: {}; did: {}", failed.join("; "), did.join(", "));
    }
}
