//! Runs SRQL: compile, supply what the planner cannot know (the query
//! text's embedding, the model id, the path), execute read-only, post-process.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigil_embed::CachedEmbedder;
use vigil_fulltext::{TextIndex, TextQuery};
use vigil_graph::live::LiveGraph;
use vigil_graph::{BlastQuery, Direction, GraphError, Reached, Start};
use vigil_srql::{
    compile, BlastRadius, Cluster, Column, Compiled, Config, GraphDirection, PostStage, Similarity, SimilarityPath,
    Visualization,
};
use vigil_store::{vectors, Pool, StoreError};

use crate::cluster::{cluster, TextRow};
use crate::execute::{self, Bindings, QueryOptions, SimilarHits};
use crate::SearchError;

/// Limits and thresholds of the executor.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub srql: Config,
    pub query: QueryOptions,
    /// Above this many estimated candidate events, `SIMILAR_TO` uses the HNSW
    /// index; at or below, an exact scan of the candidates' vectors is both
    /// exact and fast.
    pub exact_max_candidates: f64,
    /// How many events of the nearest texts the HNSW path may check against
    /// the left side before it gives up (the exact path then finishes the job).
    pub hnsw_max_scan_tuples: u64,
    /// The HNSW walk skips a text when none of its newest this-many events
    /// in the window pass the filter (it does not page deeper into that
    /// text): the walk stays fast when the nearest texts belong to events
    /// the filter rejects, at a small, measured cost to recall. 0 pages
    /// through every event of every text.
    pub skip_text_after: i64,
    /// Most BM25 hits a free text contributes (best first); more matches make
    /// the result partial, and say so.
    pub text_max_hits: usize,
    /// When a plain query fills its limit, count what it matches up to this
    /// many rows (0: do not count). Like a search engine's "10,000+ hits",
    /// the count stops there so a broad query does not pay for a full scan.
    pub count_cap: u64,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            srql: Config::default(),
            query: QueryOptions::default(),
            exact_max_candidates: 5_000.0,
            hnsw_max_scan_tuples: 50_000,
            skip_text_after: 1_024,
            text_max_hits: 10_000,
            count_cap: 0,
        }
    }
}

/// Rows and how they were found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub took_ms: u64,
    /// The planner's steps and the executor's choices, for `explain`.
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    /// Whether fewer rows may have come back than exist (a search stopped at a limit).
    pub partial: bool,
    pub visualization: Visualization,
    /// The SQL that produced the rows.
    pub sql: String,
    /// How many rows the query matches: exact when `total_exact`, otherwise
    /// at least this many (the count stopped at [`SearchOptions::count_cap`]
    /// or was not taken).
    pub total: u64,
    pub total_exact: bool,
}

/// A query's plan without its rows.
#[derive(Debug, Clone)]
pub struct Explained {
    pub compiled: Compiled,
    /// The planner's steps and the executor's path choice.
    pub plan: Vec<String>,
}

/// The executor, shared by the API, the CLI and scheduled hunts.
#[derive(Debug, Clone)]
pub struct Searcher {
    pool: Pool,
    embedder: Option<Arc<CachedEmbedder>>,
    text_index: Option<Arc<TextIndex>>,
    graph: Option<Arc<LiveGraph>>,
    opts: SearchOptions,
}

impl Searcher {
    pub fn new(pool: Pool, embedder: Option<Arc<CachedEmbedder>>, opts: SearchOptions) -> Self {
        Searcher { pool, embedder, text_index: None, graph: None, opts }
    }

    /// Free text then runs in this BM25 index, ranked, instead of an ILIKE scan.
    pub fn with_text_index(mut self, index: Arc<TextIndex>) -> Self {
        self.text_index = Some(index);
        self
    }

    /// `| blast_radius` then walks this connection graph.
    pub fn with_graph(mut self, graph: Arc<LiveGraph>) -> Self {
        self.graph = Some(graph);
        self
    }

    /// A copy whose queries without `| head` return up to `n` rows (the
    /// planner still caps them at its row limit); for paging.
    pub fn with_default_limit(&self, n: u64) -> Searcher {
        let mut s = self.clone();
        s.opts.srql.default_limit = n.clamp(1, s.opts.srql.max_limit);
        s
    }

