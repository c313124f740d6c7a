//! Vigil's BM25 full-text index over events, on [tantivy].
//!
//! This crate owns the index and nothing else: PostgreSQL stays the system of
//! record. The index is fed by tailing `events` in ingestion order
//! ([`vigil_store::tail::Tail`] named [`TAIL_NAME`]) and can always be thrown
//! away and rebuilt from PostgreSQL ([`reindex`]). Every commit is made before
//! the tail's watermark is saved, so a crash re-indexes (adding a document is
//! idempotent on its event id) rather than skips.
//!
//! Searching ([`TextIndex::search`]) takes what the analyst typed as free
//! text, never tantivy query syntax: it is split on whitespace into words, each
//! word is tokenized with the index's own analyzer (a word such as
//! `/etc/shadow` or `10.0.0.5` that yields several tokens must match as a
//! phrase), and all words must match, ranked by BM25. With `phrase: true` the
//! whole text must match as one exact phrase.

use std::future::Future;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use uuid::Uuid;
use vigil_store::tail::{Tail, TailRow, Watermark};
use vigil_store::{Pool, StoreError};

/// The name of the [`Tail`] (and its watermark row) that feeds this index.
pub const TAIL_NAME: &str = "bm25";

/// The analyzer of the `text` field: split on anything that is not a letter
/// or digit, lower-case, drop tokens over 255 bytes. `cat /etc/shadow` becomes
/// `cat etc shadow` at consecutive positions, so phrases over paths, command
/// lines and IP addresses (`10 0 0 5`) work, and `shadow` alone still matches.
const ANALYZER: &str = "vigil_text";

/// Written as the payload of every commit: an index directory without it was
/// never fed by [`sync`], so a watermark left over from an earlier index does
/// not apply to it.
const COMMIT_PAYLOAD: &str = "vigil-bm25 v1";

/// Indexing memory for the one writer, shared by its threads.
const WRITER_MEMORY: usize = 128 * 1024 * 1024;

/// Commit (then save the watermark) at least this often during a long catch-up.
const COMMIT_EVERY: u64 = 250_000;

/// Errors from the full-text index.
#[derive(Debug, thiserror::Error)]
pub enum FulltextError {
    #[error("full-text index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("opening the full-text index in {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("creating the full-text index directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the full-text index directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: tantivy::directory::error::OpenDirectoryError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the full-text index writer is unusable: a thread panicked while holding it")]
    Poisoned,
    #[error("the full-text index is missing its {0} column")]
    MissingColumn(&'static str),
}

/// What the indexer has done, for `/metrics` ([`IndexerStats::register`],
/// [`TextIndex::with_stats`]). Counters only grow.
#[derive(Debug, Default)]
pub struct IndexerStats {
    /// Documents added by [`sync`] (re-indexed ones count again).
    pub docs_indexed: Counter,
    /// Completed sync passes.
    pub syncs: Counter,
    /// Sync passes that failed.
    pub errors: Counter,
    /// Searchable documents as of the last commit ([`TextIndex::num_docs`]).
    pub docs: Gauge,
    /// When the last sync pass completed (Unix milliseconds, 0 = never).
    pub last_sync_unix_ms: AtomicI64,
}

impl IndexerStats {
    /// Counters registered in `registry` as `<prefix>_bm25_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let s = Self::default();
        let r = registry.sub_registry_with_prefix("bm25");
        r.register("docs_indexed", "Documents added to the BM25 index", s.docs_indexed.clone());
        r.register("errors", "BM25 indexing passes that failed", s.errors.clone());
        r.register("docs", "Searchable documents in the BM25 index", s.docs.clone());
        s
    }

    fn synced(&self, docs: u64) {
        self.docs_indexed.inc_by(docs);
        self.syncs.inc();
        self.last_sync_unix_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn sync_failed(&self, every: Duration, e: &FulltextError) {
        self.errors.inc();
        tracing::warn!("bm25 indexing failed (retrying in {every:?}): {e}");
    }
}

/// One event as indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub event_id: Uuid,
    pub time: DateTime<Utc>,
    pub kind: String,
    pub host: Option<String>,
    pub text: String,
}

/// A free-text search.
#[derive(Debug, Clone, PartialEq)]
pub struct TextQuery {
    /// What the analyst typed: every word must match (BM25-ranked), or with
    /// `phrase` the whole text as one exact phrase.
    pub text: String,
    pub phrase: bool,
    /// Only events with `start <= time < end`.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// How many hits to return (best first).
    pub limit: usize,
}

