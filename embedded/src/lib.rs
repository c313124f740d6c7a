//! The single-box mode: a PostgreSQL cluster and a NATS server that `vigil up`
//! starts in its data directory when none is configured, and stops on exit.
//!
//! This crate owns finding the server binaries, creating or adopting the
//! cluster (as an unprivileged user when run as root, with SCRAM passwords
//! for its superuser and the application's unprivileged role), and free loopback
//! ports; the ingest tests and `vigil bench ingest` start NATS servers
//! of their own with it.

mod nats;
mod postgres;
mod process;
mod secret;

pub use nats::EmbeddedNats;
pub use postgres::{EmbeddedPostgres, EmbeddedPostgresError, Options, ServerTls, APP_ROLE, DATABASE};
pub use process::free_port;
