//! Hunts and alerts over HTTP against a real `vigil serve` and PostgreSQL:
//! CRUD, validation errors, roles, a run on demand, the triage flow, and the
//! audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_store::testing::TempDatabase;

#[tokio::test]
async fn hunts_and_alerts_over_http() {
    let db = TempDatabase::create().await.unwrap();
    // Settle 0 so a run on demand sees what was just stored.
    let (_server, base) = common::serve(&db.url, &[("VIGIL_HUNT_SETTLE_S", "0")]).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let viewer = common::token(&db.url, "viewer", "victor");
    let ingest = common::token(&db.url, "ingest", "shipper");
    let http = reqwest::Client::new();
    let hunts = format!("{base}/api/v1/hunts");
    // Yearly, so the server's own scheduler stays out of the way.
    let spec = json!({"name": "root ssh", "query": "kind:auth user:root", "schedule": "0 0 1 1 *",
                      "severity": "high", "group_by": ["host"], "suppression": "1h",
                      "meta": {"sigma": {"id": "5f6d", "level": "high", "tags": ["attack.t1110"]}}});

    // Roles.
    assert_eq!(http.get(&hunts).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.get(&hunts).bearer_auth(&ingest).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let alerts_url = format!("{base}/api/v1/alerts");
    assert_eq!(http.get(&alerts_url).bearer_auth(&ingest).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(http.get(&hunts).bearer_auth(&viewer).send().await.unwrap().status(), StatusCode::OK);
    let r = http.post(&hunts).bearer_auth(&viewer).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "forbidden");
    assert_eq!(
        http.post(&hunts).bearer_auth(&ingest).json(&spec).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Validation: bad SRQL (code and span), bad cron, aggregation.
    let mut bad = spec.clone();
    bad["query"] = json!("kind:auth hots:web-01");
    let r = http.post(&hunts).bearer_auth(&analyst).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = r.json::<Value>().await.unwrap()["error"].clone();
    assert_eq!(e["code"], "unknown_field");
    assert_eq!(e["span"], json!({"start": 10, "end": 14}));
    let mut bad = spec.clone();
    bad["schedule"] = json!("*/5 * *");
    let r = http.post(&hunts).bearer_auth(&analyst).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = r.json::<Value>().await.unwrap()["error"].clone();
    assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("bad_schedule"), Some("schedule")));
    let mut bad = spec.clone();
    bad["query"] = json!("kind:auth | stats count() by host");
    let r = http.post(&hunts).bearer_auth(&analyst).json(&bad).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_supported");
    let r = http.post(&hunts).bearer_auth(&analyst).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Create, read, replace; a second hunt of the same name is a conflict.
    let r = http.post(&hunts).bearer_auth(&analyst).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let h: Value = r.json().await.unwrap();
    let id = h["id"].as_str().unwrap().to_string();
    assert_eq!((h["severity"].as_str(), h["created_by"].as_str()), (Some("high"), Some("alice")));
    assert_eq!(h["meta"]["sigma"]["id"], "5f6d");
    assert_eq!(
        http.post(&hunts).bearer_auth(&analyst).json(&spec).send().await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let list: Value = common::get_json(&hunts, &viewer).await;
    assert_eq!(list["hunts"].as_array().unwrap().len(), 1);
    let one = format!("{hunts}/{id}");
    let got: Value = common::get_json(&one, &viewer).await;
    assert_eq!(got["query"], "kind:auth user:root");
    let mut changed = spec.clone();
    changed["severity"] = json!("critical");
    let r = http.put(&one).bearer_auth(&analyst).json(&changed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["severity"], "critical");
    assert_eq!(
        http.put(&one).bearer_auth(&viewer).json(&changed).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let missing = format!("{hunts}/{}", Uuid::new_v4());
    assert_eq!(http.get(&missing).bearer_auth(&viewer).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // An event, then a run on demand raises an alert linked to it.
    let pg = vigil_store::connect_one(&db.url).await.unwrap();
    let event_id = Uuid::new_v4();
    pg.execute(
        "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, message, user_name, schema_version)
         VALUES (now(), $1, 'auth', 'sshd', 'web-07', 3002, 3, 'Accepted password for root', 'root', 1)",
        &[&event_id],
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        http.post(format!("{one}/run")).bearer_auth(&viewer).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let r: Value = http.post(format!("{one}/run")).bearer_auth(&analyst).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["matches"].as_u64(), r["alerts_created"].as_u64()), (Some(1), Some(1)), "{r}");
    let runs: Value = common::get_json(&format!("{one}/runs"), &viewer).await;
    assert_eq!(runs["runs"][0]["matches"], 1);
    assert_eq!(runs["runs"][0]["manual"], true);

    // Alerts: list with filters, one with its events.
    let page: Value = common::get_json(&format!("{alerts_url}?status=open&severity=high&hunt={id}"), &viewer).await;
    let list = page["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{page}");
    let alert = list[0].clone();
    assert_eq!(
        (alert["severity"].as_str(), alert["host"].as_str(), alert["count"].as_i64()),
        (Some("critical"), Some("web-07"), Some(1))
    );
    assert_eq!(alert["meta"]["sigma"]["level"], "high");
    let aid = alert["id"].as_str().unwrap().to_string();
    let r = http.get(format!("{alerts_url}?status=bogus")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let none: Value = common::get_json(&format!("{alerts_url}?status=closed"), &viewer).await;
    assert_eq!(none["alerts"].as_array().unwrap().len(), 0);
    let a_url = format!("{alerts_url}/{aid}");
    let full: Value = common::get_json(&a_url, &viewer).await;
    assert_eq!(full["event_ids"], json!([event_id]));

    // Triage: acknowledge, assign, close with a reason.
    assert_eq!(
        http.post(format!("{a_url}/acknowledge")).bearer_auth(&viewer).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let a: Value =
        http.post(format!("{a_url}/acknowledge")).bearer_auth(&analyst).send().await.unwrap().json().await.unwrap();
    assert_eq!((a["status"].as_str(), a["acknowledged_by"].as_str()), (Some("acknowledged"), Some("alice")));
    let a: Value = common::post_json(format!("{a_url}/assign"), &analyst, &json!({"assignee": "bob"})).await;
    assert_eq!(a["assignee"], "bob");
    let bobs: Value = common::get_json(&format!("{alerts_url}?assignee=bob"), &viewer).await;
    assert_eq!(bobs["alerts"].as_array().unwrap().len(), 1);
    let r = http.post(format!("{a_url}/close")).bearer_auth(&analyst).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "reason_required");
    let a: Value =
        common::post_json(format!("{a_url}/close"), &analyst, &json!({"reason": "authorised admin work"})).await;
    assert_eq!((a["status"].as_str(), a["close_reason"].as_str()), (Some("closed"), Some("authorised admin work")));
    let r = http
        .post(format!("{a_url}/close"))
        .bearer_auth(&analyst)
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Counters on /metrics.
    let m = http.get(format!("{base}/metrics")).bearer_auth(&viewer).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("vigil_hunt_runs_total 1"), "{m}");
    assert!(m.contains("vigil_alerts_created_total 1"), "{m}");

    // Delete: the hunt goes, its alert stays.
    assert_eq!(http.delete(&one).bearer_auth(&viewer).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(http.delete(&one).bearer_auth(&analyst).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(http.get(&one).bearer_auth(&viewer).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let kept: Value = common::get_json(&a_url, &viewer).await;
    assert_eq!((kept["hunt_id"].clone(), kept["rule"].as_str()), (Value::Null, Some("root ssh")));

    // Every change is in the audit log, by whom and how it went.
    let rows = pg
        .query("SELECT action, target, token_name, outcome FROM audit_log WHERE action LIKE 'hunt.%' OR action LIKE 'alert.%' ORDER BY id", &[])
        .await
        .unwrap();
    let log: Vec<(String, Option<String>, Option<String>, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    let has = |action: &str, outcome: &str| log.iter().any(|(a, _, _, o)| a == action && o == outcome);
    assert!(
        has("hunt.create", "ok") && has("hunt.create", "unknown_field") && has("hunt.create", "bad_schedule"),
        "{log:?}"
    );
    assert!(has("hunt.create", "conflict") && has("hunt.update", "ok") && has("hunt.run", "ok"), "{log:?}");
    assert!(has("alert.acknowledge", "ok") && has("alert.assign", "ok") && has("alert.close", "ok"), "{log:?}");
    assert!(
        has("alert.close", "reason_required") && has("alert.close", "conflict") && has("hunt.delete", "ok"),
        "{log:?}"
    );
    let close = log.iter().find(|(a, _, _, o)| a == "alert.close" && o == "ok").unwrap();
    assert_eq!((close.1.as_deref(), close.2.as_deref()), (Some(aid.as_str()), Some("alice")));
    let detail: Value = pg
        .query_one("SELECT detail FROM audit_log WHERE action = 'alert.close' AND outcome = 'ok'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(detail["reason"], "authorised admin work");
}

/// A correlation hunt over HTTP: validated with a named field, stored and
/// returned, and a run on demand alerts on the group that crossed the count
/// within the timespan, not on the one that did not.
#[tokio::test]
async fn correlation_hunt_over_http_alerts_on_the_group_that_crossed_the_count() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_HUNT_SETTLE_S", "0")]).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let http = reqwest::Client::new();
    let hunts = format!("{base}/api/v1/hunts");
    let query = "kind:auth status:failure";
    let spec = json!({"name": "ssh brute force", "query": query, "schedule": "0 0 1 1 *", "severity": "high",
        "correlation": {"type": "event_count", "rules": [{"name": "failed", "query": query}],
                        "group_by": ["host"], "timespan": "5m", "condition": {"gte": 5}}});

    let mut bad = spec.clone();
    bad["correlation"]["timespan"] = json!("forever");
    let r = http.post(&hunts).bearer_auth(&analyst).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = r.json::<Value>().await.unwrap()["error"].clone();
    assert_eq!(e["code"], "bad_correlation");
    assert!(e["message"].as_str().unwrap().starts_with("correlation.timespan"), "{e}");

    let r = http.post(&hunts).bearer_auth(&analyst).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["correlation"]["type"], "event_count");
    let one = format!("{hunts}/{}", h["id"].as_str().unwrap());

    // Six failures on web-01 within a minute, four on web-02.
    let pg = vigil_store::connect_one(&db.url).await.unwrap();
    for (host, n) in [("web-01", 6), ("web-02", 4)] {
        for i in 0..n {
            pg.execute(
                "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, status_id, message,
                                     user_name, schema_version)
                 VALUES (now() - make_interval(secs => $2), $1, 'auth', 'sshd', $3, 3002, 3, 2,
                         'Failed password for root', 'root', 1)",
                &[&Uuid::new_v4(), &(f64::from(i) * 5.0), &host],
            )
            .await
            .unwrap();
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let r: Value = http.post(format!("{one}/run")).bearer_auth(&analyst).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["matches"].as_u64(), r["alerts_created"].as_u64()), (Some(10), Some(1)), "{r}");
    let page: Value =
        common::get_json(&format!("{base}/api/v1/alerts?hunt={}", h["id"].as_str().unwrap()), &analyst).await;
    let alerts = page["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{page}");
    assert_eq!(alerts[0]["host"], "web-01");
    assert_eq!(alerts[0]["meta"]["correlation"]["count"], 6, "{}", alerts[0]);
}

/// A manual run answers with its report while the hunt's webhook is still
/// hanging: delivery (and its retries) happens in the background.
#[tokio::test]
async fn run_now_answers_without_waiting_for_a_hanging_webhook() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) =
        common::serve(&db.url, &[("VIGIL_HUNT_SETTLE_S", "0"), ("VIGIL_WEBHOOK_ALLOW", "127.0.0.1")]).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();

    // Accepts connections and never answers them.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let (called, mut was_called) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = hook.accept().await {
            held.push(conn);
            let _ = called.send(()).await;
        }
    });

    let spec = json!({"name": "hanging hook", "query": "kind:auth user:root", "schedule": "0 0 1 1 *",
        "actions": [{"type": "webhook", "url": hook_url}]});
    let h: Value = common::post_json(format!("{base}/api/v1/hunts"), &analyst, &spec).await;
    let pg = vigil_store::connect_one(&db.url).await.unwrap();
    pg.execute(
        "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, message, user_name, schema_version)
         VALUES (now(), $1, 'auth', 'sshd', 'web-07', 3002, 3, 'Accepted password for root', 'root', 1)",
        &[&Uuid::new_v4()],
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;

    let run = format!("{base}/api/v1/hunts/{}/run", h["id"].as_str().unwrap());
    let r: Value = http.post(&run).bearer_auth(&analyst).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["alerts_created"], 1, "{r}");
    // The answer came before any delivery attempt finished (each waits up to
    // 10 s on this webhook, five times), and the webhook is called.
    let attempts: i32 = pg.query_one("SELECT attempts FROM alert_actions", &[]).await.unwrap().get(0);
    assert_eq!(attempts, 0);
    tokio::time::timeout(std::time::Duration::from_secs(20), was_called.recv())
        .await
        .expect("the webhook was never called")
        .unwrap();
}

