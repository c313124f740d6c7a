#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Retention and metric rollups against the real PostgreSQL server, in both
//! storage modes (TimescaleDB chunks and native daily partitions). The
//! rollups read back through SRQL are tested in `search/tests/rollups.rs`.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use vigil_event::{Event, Kind};
use vigil_store::retention::{self, floor_hour, Action, RetentionPolicy, RunOptions};
use vigil_store::testing::{metric_samples, migrated};
use vigil_store::{EventWriter, Pool, TimescaleChoice};

async fn count(pool: &Pool, sql: &str) -> i64 {
    pool.get().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

async fn kind_count(pool: &Pool, kind: &str) -> i64 {
    pool.get().await.unwrap().query_one("SELECT count(*) FROM events WHERE kind = $1", &[&kind]).await.unwrap().get(0)
}

fn vector(x: f32) -> String {
    let v: Vec<String> = (0..384).map(|i| if i == 0 { format!("{x}") } else { "0".into() }).collect();
    format!("[{}]", v.join(","))
}

/// 15 days of events: per day 10 each of process, auth, alert, metric; a
/// vector text per kind; old audit rows and dead letters.
async fn seed_retention(pool: &Pool, now: DateTime<Utc>) {
    let mut events = Vec::new();
    for day in 0..15i64 {
        for (k, kind) in [Kind::Process, Kind::Auth, Kind::Alert, Kind::Metric].into_iter().enumerate() {
            for i in 0..10i64 {
                let t = now - Duration::days(day) - Duration::minutes(30 + i * 3 + k as i64);
                let mut e = Event::new(kind, "test", t, format!("{day}-{k}-{i}").as_bytes());
                e.host = Some(format!("h{}", i % 3));
                e.message = format!("{kind} event {day} {i}");
                e.raw = json!({"v": i});
                events.push(e);
            }
        }
    }
    EventWriter::new(pool.clone()).write(&events).await.unwrap();
    let c = pool.get().await.unwrap();
    // Texts: one per kind, created long ago (past the orphan grace period).
    for (id, kind) in [(1i64, "process"), (2, "auth"), (3, "alert")] {
        c.execute(
            "INSERT INTO embedding_texts (id, model, text_hash, text, embedding, created_at) \
             OVERRIDING SYSTEM VALUE VALUES ($1, 'm', $2, $3, $4::text::vector, now() - interval '30 days')",
            &[&id, &kind.as_bytes().to_vec(), &kind, &vector(id as f32)],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO event_embeddings (event_id, time, text_id) SELECT event_id, time, $1 FROM events WHERE kind = $2",
            &[&id, &kind],
        )
        .await
        .unwrap();
    }
    // A fresh text nothing refers to yet: inside the grace period, kept.
    c.execute(
        "INSERT INTO embedding_texts (id, model, text_hash, text, embedding) \
         OVERRIDING SYSTEM VALUE VALUES (4, 'm', 'fresh', 'fresh', $1::text::vector)",
        &[&vector(4.0)],
    )
    .await
    .unwrap();
    // Alerts are kept from when they last fired (or were raised, if never again).
    for (raised, last_seen) in [(60, Some(1)), (60, None), (10, None), (60, Some(40))] {
        c.execute(
            "INSERT INTO alerts (alert_id, time, rule, title, last_seen) VALUES (gen_random_uuid(), \
             now() - make_interval(days => $1), 'r', 't', now() - make_interval(days => $2))",
            &[&raised, &last_seen],
        )
        .await
        .unwrap();
    }
    for d in 0..20 {
        c.execute(
            "INSERT INTO audit_log (at, action, outcome) VALUES (now() - make_interval(days => $1), 'search', 'ok')",
            &[&d],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO ingest_errors (received_at, channel, reason_code, reason, payload) \
             VALUES (now() - make_interval(days => $1), 'file', 'bad_json', 'bad', '\\x00')",
            &[&d],
        )
        .await
        .unwrap();
    }
}

async fn retention_in(choice: TimescaleChoice) {
    let (_db, pool) = migrated(choice).await;
    let now = floor_hour(Utc::now());
    seed_retention(&pool, now).await;
    let policy = RetentionPolicy::parse(
        "process=2d,auth=5d,alert=10d,metric=3d,log=10d,network=10d,vuln=10d,package=10d,rollup_after=off,\
         audit=7d,dead_letters=3d,alerts=30d",
    )
    .unwrap();
    let before = count(&pool, "SELECT count(*) FROM events").await;
    assert_eq!(before, 600);
    let vectors_before = count(&pool, "SELECT count(*) FROM event_embeddings").await;

    // A dry run counts and changes nothing.
    let dry = retention::run(&pool, &policy, now, RunOptions { dry_run: true, batch: 7 }).await.unwrap();
    assert!(dry.ok(), "{dry:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, before);
    assert_eq!(count(&pool, "SELECT count(*) FROM event_embeddings").await, vectors_before);
    assert_eq!(count(&pool, "SELECT count(*) FROM audit_log").await, 20);
    assert_eq!(dry.rows("events[kind=process]"), 130);
    assert_eq!(dry.rows("audit_log"), 12);
    assert_eq!(dry.rows("alerts"), 2);
    retention::record(&pool, &dry).await.unwrap();

    // The real pass, in small batches so the loops turn.
    let rep = retention::run(&pool, &policy, now, RunOptions { dry_run: false, batch: 7 }).await.unwrap();
    assert!(rep.ok(), "{rep:?}");
    let events_step = rep.steps.iter().find(|s| s.target == "events").unwrap();
    assert!(events_step.chunks >= 3, "whole days older than 10 d are dropped: {events_step:?}");
    assert!(matches!(events_step.action, Action::DropChunks | Action::DropPartitions));
    assert_eq!(events_step.rows, dry.rows("events"), "the dry run predicted the dropped days");

    // Each kind keeps exactly what its retention says.
    assert_eq!(kind_count(&pool, "process").await, 20);
    assert_eq!(kind_count(&pool, "metric").await, 30);
    assert_eq!(kind_count(&pool, "auth").await, 50);
    assert_eq!(kind_count(&pool, "alert").await, 100);
    let after = count(&pool, "SELECT count(*) FROM events").await;
    let removed: u64 = rep.steps.iter().filter(|s| s.target.starts_with("events")).map(|s| s.rows).sum();
    assert_eq!(removed as i64, before - after, "the report counts every removed event exactly");

    // Vectors of removed events went with them; texts nobody refers to went after the grace period.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM event_embeddings v WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = v.event_id AND e.time = v.time)").await,
        0
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM event_embeddings").await, 20 + 50 + 100);
    assert_eq!(count(&pool, "SELECT count(*) FROM embedding_texts").await, 4);
    assert_eq!(count(&pool, "SELECT count(*) FROM audit_log").await, 8);
    assert_eq!(count(&pool, "SELECT count(*) FROM ingest_errors").await, 4);
    assert_eq!(count(&pool, "SELECT count(*) FROM alerts").await, 2);

    // Texts whose events all went are deleted.
    pool.get().await.unwrap().execute("DELETE FROM event_embeddings WHERE text_id = 1", &[]).await.unwrap();
    let again = retention::run(&pool, &policy, now, RunOptions::default()).await.unwrap();
    assert_eq!(again.rows("embedding_texts"), 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM embedding_texts").await, 3);
    // Nothing else is left to do: a second pass removes nothing.
    let events_again: u64 = again.steps.iter().filter(|s| s.target.starts_with("events")).map(|s| s.rows).sum();
    assert_eq!(events_again, 0, "{again:?}");
    retention::record(&pool, &again).await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM retention_runs").await, 2);
}

#[tokio::test]
async fn retention_on_timescaledb() {
    retention_in(TimescaleChoice::Require).await;
}

#[tokio::test]
async fn retention_on_native_partitioning() {
    retention_in(TimescaleChoice::Off).await;
}

#[tokio::test]
async fn a_kind_kept_forever_keeps_every_day() {
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;
    let now = floor_hour(Utc::now());
    seed_retention(&pool, now).await;
    let policy = RetentionPolicy::parse("events=2d,alert=off,rollup_after=off").unwrap();
    let rep = retention::run(&pool, &policy, now, RunOptions::default()).await.unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert!(rep.steps.iter().all(|s| s.target != "events"), "no whole days are dropped");
    assert_eq!(kind_count(&pool, "alert").await, 150);
    assert_eq!(kind_count(&pool, "process").await, 20);
}

// ------------------------------------------------------------ rollups

#[tokio::test]
async fn the_retention_pass_rolls_metrics_up_before_deleting_them() {
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;
    let now = floor_hour(Utc::now());
    let writer = EventWriter::new(pool.clone());
    writer.write(&metric_samples(now - Duration::days(31), 2)).await.unwrap();
    // Samples in the hour the rollup cutoff has not reached yet (30 d ago is
    // half-way through it): past the metric retention, but kept raw until the
    // next pass rolls their hour up.
    let pass_at = now + Duration::minutes(30);
    let mut partial =
        Event::new(Kind::Metric, "vigil-agent", pass_at - Duration::days(30) - Duration::minutes(10), b"p");
    partial.raw = json!({"cpu_pct": 1.0});
    writer.write(&[partial]).await.unwrap();
    let policy = RetentionPolicy::default();
    let dry =
        retention::run(&pool, &policy, pass_at, RunOptions { dry_run: true, ..RunOptions::default() }).await.unwrap();
    assert_eq!(dry.rows("rollup[metric]"), 2 * 2 * 240);
    assert_eq!(dry.rows("events[kind=metric]"), 0, "a dry run does not count rolled-up rows as deleted");
    let rep = retention::run(&pool, &policy, pass_at, RunOptions::default()).await.unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(kind_count(&pool, "metric").await, 1, "the partial hour is neither rolled up nor deleted");
    let next = retention::run(&pool, &policy, pass_at + Duration::hours(1), RunOptions::default()).await.unwrap();
    assert_eq!((next.rows("rollup[metric]"), next.rows("events[kind=metric]")), (1, 0));
    assert_eq!(rep.rows("rollup[metric]"), 2 * 2 * 240);
    assert_eq!(rep.rows("events[kind=metric]"), 0, "moved into rollups, not deleted");
    assert_eq!(count(&pool, "SELECT sum(count)::bigint FROM metric_rollups WHERE field = ''").await, 2 * 2 * 240 + 1);
}
