//! Delivering queued actions: each is checked again against where the server
//! may send it (the webhook allow-list, AWX's origin) before any byte leaves,
//! then sent with retries, every attempt recorded. What an attempt records is
//! shown to every reader of the alert, so it holds the HTTP status or the
//! kind of failure only; an error answer's body (its first
//! [`MAX_ERROR_BODY`] bytes) goes to the server's log.

use std::time::Instant;

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio_postgres::Transaction;
use url::Url;
use uuid::Uuid;
use vigil_store::Pool;

use crate::actions::{Action, Secret};
use crate::metrics::metrics;
use crate::outbound::{blocked, read_limited, signature, Clients, MAX_ERROR_BODY, SIGNATURE_HEADER};
use crate::{DeliveryConfig, HuntError};

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

/// Where an action may go, checked, with what it is sent with.
enum Target {
    Webhook { url: Url, secret: Option<Secret> },
    Awx { url: Url },
}

/// Delivers pending actions (only those in `only`, when given), oldest first.
pub async fn deliver_pending(
    pool: &Pool,
    cfg: &DeliveryConfig,
    only: Option<&[i64]>,
) -> Result<DeliverySummary, HuntError> {
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
    if ids.is_empty() {
        return Ok(summary);
    }
    let clients = Clients::new(cfg)?;
    for id in ids {
        match deliver_one(pool, &clients, cfg, id).await? {
            Some(true) => summary.delivered += 1,
            Some(false) => summary.failed += 1,
            None => {}
        }
    }
    Ok(summary)
}

/// Delivers one action unless another process holds it; `Some(delivered)`.
async fn deliver_one(pool: &Pool, clients: &Clients, cfg: &DeliveryConfig, id: i64) -> Result<Option<bool>, HuntError> {
    let mut client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let tx = client.transaction().await.map_err(HuntError::db("starting a delivery"))?;
    let Some(row) = tx
        .query_opt(
            "SELECT kind, url, body, attempts, hunt_id FROM alert_actions
              WHERE id = $1 AND status = 'pending' FOR NO KEY UPDATE SKIP LOCKED",
            &[&id],
        )
        .await
        .map_err(HuntError::db("claiming an action"))?
    else {
        return Ok(None);
    };
    let (kind, url): (String, String) = (row.get(0), row.get(1));
    let body = serde_json::to_vec(&row.get::<_, Value>(2)).unwrap_or_default();
    let mut attempts: i32 = row.get(3);
    let target = target(&tx, cfg, &kind, &url, row.get(4)).await?;
    let mut last: (Option<u16>, Option<String>);
    let mut delivered = false;
    let first = attempts;
    loop {
        attempts += 1;
        let started = Instant::now();
        let outcome = match &target {
            Ok(t) => send(clients, cfg, id, t, &body).await,
            Err(refused) => Outcome::GiveUp(None, refused.clone()),
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

/// Where a queued action may go now, or why it may not (recorded as given up).
async fn target(
    tx: &Transaction<'_>,
    cfg: &DeliveryConfig,
    kind: &str,
    url: &str,
    hunt_id: Option<Uuid>,
) -> Result<Result<Target, String>, HuntError> {
    if url.is_empty() {
        return Ok(Err("no AWX base URL: set VIGIL_AWX_URL".into()));
    }
    let Ok(parsed) = Url::parse(url) else {
        return Ok(Err(format!("`{url}` is not a URL")));
    };
    if kind == "awx" {
        return Ok(match &cfg.awx_url {
            None => Err("refused: VIGIL_AWX_URL is not set, so AWX actions are off".into()),
            Some(awx) if awx.origin() != parsed.origin() => Err(format!(
                "refused: `{}` is not VIGIL_AWX_URL's origin, the only place the AWX token goes",
                parsed.origin().ascii_serialization()
            )),
            Some(_) => Ok(Target::Awx { url: parsed }),
        });
    }
    if let Err(b) = cfg.webhook_allow.check_url(&parsed) {
        return Ok(Err(format!("refused: {b}")));
    }
    // The secret is the hunt's current one for this URL (so a rotated secret
    // signs retries too); a webhook the hunt no longer has is not called.
    let row = match hunt_id {
        Some(h) => tx
            .query_opt("SELECT actions FROM hunts WHERE id = $1", &[&h])
            .await
            .map_err(HuntError::db("reading a hunt's actions"))?,
        None => None,
    };
    let actions: Vec<Action> = row.and_then(|r| serde_json::from_value(r.get(0)).ok()).unwrap_or_default();
    let found = actions.into_iter().find_map(|a| match a {
        Action::Webhook { url: u, secret } if u == url => Some(secret),
        _ => None,
    });
    Ok(match found {
        Some(secret) => Ok(Target::Webhook { url: parsed, secret }),
        None => Err("not sent: the hunt no longer has a webhook to this URL".into()),
    })
}

async fn send(clients: &Clients, cfg: &DeliveryConfig, id: i64, target: &Target, body: &[u8]) -> Outcome {
    let (req, url) = match target {
        Target::Webhook { url, secret } => {
            let mut r = clients.webhook.post(url.clone());
            if let Some(s) = secret {
                r = r.header(SIGNATURE_HEADER, signature(s.expose().as_bytes(), body));
            }
            (r, url)
        }
        Target::Awx { url } => {
            let mut r = clients.awx.post(url.clone());
            if let Some(t) = &cfg.awx_token {
                r = r.bearer_auth(t.expose());
            }
            (r, url)
        }
    };
    let req = req.header(CONTENT_TYPE, "application/json").body(body.to_vec());
    let attempt = async {
        match req.send().await {
            Ok(resp) => answer(resp, id, url).await,
            Err(e) => failure(&e, id, url),
        }
    };
    // The client's timeout covers the body too; this bounds the attempt whatever it does.
    tokio::time::timeout(cfg.timeout, attempt).await.unwrap_or_else(|_| Outcome::Retry(None, "timed out".into()))
}

async fn answer(resp: reqwest::Response, id: i64, url: &Url) -> Outcome {
    let s = resp.status();
    let code = s.as_u16();
    if s.is_success() {
        return Outcome::Done(code);
    }
    let excerpt = read_limited(resp, MAX_ERROR_BODY).await;
    tracing::warn!(action = id, url = %url, status = code, body = %String::from_utf8_lossy(&excerpt),
        "alert action answered with an error");
    let msg =
        if s.is_redirection() { format!("HTTP {code} (redirects are not followed)") } else { format!("HTTP {code}") };
    if s.is_server_error() || code == 429 {
        Outcome::Retry(Some(code), msg)
    } else {
        Outcome::GiveUp(Some(code), msg)
    }
}

fn failure(e: &reqwest::Error, id: i64, url: &Url) -> Outcome {
    if let Some(b) = blocked(e) {
        return Outcome::GiveUp(None, format!("refused: {b}"));
    }
    tracing::warn!(action = id, url = %url, "alert action failed: {}", error_chain(e));
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    Outcome::Retry(None, what.into())
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