    /// A copy that only sees rows ingested in `(after, until]` (a scheduled
    /// hunt's run, a live tail's poll).
    pub fn with_ingested_window(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Searcher {
        let mut s = self.clone();
        s.opts.srql.ingested_window = Some((after, until));
        s
    }

    fn srql_config(&self) -> Config {
        Config { text_index: self.text_index.is_some(), ..self.opts.srql.clone() }
    }

    /// BM25 hits for every free text of the query, inside its window.
    async fn text_hits(&self, compiled: &Compiled, warnings: &mut Vec<String>) -> Result<Bindings, SearchError> {
        let mut b = Bindings::default();
        let Some(index) = &self.text_index else { return Ok(b) };
        for p in &compiled.params {
            let Some((text, phrase)) = p.text_search() else { continue };
            let key = (text.to_string(), phrase);
            if b.text_hits.contains_key(&key) {
                continue;
            }
            let q =
                TextQuery { text: text.to_string(), phrase, window: compiled.window, limit: self.opts.text_max_hits };
            let index = index.clone();
            let found = tokio::task::spawn_blocking(move || index.search(&q))
                .await
                .map_err(|e| SearchError::Task(e.to_string()))??;
            if found.total as usize > found.hits.len() {
                warnings.push(format!(
                    "partial result: {:?} matches {} events; the best {} by BM25 were searched",
                    text,
                    found.total,
                    found.hits.len()
                ));
            }
            b.text_hits.insert(
                key,
                SimilarHits {
                    ids: found.hits.iter().map(|h| h.event_id).collect(),
                    times: found.hits.iter().map(|h| h.time).collect(),
                    scores: found.hits.iter().map(|h| f64::from(h.score)).collect(),
                },
            );
        }
        Ok(b)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The planner's configuration with what only the database knows: the
    /// metric rollup boundary, so a `kind:metric | timechart` over rolled-up
    /// time reads the hourly rollups (docs/retention.md).
    async fn query_config(&self) -> Result<Config, SearchError> {
        let mut cfg = self.srql_config();
        if cfg.rollup_before.is_none() {
            cfg.rollup_before = vigil_store::retention::rollup_boundary(&self.pool).await?;
        }
        Ok(cfg)
    }

    pub fn options(&self) -> &SearchOptions {
        &self.opts
    }

    /// What `text` would do as of `now`: the compiled query and the plan,
    /// with the `SIMILAR_TO` path and the estimate behind it. Only the
    /// planner's estimate runs, not the query.
    pub async fn explain(&self, text: &str, now: DateTime<Utc>) -> Result<Explained, SearchError> {
        let compiled = compile(text, &self.query_config().await?, now)?;
        let mut plan = compiled.plan.clone();
        if matches!(compiled.post, PostStage::Similar(_)) {
            let base = self.text_hits(&compiled, &mut Vec::new()).await?;
            let (_, reason) = self.choose_path(&compiled, &base).await?;
            plan.push(reason);
        }
        Ok(Explained { compiled, plan })
    }

    /// Runs `text` as of `now`.
    pub async fn search(&self, text: &str, now: DateTime<Utc>) -> Result<SearchResult, SearchError> {
        let started = Instant::now();
        let compiled = compile(text, &self.query_config().await?, now)?;
        let mut text_warnings = Vec::new();
        let base = self.text_hits(&compiled, &mut text_warnings).await?;
        let partial_text = !text_warnings.is_empty();
        let mut result = match compiled.post.clone() {
            PostStage::None => self.plain(compiled, base).await?,
            PostStage::Similar(sim) => self.similar(text, now, &sim, compiled, base).await?,
            PostStage::Cluster(spec) => self.cluster(&spec, compiled, base).await?,
            PostStage::BlastRadius(spec) => self.blast_radius(&spec, compiled, base).await?,
        };
        result.warnings.extend(text_warnings);
        result.partial |= partial_text;
        result.took_ms = started.elapsed().as_millis() as u64;
        Ok(result)
    }

    /// A query whose SQL rows are the result, with what it matches in all.
    async fn plain(&self, compiled: Compiled, base: Bindings) -> Result<SearchResult, SearchError> {
        let rows = execute::run_bound(&self.pool, &compiled, &base, &self.opts.query).await?;
        let (total, total_exact) = self.count(&compiled, &base, rows.rows.len()).await?;
        Ok(SearchResult {
            columns: rows.columns,
            rows: rows.rows,
            took_ms: 0,
            plan: compiled.plan,
            warnings: compiled.warnings,
            partial: false,
            visualization: compiled.visualization,
            sql: compiled.sql,
            total,
            total_exact,
        })
    }

    /// What a plain query matches, when its rows filled the limit (up to the
    /// count cap); fewer rows than the limit are already the whole answer.
    async fn count(&self, compiled: &Compiled, base: &Bindings, returned: usize) -> Result<(u64, bool), SearchError> {
        let returned = returned as u64;
        let cap = self.opts.count_cap;
        let Some(count_sql) = compiled.count_sql.as_deref().filter(|_| returned >= compiled.limit && cap > 0) else {
            return Ok((returned, returned < compiled.limit));
        };
        // The cap is configuration, never request input.
        let sql = format!("SELECT count(*) FROM ({count_sql} LIMIT {}) AS c", cap.saturating_add(1));
        let params = &compiled.params[..compiled.count_params.min(compiled.params.len())];
        let rows = execute::rows(&self.pool, &sql, params, base, &self.opts.query).await?;
        let n = rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64;
        Ok(if n > cap { (cap, false) } else { (n.max(returned), true) })
    }

    fn embedder(&self, what: &'static str) -> Result<&Arc<CachedEmbedder>, SearchError> {
        self.embedder.as_ref().ok_or(SearchError::NoEmbedder(what))
    }

    async fn embed_query(&self, text: &str) -> Result<String, SearchError> {
        let embedder = self.embedder("SIMILAR_TO")?.clone();
        let text = text.to_string();
        let v = tokio::task::spawn_blocking(move || embedder.embed(&[text.as_str()]))
            .await
            .map_err(|e| SearchError::Task(e.to_string()))??;
        let v = v.into_iter().next().ok_or_else(|| SearchError::Task("the model returned no vector".into()))?;
        Ok(vectors::vector_literal(&v))
    }

    async fn similar(
        &self,
        text: &str,
        now: DateTime<Utc>,
        sim: &Similarity,
        exact: Compiled,
        base: Bindings,
    ) -> Result<SearchResult, SearchError> {
        let model = self.embedder("SIMILAR_TO")?.model_id().to_string();
        let embedding = self.embed_query(&sim.text).await?;
        let (path, reason) = self.choose_path(&exact, &base).await?;
        let mut notes = vec![reason];
        let bindings = Bindings { embedding: Some(embedding.clone()), model: Some(model.clone()), ..base };
        let k = sim.neighbours;
        if path == SimilarityPath::Exact {
            let rows = execute::run_bound(&self.pool, &exact, &bindings, &self.opts.query).await?;
            return Ok(finish(exact, rows.rows, notes, false));
        }
        let cfg = Config { similarity_path: SimilarityPath::Indexed, ..self.srql_config() };
        let indexed = compile(text, &cfg, now)?;
        match self.walk_index(&exact, sim, &model, &embedding, &bindings).await? {
            Walk::Found(hits, skipped) => {
                notes.push(format!("the index walk found {} of {k} events", hits.ids.len()));
                if skipped > 0 {
                    notes.push(skipped_note(skipped, self.opts.skip_text_after));
                }
                let b = Bindings { similar: Some(hits), ..bindings.clone() };
                let rows = execute::run_bound(&self.pool, &indexed, &b, &self.opts.query).await?;
                Ok(finish(indexed, rows.rows, notes, false))
            }
            Walk::GaveUp(scanned, skipped) => {
                if skipped > 0 {
                    notes.push(skipped_note(skipped, self.opts.skip_text_after));
                }
                // The filter rejects most events of the nearest texts: an
                // exact scan finds them all, if it finishes in time.
                notes.push(format!(
                    "the index walk checked {scanned} events without finding {k}; exact scan of the candidates"
                ));
                match execute::run_bound(&self.pool, &exact, &bindings, &self.opts.query).await {
                    Ok(all) => Ok(finish(exact, all.rows, notes, false)),
                    Err(SearchError::Timeout(t)) => {
                        let mut r = finish(exact, Vec::new(), notes, true);
                        r.warnings.push(format!(
                            "partial result: the index walk gave up and the exact scan did not finish within {t:?}"
                        ));
                        Ok(r)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The HNSW path: nearest texts first; for each, its newest events in
    /// the window, kept when the left side matches them, until `k` are found
    /// (or the texts run out, or the work budget does).
    async fn walk_index(
        &self,
        exact: &Compiled,
        sim: &Similarity,
        model: &str,
        embedding: &str,
        bindings: &Bindings,
    ) -> Result<Walk, SearchError> {
        let k = sim.neighbours as usize;
        let mut base: Vec<vigil_srql::Param> = exact.params[..sim.candidates_params.min(exact.params.len())].to_vec();
        base.push(vigil_srql::Param::SimilarIds);
        base.push(vigil_srql::Param::SimilarTimes);
        let mut hits = SimilarHits::default();
        let mut scanned = 0u64;
        let mut skipped = 0u64;
        let mut n = (k as i64 * 4).max(40);
        let mut seen = 0usize;
        loop {
            let texts = vectors::nearest_texts(&self.pool, model, embedding, n).await?;
            for &(text_id, d) in &texts[seen.min(texts.len())..] {
                let score = 1.0 - d;
                if sim.min_score.is_some_and(|m| score < m) {
                    return Ok(Walk::Found(hits, skipped));
                }
                let mut before = None;
                // Pages grow, so a common text the filter rejects costs few round trips.
                let mut page_size = if self.opts.skip_text_after > 0 { self.opts.skip_text_after } else { 256 };
                let mut first_page = true;
                loop {
                    let page = vectors::events_of_text(&self.pool, text_id, exact.window, before, page_size).await?;
                    let Some(&(last_id, last_time)) = page.last() else { break };
                    before = Some((last_time, last_id));
                    scanned += page.len() as u64;
                    let b = Bindings {
                        similar: Some(SimilarHits {
                            ids: page.iter().map(|p| p.0).collect(),
                            times: page.iter().map(|p| p.1).collect(),
                            scores: Vec::new(),
                        }),
                        ..bindings.clone()
                    };
                    let kept = execute::rows(&self.pool, &sim.check_sql, &base, &b, &self.opts.query).await?;
                    let kept: std::collections::HashSet<uuid::Uuid> = kept.iter().map(|r| r.get(0)).collect();
                    if first_page && kept.is_empty() && self.opts.skip_text_after > 0 && page.len() as i64 == page_size
                    {
                        skipped += 1;
                        break;
                    }
                    first_page = false;
                    // Newest first, as the page is.
                    for (id, time) in page.iter().filter(|p| kept.contains(&p.0)) {
                        hits.ids.push(*id);
                        hits.times.push(*time);
                        hits.scores.push(score);
                        if hits.ids.len() >= k {
                            return Ok(Walk::Found(hits, skipped));
                        }
                    }
                    if scanned > self.opts.hnsw_max_scan_tuples {
                        return Ok(Walk::GaveUp(scanned, skipped));
                    }
                    if (page.len() as i64) < page_size {
                        break;
                    }
                    page_size = (page_size * 4).min(16_384);
                }
            }
            seen = texts.len();
            if (texts.len() as i64) < n {
                // Every text was visited: fewer than k events exist.
                return Ok(Walk::Found(hits, skipped));
            }
            n *= 4;
        }
    }

    /// The `SIMILAR_TO` path for a compiled query, from PostgreSQL's estimate
    /// of the left side's rows, and the reason in words.
    pub async fn choose_path(
        &self,
        compiled: &Compiled,
        bindings: &Bindings,
    ) -> Result<(SimilarityPath, String), SearchError> {
        let PostStage::Similar(sim) = &compiled.post else {
            return Ok((SimilarityPath::Exact, "no SIMILAR_TO".into()));
        };
        let params = &compiled.params[..sim.candidates_params.min(compiled.params.len())];
        let estimate = execute::estimate_rows(&self.pool, &sim.candidates_sql, params, bindings).await?;
        let limit = self.opts.exact_max_candidates;
        Ok(if estimate > limit {
            (
                SimilarityPath::Indexed,
                format!("SIMILAR_TO path: HNSW iterative scan (about {estimate:.0} candidate events > {limit:.0})"),
            )
        } else {
            (
                SimilarityPath::Exact,
                format!("SIMILAR_TO path: exact distance (about {estimate:.0} candidate events <= {limit:.0})"),
            )
        })
    }

    async fn cluster(&self, spec: &Cluster, compiled: Compiled, base: Bindings) -> Result<SearchResult, SearchError> {
        let model = self.embedder("| cluster")?.model_id().to_string();
        let b = Bindings { model: Some(model), ..base };
        let rows = execute::rows(&self.pool, &compiled.sql, &compiled.params, &b, &self.opts.query).await?;
        let mut texts = Vec::with_capacity(rows.len());
        let mut unembedded = 0i64;
        for r in &rows {
            let count: i64 = r.try_get("count").map_err(StoreError::db("reading a cluster row"))?;
            let embedding: Option<Vec<f32>> =
                r.try_get("embedding").map_err(StoreError::db("reading a cluster row"))?;
            let Some(embedding) = embedding else {
                unembedded += count;
                continue;
            };
            texts.push(TextRow {
                pattern: r.try_get("pattern").map_err(StoreError::db("reading a cluster row"))?,
                embedding,
                count,
                first_seen: r.try_get("first_seen").map_err(StoreError::db("reading a cluster row"))?,
                last_seen: r.try_get("last_seen").map_err(StoreError::db("reading a cluster row"))?,
                example: r.try_get("example_event_id").map_err(StoreError::db("reading a cluster row"))?,
            });
        }
        let capped = rows.len() as u64 >= compiled.limit;
        let n_texts = texts.len();
        let groups = cluster(texts, spec.threshold);
        let total: i64 = groups.iter().map(|g| g.count).sum();
        let mut notes = vec![format!("{total} events, {n_texts} distinct texts, {} patterns", groups.len())];
        let mut warnings = Vec::new();
        if unembedded > 0 {
            warnings.push(format!(
                "{unembedded} matching events have no embedding (not selected for vectorization, or not yet embedded) and are not clustered"
            ));
        }
        if capped {
            warnings.push(format!("partial result: only the {} largest distinct texts were clustered", compiled.limit));
            notes.push("text limit reached".into());
        }
        let rows = groups.iter().take(spec.limit as usize).map(|g| g.values()).collect();
        let mut r = finish(compiled, rows, notes, capped);
        r.warnings.extend(warnings);
        Ok(r)
    }
}

impl Searcher {
    /// `| blast_radius`: the SQL gives the start points; each is walked in
    /// the in-memory graph and the reached nodes merged (nearest hop wins).
    async fn blast_radius(
        &self,
        spec: &BlastRadius,
        compiled: Compiled,
        base: Bindings,
    ) -> Result<SearchResult, SearchError> {
        let graph = self.graph.as_ref().ok_or(SearchError::NoGraph)?;
        let rows = execute::rows(&self.pool, &compiled.sql, &compiled.params, &base, &self.opts.query).await?;
        let mut starts = Vec::with_capacity(rows.len());
        for r in &rows {
            let s: String = r.try_get("start").map_err(StoreError::db("reading a start point"))?;
            starts.push(s);
        }
        let capped_starts = starts.len() as u64 >= compiled.limit;
        let GraphWalk { mut reached, total, unknown } = walk_graph(graph, spec, &starts)?;
        let limit = spec.limit as usize;
        let truncated = reached.len() > limit;
        reached.truncate(limit);
        let rows = reached.into_iter().map(|(start, r)| blast_row(start, r)).collect();
        let mut notes = vec![format!(
            "{} start point(s), {total} node(s) reached within {} hop(s) (graph of the last {} h)",
            starts.len(),
            spec.hops,
            graph.window().num_hours()
        )];
        let mut warnings = Vec::new();
        if !unknown.is_empty() {
            let shown: Vec<&str> = unknown.iter().take(5).map(String::as_str).collect();
            warnings.push(format!(
                "{} start point(s) have no connections in the graph window: {}{}",
                unknown.len(),
                shown.join(", "),
                if unknown.len() > 5 { ", …" } else { "" }
            ));
        }
        if capped_starts {
            warnings.push(format!("partial result: only the first {} start points were walked", compiled.limit));
            notes.push("start limit reached".into());
        }
        let mut r = finish(compiled, rows, notes, truncated || capped_starts);
        r.columns =
            BLAST_COLUMNS.iter().map(|(name, ty)| Column { name: (*name).into(), alias: (*name).into(), ty }).collect();
        r.warnings.extend(warnings);
        Ok(r)
    }
}

/// The nodes a `| blast_radius` reached, each with the start point it was
/// reached from (nearest first, then riskiest), how many nodes the walks
/// reached in all, and the start points the graph does not know.
struct GraphWalk {
    reached: Vec<(String, Reached)>,
    total: usize,
    unknown: Vec<String>,
}

/// Walks the graph from each start point and merges what they reach: a
/// node reached from several start points keeps its nearest.
fn walk_graph(graph: &LiveGraph, spec: &BlastRadius, starts: &[String]) -> Result<GraphWalk, SearchError> {
    let direction = match spec.direction {
        GraphDirection::Out => Direction::Out,
        GraphDirection::In => Direction::In,
        GraphDirection::Both => Direction::Both,
    };
    let mut best: std::collections::HashMap<std::net::IpAddr, (String, Reached)> = std::collections::HashMap::new();
    let mut unknown = Vec::new();
    let mut total = 0usize;
    {
        let g = graph.read();
        for s in starts {
            let start: Start = match s.parse() {
                Ok(st) => st,
                Err(_) => {
                    unknown.push(s.clone());
                    continue;
                }
            };
            let q = BlastQuery {
                start,
                hops: spec.hops,
                direction,
                ports: spec.ports.clone(),
                protocols: spec.protocols.clone(),
                since: None,
                limit: (spec.limit as usize).max(1),
            };
            match g.blast_radius(&q) {
                Ok(b) => {
                    total += b.total_reached;
                    for r in b.reached {
                        match best.get(&r.ip) {
                            Some((_, prev)) if prev.hops <= r.hops => {}
                            _ => {
                                best.insert(r.ip, (s.clone(), r));
                            }
                        }
                    }
                }
                Err(GraphError::UnknownStart(_)) => unknown.push(s.clone()),
                Err(e) => return Err(SearchError::Graph(e.to_string())),
            }
        }
    }
    let mut reached: Vec<(String, Reached)> = best.into_values().collect();
    reached.sort_by(|(_, a), (_, b)| {
        a.hops.cmp(&b.hops).then(b.risk.score.total_cmp(&a.risk.score)).then(a.ip.cmp(&b.ip))
    });
    Ok(GraphWalk { reached, total, unknown })
}

/// A reached node as a row of [`BLAST_COLUMNS`].
fn blast_row(start: String, r: Reached) -> Vec<serde_json::Value> {
    let path = r
        .path
        .iter()
        .map(|h| {
            let proc = if h.src_process.is_empty() { String::new() } else { format!(" ({})", h.src_process) };
            let arrow = if h.reversed { "<-" } else { "->" };
            format!("{}{proc} {arrow} {}:{}/{}", h.from, h.to, h.dst_port, h.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        serde_json::Value::from(start),
        serde_json::Value::from(r.ip.to_string()),
        r.host.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null),
        serde_json::Value::from(r.hops),
        serde_json::Value::from(path),
        serde_json::Value::from(r.risk.score),
        serde_json::Value::from(r.risk.facts.critical_cves),
        serde_json::Value::from(r.risk.facts.running_vulnerable),
        serde_json::Value::from(r.risk.facts.recent_alerts),
    ]
}

/// The columns of a `| blast_radius` result.
const BLAST_COLUMNS: [(&str, &str); 9] = [
    ("start", "keyword"),
    ("ip", "ip"),
    ("host", "keyword"),
    ("hops", "int"),
    ("path", "text"),
    ("risk", "float"),
    ("critical_cves", "int"),
    ("running_vulnerable", "int"),
    ("recent_alerts", "int"),
];

enum Walk {
    /// The hits, and how many texts were skipped.
    Found(SimilarHits, u64),
    /// Events checked, texts skipped.
    GaveUp(u64, u64),
}

fn skipped_note(skipped: u64, after: i64) -> String {
    format!(
        "the index walk skipped {skipped} text(s) whose newest {after} events in the window do not match the filter"
    )
}

fn finish(c: Compiled, rows: Vec<Vec<serde_json::Value>>, notes: Vec<String>, partial: bool) -> SearchResult {
    let mut plan = c.plan;
    plan.extend(notes);
    let rows_len = rows.len() as u64;
    SearchResult {
        columns: c.columns,
        rows,
        took_ms: 0,
        plan,
        warnings: c.warnings,
        partial,
        visualization: c.visualization,
        sql: c.sql,
        total: rows_len,
        total_exact: !partial,
    }
}
