//! The embedding worker: events → selected → distinct normalised texts →
//! vectors (only texts this model has not seen) → links from events.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use vigil_embed::{normalize, text_for, CachedEmbedder, Selection};
use vigil_event::{Event, Kind, Process, Severity};
use vigil_store::tail::{Tail, TailRow};
use vigil_store::{vectors, Pool};

use crate::SearchError;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

/// What the worker has done since it started ([`VectorizeStats::register`]
/// for `/metrics`).
#[derive(Debug, Clone)]
pub struct VectorizeStats {
    /// Events read from the tail.
    read: Counter,
    /// Events the selection rules picked.
    selected: Counter,
    /// Distinct texts embedded by the model (not found in the database).
    embedded: Counter,
    /// Event → text links written.
    linked: Counter,
    /// Failed passes (retried).
    errors: Counter,
}

impl Default for VectorizeStats {
    /// Counters in no registry.
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

impl VectorizeStats {
    /// Counters registered in `registry` as `<prefix>_vectorize_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let events = Family::<StageLabel, Counter>::default();
        let stage = |stage| events.get_or_create_owned(&StageLabel { stage });
        let s = VectorizeStats {
            read: stage("read"),
            selected: stage("selected"),
            linked: stage("linked"),
            embedded: Counter::default(),
            errors: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("vectorize");
        r.register("events", "Events the embedding worker read, selected and linked to a vector", events);
        r.register("texts_embedded", "Distinct texts the model embedded", s.embedded.clone());
        r.register("errors", "Failed embedding passes (retried)", s.errors.clone());
        s
    }

    fn failed_pass(&self, e: &SearchError) {
        self.errors.inc();
        tracing::warn!("embedding worker: {e}; retrying");
    }
}

/// Keeps `event_embeddings` up to date from `events`.
#[derive(Debug)]
pub struct Vectorizer {
    embedder: Arc<CachedEmbedder>,
    selection: Selection,
    tail: Tail,
    page: i64,
    stats: VectorizeStats,
}

impl Vectorizer {
    /// A worker with its own watermark (`vectors:<model id>`), so a new model
    /// starts from the beginning instead of inheriting another's progress.
    pub fn new(embedder: Arc<CachedEmbedder>, selection: Selection) -> Self {
        let tail = Tail::new(&format!("vectors:{}", embedder.model_id()));
        Vectorizer { embedder, selection, tail, page: 2_000, stats: VectorizeStats::default() }
    }

    /// Counts in `stats` (registered for `/metrics`) instead of its own.
    pub fn with_stats(mut self, stats: VectorizeStats) -> Self {
        self.stats = stats;
        self
    }

    /// Rows younger than this are left for the next pass (see [`Tail`]).
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.tail = self.tail.with_settle(settle);
        self
    }

    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// Reads and embeds until caught up; returns the events linked.
    pub async fn sync(&self, pool: &Pool) -> Result<u64, SearchError> {
        vectors::ensure_index(pool, self.embedder.model_id()).await?;
        let mut linked = 0;
        let mut mark = self.tail.watermark(pool).await?;
        loop {
            let rows = self.tail.next(pool, mark, self.page).await?;
            let Some(last) = rows.last() else { break };
            let next_mark = last.watermark();
            linked += self.page_of(pool, &rows).await?;
            // Saved after the vectors are stored: a crash repeats work, never skips it.
            self.tail.save(pool, next_mark).await?;
            mark = Some(next_mark);
        }
        Ok(linked)
    }

    async fn page_of(&self, pool: &Pool, rows: &[TailRow]) -> Result<u64, SearchError> {
        let s = &self.stats;
        s.read.inc_by(rows.len() as u64);
        // (event, time, text hash) for the selected events, and each distinct text once.
        let mut picked = Vec::new();
        let mut distinct: HashMap<Vec<u8>, String> = HashMap::new();
        for r in rows {
            let e = event_of(r);
            if !self.selection.selects(&e) {
                continue;
            }
            if let Some(text) = text_for(&e) {
                let norm = normalize(&text);
                if !norm.is_empty() {
                    let hash = vectors::text_hash(&norm);
                    picked.push((r.event_id, r.time, hash.clone()));
                    distinct.entry(hash).or_insert(norm);
                }
            }
        }
        s.selected.inc_by(picked.len() as u64);
        if picked.is_empty() {
            return Ok(0);
        }
        let model = self.embedder.model_id().to_string();
        let hashes: Vec<Vec<u8>> = distinct.keys().cloned().collect();
        let mut ids = vectors::known_texts(pool, &model, &hashes).await?;
        let missing: Vec<String> =
            distinct.iter().filter(|(h, _)| !ids.contains_key(*h)).map(|(_, t)| t.clone()).collect();
        if !missing.is_empty() {
            let embedder = self.embedder.clone();
            let texts = missing.clone();
            // The model is CPU-bound: keep it off the async workers.
            let vecs = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                embedder.embed(&refs)
            })
            .await
            .map_err(|e| SearchError::Task(e.to_string()))??;
            let new: Vec<vectors::NewText<'_>> =
                missing.iter().zip(vecs.iter()).map(|(t, v)| vectors::NewText { text: t, embedding: v }).collect();
            ids.extend(vectors::store_texts(pool, &model, &new).await?);
            s.embedded.inc_by(missing.len() as u64);
        }
        let links: Vec<_> =
            picked.iter().filter_map(|(id, time, hash)| ids.get(hash).map(|t| (*id, *time, *t))).collect();
        let n = vectors::link_events(pool, &links).await?;
        s.linked.inc_by(n);
        Ok(n)
    }

    /// Runs [`Vectorizer::sync`] every `every` until `shutdown` resolves,
    /// retrying after failures.
    pub async fn run(self: Arc<Self>, pool: Pool, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.sync(&pool).await {
                self.stats.failed_pass(&e);
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut shutdown => break,
            }
        }
    }
}

/// The parts of an event the selection rules and the text need.
fn event_of(r: &TailRow) -> Event {
    let kind = r.kind.parse().unwrap_or(Kind::Log);
    let mut e = Event::new(kind, "tail", r.time, &[]);
    e.id = r.event_id;
    e.host = r.host.clone();
    e.severity = Severity::from_id(r.severity_id).unwrap_or_default();
    e.status_id = r.status_id;
    e.message = r.message.clone();
    e.user = r.user_name.clone();
    if r.process_cmdline.is_some() {
        e.process = Some(Process { cmdline: r.process_cmdline.clone(), ..Process::default() });
    }
    e
}
