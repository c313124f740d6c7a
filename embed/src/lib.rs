//! Sentence embeddings for semantic hunting (`| SIMILAR_TO(...)`): a local
//! ONNX model run on the CPU, with batching, selective vectorization and a
//! cache keyed by normalised text. Nothing is downloaded at build or run time.
//!
//! The model runtime arrives with the search issue; the crate exists now so
//! the workspace's data flow (ingest → embed → store) is in place.
