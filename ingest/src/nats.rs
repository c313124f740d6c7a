//! The JetStream pipeline: durable pull consumers feed two lanes (alerts and
//! auth fast, everything else batched), each batch is decoded, written in one
//! transaction and acknowledged only after the commit. Refused messages go to
//! `ingest_errors` and the `vigil.deadletter.<kind>` subject with a reason.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, stream};
use async_nats::HeaderMap;
use futures_util::StreamExt;
use tokio::time::Instant;
use vigil_event::Event;
use vigil_store::deadletter::{self, DeadLetter};
use vigil_store::{EventWriter, Pool};

use crate::decode::{decode, Oldest, MAX_MESSAGE_BYTES};
use crate::metrics::Metrics;
use crate::subjects::{dead_letter_subject, kind_of, subject, ALL_DEAD_LETTERS, ALL_EVENTS, CONTENT_TYPE, NDJSON};

/// Settings for the stream, its consumers and the lanes.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// Credentials and TLS for the connection.
    pub security: vigil_control::NatsSecurity,
    /// The stream holding `vigil.events.>`.
    pub stream: String,
    /// The stream holding `vigil.deadletter.>`.
    pub deadletter_stream: String,
    /// Durable consumer names start with this.
    pub durable_prefix: String,
    pub max_age: Duration,
    pub max_bytes: i64,
    /// How long JetStream remembers `Nats-Msg-Id`s to drop re-published duplicates.
    pub duplicate_window: Duration,
    /// Unacknowledged messages come back after this long.
    pub ack_wait: Duration,
    pub fast: Lane,
    pub bulk: Lane,
    /// Events older than this are dead-lettered (`too_old`): the longest
    /// retention ([`Oldest::longest_retention`]); none unless set.
    pub oldest: Oldest,
}

/// How a lane batches.
#[derive(Debug, Clone, Copy)]
pub struct Lane {
    /// Flush when this many messages are waiting…
    pub batch: usize,
    /// …or this long after the first one arrived.
    pub flush: Duration,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            security: vigil_control::NatsSecurity::default(),
            url: url.into(),
            stream: EVENTS_STREAM.into(),
            deadletter_stream: "VIGIL_DEADLETTER".into(),
            durable_prefix: "vigil-ingest".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 10 * 1024 * 1024 * 1024,
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(60),
            fast: Lane { batch: 256, flush: Duration::from_millis(10) },
            bulk: Lane { batch: 5_000, flush: Duration::from_millis(250) },
            oldest: Oldest::Any,
        }
    }
}

/// The stream events are kept in (agents may look it up, not change it).
pub const EVENTS_STREAM: &str = "VIGIL_EVENTS";

/// Batches of one consumer being written at once (each in its own transaction).
const WRITES_IN_FLIGHT: usize = 2;

/// Bytes one pull may bring to the client.
const PULL_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Kinds the fast lane owns; the bulk consumer acknowledges and skips them.
const FAST_KINDS: [&str; 2] = ["alert", "auth"];

/// Errors that stop the pipeline from starting.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("NATS credentials or TLS settings for {url}: {source}")]
    Credentials {
        url: String,
        #[source]
        source: vigil_control::ControlError,
    },
    #[error("JetStream {what} failed: {detail}")]
    JetStream { what: String, detail: String },
}

fn js_err(what: &str) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> IngestError + '_ {
    move |e| IngestError::JetStream { what: what.into(), detail: e.to_string() }
}

/// Connects with `security`'s credentials and TLS, retrying forever in the
/// background once connected. Errors name the URL without its password.
pub async fn connect(url: &str, security: &vigil_control::NatsSecurity) -> Result<async_nats::Client, IngestError> {
    let shown = vigil_control::redact_url(url);
    let options = security
        .apply(async_nats::ConnectOptions::new())
        .await
        .map_err(|source| IngestError::Credentials { url: shown.clone(), source })?;
    options
        .name("vigil-ingest")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| IngestError::Connect { url: shown, source })
}

