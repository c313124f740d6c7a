//! Correlation hunts (Sigma correlation rules) against real PostgreSQL with a
//! hand-moved clock: event_count, value_count, temporal and temporal_ordered
//! over event time, bursts split across runs, groups, no double alert, and
//! the validation of each field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_hunts::{alerts, hunt, HuntError, HuntSpec, Runner, Settings};
use vigil_store::Pool;

/// Ingestion (and schedule) times: the hand-moved clock.
fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
}

/// Event times: minutes after a base an hour before the real now (inside
/// the partitions the migration created), whole seconds.
fn base() -> DateTime<Utc> {
    (Utc::now() - TimeDelta::hours(1)).duration_trunc(TimeDelta::minutes(1)).unwrap()
}

struct Ev<'a> {
    kind: &'a str,
    host: &'a str,
    user: &'a str,
    process: &'a str,
    port: Option<i32>,
}

fn auth(host: &str) -> Ev<'_> {
    Ev { kind: "auth", host, user: "root", process: "sshd", port: None }
}

/// Stores an event that happened at `time` and was ingested at `ingested`.
async fn store(pool: &Pool, e: Ev<'_>, time: DateTime<Utc>, ingested: DateTime<Utc>) -> Uuid {
    let id = Uuid::new_v4();
    let client = pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, severity_id, message,
                                 user_name, process_name, dst_port, schema_version, ingested_at)
             VALUES ($1, $2, $3, 'test', $4, 3002, 3, 3, 'Failed password', $5, $6, $7, 1, $8)",
            &[&time, &id, &e.kind, &e.host, &e.user, &e.process, &e.port, &ingested],
        )
        .await
        .unwrap();
    id
}

fn hunt_spec(name: &str, correlation: Value) -> Value {
    let query = correlation["rules"][0]["query"].clone();
    json!({"name": name, "query": query, "schedule": "*/5 * * * *", "severity": "high",
           "suppression": "1h", "correlation": correlation})
}

fn brute_force(gte: u64) -> Value {
    hunt_spec(
        "ssh brute force",
        json!({"type": "event_count", "rules": [{"name": "failed_logins", "query": "kind:auth"}],
               "group_by": ["hostname"], "timespan": "5m", "condition": {"gte": gte}}),
    )
}

async fn all_alerts(pool: &Pool, id: Uuid) -> Vec<alerts::Alert> {
    alerts::list(pool, &alerts::Filter { hunt_id: Some(id), limit: 100, ..Default::default() }).await.unwrap().alerts
}

