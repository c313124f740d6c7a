//! What the graph sync did: [`SyncStats`] for one page (or a run of pages),
//! and [`SyncCounters`], the running totals a server exposes on `/metrics`.

use std::ops::AddAssign;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use vigil_store::tail::Watermark;

/// What one [`super::GraphSync::sync_once`] call did (or, summed, several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Events in the page, as the tail read them.
    pub events: u64,
    /// Network events folded into edges.
    pub network_events: u64,
    /// `connections` rows inserted or updated.
    pub edges: u64,
    /// `vulnerabilities` rows inserted or updated from vuln events.
    pub vulns: u64,
    /// `packages` rows inserted or changed (installed, upgraded, removed).
    pub packages: u64,
    /// `running_processes` rows inserted or replaced by launches.
    pub processes_started: u64,
    /// `running_processes` rows deleted by terminations.
    pub processes_stopped: u64,
    /// Hosts whose vulnerabilities were re-classified.
    pub hosts_classified: u64,
    /// Vulnerabilities that became `running`.
    pub vulns_running: u64,
    /// Vulnerabilities that became `dormant` (from running or fixed).
    pub vulns_dormant: u64,
    /// Vulnerabilities that became `fixed`.
    pub vulns_fixed: u64,
    /// `vulnerable-and-running` alerts inserted (an alert is raised once per
    /// host, CVE and package, ever).
    pub alerts: u64,
    /// The page was full: more events are probably waiting.
    pub page_full: bool,
    /// Another worker of the same name had moved the watermark (or saved
    /// concurrently): nothing was applied, the page is theirs.
    pub conflicted: bool,
}

impl AddAssign for SyncStats {
    fn add_assign(&mut self, o: SyncStats) {
        self.events += o.events;
        self.network_events += o.network_events;
        self.edges += o.edges;
        self.vulns += o.vulns;
        self.packages += o.packages;
        self.processes_started += o.processes_started;
        self.processes_stopped += o.processes_stopped;
        self.hosts_classified += o.hosts_classified;
        self.vulns_running += o.vulns_running;
        self.vulns_dormant += o.vulns_dormant;
        self.vulns_fixed += o.vulns_fixed;
        self.alerts += o.alerts;
        self.page_full = o.page_full;
        self.conflicted |= o.conflicted;
    }
}

/// Running totals since the worker started, shared with the `/metrics`
/// handler ([`SyncCounters::render_prometheus`]).
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub pages: AtomicU64,
    pub events: AtomicU64,
    pub network_events: AtomicU64,
    pub edges: AtomicU64,
    pub vulns: AtomicU64,
    pub packages: AtomicU64,
    pub processes_started: AtomicU64,
    pub processes_stopped: AtomicU64,
    pub vulns_running: AtomicU64,
    pub vulns_dormant: AtomicU64,
    pub vulns_fixed: AtomicU64,
    pub alerts: AtomicU64,
    /// Pages left to another worker of the same name.
    pub conflicts: AtomicU64,
    /// Failed passes (retried).
    pub errors: AtomicU64,
    /// `ingested_at` of the last saved watermark, Unix microseconds (0: none yet).
    pub watermark_us: AtomicI64,
}

