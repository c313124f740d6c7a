//! The transport's counters and gauges ([`TransportStats`]), shared by the
//! publisher, heartbeat and command tasks, read as a [`StatsSnapshot`] or
//! from the agent's metrics registry ([`TransportStats::register`]).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Live counters; cheap to bump from any task.
#[derive(Debug, Clone, Default)]
pub struct TransportStats {
    events_in: Counter,
    published_messages: Counter,
    published_events: Counter,
    acked_messages: Counter,
    acked_events: Counter,
    duplicates: Counter,
    spooled_messages: Counter,
    spooled_events: Counter,
    spool_drained_messages: Counter,
    spool_drained_events: Counter,
    spool_dropped_messages: Counter,
    spool_dropped_events: Counter,
    spool_corrupt: Counter,
    publish_errors: Counter,
    rejected_events: Counter,
    commands: Counter,
    command_errors: Counter,
    heartbeats: Counter,
    spool_bytes: Gauge<u64, AtomicU64>,
    spool_segments: Gauge<u64, AtomicU64>,
    spool_pending_events: Gauge<u64, AtomicU64>,
    connected: Gauge<u64, AtomicU64>,
}

/// A copy of every counter at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Events handed to the transport.
    pub events_in: u64,
    /// Messages (and the events in them) handed to NATS, live or from the spool.
    pub published_messages: u64,
    pub published_events: u64,
    /// Messages JetStream acknowledged: only these are done.
    pub acked_messages: u64,
    pub acked_events: u64,
    /// Acknowledged messages JetStream had already stored (same `Nats-Msg-Id`) and dropped.
    pub duplicates: u64,
    /// Messages written to the spool.
    pub spooled_messages: u64,
    pub spooled_events: u64,
    /// Spooled messages later acknowledged.
    pub spool_drained_messages: u64,
    pub spool_drained_events: u64,
    /// Spooled messages lost: dropped by the size bound or not writable to disk.
    pub spool_dropped_messages: u64,
    pub spool_dropped_events: u64,
    /// Spool segments found with an unreadable tail on start.
    pub spool_corrupt: u64,
    /// Publishes or acks that failed or timed out (the message was spooled).
    pub publish_errors: u64,
    /// Events refused for good (a message over NATS's `max_payload`).
    pub rejected_events: u64,
    /// Command requests received, and those answered with an error.
    pub commands: u64,
    pub command_errors: u64,
    pub heartbeats: u64,
    /// Gauges: bytes and segment files of the spool, events waiting in it, NATS connected (0/1).
    pub spool_bytes: u64,
    pub spool_segments: u64,
    pub spool_pending_events: u64,
    pub connected: u64,
}