/// Creates the streams, or updates them to `cfg`'s limits.
pub async fn ensure_streams(js: &jetstream::Context, cfg: &NatsConfig) -> Result<stream::Stream, IngestError> {
    let events = stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![ALL_EVENTS.into()],
        max_age: cfg.max_age,
        max_bytes: cfg.max_bytes,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: cfg.duplicate_window,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let dead = stream::Config {
        name: cfg.deadletter_stream.clone(),
        subjects: vec![ALL_DEAD_LETTERS.into()],
        max_age: Duration::from_secs(30 * 24 * 3600),
        max_bytes: 1024 * 1024 * 1024,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    for config in [events.clone(), dead] {
        let name = config.name.clone();
        match js.get_stream(&name).await {
            Ok(_) => {
                js.update_stream(config).await.map_err(|e| js_err("updating the stream")(Box::new(e)))?;
            }
            Err(_) => {
                js.create_stream(config).await.map_err(|e| js_err("creating the stream")(Box::new(e)))?;
            }
        }
    }
    js.get_stream(&events.name).await.map_err(|e| js_err("opening the stream")(Box::new(e)))
}

/// Runs the pipeline until `shutdown` resolves: one task per consumer.
pub async fn run(
    cfg: NatsConfig,
    pool: Pool,
    metrics: Arc<Metrics>,
    shutdown: crate::shutdown::Shutdown,
) -> Result<(), IngestError> {
    let client = connect(&cfg.url, &cfg.security).await?;
    let js = jetstream::new(client);
    let stream = ensure_streams(&js, &cfg).await?;
    let writer = Arc::new(EventWriter::new(pool.clone()));
    let mut tasks = Vec::new();
    let consumers: Vec<(String, String, Lane, &'static str)> = FAST_KINDS
        .iter()
        .map(|k| (format!("{}-{k}", cfg.durable_prefix), subject(k), cfg.fast, "fast"))
        .chain(std::iter::once((format!("{}-bulk", cfg.durable_prefix), ALL_EVENTS.to_string(), cfg.bulk, "bulk")))
        .collect();
    for (name, filter, lane, lane_name) in consumers {
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: filter,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: cfg.ack_wait,
                    max_ack_pending: 200_000,
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| js_err("creating a consumer")(Box::new(e)))?;
        let ctx = LaneCtx {
            name: name.clone(),
            lane_name,
            lane,
            skip_fast: lane_name == "bulk",
            js: js.clone(),
            pool: pool.clone(),
            writer: writer.clone(),
            metrics: metrics.clone(),
            oldest: cfg.oldest,
        };
        tasks.push(tokio::spawn(lane_loop(Arc::new(ctx), consumer, shutdown.clone())));
    }
    shutdown.wait().await;
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

struct LaneCtx {
    name: String,
    lane_name: &'static str,
    lane: Lane,
    skip_fast: bool,
    js: jetstream::Context,
    pool: Pool,
    writer: Arc<EventWriter>,
    metrics: Arc<Metrics>,
    oldest: Oldest,
}

async fn lane_loop(
    ctx: Arc<LaneCtx>,
    consumer: jetstream::consumer::PullConsumer,
    shutdown: crate::shutdown::Shutdown,
) {
    let mut lag_at = Instant::now();
    // Up to WRITES_IN_FLIGHT batches are written while the next one is collected.
    let mut writing: std::collections::VecDeque<tokio::task::JoinHandle<bool>> = std::collections::VecDeque::new();
    'outer: while !shutdown.is_set() {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(ctx.lane.batch)
            // Batch messages hold many events: a byte cap keeps what waits in
            // the client to a few batches, well inside the ack wait.
            .max_bytes_per_batch(PULL_MAX_BYTES)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %ctx.name, "cannot pull from JetStream ({e}); retrying");
                tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = shutdown.wait() => break }
            }
        };
        loop {
            let first = tokio::select! {
                m = messages.next() => m,
                _ = shutdown.wait() => break 'outer,
            };
            let first = match first {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(consumer = %ctx.name, "pull: {e}");
                    continue;
                }
                None => break,
            };
            // The lane's batch size counts events, whether they came one per message or many.
            let mut size = events_in(&first);
            let mut batch = vec![first];
            let deadline = Instant::now() + ctx.lane.flush;
            while size < ctx.lane.batch {
                match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(Some(Ok(m))) => {
                        size += events_in(&m);
                        batch.push(m);
                    }
                    Ok(Some(Err(e))) => tracing::debug!(consumer = %ctx.name, "pull: {e}"),
                    Ok(None) | Err(_) => break,
                }
            }
            if writing.len() >= WRITES_IN_FLIGHT {
                if let Some(prev) = writing.pop_front() {
                    if !prev.await.unwrap_or(false) {
                        break 'outer;
                    }
                }
            }
            writing.push_back(tokio::spawn(process(ctx.clone(), batch, shutdown.clone())));
            if lag_at.elapsed() > Duration::from_secs(5) {
                lag_at = Instant::now();
                let mut c = consumer.clone();
                if let Ok(info) = c.info().await {
                    ctx.metrics.set_lag(&ctx.name, info.num_pending as i64);
                }
            }
        }
    }
    for prev in writing {
        let _ = prev.await;
    }
}

/// Whether a message carries several events, one JSON object per line
/// (`Content-Type: application/x-ndjson`): how publishers batch telemetry.
fn is_batch(msg: &jetstream::Message) -> bool {
    msg.headers.as_ref().and_then(|h| h.get(CONTENT_TYPE)).is_some_and(|v| v.as_str().eq_ignore_ascii_case(NDJSON))
}

/// How many events a message carries (lines of a batch message; cheap, for sizing batches).
fn events_in(msg: &jetstream::Message) -> usize {
    if is_batch(msg) {
        msg.payload.iter().filter(|b| **b == b'\n').count().max(1)
    } else {
        1
    }
}

