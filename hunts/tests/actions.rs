//! Actions on new alerts against a local HTTP server: retries with backoff
//! on 5xx, none on 4xx, every attempt recorded, and the AWX launch call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_hunts::actions::{self, DeliveryConfig};
use vigil_hunts::{alerts, hunt, HuntSpec, ManualClock, Runner, Settings};
use vigil_store::testing::{migrated, TempDatabase};
use vigil_store::{Pool, TimescaleChoice};

/// A request the test server received: path, Authorization header, body.
type Seen = (String, Option<String>, Value);

/// What the test server received, and the statuses it answers with in turn
/// (the last one repeats).
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Vec<u16>>,
}

async fn hook(State(r): State<Recorder>, uri: Uri, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut seen = r.seen.lock().unwrap();
    seen.push((uri.path().to_string(), auth, body));
    let code = r.answers.get(seen.len() - 1).or(r.answers.last()).copied().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn server(answers: &[u16]) -> (String, Recorder) {
    let rec = Recorder { seen: Default::default(), answers: Arc::new(answers.to_vec()) };
    let app = axum::Router::new().fallback(axum::routing::post(hook)).with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, rec)
}

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
}

/// A hunt with `actions`, one matching event, and its first run done: the alert's id.
async fn alert_with(actions: Value, delivery: DeliveryConfig) -> (TempDatabase, Pool, Uuid) {
    let (db, pool) = migrated(TimescaleChoice::Auto).await;
    let clock = Arc::new(ManualClock::new(t(12, 0)));
    let settings = Settings { settle: TimeDelta::seconds(10), delivery, ..Default::default() };
    let runner = Runner::new(pool.clone(), settings, clock.clone());
    let spec: HuntSpec = serde_json::from_value(json!({
        "name": "root logins", "query": "kind:auth user:root", "schedule": "*/5 * * * *", "severity": "critical",
        "group_by": ["host"], "actions": actions}))
    .unwrap();
    let h = hunt::create(&pool, &spec.validate(1000).unwrap(), None, t(12, 0), TimeDelta::seconds(10)).await.unwrap();
    pool.get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, message, user_name,
                                 schema_version, ingested_at)
             VALUES (now(), $1, 'auth', 'sshd', 'web-01', 3002, 3, 'Accepted password', 'root', 1, $2)",
            &[&Uuid::new_v4(), &t(12, 2)],
        )
        .await
        .unwrap();
    clock.set(t(12, 5));
    let r = runner.tick().await.unwrap();
    assert_eq!(r[0].alerts_created, 1);
    assert_eq!(r[0].hunt_id, h.id);
    (db, pool, r[0].new_alerts[0])
}

fn fast(attempts: u32) -> DeliveryConfig {
    DeliveryConfig {
        max_attempts: attempts,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_webhook_is_retried_after_5xx_and_every_attempt_is_recorded() {
    let (base, rec) = server(&[500, 503, 200]).await;
    let url = format!("{base}/hooks/siem");
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), fast(5)).await;

    let acts = actions::for_alert(&pool, alert).await.unwrap();
    assert_eq!(acts.len(), 1);
    let a = &acts[0];
    assert_eq!((a.status.as_str(), a.attempts, a.last_status), ("delivered", 3, Some(200)));
    let codes: Vec<Option<i32>> = a.deliveries.iter().map(|d| d.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(503), Some(200)]);
    assert_eq!(a.deliveries.iter().map(|d| d.attempt).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(a.deliveries[0].error.as_deref().unwrap().contains("500"));
    assert!(a.deliveries[2].error.is_none());

    // The payload: the alert with its hunt, severity, group, count and links.
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let (path, auth, body) = &seen[2];
    assert_eq!(path, "/hooks/siem");
    assert!(auth.is_none());
    let al = &body["alert"];
    assert_eq!(body["source"], "vigil");
    assert_eq!(al["id"], alert.to_string());
    assert_eq!(al["hunt"]["name"], "root logins");
    assert_eq!(al["severity"], "critical");
    assert_eq!(al["group"], json!({"host": "web-01"}));
    assert_eq!(al["count"], 1);
    assert_eq!(al["event_ids"].as_array().unwrap().len(), 1);
    assert_eq!(al["links"]["alert"], format!("/api/v1/alerts/{alert}"));
    assert_eq!(alerts::get(&pool, alert).await.unwrap().count, 1);
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_exhausted_retries_fail() {
    let (base, rec) = server(&[400]).await;
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": base}]), fast(5)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts, a.last_status), ("failed", 1, Some(400)));
    assert_eq!(rec.seen.lock().unwrap().len(), 1);

    // Always 502: tried max_attempts times, then given up.
    let (base, rec) = server(&[502]).await;
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": base}]), fast(3)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts, a.deliveries.len()), ("failed", 3, 3));
    assert_eq!(rec.seen.lock().unwrap().len(), 3);

    // Nobody listening: connection errors are retried and recorded.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_db, pool, alert) =
        alert_with(json!([{"type": "webhook", "url": format!("http://127.0.0.1:{port}/")}]), fast(2)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts), ("failed", 2));
    assert!(a.deliveries.iter().all(|d| d.status_code.is_none() && d.error.is_some()));
}

#[tokio::test]
async fn awx_launches_the_job_template_with_extra_vars_and_the_token() {
    let (base, rec) = server(&[201]).await;
    let delivery = DeliveryConfig { awx_url: Some(format!("{base}/")), awx_token: Some("s3cret".into()), ..fast(3) };
    let (_db, pool, alert) = alert_with(
        json!([{"type": "awx", "job_template_id": 42, "extra_vars": {"playbook_limit": "web-01", "isolate": true}}]),
        delivery,
    )
    .await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.kind.as_str(), a.status.as_str(), a.last_status), ("awx", "delivered", Some(201)));
    let seen = rec.seen.lock().unwrap().clone();
    let (path, auth, body) = &seen[0];
    assert_eq!(path, "/api/v2/job_templates/42/launch/");
    assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
    let vars = &body["extra_vars"];
    assert_eq!(vars["playbook_limit"], "web-01");
    assert_eq!(vars["isolate"], true);
    assert_eq!(vars["vigil_alert"]["id"], alert.to_string());
    assert_eq!(vars["vigil_alert"]["host"], "web-01");
    // The token is configuration, never stored.
    let stored: Value =
        pool.get().await.unwrap().query_one("SELECT to_jsonb(a) FROM alert_actions a", &[]).await.unwrap().get(0);
    assert!(!stored.to_string().contains("s3cret"));
    assert_eq!(
        actions::awx_launch_url("https://awx.example/", 7),
        "https://awx.example/api/v2/job_templates/7/launch/"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let c = DeliveryConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        ..Default::default()
    };
    assert_eq!((1..=5).map(|n| c.backoff(n).as_millis()).collect::<Vec<_>>(), vec![100, 200, 400, 500, 500]);
}
