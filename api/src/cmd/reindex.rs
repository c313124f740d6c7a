//! `vigil reindex`: rebuilds the BM25 full-text index from PostgreSQL (the
//! system of record). Use it after moving or losing the index directory, or
//! to repair rows a very long writer transaction committed behind the
//! indexer's watermark (see `vigil_store::tail`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use vigil_fulltext::TextIndex;
use vigil_store::{connect, migrate, MigrateOptions};

use super::Timescale;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The BM25 index directory [default: <data dir>/bm25].
    #[arg(long, env = "VIGIL_INDEX_DIR")]
    index_dir: Option<PathBuf>,
    /// Vigil's data directory, as for `vigil up`.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = ".vigil")]
    data_dir: PathBuf,
    #[arg(long, value_enum, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    timescaledb: Timescale,
}

/// Where the BM25 index lives: `--index-dir` / `VIGIL_INDEX_DIR` when given,
/// else `bm25` under the data directory (`--data-dir` / `VIGIL_DATA_DIR`,
/// default `.vigil`, as `vigil up` uses).
pub fn index_dir(explicit: Option<&Path>, data_dir: &Path) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => data_dir.join("bm25"),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = index_dir(args.index_dir.as_deref(), &args.data_dir);
    let pool = connect(&args.database_url, 4)?;
    migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb.into() }).await.context("migrating the database")?;
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
