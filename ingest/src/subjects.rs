//! What publishing (the `publish` module) and the pipeline (the `nats`
//! module) agree on: the subjects events and dead letters travel on, and the
//! headers their messages carry. Both use this module; it uses neither.

/// Prefix of the subjects events are published on; the rest is the kind.
const EVENTS_PREFIX: &str = "vigil.events.";

/// Every event subject (the events stream and the bulk consumer's filter).
pub const ALL_EVENTS: &str = "vigil.events.>";

/// Every dead-letter subject (the dead-letter stream).
pub const ALL_DEAD_LETTERS: &str = "vigil.deadletter.>";

/// Subject events of `kind` are published on.
pub fn subject(kind: &str) -> String {
    format!("{EVENTS_PREFIX}{kind}")
}

/// The kind an event subject carries (empty when it is not an event subject).
pub fn kind_of(subject: &str) -> &str {
    subject.strip_prefix(EVENTS_PREFIX).unwrap_or("")
}

/// Subject refused events of `kind` are re-published on.
pub fn dead_letter_subject(kind: &str) -> String {
    format!("vigil.deadletter.{kind}")
}

/// JetStream drops a message whose id it saw inside its duplicate window.
pub const MSG_ID: &str = "Nats-Msg-Id";

pub const CONTENT_TYPE: &str = "Content-Type";

/// The `Content-Type` of a message holding one event per line.
pub const NDJSON: &str = "application/x-ndjson";
