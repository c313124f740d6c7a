use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use vigil_ingest::import::{import, ImportSummary};
use vigil_ingest::Format;
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
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 4)?;
    migrate(&pool, &MigrateOptions::default()).await.context("migrating the database")?;
    let writer = EventWriter::new(pool);
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
        match import(BufReader::new(file), None::<Format>, &writer, args.batch_size.max(1), &name, progress).await {
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
