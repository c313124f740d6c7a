//! The publisher task: takes events from the transport's channel, batches
//! telemetry, publishes to JetStream with a window of in-flight acks, and
//! falls back to the spool.
//!
//! It runs in one of two modes:
//!
//! - **live**: messages are published directly, up to `ack_window` acks in
//!   flight (when the window is full, the oldest ack is awaited first). A
//!   message is done only when its ack arrives; if the publish or the ack
//!   fails or times out, the message goes to the spool and the mode turns to
//!   spooling.
//! - **spooling**: every new message is appended to the spool (fsync'd once
//!   per burst: when the channel has nothing more waiting, or every 64
//!   appends under a steady stream). With NATS
//!   connected, after a backoff (or at once when the client reports a
//!   reconnect), the spool is drained oldest first through the same window;
//!   a failure stops the drain until the next attempt. Once the spool is
//!   empty and no drained message awaits its ack, the mode is live again.
//!
//! The mode starts as spooling, so the first drain attempt also checks the
//! stream (see [`super::TransportConfig::create_stream`]) and sends what an
//! earlier run left in the spool before anything new.
//!
//! A message sent live whose ack is lost may be stored by JetStream and also
//! spooled and sent again: it keeps its `Nats-Msg-Id`, so JetStream drops the
//! repeat inside its duplicate window (2 min) and the events table, idempotent
//! on event id, stores each event once in any case.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_nats::HeaderMap;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use vigil_event::Event;

use super::envelope::{Batcher, Envelope, NDJSON};
use super::spool::Spool;
use super::stats::TransportStats;

/// Spool appends between fsyncs at most while events keep coming.
const SYNC_EVERY: usize = 64;

type AckResult = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>;
type AckFuture = Pin<Box<dyn Future<Output = (Origin, AckResult)> + Send>>;

