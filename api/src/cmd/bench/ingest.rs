//! `vigil bench ingest`: generator → NATS JetStream → ingester → PostgreSQL
//! on this machine, next to a row-by-row INSERT baseline measured in the same
//! run, and the alert lane's publish-to-queryable latency under load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use vigil_event::{Event, Kind, Severity};
use vigil_ingest::generate::{Generator, GeneratorConfig};
use vigil_ingest::metrics::Metrics;
use vigil_ingest::nats::{ensure_streams, NatsConfig};
use vigil_ingest::publish::{publish_events, publish_raw};
use vigil_ingest::shutdown::Shutdown;
use vigil_store::{connect, migrate, EventWriter, MigrateOptions, Pool};

use super::{percentile, IngestArgs, ScratchDb};
use vigil_api::embedded::EmbeddedNats;

async fn count(pool: &Pool) -> anyhow::Result<i64> {
    Ok(pool.get().await?.query_one("SELECT count(*) FROM events", &[]).await?.get(0))
}

pub async fn run(a: IngestArgs) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("vigil-bench-nats-{}", std::process::id()));
    let nats = EmbeddedNats::start(&scratch)?.context("nats-server is not installed (run scripts/setup.sh)")?;
    let db = ScratchDb::create(&a.admin_url, "ingest").await?;
    let result = bench(&a, &nats.url(), &db.url).await;
    drop(nats);
    let _ = std::fs::remove_dir_all(&scratch);
    db.drop_db().await?;
    result
}

async fn bench(a: &IngestArgs, nats_url: &str, db_url: &str) -> anyhow::Result<()> {
    let pool = connect(db_url, 8)?;
    let report = migrate(&pool, &MigrateOptions::default()).await?;
    let client = vigil_ingest::nats::connect(nats_url).await?;
    let js = async_nats::jetstream::new(client);
    ensure_streams(&js, &NatsConfig::new(nats_url)).await?;
    let now = Utc::now();
    // Telemetry only (process, network, metric, log): the bulk lane.
    let telemetry: Vec<Event> = Generator::new(GeneratorConfig::recent(a.events * 2, chrono::Duration::hours(6), now))
        .filter(|e| !e.kind.is_security())
        .take(a.events as usize)
        .collect();
    let n = telemetry.len() as i64;
    println!("vigil bench ingest — {} storage, private nats-server, all hunt indexes in place", report.mode);

    // Baseline first, in its own table state, so it is measured on the same machine in the same run.
    let baseline: Vec<Event> = Generator::new(GeneratorConfig {
        seed: 99,
        ..GeneratorConfig::recent(a.baseline_events, chrono::Duration::hours(6), now)
    })
    .collect();
    let writer = EventWriter::new(pool.clone());
    writer.write(&baseline[..1]).await?;
    let t = Instant::now();
    let inserted = writer.write_row_by_row(&baseline[1..]).await?;
    let baseline_rate = inserted as f64 / t.elapsed().as_secs_f64();
    pool.get().await?.batch_execute("TRUNCATE events").await?;

    // 1. Drain: a stream already holding the events, emptied by the ingester.
    let drain: Vec<Event> = Generator::new(GeneratorConfig {
        seed: 5,
        ..GeneratorConfig::recent(a.events * 2, chrono::Duration::hours(6), now)
    })
    .filter(|e| !e.kind.is_security())
    .take(a.events as usize)
    .collect();
    let drained = drain.len() as i64;
    publish_events(&js, drain, 1024).await?;
    let metrics = Arc::new(Metrics::new());
    let (trigger, stop) = Shutdown::new();
    let t = Instant::now();
    let pipeline =
        tokio::spawn(vigil_ingest::nats::run(NatsConfig::new(nats_url), pool.clone(), metrics.clone(), stop));
    while count(&pool).await? < drained {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_s = t.elapsed().as_secs_f64();
    println!(
        "  ingest (drain)    {drained:>9} events in {drain_s:>6.2}s = {:>9.0} events/s (stream pre-filled: JetStream → ingester → PostgreSQL)",
        drained as f64 / drain_s
    );
    pool.get().await?.batch_execute("TRUNCATE events").await?;

    // 2. Live: publish and ingest at the same time.
    let t = Instant::now();
    let js2 = js.clone();
    let publisher = tokio::spawn(async move { publish_events(&js2, telemetry, 1024).await });
    let published = publisher.await??;
    let publish_s = t.elapsed().as_secs_f64();
    while count(&pool).await? < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live_s = t.elapsed().as_secs_f64();
    let live_rate = n as f64 / live_s;
    println!(
        "  publish           {published:>9} events in {publish_s:>6.2}s = {:>9.0} events/s (async-ack window 1024)",
        published as f64 / publish_s
    );
    println!("  end to end        {n:>9} events in {live_s:>6.2}s = {live_rate:>9.0} events/s (publish → JetStream → ingester → PostgreSQL)");
    println!("  row-by-row INSERT {inserted:>9} events           = {baseline_rate:>9.0} events/s (baseline)");
    println!("  end to end / baseline = {:.1}x", live_rate / baseline_rate);

    // 3. Alert lane latency, measured while a telemetry backlog drains.
    let backlog: Vec<Event> = Generator::new(GeneratorConfig {
        seed: 7,
        ..GeneratorConfig::recent(a.events * 2, chrono::Duration::hours(6), now)
    })
    .filter(|e| !e.kind.is_security())
    .take((a.events / 2) as usize)
    .collect();
    let js3 = js.clone();
    let load = tokio::spawn(async move { publish_events(&js3, backlog, 1024).await });
    let mut latencies = Vec::with_capacity(a.alerts as usize);
    let probe = pool.get().await?;
    let stmt = probe.prepare("SELECT 1 FROM events WHERE event_id = $1 AND time = $2").await?;
    for i in 0..a.alerts {
        let t = Utc::now();
        let mut e = Event::new(Kind::Alert, "bench", t, format!("latency-{i}").as_bytes());
        e.severity = Severity::High;
        e.message = format!("latency probe {i}");
        let started = Instant::now();
        publish_raw(&js, "alert", &e.id.to_string(), serde_json::to_vec(&e)?).await?.await?;
        loop {
            if probe.query_opt(&stmt, &[&e.id, &e.time]).await?.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("alert {i} was not queryable after 30s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = load.await;
    latencies.sort_by(|x, y| x.total_cmp(y));
    println!(
        "  alert lane        {} alerts under telemetry load: publish → queryable p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    trigger.trigger();
    let _ = pipeline.await;
    Ok(())
}
