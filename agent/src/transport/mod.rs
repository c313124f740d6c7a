//! The agent's transport to the server: publishing events to NATS JetStream
//! with an on-disk spool for when it is unreachable, heartbeats, and commands.
//!
//! [`Transport::start`] connects (in the background: an agent may start
//! before the server) and runs:
//!
//! - the **publisher** ([`publisher`]): alerts and auth events go one per
//!   message at once; other kinds are batched per kind into NDJSON messages
//!   (`batch_max_events` or `batch_max_delay`, whichever comes first), on
//!   `vigil.events.<kind>.<agent id>` with `Nats-Msg-Id` as in `docs/events.md`; up to
//!   `ack_window` acks are in flight and only an acknowledged message is done;
//! - the **spool** ([`spool`]): what cannot be published or acknowledged is
//!   appended to bounded segment files in `spool_dir`, drained in order when
//!   JetStream answers again, and kept across restarts;
//! - **heartbeats** ([`heartbeat`]): a `log` event every `heartbeat_interval`
//!   with the agent's id, version and [`Capabilities`];
//! - **commands** ([`commands`], once [`Transport::serve_commands`] is called):
//!   request/reply on `vigil.commands.agent.<id>`: orders signed by the
//!   server, admitted by the [`admit::Gate`] (signature, addressee, expiry,
//!   replay, the [`never_block`] set), executed by a [`CommandHandler`] such
//!   as [`AgentCommands`] over a [`Blocklist`].
//!
//! **Identity.** With credentials ([`TransportConfig::security`]) the agent
//! publishes on `vigil.events.<kind>.<agent id>` and takes replies under
//! `_INBOX_<agent id>`: what its NATS identity is allowed (see
//! `vigil_control::identity`), so no agent can publish or answer as another.
//!
//! **The stream.** The server's ingester creates `VIGIL_EVENTS`. If the agent
//! finds it missing (started first, or a fresh NATS), it creates it with the
//! ingester's settings (subjects `vigil.events.>`, file storage, 7 days,
//! 10 GiB, discard old, 2-minute duplicate window), so the ingester's later
//! create-or-update is a no-op; an existing stream is never modified. With
//! [`TransportConfig::create_stream`] off (an agent whose NATS account may
//! not manage streams) the agent spools and retries until the stream exists.
//!
//! Counters are in [`TransportStats`] ([`Transport::stats`]), registered in
//! the agent's metrics registry handed to [`Transport::start`].

pub mod admit;
pub mod blocklist;
pub mod commands;
pub mod envelope;
pub mod heartbeat;
pub mod never_block;
mod publisher;
pub mod spool;
pub mod stats;
pub mod xdp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use vigil_event::Event;

pub use blocklist::{Blocklist, BlocklistError, MemoryBlocklist};
pub use commands::{
    command_subject, Action, AgentCommands, ChannelHandler, Command, CommandError, CommandHandler, CommandRequest,
    HandlerFuture, Reply,
};
pub use envelope::{Envelope, NDJSON};
pub use heartbeat::{heartbeat_event, Capabilities};
pub use spool::SpoolError;
pub use stats::{StatsSnapshot, TransportStats};
pub use xdp::{open_blocklist, XdpBlocklist, XdpOptions};

/// The stream events are published to (created by the server).
pub const EVENTS_STREAM: &str = "VIGIL_EVENTS";

/// Transport settings. [`TransportConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// NATS server URL(s), comma-separated (`nats://host:4222`).
    pub nats_url: String,
    /// The agent's id: names its command subject, so one subject token (no `.`, `*`, `>` or spaces).
    pub agent_id: String,
    /// Where the spool (and the blocklist file) live.
    pub spool_dir: PathBuf,
    /// Bound of the spool on disk (default 256 MiB).
    pub spool_max_bytes: u64,
    /// Events per telemetry message (default 100; 1 sends every event alone).
    pub batch_max_events: usize,
    /// Longest an event waits for its batch to fill (default 1 s).
    pub batch_max_delay: Duration,
    /// Publish acks in flight at most (default 256).
    pub ack_window: usize,
    /// How long a publish waits for its ack before it counts as failed (default 5 s).
    pub ack_timeout: Duration,
    /// Heartbeat period (default 30 s; zero disables heartbeats).
    pub heartbeat_interval: Duration,
    /// Reported in heartbeats.
    pub capabilities: Capabilities,
    /// Events the channel from [`Transport::sender`] buffers (default 10,000).
    pub channel_capacity: usize,
    /// Longest a command may run before it is answered `timed_out` (default 30 s).
    pub command_timeout: Duration,
    /// Backoff between spool drain attempts while JetStream is unavailable
    /// (doubling from `retry_min` to `retry_max`; defaults 200 ms and 5 s).
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// The stream (default [`EVENTS_STREAM`]).
    pub stream: String,
    /// Create the stream when it is missing (default true; an agent with
    /// its own NATS identity may not, and waits for the server to).
    pub create_stream: bool,
    /// Credentials and TLS for NATS (default none).
    pub security: vigil_control::NatsSecurity,
    /// The server's command public key (`N…`); without it every command is refused.
    pub command_key: Option<String>,
    /// Networks `block_ip` refuses beside the NATS servers, gateways and own addresses.
    pub never_block: Vec<ipnet::IpNet>,
    /// Where /proc is (the routing tables for the gateways).
    pub proc_root: PathBuf,
}

