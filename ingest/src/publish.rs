//! Publishing events to JetStream the way producers should: one subject per
//! kind, `Nats-Msg-Id` set to the event id (JetStream drops re-publishes
//! inside its duplicate window), and a window of in-flight acks.

use std::collections::VecDeque;

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::HeaderMap;
use vigil_event::Event;

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

/// Publishes raw bytes on `vigil.events.<kind>` with a message id.
pub async fn publish_raw(
    js: &jetstream::Context,
    kind: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> Result<PublishAckFuture, PublishError> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(crate::nats::subject(kind), headers, payload.into())
        .await
        .map_err(|e| PublishError(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
#[error("publishing to JetStream failed: {0}")]
pub struct PublishError(pub String);
