//! `vigil retention run [--dry-run]`: one retention and rollup pass against
//! `DATABASE_URL`, printing what it did (or would do); `vigil retention
//! policy` prints the effective policy. The policy comes from `--policy` /
//! `VIGIL_RETENTION` (docs/retention.md).

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use vigil_api::config::{parse_policy, DataDirs};
use vigil_fulltext::TextIndex;
use vigil_store::retention::{RetentionPolicy, RunOptions, DEFAULT_BATCH};
use vigil_store::{connect, migrate, MigrateOptions};

use vigil_store::TimescaleChoice;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run one pass: roll metrics up, apply retention, print what went.
    Run(RunArgs),
    /// Print the effective policy (defaults changed by --policy / VIGIL_RETENTION).
    Policy(PolicyArgs),
}

#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// Changes to the default policy, e.g. "metric=60d,alert=730d,rollup_after=off".
    #[arg(long, env = "VIGIL_RETENTION", default_value = "", value_parser = parse_policy)]
    policy: Box<RetentionPolicy>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Changes to the default policy, e.g. "metric=60d,alert=730d,dead_letters=7d".
    #[arg(long, env = "VIGIL_RETENTION", default_value = "", value_parser = parse_policy)]
    policy: Box<RetentionPolicy>,
    /// Count what would go; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per batched DELETE.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: i64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The BM25 index is skipped when a running server holds it (its own
    /// maintenance loop covers it then).
    #[command(flatten)]
    dirs: DataDirs,
    #[arg(long, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    timescaledb: TimescaleChoice,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Policy(a) => {
            println!("{}", a.policy);
            Ok(())
        }
        Command::Run(a) => run_pass(a).await,
    }
}

async fn run_pass(args: RunArgs) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 4)?;
    migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb }).await.context("migrating the database")?;
    let dir = args.dirs.bm25();
    let index = if args.dry_run || !dir.is_dir() {
        None
    } else {
        match TextIndex::open(&dir) {
            Ok(i) => Some(Arc::new(i)),
            Err(e) => {
                eprintln!(
                    "note: BM25 index in {} not opened ({e}); a running server applies retention to it",
                    dir.display()
                );
                None
            }
        }
    };
    let opts = RunOptions { dry_run: args.dry_run, batch: args.batch };
    // One pass in this process: its counters go nowhere, the report is printed.
    let metrics = vigil_api::maintenance::MaintenanceMetrics::default();
    let Some(report) =
        vigil_api::maintenance::pass(&pool, &args.policy, index.as_ref(), Utc::now(), opts, &metrics).await?
    else {
        anyhow::bail!("another maintenance pass is running on this database (a Vigil server's loop?); try again later");
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}policy: {}", if report.dry_run { "DRY RUN (nothing changed): " } else { "" }, report.policy);
        println!(
            "{:<34} {:<16} {:<26} {:>12} {:>7} {:>9} {:>8}",
            "target", "action", "cutoff", "rows", "chunks", "related", "ms"
        );
        for s in &report.steps {
            let action =
                serde_json::to_value(s.action).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let cutoff = s.cutoff.map(|c| c.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
            println!(
                "{:<34} {:<16} {:<26} {:>12} {:>7} {:>9} {:>8}{}",
                s.target,
                action,
                cutoff,
                s.rows,
                s.chunks,
                s.related,
                s.took_ms,
                s.error.as_ref().map(|e| format!("  ERROR: {e}")).unwrap_or_default()
            );
        }
        println!("related: vectors deleted with events; rollup rows written for rollups");
    }
    if !report.ok() {
        anyhow::bail!("some steps failed (see ERROR above); the others completed");
    }
    Ok(())
}
