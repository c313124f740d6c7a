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
    /// Ingest from this NATS server in-process (off when unset).
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// Which events get a vector for SIMILAR_TO, e.g.
    /// "kinds=alert,auth,process;min_severity=medium;auth_failures=true".
    #[arg(long, env = "VIGIL_EMBED_SELECT", default_value = "", value_parser = vigil_api::derived::parse_selection)]
    embed_selection: vigil_embed::Selection,
    /// The BM25 index directory [default: <data dir>/bm25].
    #[arg(long, env = "VIGIL_INDEX_DIR")]
    index_dir: Option<std::path::PathBuf>,
    /// Database connections for searches, apart from ingest's.
    #[arg(long, env = "VIGIL_QUERY_CONNECTIONS", default_value_t = 4)]
    query_connections: usize,
    /// Where the BM25 index lives unless --index-dir says otherwise.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = ".vigil")]
    data_dir: std::path::PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = connect(&args.database_url, 16)?;
    let report = migrate(&pool, &MigrateOptions { timescaledb: args.timescaledb.into() })
        .await
        .context("migrating the database")?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let mut registry = vigil_api::metrics_registry();
    let metrics = std::sync::Arc::new(vigil_ingest::metrics::Metrics::register(&mut registry));
    let (trigger, stop) = vigil_ingest::shutdown::Shutdown::new();
    let derived = vigil_api::derived::start(
        &pool,
        args.embed_selection.clone(),
        &super::reindex::index_dir(args.index_dir.as_deref(), &args.data_dir),
        stop.clone(),
        &mut registry,
    );
    // Retention and metric rollups (docs/retention.md).
    vigil_api::maintenance::start(&pool, derived.text_index.clone(), stop.clone(), &mut registry)?;
    let hunts_stop = stop.clone();
    vigil_hunts::scheduler::spawn(pool.clone(), async move { hunts_stop.wait().await });
    if let Some(url) = &args.nats_url {
        let cfg = vigil_ingest::nats::NatsConfig::new(url.clone());
        let (pool, metrics) = (pool.clone(), metrics.clone());
        tokio::spawn(async move {
            if let Err(e) = vigil_ingest::nats::run(cfg, pool, metrics, stop).await {
                tracing::error!("ingest pipeline stopped: {e}");
            }
        });
        println!("Ingesting from {url}");
    }
    // Searches get their own connections: a runaway query cannot take the ones ingest needs.
    let query_pool = connect(&args.database_url, args.query_connections)?;
    let mut state =
        AppState::new(pool, report.mode, metrics, registry).with_derived(derived).with_query_pool(query_pool);
    if let Some(url) = &args.nats_url {
        // Commands to agents go over NATS request/reply.
        state = state.with_nats(vigil_ingest::nats::connect(url).await?);
    }
    println!("Vigil is serving on http://{}", listener.local_addr()?);
    vigil_api::serve(listener, state, shutdown_signal()).await?;
    trigger.trigger();
    Ok(())
}
