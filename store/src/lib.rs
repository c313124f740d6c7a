//! Vigil's system of record: PostgreSQL (with TimescaleDB where available).
//!
//! This crate owns the connection pool ([`connect`], with TLS as the URL's
//! `sslmode` asks), the schema and its
//! migrations ([`migrate`]), and the typed batch writer for events
//! ([`EventWriter`]): binary `COPY` into a staging table, then one
//! `INSERT … ON CONFLICT DO NOTHING` per batch, so a re-sent batch adds nothing.
//! Also the persistence the other crates share: the event tail in ingestion
//! order ([`tail`]), retention and rollups ([`retention`]), event vectors
//! ([`vectors`]), API tokens ([`tokens`]) and dead letters ([`deadletter`]).
//!
//! It is persistence only and knows nothing of SRQL: the executor
//! (`vigil-search`) runs compiled queries over this crate's pool.

pub mod deadletter;
mod error;
mod migrate;
mod pool;
pub mod retention;
pub mod tail;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
pub mod tokens;
pub mod vectors;
mod writer;

pub use error::StoreError;
pub use migrate::{migrate, storage_mode, MigrateOptions, MigrationReport, StorageMode, TimescaleChoice};
pub use pool::{connect, connect_one, Pool};
pub use writer::{EventWriter, WriteStats};