/// Decodes, writes and acknowledges one batch. Returns false when shutting
/// down before the batch could be stored (it is then redelivered later).
async fn process(ctx: Arc<LaneCtx>, batch: Vec<jetstream::Message>, shutdown: crate::shutdown::Shutdown) -> bool {
    let ctx = ctx.as_ref();
    let mut events: Vec<Event> = Vec::with_capacity(batch.len());
    let mut letters = Vec::new();
    let mut acks = Vec::with_capacity(batch.len());
    let mut received = 0;
    let now = chrono::Utc::now();
    let accept = |e: Event| ctx.oldest.check(&e, now).map(|()| e);
    for msg in batch {
        let kind = kind_of(msg.subject.as_str()).to_string();
        // The fast consumers filter the server's own subjects; an agent's
        // alert (`vigil.events.alert.<agent>`) is the bulk lane's to store.
        if ctx.skip_fast && FAST_KINDS.contains(&kind.as_str()) && msg.subject.as_str() == subject(&kind) {
            // Owned by a fast-lane consumer.
            let _ = msg.ack().await;
            continue;
        }
        let seq = msg.info().ok().map(|i| {
            if i.delivered > 1 {
                ctx.metrics.redelivered(1);
            }
            i.stream_sequence as i64
        });
        let mut refuse = |line: Option<usize>, payload: &[u8], rej: crate::decode::Rejection| {
            ctx.metrics.dead_lettered("nats", rej.code);
            let (at, reason) = match line {
                Some(n) => (format!("{}#{}:{n}", msg.subject, seq.unwrap_or(-1)), format!("line {n}: {}", rej.reason)),
                None => (format!("{}#{}", msg.subject, seq.unwrap_or(-1)), rej.reason),
            };
            letters.push(DeadLetter {
                channel: "nats",
                origin: msg.subject.to_string(),
                stream_seq: seq,
                dedup_key: seq.map(|_| deadletter::input_key("nats", &at, payload)),
                reason_code: rej.code,
                reason,
                payload: payload[..payload.len().min(MAX_MESSAGE_BYTES * 4)].to_vec(),
            });
        };
        if is_batch(&msg) {
            let mut n = 0;
            for (i, line) in msg.payload.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                n += 1;
                match decode(Some(&kind), line).and_then(accept) {
                    Ok(e) => events.push(e),
                    Err(rej) => refuse(Some(i + 1), line, rej),
                }
            }
            received += n;
        } else {
            received += 1;
            match decode(Some(&kind), &msg.payload).and_then(accept) {
                Ok(e) => events.push(e),
                Err(rej) => refuse(None, &msg.payload, rej),
            }
        }
        acks.push(msg);
    }
    if received == 0 {
        return true;
    }
    ctx.metrics.received(ctx.lane_name, received);

    let mut delay = Duration::from_millis(100);
    loop {
        match store_batch(ctx, &events, &mut letters).await {
            Ok(()) => break,
            Err(e) => {
                ctx.metrics.write_error(ctx.lane_name);
                tracing::warn!(consumer = %ctx.name, "storing a batch failed ({e}); retrying in {delay:?}");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait() => return false,
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    for m in acks {
        if let Err(e) = m.ack().await {
            tracing::debug!(consumer = %ctx.name, "ack: {e}");
        }
    }
    true
}

/// Writes the events (refusing row by row what the database refuses) and the
/// dead letters. Errors only for transient failures, which are retried.
async fn store_batch(
    ctx: &LaneCtx,
    events: &[Event],
    letters: &mut Vec<DeadLetter>,
) -> Result<(), vigil_store::StoreError> {
    match ctx.writer.write(events).await {
        Ok(stats) => ctx.metrics.batch(ctx.lane_name, events.len() as u64, stats.inserted, stats.duplicates),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            // The database refused the batch's data: find the rows it refuses.
            tracing::warn!(consumer = %ctx.name, "batch refused ({e}); writing row by row");
            for ev in events {
                match ctx.writer.write(std::slice::from_ref(ev)).await {
                    Ok(s) => ctx.metrics.batch(ctx.lane_name, 1, s.inserted, s.duplicates),
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => {
                        ctx.metrics.dead_lettered("nats", "rejected_by_database");
                        letters.push(DeadLetter {
                            channel: "nats",
                            origin: subject(ev.kind.as_str()),
                            stream_seq: None,
                            dedup_key: Some(format!("event:{}", ev.id)),
                            reason_code: "rejected_by_database",
                            reason: e.to_string(),
                            payload: serde_json::to_vec(ev).unwrap_or_default(),
                        });
                    }
                }
            }
        }
    }
    if !letters.is_empty() {
        deadletter::store(&ctx.pool, letters).await?;
        for l in letters.iter() {
            let kind = l.origin.rsplit('.').next().unwrap_or("unknown");
            let mut headers = HeaderMap::new();
            headers.insert("Vigil-Error-Code", l.reason_code);
            headers.insert("Vigil-Error-Reason", l.reason.replace(['\r', '\n'], " ").as_str());
            headers.insert("Vigil-Origin-Subject", l.origin.as_str());
            // The table is the record; the subject is a courtesy for live consumers.
            if let Err(e) =
                ctx.js.publish_with_headers(dead_letter_subject(kind), headers, l.payload.clone().into()).await
            {
                tracing::debug!("dead-letter publish: {e}");
            }
        }
        letters.clear();
    }
    Ok(())
}
