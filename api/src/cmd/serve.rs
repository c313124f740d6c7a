use anyhow::Context;
use vigil_api::config::ServerConfig;
use vigil_api::start::{Server, Services};
use vigil_store::{connect, migrate, MigrateOptions};

use super::shutdown_signal;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Ingest from this NATS server in-process (off when unset).
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    #[command(flatten)]
    server: ServerConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = &args.server;
    let pool = connect(&args.database_url, 16)?;
    let report =
        migrate(&pool, &MigrateOptions { timescaledb: cfg.timescaledb }).await.context("migrating the database")?;
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("listening on {}", cfg.listen))?;
    let services = Services {
        pool,
        database_url: args.database_url.clone(),
        storage_mode: report.mode,
        nats_url: args.nats_url,
        nats_security: cfg.nats.security(),
    };
    let server = Server::start(cfg, services, listener).await?;
    println!("Vigil is serving on http://{}", server.local_addr()?);
    server.serve(shutdown_signal()).await
}
