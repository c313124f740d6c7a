#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store tests against the real PostgreSQL server (with TimescaleDB where the
//! set-up installed it), each in a database of its own.

use chrono::{Duration, TimeZone, Utc};
use vigil_event::{Endpoint, Event, Kind, Process, Severity};
use vigil_store::testing::TempDatabase;
use vigil_store::{connect, migrate, EventWriter, MigrateOptions, Pool, StorageMode, TimescaleChoice};

async fn fresh(choice: TimescaleChoice) -> (TempDatabase, Pool) {
    vigil_store::testing::migrated(choice).await
}

fn sample(i: u64, base: chrono::DateTime<Utc>) -> Event {
    let t = base + Duration::milliseconds(i as i64 * 7);
    let mut e = Event::new(Kind::Process, "vigil-agent", t, &i.to_le_bytes());
    e.host = Some(format!("host-{:02}", i % 50));
    e.severity = if i.is_multiple_of(100) { Severity::High } else { Severity::Info };
    e.activity_id = Some(1);
    e.message = format!("process started: /usr/bin/curl -s http://example.invalid/{i}");
    e.user = Some(["root", "www-data", "alice"][(i % 3) as usize].into());
    e.process = Some(Process {
        pid: Some(1000 + (i % 30000) as i32),
        ppid: Some(1),
        name: Some("curl".into()),
        path: Some("/usr/bin/curl".into()),
        cmdline: Some(format!("curl -s http://example.invalid/{i}")),
    });
    e.src = Some(Endpoint { ip: format!("10.0.{}.{}", i % 250, i % 200 + 1).parse().unwrap(), port: Some(40000) });
    e.dst = Some(Endpoint { ip: "2001:db8::1".parse().unwrap(), port: Some(443) });
    e.protocol = Some("tcp".into());
    e.raw = serde_json::json!({"seq": i, "argv": ["curl", "-s"]});
    e
}

async fn count(pool: &Pool, sql: &str) -> i64 {
    pool.get().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn migrations_apply_twice_on_an_empty_database() {
    let db = TempDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).unwrap();
    let first = migrate(&pool, &MigrateOptions::default()).await.unwrap();
    assert!(!first.applied.is_empty(), "first run applies the migrations");
    assert_eq!(first.already_applied, 0);
    let second = migrate(&pool, &MigrateOptions::default()).await.unwrap();
    assert!(second.applied.is_empty(), "second run applies nothing: {:?}", second.applied);
    assert_eq!(second.already_applied, first.applied.len());
    assert_eq!(second.mode, first.mode);
}

#[tokio::test]
async fn concurrent_migrators_do_not_collide() {
    let db = TempDatabase::create().await.unwrap();
    let a = connect(&db.url, 2).unwrap();
    let b = connect(&db.url, 2).unwrap();
    let opts = MigrateOptions::default();
    let (ra, rb) = tokio::join!(migrate(&a, &opts), migrate(&b, &opts));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut all: Vec<&String> = ra.applied.iter().chain(&rb.applied).collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "no migration applied twice: {:?} {:?}", ra.applied, rb.applied);
    assert_eq!(
        count(&a, "SELECT count(*) FROM vigil_schema_migrations").await as usize,
        ra.applied.len() + ra.already_applied
    );
}

