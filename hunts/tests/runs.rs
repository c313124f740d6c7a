//! Scheduled hunts against real PostgreSQL with a hand-moved clock: schedule
//! slots, windows without gaps or double counts, catch-up after downtime, a
//! late run, a repeated window, grouping, suppression and links to events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;
use vigil_hunts::{alerts, hunt, HuntSpec, Runner, Schedule, Settings};
use vigil_store::Pool;

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
}

/// Stores an event of `host` and `user` that was ingested at `ingested` (its
/// event time is real "now", inside the partitions the migration created).
async fn event(pool: &Pool, host: &str, user: &str, ingested: DateTime<Utc>) -> Uuid {
    let id = Uuid::new_v4();
    let client = pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, severity_id, message,
                                 user_name, schema_version, ingested_at)
             VALUES (now() - interval '1 minute', $1, 'auth', 'sshd', $2, 3002, 3, 3, 'Failed password', $3, 1, $4)",
            &[&id, &host, &user, &ingested],
        )
        .await
        .unwrap();
    id
}

fn ssh_hunt() -> serde_json::Value {
    json!({"name": "ssh failures", "query": "kind:auth message:\"Failed password\"", "schedule": "*/5 * * * *",
           "severity": "high"})
}

async fn runs(pool: &Pool, id: Uuid) -> Vec<hunt::Run> {
    let mut r = hunt::runs(pool, id, 100).await.unwrap();
    r.reverse();
    r
}

#[test]
fn cron_fires_at_exact_slots() {
    let s = Schedule::parse("*/5 * * * *").unwrap();
    assert_eq!(s.next_after(t(12, 0, 0)), Some(t(12, 5, 0)));
    assert_eq!(s.next_after(t(12, 4, 59)), Some(t(12, 5, 0)));
    assert_eq!(s.due(t(12, 0, 0), t(12, 4, 59)), None);
    assert_eq!(s.due(t(12, 0, 0), t(12, 5, 0)), Some((t(12, 5, 0), 1)));
    assert_eq!(s.due(t(12, 0, 0), t(12, 17, 3)), Some((t(12, 15, 0), 3)));
    assert_eq!(s.due(t(12, 15, 0), t(12, 17, 3)), None);
    // A day of downtime: one slot (the latest) to run, 288 covered.
    assert_eq!(s.due(t(12, 0, 0), t(12, 0, 0) + TimeDelta::days(1)), Some((t(12, 0, 0) + TimeDelta::days(1), 288)));
    assert!(Schedule::parse("0 */2 * * *").is_ok());
    assert!(Schedule::parse("@hourly").is_ok());
    assert!(Schedule::parse("*/5 * * *").is_err());
    assert!(Schedule::parse("61 * * * *").is_err());
    assert!(Schedule::parse("every five minutes").is_err());
}

#[tokio::test]
async fn runs_cover_every_window_once_across_downtime_and_late_runs() {
    let (_db, pool, runner, clock, id) = common::setup(ssh_hunt(), t(12, 0, 0)).await;
    let e1 = event(&pool, "web-01", "root", t(12, 1, 0)).await;

    // Before the first slot nothing runs.
    clock.set(t(12, 4, 59));
    assert!(runner.tick().await.unwrap().is_empty());

    // At the slot: the window is (created − settle, slot − settle].
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].window_start, r[0].window_end), (t(11, 59, 50), t(12, 4, 50)));
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].slots), (1, 1, 1));

    // Ingested inside the settle margin of slot 12:05: the next window's.
    let e2 = event(&pool, "web-01", "root", t(12, 4, 55)).await;
    let e3 = event(&pool, "web-02", "admin", t(12, 6, 0)).await;
    clock.set(t(12, 10, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].window_start, r[0].window_end), (t(12, 4, 50), t(12, 9, 50)));
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].alerts_updated), (2, 0, 1));

    // A late run: the 12:15 slot runs only at 12:18; it still ends at its slot.
    let e4 = event(&pool, "web-01", "root", t(12, 12, 0)).await;
    let _after = event(&pool, "web-01", "root", t(12, 16, 0)).await;
    clock.set(t(12, 18, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].slot, r[0].window_end, r[0].matches), (t(12, 15, 0), t(12, 14, 50), 1));

    // Downtime from 12:18 to 12:47: the six missed slots collapse into one
    // run that covers the whole gap, each event once.
    let mut gap = Vec::new();
    for m in [21, 29, 33, 44] {
        gap.push(event(&pool, "web-03", "root", t(12, m, 0)).await);
    }
    let _next = event(&pool, "web-03", "root", t(12, 44, 55)).await;
    clock.set(t(12, 47, 30));
    let r = runner.tick().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].slot, r[0].slots), (t(12, 45, 0), 6));
    assert_eq!((r[0].window_start, r[0].window_end), (t(12, 14, 50), t(12, 44, 50)));
    assert_eq!(r[0].matches, 5, "12:16 and the four in the gap");
    // And again: nothing is due, nothing is counted twice.
    assert!(runner.tick().await.unwrap().is_empty());

    // The recorded runs tile the ingestion timeline without gaps.
    let rs = runs(&pool, id).await;
    assert_eq!(rs.len(), 4);
    for w in rs.windows(2) {
        assert_eq!(w[0].window_end, w[1].window_start);
    }
    assert!(rs.iter().all(|r| r.error.is_none()));
    let h = hunt::get(&pool, id).await.unwrap();
    assert_eq!((h.watermark, h.last_slot), (t(12, 44, 50), t(12, 45, 0)));

    // No group-by and a 1 h suppression: one alert holds every event once.
    let page = alerts::list(&pool, &alerts::Filter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.alerts.len(), 1);
    let a = &page.alerts[0];
    assert_eq!((a.count, a.severity, a.status.as_str(), a.hunt_id), (9, "high", "open", Some(id)));
    let linked: Vec<Uuid> = alerts::events(&pool, a.id, 100).await.unwrap().iter().map(|e| e.event_id).collect();
    for e in [e1, e2, e3, e4].iter().chain(&gap) {
        assert!(linked.contains(e), "{e} linked");
    }
    assert_eq!(linked.len(), 9);
}

