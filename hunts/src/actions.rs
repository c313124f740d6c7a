//! Actions on new alerts: a generic JSON webhook, or an AWX job template
//! launch (`POST {base}/api/v2/job_templates/{id}/launch/` with
//! `{"extra_vars": …}` and a Bearer token from the server's configuration).
//!
//! An action is queued in `alert_actions` in the transaction that raises the
//! alert, then delivered: 2xx is done, 4xx fails at once (retrying cannot
//! help), 5xx and connection errors are retried with exponential backoff up to
//! `max_attempts`. Every attempt is a row of `webhook_deliveries`. Actions a
//! crash left pending are delivered by the next scheduler tick.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_store::Pool;

use crate::metrics::metrics;
use crate::HuntError;

/// What to do when a hunt raises a new alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// POST the alert as JSON to `url`.
    Webhook { url: String },
    /// Launch an AWX (Ansible Tower) job template; the alert joins `extra_vars` as `vigil_alert`.
    Awx {
        /// AWX's base URL; default the server's `VIGIL_AWX_URL`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        job_template_id: u64,
        #[serde(default)]
        extra_vars: Value,
    },
}

fn check_url(u: &str, field: &'static str) -> Result<(), HuntError> {
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(HuntError::invalid(field, "bad_action", format!("`{u}` is not an http(s) URL"))),
    }
}

impl Action {
    pub fn validate(&self) -> Result<(), HuntError> {
        match self {
            Action::Webhook { url } => check_url(url, "actions"),
            Action::Awx { base_url, job_template_id, extra_vars } => {
                if let Some(b) = base_url {
                    check_url(b, "actions")?;
                }
                if *job_template_id == 0 {
                    return Err(HuntError::invalid("actions", "bad_action", "an AWX action needs a job_template_id"));
                }
                if !matches!(extra_vars, Value::Null | Value::Object(_)) {
                    return Err(HuntError::invalid("actions", "bad_action", "extra_vars must be a JSON object"));
                }
                Ok(())
            }
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Action::Webhook { .. } => "webhook",
            Action::Awx { .. } => "awx",
        }
    }

    /// The URL and JSON body of this action for `alert` (the webhook payload).
    pub(crate) fn request(&self, alert: &Value, cfg: &DeliveryConfig) -> (String, Value) {
        match self {
            Action::Webhook { url } => (url.clone(), json!({"source": "vigil", "alert": alert})),
            Action::Awx { base_url, job_template_id, extra_vars } => {
                let base = base_url.clone().or_else(|| cfg.awx_url.clone()).unwrap_or_default();
                let url = if base.is_empty() { String::new() } else { awx_launch_url(&base, *job_template_id) };
                let mut vars = match extra_vars {
                    Value::Object(m) => m.clone(),
                    _ => Default::default(),
                };
                vars.insert("vigil_alert".into(), alert.clone());
                (url, json!({"extra_vars": vars}))
            }
        }
    }
}

/// `{base}/api/v2/job_templates/{id}/launch/`.
pub fn awx_launch_url(base: &str, job_template_id: u64) -> String {
    format!("{}/api/v2/job_templates/{job_template_id}/launch/", base.trim_end_matches('/'))
}

/// How actions are delivered.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts per action (the first included).
    pub max_attempts: u32,
    /// The wait before the first retry; doubles each time, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per attempt.
    pub timeout: Duration,
    /// AWX base URL for actions that name none (`VIGIL_AWX_URL`).
    pub awx_url: Option<String>,
    /// Bearer token for AWX (`VIGIL_AWX_TOKEN`); never stored in the database.
    pub awx_token: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            awx_url: None,
            awx_token: None,
        }
    }
}

impl DeliveryConfig {
    /// The wait after failed attempt `n` (1-based).
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(16));
        self.backoff_base.saturating_mul(factor).min(self.backoff_max)
    }
}

/// One attempt's outcome, as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    #[schema(required)]
    pub status_code: Option<i32>,
    #[schema(required)]
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// A queued or finished action, with its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionRecord {
    pub id: i64,
    pub alert_id: Uuid,
    pub kind: String,
    pub url: String,
    pub status: String,
    pub attempts: i32,
    #[schema(required)]
    pub last_status: Option<i32>,
    #[schema(required)]
    pub last_error: Option<String>,
    pub deliveries: Vec<Attempt>,
}

/// How a batch of deliveries went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliverySummary {
    pub delivered: u32,
    pub failed: u32,
}

enum Outcome {
    Done(u16),
    Retry(Option<u16>, String),
    GiveUp(Option<u16>, String),
}

/// Delivers pending actions (only those in `only`, when given), oldest first.
pub async fn deliver_pending(
    pool: &Pool,
    cfg: &DeliveryConfig,
    only: Option<&[i64]>,
) -> Result<DeliverySummary, HuntError> {
    let http = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| HuntError::invalid("actions", "http_client", e.to_string()))?;
    let mut summary = DeliverySummary::default();
    let ids: Vec<i64> = {
        let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
        let rows = match only {
            Some(ids) => {
                client
                    .query(
                        "SELECT id FROM alert_actions WHERE status = 'pending' AND id = ANY($1) ORDER BY id",
                        &[&ids],
                    )
                    .await
            }
            None => {
                client.query("SELECT id FROM alert_actions WHERE status = 'pending' ORDER BY id LIMIT 1000", &[]).await
            }
        }
        .map_err(HuntError::db("listing pending actions"))?;
        rows.iter().map(|r| r.get(0)).collect()
    };
    for id in ids {
        match deliver_one(pool, &http, cfg, id).await? {
            Some(true) => summary.delivered += 1,
            Some(false) => summary.failed += 1,
            None => {}
        }
    }
    Ok(summary)
}

