//! Background workers that derive search structures from PostgreSQL (the
//! system of record): event vectors for `SIMILAR_TO` and `| cluster`, and the
//! BM25 index for free text, and the connection graph (edges, packages,
//! running processes, vulnerabilities, and the in-memory graph). Each keeps a durable watermark, so a restart
//! catches up where it stopped.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use vigil_embed::{CachedEmbedder, EmbedConfig, Embedder, Selection};
use vigil_fulltext::TextIndex;
use vigil_graph::live::LiveGraph;
use vigil_graph::sync::{GraphSync, SyncCounters};
use vigil_ingest::shutdown::Shutdown;
use vigil_search::{VectorizeStats, Vectorizer};
use vigil_store::Pool;

use crate::config::ServerConfig;

/// What started: the embedder (shared with searches) and the worker's counters.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub embedder: Option<Arc<CachedEmbedder>>,
    pub vectorize: Option<Arc<VectorizeStats>>,
    pub text_index: Option<Arc<TextIndex>>,
    /// The in-memory connection graph (blast radius, paths).
    pub graph: Option<Arc<LiveGraph>>,
    /// Counters of the worker that folds events into edges, packages and vulnerabilities.
    pub graph_sync: Option<Arc<SyncCounters>>,
}

impl Derived {
    /// The workers' counters in Prometheus text.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        if let Some(v) = &self.vectorize {
            out.push_str(&v.render());
        }
        if let Some(t) = &self.text_index {
            let s = t.stats();
            out.push_str(&format!(
                "# TYPE vigil_bm25_docs_indexed_total counter\nvigil_bm25_docs_indexed_total {}\n\
                 # TYPE vigil_bm25_errors_total counter\nvigil_bm25_errors_total {}\n\
                 # TYPE vigil_bm25_docs gauge\nvigil_bm25_docs {}\n",
                s.docs_indexed.load(Ordering::Relaxed),
                s.errors.load(Ordering::Relaxed),
                t.num_docs()
            ));
        }
        if let Some(c) = &self.graph_sync {
            out.push_str(&c.render_prometheus());
        }
        if let Some(g) = &self.graph {
            out.push_str(&g.render_metrics());
        }
        out
    }
}

/// Starts the graph worker (events → edges, packages, running processes,
/// vulnerabilities) and the in-memory graph's refresher.
fn start_graph(pool: &Pool, window: chrono::TimeDelta, stop: Shutdown) -> (Arc<LiveGraph>, Arc<SyncCounters>) {
    let sync = GraphSync::new();
    let counters = sync.counters();
    let (p, s) = (pool.clone(), stop.clone());
    tokio::spawn(async move { sync.run(p, async move { s.wait().await }).await });
    let graph = Arc::new(LiveGraph::new(window));
    let (g, p) = (graph.clone(), pool.clone());
    tokio::spawn(async move { g.run(p, Duration::from_secs(2), async move { stop.wait().await }).await });
    println!("Connection graph: connections of the last {} days (graph worker running)", window.num_days());
    (graph, counters)
}

/// Opens the BM25 index in `dir` and starts its indexer; without it, free
/// text falls back to an ILIKE scan and the reason is printed.
fn start_text_index(pool: &Pool, dir: &Path, stop: Shutdown) -> Option<Arc<TextIndex>> {
    let index = match TextIndex::open(dir) {
        Ok(i) => Arc::new(i),
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

/// Starts every worker, as `cfg` says.
pub fn start(pool: &Pool, cfg: &ServerConfig, stop: Shutdown) -> Derived {
    let mut d = start_vectorizer(pool, &cfg.model.embed_config(), cfg.embed_selection.clone(), stop.clone());
    d.text_index = start_text_index(pool, &cfg.dirs.bm25(), stop.clone());
    let (graph, counters) = start_graph(pool, cfg.graph.window(), stop);
    d.graph = Some(graph);
    d.graph_sync = Some(counters);
    d
}

/// Loads the embedding model and starts the embedding worker; without the
/// model files, semantic search is off and the reason is printed.
fn start_vectorizer(pool: &Pool, model: &EmbedConfig, selection: Selection, stop: Shutdown) -> Derived {
    let model = match Embedder::load(model) {
        Ok(m) => m,
        Err(e) => {
            println!("Semantic search: off ({e})");
            return Derived::default();
        }
    };
    let embedder = Arc::new(CachedEmbedder::new(model, 100_000));
    println!("Semantic search: {} (embedding worker running)", embedder.model_id());
    let worker = Arc::new(Vectorizer::new(embedder.clone(), selection));
    let stats = worker.stats.clone();
    let pool = pool.clone();
    tokio::spawn(async move { worker.run(pool, Duration::from_secs(2), async move { stop.wait().await }).await });
    Derived { embedder: Some(embedder), vectorize: Some(stats), ..Default::default() }
}