/// The best hits and how many documents matched in all.
#[derive(Debug, Clone, PartialEq)]
pub struct TextHits {
    /// Sorted by score, best first; at most `limit`.
    pub hits: Vec<Hit>,
    /// Matching documents in the window.
    pub total: u64,
}

/// One matching event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub event_id: Uuid,
    pub time: DateTime<Utc>,
    pub score: f32,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    event_id: Field,
    time: Field,
    kind: Field,
    host: Field,
    text: Field,
}

/// The BM25 index: one tantivy index with one writer (behind a mutex) and a
/// reader reloaded on every commit. Safe to share between tasks.
pub struct TextIndex {
    index: Index,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    tail: Tail,
    /// The directory has never been committed to by Vigil: the first sync
    /// starts from the beginning whatever watermark PostgreSQL holds.
    fresh: std::sync::atomic::AtomicBool,
    stats: IndexerStats,
    dir: PathBuf,
}

impl std::fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextIndex")
            .field("dir", &self.dir)
            .field("num_docs", &self.num_docs())
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let event_id = b.add_bytes_field("event_id", INDEXED | STORED | FAST);
    let time = b.add_i64_field("time", INDEXED | FAST | STORED);
    let kind = b.add_text_field("kind", STRING | FAST);
    let host = b.add_text_field("host", STRING | FAST);
    let text_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let text = b.add_text_field("text", text_opts);
    (b.build(), Fields { event_id, time, kind, host, text })
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(255)).filter(LowerCaser).build()
}

/// Runs blocking index work without stalling other tasks where the runtime
/// allows it (a multi-threaded one); inline elsewhere.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

impl TextIndex {
    /// Opens the index in `dir`, creating the directory and an empty index
    /// when missing. One process at a time: the writer holds a lock file.
    pub fn open(dir: &Path) -> Result<Self, FulltextError> {
        std::fs::create_dir_all(dir).map_err(|source| FulltextError::CreateDir { path: dir.into(), source })?;
        let (schema, fields) = schema();
        let mmap = MmapDirectory::open(dir).map_err(|source| FulltextError::Directory { path: dir.into(), source })?;
        let index =
            Index::open_or_create(mmap, schema).map_err(|source| FulltextError::Open { path: dir.into(), source })?;
        let analyzer = analyzer();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        let fresh = index.load_metas()?.payload.as_deref() != Some(COMMIT_PAYLOAD);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        let writer = index
            .writer_with_num_threads(threads, WRITER_MEMORY.max(threads * 16 * 1024 * 1024))
            .map_err(|source| FulltextError::Open { path: dir.into(), source })?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(TextIndex {
            index,
            writer: Mutex::new(writer),
            reader,
            fields,
            analyzer,
            tail: Tail::new(TAIL_NAME),
            fresh: std::sync::atomic::AtomicBool::new(fresh),
            stats: IndexerStats::default(),
            dir: dir.into(),
        })
    }

