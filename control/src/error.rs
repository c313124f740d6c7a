use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// What went wrong with a key, a credentials file or a signed command.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} may be read by other users (mode {mode:04o}); it holds a secret: chmod 600 it")]
    Readable { path: PathBuf, mode: u32 },
    #[error("{path} is not a usable {what}: {reason}")]
    BadFile { path: PathBuf, what: &'static str, reason: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("the command is not signed (expected {{\"order\", \"signature\"}} from the server)")]
    Unsigned,
    #[error("the command's signature does not match the server's command key")]
    BadSignature,
    #[error("the command is addressed to agent {addressed:?}, not to this agent ({this:?})")]
    WrongAgent { addressed: String, this: String },
    #[error("the command expired at {expires_at}")]
    Expired { expires_at: DateTime<Utc> },
    #[error("the command is not valid yet: issued at {issued_at}, later than this agent's clock allows")]
    NotYetValid { issued_at: DateTime<Utc> },
    #[error("the command's validity ({seconds} s) is longer than the {max} s allowed")]
    TooLong { seconds: i64, max: i64 },
    #[error("the command was issued at {issued_at}, before this agent started; a replay is refused")]
    IssuedBeforeStart { issued_at: DateTime<Utc> },
    #[error("command {id} was already executed; a replay is refused")]
    Replayed { id: String },
}

impl ControlError {
    /// The machine-readable code an agent answers a refused command with.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::Unsigned => "unsigned",
            ControlError::BadSignature => "bad_signature",
            ControlError::WrongAgent { .. } => "wrong_agent",
            ControlError::Expired { .. } | ControlError::NotYetValid { .. } | ControlError::TooLong { .. } => "expired",
            ControlError::IssuedBeforeStart { .. } | ControlError::Replayed { .. } => "replayed",
            _ => "bad_request",
        }
    }
}
