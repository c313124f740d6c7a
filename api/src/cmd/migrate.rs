use anyhow::Context;
use vigil_store::{connect, migrate, MigrateOptions};

use vigil_store::TimescaleChoice;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    timescaledb: TimescaleChoice,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 2)?;
    let report =
        migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb }).await.context("migrating the database")?;
    println!(
        "storage mode: {}; applied {} migration(s){}; {} already in place",
        report.mode,
        report.applied.len(),
        if report.applied.is_empty() { String::new() } else { format!(" ({})", report.applied.join(", ")) },
        report.already_applied
    );
    Ok(())
}