#[tokio::test]
async fn events_is_a_hypertable_with_daily_chunks() {
    let (_db, pool) = fresh(TimescaleChoice::Require).await;
    let writer = EventWriter::new(pool.clone());
    let base = Utc::now() - Duration::days(3);
    let events: Vec<Event> = (0..3).map(|d| sample(d, base + Duration::days(d as i64))).collect();
    writer.write(&events).await.unwrap();
    let client = pool.get().await.unwrap();
    let row = client
        .query_one("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "events must be a hypertable");
    let chunks: i64 = client.query_one("SELECT count(*) FROM show_chunks('events')", &[]).await.unwrap().get(0);
    assert_eq!(chunks, 3, "three events on three days make three daily chunks");
    // Chunk exclusion: a one-day window touches one chunk.
    let plan: Vec<String> = client
        .query("EXPLAIN SELECT * FROM events WHERE time >= now() - interval '1 day' - interval '3 days' AND time < now() - interval '2 days' - interval '12 hours'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let scanned = plan.iter().filter(|l| l.contains("_hyper_")).count();
    assert!(scanned <= 2, "time filter should exclude chunks, plan:\n{}", plan.join("\n"));
}

#[tokio::test]
async fn fallback_without_timescaledb_partitions_natively() {
    let (_db, pool) = fresh(TimescaleChoice::Off).await;
    let client = pool.get().await.unwrap();
    let ext: i64 =
        client.query_one("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'", &[]).await.unwrap().get(0);
    assert_eq!(ext, 0, "the fallback path must not create the extension");
    let kind: i8 =
        client.query_one("SELECT relkind::\"char\" FROM pg_class WHERE relname = 'events'", &[]).await.unwrap().get(0);
    assert_eq!(kind as u8, b'p', "events is a partitioned table");

    // Writes on days with no partition yet create them; duplicates are refused.
    let writer = EventWriter::new(pool.clone());
    let base = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
    let events: Vec<Event> = (0..500).map(|i| sample(i, base + Duration::hours(i as i64 % 72))).collect();
    let first = writer.write(&events).await.unwrap();
    assert_eq!(first.inserted, 500);
    let again = writer.write(&events).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 500));
    let parts: i64 = client
        .query_one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert!(parts >= 3 + 3, "pre-created days plus the three written days, got {parts}");
    let per_day: i64 = client.query_one("SELECT count(*) FROM events_p20260111", &[]).await.unwrap().get(0);
    assert!(per_day > 0, "rows land in their day's partition");
    // The same migrations again are a no-op, and the mode stays native.
    let report = migrate(&pool, &MigrateOptions { timescaledb: TimescaleChoice::Auto }).await.unwrap();
    assert_eq!(report.mode, StorageMode::Native);
    assert!(report.applied.is_empty());
}

#[tokio::test]
async fn a_database_never_switches_storage_mode() {
    let (_db, pool) = fresh(TimescaleChoice::Off).await;
    let err = migrate(&pool, &MigrateOptions { timescaledb: TimescaleChoice::Require }).await.unwrap_err();
    assert!(err.to_string().contains("native"), "{err}");
}

#[tokio::test]
async fn copy_writer_stores_100k_events_and_a_resend_adds_none() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    let writer = EventWriter::new(pool.clone());
    let base = Utc::now() - Duration::hours(2);
    let events: Vec<Event> = (0..100_000).map(|i| sample(i, base)).collect();
    let mut inserted = 0;
    for batch in events.chunks(10_000) {
        inserted += writer.write(batch).await.unwrap().inserted;
    }
    assert_eq!(inserted, 100_000);
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 100_000);

    // Re-send one batch and the whole set: nothing new.
    let resend = writer.write(&events[20_000..30_000]).await.unwrap();
    assert_eq!((resend.received, resend.inserted, resend.duplicates), (10_000, 0, 10_000));
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 100_000);
    assert_eq!(count(&pool, "SELECT count(DISTINCT event_id) FROM events").await, 100_000);

    // Values survive the binary COPY intact.
    let client = pool.get().await.unwrap();
    let e = &events[12_345];
    let row = client
        .query_one(
            "SELECT host, user_name, process_cmdline, host(src_ip), dst_ip::text, dst_port, severity_id, raw->>'seq', class_uid, category_uid
               FROM events WHERE event_id = $1",
            &[&e.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), e.host);
    assert_eq!(row.get::<_, Option<String>>(1), e.user);
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("curl -s http://example.invalid/12345"));
    assert_eq!(row.get::<_, String>(3), e.src.unwrap().ip.to_string());
    assert_eq!(row.get::<_, String>(4), "2001:db8::1/128");
    assert_eq!(row.get::<_, Option<i32>>(5), Some(443));
    assert_eq!(row.get::<_, i16>(6), Severity::Info.id());
    assert_eq!(row.get::<_, Option<String>>(7).as_deref(), Some("12345"));
    assert_eq!((row.get::<_, i32>(8), row.get::<_, i32>(9)), (1007, 1));
}

#[tokio::test]
async fn duplicates_inside_one_batch_are_stored_once() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    let writer = EventWriter::new(pool.clone());
    let e = sample(1, Utc::now());
    let stats = writer.write(&[e.clone(), e.clone(), sample(2, Utc::now())]).await.unwrap();
    assert_eq!((stats.received, stats.inserted, stats.duplicates), (3, 2, 1));
}

#[tokio::test]
async fn a_failed_batch_stores_nothing() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    let writer = EventWriter::new(pool.clone());
    let good = sample(1, Utc::now());
    // A NUL byte is valid in a Rust string but not in PostgreSQL text.
    let mut bad = sample(2, Utc::now());
    bad.message = "bad\0message".into();
    assert!(writer.write(&[good.clone(), bad]).await.is_err());
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 0, "the batch is all or nothing");
    // The pooled connection is usable again and the good event goes in.
    assert_eq!(writer.write(&[good]).await.unwrap().inserted, 1);
}
