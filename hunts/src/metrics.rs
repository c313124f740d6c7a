//! The scheduler's counters ([`HuntMetrics`]): one set per process, counted
//! by every runner and registered in the server's metrics registry
//! ([`register`]) for `/metrics`.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// What the runners of this process did.
#[derive(Debug, Clone, Default)]
pub struct HuntMetrics {
    runs: Counter,
    run_errors: Counter,
    /// Schedule slots that collapsed into a later run (downtime, slow runs).
    slots_collapsed: Counter,
    matches: Counter,
    alerts_created: Counter,
    /// Matches that joined an alert inside its suppression window.
    alerts_suppressed: Counter,
    deliveries_ok: Counter,
    deliveries_failed: Counter,
    delivery_retries: Counter,
}

static METRICS: LazyLock<HuntMetrics> = LazyLock::new(HuntMetrics::default);

/// This process's counters.
pub fn metrics() -> &'static HuntMetrics {
    &METRICS
}

/// Registers this process's counters in `registry` (`<prefix>_hunt_*`,
/// `<prefix>_alert*`).
pub fn register(registry: &mut Registry) {
    let m = metrics();
    for (name, help, c) in [
        ("hunt_runs", "Hunt runs recorded", &m.runs),
        ("hunt_run_errors", "Hunt runs that failed", &m.run_errors),
        ("hunt_slots_collapsed", "Missed schedule slots covered by a later run", &m.slots_collapsed),
        ("hunt_matches", "Events matched by hunt runs", &m.matches),
        ("alerts_created", "Alerts raised by hunts", &m.alerts_created),
        ("alerts_suppressed", "Matches that joined an alert in its suppression window", &m.alerts_suppressed),
        ("alert_deliveries_ok", "Alert actions delivered", &m.deliveries_ok),
        ("alert_deliveries_failed", "Alert actions given up on", &m.deliveries_failed),
        ("alert_delivery_retries", "Alert action attempts retried", &m.delivery_retries),
    ] {
        registry.register(name, help, c.clone());
    }
}

impl HuntMetrics {
    /// A run whose search failed (recorded as an error run).
    pub(crate) fn run_failed(&self) {
        self.run_errors.inc();
    }

    /// A recorded run that covered `slots` schedule slots.
    pub(crate) fn run_recorded(&self, slots: u32, matches: u32, alerts_created: u32, alerts_suppressed: u32) {
        self.runs.inc();
        self.slots_collapsed.inc_by(u64::from(slots.saturating_sub(1)));
        self.matches.inc_by(u64::from(matches));
        self.alerts_created.inc_by(u64::from(alerts_created));
        self.alerts_suppressed.inc_by(u64::from(alerts_suppressed));
    }

    /// An action attempt failed in a way worth another try.
    pub(crate) fn delivery_retried(&self) {
        self.delivery_retries.inc();
    }

    /// An action was delivered.
    pub(crate) fn delivered(&self) {
        self.deliveries_ok.inc();
    }

    /// Action `id` to `url` was given up on, after `error`.
    pub(crate) fn delivery_failed(&self, id: i64, url: &str, error: Option<&str>) {
        self.deliveries_failed.inc();
        tracing::warn!(action = id, url = %url, "alert action failed: {:?}", error);
    }
}