async fn linked(pool: &Pool, alert: Uuid) -> Vec<Uuid> {
    let mut v: Vec<Uuid> = alerts::events(pool, alert, 2000).await.unwrap().iter().map(|e| e.event_id).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

fn minutes(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

#[tokio::test]
async fn event_count_fires_at_n_within_the_timespan_once_per_burst() {
    let (_db, pool, runner, clock, id) = common::setup(brute_force(3), t(12, 0, 0)).await;
    let h = hunt::get(&pool, id).await.unwrap();
    let c = h.correlation.as_ref().expect("stored correlation");
    assert_eq!((c.group_by.clone(), c.timespan_s, c.condition.threshold()), (vec!["host".to_string()], 300, 3));
    assert_eq!(h.group_by, vec!["host".to_string()]);
    assert_eq!(hunt::list(&pool).await.unwrap()[0].correlation, h.correlation);

    let b = base();
    // web-01: N−1 within the timespan. web-02: N, but spread over 12 minutes.
    // web-03: N within 4 minutes: fires.
    let a1 = store(&pool, auth("web-01"), b, t(12, 1, 0)).await;
    let a2 = store(&pool, auth("web-01"), b + minutes(2), t(12, 1, 0)).await;
    for m in [0, 6, 12] {
        store(&pool, auth("web-02"), b + minutes(m), t(12, 1, 0)).await;
    }
    let mut c3 = Vec::new();
    for m in [1, 3, 5] {
        c3.push(store(&pool, auth("web-03"), b + minutes(m), t(12, 2, 0)).await);
    }
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].alerts_updated), (8, 1, 0));
    let all = all_alerts(&pool, id).await;
    assert_eq!(all.len(), 1);
    let web03 = &all[0];
    assert_eq!(web03.group, json!({"host": "web-03"}));
    assert_eq!((web03.count, web03.severity, web03.host.as_deref()), (3, "high", Some("web-03")));
    assert_eq!(linked(&pool, web03.id).await, sorted(c3.clone()));
    let d = &web03.meta["correlation"];
    assert_eq!((d["type"].as_str(), d["count"].as_i64()), (Some("event_count"), Some(3)));
    assert_eq!(d["window_start"], json!(b + minutes(1)));
    assert_eq!(d["window_end"], json!(b + minutes(5)));
    assert_eq!(d["condition"], json!({"gte": 3}));

    // The burst on web-01 completes in the next run (its third event is
    // ingested later, 4 minutes after the first by event time): it fires
    // once, linking all three events.
    let a3 = store(&pool, auth("web-01"), b + minutes(4), t(12, 6, 0)).await;
    clock.set(t(12, 10, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].alerts_updated), (1, 1, 0));
    let web01 = all_alerts(&pool, id).await.into_iter().find(|a| a.group == json!({"host": "web-01"})).unwrap();
    assert_eq!(web01.count, 3);
    assert_eq!(linked(&pool, web01.id).await, sorted(vec![a1, a2, a3]));
    assert_eq!(web01.meta["correlation"]["window_start"], json!(b));
    assert_eq!(web01.meta["correlation"]["window_end"], json!(b + minutes(4)));

    // A run with no new events: nothing fires again on the old ones.
    clock.set(t(12, 15, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].alerts_updated), (0, 0, 0));
    // A match of web-01 in the next run, 5 minutes after the first: the
    // window still satisfies, and the match joins the alert (suppression).
    let a4 = store(&pool, auth("web-01"), b + minutes(5), t(12, 16, 0)).await;
    // web-02 gets an event far from its others: still nothing for web-02.
    store(&pool, auth("web-02"), b + minutes(30), t(12, 16, 0)).await;
    clock.set(t(12, 20, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].alerts_updated), (2, 0, 1));
    let all = all_alerts(&pool, id).await;
    assert_eq!(all.len(), 2);
    let web01 = alerts::get(&pool, web01.id).await.unwrap();
    assert_eq!(web01.count, 4);
    assert_eq!(linked(&pool, web01.id).await, sorted(vec![a1, a2, a3, a4]));
    assert_eq!(web01.meta["correlation"]["count"], json!(4));

    let runs = hunt::runs(&pool, id, 10).await.unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r.error.is_none() && !r.truncated));
}

