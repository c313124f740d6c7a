//! Sentence embeddings for semantic hunting (`| SIMILAR_TO(...)`): the
//! all-MiniLM-L6-v2 model (384 dimensions) run on the CPU through ONNX
//! Runtime, fully offline.
//!
//! This crate owns:
//! - [`Embedder`]: loads the model files and the ONNX Runtime library that
//!   `scripts/setup.sh` installs (see [`EmbedConfig`]) and turns text into
//!   L2-normalised vectors, sorting each batch by length and running it in
//!   small sub-batches, which is about twice as fast as one padded call;
//! - [`normalize`] and [`CachedEmbedder`]: log lines repeat with different
//!   numbers, addresses and ids, so the text is normalised (those masked) and
//!   each normalised text is embedded once;
//! - [`Selection`] and [`text_for`]: which events get a vector and the text
//!   that stands for an event.
//!
//! Nothing is downloaded at build or run time: a missing model or runtime is
//! an [`EmbedError`] that names the path and says to run `scripts/setup.sh`.

mod cache;
mod model;
mod normalize;
mod select;

use std::path::PathBuf;

pub use cache::{CacheStats, CachedEmbedder};
pub use model::Embedder;
pub use normalize::normalize;
pub use select::{text_for, Selection};

/// Dimensions of every vector this crate produces.
pub const DIM: usize = 384;

/// Default directory of the model files (`model.onnx`, tokenizer files, `VARIANT`).
pub const DEFAULT_MODEL_DIR: &str = "/opt/vigil/models/all-minilm-l6-v2";
/// Default path of the ONNX Runtime shared library.
pub const DEFAULT_RUNTIME_LIB: &str = "/opt/vigil/models/onnxruntime/libonnxruntime.so.1.31.1";

/// Where the model and runtime are and how to run them.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// Directory with `model.onnx`, `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json`, `tokenizer_config.json` and `VARIANT`.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.31.1`).
    pub runtime_lib: PathBuf,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Texts per model call in [`Embedder::embed`].
    pub sub_batch: usize,
}

impl Default for EmbedConfig {
    /// The installed model ([`DEFAULT_MODEL_DIR`], [`DEFAULT_RUNTIME_LIB`]),
    /// one thread per available core, sub-batches of 16. The server sets the
    /// paths from its configuration (`VIGIL_MODEL_DIR`, `VIGIL_ORT_LIB`).
    fn default() -> Self {
        EmbedConfig {
            model_dir: DEFAULT_MODEL_DIR.into(),
            runtime_lib: DEFAULT_RUNTIME_LIB.into(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            sub_batch: 16,
        }
    }
}

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model or runtime file is not installed.
    #[error("embedding model file {} is missing: run scripts/setup.sh (or set VIGIL_MODEL_DIR / VIGIL_ORT_LIB)", path.display())]
    MissingFile { path: PathBuf },
    /// A model file exists but could not be read.
    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The ONNX Runtime library could not be loaded or initialised.
    #[error("loading ONNX Runtime from {}: {message} (run scripts/setup.sh)", path.display())]
    Runtime { path: PathBuf, message: String },
    /// The model or tokenizer could not be loaded.
    #[error("loading the embedding model from {}: {message}", path.display())]
    Model { path: PathBuf, message: String },
    /// Running the model failed.
    #[error("embedding failed: {0}")]
    Inference(String),
    /// A selection spec could not be parsed.
    #[error("invalid embedding selection: {0}")]
    Selection(String),
}