impl TransportStats {
    /// Counters registered in `registry` as `<prefix>_agent_transport_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let s = Self::default();
        let r = registry.sub_registry_with_prefix("agent_transport");
        for (name, help, c) in [
            ("events_received", "Events handed to the transport", &s.events_in),
            ("published_messages", "Messages handed to NATS", &s.published_messages),
            ("published_events", "Events in messages handed to NATS", &s.published_events),
            ("acked_messages", "Messages acknowledged by JetStream", &s.acked_messages),
            ("acked_events", "Events in messages acknowledged by JetStream", &s.acked_events),
            ("duplicates", "Acknowledged messages JetStream dropped as repeats (same Nats-Msg-Id)", &s.duplicates),
            ("spooled_messages", "Messages written to the on-disk spool", &s.spooled_messages),
            ("spooled_events", "Events written to the on-disk spool", &s.spooled_events),
            ("spool_drained_messages", "Spooled messages later acknowledged", &s.spool_drained_messages),
            ("spool_drained_events", "Spooled events later acknowledged", &s.spool_drained_events),
            (
                "spool_dropped_messages",
                "Spooled messages lost to the size bound or a disk error",
                &s.spool_dropped_messages,
            ),
            ("spool_dropped_events", "Spooled events lost to the size bound or a disk error", &s.spool_dropped_events),
            ("spool_corrupt", "Spool segments found with an unreadable tail", &s.spool_corrupt),
            ("publish_errors", "Publishes or acks that failed or timed out", &s.publish_errors),
            ("rejected_events", "Events refused for good (over max_payload)", &s.rejected_events),
            ("commands", "Command requests received", &s.commands),
            ("command_errors", "Command requests answered with an error", &s.command_errors),
            ("heartbeats", "Heartbeat events emitted", &s.heartbeats),
        ] {
            r.register(name, help, c.clone());
        }
        for (name, help, g) in [
            ("spool_bytes", "Bytes of spool segment files", &s.spool_bytes),
            ("spool_segments", "Spool segment files", &s.spool_segments),
            ("spool_pending_events", "Events waiting in the spool", &s.spool_pending_events),
            ("nats_connected", "Whether the NATS connection is up (1) or not (0)", &s.connected),
        ] {
            r.register(name, help, g.clone());
        }
        s
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            events_in: self.events_in.get(),
            published_messages: self.published_messages.get(),
            published_events: self.published_events.get(),
            acked_messages: self.acked_messages.get(),
            acked_events: self.acked_events.get(),
            duplicates: self.duplicates.get(),
            spooled_messages: self.spooled_messages.get(),
            spooled_events: self.spooled_events.get(),
            spool_drained_messages: self.spool_drained_messages.get(),
            spool_drained_events: self.spool_drained_events.get(),
            spool_dropped_messages: self.spool_dropped_messages.get(),
            spool_dropped_events: self.spool_dropped_events.get(),
            spool_corrupt: self.spool_corrupt.get(),
            publish_errors: self.publish_errors.get(),
            rejected_events: self.rejected_events.get(),
            commands: self.commands.get(),
            command_errors: self.command_errors.get(),
            heartbeats: self.heartbeats.get(),
            spool_bytes: self.spool_bytes.get(),
            spool_segments: self.spool_segments.get(),
            spool_pending_events: self.spool_pending_events.get(),
            connected: self.connected.get(),
        }
    }

    pub(crate) fn event_in(&self) {
        self.events_in.inc();
    }
    pub(crate) fn published(&self, events: u32) {
        self.published_messages.inc();
        self.published_events.inc_by(u64::from(events));
    }
    pub(crate) fn acked(&self, events: u32, duplicate: bool) {
        self.acked_messages.inc();
        self.acked_events.inc_by(u64::from(events));
        if duplicate {
            self.duplicates.inc();
        }
    }
    pub(crate) fn spooled(&self, events: u32) {
        self.spooled_messages.inc();
        self.spooled_events.inc_by(u64::from(events));
    }
    pub(crate) fn drained(&self, events: u32) {
        self.spool_drained_messages.inc();
        self.spool_drained_events.inc_by(u64::from(events));
    }
    pub(crate) fn dropped(&self, messages: u64, events: u64) {
        self.spool_dropped_messages.inc_by(messages);
        self.spool_dropped_events.inc_by(events);
    }
    pub(crate) fn corrupt(&self, n: u64) {
        self.spool_corrupt.inc_by(n);
    }
    pub(crate) fn publish_error(&self) {
        self.publish_errors.inc();
    }
    pub(crate) fn rejected(&self, events: u32) {
        self.rejected_events.inc_by(u64::from(events));
    }
    pub(crate) fn command(&self, ok: bool) {
        self.commands.inc();
        if !ok {
            self.command_errors.inc();
        }
    }
    pub(crate) fn heartbeat(&self) {
        self.heartbeats.inc();
    }
    pub(crate) fn set_spool(&self, bytes: u64, segments: u64, pending_events: u64) {
        self.spool_bytes.set(bytes);
        self.spool_segments.set(segments);
        self.spool_pending_events.set(pending_events);
    }
    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.set(u64::from(up));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_every_counter_once() {
        let mut registry = Registry::with_prefix("vigil");
        let s = TransportStats::register(&mut registry);
        s.published(100);
        s.acked(100, false);
        s.dropped(2, 20);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("vigil_agent_transport_published_events_total 100\n"));
        assert!(text.contains("vigil_agent_transport_spool_dropped_events_total 20\n"));
        assert!(text.contains("# TYPE vigil_agent_transport_spool_bytes gauge\n"));
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 22);
    }
}
