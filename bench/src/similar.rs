//! `vigil bench similar`: filtered `SIMILAR_TO` on a generated corpus —
//! latency of the exact path, the HNSW path and the executor's own choice,
//! and the HNSW path's recall@k against exact search, from one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_embed::{CachedEmbedder, EmbedConfig, Embedder, Selection};
use vigil_ingest::generate::{Generator, GeneratorConfig};
use vigil_search::{SearchOptions, Searcher, Vectorizer};
use vigil_store::{connect, migrate, vectors, EventWriter, MigrateOptions};

use crate::{percentile, ScratchDb};

#[derive(Debug, clap::Args)]
pub struct SimilarArgs {
    /// Server to create the scratch database on (needs CREATEDB).
    #[arg(long, env = "VIGIL_BENCH_ADMIN_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// Generated events (over 24 hours, 50 hosts).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: u64,
    /// Times each query runs per path.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Keep the scratch database (its URL is printed) to look at plans afterwards.
    #[arg(long)]
    keep_db: bool,
    /// Query a database an earlier `--keep-db` run loaded instead of loading
    /// a new one (its events and vectors are reused; nothing is dropped).
    #[arg(long)]
    reuse_db: Option<String>,
    /// The HNSW walk skips a text whose newest N events all fail the filter
    /// (0: it pages through every event); see `SearchOptions::skip_text_after`.
    #[arg(long, default_value_t = SearchOptions::default().skip_text_after)]
    skip_text_after: i64,
    /// Statement timeout per query, seconds (the exact path over millions of
    /// candidates takes seconds).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

const TEXTS: &[&str] = &[
    "reading the password hashes file",
    "reverse shell to a remote host",
    "download and execute a script from the internet",
    "brute force login attempts",
    "privilege escalation via sudo",
    "disk space check",
    "service restarted by systemd",
    "out of memory killer",
];

const FILTERS: &[&str] =
    &["", "host:web-01", "kind:process", "kind:auth", "host:db-02 kind:process", "severity:>=medium"];

pub async fn run(a: SimilarArgs) -> anyhow::Result<()> {
    if let Some(url) = &a.reuse_db {
        return bench(&a, url).await;
    }
    let db = ScratchDb::create(&a.admin_url, "similar").await?;
    let result = bench(&a, &db.url).await;
    if a.keep_db {
        println!("  kept database: {}", db.url);
    } else {
        db.drop_db().await?;
    }
    result
}

async fn bench(a: &SimilarArgs, url: &str) -> anyhow::Result<()> {
    let pool = connect(url, 4)?;
    let report = migrate(&pool, &MigrateOptions::default()).await?;
    let client = pool.get().await?;
    let now = if a.reuse_db.is_some() {
        // The corpus's own "now": its newest event, so windows cover it.
        let newest: Option<chrono::DateTime<Utc>> = client.query_one("SELECT max(time) FROM events", &[]).await?.get(0);
        let n: i64 = client.query_one("SELECT count(*) FROM events", &[]).await?.get(0);
        println!("vigil bench similar — {} storage, reusing {n} events", report.mode);
        newest.map(|t| t + chrono::Duration::seconds(1)).unwrap_or_else(Utc::now)
    } else {
        let now = Utc::now();
        println!("vigil bench similar — {} storage, {} events over 24 h", report.mode, a.events);
        let writer = EventWriter::new(pool.clone());
        let t = Instant::now();
        let mut gen = Generator::new(GeneratorConfig::recent(a.events, chrono::Duration::hours(24), now));
        loop {
            let batch: Vec<_> = gen.by_ref().take(10_000).collect();
            if batch.is_empty() {
                break;
            }
            writer.write(&batch).await?;
        }
        println!("  load             {:>9} events in {:>6.1}s", a.events, t.elapsed().as_secs_f64());
        now
    };
    drop(client);

    let embedder = Arc::new(CachedEmbedder::new(Embedder::load(&EmbedConfig::default())?, 100_000));
    let worker = Vectorizer::new(embedder.clone(), Selection::default()).with_settle(Duration::ZERO);
    let t = Instant::now();
    let linked = worker.sync(&pool).await?;
    let secs = t.elapsed().as_secs_f64();
    let (texts, _) = vectors::counts(&pool, embedder.model_id()).await?;
    println!(
        "  vectorize        {linked:>9} events linked to {texts} distinct texts in {secs:>6.1}s = {:>9.0} events/s",
        linked as f64 / secs
    );
    pool.get().await?.batch_execute("ANALYZE").await?;

    let searcher = |exact_max: f64| {
        Searcher::new(
            pool.clone(),
            Some(embedder.clone()),
            SearchOptions {
                exact_max_candidates: exact_max,
                skip_text_after: a.skip_text_after,
                query: vigil_search::QueryOptions { statement_timeout: Duration::from_secs(a.timeout) },
                ..SearchOptions::default()
            },
        )
    };
    let (exact, indexed, auto) =
        (searcher(f64::INFINITY), searcher(-1.0), searcher(SearchOptions::default().exact_max_candidates));
    let (mut t_exact, mut t_indexed, mut t_auto) = (Vec::new(), Vec::new(), Vec::new());
    let mut recalls = Vec::new();
    let mut auto_indexed = 0;
    let mut fallbacks = 0;
    for text in TEXTS {
        for filter in FILTERS {
            let q = format!("{filter} | SIMILAR_TO(\"{text}\", k:{})", a.k);
            // Warm the query-text cache so latencies are of the search; the
            // exact path is timed once (at 10M events it takes seconds).
            embedder.embed(&[*text])?;
            let t = Instant::now();
            let truth = exact.search(&q, now).await?;
            t_exact.push(t.elapsed().as_secs_f64() * 1000.0);
            let id = truth.columns.iter().position(|c| c.name == "event_id").unwrap_or(1);
            let ids = |rows: &[Vec<serde_json::Value>]| -> Vec<String> {
                rows.iter().map(|r| r[id].as_str().unwrap_or_default().to_string()).collect()
            };
            let want = ids(&truth.rows);
            for _ in 0..a.repeat {
                let t = Instant::now();
                let got = indexed.search(&q, now).await?;
                t_indexed.push(t.elapsed().as_secs_f64() * 1000.0);
                if got.plan.iter().any(|p| p.contains("the index returned")) {
                    fallbacks += 1;
                }
                let got = ids(&got.rows);
                if !want.is_empty() {
                    recalls.push(want.iter().filter(|w| got.contains(w)).count() as f64 / want.len() as f64);
                }
                let t = Instant::now();
                let r = auto.search(&q, now).await?;
                t_auto.push(t.elapsed().as_secs_f64() * 1000.0);
                if r.plan.iter().any(|p| p.contains("HNSW")) {
                    auto_indexed += 1;
                }
            }
        }
    }
    for v in [&mut t_exact, &mut t_indexed, &mut t_auto] {
        v.sort_by(|x, y| x.total_cmp(y));
    }
    let n = TEXTS.len() * FILTERS.len();
    let line = |name: &str, v: &[f64]| {
        println!(
            "  {name:<16} {n} queries x {}: p50 {:>7.1} ms  p99 {:>7.1} ms",
            a.repeat,
            percentile(v, 0.5),
            percentile(v, 0.99)
        )
    };
    println!(
        "  {:<16} {n} queries x 1: p50 {:>7.1} ms  p99 {:>7.1} ms",
        "exact path",
        percentile(&t_exact, 0.5),
        percentile(&t_exact, 0.99)
    );
    line("HNSW path", &t_indexed);
    line("auto (executor)", &t_auto);
    let recall = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    println!(
        "  recall@{} of the HNSW path vs exact: {recall:.3} (mean of {} runs; {fallbacks} finished by the exact scan)",
        a.k,
        recalls.len(),
    );
    println!("  auto chose HNSW in {auto_indexed} of {} runs", t_auto.len());
    Ok(())
}
