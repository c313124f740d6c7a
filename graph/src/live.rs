//! The graph a server keeps in memory: the `connections` edges seen within a
//! time window, refreshed incrementally from PostgreSQL (only the rows whose
//! `updated_at` moved since the last read), with each host's risk facts
//! (open critical CVEs, running-vulnerable packages, recent alerts).
//! Queries read it under a shared lock and never touch the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vigil_store::{Pool, StoreError};

use crate::model::{EdgeRecord, Graph, RiskFacts};

/// Rows changed by a writer transaction that was still open during the last
/// read carry an `updated_at` before that read; re-reading this far back
/// catches them (upserts are idempotent, so re-reading is harmless).
const OVERLAP: TimeDelta = TimeDelta::seconds(30);

/// Alerts younger than this count towards a host's risk.
const RECENT_ALERTS: &str = "24 hours";

/// The refresher's counters, in the registry handed to [`LiveStats::register`]
/// (the server's, for `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    refreshes: Counter,
    edges_read: Counter,
    edges_expired: Counter,
    errors: Counter,
    last_refresh_seconds: Gauge<f64, AtomicU64>,
    nodes: Gauge,
    flows: Gauge,
}

impl LiveStats {
    /// Counters registered in `registry` as `<prefix>_graph_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let s = Self::default();
        let r = registry.sub_registry_with_prefix("graph");
        r.register("refreshes", "Refreshes of the in-memory graph", s.refreshes.clone());
        r.register("edges_read", "Edges read by refreshes of the in-memory graph", s.edges_read.clone());
        r.register("edges_expired", "Edges dropped from the in-memory graph as too old", s.edges_expired.clone());
        r.register("refresh_errors", "Refreshes of the in-memory graph that failed", s.errors.clone());
        r.register("last_refresh_seconds", "How long the last refresh took", s.last_refresh_seconds.clone());
        r.register("nodes", "Nodes in the in-memory graph", s.nodes.clone());
        r.register("flows", "Edges in the in-memory graph", s.flows.clone());
        s
    }

    fn refreshed(&self, report: &RefreshReport, took: Duration) {
        self.refreshes.inc();
        self.edges_read.inc_by(report.edges_read);
        self.edges_expired.inc_by(report.edges_expired);
        self.nodes.set(i64::try_from(report.nodes).unwrap_or(i64::MAX));
        self.flows.set(i64::try_from(report.flows).unwrap_or(i64::MAX));
        self.last_refresh_seconds.set(took.as_secs_f64());
    }

    fn refresh_failed(&self, e: &StoreError) {
        self.errors.inc();
        tracing::warn!("graph refresh failed: {e}");
    }
}

/// What one refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshReport {
    pub edges_read: u64,
    pub edges_expired: u64,
    pub nodes: u64,
    pub flows: u64,
}

/// The in-memory graph of a window of recent connections.
#[derive(Debug)]
pub struct LiveGraph {
    graph: RwLock<Graph>,
    window: TimeDelta,
    /// Database time of the last read (`None`: never read).
    since: Mutex<Option<DateTime<Utc>>>,
    stats: LiveStats,
}

impl LiveGraph {
    /// A graph of the connections last seen within `window`.
    pub fn new(window: TimeDelta) -> Self {
        LiveGraph { graph: RwLock::new(Graph::new()), window, since: Mutex::new(None), stats: LiveStats::default() }
    }

    /// Counts in `stats` (registered for `/metrics`) instead of its own.
    pub fn with_stats(mut self, stats: LiveStats) -> Self {
        self.stats = stats;
        self
    }

    /// The graph, for queries. Readers share it; a refresh holds the write
    /// lock only while it applies what it already read.
    pub fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.graph.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn window(&self) -> TimeDelta {
        self.window
    }

