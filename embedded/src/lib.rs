//! The single-box mode: a PostgreSQL cluster and a NATS server that `vigil up`
//! starts in its data directory when none is configured, and stops on exit.
//!
//! This crate owns finding the server binaries, creating or adopting the
//! cluster (as an unprivileged user when run as root), and free loopback
//! ports; the ingest tests and `vigil bench ingest` start NATS servers
//! of their own with it.

mod nats;
mod postgres;
mod process;

pub use nats::EmbeddedNats;
pub use postgres::{EmbeddedPostgres, EmbeddedPostgresError, DATABASE};
pub use process::free_port;
