//! `vigil reindex`: rebuilds the BM25 full-text index from PostgreSQL (the
//! system of record). Use it after moving or losing the index directory, or
//! to repair rows a very long writer transaction committed behind the
//! indexer's watermark (see `vigil_store::tail`).

use std::time::Instant;

use anyhow::Context;
use vigil_api::config::DataDirs;
use vigil_fulltext::TextIndex;
use vigil_store::{connect, migrate, MigrateOptions};

use vigil_store::TimescaleChoice;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(flatten)]
    dirs: DataDirs,
    #[arg(long, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    timescaledb: TimescaleChoice,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = args.dirs.bm25();
    let pool = connect(&args.database_url, 4)?;
    migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb }).await.context("migrating the database")?;
    let index = TextIndex::open(&dir).with_context(|| {
        format!("opening the BM25 index in {} (is a Vigil server using it? stop it first)", dir.display())
    })?;
    println!("Rebuilding the BM25 index in {} from PostgreSQL…", dir.display());
    let t = Instant::now();
    let n = vigil_fulltext::reindex(&index, &pool).await.context("rebuilding the BM25 index")?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "indexed {n} events in {secs:.1}s ({:.0} events/s); {} documents searchable",
        n as f64 / secs.max(1e-9),
        index.num_docs()
    );
    Ok(())
}
