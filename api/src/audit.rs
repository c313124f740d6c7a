//! The audit log: every query and every change made through the API, with who
//! made it, when, what it touched and how many rows it returned or changed.
//!
//! Writing the entry never fails the request it describes (the caller already
//! has its answer); a failed write is logged and counted on `/metrics`.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde_json::Value;
use vigil_store::Pool;

use crate::auth::Caller;

/// The audit log's counters: one set per process, like the log itself.
#[derive(Debug, Clone, Default)]
struct AuditMetrics {
    /// Audit entries written.
    written: Counter,
    /// Audit entries that could not be written (database down, say).
    write_errors: Counter,
}

static METRICS: LazyLock<AuditMetrics> = LazyLock::new(AuditMetrics::default);

/// Registers this process's audit counters in `registry` (`<prefix>_audit_*`).
pub fn register(registry: &mut Registry) {
    let r = registry.sub_registry_with_prefix("audit");
    r.register("written", "Audit entries written", METRICS.written.clone());
    r.register("write_errors", "Audit entries that could not be written", METRICS.write_errors.clone());
}

impl AuditMetrics {
    fn written(&self) {
        self.written.inc();
    }

    fn write_failed(&self, action: &str, error: &str) {
        self.write_errors.inc();
        tracing::error!(action, "cannot write the audit log: {error}");
    }
}

/// One thing a caller did.
#[derive(Debug, Clone)]
pub struct Entry {
    /// A stable verb: `search`, `hunt.create`, `alert.close`, …
    pub action: &'static str,
    /// What it acted on, if anything (an id).
    pub target: Option<String>,
    /// The request's substance (never a secret).
    pub detail: Value,
    /// Rows returned or changed.
    pub result_size: Option<i64>,
    /// `ok`, or the error code the caller got.
    pub outcome: String,
}

impl Entry {
    pub fn new(action: &'static str) -> Self {
        Entry {
            action,
            target: None,
            detail: Value::Object(Default::default()),
            result_size: None,
            outcome: "ok".into(),
        }
    }
    pub fn target(mut self, t: impl ToString) -> Self {
        self.target = Some(t.to_string());
        self
    }
    pub fn detail(mut self, d: Value) -> Self {
        self.detail = d;
        self
    }
    pub fn size(mut self, n: usize) -> Self {
        self.result_size = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }
    pub fn outcome(mut self, code: impl Into<String>) -> Self {
        self.outcome = code.into();
        self
    }
}

/// Appends `entry` for `caller`.
pub async fn record(pool: &Pool, caller: &Caller, entry: Entry) {
    let role = caller.role.name();
    let res = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .execute(
                "INSERT INTO audit_log (token_id, token_name, role, action, target, detail, result_size, outcome)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &caller.token.id,
                    &caller.token.name,
                    &role,
                    &entry.action,
                    &entry.target,
                    &entry.detail,
                    &entry.result_size,
                    &entry.outcome,
                ],
            )
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match res {
        Ok(_) => METRICS.written(),
        Err(e) => METRICS.write_failed(entry.action, &e),
    }
}