    /// Reads the edges that changed since the last refresh and the hosts'
    /// risk facts, applies them, and drops edges older than the window.
    pub async fn refresh(&self, pool: &Pool) -> Result<RefreshReport, StoreError> {
        let started = Instant::now();
        let client = pool.get().await?;
        let now: DateTime<Utc> =
            client.query_one("SELECT now()", &[]).await.map_err(StoreError::db("reading the clock"))?.get(0);
        let cutoff = now - self.window;
        let since = *self.since.lock().unwrap_or_else(|p| p.into_inner());
        let changed_after: Option<DateTime<Utc>> = since.map(|s| s - OVERLAP);
        let rows = client
            .query(
                "SELECT src_ip, src_host, src_process, dst_ip, dst_host, dst_port, protocol,
                        first_seen, last_seen, count, bytes
                   FROM connections
                  WHERE last_seen >= $1 AND ($2::timestamptz IS NULL OR updated_at > $2)",
                &[&cutoff, &changed_after],
            )
            .await
            .map_err(StoreError::db("reading connections"))?;
        let mut edges = Vec::with_capacity(rows.len());
        for r in &rows {
            let port: i32 = r.get(5);
            edges.push(EdgeRecord {
                src_ip: r.get::<_, IpAddr>(0),
                src_host: r.get(1),
                src_process: r.get(2),
                dst_ip: r.get::<_, IpAddr>(3),
                dst_host: r.get(4),
                dst_port: u16::try_from(port).unwrap_or(0),
                protocol: r.get(6),
                first_seen: r.get(7),
                last_seen: r.get(8),
                count: r.get(9),
                bytes: r.get(10),
            });
        }
        let risk = read_risk(&client).await?;
        drop(client);

        let edges_read = edges.len() as u64;
        let (expired, nodes, flows) = {
            let mut g = self.graph.write().unwrap_or_else(|p| p.into_inner());
            g.upsert_many(edges);
            let expired = g.remove_older_than(cutoff) as u64;
            g.clear_risk();
            for (host, facts) in risk {
                g.set_host_risk(&host, facts);
            }
            (expired, g.node_count() as u64, g.edge_count() as u64)
        };
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        let report = RefreshReport { edges_read, edges_expired: expired, nodes, flows };
        self.stats.refreshed(&report, started.elapsed());
        Ok(report)
    }

    /// Refreshes every `every` until `stop` resolves; a failed refresh is
    /// counted, logged and retried at the next tick.
    pub async fn run(self: Arc<Self>, pool: Pool, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.refresh(&pool).await {
                self.stats.refresh_failed(&e);
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
        }
    }
}

/// Each host's open vulnerabilities (by severity and running state) and
/// recent alerts that are not closed.
async fn read_risk(client: &tokio_postgres::Client) -> Result<HashMap<String, RiskFacts>, StoreError> {
    let mut risk: HashMap<String, RiskFacts> = HashMap::new();
    let vulns = client
        .query(
            "SELECT host,
                    count(*) FILTER (WHERE severity_id >= 5)::int8,
                    count(*) FILTER (WHERE severity_id = 4)::int8,
                    count(*) FILTER (WHERE status = 'running')::int8
               FROM vulnerabilities WHERE status <> 'fixed' GROUP BY host",
            &[],
        )
        .await
        .map_err(StoreError::db("reading vulnerabilities for risk"))?;
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    for r in vulns {
        let f = risk.entry(r.get(0)).or_default();
        f.critical_cves = n(r.get(1));
        f.high_cves = n(r.get(2));
        f.running_vulnerable = n(r.get(3));
    }
    let alerts = client
        .query(
            &format!(
                "SELECT host, count(*)::int8 FROM alerts
                  WHERE host IS NOT NULL AND status <> 'closed' AND time >= now() - interval '{RECENT_ALERTS}'
                  GROUP BY host"
            ),
            &[],
        )
        .await
        .map_err(StoreError::db("reading alerts for risk"))?;
    for r in alerts {
        risk.entry(r.get(0)).or_default().recent_alerts = n(r.get(1));
    }
    Ok(risk)
}