impl TransportConfig {
    pub fn new(nats_url: impl Into<String>, agent_id: impl Into<String>, spool_dir: impl Into<PathBuf>) -> Self {
        TransportConfig {
            nats_url: nats_url.into(),
            agent_id: agent_id.into(),
            spool_dir: spool_dir.into(),
            spool_max_bytes: 256 * 1024 * 1024,
            batch_max_events: 100,
            batch_max_delay: Duration::from_secs(1),
            ack_window: 256,
            ack_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(30),
            capabilities: Capabilities::default(),
            channel_capacity: 10_000,
            command_timeout: Duration::from_secs(30),
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            stream: EVENTS_STREAM.to_string(),
            create_stream: true,
            security: vigil_control::NatsSecurity::default(),
            command_key: None,
            never_block: Vec::new(),
            proc_root: PathBuf::from("/proc"),
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |m: String| Err(TransportError::Config(m));
        if let Err(reason) = vigil_event::valid_agent_id(&self.agent_id) {
            return bad(reason);
        }
        if self.batch_max_events == 0 || self.ack_window == 0 || self.channel_capacity == 0 {
            return bad("batch_max_events, ack_window and channel_capacity must be at least 1".into());
        }
        if self.ack_timeout.is_zero() || self.retry_min.is_zero() || self.retry_max < self.retry_min {
            return bad("ack_timeout and retry_min must be positive and retry_max >= retry_min".into());
        }
        if self.spool_max_bytes < 4096 {
            return bad(format!("spool_max_bytes {} is under the 4 KiB minimum", self.spool_max_bytes));
        }
        Ok(())
    }
}

/// Why the transport could not start (running errors are logged and counted, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid transport settings: {0}")]
    Config(String),
    #[error("cannot use NATS at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot subscribe to {subject}: {detail}")]
    Subscribe { subject: String, detail: String },
    #[error("the transport task failed: {0}")]
    Task(String),
}

/// The running transport. Dropping it without [`Transport::shutdown`] stops
/// its tasks in the background (the publisher still flushes as it exits),
/// but nothing waits for that; call `shutdown` to be sure.
#[derive(Debug)]
pub struct Transport {
    tx: mpsc::Sender<Event>,
    stats: Arc<TransportStats>,
    client: async_nats::Client,
    command_key: Option<String>,
    never_block: never_block::NeverBlock,
    started_at: chrono::DateTime<chrono::Utc>,
    agent_id: String,
    command_timeout: Duration,
    stop_publisher: watch::Sender<bool>,
    stop_helpers: watch::Sender<bool>,
    publisher: JoinHandle<()>,
    helpers: Vec<JoinHandle<()>>,
}