impl SyncCounters {
    /// Adds one committed page.
    pub fn record(&self, s: &SyncStats, saved: Option<Watermark>) {
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        if s.conflicted {
            add(&self.conflicts, 1);
            return;
        }
        if s.events == 0 {
            return;
        }
        add(&self.pages, 1);
        add(&self.events, s.events);
        add(&self.network_events, s.network_events);
        add(&self.edges, s.edges);
        add(&self.vulns, s.vulns);
        add(&self.packages, s.packages);
        add(&self.processes_started, s.processes_started);
        add(&self.processes_stopped, s.processes_stopped);
        add(&self.vulns_running, s.vulns_running);
        add(&self.vulns_dormant, s.vulns_dormant);
        add(&self.vulns_fixed, s.vulns_fixed);
        add(&self.alerts, s.alerts);
        if let Some(w) = saved {
            self.watermark_us.store(w.ingested_at.timestamp_micros(), Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition lines.
    pub fn render_prometheus(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let watermark = self.watermark_us.load(Ordering::Relaxed) as f64 / 1e6;
        format!(
            "# HELP vigil_graph_pages_total Pages of events the graph sync committed.\n\
             # TYPE vigil_graph_pages_total counter\n\
             vigil_graph_pages_total {}\n\
             # HELP vigil_graph_events_total Events the graph sync read, and the network events folded into edges.\n\
             # TYPE vigil_graph_events_total counter\n\
             vigil_graph_events_total{{stage=\"read\"}} {}\n\
             vigil_graph_events_total{{stage=\"network\"}} {}\n\
             # HELP vigil_graph_rows_total Rows the graph sync inserted or updated, by table.\n\
             # TYPE vigil_graph_rows_total counter\n\
             vigil_graph_rows_total{{table=\"connections\"}} {}\n\
             vigil_graph_rows_total{{table=\"vulnerabilities\"}} {}\n\
             vigil_graph_rows_total{{table=\"packages\"}} {}\n\
             # HELP vigil_graph_processes_total Changes to the running processes.\n\
             # TYPE vigil_graph_processes_total counter\n\
             vigil_graph_processes_total{{change=\"started\"}} {}\n\
             vigil_graph_processes_total{{change=\"stopped\"}} {}\n\
             # HELP vigil_graph_vulnerability_transitions_total Vulnerabilities whose status changed, by new status.\n\
             # TYPE vigil_graph_vulnerability_transitions_total counter\n\
             vigil_graph_vulnerability_transitions_total{{to=\"running\"}} {}\n\
             vigil_graph_vulnerability_transitions_total{{to=\"dormant\"}} {}\n\
             vigil_graph_vulnerability_transitions_total{{to=\"fixed\"}} {}\n\
             # HELP vigil_graph_alerts_raised_total vulnerable-and-running alerts raised.\n\
             # TYPE vigil_graph_alerts_raised_total counter\n\
             vigil_graph_alerts_raised_total {}\n\
             # HELP vigil_graph_conflicts_total Pages left to another worker with the same watermark.\n\
             # TYPE vigil_graph_conflicts_total counter\n\
             vigil_graph_conflicts_total {}\n\
             # HELP vigil_graph_errors_total Failed graph sync passes (retried).\n\
             # TYPE vigil_graph_errors_total counter\n\
             vigil_graph_errors_total {}\n\
             # HELP vigil_graph_watermark_seconds Ingestion time of the last event the graph sync committed.\n\
             # TYPE vigil_graph_watermark_seconds gauge\n\
             vigil_graph_watermark_seconds {watermark:.6}\n",
            g(&self.pages),
            g(&self.events),
            g(&self.network_events),
            g(&self.edges),
            g(&self.vulns),
            g(&self.packages),
            g(&self.processes_started),
            g(&self.processes_stopped),
            g(&self.vulns_running),
            g(&self.vulns_dormant),
            g(&self.vulns_fixed),
            g(&self.alerts),
            g(&self.conflicts),
            g(&self.errors),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_committed_pages_and_render_every_family() {
        let c = SyncCounters::default();
        let s =
            SyncStats { events: 10, network_events: 7, edges: 3, alerts: 1, vulns_running: 1, ..Default::default() };
        let w = Watermark {
            ingested_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            event_id: uuid::Uuid::nil(),
        };
        c.record(&s, Some(w));
        c.record(&SyncStats { conflicted: true, events: 5, ..Default::default() }, None);
        let text = c.render_prometheus();
        for line in [
            "vigil_graph_pages_total 1",
            "vigil_graph_events_total{stage=\"read\"} 10",
            "vigil_graph_events_total{stage=\"network\"} 7",
            "vigil_graph_rows_total{table=\"connections\"} 3",
            "vigil_graph_vulnerability_transitions_total{to=\"running\"} 1",
            "vigil_graph_alerts_raised_total 1",
            "vigil_graph_conflicts_total 1",
            "vigil_graph_watermark_seconds 1700000000.000000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let mut sum = s;
        sum += SyncStats { events: 2, page_full: true, ..Default::default() };
        assert_eq!((sum.events, sum.edges, sum.page_full), (12, 3, true));
    }
}