#[tokio::test]
async fn a_burst_is_seen_whatever_the_order_events_arrive_in() {
    // Late arrival: the older events of a burst come in after a newer one.
    let (_db, pool, runner, clock, id) = common::setup(brute_force(3), t(12, 0, 0)).await;
    let b = base();
    let e3 = store(&pool, auth("web-01"), b + minutes(4), t(12, 1, 0)).await;
    clock.set(t(12, 5, 0));
    assert_eq!(runner.tick().await.unwrap()[0].alerts_created, 0);
    let e1 = store(&pool, auth("web-01"), b, t(12, 6, 0)).await;
    clock.set(t(12, 10, 0));
    assert_eq!(runner.tick().await.unwrap()[0].alerts_created, 0);
    let e2 = store(&pool, auth("web-01"), b + minutes(1), t(12, 11, 0)).await;
    clock.set(t(12, 15, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (1, 1));
    let a = &all_alerts(&pool, id).await[0];
    assert_eq!(linked(&pool, a.id).await, sorted(vec![e1, e2, e3]));
    // Events ingested after the run's window (inside the settle margin) are not used yet.
    store(&pool, auth("web-02"), b, t(12, 19, 55)).await;
    store(&pool, auth("web-02"), b, t(12, 19, 55)).await;
    store(&pool, auth("web-02"), b, t(12, 19, 0)).await;
    clock.set(t(12, 20, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (1, 0));
    clock.set(t(12, 25, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (2, 1));
    assert_eq!(all_alerts(&pool, id).await.len(), 2);
}

#[tokio::test]
async fn value_count_counts_distinct_values_per_group() {
    let spec = hunt_spec(
        "port scan",
        json!({"type": "value_count", "rules": [{"name": "connections", "query": "kind:network"}],
               "group_by": ["host"], "timespan": "10m", "condition": {"gt": 2}, "field": "dport"}),
    );
    let (_db, pool, runner, clock, id) = common::setup(spec, t(12, 0, 0)).await;
    assert_eq!(hunt::get(&pool, id).await.unwrap().correlation.unwrap().field.as_deref(), Some("dst_port"));
    let b = base();
    let net = |host, port| Ev { kind: "network", host, user: "u", process: "nc", port: Some(port) };
    // web-01: five connections, two ports. web-02: three ports.
    for (m, p) in [(0, 22), (1, 22), (2, 80), (3, 80), (4, 22)] {
        store(&pool, net("web-01", p), b + minutes(m), t(12, 1, 0)).await;
    }
    let mut scan = Vec::new();
    for (m, p) in [(0, 22), (2, 80), (9, 443)] {
        scan.push(store(&pool, net("web-02", p), b + minutes(m), t(12, 1, 0)).await);
    }
    // Not a network event: the rule does not match it.
    store(&pool, auth("web-01"), b, t(12, 1, 0)).await;
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (8, 1));
    let all = all_alerts(&pool, id).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].group, json!({"host": "web-02"}));
    assert_eq!(linked(&pool, all[0].id).await, sorted(scan));
    let d = &all[0].meta["correlation"];
    assert_eq!((d["distinct"].as_i64(), d["field"].as_str()), (Some(3), Some("dst_port")));
    assert_eq!(d["values"], json!(["22", "443", "80"]));
}

fn chain(kind: &str, extra: Value) -> Value {
    let mut c = json!({"type": kind,
        "rules": [{"name": "recon", "query": "kind:process process:whoami"},
                  {"name": "root_login", "query": "kind:auth user:root"}],
        "group_by": ["host"], "timespan": "10m"});
    if let (Value::Object(m), Value::Object(e)) = (&mut c, extra) {
        m.extend(e);
    }
    hunt_spec("recon then root", c)
}

fn whoami(host: &str) -> Ev<'_> {
    Ev { kind: "process", host, user: "www", process: "whoami", port: None }
}

