#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The maintenance pass (retention, rollups, the BM25 index) and `vigil
//! retention`, against the real PostgreSQL server.

use std::process::Command;
use std::sync::Arc;

use chrono::{Duration, Utc};
use vigil_api::maintenance;
use vigil_event::{Event, Kind};
use vigil_fulltext::{TextIndex, TextQuery};
use vigil_store::retention::{floor_hour, RetentionPolicy, RunOptions};
use vigil_store::testing::migrated;
use vigil_store::{EventWriter, TimescaleChoice};

const BIN: &str = env!("CARGO_BIN_EXE_vigil");

fn temp_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vigil-maint-{tag}-{}-{}", std::process::id(), uuid::Uuid::new_v4()))
}

fn events(now: chrono::DateTime<Utc>) -> Vec<Event> {
    let mut out = Vec::new();
    for day in 0..6i64 {
        for (k, kind) in [Kind::Auth, Kind::Process].into_iter().enumerate() {
            let t = now - Duration::days(day) - Duration::minutes(10 + k as i64);
            let mut e = Event::new(kind, "test", t, format!("{day}-{k}").as_bytes());
            e.host = Some("web-01".into());
            e.message = format!("sshd accepted session {day}");
            out.push(e);
        }
    }
    out
}

#[tokio::test]
async fn a_pass_applies_retention_to_postgres_and_the_bm25_index_and_records_itself() {
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;
    let now = floor_hour(Utc::now());
    EventWriter::new(pool.clone()).write(&events(now)).await.unwrap();
    let dir = temp_dir("bm25");
    let index = Arc::new(TextIndex::open(&dir).unwrap().with_settle(std::time::Duration::ZERO));
    assert_eq!(vigil_fulltext::sync(&index, &pool, 100).await.unwrap(), 12);
    let all = || TextQuery { text: "sshd".into(), phrase: false, window: None, limit: 100 };
    assert_eq!(index.search(&all()).unwrap().total, 12);

    let policy = RetentionPolicy::parse("process=2d,auth=4d,rollup_after=off").unwrap();
    let mut registry = vigil_api::metrics_registry();
    let metrics = maintenance::MaintenanceMetrics::register(&mut registry);
    // A dry run changes neither PostgreSQL nor the index.
    let dry = maintenance::pass(&pool, &policy, Some(&index), now, RunOptions { dry_run: true, batch: 100 }, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dry.rows("events[kind=process]"), 4);
    assert_eq!(index.num_docs(), 12);

    let rep =
        maintenance::pass(&pool, &policy, Some(&index), now, RunOptions::default(), &metrics).await.unwrap().unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(rep.rows("events[kind=process]"), 4);
    assert_eq!(rep.rows("events[kind=auth]"), 2);
    assert_eq!(rep.rows("bm25[kind=process]"), 4);
    assert_eq!(rep.rows("bm25[kind=auth]"), 2);
    assert_eq!(index.num_docs(), 6);
    let client = pool.get().await.unwrap();
    let left: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
    assert_eq!(left, 6, "PostgreSQL and the index agree");
    let runs: i64 = client.query_one("SELECT count(*) FROM retention_runs", &[]).await.unwrap().get(0);
    assert_eq!(runs, 2);
    let recorded: serde_json::Value =
        client.query_one("SELECT report FROM retention_runs WHERE NOT dry_run", &[]).await.unwrap().get(0);
    assert!(recorded["steps"].as_array().unwrap().iter().any(|s| s["target"] == "bm25[kind=auth]" && s["rows"] == 2));

    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("vigil_maintenance_runs_total"), "{text}");
    assert!(text.contains("vigil_retention_rows_total{target=\"events[kind=process]\",action=\"delete\"}"), "{text}");

    // While another process holds the maintenance lock, a pass stands aside.
    let holder = pool.get().await.unwrap();
    holder.execute("SELECT pg_advisory_lock(8532464671518778740)", &[]).await.unwrap();
    assert!(maintenance::pass(&pool, &policy, None, now, RunOptions::default(), &metrics).await.unwrap().is_none());
    holder.execute("SELECT pg_advisory_unlock(8532464671518778740)", &[]).await.unwrap();
    drop(index);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn intervals_parse_with_clear_errors() {
    assert_eq!(maintenance::parse_every("30m").unwrap(), Some(std::time::Duration::from_secs(1800)));
    assert_eq!(maintenance::parse_every("off").unwrap(), None);
    assert!(maintenance::parse_every("10s").unwrap_err().contains("unit must be m, h or d"));
    assert!(maintenance::parse_every("0m").unwrap_err().contains("shorter than a minute"));
}

#[tokio::test]
async fn vigil_retention_run_prints_what_it_did_and_rejects_bad_policies() {
    let (db, pool) = migrated(TimescaleChoice::Auto).await;
    let now = floor_hour(Utc::now());
    EventWriter::new(pool.clone()).write(&events(now)).await.unwrap();
    let data = temp_dir("data");
    let run = |extra: &[&str], policy: &str| {
        Command::new(BIN)
            .args(["retention", "run"])
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .env("VIGIL_RETENTION", policy)
            .env("VIGIL_DATA_DIR", &data)
            .output()
            .unwrap()
    };
    let out = run(&["--dry-run"], "process=2d");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("DRY RUN") && stdout.contains("events[kind=process]"), "{stdout}");
    let left: i64 = pool.get().await.unwrap().query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
    assert_eq!(left, 12);

    let out = run(&["--json"], "process=2d");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let process = report["steps"].as_array().unwrap().iter().find(|s| s["target"] == "events[kind=process]").unwrap();
    assert_eq!(process["rows"], 4);

    let out = run(&[], "process=2d,alret=1d");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`alret=1d`") && stderr.contains("unknown key `alret`"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn searches_read_rolled_up_metrics_through_the_boundary_in_the_database() {
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;
    let now = floor_hour(Utc::now());
    // Two hours of samples inside one UTC day (01:00-03:00, 40 days ago), whatever the time now.
    let start = (now - Duration::days(40)).date_naive().and_hms_opt(1, 0, 0).unwrap().and_utc();
    let samples: Vec<Event> = (0..480)
        .map(|i| {
            let mut e = Event::new(Kind::Metric, "vigil-agent", start + Duration::seconds(i * 15), &i.to_le_bytes());
            e.host = Some("db-01".into());
            e.raw = serde_json::json!({"metric": "cpu", "cpu_pct": (i % 10) as f64});
            e
        })
        .collect();
    EventWriter::new(pool.clone()).write(&samples).await.unwrap();
    let searcher = vigil_search::Searcher::new(pool.clone(), None, vigil_search::SearchOptions::default());
    let q = "kind:metric time:last_60d | timechart span:1d count(), avg(raw.cpu_pct)";
    let before = searcher.search(q, now).await.unwrap();
    let rep =
        maintenance::pass(&pool, &RetentionPolicy::default(), None, now, RunOptions::default(), &Default::default())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(rep.rows("rollup[metric]"), 480);
    let after = searcher.search(q, now).await.unwrap();
    assert_eq!(before.rows.len(), 1, "{:?} {:?}", before.rows, before.sql);
    assert_eq!(after.rows, before.rows, "the same day, count and average, now from the hourly rollups");
    assert_eq!(after.rows[0][1], 480);
    assert!(after.plan.iter().any(|p| p.contains("hourly rollups")), "{:?}", after.plan);
}
