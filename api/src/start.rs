//! Starting the server: the one path `vigil serve` and `vigil up` share once
//! the database is migrated. It starts the background workers (derived
//! indexes, retention, the hunt scheduler, ingest from NATS), builds the
//! state, serves, and on shutdown stops the workers and waits for ingest to
//! finish its batch.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vigil_ingest::shutdown::{Shutdown, Trigger};
use vigil_store::{connect, Pool, StorageMode};

use crate::config::ServerConfig;
use crate::state::Backing;
use crate::AppState;

/// The server's one metrics registry (prefix `vigil`), with the stages that
/// count per process (hunts, audit) already in it; the workers [`Server::start`]
/// starts register theirs.
pub fn metrics_registry() -> Registry {
    let mut registry = Registry::with_prefix("vigil");
    vigil_hunts::metrics::register(&mut registry);
    crate::audit::register(&mut registry);
    registry
}

/// The migrated database and the NATS server to run on.
#[derive(Debug)]
pub struct Services {
    pub pool: Pool,
    /// For the searches' own pool.
    pub database_url: String,
    pub storage_mode: StorageMode,
    /// Ingest from (and command agents over) this NATS server; `None`: off.
    pub nats_url: Option<String>,
    /// Credentials and TLS for it.
    pub nats_security: vigil_control::NatsSecurity,
}

/// A started server, not yet serving.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    listener: TcpListener,
    trigger: Trigger,
    stop: Shutdown,
    pipeline: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts the background workers and builds the state.
    pub async fn start(cfg: &ServerConfig, services: Services, listener: TcpListener) -> anyhow::Result<Server> {
        let Services { pool, database_url, storage_mode, nats_url, nats_security } = services;
        let mut registry = metrics_registry();
        let metrics = Arc::new(vigil_ingest::metrics::Metrics::register(&mut registry));
        let (trigger, stop) = Shutdown::new();
        let derived = crate::derived::start(&pool, cfg, stop.clone(), &mut registry);
        // Retention and metric rollups (docs/retention.md).
        crate::maintenance::start(
            &pool,
            cfg.maintenance.loop_config(),
            derived.text_index.clone(),
            stop.clone(),
            &mut registry,
        );
        let hunts_stop = stop.clone();
        vigil_hunts::scheduler::spawn(pool.clone(), cfg.hunts.settings(), async move { hunts_stop.wait().await });
        let (pipeline, nats) = match &nats_url {
            Some(url) => {
                let shown = vigil_control::redact_url(url);
                println!("Ingest: subjects vigil.events.> on {shown}");
                // Commands to agents go over NATS request/reply, signed with the command key.
                let client = vigil_ingest::nats::connect(url, &nats_security).await?;
                let signer = vigil_control::CommandSigner::load_or_create(&cfg.command_key_file())
                    .context("loading the agent command key")?;
                let oldest = cfg.maintenance.retention.longest_event_keep();
                let pipeline = spawn_ingest(url, &nats_security, oldest, &pool, &metrics, stop.clone());
                (Some(pipeline), Some(crate::state::AgentLink { client, signer: Arc::new(signer) }))
            }
            None => (None, None),
        };
        // Searches get their own connections: a runaway query cannot take the ones ingest needs.
        let query_pool = connect(&database_url, usize::from(cfg.query_connections))?;
        let backing =
            Backing { pool, query_pool, storage_mode, ingest_metrics: metrics, metrics: registry, derived, nats };
        let state = AppState::new(cfg, backing).context("configuring the server")?;
        Ok(Server { state, listener, trigger, stop, pipeline })
    }

    /// Resolves when the server stops: for work that should end with it.
    pub fn stopping(&self) -> Shutdown {
        self.stop.clone()
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops the workers and waits for
    /// ingest to finish its batch.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let served = crate::serve(self.listener, self.state, shutdown).await;
        self.trigger.trigger();
        if let Some(p) = self.pipeline {
            let _ = p.await;
        }
        Ok(served?)
    }
}

/// Ingest from NATS; events older than the longest retention (`oldest`) are refused.
fn spawn_ingest(
    url: &str,
    security: &vigil_control::NatsSecurity,
    oldest: Option<chrono::TimeDelta>,
    pool: &Pool,
    metrics: &Arc<vigil_ingest::metrics::Metrics>,
    stop: Shutdown,
) -> JoinHandle<()> {
    let mut cfg = vigil_ingest::nats::NatsConfig::new(url.to_string());
    cfg.security = security.clone();
    cfg.oldest = vigil_ingest::decode::Oldest::longest_retention(oldest);
    let (pool, metrics) = (pool.clone(), metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = vigil_ingest::nats::run(cfg, pool, metrics, stop).await {
            tracing::error!("ingest pipeline stopped: {e}");
        }
    })
}
