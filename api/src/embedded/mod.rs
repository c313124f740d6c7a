//! The single-box mode: a PostgreSQL cluster and a NATS server that `vigil up`
//! starts in its data directory when none is configured, and stops on exit.

mod nats;
mod postgres;
mod process;

pub use nats::EmbeddedNats;
pub use postgres::{EmbeddedPostgres, EmbeddedPostgresError, DATABASE};
pub use process::free_port;
