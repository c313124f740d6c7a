use anyhow::Context;
use vigil_store::{connect, migrate, MigrateOptions};

use super::Timescale;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, value_enum, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    timescaledb: Timescale,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 2)?;
    let report = migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb.into() })
        .await
        .context("migrating the database")?;
    println!(
        "storage mode: {}; applied {} migration(s){}; {} already in place",
        report.mode,
        report.applied.len(),
        if report.applied.is_empty() { String::new() } else { format!(" ({})", report.applied.join(", ")) },
        report.already_applied
    );
    Ok(())
}
