//! What publishing (the `publish` module) and the pipeline (the `nats`
//! module) agree on: the subjects events and dead letters travel on, and the
//! headers their messages carry. Both use this module; it uses neither.

/// Prefix of the subjects events are published on; the rest is the kind.
const EVENTS_PREFIX: &str = "vigil.events.";

/// Every event subject (the events stream and the bulk consumer's filter).
pub const ALL_EVENTS: &str = "vigil.events.>";

/// Every dead-letter subject (the dead-letter stream).
pub const ALL_DEAD_LETTERS: &str = "vigil.deadletter.>";

/// Subject the server publishes events of `kind` on. Agents publish on
/// `vigil.events.<kind>.<agent id>`: the subjects their NATS identity allows.
pub fn subject(kind: &str) -> String {
    format!("{EVENTS_PREFIX}{kind}")
}

/// The kind an event subject carries (empty when it is not an event subject).
pub fn kind_of(subject: &str) -> &str {
    let rest = subject.strip_prefix(EVENTS_PREFIX).unwrap_or("");
    rest.split('.').next().unwrap_or("")
}

/// The agent an event subject names (`vigil.events.<kind>.<agent id>`), if any.
pub fn agent_of(subject: &str) -> Option<&str> {
    subject.strip_prefix(EVENTS_PREFIX)?.split_once('.').map(|(_, agent)| agent)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_agent_subjects_carry_the_kind() {
        assert_eq!(kind_of("vigil.events.alert"), "alert");
        assert_eq!(kind_of("vigil.events.process.web-01"), "process");
        assert_eq!(agent_of("vigil.events.process.web-01"), Some("web-01"));
        assert_eq!(agent_of("vigil.events.process"), None);
        assert_eq!(kind_of("other.subject"), "");
    }
}
