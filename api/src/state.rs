//! What every handler can reach: the pools, the executor, the background
//! workers' handles and the configuration the server started with.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use vigil_ingest::decode::Oldest;
use vigil_ingest::metrics::Metrics;
use vigil_sigma::Mapping;
use vigil_store::{EventWriter, Pool, StorageMode};

use crate::config::ServerConfig;
use crate::derived::Derived;
use crate::rate::{FailureLimiter, RateLimiter};
use crate::tail_limit::TailSlots;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: Pool,
    pub storage_mode: StorageMode,
    pub started: Arc<std::time::Instant>,
    pub ingest_metrics: Arc<Metrics>,
    /// Every stage's metrics, encoded by `/metrics` ([`crate::metrics_registry`]).
    pub metrics: Arc<Registry>,
    pub writer: Arc<EventWriter>,
    pub derived: Derived,
    /// For commands to agents (request/reply); `None` without NATS.
    pub nats: Option<AgentLink>,
    /// Requests per token.
    pub rate: Arc<RateLimiter>,
    /// Failed token checks per client address.
    pub auth_failures: Arc<FailureLimiter>,
    /// Live tails open per token.
    pub tails: Arc<TailSlots>,
    /// The oldest event ingest accepts: the longest retention.
    pub ingest_oldest: Oldest,
    /// Runs SRQL for searches, on its own small pool so that slow queries
    /// cannot take the connections ingest needs.
    pub searcher: vigil_search::Searcher,
    /// How hunts run (settle time, delivery), for runs on demand and imports.
    pub hunt_settings: Arc<vigil_hunts::Settings>,
    /// The Sigma mapping imports convert with, read at start.
    pub sigma_mapping: Arc<Mapping>,
    /// The UI build served at `/` (`crate::web`); `None` serves a landing page.
    pub web_dir: Option<std::path::PathBuf>,
}

/// What the server runs on, made before the state.
#[derive(Debug)]
pub struct Backing {
    pub pool: Pool,
    /// Searches' own connections.
    pub query_pool: Pool,
    pub storage_mode: StorageMode,
    pub ingest_metrics: Arc<Metrics>,
    /// The registry every stage registered in.
    pub metrics: Registry,
    pub derived: Derived,
    pub nats: Option<AgentLink>,
}

/// How the server commands agents: its NATS connection and the key its orders are signed with.
#[derive(Debug, Clone)]
pub struct AgentLink {
    pub client: async_nats::Client,
    pub signer: Arc<vigil_control::CommandSigner>,
}

impl AppState {
    /// The state for `cfg`; fails when a file it names (the Sigma mapping) is bad.
    pub fn new(cfg: &ServerConfig, b: Backing) -> anyhow::Result<Self> {
        let mut searcher =
            vigil_search::Searcher::new(b.query_pool, b.derived.embedder.clone(), cfg.query.search_options());
        if let Some(t) = &b.derived.text_index {
            searcher = searcher.with_text_index(t.clone());
        }
        if let Some(g) = &b.derived.graph {
            searcher = searcher.with_graph(g.clone());
        }
        Ok(AppState {
            writer: Arc::new(EventWriter::new(b.pool.clone())),
            pool: b.pool,
            storage_mode: b.storage_mode,
            started: Arc::new(std::time::Instant::now()),
            ingest_metrics: b.ingest_metrics,
            metrics: Arc::new(b.metrics),
            derived: b.derived,
            nats: b.nats,
            rate: Arc::new(RateLimiter::new(cfg.rate_limit)),
            auth_failures: Arc::new(RateLimiter::new(cfg.auth_failure_limit)),
            tails: Arc::new(TailSlots::new(cfg.max_tails_per_token)),
            ingest_oldest: Oldest::longest_retention(cfg.maintenance.retention.longest_event_keep()),
            searcher,
            hunt_settings: Arc::new(cfg.hunts.settings()),
            sigma_mapping: cfg.load_sigma_mapping()?,
            web_dir: crate::web::locate(cfg.web_dir.as_deref()),
        })
    }
}
