//! Actions on new alerts: a generic JSON webhook, or an AWX job template
//! launch (`POST {base}/api/v2/job_templates/{id}/launch/` with
//! `{"extra_vars": …}` and a Bearer token from the server's configuration).
//!
//! Where they may go is server configuration: webhooks only to hosts and
//! ranges of the allow-list ([`AllowList`], `VIGIL_WEBHOOK_ALLOW`), AWX only
//! at `VIGIL_AWX_URL`'s origin, the only place the AWX token is ever sent.
//! Both are checked when a hunt is saved ([`Action::validate`]) and again
//! before each delivery ([`crate::deliver`]), so a hunt saved under another
//! configuration, or run by hand, cannot reach anything else.
//!
//! An action is queued in `alert_actions` in the transaction that raises the
//! alert, then delivered ([`deliver_pending`]): 2xx is done, 4xx fails at once
//! (retrying cannot help), 5xx and connection errors are retried with
//! exponential backoff up to `max_attempts`. Every attempt is a row of
//! `webhook_deliveries`. Actions a crash left pending are delivered by the
//! next scheduler tick.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};
pub use url::Url;
use uuid::Uuid;
use vigil_store::Pool;

pub use crate::allow::AllowList;
pub(crate) use crate::deliver::error_chain;
pub use crate::deliver::{deliver_pending, DeliverySummary};
pub use crate::outbound::{signature, RootCerts, MAX_ERROR_BODY, SIGNATURE_HEADER};
use crate::HuntError;

/// A secret: stored, never shown (`***` in debug output and logs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A webhook secret's length bounds, in bytes.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// What to do when a hunt raises a new alert (as a client writes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// POST the alert as JSON to `url`, which `VIGIL_WEBHOOK_ALLOW` must allow.
    Webhook {
        url: String,
        /// Write-only: signs each delivery (`X-Vigil-Signature-256`), 16 to
        /// 256 characters. Responses show `has_secret` instead. On update,
        /// leaving it out keeps the secret of the hunt's webhook to the same
        /// URL; `""` removes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        secret: Option<Secret>,
    },
    /// Launch an AWX (Ansible Tower) job template; the alert joins `extra_vars` as `vigil_alert`.
    Awx {
        /// AWX's base URL, at `VIGIL_AWX_URL`'s origin; default `VIGIL_AWX_URL`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        job_template_id: u64,
        #[serde(default)]
        extra_vars: Value,
    },
}

/// An action as the API shows it: a webhook's secret is only `has_secret`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionView {
    Webhook {
        url: String,
        has_secret: bool,
    },
    Awx {
        #[serde(skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        job_template_id: u64,
        extra_vars: Value,
    },
}

impl From<&Action> for ActionView {
    fn from(a: &Action) -> Self {
        match a {
            Action::Webhook { url, secret } => ActionView::Webhook { url: url.clone(), has_secret: secret.is_some() },
            Action::Awx { base_url, job_template_id, extra_vars } => ActionView::Awx {
                base_url: base_url.clone(),
                job_template_id: *job_template_id,
                extra_vars: extra_vars.clone(),
            },
        }
    }
}

/// Serializes actions as [`ActionView`]s (for [`crate::Hunt`] in responses).
pub(crate) fn serialize_redacted<S: Serializer>(actions: &[Action], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(actions.iter().map(ActionView::from))
}

fn parse_http_url(u: &str, field: &str) -> Result<Url, HuntError> {
    match Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(HuntError::invalid("actions", "bad_action", format!("{field}: `{u}` is not an http(s) URL"))),
    }
}

/// `VIGIL_AWX_URL`: an http(s) URL with a host.
pub fn parse_awx_url(u: &str) -> Result<Url, String> {
    parse_http_url(u.trim(), "VIGIL_AWX_URL").map_err(|e| e.to_string())
}

