//! `POST /api/v1/search`, `/search/explain` and `GET /api/v1/fields` against a
//! real `vigil serve` and PostgreSQL: pages that add up to the whole answer,
//! totals, SRQL errors with their span, limits, rate limiting and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use vigil_event::{Event, Kind};
use vigil_store::testing::TempDatabase;

/// 250 failed logins on web-01 and 50 on db-01, one a second, ingested over HTTP.
async fn seed(base: &str, ingest: &str) {
    let now = Utc::now();
    let lines: Vec<String> = (0..300)
        .map(|i| {
            let mut e =
                Event::new(Kind::Auth, "sshd", now - Duration::seconds(i64::from(i) + 5), format!("s-{i}").as_bytes());
            e.host = Some(if i < 250 { "web-01" } else { "db-01" }.into());
            e.user = Some(format!("user{}", i % 7));
            e.message = format!("Failed password for user{} from 10.0.0.{}", i % 7, i % 250);
            serde_json::to_string(&e).unwrap()
        })
        .collect();
    ingest_lines(base, ingest, &lines).await;
}

/// Sends `lines` (event JSON) through `POST /api/v1/ingest`.
async fn ingest_lines(base: &str, ingest: &str, lines: &[String]) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(ingest)
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn post(base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn pages_add_up_to_the_whole_answer_and_errors_point_at_the_query() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_RATE_LIMIT", "0")]).await;
    let ingest = common::token(&db.url, "ingest", "ingest");
    let viewer = common::token(&db.url, "viewer", "alice");
    seed(&base, &ingest).await;

    // Page through 250 rows, 100 at a time: every row once, newest first, and
    // the total known from the first page.
    let query = "host:web-01 time:last_1h";
    let (s, first) = post(&base, "/api/v1/search", &viewer, json!({"query": query, "limit": 100})).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["total"], 250, "{first}");
    assert_eq!(first["total_relation"], "eq");
    assert_eq!(first["visualization"], "table");
    assert!(first["columns"].as_array().unwrap().iter().any(|c| c["name"] == "host"));
    let mut ids = Vec::new();
    let mut page = first;
    loop {
        for r in page["rows"].as_array().unwrap() {
            assert_eq!(r["host"], "web-01");
            ids.push((r["time"].as_str().unwrap().to_string(), r["event_id"].as_str().unwrap().to_string()));
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_string) else { break };
        let (s, next) =
            post(&base, "/api/v1/search", &viewer, json!({"query": query, "limit": 100, "cursor": cursor})).await;
        assert_eq!(s, 200, "{next}");
        assert_eq!(next["total"], 250);
        page = next;
    }
    assert_eq!(ids.len(), 250);
    assert_eq!(ids.iter().map(|x| &x.1).collect::<HashSet<_>>().len(), 250, "no row twice");
    assert!(ids.windows(2).all(|w| w[0].0 >= w[1].0), "newest first across pages");

    // A limit smaller than the matches: the count says how many there are.
    let (_, v) = post(&base, "/api/v1/search", &viewer, json!({"query": "in:events time:last_1h | head 10"})).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 10);
    let (_, v) = post(&base, "/api/v1/search", &viewer, json!({"query": "time:last_1h", "limit": 5})).await;
    assert_eq!((v["rows"].as_array().unwrap().len(), v["total"].as_u64()), (5, Some(300)), "{v}");

    // Aggregations come back as rows with their types.
    let (s, v) =
        post(&base, "/api/v1/search", &viewer, json!({"query": "time:last_1h | stats count() as n by host"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["visualization"], "stats");
    let mut got: Vec<(String, i64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, vec![("db-01".to_string(), 50), ("web-01".to_string(), 250)]);

    // SRQL errors: a stable code, the span of the mistake and a suggestion.
    let bad = "hots:web-01";
    let (s, v) = post(&base, "/api/v1/search", &viewer, json!({"query": bad})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "unknown_field");
    assert_eq!((v["error"]["span"]["start"].as_u64(), v["error"]["span"]["end"].as_u64()), (Some(0), Some(4)));
    assert!(v["error"]["suggestions"].to_string().contains("host"), "{v}");
    let (s, v) = post(&base, "/api/v1/search", &viewer, json!({"query": "host:web-01 | stats count( by"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("syntax")), "{v}");
    assert!(v["error"]["span"]["start"].as_u64().unwrap() > 12, "{v}");

    // Request mistakes name what was wrong.
    for (body, code) in [
        (json!({"query": ""}), "empty_query"),
        (json!({"query": query, "limit": 0}), "bad_limit"),
        (json!({"query": query, "limit": 5000}), "bad_limit"),
        (json!({"query": query, "cursor": "not-a-cursor"}), "bad_cursor"),
    ] {
        let (s, v) = post(&base, "/api/v1/search", &viewer, body.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some(code)), "{body} → {v}");
    }
    // A cursor from another query does not continue this one.
    let (_, p1) = post(&base, "/api/v1/search", &viewer, json!({"query": query, "limit": 10})).await;
    let (s, v) = post(
        &base,
        "/api/v1/search",
        &viewer,
        json!({"query": "host:db-01 time:last_1h", "cursor": p1["next_cursor"]}),
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("bad_cursor")), "{v}");
    // Unknown request fields are refused rather than ignored.
    let (s, _) = post(&base, "/api/v1/search", &viewer, json!({"query": query, "limt": 5})).await;
    assert_eq!(s, 422);

    // Explain: the plan and parameterized SQL; values only as parameters.
    let (s, v) = post(&base, "/api/v1/search/explain", &viewer, json!({"query": "host:web-01 severity:>=high"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(!v["sql"].as_str().unwrap().contains("web-01"));
    assert!(v["params"].to_string().contains("web-01"));
    assert!(v["plan"].as_array().unwrap().len() >= 2);

    // Fields: the registry an editor completes from.
    let r = reqwest::Client::new().get(format!("{base}/api/v1/fields")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let f: Value = r.json().await.unwrap();
    let events = f["entities"].as_array().unwrap().iter().find(|e| e["name"] == "events").unwrap();
    assert!(events["fields"].as_array().unwrap().iter().any(|x| x["name"] == "severity"));
    assert!(f["pipes"].as_array().unwrap().iter().any(|p| p == "SIMILAR_TO"));
    assert_eq!(f["limits"]["max_page"], 1000);

    // Roles: ingest tokens cannot search; no token is 401.
    let (s, _) = post(&base, "/api/v1/search", &ingest, json!({"query": query})).await;
    assert_eq!(s, 403);
    let r = reqwest::Client::new().post(format!("{base}/api/v1/search")).json(&json!({"query": query})).send();
    assert_eq!(r.await.unwrap().status(), 401);

    // Every search is in the audit log: who, what and how many rows.
    let client = vigil_store::connect(&db.url, 1).unwrap().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE outcome <> 'ok'), \
             max(result_size) FILTER (WHERE detail->>'query' = 'time:last_1h | stats count() as n by host') \
             FROM audit_log WHERE token_name = 'alice' AND action = 'search'",
            &[],
        )
        .await
        .unwrap();
    let (all, failed, stats_rows): (i64, i64, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(all, 14, "every search that reached the executor or was refused for its content is audited");
    assert_eq!(failed, 7, "the failed searches are audited with their error code");
    assert_eq!(stats_rows, Some(2));
}

#[tokio::test]
async fn row_caps_timeouts_and_rate_limits_hold() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(
        &db.url,
        &[("VIGIL_RATE_LIMIT", "1,20"), ("VIGIL_QUERY_MAX_ROWS", "120"), ("VIGIL_QUERY_TIMEOUT", "1")],
    )
    .await;
    let ingest = common::token(&db.url, "ingest", "ingest");
    let viewer = common::token(&db.url, "viewer", "viewer");
    seed(&base, &ingest).await;

    // The row cap: pages stop at 120 rows and say so.
    let (s, v) = post(&base, "/api/v1/search", &viewer, json!({"query": "time:last_1h", "limit": 100})).await;
    assert_eq!(s, 200, "{v}");
    let (_, v2) = post(
        &base,
        "/api/v1/search",
        &viewer,
        json!({"query": "time:last_1h", "limit": 100, "cursor": v["next_cursor"]}),
    )
    .await;
    assert_eq!(v2["rows"].as_array().unwrap().len(), 20, "{v2}");
    assert!(v2["next_cursor"].is_null());
    assert!(v2["warnings"].to_string().contains("row cap"), "{v2}");

    // A query that outlives the statement timeout (1 ms here, over 38k rows)
    // is cancelled with a clear error.
    let client = vigil_store::connect(&db.url, 1).unwrap().get().await.unwrap();
    for _ in 0..7 {
        client
            .batch_execute(
                "CREATE TEMP TABLE copies AS SELECT * FROM events; UPDATE copies SET event_id = gen_random_uuid(); \
                 INSERT INTO events SELECT * FROM copies; DROP TABLE copies;",
            )
            .await
            .unwrap();
    }
    let (_server2, base2) = common::serve(&db.url, &[("VIGIL_QUERY_TIMEOUT", "1ms")]).await;
    let slow = "time:last_1h | stats count() by message, user | sort -count";
    let (s, v) = post(&base2, "/api/v1/search", &viewer, json!({"query": slow})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (504, Some("query_timeout")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("cancelled after"), "{v}");

    // Rate: 20 requests burst, then 429 with Retry-After; another token is unaffected.
    let client = reqwest::Client::new();
    let mut limited = None;
    for i in 0..40 {
        let r = client.get(format!("{base}/api/v1/fields")).bearer_auth(&viewer).send().await.unwrap();
        if r.status() == 429 {
            limited = Some((i, r.headers().get("retry-after").is_some(), r.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (i, retry_after, body) = limited.expect("the 41st request in a burst of 20 is limited");
    assert!(i >= 15, "limited after {i} requests");
    assert!(retry_after);
    assert_eq!(body["error"]["code"], "rate_limited");
    let other = common::token(&db.url, "viewer", "other");
    let r = client.get(format!("{base}/api/v1/fields")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Bodies over the JSON limit are refused before they are read.
    let huge = json!({"query": "x".repeat(300 * 1024)});
    let (s, _) = post(&base, "/api/v1/search", &other, huge).await;
    assert_eq!(s, 413);
}

/// Reads SSE `row` events from `resp` until `n` arrived (or 20 s passed):
/// their data as JSON and the last event id.
async fn read_rows(resp: &mut reqwest::Response, n: usize) -> (Vec<Value>, Option<String>) {
    let (mut rows, mut last_id, mut buf) = (Vec::new(), None, String::new());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while rows.len() < n {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let field =
                |name: &str| block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().to_string()));
            if field("event:").as_deref() == Some("row") {
                rows.push(serde_json::from_str(&field("data:").unwrap()).unwrap());
                last_id = field("id:");
            }
        }
    }
    (rows, last_id)
}

async fn ingest_hosts(base: &str, ingest: &str, hosts: &[&str]) {
    let lines: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut e = Event::new(Kind::Auth, "sshd", Utc::now(), format!("tail-{h}-{i}-{}", Utc::now()).as_bytes());
            e.host = Some(h.to_string());
            e.message = format!("Accepted publickey for deploy #{i}");
            serde_json::to_string(&e).unwrap()
        })
        .collect();
    ingest_lines(base, ingest, &lines).await;
}

#[tokio::test]
async fn live_tail_streams_new_matching_events_and_resumes_from_its_last_id() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_RATE_LIMIT", "0")]).await;
    let ingest = common::token(&db.url, "ingest", "ingest");
    let viewer = common::token(&db.url, "viewer", "viewer");
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/tail");

    // Mistakes are refused before the stream starts.
    let r = client.get(&url).query(&[("query", "hots:x")]).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unknown_field");
    let r = client.get(&url).query(&[("query", "host:x | stats count()")]).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = client.get(&url).query(&[("query", "host:x")]).bearer_auth(&ingest).send().await.unwrap();
    assert_eq!(r.status(), 403);

    ingest_hosts(&base, &ingest, &["tail-a"]).await; // before the tail: not streamed
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut resp = client.get(&url).query(&[("query", "host:tail-a")]).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    ingest_hosts(&base, &ingest, &["tail-a", "tail-b", "tail-a", "tail-a", "tail-b"]).await;
    let (rows, last_id) = read_rows(&mut resp, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r["host"] == "tail-a"));
    let messages: Vec<&str> = rows.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        ["Accepted publickey for deploy #0", "Accepted publickey for deploy #2", "Accepted publickey for deploy #3"]
    );
    drop(resp);

    // Reconnecting with the last id: only what came after it.
    ingest_hosts(&base, &ingest, &["tail-a", "tail-a"]).await;
    let mut resp = client
        .get(&url)
        .query(&[("query", "host:tail-a")])
        .bearer_auth(&viewer)
        .header("last-event-id", last_id.unwrap())
        .send()
        .await
        .unwrap();
    let (rows, _) = read_rows(&mut resp, 3).await;
    assert_eq!(rows.len(), 2, "the two events ingested while disconnected, nothing older: {rows:?}");
}