#[tokio::test]
async fn temporal_fires_only_when_every_rule_matched_for_the_group_within_the_timespan() {
    let (_db, pool, runner, clock, id) = common::setup(chain("temporal", json!({})), t(12, 0, 0)).await;
    let b = base();
    // web-01: both rules, 5 minutes apart (login first: order does not matter).
    let l1 = store(&pool, auth("web-01"), b, t(12, 1, 0)).await;
    let w1 = store(&pool, whoami("web-01"), b + minutes(5), t(12, 1, 0)).await;
    // web-02: only one rule. web-03: both, but 20 minutes apart.
    store(&pool, whoami("web-02"), b, t(12, 1, 0)).await;
    store(&pool, whoami("web-02"), b + minutes(1), t(12, 1, 0)).await;
    store(&pool, whoami("web-03"), b, t(12, 1, 0)).await;
    store(&pool, auth("web-03"), b + minutes(20), t(12, 1, 0)).await;
    // web-04: the same rule's events and another host's: no.
    store(&pool, auth("web-04"), b, t(12, 1, 0)).await;
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (7, 1));
    let all = all_alerts(&pool, id).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].group, json!({"host": "web-01"}));
    assert_eq!(linked(&pool, all[0].id).await, sorted(vec![l1, w1]));
    assert_eq!(all[0].meta["correlation"]["rules_matched"], json!(["recon", "root_login"]));

    // web-02's missing rule arrives in a later run, within the timespan.
    let l2 = store(&pool, auth("web-02"), b + minutes(8), t(12, 6, 0)).await;
    clock.set(t(12, 10, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!(r[0].alerts_created, 1);
    let web02 = all_alerts(&pool, id).await.into_iter().find(|a| a.group == json!({"host": "web-02"})).unwrap();
    assert!(linked(&pool, web02.id).await.contains(&l2));
    assert_eq!(web02.count, 3);
}

#[tokio::test]
async fn temporal_ordered_fires_for_a_then_b_not_b_then_a() {
    let (_db, pool, runner, clock, id) = common::setup(chain("temporal_ordered", json!({})), t(12, 0, 0)).await;
    let b = base();
    let w = store(&pool, whoami("web-01"), b, t(12, 1, 0)).await;
    let l = store(&pool, auth("web-01"), b + minutes(3), t(12, 1, 0)).await;
    store(&pool, auth("web-02"), b, t(12, 1, 0)).await;
    store(&pool, whoami("web-02"), b + minutes(3), t(12, 1, 0)).await;
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (4, 1));
    let all = all_alerts(&pool, id).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].group, json!({"host": "web-01"}));
    assert_eq!(linked(&pool, all[0].id).await, sorted(vec![w, l]));
    let d = &all[0].meta["correlation"];
    assert_eq!(
        (d["type"].as_str(), d["rules_matched"].clone()),
        (Some("temporal_ordered"), json!(["recon", "root_login"]))
    );
    // web-02 completes the order later (a login after its whoami): fires then.
    store(&pool, auth("web-02"), b + minutes(6), t(12, 7, 0)).await;
    clock.set(t(12, 10, 0));
    assert_eq!(runner.tick().await.unwrap()[0].alerts_created, 1);
}

