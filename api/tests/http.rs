//! The HTTP API with tokens: `POST /api/v1/ingest` and `/metrics`, against a
//! real `vigil serve` and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Utc;
use serde_json::Value;
use vigil_event::{Event, Kind};
use vigil_store::testing::TempDatabase;

fn event(i: u32) -> String {
    let mut e = Event::new(Kind::Auth, "sshd", Utc::now(), format!("http-{i}").as_bytes());
    e.host = Some("web-01".into());
    e.message = format!("Failed password for root #{i}");
    serde_json::to_string(&e).unwrap()
}

#[tokio::test]
async fn ingest_over_http_needs_an_ingest_token_and_answers_per_line() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[]).await;
    let ingest = common::token(&db.url, "ingest", "ingest");
    let viewer = common::token(&db.url, "viewer", "viewer");
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/ingest");
    let body =
        [event(1), "{broken".to_string(), event(2), r#"{"schema_version":7}"#.to_string(), event(3), String::new()]
            .join("\n");

    let r = client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");
    let r = client.post(&url).bearer_auth("vgl_not-a-token").body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client.post(&url).bearer_auth(&viewer).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 403, "a viewer token may not ingest");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "forbidden");

    let r = client.post(&url).bearer_auth(&ingest).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["received"].as_u64(), v["stored"].as_u64(), v["duplicates"].as_u64()), (Some(5), Some(3), Some(0)));
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!((rejected[0]["line"].as_u64(), rejected[0]["code"].as_str()), (Some(2), Some("invalid_json")));
    assert_eq!((rejected[1]["line"].as_u64(), rejected[1]["code"].as_str()), (Some(4), Some("future_schema")));

    // The same body again: nothing new, and the dead letters are not doubled.
    let v: Value = client.post(&url).bearer_auth(&ingest).body(body).send().await.unwrap().json().await.unwrap();
    assert_eq!((v["stored"].as_u64(), v["duplicates"].as_u64()), (Some(0), Some(3)));
    let pool = vigil_store::connect(&db.url, 1).unwrap();
    let c = pool.get().await.unwrap();
    assert_eq!(c.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get::<_, i64>(0), 3);
    assert_eq!(
        c.query_one("SELECT count(*) FROM ingest_errors WHERE channel = 'http'", &[]).await.unwrap().get::<_, i64>(0),
        2
    );
    // Both requests are in the audit log, with what they stored.
    let audited: Vec<(Option<i64>, String)> = c
        .query(
            "SELECT result_size, outcome FROM audit_log WHERE action = 'ingest' AND token_name = 'ingest' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(audited, vec![(Some(3), "ok".to_string()), (Some(0), "ok".to_string())]);

    // Metrics need a token too, and count the HTTP channel.
    assert_eq!(client.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);
    let text = client.get(format!("{base}/metrics")).bearer_auth(&viewer).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("vigil_ingest_received_total{lane=\"http\"} 10"), "{text}");
    assert!(text.contains("vigil_ingest_dead_lettered_total{channel=\"http\",reason=\"invalid_json\"} 2"), "{text}");
    // /health stays open for load balancers.
    assert_eq!(client.get(format!("{base}/health")).send().await.unwrap().status(), 200);

    // Too large a body is refused (the server then drops the connection, so this goes last).
    let huge = vec![b' '; 17 * 1024 * 1024];
    let r = client.post(&url).bearer_auth(&ingest).body(huge).send().await.unwrap();
    assert_eq!(r.status(), 413);
}
