//! The scheduler's counters, in Prometheus text for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of every runner in this process.
#[derive(Debug, Default)]
pub struct Counters {
    pub runs: AtomicU64,
    pub run_errors: AtomicU64,
    /// Schedule slots that collapsed into a later run (downtime, slow runs).
    pub slots_collapsed: AtomicU64,
    pub matches: AtomicU64,
    pub alerts_created: AtomicU64,
    /// Matches that joined an alert inside its suppression window.
    pub alerts_suppressed: AtomicU64,
    pub deliveries_ok: AtomicU64,
    pub deliveries_failed: AtomicU64,
    pub delivery_retries: AtomicU64,
}

/// This process's counters.
pub static COUNTERS: Counters = Counters {
    runs: AtomicU64::new(0),
    run_errors: AtomicU64::new(0),
    slots_collapsed: AtomicU64::new(0),
    matches: AtomicU64::new(0),
    alerts_created: AtomicU64::new(0),
    alerts_suppressed: AtomicU64::new(0),
    deliveries_ok: AtomicU64::new(0),
    deliveries_failed: AtomicU64::new(0),
    delivery_retries: AtomicU64::new(0),
};

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The counters in Prometheus text.
pub fn render() -> String {
    let c = &COUNTERS;
    let mut out = String::new();
    for (name, v, help) in [
        ("vigil_hunt_runs_total", &c.runs, "hunt runs recorded"),
        ("vigil_hunt_run_errors_total", &c.run_errors, "hunt runs that failed"),
        ("vigil_hunt_slots_collapsed_total", &c.slots_collapsed, "missed schedule slots covered by a later run"),
        ("vigil_hunt_matches_total", &c.matches, "events matched by hunt runs"),
        ("vigil_alerts_created_total", &c.alerts_created, "alerts raised by hunts"),
        (
            "vigil_alerts_suppressed_total",
            &c.alerts_suppressed,
            "matches that joined an alert in its suppression window",
        ),
        ("vigil_alert_deliveries_ok_total", &c.deliveries_ok, "alert actions delivered"),
        ("vigil_alert_deliveries_failed_total", &c.deliveries_failed, "alert actions given up on"),
        ("vigil_alert_delivery_retries_total", &c.delivery_retries, "alert action attempts retried"),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", v.load(Ordering::Relaxed)));
    }
    out
}
