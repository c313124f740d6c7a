//! The model: ONNX Runtime loaded from a file, the tokenizer and the graph.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use fastembed::{InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel};
use ort::environment::Environment;
use sha2::{Digest, Sha256};

use crate::{EmbedConfig, EmbedError, DIM};

/// Model name in [`Embedder::model_id`].
const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Tokens per text: sentence-transformers truncates all-MiniLM-L6-v2 at 256
/// (the packaged tokenizer.json says 128).
const MAX_LENGTH: usize = 256;

/// ONNX Runtime allows one environment per process; every [`Embedder`] shares it.
static ORT_ENV: Mutex<Option<Environment>> = Mutex::new(None);

fn environment(lib: &Path) -> Result<Environment, EmbedError> {
    let mut slot = ORT_ENV.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    if !lib.is_file() {
        return Err(EmbedError::MissingFile { path: lib.to_path_buf() });
    }
    let runtime = |message: String| EmbedError::Runtime { path: lib.to_path_buf(), message };
    let env = ort::init_from(lib)
        .map_err(|e| runtime(e.to_string()))?
        .with_name("vigil-embed")
        .with_telemetry(false)
        .build()
        .map_err(|e| runtime(e.to_string()))?;
    *slot = Some(env.clone());
    Ok(env)
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => EmbedError::MissingFile { path },
        _ => EmbedError::Io { path, source },
    })
}

/// all-MiniLM-L6-v2 on the CPU. `Send + Sync`: calls from several threads
/// take turns on the one ONNX Runtime session (which uses every core itself).
pub struct Embedder {
    model: Mutex<TextEmbedding>,
    model_id: String,
    sub_batch: usize,
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedder").field("model_id", &self.model_id).field("sub_batch", &self.sub_batch).finish()
    }
}

impl Embedder {
    /// Loads ONNX Runtime from `cfg.runtime_lib` and the model from
    /// `cfg.model_dir`. Missing files are [`EmbedError::MissingFile`] naming
    /// the path; nothing is downloaded. The first runtime library loaded in a
    /// process is the one every later `Embedder` uses.
    pub fn load(cfg: &EmbedConfig) -> Result<Self, EmbedError> {
        let dir = &cfg.model_dir;
        // Read every model file before touching the runtime, so a missing
        // model names its file even when the runtime is missing too.
        let onnx_file = read(dir, "model.onnx")?;
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read(dir, "tokenizer.json")?,
            config_file: read(dir, "config.json")?,
            special_tokens_map_file: read(dir, "special_tokens_map.json")?,
            tokenizer_config_file: read(dir, "tokenizer_config.json")?,
        };
        let variant = match read(dir, "VARIANT") {
            Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
            Err(EmbedError::MissingFile { .. }) => "onnx".to_string(),
            Err(e) => return Err(e),
        };
        let digest = Sha256::digest(&onnx_file);
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let model_id = format!("{MODEL_NAME}/{variant}@{hex}");

        let env = environment(&cfg.runtime_lib)?;
        let model = UserDefinedEmbeddingModel::new(onnx_file, tokenizer_files).with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::new()
            .with_environment(env)
            .with_max_length(MAX_LENGTH)
            .with_intra_threads(cfg.threads.max(1))
            // Two cores: spinning threads steal the CPU the other one needs.
            .with_session_config("session.intra_op.allow_spinning", "0")
            .with_session_config("session.inter_op.allow_spinning", "0");
        let model = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|e| EmbedError::Model { path: dir.clone(), message: e.to_string() })?;
        Ok(Embedder { model: Mutex::new(model), model_id, sub_batch: cfg.sub_batch.max(1) })
    }

    /// Names the model and the exact file (variant and the first 8 hex digits
    /// of `model.onnx`'s sha256), e.g. `all-MiniLM-L6-v2/onnx-fp32@6b195261`.
    /// Stored with every vector: vectors from different ids are not comparable.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// One L2-normalised [`DIM`]-dimensional vector per text, in input order.
    /// Texts are sorted by length and embedded in sub-batches, so little time
    /// goes on padding, and memory stays small.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.sub_batch) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vectors = self.run(&batch)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// All texts in one model call, unsorted: the baseline [`Embedder::embed`]
    /// is measured against.
    pub fn embed_naive(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(texts)
    }

    fn run(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut model = self.model.lock().unwrap_or_else(|e| e.into_inner());
        let mut vectors = model.embed(texts, Some(texts.len())).map_err(|e| EmbedError::Inference(e.to_string()))?;
        drop(model);
        if vectors.len() != texts.len() {
            return Err(EmbedError::Inference(format!("{} vectors for {} texts", vectors.len(), texts.len())));
        }
        for v in &mut vectors {
            if v.len() != DIM {
                return Err(EmbedError::Inference(format!("model returned {} dimensions, expected {DIM}", v.len())));
            }
            l2_normalize(v);
        }
        Ok(vectors)
    }
}

fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