#[tokio::test]
async fn a_repeated_window_creates_no_duplicate_alerts_or_counts() {
    let (_db, pool, runner, clock, id) = common::setup(ssh_hunt(), t(12, 0, 0)).await;
    event(&pool, "web-01", "root", t(12, 1, 0)).await;
    let stale = hunt::get(&pool, id).await.unwrap();
    clock.set(t(12, 5, 0));
    assert_eq!(runner.tick().await.unwrap()[0].alerts_created, 1);

    // A second runner (another server, or a retry) with the old view of the
    // hunt: the watermark has moved, so it records nothing.
    let r = runner.run(&stale, t(12, 5, 0), 1, false).await.unwrap();
    assert!(r.skipped);

    // The window replayed from scratch (as after a crash that lost the
    // watermark): the events are already linked, so nothing changes.
    pool.get()
        .await
        .unwrap()
        .execute("UPDATE hunts SET watermark = $2, last_slot = $3 WHERE id = $1", &[&id, &t(11, 59, 50), &t(12, 0, 0)])
        .await
        .unwrap();
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created, r[0].alerts_updated), (1, 0, 0));
    let page = alerts::list(&pool, &alerts::Filter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.alerts.len(), 1);
    assert_eq!(page.alerts[0].count, 1);
}

#[tokio::test]
async fn matches_group_by_keys_and_are_suppressed_inside_the_window() {
    let spec = json!({"name": "ssh by host", "query": "kind:auth", "schedule": "*/5 * * * *",
                      "group_by": ["host", "user"], "suppression": "10m", "meta": {"sigma": {"id": "abc"}}});
    let (_db, pool, runner, clock, id) = common::setup(spec, t(12, 0, 0)).await;
    let a1 = event(&pool, "web-01", "root", t(12, 1, 0)).await;
    let a2 = event(&pool, "web-01", "root", t(12, 2, 0)).await;
    let b1 = event(&pool, "web-02", "root", t(12, 3, 0)).await;
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].matches, r[0].alerts_created), (3, 2));

    let list = |status: Option<&str>| {
        let pool = pool.clone();
        let status = status.map(str::to_string);
        async move {
            alerts::list(&pool, &alerts::Filter { status, hunt_id: Some(id), limit: 50, ..Default::default() })
                .await
                .unwrap()
                .alerts
        }
    };
    let all = list(None).await;
    let web01 = all.iter().find(|a| a.host.as_deref() == Some("web-01")).unwrap();
    assert_eq!(web01.count, 2);
    assert_eq!(web01.group, json!({"host": "web-01", "user": "root"}));
    assert_eq!(web01.title, "ssh by host (host=web-01, user=root)");
    assert_eq!(web01.meta["sigma"]["id"], "abc");
    let mut ids: Vec<Uuid> = alerts::events(&pool, web01.id, 10).await.unwrap().iter().map(|e| e.event_id).collect();
    ids.sort();
    let mut want = vec![a1, a2];
    want.sort();
    assert_eq!(ids, want);
    let web02 = all.iter().find(|a| a.host.as_deref() == Some("web-02")).unwrap();
    assert_eq!(alerts::events(&pool, web02.id, 10).await.unwrap()[0].event_id, b1);

    // Within 10 min of the alert being raised: the match joins it.
    event(&pool, "web-01", "root", t(12, 6, 0)).await;
    clock.set(t(12, 10, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].alerts_created, r[0].alerts_updated), (0, 1));
    assert_eq!(alerts::get(&pool, web01.id).await.unwrap().count, 3);

    // 10 min after it was raised (12:05 → 12:15): a new alert for the group.
    event(&pool, "web-01", "root", t(12, 11, 0)).await;
    clock.set(t(12, 15, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].alerts_created, r[0].alerts_updated), (1, 0));
    let newer = list(None).await.into_iter().find(|a| a.host.as_deref() == Some("web-01") && a.id != web01.id).unwrap();
    assert_eq!((newer.count, newer.time), (1, t(12, 15, 0)));

    // A closed alert takes no more matches: the next one raises a new alert.
    alerts::close(&pool, newer.id, "benign: pen test", "alice").await.unwrap();
    event(&pool, "web-01", "root", t(12, 16, 0)).await;
    clock.set(t(12, 20, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].alerts_created, r[0].alerts_updated), (1, 0));
    assert_eq!(list(Some("open")).await.len(), 3);
    assert_eq!(list(Some("closed")).await.len(), 1);
}