    /// Sets the settle window of the tail that feeds this index (default 5 s;
    /// see [`vigil_store::tail`]).
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.tail = Tail::new(TAIL_NAME).with_settle(settle);
        self
    }

    /// The tail that feeds this index.
    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// Counts in `stats` (registered for `/metrics`) instead of its own.
    pub fn with_stats(mut self, stats: IndexerStats) -> Self {
        stats.docs.set(i64::try_from(self.num_docs()).unwrap_or(i64::MAX));
        self.stats = stats;
        self
    }

    /// What the indexer has done.
    pub fn stats(&self) -> &IndexerStats {
        &self.stats
    }

    /// The directory the index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer(&self) -> Result<MutexGuard<'_, IndexWriter<TantivyDocument>>, FulltextError> {
        self.writer.lock().map_err(|_| FulltextError::Poisoned)
    }

    /// Adds documents, replacing any already indexed under the same event id
    /// (so re-adding is harmless). Visible to searches after [`commit`](Self::commit).
    pub fn add(&self, docs: &[Doc]) -> Result<(), FulltextError> {
        let f = self.fields;
        let writer = self.writer()?;
        for d in docs {
            let id = d.event_id.as_bytes();
            writer.delete_term(Term::from_field_bytes(f.event_id, id));
            let mut doc = TantivyDocument::default();
            doc.add_bytes(f.event_id, id.as_slice());
            doc.add_i64(f.time, micros(d.time));
            doc.add_text(f.kind, &d.kind);
            if let Some(h) = &d.host {
                doc.add_text(f.host, h);
            }
            doc.add_text(f.text, &d.text);
            writer.add_document(doc)?;
        }
        Ok(())
    }

    /// Makes everything added or deleted so far durable and searchable.
    pub fn commit(&self) -> Result<(), FulltextError> {
        {
            let mut writer = self.writer()?;
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(COMMIT_PAYLOAD);
            prepared.commit()?;
        }
        self.reader.reload()?;
        self.stats.docs.set(i64::try_from(self.num_docs()).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Searches the committed documents (see the crate docs for how `text`
    /// is read).
    pub fn search(&self, q: &TextQuery) -> Result<TextHits, FulltextError> {
        let query = self.build_query(q);
        let Some(query) = query else {
            return Ok(TextHits { hits: Vec::new(), total: 0 });
        };
        let searcher = self.reader.searcher();
        let limit = q.limit.max(1);
        let (top, total) = searcher.search(&*query, &(TopDocs::with_limit(limit).order_by_score(), Count))?;
        let mut hits = Vec::with_capacity(top.len().min(q.limit));
        let mut buf = Vec::with_capacity(16);
        for (score, addr) in top.into_iter().take(q.limit) {
            let seg = searcher.segment_reader(addr.segment_ord);
            let ff = seg.fast_fields();
            let ids = ff.bytes("event_id")?.ok_or(FulltextError::MissingColumn("event_id"))?;
            let times = ff.i64("time")?;
            buf.clear();
            let Some(ord) = ids.ords().first(addr.doc_id) else { continue };
            ids.ord_to_bytes(ord, &mut buf).map_err(tantivy::TantivyError::from)?;
            let Ok(event_id) = Uuid::from_slice(&buf) else { continue };
            let time = times.first(addr.doc_id).and_then(DateTime::from_timestamp_micros).unwrap_or_default();
            hits.push(Hit { event_id, time, score });
        }
        Ok(TextHits { hits, total: total as u64 })
    }

    /// The tokens of one piece of text as the index sees them.
    fn tokens(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    /// Term or phrase over `tokens` (None when there are none).
    fn term_or_phrase(&self, tokens: Vec<String>) -> Option<Box<dyn Query>> {
        let f = self.fields.text;
        let mut terms: Vec<Term> = tokens.iter().map(|t| Term::from_field_text(f, t)).collect();
        match terms.len() {
            0 => None,
            1 => terms.pop().map(|t| Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>),
            _ => Some(Box::new(PhraseQuery::new(terms))),
        }
    }

    /// The query for `q`, or None when it can match nothing.
    fn build_query(&self, q: &TextQuery) -> Option<Box<dyn Query>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if q.phrase {
            clauses.extend(self.term_or_phrase(self.tokens(&q.text)).map(|c| (Occur::Must, c)));
        } else {
            for word in q.text.split_whitespace() {
                // Quotes the analyst typed around a word are punctuation to the
                // analyzer anyway.
                clauses.extend(self.term_or_phrase(self.tokens(word)).map(|c| (Occur::Must, c)));
            }
        }
        let has_text = !clauses.is_empty();
        if let Some((start, end)) = q.window {
            if start >= end {
                return None;
            }
            let range = RangeQuery::new(
                Bound::Included(Term::from_field_i64(self.fields.time, micros(start))),
                Bound::Excluded(Term::from_field_i64(self.fields.time, micros(end))),
            );
            // A filter: it must match but adds nothing to the BM25 score.
            clauses.push((Occur::Must, Box::new(BoostQuery::new(Box::new(range), 0.0))));
        }
        if !has_text {
            // Nothing searchable was typed: every document (in the window).
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        if clauses.len() == 1 {
            return clauses.pop().map(|(_, c)| c);
        }
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    /// Retention: deletes every document with `time < t` and commits. Returns
    /// how many were deleted.
    pub fn delete_before(&self, t: DateTime<Utc>) -> Result<u64, FulltextError> {
        let range =
            RangeQuery::new(Bound::Unbounded, Bound::Excluded(Term::from_field_i64(self.fields.time, micros(t))));
        let n = self.reader.searcher().search(&range, &Count)? as u64;
        if n == 0 {
            return Ok(0);
        }
        self.writer()?.delete_query(Box::new(range))?;
        self.commit()?;
        Ok(n)
    }

    /// Retention of one event kind: deletes its documents with `time < t`
    /// and commits. Returns how many were deleted.
    pub fn delete_kind_before(&self, kind: &str, t: DateTime<Utc>) -> Result<u64, FulltextError> {
        let range =
            RangeQuery::new(Bound::Unbounded, Bound::Excluded(Term::from_field_i64(self.fields.time, micros(t))));
        let of_kind = TermQuery::new(Term::from_field_text(self.fields.kind, kind), IndexRecordOption::Basic);
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(range) as Box<dyn Query>),
            (Occur::Must, Box::new(of_kind) as Box<dyn Query>),
        ]);
        let n = self.reader.searcher().search(&query, &Count)? as u64;
        if n == 0 {
            return Ok(0);
        }
        self.writer()?.delete_query(Box::new(query))?;
        self.commit()?;
        Ok(n)
    }

    /// Deletes every document and commits.
    pub fn clear(&self) -> Result<(), FulltextError> {
        self.writer()?.delete_all_documents()?;
        self.commit()
    }

    /// Searchable (committed, not deleted) documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The underlying tantivy index (for tools and diagnostics).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

/// The text of an event as indexed: its message, process command line and
/// user name.
pub fn doc_from_row(r: &TailRow) -> Doc {
    let mut text = r.message.clone();
    for extra in [&r.process_cmdline, &r.user_name].into_iter().flatten() {
        if !extra.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(extra);
        }
    }
    Doc { event_id: r.event_id, time: r.time, kind: r.kind.clone(), host: r.host.clone(), text }
}

/// One catch-up pass: reads the events ingested since the watermark of the
/// [`TAIL_NAME`] tail in pages of `page`, adds them, commits, then saves the
/// watermark (commit first, so a crash re-indexes rather than skips). Returns
/// how many documents it indexed.
pub async fn sync(index: &TextIndex, pool: &Pool, page: i64) -> Result<u64, FulltextError> {
    let tail = index.tail();
    let mut after = if index.fresh.load(Ordering::Acquire) {
        // Nothing in this directory came from Vigil: whatever watermark
        // PostgreSQL holds belongs to an index that is gone.
        tail.reset(pool).await?;
        None
    } else {
        tail.watermark(pool).await?
    };
    let page = page.max(1);
    let mut total = 0u64;
    let mut uncommitted = 0u64;
    let mut pending: Option<Watermark> = None;
    let (mut read_t, mut add_t) = (Duration::ZERO, Duration::ZERO);
    let started = std::time::Instant::now();
    loop {
        let t = std::time::Instant::now();
        let rows = tail.next(pool, after, page).await?;
        read_t += t.elapsed();
        let Some(last) = rows.last() else { break };
        let w = last.watermark();
        let t = std::time::Instant::now();
        let docs: Vec<Doc> = rows.iter().map(doc_from_row).collect();
        blocking(|| index.add(&docs))?;
        add_t += t.elapsed();
        total += docs.len() as u64;
        uncommitted += docs.len() as u64;
        after = Some(w);
        pending = Some(w);
        if uncommitted >= COMMIT_EVERY {
            blocking(|| index.commit())?;
            index.fresh.store(false, Ordering::Release);
            tail.save(pool, w).await?;
            uncommitted = 0;
            pending = None;
        }
        if (rows.len() as i64) < page {
            break;
        }
    }
    if let Some(w) = pending {
        blocking(|| index.commit())?;
        index.fresh.store(false, Ordering::Release);
        tail.save(pool, w).await?;
    }
    if total > 0 {
        tracing::debug!(
            docs = total,
            read_ms = read_t.as_millis() as u64,
            add_ms = add_t.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "bm25 sync pass"
        );
    }
    index.stats.synced(total);
    Ok(total)
}

/// Runs [`sync`] every `every` until `shutdown` resolves, logging failures
/// and retrying on the next tick. Counts in [`TextIndex::stats`]. Shutdown
/// does not wait for a pass in progress: what it committed but did not yet
/// record in the watermark is indexed again (harmlessly) on the next start.
pub async fn run_indexer(index: Arc<TextIndex>, pool: Pool, every: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut shutdown => break,
            r = sync(&index, &pool, 10_000) => match r {
                Ok(0) => {}
                Ok(n) => tracing::debug!(docs = n, "bm25 index caught up"),
                Err(e) => index.stats.sync_failed(every, &e),
            },
        }
    }
}

/// Rebuilds the index from PostgreSQL: deletes every document, resets the
/// watermark and syncs to the end. Returns how many documents it indexed.
pub async fn reindex(index: &TextIndex, pool: &Pool) -> Result<u64, FulltextError> {
    blocking(|| index.clear())?;
    index.tail().reset(pool).await?;
    index.fresh.store(false, Ordering::Release);
    sync(index, pool, 20_000).await
}