/// Delivers one action unless another process holds it; `Some(delivered)`.
async fn deliver_one(
    pool: &Pool,
    http: &reqwest::Client,
    cfg: &DeliveryConfig,
    id: i64,
) -> Result<Option<bool>, HuntError> {
    let mut client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let tx = client.transaction().await.map_err(HuntError::db("starting a delivery"))?;
    let Some(row) = tx
        .query_opt(
            "SELECT kind, url, body, attempts FROM alert_actions
              WHERE id = $1 AND status = 'pending' FOR NO KEY UPDATE SKIP LOCKED",
            &[&id],
        )
        .await
        .map_err(HuntError::db("claiming an action"))?
    else {
        return Ok(None);
    };
    let kind: String = row.get(0);
    let url: String = row.get(1);
    let body: Value = row.get(2);
    let mut attempts: i32 = row.get(3);
    let mut last: (Option<u16>, Option<String>);
    let mut delivered = false;
    let first = attempts;
    loop {
        attempts += 1;
        let started = Instant::now();
        let outcome = if url.is_empty() {
            Outcome::GiveUp(None, "no AWX base URL: set the action's base_url or VIGIL_AWX_URL".into())
        } else {
            send(http, cfg, &kind, &url, &body).await
        };
        let ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (code, error) = match &outcome {
            Outcome::Done(c) => (Some(*c), None),
            Outcome::Retry(c, e) | Outcome::GiveUp(c, e) => (*c, Some(e.clone())),
        };
        record_attempt(pool, id, attempts, code, error.as_deref(), ms).await;
        last = (code, error);
        match outcome {
            Outcome::Done(_) => {
                delivered = true;
                break;
            }
            Outcome::GiveUp(..) => break,
            Outcome::Retry(..) if (attempts - first) as u32 >= cfg.max_attempts => break,
            Outcome::Retry(..) => {
                metrics().delivery_retried();
                tokio::time::sleep(cfg.backoff((attempts - first) as u32)).await;
            }
        }
    }
    tx.execute(
        "UPDATE alert_actions SET status = $2, attempts = $3, last_status = $4, last_error = $5, finished_at = now()
          WHERE id = $1",
        &[&id, &if delivered { "delivered" } else { "failed" }, &attempts, &last.0.map(i32::from), &last.1],
    )
    .await
    .map_err(HuntError::db("recording a delivery"))?;
    tx.commit().await.map_err(HuntError::db("recording a delivery"))?;
    if delivered {
        metrics().delivered();
    } else {
        metrics().delivery_failed(id, &url, last.1.as_deref());
    }
    Ok(Some(delivered))
}

async fn send(http: &reqwest::Client, cfg: &DeliveryConfig, kind: &str, url: &str, body: &Value) -> Outcome {
    let mut req = http.post(url).json(body);
    if kind == "awx" {
        if let Some(t) = &cfg.awx_token {
            req = req.bearer_auth(t);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let s = resp.status();
            let code = s.as_u16();
            if s.is_success() {
                Outcome::Done(code)
            } else {
                let text: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
                let msg = format!("HTTP {code}: {text}");
                if s.is_server_error() || code == 429 {
                    Outcome::Retry(Some(code), msg)
                } else {
                    Outcome::GiveUp(Some(code), msg)
                }
            }
        }
        Err(e) => Outcome::Retry(None, error_chain(&e)),
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Records an attempt outside the delivery's transaction, so it stays on
/// record whatever happens next.
async fn record_attempt(pool: &Pool, id: i64, attempt: i32, code: Option<u16>, error: Option<&str>, ms: i32) {
    let res = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .execute(
                "INSERT INTO webhook_deliveries (action_id, attempt, status_code, error, duration_ms)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&id, &attempt, &code.map(i32::from), &error, &ms],
            )
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = res {
        tracing::error!(action = id, "cannot record a delivery attempt: {e}");
    }
}

/// The actions of an alert with their attempts.
pub async fn for_alert(pool: &Pool, alert_id: Uuid) -> Result<Vec<ActionRecord>, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let rows = client
        .query(
            "SELECT a.id, a.alert_id, a.kind, a.url, a.status, a.attempts, a.last_status, a.last_error,
                    coalesce(jsonb_agg(jsonb_build_object('attempt', d.attempt, 'at', d.at, 'status_code', d.status_code,
                             'error', d.error, 'duration_ms', d.duration_ms) ORDER BY d.attempt)
                             FILTER (WHERE d.id IS NOT NULL), '[]')
               FROM alert_actions a LEFT JOIN webhook_deliveries d ON d.action_id = a.id
              WHERE a.alert_id = $1
              GROUP BY a.id ORDER BY a.id",
            &[&alert_id],
        )
        .await
        .map_err(HuntError::db("reading alert actions"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let d: Value = r.get(8);
            let deliveries = d
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| Attempt {
                            attempt: x["attempt"].as_i64().unwrap_or(0) as i32,
                            at: x["at"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default(),
                            status_code: x["status_code"].as_i64().map(|c| c as i32),
                            error: x["error"].as_str().map(str::to_string),
                            duration_ms: x["duration_ms"].as_i64().unwrap_or(0) as i32,
                        })
                        .collect()
                })
                .unwrap_or_default();
            ActionRecord {
                id: r.get(0),
                alert_id: r.get(1),
                kind: r.get(2),
                url: r.get(3),
                status: r.get(4),
                attempts: r.get(5),
                last_status: r.get(6),
                last_error: r.get(7),
                deliveries,
            }
        })
        .collect())
}
