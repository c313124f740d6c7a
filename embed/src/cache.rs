//! Embeddings cached by normalised text.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::{normalize, EmbedError, Embedder};

/// Counters of a [`CachedEmbedder`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Inputs served without running the model (cached, or repeated in the batch).
    pub hits: u64,
    /// Normalised texts the model embedded.
    pub misses: u64,
    /// Vectors held now.
    pub entries: u64,
}

/// An [`Embedder`] behind a cache keyed by [`normalize`]d text, holding up to
/// `capacity` vectors. Eviction is two-generation (an approximate LRU with
/// O(1) operations): new vectors go into the young generation; when it is
/// full it becomes the old one and the previous old one is dropped; a hit in
/// the old generation moves the entry back to the young one.
pub struct CachedEmbedder {
    embedder: Embedder,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    young: HashMap<String, Arc<[f32]>>,
    old: HashMap<String, Arc<[f32]>>,
    hits: u64,
    misses: u64,
}

impl State {
    fn get(&mut self, key: &str, generation: usize) -> Option<Arc<[f32]>> {
        if let Some(v) = self.young.get(key) {
            return Some(v.clone());
        }
        let (key, v) = self.old.remove_entry(key)?;
        self.insert(key, v.clone(), generation);
        Some(v)
    }

    fn insert(&mut self, key: String, v: Arc<[f32]>, generation: usize) {
        if self.young.len() >= generation && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, v);
    }
}

impl fmt::Debug for CachedEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("embedder", &self.embedder)
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl CachedEmbedder {
    pub fn new(embedder: Embedder, capacity: usize) -> Self {
        CachedEmbedder { embedder, capacity, state: Mutex::new(State::default()) }
    }

    /// The wrapped embedder's [`Embedder::model_id`].
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// The wrapped embedder.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Normalises each text, embeds only the normalised texts not cached
    /// (once each even if repeated in the batch), and returns one vector per
    /// input in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Arc<[f32]>>, EmbedError> {
        let generation = self.capacity.div_ceil(2).max(1);
        let keys: Vec<String> = texts.iter().map(|t| normalize(t)).collect();
        let mut out: Vec<Option<Arc<[f32]>>> = vec![None; texts.len()];
        // Normalised text → the inputs waiting for it.
        let mut todo: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut todo_order: Vec<&str> = Vec::new();
        {
            let mut st = self.lock();
            for (i, key) in keys.iter().enumerate() {
                if let Some(v) = st.get(key, generation) {
                    out[i] = Some(v);
                    st.hits += 1;
                } else {
                    let waiting = todo.entry(key.as_str()).or_default();
                    if waiting.is_empty() {
                        todo_order.push(key.as_str());
                    } else {
                        st.hits += 1;
                    }
                    waiting.push(i);
                }
            }
        }
        if !todo_order.is_empty() {
            let vectors = self.embedder.embed(&todo_order)?;
            let mut st = self.lock();
            st.misses += todo_order.len() as u64;
            for (key, v) in todo_order.iter().zip(vectors) {
                let v: Arc<[f32]> = v.into();
                for &i in &todo[key] {
                    out[i] = Some(v.clone());
                }
                if self.capacity > 0 {
                    st.insert((*key).to_string(), v, generation);
                }
            }
        }
        out.into_iter().map(|v| v.ok_or_else(|| EmbedError::Inference("a text got no vector".into()))).collect()
    }

    pub fn stats(&self) -> CacheStats {
        let st = self.lock();
        CacheStats { hits: st.hits, misses: st.misses, entries: (st.young.len() + st.old.len()) as u64 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