/// Where an in-flight message came from.
enum Origin {
    /// Published live; spooled if it fails.
    Live(Envelope),
    /// Record `idx` of spool segment `seg`.
    Spool { seg: u64, idx: u32, events: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    Spooling,
}

#[derive(Default)]
struct Drain {
    active: bool,
    /// Spool records published and awaiting their ack.
    inflight: usize,
    /// Segment the queue was loaded from.
    seg: Option<u64>,
    queue: VecDeque<(u32, Envelope)>,
}

/// Stream settings used when the agent has to create the stream itself:
/// those of the server's `ingest::nats::ensure_streams` for `VIGIL_EVENTS`.
pub(crate) fn stream_config(name: &str) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec!["vigil.events.>".into()],
        max_age: Duration::from_secs(7 * 24 * 3600),
        max_bytes: 10 * 1024 * 1024 * 1024,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

pub(crate) struct Publisher {
    pub js: jetstream::Context,
    pub client: async_nats::Client,
    pub rx: mpsc::Receiver<Event>,
    pub batcher: Batcher,
    pub spool: Spool,
    pub stats: Arc<TransportStats>,
    pub window: usize,
    pub stream: String,
    pub create_stream: bool,
    /// Appended to every subject: what this agent's NATS identity may publish.
    pub agent_id: String,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub connected: Arc<Notify>,
    pub shutdown: watch::Receiver<bool>,
}

struct Flow {
    mode: Mode,
    stream_ready: bool,
    inflight: FuturesOrdered<AckFuture>,
    drain: Drain,
    retry_at: Instant,
    backoff: Duration,
}

impl Publisher {
    /// Runs until shutdown, then flushes: queued events are batched and sent
    /// (or spooled), in-flight acks are awaited, and the spool is synced.
    pub(crate) async fn run(mut self) {
        let mut st = Flow {
            mode: Mode::Spooling,
            stream_ready: false,
            inflight: FuturesOrdered::new(),
            drain: Drain::default(),
            retry_at: Instant::now(),
            backoff: self.retry_min,
        };
        loop {
            self.update_gauges();
            let deadline = self.batcher.next_deadline();
            let can_recv = st.mode == Mode::Spooling || st.inflight.len() < self.window;
            let can_retry = st.mode == Mode::Spooling && !st.drain.active && st.drain.inflight == 0;
            let far = Instant::now() + Duration::from_secs(3600);
            let retry_at = st.retry_at;
            // Timers come before the channel so a steady stream of events cannot starve them.
            tokio::select! {
                biased;
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        break;
                    }
                }
                Some((origin, res)) = st.inflight.next(), if !st.inflight.is_empty() => {
                    self.settle(&mut st, origin, res);
                }
                _ = tokio::time::sleep_until(retry_at), if can_retry => self.try_drain(&mut st).await,
                _ = self.connected.notified(), if can_retry => {
                    st.backoff = self.retry_min;
                    st.retry_at = Instant::now();
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    for env in self.batcher.take_due(Instant::now()) {
                        self.send(&mut st, env).await;
                    }
                }
                ev = self.rx.recv(), if can_recv => match ev {
                    Some(e) => self.accept(&mut st, e).await,
                    None => break,
                },
            }
            self.pump(&mut st).await;
            // fsync once per burst of appends, and at least every SYNC_EVERY records under a steady stream.
            if self.spool.is_dirty() && (self.rx.is_empty() || self.spool.unsynced() >= SYNC_EVERY) {
                self.sync_spool();
            }
        }
        self.finish(&mut st).await;
    }

    async fn finish(&mut self, st: &mut Flow) {
        self.rx.close();
        while let Ok(e) = self.rx.try_recv() {
            self.accept(st, e).await;
        }
        for env in self.batcher.take_all() {
            self.send(st, env).await;
        }
        st.drain.active = false;
        st.drain.queue.clear();
        self.spool.set_reading(None);
        while let Some((origin, res)) = st.inflight.next().await {
            self.settle(st, origin, res);
        }
        self.sync_spool();
        self.update_gauges();
        let left = self.spool.pending();
        if left.messages > 0 {
            tracing::info!(
                messages = left.messages,
                events = left.events,
                "transport stopped; the spool keeps what is unsent"
            );
        }
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    fn update_gauges(&self) {
        let p = self.spool.pending();
        self.stats.set_spool(self.spool.bytes(), self.spool.segment_count() as u64, p.events);
        self.stats.set_connected(self.connected());
    }

    fn sync_spool(&mut self) {
        if let Err(e) = self.spool.sync() {
            tracing::error!("cannot fsync the spool: {e}");
        }
    }

    async fn accept(&mut self, st: &mut Flow, e: Event) {
        self.stats.event_in();
        let envs = if e.kind.is_security() { Envelope::single(&e).map(|env| vec![env]) } else { self.batcher.push(&e) };
        match envs {
            Ok(envs) => {
                for env in envs {
                    self.send(st, env).await;
                }
            }
            Err(err) => {
                tracing::error!(id = %e.id, "cannot encode an event: {err}");
                self.stats.rejected(1);
            }
        }
    }

    /// Publishes `env` live, or spools it.
    async fn send(&mut self, st: &mut Flow, env: Envelope) {
        if st.mode == Mode::Live && !self.connected() {
            self.enter_spooling(st, "NATS is not connected");
        }
        if st.mode == Mode::Live {
            while st.inflight.len() >= self.window {
                match st.inflight.next().await {
                    Some((origin, res)) => self.settle(st, origin, res),
                    None => break,
                }
            }
        }
        if st.mode == Mode::Live {
            match self.publish(&env).await {
                Ok(fut) => {
                    self.stats.published(env.events);
                    st.inflight.push_back(Box::pin(async move { (Origin::Live(env), fut.await) }));
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => self.reject(&env, &e),
                Err(e) => {
                    self.stats.publish_error();
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        st.stream_ready = false;
                    }
                    self.enter_spooling(st, &e.to_string());
                    self.spool_env(&env);
                }
            }
            return;
        }
        self.spool_env(&env);
    }

    async fn publish(
        &self,
        env: &Envelope,
    ) -> Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", env.msg_id.as_str());
        if env.ndjson {
            headers.insert("Content-Type", NDJSON);
        }
        let subject = format!("{}.{}", env.subject, self.agent_id);
        self.js.publish_with_headers(subject, headers, env.payload.clone()).await
    }

    fn reject(&self, env: &Envelope, e: &jetstream::context::PublishError) {
        tracing::error!(subject = %env.subject, msg_id = %env.msg_id, bytes = env.payload.len(), "message refused for good: {e}");
        self.stats.rejected(env.events);
    }

    fn spool_env(&mut self, env: &Envelope) {
        match self.spool.append(env) {
            Ok(dropped) => {
                self.stats.spooled(env.events);
                if dropped.messages > 0 {
                    self.stats.dropped(dropped.messages, dropped.events);
                }
            }
            Err(e) => {
                tracing::error!(msg_id = %env.msg_id, events = env.events, "cannot spool a message, it is lost: {e}");
                self.stats.dropped(1, u64::from(env.events));
            }
        }
    }

    fn enter_spooling(&self, st: &mut Flow, why: &str) {
        if st.mode == Mode::Live {
            tracing::warn!("JetStream unavailable ({why}); spooling to disk");
            st.mode = Mode::Spooling;
            st.retry_at = Instant::now() + st.backoff;
        }
    }

    fn stop_drain(&mut self, st: &mut Flow, why: &str) {
        if st.drain.active {
            tracing::debug!("spool drain paused ({why}); retrying in {:?}", st.backoff);
        }
        st.drain.active = false;
        st.drain.seg = None;
        st.drain.queue.clear();
        self.spool.set_reading(None);
        st.retry_at = Instant::now() + st.backoff;
        st.backoff = (st.backoff * 2).min(self.retry_max);
    }

    fn settle(&mut self, st: &mut Flow, origin: Origin, res: AckResult) {
        match (origin, res) {
            (Origin::Live(env), Ok(ack)) => self.stats.acked(env.events, ack.duplicate),
            (Origin::Live(env), Err(e)) => {
                self.stats.publish_error();
                if e.kind() == PublishErrorKind::StreamNotFound {
                    st.stream_ready = false;
                }
                self.enter_spooling(st, &e.to_string());
                self.spool_env(&env);
            }
            (Origin::Spool { seg, idx, events }, res) => {
                st.drain.inflight = st.drain.inflight.saturating_sub(1);
                let ok = res.is_ok();
                match &res {
                    Ok(ack) => {
                        self.stats.acked(events, ack.duplicate);
                        self.stats.drained(events);
                        st.backoff = self.retry_min;
                    }
                    Err(e) => {
                        self.stats.publish_error();
                        if e.kind() == PublishErrorKind::StreamNotFound {
                            st.stream_ready = false;
                        }
                        if st.drain.active {
                            self.stop_drain(st, &e.to_string());
                        }
                    }
                }
                if let Err(e) = self.spool.settle(seg, idx, ok) {
                    tracing::error!("cannot delete a drained spool segment: {e}");
                }
            }
        }
    }

    /// One drain attempt: needs a connection and the stream.
    async fn try_drain(&mut self, st: &mut Flow) {
        if !self.connected() {
            st.retry_at = Instant::now() + st.backoff;
            st.backoff = (st.backoff * 2).min(self.retry_max);
            return;
        }
        if !st.stream_ready {
            match self.ensure_stream().await {
                Ok(()) => st.stream_ready = true,
                Err(e) => {
                    tracing::warn!("JetStream stream {} is not usable yet: {e}", self.stream);
                    st.retry_at = Instant::now() + st.backoff;
                    st.backoff = (st.backoff * 2).min(self.retry_max);
                    return;
                }
            }
        }
        st.drain = Drain { active: true, ..Drain::default() };
    }

    /// Finds the stream, creating it (with the server's settings) when
    /// missing and allowed to.
    async fn ensure_stream(&self) -> Result<(), String> {
        let first = match self.js.get_stream(&self.stream).await {
            Ok(_) => return Ok(()),
            Err(e) => e.to_string(),
        };
        if !self.create_stream {
            return Err(first);
        }
        match self.js.create_stream(stream_config(&self.stream)).await {
            Ok(_) => {
                tracing::info!("created JetStream stream {} (the server had not yet)", self.stream);
                Ok(())
            }
            // Created meanwhile by the server?
            Err(e) => self.js.get_stream(&self.stream).await.map(|_| ()).map_err(|_| e.to_string()),
        }
    }

    /// Publishes spool records while draining and the window has room.
    async fn pump(&mut self, st: &mut Flow) {
        while st.drain.active && st.inflight.len() < self.window {
            if st.drain.queue.is_empty() && !self.load_next(st) {
                if st.drain.inflight == 0 {
                    st.drain.active = false;
                    self.spool.set_reading(None);
                    if self.spool.is_empty() {
                        if st.mode == Mode::Spooling {
                            tracing::info!("spool drained; publishing live");
                        }
                        st.mode = Mode::Live;
                        st.backoff = self.retry_min;
                    } else {
                        st.retry_at = Instant::now() + st.backoff;
                    }
                }
                return;
            }
            if !self.connected() {
                self.stop_drain(st, "NATS is not connected");
                return;
            }
            let (Some(seg), Some((idx, env))) = (st.drain.seg, st.drain.queue.pop_front()) else { continue };
            match self.publish(&env).await {
                Ok(fut) => {
                    self.stats.published(env.events);
                    self.spool.sent(seg);
                    st.drain.inflight += 1;
                    let events = env.events;
                    st.inflight.push_back(Box::pin(async move { (Origin::Spool { seg, idx, events }, fut.await) }));
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    self.reject(&env, &e);
                    self.spool.sent(seg);
                    if let Err(e) = self.spool.settle(seg, idx, true) {
                        tracing::error!("cannot delete a drained spool segment: {e}");
                    }
                }
                Err(e) => {
                    self.stats.publish_error();
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        st.stream_ready = false;
                    }
                    self.stop_drain(st, &e.to_string());
                    return;
                }
            }
        }
    }

    /// Loads the next segment to drain (sealing the active one when the
    /// sealed ones are done); false when there is nothing more.
    fn load_next(&mut self, st: &mut Flow) -> bool {
        loop {
            let next = match self.spool.next_sealed(st.drain.seg) {
                Some(id) => Some(id),
                None => match self.spool.seal_active() {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!("cannot seal the spool segment: {e}");
                        None
                    }
                },
            };
            let Some(id) = next else { return false };
            st.drain.seg = Some(id);
            match self.spool.load(id) {
                Ok(loaded) => {
                    if loaded.lost.messages > 0 {
                        tracing::error!(
                            segment = id,
                            messages = loaded.lost.messages,
                            "spool records unreadable; lost"
                        );
                        self.stats.dropped(loaded.lost.messages, loaded.lost.events);
                        self.stats.corrupt(1);
                    }
                    if loaded.records.is_empty() {
                        continue;
                    }
                    st.drain.queue = loaded.records.into();
                    return true;
                }
                Err(e) => {
                    let lost = self.spool.discard(id);
                    tracing::error!(
                        segment = id,
                        messages = lost.messages,
                        "cannot read a spool segment ({e}); discarded"
                    );
                    self.stats.dropped(lost.messages, lost.events);
                    self.stats.corrupt(1);
                    continue;
                }
            }
        }
    }
}
