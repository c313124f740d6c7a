//! What goes on the wire: an [`Envelope`] is one NATS message (subject,
//! `Nats-Msg-Id`, whether it is an NDJSON batch, how many events it holds,
//! the payload), and the [`Batcher`] groups telemetry of one kind into NDJSON
//! envelopes by count, age and size. Envelopes are also what the spool keeps,
//! so a spooled message is re-sent byte for byte with the same id.
//!
//! The format follows `docs/events.md` ("Transport") and the server's own
//! publisher (`ingest/src/publish.rs`): one event per message carries the
//! event id as `Nats-Msg-Id`; a batch carries `Content-Type:
//! application/x-ndjson` and the id `<first event id>+<count>`.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use vigil_event::{Event, Kind};

/// The `Content-Type` of a message holding one event per line.
pub const NDJSON: &str = "application/x-ndjson";

/// Subject prefix events are published under; the kind is the last token.
pub const SUBJECT_PREFIX: &str = "vigil.events.";

/// Largest batch payload built: NATS refuses payloads over its
/// `max_payload` (1 MiB by default), and the server's publisher closes a
/// batch at the same size.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Subject events of `kind` are published on.
pub fn subject(kind: Kind) -> String {
    format!("{SUBJECT_PREFIX}{}", kind.as_str())
}

/// One NATS message ready to publish (or spooled, waiting to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `vigil.events.<kind>`; published as `vigil.events.<kind>.<agent id>`
    /// (the agent id is added at publish time, so a spool written by an
    /// earlier version is published under this agent's identity too).
    pub subject: String,
    /// The `Nats-Msg-Id` header: JetStream drops a re-publish with the same id
    /// inside the stream's duplicate window.
    pub msg_id: String,
    /// Whether the payload is NDJSON (sent with `Content-Type: application/x-ndjson`).
    pub ndjson: bool,
    /// Events in the payload (1 unless `ndjson`).
    pub events: u32,
    pub payload: Bytes,
}

impl Envelope {
    /// One event in one message, its id as the message id.
    pub fn single(event: &Event) -> Result<Envelope, serde_json::Error> {
        Ok(Envelope {
            subject: subject(event.kind),
            msg_id: event.id.to_string(),
            ndjson: false,
            events: 1,
            payload: Bytes::from(serde_json::to_vec(event)?),
        })
    }
}

/// A batch being filled for one kind.
#[derive(Debug)]
struct Pending {
    first: String,
    count: u32,
    body: Vec<u8>,
    deadline: Instant,
}

impl Pending {
    fn into_envelope(self, kind: Kind) -> Envelope {
        Envelope {
            subject: subject(kind),
            msg_id: format!("{}+{}", self.first, self.count),
            ndjson: true,
            events: self.count,
            payload: Bytes::from(self.body),
        }
    }
}

/// Groups events per kind into NDJSON envelopes of up to `max_events` events
/// (and [`MAX_BATCH_BYTES`]), each closed at the latest `max_delay` after its
/// first event arrived. With `max_events <= 1` every event is its own
/// single-event message.
#[derive(Debug)]
pub struct Batcher {
    max_events: u32,
    max_delay: Duration,
    pending: HashMap<Kind, Pending>,
}

impl Batcher {
    pub fn new(max_events: usize, max_delay: Duration) -> Self {
        Batcher { max_events: u32::try_from(max_events).unwrap_or(u32::MAX), max_delay, pending: HashMap::new() }
    }

    /// Adds `event`; returns the envelopes it completed (zero, one, or two
    /// when the event would have pushed a batch over the byte limit and
    /// closed a full one by itself).
    pub fn push(&mut self, event: &Event) -> Result<Vec<Envelope>, serde_json::Error> {
        if self.max_events <= 1 {
            return Ok(vec![Envelope::single(event)?]);
        }
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut out = Vec::new();
        let kind = event.kind;
        if self.pending.get(&kind).is_some_and(|p| p.body.len() + line.len() > MAX_BATCH_BYTES) {
            if let Some(full) = self.pending.remove(&kind) {
                out.push(full.into_envelope(kind));
            }
        }
        let max_delay = self.max_delay;
        let p = self.pending.entry(kind).or_insert_with(|| Pending {
            first: event.id.to_string(),
            count: 0,
            body: Vec::with_capacity(line.len() * 8),
            deadline: Instant::now() + max_delay,
        });
        p.body.extend_from_slice(&line);
        p.count += 1;
        if p.count >= self.max_events || p.body.len() >= MAX_BATCH_BYTES {
            if let Some(full) = self.pending.remove(&kind) {
                out.push(full.into_envelope(kind));
            }
        }
        Ok(out)
    }

    /// When the oldest open batch is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Closes the batches due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Envelope> {
        let due: Vec<Kind> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| *k).collect();
        due.into_iter().filter_map(|k| self.pending.remove(&k).map(|p| p.into_envelope(k))).collect()
    }

    /// Closes every open batch.
    pub fn take_all(&mut self) -> Vec<Envelope> {
        self.pending.drain().map(|(k, p)| p.into_envelope(k)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn ev(kind: Kind, n: u32) -> Event {
        Event::new(kind, "test", Utc::now(), &n.to_le_bytes())
    }

    #[test]
    fn batches_close_at_count_and_carry_first_id_and_count() {
        let mut b = Batcher::new(3, Duration::from_secs(60));
        let events: Vec<Event> = (0..3).map(|n| ev(Kind::Process, n)).collect();
        assert!(b.push(&events[0]).unwrap().is_empty());
        assert!(b.push(&ev(Kind::Network, 9)).unwrap().is_empty());
        assert!(b.push(&events[1]).unwrap().is_empty());
        let out = b.push(&events[2]).unwrap();
        assert_eq!(out.len(), 1);
        let env = &out[0];
        assert!(env.ndjson);
        assert_eq!(env.events, 3);
        assert_eq!(env.subject, "vigil.events.process");
        assert_eq!(env.msg_id, format!("{}+3", events[0].id));
        let lines: Vec<Event> = env
            .payload
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines, events);
        let rest = b.take_all();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].subject, "vigil.events.network");
    }

    #[test]
    fn single_messages_when_batching_is_off() {
        let mut b = Batcher::new(1, Duration::from_secs(1));
        let e = ev(Kind::Metric, 1);
        let out = b.push(&e).unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out[0].ndjson);
        assert_eq!(out[0].msg_id, e.id.to_string());
    }

    #[test]
    fn byte_limit_closes_a_batch_before_it_overflows() {
        let mut b = Batcher::new(10_000, Duration::from_secs(60));
        let mut big = ev(Kind::Log, 0);
        big.message = "x".repeat(60 * 1024);
        let mut closed = Vec::new();
        for n in 0..20u32 {
            let mut e = big.clone();
            e.id = ev(Kind::Log, n).id;
            closed.extend(b.push(&e).unwrap());
        }
        assert!(!closed.is_empty());
        assert!(closed.iter().all(|e| e.payload.len() <= MAX_BATCH_BYTES));
        let total: u32 = closed.iter().chain(b.take_all().iter()).map(|e| e.events).sum();
        assert_eq!(total, 20);
    }
}
