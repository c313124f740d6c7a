//! Vigil's server: the HTTP API (axum) and the pieces the `vigil` command
//! runs it with, including the embedded single-box mode that manages its own
//! PostgreSQL and NATS server ([`embedded`]).
//!
//! Today the API serves `/health` and a landing page; search, hunts, alerts,
//! ingest and graph endpoints arrive with their issues behind token auth.

pub mod embedded;
mod server;

pub use server::{router, serve, AppState};
