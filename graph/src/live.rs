//! The graph a server keeps in memory: the `connections` edges seen within a
//! time window, refreshed incrementally from PostgreSQL (only the rows whose
//! `updated_at` moved since the last read), with each host's risk facts
//! (open critical CVEs, running-vulnerable packages, recent alerts).
//! Queries read it under a shared lock and never touch the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use vigil_store::{Pool, StoreError};

use crate::model::{EdgeRecord, Graph, RiskFacts};

/// Rows changed by a writer transaction that was still open during the last
/// read carry an `updated_at` before that read; re-reading this far back
/// catches them (upserts are idempotent, so re-reading is harmless).
const OVERLAP: TimeDelta = TimeDelta::seconds(30);

/// Alerts younger than this count towards a host's risk.
const RECENT_ALERTS: &str = "24 hours";

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub refreshes: AtomicU64,
    pub edges_read: AtomicU64,
    pub edges_expired: AtomicU64,
    pub errors: AtomicU64,
    pub last_refresh_us: AtomicU64,
    pub nodes: AtomicU64,
    pub flows: AtomicU64,
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

    /// The graph, for queries. Readers share it; a refresh holds the write
    /// lock only while it applies what it already read.
    pub fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.graph.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn window(&self) -> TimeDelta {
        self.window
    }

    pub fn stats(&self) -> &LiveStats {
        &self.stats
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
        let s = &self.stats;
        s.refreshes.fetch_add(1, Ordering::Relaxed);
        s.edges_read.fetch_add(edges_read, Ordering::Relaxed);
        s.edges_expired.fetch_add(expired, Ordering::Relaxed);
        s.nodes.store(nodes, Ordering::Relaxed);
        s.flows.store(flows, Ordering::Relaxed);
        s.last_refresh_us.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(RefreshReport { edges_read, edges_expired: expired, nodes, flows })
    }

    /// Refreshes every `every` until `stop` resolves; a failed refresh is
    /// counted, logged and retried at the next tick.
    pub async fn run(self: Arc<Self>, pool: Pool, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.refresh(&pool).await {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("graph refresh failed: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// The counters in Prometheus text.
    pub fn render_metrics(&self) -> String {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# TYPE vigil_graph_refreshes_total counter\nvigil_graph_refreshes_total {}\n\
             # TYPE vigil_graph_edges_read_total counter\nvigil_graph_edges_read_total {}\n\
             # TYPE vigil_graph_edges_expired_total counter\nvigil_graph_edges_expired_total {}\n\
             # TYPE vigil_graph_refresh_errors_total counter\nvigil_graph_refresh_errors_total {}\n\
             # TYPE vigil_graph_last_refresh_seconds gauge\nvigil_graph_last_refresh_seconds {:.6}\n\
             # TYPE vigil_graph_nodes gauge\nvigil_graph_nodes {}\n\
             # TYPE vigil_graph_flows gauge\nvigil_graph_flows {}\n",
            g(&s.refreshes),
            g(&s.edges_read),
            g(&s.edges_expired),
            g(&s.errors),
            g(&s.last_refresh_us) as f64 / 1e6,
            g(&s.nodes),
            g(&s.flows),
        )
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