impl Transport {
    /// Opens the spool, connects to NATS in the background and starts the
    /// publisher (and heartbeats unless disabled); its counters go in `registry`.
    pub async fn start(config: TransportConfig, registry: &mut Registry) -> Result<Transport, TransportError> {
        config.validate()?;
        let stats = Arc::new(TransportStats::register(registry));
        let (spool, report) = spool::Spool::open(&config.spool_dir, config.spool_max_bytes)?;
        stats.corrupt(report.corrupt);
        if report.messages > 0 {
            tracing::info!(
                messages = report.messages,
                events = report.events,
                bytes = report.bytes,
                "spool holds messages from an earlier run; they go first"
            );
        }
        let connected = Arc::new(Notify::new());
        let on_event = connected.clone();
        let mut security = config.security.clone();
        if security.has_credentials() {
            // Its own reply subjects: the agent's identity may not read others'.
            security.inbox_prefix = Some(vigil_control::agent_inbox_prefix(&config.agent_id));
        }
        let url = vigil_control::redact_url(&config.nats_url);
        let options = security
            .apply(async_nats::ConnectOptions::new())
            .await
            .map_err(|e| TransportError::Connect { url: url.clone(), detail: e.to_string() })?;
        let client = options
            .name(format!("vigil-agent-{}", config.agent_id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .ping_interval(Duration::from_secs(10))
            .reconnect_delay_callback(|attempts| {
                let exp = u32::try_from(attempts.min(6)).unwrap_or(6);
                Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(5))
            })
            .event_callback(move |event| {
                let on_event = on_event.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            on_event.notify_one();
                        }
                        async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                        other => tracing::debug!("NATS: {other}"),
                    }
                }
            })
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| TransportError::Connect { url: url.clone(), detail: e.to_string() })?;
        let js = async_nats::jetstream::context::ContextBuilder::new()
            .timeout(config.ack_timeout)
            .max_ack_inflight(config.ack_window.saturating_mul(2).max(64))
            .build(client.clone());
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let (stop_publisher, publisher_stop_rx) = watch::channel(false);
        let (stop_helpers, helpers_stop_rx) = watch::channel(false);
        let publisher = publisher::Publisher {
            js,
            client: client.clone(),
            rx,
            batcher: envelope::Batcher::new(config.batch_max_events, config.batch_max_delay),
            spool,
            stats: stats.clone(),
            window: config.ack_window,
            stream: config.stream.clone(),
            create_stream: config.create_stream,
            agent_id: config.agent_id.clone(),
            retry_min: config.retry_min,
            retry_max: config.retry_max,
            connected,
            shutdown: publisher_stop_rx,
        };
        let publisher = tokio::spawn(publisher.run());
        let mut helpers = Vec::new();
        if !config.heartbeat_interval.is_zero() {
            helpers.push(tokio::spawn(heartbeat::run(
                tx.clone(),
                config.agent_id.clone(),
                config.capabilities.clone(),
                config.heartbeat_interval,
                stats.clone(),
                helpers_stop_rx,
            )));
        }
        let never_block = never_block::NeverBlock::new(&config.nats_url, config.never_block.clone(), &config.proc_root)
            .with_client(client.clone());
        Ok(Transport {
            tx,
            stats,
            client,
            command_key: config.command_key.clone(),
            never_block,
            started_at: chrono::Utc::now(),
            agent_id: config.agent_id,
            command_timeout: config.command_timeout,
            stop_publisher,
            stop_helpers,
            publisher,
            helpers,
        })
    }

    /// Where collectors send events. A full channel makes `send` wait
    /// (back-pressure); events sent after shutdown are refused.
    pub fn sender(&self) -> mpsc::Sender<Event> {
        self.tx.clone()
    }

    /// The transport's counters.
    pub fn stats(&self) -> Arc<TransportStats> {
        self.stats.clone()
    }

    /// The NATS client (e.g. for a caller's own subscriptions).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The subject this agent takes commands on.
    pub fn command_subject(&self) -> String {
        command_subject(&self.agent_id)
    }

    /// Subscribes to `vigil.commands.agent.<id>` and answers requests with
    /// `handler`, one at a time, until shutdown. Works while NATS is down:
    /// the subscription is made when the connection is.
    pub async fn serve_commands(&mut self, handler: Arc<dyn CommandHandler>) -> Result<(), TransportError> {
        let subject = self.command_subject();
        let verifier = match &self.command_key {
            Some(key) => Some(
                vigil_control::CommandVerifier::new(key, &self.agent_id, self.started_at)
                    .map_err(|e| TransportError::Config(format!("command_key: {e}")))?,
            ),
            None => {
                tracing::warn!("no command_key configured: every command will be refused");
                None
            }
        };
        let gate = admit::Gate::new(verifier, self.never_block.clone());
        let subscriber = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| TransportError::Subscribe { subject: subject.clone(), detail: e.to_string() })?;
        let cmd_loop = commands::CommandLoop {
            client: self.client.clone(),
            subscriber,
            handler,
            gate,
            events: self.tx.clone(),
            stats: self.stats.clone(),
            agent_id: self.agent_id.clone(),
            timeout: self.command_timeout,
            stop: self.stop_helpers.subscribe(),
        };
        self.helpers.push(tokio::spawn(cmd_loop.run()));
        tracing::info!(%subject, "taking commands");
        Ok(())
    }

    /// Stops heartbeats and commands, then flushes: queued events are
    /// published (or spooled), in-flight acks awaited (failures spooled) and
    /// the spool fsync'd. The spool is not drained here; the next start does.
    pub async fn shutdown(self) -> Result<(), TransportError> {
        let _ = self.stop_helpers.send(true);
        for h in self.helpers {
            if let Err(e) = h.await {
                tracing::warn!("a transport helper task failed: {e}");
            }
        }
        let _ = self.stop_publisher.send(true);
        let result = self.publisher.await.map_err(|e| TransportError::Task(e.to_string()));
        // Sends the last command replies; NATS may be down, so do not wait long.
        match tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("final NATS flush: {e}"),
            Err(_) => tracing::debug!("final NATS flush timed out"),
        }
        result
    }
}
