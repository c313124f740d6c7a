//! `vigil bench search`: free-text search over generated events, the BM25
//! index (tantivy, fed from PostgreSQL by the tail) against PostgreSQL's own
//! full-text search (a stored `tsvector` with a GIN index, ranked by
//! `ts_rank`), both built in the same run from the same rows and asked the
//! same queries, top 10 each.

use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use vigil_fulltext::{TextIndex, TextQuery};
use vigil_ingest::generate::{Generator, GeneratorConfig};
use vigil_store::{connect, migrate, EventWriter, MigrateOptions, Pool};

use crate::{percentile, ScratchDb};
use vigil_store::TimescaleChoice;

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Server to create the scratch database on (needs CREATEDB).
    #[arg(long, env = "VIGIL_BENCH_ADMIN_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// Generated events loaded and indexed.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Timed passes over the query set (after one warm-up pass).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Storage of the scratch database: auto, require or off.
    #[arg(long, default_value = "auto")]
    timescaledb: TimescaleChoice,
}

/// Analyst-style free text over the generator's corpus: process names, paths,
/// users, addresses, log phrases; `true` marks an exact phrase.
const QUERIES: &[(&str, bool)] = &[
    ("cat /etc/shadow", true),
    ("tail -n 10 /etc/shadow", true),
    ("/etc/shadow", false),
    ("shadow", false),
    ("Failed password", false),
    ("Failed password for root", true),
    ("Accepted publickey", false),
    ("Accepted publickey for alice", true),
    ("sshd", false),
    ("ssh2", false),
    ("oracle", false),
    ("ubuntu", false),
    ("guest password", false),
    ("nginx", false),
    ("daemon off", true),
    ("python3 worker.py", false),
    ("/opt/app/worker.py", false),
    ("sessionclean", false),
    ("apt-get update", false),
    ("logrotate /etc/logrotate.conf", true),
    ("autovacuum", false),
    ("journalctl ssh", false),
    ("tar backup", false),
    ("rsync backup-01", false),
    ("node server.js", false),
    ("/var/log/nginx", false),
    ("grep ERROR", false),
    ("docker", false),
    ("find /tmp -mtime +7 -delete", true),
    ("/tmp/.m", false),
    ("chmod u+s", true),
    ("wget", false),
    ("nc -e /bin/sh", true),
    ("/dev/tcp", false),
    ("4444", false),
    ("bash -i", true),
    ("pty spawn", false),
    ("useradd", false),
    ("svc-backup", false),
    ("crontab", false),
    ("base64", false),
    ("Reverse shell", false),
    ("brute force", false),
    ("setuid binary", false),
    ("SYN flooding", true),
    ("Out of memory", true),
    ("conntrack table full", false),
    ("EXT4-fs remount-ro", false),
    ("process started by www-data", true),
    ("deploy git pull", false),
    ("postgres 5432", false),
    ("cpu", false),
];

/// The text PostgreSQL indexes: what the BM25 index indexes.
const PG_TEXT: &str = "message || ' ' || coalesce(process_cmdline, '') || ' ' || coalesce(user_name, '')";

