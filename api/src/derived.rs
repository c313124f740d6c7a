//! Background workers that derive search structures from PostgreSQL (the
//! system of record): event vectors for `SIMILAR_TO` and `| cluster`, and the
//! BM25 index for free text, and the connection graph (edges, packages,
//! running processes, vulnerabilities, and the in-memory graph). Each keeps a durable watermark, so a restart
//! catches up where it stopped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use vigil_embed::{CachedEmbedder, EmbedConfig, Embedder, Selection};
use vigil_fulltext::{IndexerStats, TextIndex};
use vigil_graph::live::{LiveGraph, LiveStats};
use vigil_graph::sync::{GraphSync, SyncCounters};
use vigil_ingest::shutdown::Shutdown;
use vigil_search::{VectorizeStats, Vectorizer};
use vigil_store::Pool;

use crate::config::ServerConfig;

/// What started: the embedder (shared with searches), the BM25 index and the
/// in-memory graph. Their workers count in the registry handed to [`start`].
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub embedder: Option<Arc<CachedEmbedder>>,
    pub text_index: Option<Arc<TextIndex>>,
    /// The in-memory connection graph (blast radius, paths).
    pub graph: Option<Arc<LiveGraph>>,
}

/// Starts the graph worker (events → edges, packages, running processes,
/// vulnerabilities) and the in-memory graph's refresher.
fn start_graph(pool: &Pool, window: chrono::TimeDelta, stop: Shutdown, registry: &mut Registry) -> Arc<LiveGraph> {
    let sync = GraphSync::new().with_counters(SyncCounters::register(registry));
    let (p, s) = (pool.clone(), stop.clone());
    tokio::spawn(async move { sync.run(p, async move { s.wait().await }).await });
    let graph = Arc::new(LiveGraph::new(window).with_stats(LiveStats::register(registry)));
    let (g, p) = (graph.clone(), pool.clone());
    tokio::spawn(async move { g.run(p, Duration::from_secs(2), async move { stop.wait().await }).await });
    println!("Connection graph: connections of the last {} days (graph worker running)", window.num_days());
    graph
}

/// Opens the BM25 index in `dir` and starts its indexer; without it, free
/// text falls back to an ILIKE scan and the reason is printed.
fn start_text_index(pool: &Pool, dir: &Path, stop: Shutdown, registry: &mut Registry) -> Option<Arc<TextIndex>> {
    let index = match TextIndex::open(dir) {
        Ok(i) => Arc::new(i.with_stats(IndexerStats::register(registry))),
        Err(e) => {
            println!("Free-text index: off ({e}); free text falls back to a scan");
            return None;
        }
    };
    println!("Free-text index: {} (BM25, indexer running)", dir.display());
    let (worker, pool) = (index.clone(), pool.clone());
    tokio::spawn(async move {
        vigil_fulltext::run_indexer(worker, pool, Duration::from_secs(2), async move { stop.wait().await }).await
    });
    Some(index)
}

/// Starts every worker, as `cfg` says; each registers its counters in `registry`.
pub fn start(pool: &Pool, cfg: &ServerConfig, stop: Shutdown, registry: &mut Registry) -> Derived {
    let embed = cfg.model.embed_config();
    let mut d = start_vectorizer(pool, &embed, cfg.embed_selection.clone(), stop.clone(), registry);
    d.text_index = start_text_index(pool, &cfg.dirs.bm25(), stop.clone(), registry);
    d.graph = Some(start_graph(pool, cfg.graph.window(), stop, registry));
    d
}

/// Loads the embedding model and starts the embedding worker; without the
/// model files, semantic search is off and the reason is printed.
fn start_vectorizer(
    pool: &Pool,
    model: &EmbedConfig,
    selection: Selection,
    stop: Shutdown,
    registry: &mut Registry,
) -> Derived {
    let model = match Embedder::load(model) {
        Ok(m) => m,
        Err(e) => {
            println!("Semantic search: off ({e})");
            return Derived::default();
        }
    };
    let embedder = Arc::new(CachedEmbedder::new(model, 100_000));
    println!("Semantic search: {} (embedding worker running)", embedder.model_id());
    let worker = Arc::new(Vectorizer::new(embedder.clone(), selection).with_stats(VectorizeStats::register(registry)));
    let pool = pool.clone();
    tokio::spawn(async move { worker.run(pool, Duration::from_secs(2), async move { stop.wait().await }).await });
    Derived { embedder: Some(embedder), ..Default::default() }
}
