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

/// What started: the embedder (shared with searches), the BM25 index and the
/// in-memory graph. Their workers count in the registry handed to [`start`].
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub embedder: Option<Arc<CachedEmbedder>>,
    pub text_index: Option<Arc<TextIndex>>,
    /// The in-memory connection graph (blast radius, paths).
    pub graph: Option<Arc<LiveGraph>>,
}

/// How far back the in-memory graph reaches unless `VIGIL_GRAPH_WINDOW_DAYS` says otherwise.
pub const GRAPH_WINDOW_DAYS: i64 = 7;

/// The in-memory graph's window: connections last seen within this many days
/// (`VIGIL_GRAPH_WINDOW_DAYS`, default 7; raise it to explore old captures).
pub fn graph_window() -> chrono::TimeDelta {
    let days = match std::env::var("VIGIL_GRAPH_WINDOW_DAYS") {
        Ok(v) => {
            match v.trim().parse::<i64>() {
                Ok(d) if (1..=36_500).contains(&d) => d,
                _ => {
                    eprintln!("VIGIL_GRAPH_WINDOW_DAYS={v:?} is not a number of days from 1 to 36500; using {GRAPH_WINDOW_DAYS}");
                    GRAPH_WINDOW_DAYS
                }
            }
        }
        Err(_) => GRAPH_WINDOW_DAYS,
    };
    chrono::TimeDelta::days(days)
}

/// Starts the graph worker (events → edges, packages, running processes,
/// vulnerabilities) and the in-memory graph's refresher.
fn start_graph(pool: &Pool, stop: Shutdown, registry: &mut Registry) -> Arc<LiveGraph> {
    let sync = GraphSync::new().with_counters(SyncCounters::register(registry));
    let (p, s) = (pool.clone(), stop.clone());
    tokio::spawn(async move { sync.run(p, async move { s.wait().await }).await });
    let window = graph_window();
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

/// Starts the workers; each registers its counters in `registry`.
pub fn start(pool: &Pool, selection: Selection, index_dir: &Path, stop: Shutdown, registry: &mut Registry) -> Derived {
    let mut d = start_vectorizer(pool, selection, stop.clone(), registry);
    d.text_index = start_text_index(pool, index_dir, stop.clone(), registry);
    d.graph = Some(start_graph(pool, stop, registry));
    d
}

/// Loads the embedding model and starts the embedding worker; without the
/// model files, semantic search is off and the reason is printed.
fn start_vectorizer(pool: &Pool, selection: Selection, stop: Shutdown, registry: &mut Registry) -> Derived {
    let model = match Embedder::load(&EmbedConfig::from_env()) {
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

/// Parses `--embed-selection` (`VIGIL_EMBED_SELECT`); empty means the default rules.
pub fn parse_selection(spec: &str) -> Result<Selection, String> {
    if spec.trim().is_empty() {
        return Ok(Selection::default());
    }
    Selection::parse(spec).map_err(|e| e.to_string())
}