pub async fn run(a: SearchArgs) -> anyhow::Result<()> {
    let db = ScratchDb::create(&a.admin_url, "search").await?;
    let dir = std::env::temp_dir().join(format!("vigil-bench-bm25-{}", std::process::id()));
    let result = bench(&a, &db.url, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    db.drop_db().await?;
    result
}

async fn bench(a: &SearchArgs, url: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let pool = connect(url, 4)?;
    let report = migrate(&pool, &MigrateOptions { timescaledb: a.timescaledb }).await?;
    println!("vigil bench search — {} events, {} storage", a.events, report.mode);

    // 1. Load through the writer, streaming from the generator.
    let end = Utc::now();
    let start = end - chrono::Duration::hours(24);
    let writer = EventWriter::new(pool.clone());
    let t = Instant::now();
    let mut gen = Generator::new(GeneratorConfig::recent(a.events, chrono::Duration::hours(24), end));
    let mut stored = 0u64;
    loop {
        let batch: Vec<_> = gen.by_ref().take(10_000).collect();
        if batch.is_empty() {
            break;
        }
        stored += writer.write(&batch).await?.inserted;
    }
    let load_s = t.elapsed().as_secs_f64();
    println!("  load (COPY writer)   {stored:>9} events in {load_s:>7.1}s = {:>8.0} events/s", stored as f64 / load_s);

    // Statistics, as autovacuum would gather after such a load.
    pool.get().await?.batch_execute("ANALYZE events").await?;

    // 2. The BM25 index, fed the way the server feeds it: tail → tantivy.
    let index = TextIndex::open(dir)?.with_settle(std::time::Duration::ZERO);
    let t = Instant::now();
    let indexed = vigil_fulltext::reindex(&index, &pool).await?;
    let index_s = t.elapsed().as_secs_f64();
    println!(
        "  BM25 index (tantivy) {indexed:>9} docs   in {index_s:>7.1}s = {:>8.0} docs/s (PostgreSQL tail → index → commit), {} on disk",
        indexed as f64 / index_s,
        human_bytes(dir_size(dir))
    );

    // 3. The PostgreSQL baseline: a stored tsvector and a GIN index on it.
    let t = Instant::now();
    let fts = pg_fts(&pool).await?;
    let pg_s = t.elapsed().as_secs_f64();
    let gin_bytes: i64 = pool
        .get()
        .await?
        .query_one(
            "SELECT coalesce(sum(pg_relation_size(format('%I.%I', schemaname, indexname)::regclass)), 0)::int8
               FROM pg_indexes WHERE indexdef LIKE '%USING gin%'",
            &[],
        )
        .await?
        .get(0);
    println!(
        "  PostgreSQL FTS       {stored:>9} rows   in {pg_s:>7.1}s = {:>8.0} rows/s ({fts}), GIN {}",
        stored as f64 / pg_s,
        human_bytes(gin_bytes.max(0) as u64)
    );

    // 4. The same queries against both.
    let client = pool.get().await?;
    let words_sql = format!(
        "SELECT event_id, ts_rank({col}, q) AS rank FROM events, plainto_tsquery('simple', $1) q
          WHERE {col} @@ q AND time >= $2 AND time < $3 ORDER BY rank DESC LIMIT 10",
        col = if fts == "stored column" { "fts".to_string() } else { format!("to_tsvector('simple', {PG_TEXT})") }
    );
    let phrase_sql = words_sql.replace("plainto_tsquery", "phraseto_tsquery");
    let words_stmt = client.prepare(&words_sql).await?;
    let phrase_stmt = client.prepare(&phrase_sql).await?;
    let window = (start - chrono::Duration::minutes(1), end + chrono::Duration::minutes(1));

    let mut bm25_ms = Vec::new();
    let mut pg_ms = Vec::new();
    let mut same_count = 0;
    let mut bm25_hits = 0usize;
    let mut total_matches = 0u64;
    for round in 0..=a.rounds {
        let timed = round > 0;
        for &(text, phrase) in QUERIES {
            let q = TextQuery { text: text.into(), phrase, window: Some(window), limit: 10 };
            let t = Instant::now();
            let hits = index.search(&q)?;
            let bm25 = t.elapsed().as_secs_f64() * 1000.0;

            let stmt = if phrase { &phrase_stmt } else { &words_stmt };
            let t = Instant::now();
            let rows = client.query(stmt, &[&text, &window.0, &window.1]).await?;
            let pg = t.elapsed().as_secs_f64() * 1000.0;
            if timed {
                bm25_ms.push(bm25);
                pg_ms.push(pg);
            } else {
                // Sanity, once: both return a full top 10 where there are 10 matches.
                same_count += usize::from(hits.hits.len() == rows.len());
                bm25_hits += usize::from(!hits.hits.is_empty());
                total_matches += hits.total;
            }
        }
    }
    bm25_ms.sort_by(|x, y| x.total_cmp(y));
    pg_ms.sort_by(|x, y| x.total_cmp(y));
    let (b50, b99) = (percentile(&bm25_ms, 0.5), percentile(&bm25_ms, 0.99));
    let (p50, p99) = (percentile(&pg_ms, 0.5), percentile(&pg_ms, 0.99));
    println!(
        "  {} queries × {} rounds, top 10 each, 24 h window ({bm25_hits} with hits, {total_matches} matches in all; \
         {same_count}/{} return as many rows on both)",
        QUERIES.len(),
        a.rounds,
        QUERIES.len()
    );
    println!("  BM25 (tantivy)           p50 {b50:>8.2} ms   p99 {b99:>8.2} ms");
    println!("  PostgreSQL ts_rank       p50 {p50:>8.2} ms   p99 {p99:>8.2} ms");
    println!("  speed-up                 p50 {:>7.1}x     p99 {:>7.1}x", p50 / b50, p99 / b99);
    Ok(())
}

/// Builds the PostgreSQL full-text baseline: a stored generated `tsvector`
/// column with a GIN index where the table takes one, else a GIN index on the
/// expression. Says which.
async fn pg_fts(pool: &Pool) -> anyhow::Result<&'static str> {
    let client = pool.get().await?;
    let added = client
        .batch_execute(&format!(
            "ALTER TABLE events ADD COLUMN fts tsvector
                 GENERATED ALWAYS AS (to_tsvector('simple', {PG_TEXT})) STORED"
        ))
        .await;
    let kind = match added {
        Ok(()) => {
            client.batch_execute("CREATE INDEX events_fts_gin ON events USING gin (fts)").await?;
            "stored column"
        }
        Err(e) => {
            tracing::info!("stored tsvector column not possible here ({e}); using an expression index");
            client
                .batch_execute(&format!(
                    "CREATE INDEX events_fts_gin ON events USING gin ((to_tsvector('simple', {PG_TEXT})))"
                ))
                .await
                .context("creating the GIN expression index")?;
            "expression index"
        }
    };
    client.batch_execute("VACUUM ANALYZE events").await?;
    Ok(kind)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn human_bytes(n: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    format!("{:.0} MB", n as f64 / MB)
}