/// Where actions may go is the server's: a webhook outside
/// `VIGIL_WEBHOOK_ALLOW` or an AWX base URL at another origin than
/// `VIGIL_AWX_URL` is refused when saved, naming the field; a webhook's
/// secret is stored and never shown.
#[tokio::test]
async fn action_targets_are_checked_when_saved_and_secrets_are_not_shown() {
    let db = TempDatabase::create().await.unwrap();
    let env = [("VIGIL_WEBHOOK_ALLOW", "hooks.example.com"), ("VIGIL_AWX_URL", "https://awx.example")];
    let (_server, base) = common::serve(&db.url, &env).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let http = reqwest::Client::new();
    let hunts = format!("{base}/api/v1/hunts");
    let spec = |actions: Value| json!({"name": "root ssh", "query": "kind:auth user:root", "schedule": "0 0 1 1 *", "actions": actions});
    let refused = |actions: Value| {
        let r = http.post(&hunts).bearer_auth(&analyst).json(&spec(actions)).send();
        async move {
            let r = r.await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let e = r.json::<Value>().await.unwrap()["error"].clone();
            assert_eq!(e["field"], "actions", "{e}");
            (e["code"].as_str().unwrap().to_string(), e["message"].as_str().unwrap().to_string())
        }
    };
    for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "https://evil.example/"] {
        let (code, msg) = refused(json!([{"type": "webhook", "url": url}])).await;
        assert_eq!(code, "webhook_not_allowed");
        assert!(msg.contains("actions[0].url") && msg.contains("VIGIL_WEBHOOK_ALLOW"), "{msg}");
    }
    let (code, msg) =
        refused(json!([{"type": "awx", "job_template_id": 3, "base_url": "https://collector.evil.example"}])).await;
    assert_eq!(code, "awx_origin");
    assert!(msg.contains("actions[0].base_url") && msg.contains("https://awx.example"), "{msg}");

    let secret = "a-receiver-secret-of-32-characters";
    let ok = spec(json!([{"type": "webhook", "url": "https://hooks.example.com/vigil", "secret": secret},
                         {"type": "awx", "job_template_id": 3, "base_url": "https://awx.example/"}]));
    let r = http.post(&hunts).bearer_auth(&analyst).json(&ok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    assert!(!text.contains(secret), "{text}");
    let h: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        h["actions"][0],
        json!({"type": "webhook", "url": "https://hooks.example.com/vigil", "has_secret": true})
    );
    let got = http.get(format!("{hunts}/{}", h["id"].as_str().unwrap())).bearer_auth(&analyst).send().await.unwrap();
    assert!(!got.text().await.unwrap().contains(secret));
}
