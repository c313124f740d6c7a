#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Metric rollups and SRQL over them against the real PostgreSQL server, in
//! both storage modes: `vigil_store::retention::roll_up` moves old samples
//! into hourly `metric_rollups` rows, and a `| timechart` reaching before the
//! rollup boundary reads them, with the same aggregates as over the raw samples.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use vigil_event::{Event, Kind};
use vigil_search::{run as run_query, QueryOptions};
use vigil_srql::{compile, Config};
use vigil_store::retention::{self, floor_hour, RetentionPolicy};
use vigil_store::testing::{metric_samples, migrated, TempDatabase};
use vigil_store::{EventWriter, Pool, TimescaleChoice};

async fn count(pool: &Pool, sql: &str) -> i64 {
    pool.get().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

async fn kind_count(pool: &Pool, kind: &str) -> i64 {
    pool.get().await.unwrap().query_one("SELECT count(*) FROM events WHERE kind = $1", &[&kind]).await.unwrap().get(0)
}

const CHART: &str = "kind:metric | timechart span:1h count(), avg(raw.cpu_pct), min(raw.cpu_pct), max(raw.cpu_pct), \
                     sum(raw.load1), count(raw.load1) as loads by host";

async fn chart(pool: &Pool, query: &str, cfg: &Config, now: DateTime<Utc>) -> Vec<Vec<serde_json::Value>> {
    let c = compile(query, cfg, now).unwrap();
    run_query(pool, &c, &QueryOptions::default()).await.unwrap().rows
}

fn assert_same(a: &[Vec<serde_json::Value>], b: &[Vec<serde_json::Value>]) {
    assert_eq!(a.len(), b.len());
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{ra:?} vs {rb:?}"),
                _ => assert_eq!(x, y, "{ra:?} vs {rb:?}"),
            }
        }
    }
}

async fn rollups_in(choice: TimescaleChoice) -> (TempDatabase, Pool) {
    let (db, pool) = migrated(choice).await;
    let now = floor_hour(Utc::now());
    let start = now - Duration::days(40);
    let old = metric_samples(start, 72);
    let recent = metric_samples(now - Duration::days(1), 2);
    let writer = EventWriter::new(pool.clone());
    for chunk in old.chunks(20_000) {
        writer.write(chunk).await.unwrap();
    }
    writer.write(&recent).await.unwrap();
    let raw_before = kind_count(&pool, "metric").await;
    assert_eq!(raw_before, 2 * 74 * 240);

    let z = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let range = format!("time:[{}, {}] ", z(start), z(now));
    let daily = format!("{range}{}", CHART.replace("span:1h", "span:1d"));
    let hourly = format!("{range}{CHART}");
    let raw_hourly = chart(&pool, &hourly, &Config::default(), now).await;
    let raw_daily = chart(&pool, &daily, &Config::default(), now).await;
    assert_eq!(raw_hourly.len(), 2 * 74);

    let policy = RetentionPolicy::default();
    let cutoff = policy.rollup_cutoff(now).unwrap();
    let dry = retention::roll_up(&pool, cutoff, true).await.unwrap();
    assert_eq!(dry.0, 2 * 72 * 240);
    assert_eq!(kind_count(&pool, "metric").await, raw_before, "a dry run moves nothing");

    let (moved, _, written) = retention::roll_up(&pool, cutoff, false).await.unwrap();
    assert_eq!(moved, 2 * 72 * 240);
    // Per hour: host a has '', cpu_pct, load1; host b has '', cpu_pct.
    assert_eq!(written, 72 * (3 + 2));
    assert_eq!(count(&pool, "SELECT count(*) FROM metric_rollups").await, 72 * 5);
    assert_eq!(kind_count(&pool, "metric").await, 2 * 2 * 240, "only the recent raw rows remain");
    assert_eq!(retention::rollup_boundary(&pool).await.unwrap(), Some(cutoff));

    // One hour checked against the samples themselves.
    let hour: Vec<f64> = (0..240).map(|i| ((i * 37) % 1000) as f64 / 10.0).collect();
    let row = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count, sum, min, max, metric FROM metric_rollups WHERE bucket = $1 AND host = 'host-a' AND field = 'cpu_pct'",
            &[&start],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 240);
    assert!((row.get::<_, f64>(1) - hour.iter().sum::<f64>()).abs() < 1e-6);
    assert_eq!(row.get::<_, f64>(2), hour.iter().cloned().fold(f64::MAX, f64::min));
    assert_eq!(row.get::<_, f64>(3), hour.iter().cloned().fold(f64::MIN, f64::max));
    assert_eq!(row.get::<_, String>(4), "cpu");

    // A re-run adds nothing.
    let (moved2, _, _) = retention::roll_up(&pool, cutoff, false).await.unwrap();
    assert_eq!(moved2, 0);
    assert_eq!(count(&pool, "SELECT sum(count)::bigint FROM metric_rollups WHERE field = ''").await, 2 * 72 * 240);

    // The same charts, from rollups: identical aggregates (floats to rounding).
    let cfg = Config { rollup_before: Some(cutoff), ..Config::default() };
    assert_same(&chart(&pool, &hourly, &cfg, now).await, &raw_hourly);
    assert_same(&chart(&pool, &daily, &cfg, now).await, &raw_daily);
    // Without the boundary the old hours are simply gone from the raw rows.
    assert_eq!(chart(&pool, &hourly, &Config::default(), now).await.len(), 2 * 2);

    // A late sample for a rolled-up hour is merged on the next run, once.
    let mut late = Event::new(Kind::Metric, "vigil-agent", start + Duration::seconds(7), b"late");
    late.host = Some("host-a".into());
    late.raw = json!({"metric": "cpu", "cpu_pct": 100.0});
    writer.write(&[late]).await.unwrap();
    assert_eq!(retention::roll_up(&pool, cutoff, false).await.unwrap().0, 1);
    assert_eq!(retention::roll_up(&pool, cutoff, false).await.unwrap().0, 0);
    let r = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count, max FROM metric_rollups WHERE bucket = $1 AND host = 'host-a' AND field = 'cpu_pct'",
            &[&start],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, f64>(1)), (241, 100.0));
    (db, pool)
}

#[tokio::test]
async fn rollups_on_timescaledb() {
    rollups_in(TimescaleChoice::Require).await;
}

#[tokio::test]
async fn rollups_on_native_partitioning() {
    rollups_in(TimescaleChoice::Off).await;
}
