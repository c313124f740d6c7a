//! Vigil's server: the HTTP API (axum) and the pieces the `vigil` command
//! runs it with, including the embedded single-box mode that manages its own
//! PostgreSQL and NATS server ([`embedded`]).
//!
//! Today the API serves `/health`, a landing page, `/metrics`,
//! `POST /api/v1/ingest` and `GET /api/v1/graph/…` (blast radius, paths,
//! neighbourhood) behind token auth ([`auth`]); search, hunts and alerts
//! endpoints arrive with their issues.

mod agents_http;
pub mod auth;
pub mod derived;
pub mod embedded;
mod graph_http;
mod ingest_http;
mod server;

pub use server::{router, serve, AppState};
