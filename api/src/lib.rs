//! Vigil's server: the HTTP API (axum) and the pieces the `vigil` command
//! runs it with, including the start-up path shared by `vigil serve` and `vigil
//! up` ([`start`]) and the typed configuration ([`config`]).
//!
//! The API (docs/api.md; OpenAPI at `/api/openapi.json`, [`openapi`]):
//! search, explain, fields and a live tail over SRQL; hunts and alerts;
//! ingest; the graph; agents, their commands and vulnerabilities; `/health`
//! and `/metrics`. Every endpoint but `/health` takes a token whose role
//! limits what it may do ([`auth`]), is rate-limited per token ([`rate`]) and
//! leaves a row in the audit log ([`audit`]). The server also runs the
//! background work: ingest from NATS, the derived indexes ([`derived`]),
//! scheduled hunts and retention ([`maintenance`]).

mod agents_http;
mod alerts_http;
pub mod audit;
pub mod auth;
pub mod config;
pub mod derived;
pub mod error;
mod graph_http;
mod hunts_http;
mod ingest_http;
mod inventory_http;
pub mod maintenance;
pub mod openapi;
pub mod rate;
mod search_http;
mod server;
mod session_http;
mod shared;
pub mod sigma_http;
pub mod start;
mod state;
mod status_http;
mod tail_http;
mod tail_limit;
pub mod web;

pub use server::{router, serve};
pub use start::metrics_registry;
pub use state::{AppState, Backing};
