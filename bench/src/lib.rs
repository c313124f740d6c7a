//! `vigil bench`: measurements that print figures from one run on this
//! machine, each next to a baseline measured in the same run, and each in a
//! scratch database it creates and drops (or with no database at all).
//!
//! This crate owns the benchmarks; the `vigil` binary only parses
//! [`Args`] and calls [`run`].

use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, Utc};
use vigil_ingest::generate::{Generator, GeneratorConfig};
use vigil_store::{connect, migrate, EventWriter, MigrateOptions};

use vigil_store::TimescaleChoice;

mod embed;
mod graph;
mod ingest;
mod search;
mod similar;

use embed::EmbedArgs;
use graph::GraphArgs;
use search::SearchArgs;
use similar::SimilarArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// The event writer: binary COPY batches vs a row-by-row INSERT baseline.
    Write(WriteArgs),
    /// End to end: generator → NATS JetStream → ingester → PostgreSQL, and the alert lane's latency.
    Ingest(IngestArgs),
    /// Sentence embeddings: sorted sub-batches vs naive 256-per-call, and the normalised-text cache.
    Embed(EmbedArgs),
    /// Free text: the BM25 index (tantivy) vs PostgreSQL full-text search (ts_rank), top 10.
    Search(SearchArgs),
    /// Filtered SIMILAR_TO: exact vs HNSW path latency and the HNSW path's recall@k.
    Similar(SimilarArgs),
    /// The in-memory connection graph: build time, memory, blast-radius and path latency, updates.
    Graph(GraphArgs),
}

#[derive(Debug, clap::Args)]
struct IngestArgs {
    /// Server to create the scratch database on (needs CREATEDB).
    #[arg(long, env = "VIGIL_BENCH_ADMIN_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// Telemetry events pushed through the pipeline.
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    /// Events written row by row for the baseline.
    #[arg(long, default_value_t = 10_000)]
    baseline_events: u64,
    /// Alerts whose publish-to-queryable latency is measured.
    #[arg(long, default_value_t = 300)]
    alerts: u64,
    /// Telemetry events per NATS message in the batched runs (NDJSON).
    #[arg(long, default_value_t = 100)]
    per_message: usize,
}

#[derive(Debug, clap::Args)]
struct WriteArgs {
    /// Server to create the scratch database on (needs CREATEDB).
    #[arg(long, env = "VIGIL_BENCH_ADMIN_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// Events written through the COPY writer.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Events per batch (one transaction each).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Events written row by row for the baseline.
    #[arg(long, default_value_t = 10_000)]
    baseline_events: u64,
    /// Storage of the scratch database: auto, require or off.
    #[arg(long, default_value = "auto")]
    timescaledb: TimescaleChoice,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Write(a) => write(a).await,
        What::Ingest(a) => ingest::run(a).await,
        What::Search(a) => search::run(a).await,
        What::Similar(a) => similar::run(a).await,
        What::Embed(a) => tokio::task::spawn_blocking(move || embed::run(a)).await?,
        What::Graph(a) => tokio::task::spawn_blocking(move || graph::run(a)).await?,
    }
}

/// The `p` quantile (0..=1) of sorted samples, NaN when there are none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A database that exists for one benchmark run.
pub(crate) struct ScratchDb {
    admin: vigil_store::Pool,
    name: String,
    pub url: String,
}

impl ScratchDb {
    pub async fn create(admin_url: &str, tag: &str) -> anyhow::Result<Self> {
        let name = format!("vigil_bench_{tag}_{}", std::process::id());
        let admin = connect(admin_url, 1)?;
        // The name is ours (a constant prefix and our pid), not user input.
        admin
            .get()
            .await
            .context("connecting to the admin URL")?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        // Same server and options (e.g. `?sslmode=disable`), the scratch database.
        let (base, options) = admin_url.split_once('?').map_or((admin_url, None), |(b, o)| (b, Some(o)));
        let url = match base.rfind('/') {
            Some(i) => format!("{}/{name}{}", &base[..i], options.map(|o| format!("?{o}")).unwrap_or_default()),
            None => anyhow::bail!("admin URL must be a postgres:// URL ending in /database"),
        };
        Ok(ScratchDb { admin, name, url })
    }

    pub async fn drop_db(self) -> anyhow::Result<()> {
        self.admin.get().await?.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        Ok(())
    }
}

async fn write(a: WriteArgs) -> anyhow::Result<()> {
    let db = ScratchDb::create(&a.admin_url, "write").await?;
    let result = write_in(&db.url, &a).await;
    db.drop_db().await?;
    result
}

async fn write_in(url: &str, a: &WriteArgs) -> anyhow::Result<()> {
    let pool = connect(url, 4)?;
    let report = migrate(&pool, &MigrateOptions { timescaledb: a.timescaledb }).await?;
    let now = Utc::now();
    let gen = |seed, count| -> Vec<_> {
        Generator::new(GeneratorConfig { seed, ..GeneratorConfig::recent(count, Duration::hours(6), now) }).collect()
    };
    let events = gen(1, a.events);
    let baseline = gen(2, a.baseline_events);
    let writer = EventWriter::new(pool.clone());
    // Partitions for the window exist before timing starts, in both runs alike.
    writer.write(&events[..1]).await?;
    writer.write(&baseline[..1]).await?;

    println!("vigil bench write — {} storage, all hunt indexes in place", report.mode);
    let t = Instant::now();
    let mut stored = 0;
    for batch in events.chunks(a.batch.max(1)) {
        stored += writer.write(batch).await?.inserted;
    }
    let copy_s = t.elapsed().as_secs_f64();
    let copy_rate = events.len() as f64 / copy_s;
    println!(
        "  COPY writer      {:>9} events in {copy_s:>6.2}s = {copy_rate:>9.0} events/s (batches of {}; {stored} new)",
        events.len(),
        a.batch
    );

    let t = Instant::now();
    let mut dup = 0;
    for batch in events.chunks(a.batch.max(1)) {
        dup += writer.write(batch).await?.duplicates;
    }
    let resend_s = t.elapsed().as_secs_f64();
    println!(
        "  re-send (dups)   {:>9} events in {resend_s:>6.2}s = {:>9.0} events/s ({dup} recognised as duplicates)",
        events.len(),
        events.len() as f64 / resend_s
    );

    let t = Instant::now();
    let inserted = writer.write_row_by_row(&baseline[1..]).await?;
    let row_s = t.elapsed().as_secs_f64();
    let row_rate = inserted as f64 / row_s;
    println!("  row-by-row INSERT{:>9} events in {row_s:>6.2}s = {row_rate:>9.0} events/s (baseline)", inserted);
    println!("  COPY writer / baseline = {:.1}x", copy_rate / row_rate);
    Ok(())
}
