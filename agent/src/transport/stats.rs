//! The transport's counters and gauges ([`TransportStats`]), shared by the
//! publisher, heartbeat and command tasks, read as a [`StatsSnapshot`] or
//! rendered in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters; cheap to bump from any task.
#[derive(Debug, Default)]
pub struct TransportStats {
    events_in: AtomicU64,
    published_messages: AtomicU64,
    published_events: AtomicU64,
    acked_messages: AtomicU64,
    acked_events: AtomicU64,
    duplicates: AtomicU64,
    spooled_messages: AtomicU64,
    spooled_events: AtomicU64,
    spool_drained_messages: AtomicU64,
    spool_drained_events: AtomicU64,
    spool_dropped_messages: AtomicU64,
    spool_dropped_events: AtomicU64,
    spool_corrupt: AtomicU64,
    publish_errors: AtomicU64,
    rejected_events: AtomicU64,
    commands: AtomicU64,
    command_errors: AtomicU64,
    heartbeats: AtomicU64,
    spool_bytes: AtomicU64,
    spool_segments: AtomicU64,
    spool_pending_events: AtomicU64,
    connected: AtomicU64,
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

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl TransportStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            events_in: g(&self.events_in),
            published_messages: g(&self.published_messages),
            published_events: g(&self.published_events),
            acked_messages: g(&self.acked_messages),
            acked_events: g(&self.acked_events),
            duplicates: g(&self.duplicates),
            spooled_messages: g(&self.spooled_messages),
            spooled_events: g(&self.spooled_events),
            spool_drained_messages: g(&self.spool_drained_messages),
            spool_drained_events: g(&self.spool_drained_events),
            spool_dropped_messages: g(&self.spool_dropped_messages),
            spool_dropped_events: g(&self.spool_dropped_events),
            spool_corrupt: g(&self.spool_corrupt),
            publish_errors: g(&self.publish_errors),
            rejected_events: g(&self.rejected_events),
            commands: g(&self.commands),
            command_errors: g(&self.command_errors),
            heartbeats: g(&self.heartbeats),
            spool_bytes: g(&self.spool_bytes),
            spool_segments: g(&self.spool_segments),
            spool_pending_events: g(&self.spool_pending_events),
            connected: g(&self.connected),
        }
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let s = self.snapshot();
        let rows: [(&str, &str, &str, u64); 22] = [
            ("events_received_total", "counter", "Events handed to the transport.", s.events_in),
            ("published_messages_total", "counter", "Messages handed to NATS.", s.published_messages),
            ("published_events_total", "counter", "Events in messages handed to NATS.", s.published_events),
            ("acked_messages_total", "counter", "Messages acknowledged by JetStream.", s.acked_messages),
            ("acked_events_total", "counter", "Events in messages acknowledged by JetStream.", s.acked_events),
            (
                "duplicates_total",
                "counter",
                "Acknowledged messages JetStream dropped as repeats (same Nats-Msg-Id).",
                s.duplicates,
            ),
            ("spooled_messages_total", "counter", "Messages written to the on-disk spool.", s.spooled_messages),
            ("spooled_events_total", "counter", "Events written to the on-disk spool.", s.spooled_events),
            (
                "spool_drained_messages_total",
                "counter",
                "Spooled messages later acknowledged.",
                s.spool_drained_messages,
            ),
            ("spool_drained_events_total", "counter", "Spooled events later acknowledged.", s.spool_drained_events),
            (
                "spool_dropped_messages_total",
                "counter",
                "Spooled messages lost to the size bound or a disk error.",
                s.spool_dropped_messages,
            ),
            (
                "spool_dropped_events_total",
                "counter",
                "Spooled events lost to the size bound or a disk error.",
                s.spool_dropped_events,
            ),
            ("spool_corrupt_total", "counter", "Spool segments found with an unreadable tail.", s.spool_corrupt),
            ("publish_errors_total", "counter", "Publishes or acks that failed or timed out.", s.publish_errors),
            ("rejected_events_total", "counter", "Events refused for good (over max_payload).", s.rejected_events),
            ("commands_total", "counter", "Command requests received.", s.commands),
            ("command_errors_total", "counter", "Command requests answered with an error.", s.command_errors),
            ("heartbeats_total", "counter", "Heartbeat events emitted.", s.heartbeats),
            ("spool_bytes", "gauge", "Bytes of spool segment files.", s.spool_bytes),
            ("spool_segments", "gauge", "Spool segment files.", s.spool_segments),
            ("spool_pending_events", "gauge", "Events waiting in the spool.", s.spool_pending_events),
            ("nats_connected", "gauge", "Whether the NATS connection is up (1) or not (0).", s.connected),
        ];
        let mut out = String::with_capacity(rows.len() * 160);
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP vigil_agent_transport_{name} {help}");
            let _ = writeln!(out, "# TYPE vigil_agent_transport_{name} {kind}");
            let _ = writeln!(out, "vigil_agent_transport_{name} {value}");
        }
        out
    }

    pub(crate) fn event_in(&self) {
        add(&self.events_in, 1);
    }
    pub(crate) fn published(&self, events: u32) {
        add(&self.published_messages, 1);
        add(&self.published_events, u64::from(events));
    }
    pub(crate) fn acked(&self, events: u32, duplicate: bool) {
        add(&self.acked_messages, 1);
        add(&self.acked_events, u64::from(events));
        if duplicate {
            add(&self.duplicates, 1);
        }
    }
    pub(crate) fn spooled(&self, events: u32) {
        add(&self.spooled_messages, 1);
        add(&self.spooled_events, u64::from(events));
    }
    pub(crate) fn drained(&self, events: u32) {
        add(&self.spool_drained_messages, 1);
        add(&self.spool_drained_events, u64::from(events));
    }
    pub(crate) fn dropped(&self, messages: u64, events: u64) {
        add(&self.spool_dropped_messages, messages);
        add(&self.spool_dropped_events, events);
    }
    pub(crate) fn corrupt(&self, n: u64) {
        add(&self.spool_corrupt, n);
    }
    pub(crate) fn publish_error(&self) {
        add(&self.publish_errors, 1);
    }
    pub(crate) fn rejected(&self, events: u32) {
        add(&self.rejected_events, u64::from(events));
    }
    pub(crate) fn command(&self, ok: bool) {
        add(&self.commands, 1);
        if !ok {
            add(&self.command_errors, 1);
        }
    }
    pub(crate) fn heartbeat(&self) {
        add(&self.heartbeats, 1);
    }
    pub(crate) fn set_spool(&self, bytes: u64, segments: u64, pending_events: u64) {
        self.spool_bytes.store(bytes, Ordering::Relaxed);
        self.spool_segments.store(segments, Ordering::Relaxed);
        self.spool_pending_events.store(pending_events, Ordering::Relaxed);
    }
    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(u64::from(up), Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_every_counter_once() {
        let s = TransportStats::default();
        s.published(100);
        s.acked(100, false);
        s.dropped(2, 20);
        let text = s.render_prometheus();
        assert!(text.contains("vigil_agent_transport_published_events_total 100\n"));
        assert!(text.contains("vigil_agent_transport_spool_dropped_events_total 20\n"));
        assert!(text.contains("# TYPE vigil_agent_transport_spool_bytes gauge\n"));
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 22);
    }
}
