//! The PostgreSQL side of the graph: a tailing worker ([`GraphSync`]) that
//! reads `events` in ingestion order ([`vigil_store::tail::Tail`], watermark
//! `graph`) and keeps these tables up to date, **exactly once per event**:
//!
//! - `connections`: network events with both addresses aggregated into edges
//!   keyed by (src_ip, src_process, dst_ip, dst_port, protocol): first/last
//!   seen, count, and bytes from the raw record (agent `bytes`, Zeek
//!   `orig_bytes + resp_bytes`, Suricata `flow.bytes_toserver +
//!   flow.bytes_toclient`; see `vigil_event_bytes` in migration 0009). The
//!   source host is the event's `host` when the source reports its own
//!   connections ([`GraphSync::with_agent_sources`], default `vigil-agent`),
//!   else the `hosts` row with that address; the destination host likewise
//!   from `hosts`; NULL when unknown.
//! - `packages` / `package_files`: the installed-package inventory from
//!   `package` events (`raw.package`, `version`, `manager`, `action`, `files`).
//! - `running_processes`: process launches (activity 1) insert or replace
//!   (host, pid) with the executable path; terminations (activity 2) delete it.
//!   Missed events leave it stale until the agent's periodic snapshot (a
//!   launch per live process, a termination per vanished one) corrects it.
//! - `vulnerabilities`: vuln events (Trivy) upserted per (host, CVE, package),
//!   then every vulnerability of each host the page touched (new reports,
//!   package changes, processes started or stopped) re-classified `running`
//!   (an installed package of that name owns a file that is the executable of
//!   a running process on that host), `fixed` (the inventory changed the
//!   package since the last report and no longer has the reported version),
//!   or `dormant`.
//! - `alerts`: when a vulnerability becomes `running`, one critical alert
//!   (rule `vulnerable-and-running`) with a deterministic id
//!   ([`vuln_alert_id`]), so it is raised once per host, CVE and package. It
//!   stays (with its triage state) when the process stops and the
//!   vulnerability goes back to `dormant`; running again raises nothing new.
//!
//! # Exactly once
//!
//! Each page is aggregated in SQL straight from `events` over the page's
//! `(ingested_at, event_id)` range (`sql.rs`), and the new watermark is saved
//! in the same REPEATABLE READ transaction ([`vigil_store::tail::Tail::save_in`]).
//! A crash or restart before the commit rolls everything back and the page is
//! read again; after the commit, the watermark is past it. An event
//! re-delivered with the same id is one row in `events` (the writer's
//! idempotency), so it is counted once. Two workers with the same tail name
//! never both apply a page: the second finds the watermark moved (or fails to
//! serialize) and leaves the page to the first ([`SyncStats::conflicted`]).
//!
//! Within and across pages, state follows event time, not arrival order: the
//! newest package event per package wins, a process termination removes only
//! a process started at or before it, and a vulnerability's versions come
//! from its newest report.

mod sql;
mod stats;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, Transaction};
use uuid::Uuid;
use vigil_store::tail::{Tail, Watermark};
use vigil_store::{Pool, StoreError};

pub use stats::{SyncCounters, SyncStats};

/// The tail (watermark) name the graph sync uses by default.
pub const TAIL_NAME: &str = "graph";

/// The rule name of the alert raised when a vulnerable binary runs.
pub const VULN_RUNNING_RULE: &str = "vulnerable-and-running";

/// Namespace of [`vuln_alert_id`] (a UUIDv5 namespace; fixed forever, or
/// alerts would be raised again).
pub const VULN_ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x3d0c_51a7_8e24_4f6b_9c1d_52e8_b7a4_0f93);

/// OCSF severity of the alert: critical (P0).
const ALERT_SEVERITY: i16 = 5;

/// The id of the `vulnerable-and-running` alert for one vulnerability:
/// UUIDv5 of `host|cve|package` in [`VULN_ALERT_NAMESPACE`].
pub fn vuln_alert_id(host: &str, cve: &str, package: &str) -> Uuid {
    Uuid::new_v5(&VULN_ALERT_NAMESPACE, format!("{host}|{cve}|{package}").as_bytes())
}

