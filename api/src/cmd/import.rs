use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use vigil_api::config::parse_policy;
use vigil_ingest::decode::Oldest;
use vigil_ingest::import::{import_with, ImportSummary};
use vigil_ingest::Format;
use vigil_store::retention::RetentionPolicy;
use vigil_store::{connect, migrate, EventWriter, MigrateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to import; the format of each is detected from its first line.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Events per write batch (one transaction each).
    #[arg(long, default_value_t = 5_000)]
    batch_size: usize,
    /// Import history older than the longest retention: events from this
    /// time on (`2019-01-01`, RFC 3339, or back from now like `400d`), or
    /// `any`. Without it, older events are refused (`too_old`).
    #[arg(long, value_parser = parse_oldest)]
    oldest: Option<Since>,
    /// The retention policy the server runs with; its longest event
    /// retention is the oldest an import accepts without `--oldest`.
    #[arg(long, env = "VIGIL_RETENTION", default_value = "", value_parser = parse_policy)]
    retention: Box<RetentionPolicy>,
}

/// `--oldest`: a time, or no bound.
#[derive(Debug, Clone, Copy)]
enum Since {
    Any,
    Time(DateTime<Utc>),
}

fn parse_oldest(v: &str) -> Result<Since, String> {
    let now = Utc::now();
    if v.trim().eq_ignore_ascii_case("any") {
        return Ok(Since::Any);
    }
    if let Some(t) = vigil_srql::time::parse_instant(v, now) {
        return Ok(Since::Time(t));
    }
    match vigil_srql::time::parse_duration(v) {
        Some(d) if d > chrono::TimeDelta::zero() => Ok(Since::Time(now - d)),
        _ => Err(format!("{v:?} is not a time (2019-01-01, RFC 3339), a duration back from now (400d) or `any`")),
    }
}

impl Args {
    /// The oldest event accepted, and a warning when that is older than the
    /// retention keeps.
    fn oldest(&self) -> (Oldest, Option<String>) {
        let keep = self.retention.longest_event_keep();
        let since = match self.oldest {
            None => return (Oldest::longest_retention(keep), None),
            Some(Since::Any) => None,
            Some(Since::Time(t)) => Some(t),
        };
        let oldest = since.map_or(Oldest::Any, Oldest::Since);
        let warning = keep.filter(|k| since.is_none_or(|t| t < Utc::now() - *k)).map(|k| {
            format!(
                "note: the retention pass deletes each kind's events older than its retention (the longest is {} \
                 days, VIGIL_RETENTION); raise the retention of the kinds you import (e.g. \
                 VIGIL_RETENTION=events=off) to keep this history",
                k.num_days()
            )
        });
        (oldest, warning)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 4)?;
    migrate(&pool, &MigrateOptions::default()).await.context("migrating the database")?;
    let writer = EventWriter::new(pool);
    let (oldest, warning) = args.oldest();
    if let Some(w) = warning {
        eprintln!("{w}");
    }
    let tty = std::io::stderr().is_terminal();
    let mut failed_files = 0;
    for path in &args.files {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let name = path.display().to_string();
        let progress = |s: &ImportSummary| {
            if tty {
                let done = if size == 0 { 1.0 } else { (s.bytes as f64 / size as f64).min(1.0) };
                let filled = (done * 30.0).round() as usize;
                eprint!(
                    "\r[{}{}] {:>3.0}% {name}: {} stored, {} duplicate, {} rejected",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    done * 100.0,
                    s.stored,
                    s.duplicates,
                    s.rejected
                );
                let _ = std::io::stderr().flush();
            }
        };
        let input = BufReader::new(file);
        match import_with(input, None::<Format>, &writer, args.batch_size.max(1), &name, oldest, progress).await {
            Ok((format, s)) => {
                if tty {
                    eprintln!();
                }
                println!("{name} ({format}): {} stored, {} duplicate, {} rejected", s.stored, s.duplicates, s.rejected);
                for e in s.errors.iter().take(20) {
                    println!("  rejected {name}:{e}");
                }
                if s.rejected as usize > s.errors.len().min(20) {
                    println!("  … {} more rejected lines", s.rejected as usize - s.errors.len().min(20));
                }
            }
            Err(e) => {
                failed_files += 1;
                eprintln!("{name}: {e}");
            }
        }
    }
    if failed_files > 0 {
        anyhow::bail!("{failed_files} file(s) could not be imported");
    }
    Ok(())
}
