//! What the graph sync did: [`SyncStats`] for one page (or a run of pages),
//! and [`SyncCounters`], the running totals a server registers for `/metrics`.

use std::ops::AddAssign;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
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

/// Running totals since the worker started, in the registry handed to
/// [`SyncCounters::register`] (the server's, for `/metrics`).
#[derive(Debug, Clone)]
pub struct SyncCounters {
    pages: Counter,
    /// Events read, and network events folded into edges.
    events: [Counter; 2],
    /// Rows of connections, vulnerabilities and packages.
    rows: [Counter; 3],
    /// Processes started and stopped.
    processes: [Counter; 2],
    /// Vulnerabilities that became running, dormant and fixed.
    transitions: [Counter; 3],
    alerts: Counter,
    /// Pages left to another worker of the same name.
    conflicts: Counter,
    /// Failed passes (retried).
    errors: Counter,
    /// `ingested_at` of the last saved watermark, Unix seconds (0: none yet).
    watermark: Gauge<f64, AtomicU64>,
}

impl Default for SyncCounters {
    /// Counters in no registry.
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

/// `name{key="value"}` for each of `values`, registered as one family.
fn labelled<const N: usize>(
    r: &mut Registry,
    name: &str,
    help: &str,
    key: &'static str,
    values: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<[(&'static str, &'static str); 1], Counter>::default();
    let counters = values.map(|v| family.get_or_create_owned(&[(key, v)]));
    r.register(name, help, family);
    counters
}

impl SyncCounters {
    /// Counters registered in `registry` as `<prefix>_graph_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("graph");
        let c = SyncCounters {
            pages: Counter::default(),
            events: labelled(
                r,
                "events",
                "Events the graph sync read, and the network events folded into edges",
                "stage",
                ["read", "network"],
            ),
            rows: labelled(
                r,
                "rows",
                "Rows the graph sync inserted or updated, by table",
                "table",
                ["connections", "vulnerabilities", "packages"],
            ),
            processes: labelled(r, "processes", "Changes to the running processes", "change", ["started", "stopped"]),
            transitions: labelled(
                r,
                "vulnerability_transitions",
                "Vulnerabilities whose status changed, by new status",
                "to",
                ["running", "dormant", "fixed"],
            ),
            alerts: Counter::default(),
            conflicts: Counter::default(),
            errors: Counter::default(),
            watermark: Gauge::default(),
        };
        r.register("pages", "Pages of events the graph sync committed", c.pages.clone());
        r.register("alerts_raised", "vulnerable-and-running alerts raised", c.alerts.clone());
        r.register("conflicts", "Pages left to another worker with the same watermark", c.conflicts.clone());
        r.register("errors", "Failed graph sync passes (retried)", c.errors.clone());
        r.register(
            "watermark_seconds",
            "Ingestion time of the last event the graph sync committed",
            c.watermark.clone(),
        );
        c
    }

    /// Adds one committed page.
    pub fn record(&self, s: &SyncStats, saved: Option<Watermark>) {
        if s.conflicted {
            self.conflicts.inc();
            return;
        }
        if s.events == 0 {
            return;
        }
        self.pages.inc();
        let add = |counters: &[Counter], values: &[u64]| {
            for (c, n) in counters.iter().zip(values) {
                c.inc_by(*n);
            }
        };
        add(&self.events, &[s.events, s.network_events]);
        add(&self.rows, &[s.edges, s.vulns, s.packages]);
        add(&self.processes, &[s.processes_started, s.processes_stopped]);
        add(&self.transitions, &[s.vulns_running, s.vulns_dormant, s.vulns_fixed]);
        self.alerts.inc_by(s.alerts);
        if let Some(w) = saved {
            self.watermark.set(w.ingested_at.timestamp_micros() as f64 / 1e6);
        }
    }

    /// A failed pass, retried after `backoff`.
    pub(crate) fn failed_pass(&self, e: &super::SyncError, backoff: std::time::Duration) {
        self.errors.inc();
        tracing::warn!(transient = e.is_transient(), "graph sync: {e}; retrying in {backoff:?}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_committed_pages_and_register_every_family() {
        let mut registry = Registry::with_prefix("vigil");
        let c = SyncCounters::register(&mut registry);
        let s =
            SyncStats { events: 10, network_events: 7, edges: 3, alerts: 1, vulns_running: 1, ..Default::default() };
        let w = Watermark {
            ingested_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            event_id: uuid::Uuid::nil(),
        };
        c.record(&s, Some(w));
        c.record(&SyncStats { conflicted: true, events: 5, ..Default::default() }, None);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "vigil_graph_pages_total 1",
            "vigil_graph_events_total{stage=\"read\"} 10",
            "vigil_graph_events_total{stage=\"network\"} 7",
            "vigil_graph_rows_total{table=\"connections\"} 3",
            "vigil_graph_vulnerability_transitions_total{to=\"running\"} 1",
            "vigil_graph_alerts_raised_total 1",
            "vigil_graph_conflicts_total 1",
            "vigil_graph_watermark_seconds 1700000000.0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let mut sum = s;
        sum += SyncStats { events: 2, page_full: true, ..Default::default() };
        assert_eq!((sum.events, sum.edges, sum.page_full), (12, 3, true));
    }
}