#[tokio::test]
async fn webhook_payload_carries_the_correlation() {
    use axum::routing::post;
    let got = Arc::new(tokio::sync::Mutex::new(Vec::<Value>::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().await.push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut spec = brute_force(2);
    spec["actions"] = json!([{"type": "webhook", "url": format!("http://{addr}/hook")}]);
    let (_db, pool, runner, clock, _id) = common::setup(spec, t(12, 0, 0)).await;
    let b = base();
    store(&pool, auth("web-01"), b, t(12, 1, 0)).await;
    store(&pool, auth("web-01"), b + TimeDelta::seconds(30), t(12, 1, 0)).await;
    clock.set(t(12, 5, 0));
    assert_eq!(runner.tick().await.unwrap()[0].alerts_created, 1);
    let body = got.lock().await.pop().expect("a webhook call");
    let c = &body["alert"]["correlation"];
    assert_eq!(
        (c["type"].as_str(), c["count"].as_i64(), c["timespan"].as_str()),
        (Some("event_count"), Some(2), Some("5m"))
    );
    assert_eq!(body["alert"]["event_ids"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_capped_search_is_flagged_on_the_run() {
    let (_db, pool, _runner, clock, id) = common::setup(brute_force(3), t(12, 0, 0)).await;
    let settings = Settings { settle: TimeDelta::seconds(10), row_limit: 4, ..Default::default() };
    let runner = Runner::new(pool.clone(), settings, clock.clone());
    let b = base();
    for s in 0..6 {
        store(&pool, auth("web-01"), b + TimeDelta::seconds(s), t(12, 1, 0)).await;
    }
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert!(r[0].truncated);
    assert_eq!((r[0].matches, r[0].alerts_created), (4, 1));
    let runs = hunt::runs(&pool, id, 10).await.unwrap();
    assert!(runs[0].truncated);
    assert_eq!(all_alerts(&pool, id).await[0].count, 4);
}

#[tokio::test]
async fn a_plain_hunt_has_no_correlation_and_an_update_can_add_one() {
    let spec = json!({"name": "plain", "query": "kind:auth", "schedule": "*/5 * * * *"});
    let (_db, pool, _runner, _clock, id) = common::setup(spec, t(12, 0, 0)).await;
    let h = hunt::get(&pool, id).await.unwrap();
    assert!(h.correlation.is_none());
    assert_eq!(serde_json::to_value(&h).unwrap()["correlation"], Value::Null);
    let v = serde_json::from_value::<HuntSpec>(brute_force(5))
        .unwrap()
        .validate(10_000, &vigil_hunts::DeliveryConfig::default())
        .unwrap();
    let h = hunt::update(&pool, id, &v).await.unwrap();
    let stored = serde_json::to_value(&h).unwrap()["correlation"].clone();
    assert_eq!(stored["type"], "event_count");
    assert_eq!(stored["condition"], json!({"gte": 5}));
    assert_eq!(stored["rules"], json!([{"name": "failed_logins", "query": "kind:auth"}]));
    // And back to a plain hunt.
    let v = serde_json::from_value::<HuntSpec>(json!({"name": "plain", "query": "kind:auth", "schedule": "@hourly"}))
        .unwrap()
        .validate(10_000, &vigil_hunts::DeliveryConfig::default())
        .unwrap();
    assert!(hunt::update(&pool, id, &v).await.unwrap().correlation.is_none());
}

#[test]
fn validation_names_the_bad_correlation_field() {
    let check = |c: Value| {
        let spec = json!({"name": "x", "query": "kind:auth", "schedule": "@hourly", "correlation": c});
        serde_json::from_value::<HuntSpec>(spec).unwrap().validate(10_000, &vigil_hunts::DeliveryConfig::default())
    };
    let good = || {
        json!({"type": "event_count", "rules": [{"name": "a", "query": "kind:auth"}], "group_by": ["host"],
               "timespan": "5m", "condition": {"gte": 3}})
    };
    assert!(check(good()).is_ok());
    let with = |k: &str, v: Value| {
        let mut c = good();
        c[k] = v;
        c
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!("nope"), "correlation:"),
        (with("type", json!("sequence")), "correlation.type"),
        (with("rules", json!([])), "correlation.rules"),
        (
            with("rules", json!([{"name": "a", "query": "kind:auth"}, {"name": "b", "query": "kind:auth"}])),
            "correlation.rules",
        ),
        (with("rules", json!([{"name": "", "query": "kind:auth"}])), "correlation.rules[0].name"),
        (with("rules", json!([{"name": "a", "query": "kind:network"}])), "correlation.rules[0].query"),
        (with("rules", json!([{"name": "a"}])), "correlation.rules[0].query"),
        (with("rules", json!([{"name": "a", "query": "kind:auth", "extra": 1}])), "correlation.rules[0].extra"),
        (with("group_by", json!(["hots"])), "correlation.group_by"),
        (with("group_by", json!("host")), "correlation.group_by"),
        (with("timespan", json!("soon")), "correlation.timespan"),
        (with("timespan", json!("8d")), "correlation.timespan"),
        (with("timespan", json!("0s")), "correlation.timespan"),
        (with("timespan", Value::Null), "correlation.timespan"),
        (with("condition", json!({})), "correlation.condition"),
        (with("condition", Value::Null), "correlation.condition"),
        (with("condition", json!({"gte": -1})), "correlation.condition.gte"),
        (with("condition", json!({"gte": 1.5})), "correlation.condition.gte"),
        (with("condition", json!({"gte": 1, "gt": 2, "eq": 3})), "correlation.condition"),
        (with("condition", json!({"lt": 3})), "correlation.condition.lt"),
        (with("condition", json!({"gte": 1, "lte": 3})), "correlation.condition.lte"),
        (with("condition", json!({"eq": 3})), "correlation.condition.eq"),
        (with("condition", json!({"most": 3})), "correlation.condition.most"),
        (with("field", json!("dst_port")), "correlation.field"),
        (with("colour", json!("red")), "correlation.colour"),
        (
            json!({"type": "value_count", "rules": [{"name": "a", "query": "kind:auth"}], "timespan": "5m",
                   "condition": {"gte": 3}}),
            "correlation.field",
        ),
        (
            json!({"type": "value_count", "rules": [{"name": "a", "query": "kind:auth"}], "timespan": "5m",
                   "condition": {"gte": 3}, "field": "colour"}),
            "correlation.field",
        ),
        (
            json!({"type": "temporal", "rules": [{"name": "a", "query": "kind:auth"}], "timespan": "5m"}),
            "correlation.rules",
        ),
        (
            json!({"type": "temporal", "rules": [{"name": "a", "query": "kind:auth"}, {"name": "a", "query": "kind:process"}],
                   "timespan": "5m"}),
            "correlation.rules[1].name",
        ),
        (
            json!({"type": "temporal", "rules": [{"name": "a", "query": "kind:auth"}, {"name": "b", "query": "hots:x"}],
                   "timespan": "5m"}),
            "correlation.rules[1].query",
        ),
        (
            json!({"type": "temporal", "rules": [{"name": "a", "query": "kind:auth"},
                                                 {"name": "b", "query": "kind:auth | stats count() by host"}],
                   "timespan": "5m"}),
            "correlation.rules[1].query",
        ),
        (
            json!({"type": "temporal", "rules": [{"name": "a", "query": "kind:auth"}, {"name": "b", "query": "kind:process"}],
                   "timespan": "5m", "condition": {"gte": 3}}),
            "correlation.condition",
        ),
        (
            json!({"type": "temporal_ordered", "rules": [{"name": "a", "query": "kind:auth"},
                                                        {"name": "b", "query": "kind:process"},
                                                        {"name": "c", "query": "kind:network"}],
                   "timespan": "5m", "condition": {"gte": 2}}),
            "correlation.condition",
        ),
    ];
    for (c, prefix) in cases {
        match check(c.clone()) {
            Err(HuntError::Invalid { field: "correlation", code: "bad_correlation", message }) => {
                assert!(message.starts_with(prefix), "{c}: {message}");
            }
            other => panic!("{c}: {other:?}"),
        }
    }
    // The hunt's group_by must be empty or the correlation's.
    let spec = json!({"name": "x", "query": "kind:auth", "schedule": "@hourly", "group_by": ["user"],
                      "correlation": good()});
    let e = serde_json::from_value::<HuntSpec>(spec)
        .unwrap()
        .validate(10_000, &vigil_hunts::DeliveryConfig::default())
        .unwrap_err();
    assert!(e.to_string().starts_with("correlation.group_by"), "{e}");
    let spec = json!({"name": "x", "query": "kind:auth", "schedule": "@hourly", "group_by": ["hostname"],
                      "correlation": good()});
    assert!(serde_json::from_value::<HuntSpec>(spec)
        .unwrap()
        .validate(10_000, &vigil_hunts::DeliveryConfig::default())
        .is_ok());
    // A temporal condition on the number of distinct rules, and timespans in seconds.
    let spec = json!({"name": "x", "query": "kind:auth", "schedule": "@hourly", "correlation":
        {"type": "temporal", "rules": [{"name": "a", "query": "kind:auth"}, {"name": "b", "query": "kind:process"},
                                       {"name": "c", "query": "kind:network"}],
         "timespan": "90", "condition": {"gte": 2}}});
    let v = serde_json::from_value::<HuntSpec>(spec)
        .unwrap()
        .validate(10_000, &vigil_hunts::DeliveryConfig::default())
        .unwrap();
    let c = v.correlation.unwrap();
    assert_eq!((c.timespan_s, c.condition.threshold()), (90, 2));
    // Logs, a query with its own time window, OR and a pipe: all fine as rules.
    for q in ["in:logs sshd", "kind:auth time:last_24h (user:root OR user:admin) | sort -time"] {
        let spec = json!({"name": "x", "query": q, "schedule": "@hourly", "correlation":
            {"type": "event_count", "rules": [{"name": "a", "query": q}], "group_by": ["hostname"],
             "timespan": "1h", "condition": {"gt": 4}}});
        let v =
            serde_json::from_value::<HuntSpec>(spec).unwrap().validate(10_000, &vigil_hunts::DeliveryConfig::default());
        assert_eq!(v.unwrap().correlation.unwrap().condition.threshold(), 5, "{q}");
    }
}
