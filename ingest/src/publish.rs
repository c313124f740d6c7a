//! Publishing events to JetStream the way producers should: one subject per
//! kind, `Nats-Msg-Id` set to the event id (JetStream drops re-publishes
//! inside its duplicate window), and a window of in-flight acks. Telemetry
//! may be batched: many events of one kind in one NDJSON message, which
//! costs the broker one store, one delivery and one ack for all of them.

use std::collections::VecDeque;

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::HeaderMap;
use vigil_event::Event;

pub use crate::subjects::NDJSON;
use crate::subjects::{subject, CONTENT_TYPE, MSG_ID};

/// Publishes `events`, keeping up to `window` acks in flight; returns how
/// many JetStream acknowledged (duplicates it dropped included).
pub async fn publish_events(
    js: &jetstream::Context,
    events: impl IntoIterator<Item = Event>,
    window: usize,
) -> Result<u64, PublishError> {
    let mut inflight: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
    let mut acked = 0;
    for e in events {
        let payload = serde_json::to_vec(&e).map_err(|e| PublishError(e.to_string()))?;
        inflight.push_back(publish_raw(js, e.kind.as_str(), &e.id.to_string(), payload).await?);
        if inflight.len() >= window.max(1) {
            if let Some(f) = inflight.pop_front() {
                f.await.map_err(|e| PublishError(e.to_string()))?;
                acked += 1;
            }
        }
    }
    for f in inflight {
        f.await.map_err(|e| PublishError(e.to_string()))?;
        acked += 1;
    }
    Ok(acked)
}

/// Largest batch message built (NATS refuses payloads over its `max_payload`, 1 MiB by default).
const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Publishes `events` as NDJSON messages of up to `per_message` events of one
/// kind each (1 publishes one message per event). A batch's `Nats-Msg-Id` is
/// its first event's id and its size, so re-publishing the same input is
/// dropped by JetStream, and the table drops repeats by event id anyway.
pub async fn publish_batched(
    js: &jetstream::Context,
    events: impl IntoIterator<Item = Event>,
    window: usize,
    per_message: usize,
) -> Result<u64, PublishError> {
    if per_message <= 1 {
        return publish_events(js, events, window).await;
    }
    struct Pending {
        first: String,
        count: usize,
        body: Vec<u8>,
    }
    let mut pending: std::collections::HashMap<vigil_event::Kind, Pending> = std::collections::HashMap::new();
    let mut inflight: VecDeque<(PublishAckFuture, u64)> = VecDeque::with_capacity(window);
    let mut acked = 0;
    let mut send = async |kind: vigil_event::Kind, p: Pending| -> Result<(), PublishError> {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, format!("{}+{}", p.first, p.count).as_str());
        headers.insert(CONTENT_TYPE, NDJSON);
        let fut = js
            .publish_with_headers(subject(kind.as_str()), headers, p.body.into())
            .await
            .map_err(|e| PublishError(e.to_string()))?;
        inflight.push_back((fut, p.count as u64));
        while inflight.len() >= window.max(1) {
            if let Some((f, n)) = inflight.pop_front() {
                f.await.map_err(|e| PublishError(e.to_string()))?;
                acked += n;
            }
        }
        Ok(())
    };
    for e in events {
        let p =
            pending.entry(e.kind).or_insert_with(|| Pending { first: e.id.to_string(), count: 0, body: Vec::new() });
        serde_json::to_writer(&mut p.body, &e).map_err(|e| PublishError(e.to_string()))?;
        p.body.push(b'\n');
        p.count += 1;
        if p.count >= per_message || p.body.len() >= MAX_BATCH_BYTES {
            if let Some(full) = pending.remove(&e.kind) {
                send(e.kind, full).await?;
            }
        }
    }
    for (kind, p) in pending.drain() {
        send(kind, p).await?;
    }
    for (f, n) in inflight {
        f.await.map_err(|e| PublishError(e.to_string()))?;
        acked += n;
    }
    Ok(acked)
}

/// Publishes raw bytes on `vigil.events.<kind>` with a message id.
pub async fn publish_raw(
    js: &jetstream::Context,
    kind: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> Result<PublishAckFuture, PublishError> {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, msg_id);
    js.publish_with_headers(subject(kind), headers, payload.into()).await.map_err(|e| PublishError(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
#[error("publishing to JetStream failed: {0}")]
pub struct PublishError(pub String);
