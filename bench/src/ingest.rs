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
use vigil_ingest::publish::{publish_batched, publish_raw};
use vigil_ingest::shutdown::Shutdown;
use vigil_store::{connect, migrate, EventWriter, MigrateOptions, Pool};

use crate::{percentile, IngestArgs, ScratchDb};
use vigil_embedded::EmbeddedNats;

/// Publishes `events` while the running ingester stores them; returns the
/// end-to-end rate (until all are queryable) and the publish rate.
async fn live(
    js: &async_nats::jetstream::Context,
    pool: &Pool,
    metrics: &Metrics,
    events: Vec<Event>,
    per_message: usize,
) -> anyhow::Result<(f64, f64)> {
    let n = events.len() as i64;
    let base = metrics.totals().1;
    let t = Instant::now();
    let js2 = js.clone();
    let publisher = tokio::spawn(async move { publish_batched(&js2, events, 1024, per_message).await });
    let published = publisher.await??;
    let publish_s = t.elapsed().as_secs_f64();
    wait_stored(pool, metrics, base, n).await?;
    Ok((n as f64 / t.elapsed().as_secs_f64(), published as f64 / publish_s))
}

/// Waits until the ingester has committed `n` events more than `base`, then
/// checks the table holds exactly `n`. Polls the ingester's own counter (set
/// after each commit) because a count(*) every few ms would steal the CPU
/// being measured.
async fn wait_stored(pool: &Pool, metrics: &Metrics, base: u64, n: i64) -> anyhow::Result<()> {
    while metrics.totals().1 < base + n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = count(pool).await?;
    anyhow::ensure!(stored == n, "expected {n} events stored, found {stored}");
    Ok(())
}

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
    let client = vigil_ingest::nats::connect(nats_url, &Default::default()).await?;
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
    publish_batched(&js, drain, 1024, a.per_message).await?;
    let metrics = Arc::new(Metrics::new());
    let (trigger, stop) = Shutdown::new();
    let t = Instant::now();
    let pipeline =
        tokio::spawn(vigil_ingest::nats::run(NatsConfig::new(nats_url), pool.clone(), metrics.clone(), stop));
    wait_stored(&pool, &metrics, 0, drained).await?;
    let drain_s = t.elapsed().as_secs_f64();
    println!(
        "  ingest (drain)    {drained:>9} events in {drain_s:>6.2}s = {:>9.0} events/s (stream pre-filled, {} events/message: JetStream → ingester → PostgreSQL)",
        drained as f64 / drain_s,
        a.per_message
    );
    pool.get().await?.batch_execute("TRUNCATE events").await?;

    // 2. Live: publish and ingest at the same time, one event per message and then batched.
    let single: Vec<Event> = telemetry[..telemetry.len() / 2].to_vec();
    let single_n = single.len();
    let (single_rate, _) = live(&js, &pool, &metrics, single, 1).await?;
    pool.get().await?.batch_execute("TRUNCATE events").await?;
    let (batched_rate, publish_rate) = live(&js, &pool, &metrics, telemetry, a.per_message).await?;
    println!(
        "  publish           {n:>9} events          = {publish_rate:>9.0} events/s ({} events/message, async-ack window 1024)",
        a.per_message
    );
    println!(
        "  end to end        {:>9} events          = {single_rate:>9.0} events/s (1 event/message: publish → JetStream → ingester → PostgreSQL)",
        single_n
    );
    println!(
        "  end to end        {n:>9} events          = {batched_rate:>9.0} events/s ({} events/message: publish → JetStream → ingester → PostgreSQL)",
        a.per_message
    );
    println!("  row-by-row INSERT {inserted:>9} events          = {baseline_rate:>9.0} events/s (baseline)");
    println!(
        "  end to end / baseline = {:.1}x batched, {:.1}x one event per message",
        batched_rate / baseline_rate,
        single_rate / baseline_rate
    );

    // 3. Alert lane latency, measured while a telemetry backlog drains.
    let backlog: Vec<Event> = Generator::new(GeneratorConfig {
        seed: 7,
        ..GeneratorConfig::recent(a.events * 2, chrono::Duration::hours(6), now)
    })
    .filter(|e| !e.kind.is_security())
    .take((a.events / 2) as usize)
    .collect();
    let js3 = js.clone();
    let per_message = a.per_message;
    let load = tokio::spawn(async move { publish_batched(&js3, backlog, 1024, per_message).await });
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
