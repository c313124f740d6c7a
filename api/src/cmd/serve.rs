use std::net::SocketAddr;

use anyhow::Context;
use vigil_store::{connect, migrate, MigrateOptions};

use super::{shutdown_signal, Timescale};
use vigil_api::AppState;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Address the HTTP server listens on.
    #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, value_enum, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    timescaledb: Timescale,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 16)?;
    let report = migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb.into() })
        .await
        .context("migrating the database")?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    println!("Vigil is serving on http://{}", listener.local_addr()?);
    vigil_api::serve(listener, AppState::new(pool, report.mode), shutdown_signal()).await?;
    Ok(())
}
