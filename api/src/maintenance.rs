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

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RowLabels {
    target: String,
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

/// What the passes did; rows and chunks per (target, action) are summed
/// over real passes only.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceMetrics {
    runs: Counter,
    failed_runs: Counter,
    skipped_runs: Counter,
    last_run_unix: Gauge,
    last_run_seconds: Gauge<f64, AtomicU64>,
    rows: Family<RowLabels, Counter>,
    chunks: Family<TargetLabel, Counter>,
}

impl MaintenanceMetrics {
    /// Counters registered in `registry` as `<prefix>_maintenance_*` and `<prefix>_retention_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("maintenance");
        r.register("runs", "Maintenance passes", m.runs.clone());
        r.register("failed_runs", "Maintenance passes with a failed step", m.failed_runs.clone());
        r.register("skipped_runs", "Maintenance passes skipped for another process's lock", m.skipped_runs.clone());
        r.register("last_run_timestamp_seconds", "When the last pass finished", m.last_run_unix.clone());
        r.register("last_run_duration_seconds", "How long the last pass took", m.last_run_seconds.clone());
        let r = registry.sub_registry_with_prefix("retention");
        r.register("rows", "Rows removed or rolled up, by target and action", m.rows.clone());
        r.register("chunks_dropped", "Chunks or partitions dropped, by target", m.chunks.clone());
        m
    }

    fn pass_done(&self, report: &RetentionReport) {
        self.runs.inc();
        if !report.ok() {
            self.failed_runs.inc();
        }
        self.last_run_unix.set(report.finished.timestamp());
        let ms = (report.finished - report.started).num_milliseconds().max(0);
        self.last_run_seconds.set(ms as f64 / 1000.0);
        if report.dry_run {
            return;
        }
        for s in &report.steps {
            let labels = RowLabels { target: s.target.clone(), action: action_name(s.action) };
            self.rows.get_or_create(&labels).inc_by(s.rows);
            if s.chunks > 0 {
                self.chunks.get_or_create(&TargetLabel { target: s.target.clone() }).inc_by(s.chunks);
            }
        }
    }

    fn pass_skipped(&self) {
        self.skipped_runs.inc();
    }

    fn pass_failed(&self, e: &StoreError) {
        self.failed_runs.inc();
        tracing::warn!("maintenance: pass failed: {e}");
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::DropChunks => "drop_chunks",
        Action::DropPartitions => "drop_partitions",
        Action::Delete => "delete",
        Action::RollUp => "roll_up",
    }
}

// ------------------------------------------------------------ a pass

/// One pass at `now`: PostgreSQL, then the BM25 index (if given; skipped on
/// a dry run, where it would mirror what PostgreSQL reports). Recorded in
/// `retention_runs` and counted in `metrics`. `Ok(None)` when another
/// process holds the maintenance lock.
pub async fn pass(
    pool: &Pool,
    policy: &RetentionPolicy,
    text_index: Option<&Arc<TextIndex>>,
    now: DateTime<Utc>,
    opts: RunOptions,
    metrics: &MaintenanceMetrics,
) -> Result<Option<RetentionReport>, StoreError> {
    let lock = pool.get().await?;
    let got: bool = lock
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(StoreError::db("taking the maintenance lock"))?
        .get(0);
    if !got {
        metrics.pass_skipped();
        return Ok(None);
    }
    let result = pass_locked(pool, policy, text_index, now, opts, metrics).await;
    let _ = lock.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]).await;
    result.map(Some)
}

async fn pass_locked(
    pool: &Pool,
    policy: &RetentionPolicy,
    text_index: Option<&Arc<TextIndex>>,
    now: DateTime<Utc>,
    opts: RunOptions,
    metrics: &MaintenanceMetrics,
) -> Result<RetentionReport, StoreError> {
    let mut report = retention::run(pool, policy, now, opts).await?;
    if let (Some(index), false) = (text_index, opts.dry_run) {
        let steps = bm25(index.clone(), policy, now).await;
        report.steps.extend(steps);
    }
    report.finished = Utc::now().max(report.started);
    metrics.pass_done(&report);
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

/// Starts the loop (unless `cfg.every` is off), counted in `registry`; it
/// stops with `stop`.
pub fn start(
    pool: &Pool,
    cfg: MaintenanceConfig,
    text_index: Option<Arc<TextIndex>>,
    stop: Shutdown,
    registry: &mut Registry,
) {
    let metrics = MaintenanceMetrics::register(registry);
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
            let work = pass(&pool, &cfg.policy, text_index.as_ref(), Utc::now(), opts, &metrics);
            let outcome = tokio::select! {
                _ = stop.wait() => return,
                r = work => r,
            };
            match outcome {
                Ok(Some(r)) => log(&r),
                Ok(None) => tracing::info!("maintenance: another process is running a pass; skipped"),
                Err(e) => metrics.pass_failed(&e),
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