/// Why a sync pass failed. The pass is rolled back whole; retrying is safe.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// Whether retrying later can succeed (the database is unreachable, a
    /// serialization failure) as opposed to a bug or a schema problem.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Store(e) => e.is_transient(),
        }
    }

    /// The SQLSTATE of the database error behind this one, if any.
    fn sql_state(&self) -> Option<&SqlState> {
        match self {
            SyncError::Store(StoreError::Db { source, .. }) => source.code(),
            SyncError::Store(_) => None,
        }
    }
}

fn db(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SyncError {
    move |source| SyncError::Store(StoreError::Db { context: context.to_string(), source })
}

/// The worker that keeps connections, packages, running processes,
/// vulnerabilities and their alerts up to date from `events`.
#[derive(Debug)]
pub struct GraphSync {
    tail: Tail,
    page: i64,
    idle: Duration,
    agent_sources: Vec<String>,
    counters: SyncCounters,
}

impl Default for GraphSync {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphSync {
    /// A worker on the tail [`TAIL_NAME`], pages of 5,000 events, polling every
    /// second when idle, the tail's default settle window (5 s).
    pub fn new() -> Self {
        GraphSync {
            tail: Tail::new(TAIL_NAME),
            page: 5_000,
            idle: Duration::from_secs(1),
            agent_sources: vec!["vigil-agent".to_string()],
            counters: SyncCounters::default(),
        }
    }

    /// Another watermark name (a second, independent graph over the same events).
    pub fn with_name(mut self, name: &str) -> Self {
        self.tail = Tail::new(name).with_settle(self.tail.settle());
        self
    }

    /// Events younger than this are left for a later pass (see
    /// [`vigil_store::tail`]); tests use zero.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.tail = self.tail.with_settle(settle);
        self
    }

    /// At most this many events per page (and per transaction); at least 1.
    pub fn with_page_size(mut self, events: i64) -> Self {
        self.page = events.max(1);
        self
    }

    /// How long [`GraphSync::run`] waits after a page that was not full.
    pub fn with_idle_interval(mut self, every: Duration) -> Self {
        self.idle = every;
        self
    }

    /// The event sources that report their own host's connections, so an
    /// event's `host` is the connection's source host (default `vigil-agent`).
    pub fn with_agent_sources<S: Into<String>>(mut self, sources: impl IntoIterator<Item = S>) -> Self {
        self.agent_sources = sources.into_iter().map(Into::into).collect();
        self
    }

    /// Counts in `counters` (registered for `/metrics`) instead of its own.
    pub fn with_counters(mut self, counters: SyncCounters) -> Self {
        self.counters = counters;
        self
    }

    /// The running totals.
    pub fn counters(&self) -> SyncCounters {
        self.counters.clone()
    }

    /// The tail this worker reads (its name, settle window, saved watermark).
    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// Processes the next page of at most the page size of events, in one
    /// transaction with its watermark. `events == 0` means caught up (for now).
    pub async fn sync_once(&self, pool: &Pool) -> Result<SyncStats, SyncError> {
        let after = self.tail.watermark(pool).await?;
        let rows = self.tail.next(pool, after, self.page).await?;
        let Some(last) = rows.last() else {
            return Ok(SyncStats::default());
        };
        let until = last.watermark();
        let outcome = self.commit_page(pool, after, until).await;
        let mut stats = match outcome {
            Ok(Some(stats)) => stats,
            Ok(None) => SyncStats { conflicted: true, ..SyncStats::default() },
            // Another worker saved first (REPEATABLE READ noticed): its page.
            Err(e) if e.sql_state() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                tracing::debug!("graph sync: page left to a concurrent worker: {e}");
                SyncStats { conflicted: true, ..SyncStats::default() }
            }
            Err(e) => return Err(e),
        };
        if !stats.conflicted {
            stats.events = rows.len() as u64;
            stats.page_full = rows.len() as i64 >= self.page;
        }
        self.counters.record(&stats, (!stats.conflicted).then_some(until));
        Ok(stats)
    }

    /// Applies `(after, until]` and saves `until`, or returns `None` when the
    /// saved watermark is no longer `after` (another worker moved it).
    async fn commit_page(
        &self,
        pool: &Pool,
        after: Option<Watermark>,
        until: Watermark,
    ) -> Result<Option<SyncStats>, SyncError> {
        let mut client = pool.get().await.map_err(StoreError::from)?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(db("starting a graph sync transaction"))?;
        if self.tail.lock_in(&tx).await? != after {
            tx.rollback().await.map_err(db("rolling back a graph sync page"))?;
            return Ok(None);
        }
        let stats = self.apply_range(&tx, after, until).await?;
        self.tail.save_in(&tx, until).await?;
        tx.commit().await.map_err(db("committing a graph sync page"))?;
        Ok(Some(stats))
    }

    /// Syncs page after page until caught up; returns the sum.
    pub async fn sync_all(&self, pool: &Pool) -> Result<SyncStats, SyncError> {
        let mut total = SyncStats::default();
        loop {
            let s = self.sync_once(pool).await?;
            total += s;
            if s.events == 0 && !s.conflicted {
                return Ok(total);
            }
        }
    }

    /// The work of one page, inside the caller's transaction: folds the events
    /// in `(after, until]` (ingestion order; `after = None` from the start)
    /// into the tables, re-classifies the hosts it touched and raises alerts.
    ///
    /// Low level: this does **not** move the watermark. Commit it only
    /// together with [`Tail::save_in`] of `until` (what [`GraphSync::sync_once`]
    /// does), or roll it back, or events are counted twice. Use REPEATABLE
    /// READ so every statement sees the same events. Sets `enable_seqscan`
    /// off for the rest of the transaction (as the tail's reads do), so the
    /// page is found through the BRIN index even on stale statistics.
    pub async fn apply_range(
        &self,
        tx: &Transaction<'_>,
        after: Option<Watermark>,
        until: Watermark,
    ) -> Result<SyncStats, SyncError> {
        // Like the tail's read: without fresh statistics (right after a bulk
        // load) the planner may scan whole chunks instead of the BRIN ranges.
        tx.batch_execute("SET LOCAL enable_seqscan = off").await.map_err(db("preparing a graph sync page"))?;
        let after_at: Option<DateTime<Utc>> = after.map(|w| w.ingested_at);
        let after_id: Option<Uuid> = after.map(|w| w.event_id);
        let range: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&after_at, &after_id, &until.ingested_at, &until.event_id];
        let mut stats = SyncStats::default();
        let mut touched: BTreeSet<String> = BTreeSet::new();

        let agents = &self.agent_sources;
        let row = tx
            .query_one(sql::EDGES, &[range[0], range[1], range[2], range[3], agents])
            .await
            .map_err(db("folding network events into connections"))?;
        stats.edges = count(row.get(0));
        stats.network_events = count(row.get(1));

        let rows = tx.query(sql::VULNS, &range).await.map_err(db("upserting vulnerabilities"))?;
        stats.vulns = rows.len() as u64;
        touched.extend(rows.iter().map(|r| r.get::<_, String>(0)));

        tx.execute(sql::PACKAGE_FILES_CLEAR, &range).await.map_err(db("clearing replaced package files"))?;
        let rows = tx.query(sql::PACKAGES_UPSERT, &range).await.map_err(db("upserting packages"))?;
        stats.packages = rows.len() as u64;
        touched.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        tx.execute(sql::PACKAGE_FILES_INSERT, &range).await.map_err(db("storing package files"))?;

        let rows = tx.query(sql::PROCESSES, &range).await.map_err(db("applying process launches and exits"))?;
        for r in &rows {
            match r.get::<_, i32>(0) {
                1 => stats.processes_started += 1,
                _ => stats.processes_stopped += 1,
            }
            touched.insert(r.get(1));
        }

        if !touched.is_empty() {
            stats.hosts_classified = touched.len() as u64;
            let hosts: Vec<String> = touched.into_iter().collect();
            self.classify(tx, &hosts, &mut stats).await?;
        }
        Ok(stats)
    }

    /// Re-classifies the vulnerabilities of `hosts` and raises an alert for
    /// each that became running.
    async fn classify(&self, tx: &Transaction<'_>, hosts: &[String], stats: &mut SyncStats) -> Result<(), SyncError> {
        let rows = tx.query(sql::CLASSIFY, &[&hosts]).await.map_err(db("classifying vulnerabilities"))?;
        let raise = tx.prepare(sql::RAISE_ALERT).await.map_err(db("preparing the alert insert"))?;
        for r in &rows {
            let status: String = r.get(3);
            match status.as_str() {
                "running" => stats.vulns_running += 1,
                "fixed" => stats.vulns_fixed += 1,
                _ => stats.vulns_dormant += 1,
            }
            let exe: Option<String> = r.get(8);
            let (Some(exe), "running") = (exe, status.as_str()) else { continue };
            let t = Transition {
                host: r.get(0),
                cve: r.get(1),
                package: r.get(2),
                installed_version: r.get(4),
                fixed_version: r.get(5),
                severity_id: r.get(6),
                tenant: r.get(7),
                exe,
                pid: r.get(9),
                process_name: r.get(10),
                started: r.get(11),
            };
            let id = vuln_alert_id(&t.host, &t.cve, &t.package);
            let n = tx
                .execute(
                    &raise,
                    &[&id, &t.tenant, &VULN_RUNNING_RULE, &t.title(), &ALERT_SEVERITY, &t.host, &t.details()],
                )
                .await
                .map_err(db("raising a vulnerable-and-running alert"))?;
            stats.alerts += n;
        }
        Ok(())
    }

    /// Runs [`GraphSync::sync_once`] until `stop` resolves: at once after a
    /// full page, after the idle interval otherwise, with a growing backoff
    /// (up to 30 s) after failures. Stopping mid-page rolls that page back.
    pub async fn run(self, pool: Pool, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = self.idle;
        loop {
            let pass = tokio::select! {
                r = self.sync_once(&pool) => r,
                _ = &mut stop => break,
            };
            let wait = match pass {
                Ok(s) => {
                    backoff = self.idle;
                    if s.page_full {
                        Duration::ZERO
                    } else {
                        self.idle
                    }
                }
                Err(e) => {
                    self.counters.failed_pass(&e, backoff);
                    let wait = backoff;
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut stop => break,
            }
        }
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A vulnerability that became running, with the binary that runs it.
struct Transition {
    host: String,
    cve: String,
    package: String,
    installed_version: Option<String>,
    fixed_version: Option<String>,
    severity_id: i16,
    tenant: String,
    exe: String,
    pid: Option<i32>,
    process_name: Option<String>,
    started: Option<DateTime<Utc>>,
}

impl Transition {
    fn title(&self) -> String {
        let version = self.installed_version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        format!("{} in {}{version} is running: {} on {}", self.cve, self.package, self.exe, self.host)
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "cve": self.cve,
            "package": self.package,
            "installed_version": self.installed_version,
            "fixed_version": self.fixed_version,
            "vulnerability_severity_id": self.severity_id,
            "host": self.host,
            "binary": self.exe,
            "pid": self.pid,
            "process_name": self.process_name,
            "process_started": self.started,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        let a = vuln_alert_id("web-01", "CVE-2024-6387", "openssh-server");
        assert_eq!(a, vuln_alert_id("web-01", "CVE-2024-6387", "openssh-server"));
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(a, vuln_alert_id("web-02", "CVE-2024-6387", "openssh-server"));
        assert_ne!(a, vuln_alert_id("web-01", "CVE-2024-6387", "openssh-client"));
    }

    #[test]
    fn the_alert_names_cve_package_binary_and_host() {
        let t = Transition {
            host: "web-01".into(),
            cve: "CVE-2024-6387".into(),
            package: "openssh-server".into(),
            installed_version: Some("1:9.2p1-2".into()),
            fixed_version: None,
            severity_id: 5,
            tenant: "default".into(),
            exe: "/usr/sbin/sshd".into(),
            pid: Some(812),
            process_name: Some("sshd".into()),
            started: None,
        };
        assert_eq!(t.title(), "CVE-2024-6387 in openssh-server 1:9.2p1-2 is running: /usr/sbin/sshd on web-01");
        assert_eq!(t.details()["binary"], "/usr/sbin/sshd");
        assert_eq!(t.details()["pid"], 812);
    }
}
