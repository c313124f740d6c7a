//! Vigil's server: the HTTP API (axum) and the pieces the `vigil` command
//! runs it with, including the embedded single-box mode that manages its own
//! PostgreSQL and NATS server ([`embedded`]).
//!
//! Today the API serves `/health`, a landing page, `/metrics` and
//! `POST /api/v1/ingest` behind token auth ([`auth`]); search, hunts, alerts
//! and graph endpoints arrive with their issues.

pub mod auth;
pub mod derived;
pub mod embedded;
mod ingest_http;
mod server;

pub use server::{router, serve, AppState};