impl Action {
    /// Checks the action as action number `i` of a hunt, against where the
    /// server may send actions (`cfg`).
    pub fn validate(&self, i: usize, cfg: &DeliveryConfig) -> Result<(), HuntError> {
        match self {
            Action::Webhook { url, secret } => {
                let field = format!("actions[{i}].url");
                let parsed = parse_http_url(url, &field)?;
                cfg.webhook_allow.check_url(&parsed).map_err(|b| {
                    HuntError::invalid(
                        "actions",
                        "webhook_not_allowed",
                        format!("{field}: {b} (the hosts and ranges webhooks may go to)"),
                    )
                })?;
                match secret {
                    Some(s) if !s.0.is_empty() && !SECRET_LEN.contains(&s.0.len()) => Err(HuntError::invalid(
                        "actions",
                        "bad_action",
                        format!("actions[{i}].secret must be {} to {} bytes", SECRET_LEN.start(), SECRET_LEN.end()),
                    )),
                    _ => Ok(()),
                }
            }
            Action::Awx { base_url, job_template_id, extra_vars } => {
                let Some(awx) = &cfg.awx_url else {
                    return Err(HuntError::invalid(
                        "actions",
                        "awx_not_configured",
                        format!("actions[{i}]: AWX actions need the server's VIGIL_AWX_URL"),
                    ));
                };
                if let Some(b) = base_url {
                    let field = format!("actions[{i}].base_url");
                    let parsed = parse_http_url(b, &field)?;
                    if parsed.origin() != awx.origin() {
                        return Err(HuntError::invalid(
                            "actions",
                            "awx_origin",
                            format!(
                                "{field}: `{b}` is not at VIGIL_AWX_URL's origin `{}`, the only place the AWX token goes",
                                awx.origin().ascii_serialization()
                            ),
                        ));
                    }
                }
                if *job_template_id == 0 {
                    return Err(HuntError::invalid(
                        "actions",
                        "bad_action",
                        format!("actions[{i}]: an AWX action needs a job_template_id"),
                    ));
                }
                if !matches!(extra_vars, Value::Null | Value::Object(_)) {
                    return Err(HuntError::invalid(
                        "actions",
                        "bad_action",
                        format!("actions[{i}].extra_vars must be a JSON object"),
                    ));
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
            Action::Webhook { url, .. } => (url.clone(), json!({"source": "vigil", "alert": alert})),
            Action::Awx { base_url, job_template_id, extra_vars } => {
                let base = base_url.clone().or_else(|| cfg.awx_url.as_ref().map(Url::to_string)).unwrap_or_default();
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

/// The actions to store for `new` replacing `old`: a webhook that leaves its
/// secret out keeps the secret of `old`'s webhook to the same URL, and `""`
/// means none.
pub(crate) fn keep_secrets(new: &[Action], old: &[Action]) -> Vec<Action> {
    new.iter()
        .map(|a| match a {
            Action::Webhook { url, secret: None } => {
                let kept = old.iter().find_map(|o| match o {
                    Action::Webhook { url: u, secret } if u == url => secret.clone(),
                    _ => None,
                });
                Action::Webhook { url: url.clone(), secret: kept }
            }
            Action::Webhook { url, secret: Some(s) } if s.0.is_empty() => {
                Action::Webhook { url: url.clone(), secret: None }
            }
            other => other.clone(),
        })
        .collect()
}

/// `{base}/api/v2/job_templates/{id}/launch/`.
pub fn awx_launch_url(base: &str, job_template_id: u64) -> String {
    format!("{}/api/v2/job_templates/{job_template_id}/launch/", base.trim_end_matches('/'))
}

/// How actions are delivered, and where they may go.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts per action (the first included).
    pub max_attempts: u32,
    /// The wait before the first retry; doubles each time, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per attempt: connecting, sending and reading the answer.
    pub timeout: Duration,
    /// AWX base URL (`VIGIL_AWX_URL`); AWX calls go only to its origin.
    pub awx_url: Option<Url>,
    /// Bearer token for AWX (`VIGIL_AWX_TOKEN`); never stored in the database.
    pub awx_token: Option<Secret>,
    /// Where webhooks may go (`VIGIL_WEBHOOK_ALLOW`); empty: nowhere.
    pub webhook_allow: AllowList,
    /// Root certificates trusted besides the Mozilla roots (`VIGIL_WEBHOOK_CA`).
    pub extra_roots: Option<RootCerts>,
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
            webhook_allow: AllowList::default(),
            extra_roots: None,
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
    /// What went wrong: the HTTP status, a refusal, or the kind of failure
    /// (`timed out`, `could not connect`). Answers' bodies are never here:
    /// every reader of the alert sees this; the server's log has the detail.
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
    /// The last attempt's `error` (its status or kind of failure only).
    #[schema(required)]
    pub last_error: Option<String>,
    pub deliveries: Vec<Attempt>,
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
