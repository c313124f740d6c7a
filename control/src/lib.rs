//! The control plane's security, shared by the server (`vigil`) and the agent.
//!
//! - [`nats`]: how a process authenticates to NATS — a credentials file
//!   (a NATS `.creds` file or an nkey seed), a user and password file, TLS
//!   (CA, client certificate, TLS required) — turned into `async_nats`
//!   connect options, and URLs with their password hidden for logs.
//! - [`identity`]: who may use which subjects. The server's identity and one
//!   nkey identity per enrolled agent, kept in a directory, and the
//!   `nats-server` authorization that enforces them: an agent publishes only
//!   its own event subjects, takes only its own commands and answers only
//!   requests it was sent.
//! - [`command`]: agent commands signed by the server (Ed25519, as an nkey)
//!   and checked by the agent: signature, addressee, validity window, replay.
//! - [`files`]: secrets on disk, written 0600 and refused when others may read them.
//!
//! No network I/O happens here; the crate reads and writes only the key and
//! credential files it is given.

pub mod command;
mod error;
pub mod files;
pub mod identity;
pub mod nats;

pub use command::{CommandOrder, CommandSigner, CommandVerifier, SignedCommand};
pub use error::ControlError;
pub use identity::{agent_inbox_prefix, IdentityDir};
pub use nats::{redact_url, NatsSecurity};