#[tokio::test]
async fn triage_acknowledge_assign_close_and_paging() {
    let spec = json!({"name": "per user", "query": "kind:auth", "schedule": "*/5 * * * *", "group_by": ["user"]});
    let (_db, pool, runner, clock, _id) = common::setup(spec, t(12, 0, 0)).await;
    for u in ["u1", "u2", "u3", "u4", "u5"] {
        event(&pool, "web-01", u, t(12, 1, 0)).await;
    }
    clock.set(t(12, 5, 0));
    assert_eq!(runner.tick().await.unwrap()[0].alerts_created, 5);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = alerts::list(&pool, &alerts::Filter { limit: 2, cursor, ..Default::default() }).await.unwrap();
        seen.extend(page.alerts.iter().map(|a| a.id));
        match page.next_cursor {
            Some(c) => cursor = Some(alerts::Cursor::decode(&c).unwrap()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);

    let id = seen[0];
    let a = alerts::acknowledge(&pool, id, "alice").await.unwrap();
    assert_eq!((a.status.as_str(), a.acknowledged_by.as_deref()), ("acknowledged", Some("alice")));
    let a = alerts::assign(&pool, id, Some("bob")).await.unwrap();
    assert_eq!(a.assignee.as_deref(), Some("bob"));
    let mine =
        alerts::list(&pool, &alerts::Filter { assignee: Some("bob".into()), limit: 10, ..Default::default() }).await;
    assert_eq!(mine.unwrap().alerts.len(), 1);
    assert!(matches!(alerts::close(&pool, id, "  ", "alice").await, Err(vigil_hunts::HuntError::Invalid { .. })));
    let a = alerts::close(&pool, id, "false positive", "alice").await.unwrap();
    assert_eq!((a.status.as_str(), a.close_reason.as_deref()), ("closed", Some("false positive")));
    assert!(matches!(alerts::acknowledge(&pool, id, "alice").await, Err(vigil_hunts::HuntError::Conflict(_))));
    assert!(matches!(
        alerts::get(&pool, Uuid::new_v4()).await,
        Err(vigil_hunts::HuntError::NotFound { what: "alert", .. })
    ));
}

#[test]
fn validation_names_what_is_wrong() {
    let check = |v: serde_json::Value| {
        serde_json::from_value::<HuntSpec>(v).unwrap().validate(10_000, &vigil_hunts::DeliveryConfig::default())
    };
    let base = |q: &str| json!({"name": "x", "query": q, "schedule": "*/5 * * * *"});
    match check(base("hots:web-01")) {
        Err(vigil_hunts::HuntError::Srql(e)) => {
            assert_eq!(e.kind.code(), "unknown_field");
            assert_eq!((e.span.start, e.span.end), (0, 4));
        }
        other => panic!("{other:?}"),
    }
    let code = |r: Result<_, vigil_hunts::HuntError>| match r {
        Err(vigil_hunts::HuntError::Invalid { code, .. }) => code,
        other => panic!("{other:?}"),
    };
    assert_eq!(code(check(json!({"name": "x", "query": "kind:auth", "schedule": "sometimes"}))), "bad_schedule");
    assert_eq!(code(check(base("kind:auth | stats count() by host"))), "not_supported");
    assert_eq!(code(check(base("kind:auth | fields host"))), "not_supported");
    assert_eq!(
        code(check(json!({"name": "x", "query": "kind:auth", "schedule": "@hourly", "severity": "urgent"}))),
        "bad_severity"
    );
    assert_eq!(code(check(json!({"name": "", "query": "kind:auth", "schedule": "@hourly"}))), "bad_name");
    assert_eq!(
        code(check(json!({"name": "x", "query": "kind:auth", "schedule": "@hourly",
                           "actions": [{"type": "webhook", "url": "ftp://x"}]}))),
        "bad_action"
    );
    match check(json!({"name": "x", "query": "kind:auth", "schedule": "@hourly", "group_by": ["hots"]})) {
        Err(vigil_hunts::HuntError::Invalid { field: "group_by", code: "unknown_field", message }) => {
            assert!(message.contains("did you mean `host`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(check(base("in:hosts os:linux")), Err(vigil_hunts::HuntError::Srql(_))));
    let v = check(json!({"name": " ok ", "query": "in:logs sshd", "schedule": "0 * * * *", "severity": 5,
                         "group_by": ["hostname"], "suppression": "30m"}))
    .unwrap();
    assert_eq!((v.name.as_str(), v.severity_id, v.suppression_s), ("ok", 5, 1800));
    assert_eq!(v.group_by, vec!["host".to_string()]);
}

#[tokio::test]
async fn a_failed_run_is_recorded_and_its_window_is_covered_by_the_next() {
    let (_db, pool, runner, clock, id) = common::setup(ssh_hunt(), t(12, 0, 0)).await;
    event(&pool, "web-01", "root", t(12, 1, 0)).await;
    // The query cannot run (the table is away): an error run, the watermark stays.
    let client = pool.get().await.unwrap();
    client.batch_execute("ALTER TABLE events RENAME TO events_away").await.unwrap();
    clock.set(t(12, 5, 0));
    let r = runner.tick().await.unwrap();
    assert!(r[0].error.as_deref().unwrap().contains("events"), "{:?}", r[0].error);
    client.batch_execute("ALTER TABLE events_away RENAME TO events").await.unwrap();
    let h = hunt::get(&pool, id).await.unwrap();
    assert_eq!((h.watermark, h.last_slot), (t(11, 59, 50), t(12, 5, 0)));

    event(&pool, "web-01", "root", t(12, 7, 0)).await;
    clock.set(t(12, 10, 0));
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].window_start, r[0].window_end, r[0].matches), (t(11, 59, 50), t(12, 9, 50), 2));
    let rs = runs(&pool, id).await;
    assert_eq!(rs.len(), 2);
    assert!(rs[0].error.is_some() && rs[1].error.is_none());

    // A disabled hunt does not run; enabled again, it covers the time it was off.
    client.execute("UPDATE hunts SET enabled = false WHERE id = $1", &[&id]).await.unwrap();
    event(&pool, "web-01", "root", t(12, 12, 0)).await;
    clock.set(t(12, 20, 0));
    assert!(runner.tick().await.unwrap().is_empty());
    client.execute("UPDATE hunts SET enabled = true WHERE id = $1", &[&id]).await.unwrap();
    let r = runner.tick().await.unwrap();
    assert_eq!((r[0].window_start, r[0].window_end, r[0].matches, r[0].slots), (t(12, 9, 50), t(12, 19, 50), 1, 2));
}

#[tokio::test]
async fn the_scheduler_loop_runs_due_hunts_until_shutdown() {
    let (_db, pool, _runner, clock, id) = common::setup(ssh_hunt(), t(12, 0, 0)).await;
    event(&pool, "web-01", "root", t(12, 1, 0)).await;
    clock.set(t(12, 5, 1));
    let settings = Settings { tick: std::time::Duration::from_millis(20), ..Default::default() };
    let runner = Runner::new(pool.clone(), settings, clock.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(vigil_hunts::scheduler::run(runner, async move {
        let _ = stop_rx.await;
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while runs(&pool, id).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the scheduler did not run the hunt");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop_tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap();
    let rs = runs(&pool, id).await;
    assert_eq!((rs.len(), rs[0].slot, rs[0].matches), (1, t(12, 5, 0), 1));
}
