use std::sync::Arc;

use anyhow::Context;
use vigil_api::config::parse_policy;
use vigil_ingest::decode::Oldest;
use vigil_ingest::metrics::Metrics;
use vigil_ingest::nats::{run, NatsConfig};
use vigil_ingest::shutdown::Shutdown;
use vigil_store::retention::RetentionPolicy;
use vigil_store::{connect, migrate, MigrateOptions};

use super::shutdown_signal;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Events per batch in the telemetry lane.
    #[arg(long, default_value_t = 10_000)]
    bulk_batch: usize,
    /// Longest wait before a telemetry batch is written, in ms.
    #[arg(long, default_value_t = 250)]
    bulk_flush_ms: u64,
    /// Longest wait before an alert/auth batch is written, in ms.
    #[arg(long, default_value_t = 10)]
    fast_flush_ms: u64,
    #[command(flatten)]
    nats: vigil_api::config::NatsArgs,
    /// Durable consumer name prefix (processes sharing it share the work).
    #[arg(long, default_value = "vigil-ingest")]
    durable_prefix: String,
    /// The retention policy the server runs with: events older than its
    /// longest event retention are dead-lettered (`too_old`).
    #[arg(long, env = "VIGIL_RETENTION", default_value = "", value_parser = parse_policy)]
    retention: Box<RetentionPolicy>,
}

/// Runs the JetStream → PostgreSQL pipeline until Ctrl-C.
pub async fn run_cmd(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 8)?;
    migrate(&pool, &MigrateOptions::default()).await.context("migrating the database")?;
    let mut cfg = NatsConfig::new(args.nats_url.clone());
    cfg.bulk.batch = args.bulk_batch.max(1);
    cfg.bulk.flush = std::time::Duration::from_millis(args.bulk_flush_ms);
    cfg.fast.flush = std::time::Duration::from_millis(args.fast_flush_ms);
    cfg.durable_prefix = args.durable_prefix.clone();
    cfg.security = args.nats.security();
    cfg.oldest = Oldest::longest_retention(args.retention.longest_event_keep());
    let metrics = Arc::new(Metrics::new());
    let (trigger, shutdown) = Shutdown::new();
    let pipeline = tokio::spawn(run(cfg, pool, metrics.clone(), shutdown));
    eprintln!("ingesting from {} (Ctrl-C to stop)", vigil_control::redact_url(&args.nats_url));
    tokio::select! {
        _ = shutdown_signal() => {}
        r = pipeline => {
            r??;
            return Ok(());
        }
    }
    trigger.trigger();
    let (received, written, duplicates) = metrics.totals();
    eprintln!(
        "stopped: {received} received, {written} written, {duplicates} duplicate, {} dead-lettered",
        metrics.dead_lettered_total()
    );
    Ok(())
}
