//! End-to-end tests of the agent transport against a real `nats-server`
//! (`/usr/sbin/nats-server`, one instance per test with its own port and
//! store): publishing and batching, the on-disk spool (NATS down at start,
//! NATS killed mid-stream, the size bound, a restart with a full spool),
//! commands over request/reply, and heartbeats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use chrono::Utc;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;
use vigil_agent::transport::{
    AgentCommands, Blocklist, Capabilities, MemoryBlocklist, Transport, TransportConfig, EVENTS_STREAM, NDJSON,
};
use vigil_control::{CommandOrder, CommandSigner};
use vigil_event::{Event, Kind};

const NATS_SERVER: &str = "/usr/sbin/nats-server";
const SOURCE: &str = "transport-test";

// ---------------------------------------------------------------- nats-server

/// A `nats-server -js` of our own; killed on drop.
struct Nats {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

impl Nats {
    fn start(port: u16, store: &Path) -> Nats {
        let mut n = Nats { child: None, port, store: store.to_path_buf() };
        n.restart();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.store.join("nats-server.log")).unwrap();
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server runs");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ------------------------------------------------------------------ helpers

fn config(url: &str, spool: &Path) -> TransportConfig {
    let mut c = TransportConfig::new(url, "agent-test", spool);
    c.heartbeat_interval = Duration::ZERO;
    c.ack_timeout = Duration::from_secs(2);
    c.batch_max_delay = Duration::from_millis(200);
    c
}

/// `n` events of telemetry kinds (and two in 50 an alert or auth), unique to this run.
fn events(n: usize) -> Vec<Event> {
    let run = Uuid::new_v4();
    let kinds = [Kind::Process, Kind::Network, Kind::Metric, Kind::Package];
    (0..n)
        .map(|i| {
            let kind = match i % 50 {
                0 => Kind::Alert,
                25 => Kind::Auth,
                _ => kinds[i % kinds.len()],
            };
            let mut e = Event::new(kind, SOURCE, Utc::now(), format!("{run}:{i}").as_bytes());
            e.message = format!("test event {i}");
            e.raw = json!({"i": i});
            e
        })
        .collect()
}

/// What the stream holds.
#[derive(Debug, Default)]
struct Seen {
    messages: usize,
    /// Test events per id (more than 1 = stored twice).
    test_events: HashMap<Uuid, usize>,
    others: Vec<Event>,
    /// Events per NDJSON message.
    batch_sizes: Vec<usize>,
    /// Problems with headers or shapes.
    problems: Vec<String>,
}

impl Seen {
    fn distinct(&self) -> usize {
        self.test_events.len()
    }
    fn total(&self) -> usize {
        self.test_events.values().sum()
    }
}

/// Reads the whole stream through a fresh pull consumer.
async fn read_stream(js: &jetstream::Context) -> Seen {
    let mut seen = Seen::default();
    let Ok(stream) = js.get_stream(EVENTS_STREAM).await else { return seen };
    let Ok(info) = stream.get_info().await else { return seen };
    let want = info.state.messages as usize;
    if want == 0 {
        return seen;
    }
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.messages < want && Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages((want - seen.messages).min(1000))
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .unwrap();
        use futures_util::StreamExt;
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            seen.messages += 1;
            inspect(&m, &mut seen);
        }
    }
    seen
}

fn inspect(m: &jetstream::Message, seen: &mut Seen) {
    let header = |name: &str| m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
    let msg_id = header("Nats-Msg-Id").unwrap_or_default();
    let ndjson = header("Content-Type").as_deref() == Some(NDJSON);
    // Agents publish on vigil.events.<kind>.<agent id>: what their NATS identity may.
    let kind = match m.subject.as_str().strip_prefix("vigil.events.").and_then(|r| r.strip_suffix(".agent-test")) {
        Some(kind) => kind.to_string(),
        None => {
            seen.problems.push(format!("published on {}, not vigil.events.<kind>.agent-test", m.subject));
            "?".to_string()
        }
    };
    let events: Vec<Event> = if ndjson {
        m.payload.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    } else {
        vec![serde_json::from_slice(&m.payload).unwrap()]
    };
    if ndjson {
        seen.batch_sizes.push(events.len());
        let expect = format!("{}+{}", events[0].id, events.len());
        if msg_id != expect {
            seen.problems.push(format!("batch msg id {msg_id} != {expect}"));
        }
        if kind == "alert" || kind == "auth" {
            seen.problems.push(format!("{kind} sent batched"));
        }
    } else if msg_id != events[0].id.to_string() {
        seen.problems.push(format!("single msg id {msg_id} != {}", events[0].id));
    }
    for e in events {
        if e.kind.as_str() != kind {
            seen.problems.push(format!("{} event on {}", e.kind, m.subject));
        }
        if e.source == SOURCE {
            *seen.test_events.entry(e.id).or_default() += 1;
        } else {
            seen.others.push(e);
        }
    }
}

async fn consumer_js(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url).await.unwrap();
    jetstream::new(client)
}

/// Reads the stream until `until` holds or the time is up; returns the last read.
async fn wait_stream(js: &jetstream::Context, within: Duration, until: impl Fn(&Seen) -> bool) -> Seen {
    let deadline = Instant::now() + within;
    loop {
        let seen = read_stream(js).await;
        if until(&seen) || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_for(within: Duration, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn segment_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

/// What a scrape of the agent's `registry` would show.
fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry).unwrap();
    text
}

async fn send_all(t: &Transport, evs: &[Event]) {
    let tx = t.sender();
    for e in evs {
        tx.send(e.clone()).await.unwrap();
    }
}

// -------------------------------------------------------------------- tests

/// (a) 10k events arrive exactly once; batches carry the NDJSON header and
/// `<first id>+<count>`, alerts and auth go alone with the event id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_10k_events_exactly_once() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let mut registry = Registry::with_prefix("vigil");
    let t = Transport::start(config(&nats.url(), spool.path()), &mut registry).await.unwrap();
    let evs = events(10_000);
    send_all(&t, &evs).await;
    let js = consumer_js(&nats.url()).await;
    let seen = wait_stream(&js, Duration::from_secs(30), |s| s.distinct() >= 10_000).await;
    assert_eq!(seen.distinct(), 10_000);
    assert_eq!(seen.total(), 10_000, "no event stored twice");
    assert!(seen.problems.is_empty(), "{:?}", &seen.problems[..seen.problems.len().min(5)]);
    // 400 alerts/auth alone, 9,600 telemetry events in batches of at most 100
    // (closed early only by the 200 ms delay).
    let batched: usize = seen.batch_sizes.iter().sum();
    assert_eq!(batched, 9_600);
    assert_eq!(seen.messages, 400 + seen.batch_sizes.len());
    assert!(seen.batch_sizes.iter().all(|n| *n <= 100));
    assert!(seen.batch_sizes.contains(&100), "{:?}", seen.batch_sizes);
    assert!(seen.batch_sizes.len() < 9_600 / 10, "{} batches", seen.batch_sizes.len());
    let stats = t.stats();
    wait_for(Duration::from_secs(5), "acks", || stats.snapshot().acked_events >= 10_000).await;
    t.shutdown().await.unwrap();
    let s = stats.snapshot();
    assert_eq!(s.events_in, 10_000);
    assert_eq!(s.acked_events, 10_000);
    assert_eq!(s.spool_dropped_events, 0);
    assert_eq!(s.spool_drained_events, s.spooled_events, "whatever was spooled at start-up was drained");
    assert!(segment_files(spool.path()).is_empty());
    let text = scrape(&registry);
    assert!(text.contains("vigil_agent_transport_acked_events_total 10000"), "{text}");
}

/// (b) NATS down at start: 5k events go to the on-disk spool; once a
/// server listens (fresh, without the stream) they all arrive exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spools_while_nats_is_down_then_drains_exactly_once() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let t = Transport::start(config(&url, spool.path()), &mut Registry::default()).await.unwrap();
    let stats = t.stats();
    let evs = events(5_000);
    send_all(&t, &evs).await;
    // Both counters: the pending gauge moves when a batch reaches its segment,
    // a moment after the spooled counter.
    wait_for(Duration::from_secs(30), "5k events spooled", || {
        let s = stats.snapshot();
        s.spooled_events == 5_000 && s.spool_pending_events == 5_000
    })
    .await;
    let files = segment_files(spool.path());
    assert!(!files.is_empty(), "segments on disk");
    assert!(files.iter().map(|f| f.1).sum::<u64>() > 5_000 * 100, "{files:?}");
    let s = stats.snapshot();
    assert_eq!((s.acked_events, s.spool_pending_events, s.connected), (0, 5_000, 0));

    let nats = Nats::start(port, store.path());
    let js = consumer_js(&nats.url()).await;
    let seen = wait_stream(&js, Duration::from_secs(30), |s| s.distinct() >= 5_000).await;
    assert_eq!(seen.distinct(), 5_000);
    assert_eq!(seen.total(), 5_000, "each event stored once");
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    wait_for(Duration::from_secs(30), "spool emptied", || segment_files(spool.path()).is_empty()).await;
    let s = stats.snapshot();
    assert_eq!(s.spool_drained_events, 5_000);
    assert_eq!(s.spool_pending_events, 0);
    assert_eq!(s.spool_dropped_events, 0);
    // The agent created the stream with the server's settings.
    let info = js.get_stream(EVENTS_STREAM).await.unwrap().get_info().await.unwrap();
    assert_eq!(info.config.subjects, vec!["vigil.events.>".to_string()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    // Live again: new events are not spooled.
    let more = events(100);
    send_all(&t, &more).await;
    let seen = wait_stream(&js, Duration::from_secs(10), |s| s.distinct() >= 5_100).await;
    assert_eq!(seen.total(), 5_100);
    assert_eq!(stats.snapshot().spooled_events, 5_000);
    t.shutdown().await.unwrap();
}

/// (c) NATS killed mid-stream and restarted on the same store: every event
/// arrives, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_nats_restart_mid_stream() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(free_port(), store.path());
    // One event per message, so many acks are in flight when the server dies.
    let mut cfg = config(&nats.url(), spool.path());
    cfg.batch_max_events = 1;
    let t = Transport::start(cfg, &mut Registry::default()).await.unwrap();
    let stats = t.stats();
    let evs = events(20_000);
    let tx = t.sender();
    let producer = tokio::spawn({
        let evs = evs.clone();
        async move {
            for chunk in evs.chunks(1_000) {
                for e in chunk {
                    tx.send(e.clone()).await.unwrap();
                }
                // Slow enough that the stream is still going when NATS dies, even on a busy machine.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    });
    wait_for(Duration::from_secs(30), "some acks", || stats.snapshot().acked_events > 3_000).await;
    nats.kill();
    wait_for(Duration::from_secs(30), "events spooled while NATS was down", || stats.snapshot().spooled_events > 0)
        .await;
    nats.restart();
    producer.await.unwrap();
    let js = consumer_js(&nats.url()).await;
    let seen = wait_stream(&js, Duration::from_secs(40), |s| s.distinct() >= 20_000).await;
    assert_eq!(seen.distinct(), 20_000);
    assert_eq!(seen.total(), 20_000, "repeats were dropped by Nats-Msg-Id");
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    t.shutdown().await.unwrap();
    let s = stats.snapshot();
    eprintln!("after a NATS restart: {s:?}, {} messages in the stream", seen.messages);
    assert_eq!(s.spool_dropped_events, 0);
    assert_eq!(s.spool_drained_events, s.spooled_events);
    assert!(s.spooled_events > 0);
    // Each message is acked once: live, or (after a failed publish or ack) from the spool.
    assert_eq!(s.acked_events, 20_000);
}

/// (d) A tiny spool keeps the newest events and counts the dropped ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_bound_drops_oldest_and_counts() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let max = 64 * 1024;
    let mut cfg = config(&url, spool.path());
    cfg.spool_max_bytes = max;
    cfg.batch_max_events = 10;
    let mut registry = Registry::with_prefix("vigil");
    let t = Transport::start(cfg, &mut registry).await.unwrap();
    let stats = t.stats();
    // One kind, so spool order is send order.
    let run = Uuid::new_v4();
    let evs: Vec<Event> = (0..5_000)
        .map(|i| {
            let mut e = Event::new(Kind::Process, SOURCE, Utc::now(), format!("{run}:{i}").as_bytes());
            e.message = format!("test event {i}");
            e
        })
        .collect();
    send_all(&t, &evs).await;
    wait_for(Duration::from_secs(30), "5k events spooled", || stats.snapshot().spooled_events == 5_000).await;
    let s = stats.snapshot();
    assert!(s.spool_dropped_events > 0, "{s:?}");
    assert_eq!(s.spool_pending_events + s.spool_dropped_events, 5_000, "{s:?}");
    let on_disk: u64 = segment_files(spool.path()).iter().map(|f| f.1).sum();
    assert_eq!(on_disk, s.spool_bytes);
    assert!(on_disk <= max + 4 * 1024 + 8 * 1024, "spool {on_disk} bytes over its bound");

    let nats = Nats::start(port, store.path());
    let js = consumer_js(&nats.url()).await;
    let kept = (5_000 - s.spool_dropped_events) as usize;
    let seen = wait_stream(&js, Duration::from_secs(30), |x| x.distinct() >= kept).await;
    assert_eq!(seen.distinct(), kept);
    assert_eq!(seen.total(), kept);
    // What survived is the newest events.
    let newest: HashSet<Uuid> = evs[5_000 - kept..].iter().map(|e| e.id).collect();
    assert_eq!(seen.test_events.keys().copied().collect::<HashSet<_>>(), newest);
    t.shutdown().await.unwrap();
    let text = scrape(&registry);
    assert!(text.contains(&format!("vigil_agent_transport_spool_dropped_events_total {}", s.spool_dropped_events)));
}

/// (e) A transport restarted over a non-empty spool drains it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_a_full_spool_drains_it() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let evs = events(2_000);
    {
        let t = Transport::start(config(&url, spool.path()), &mut Registry::default()).await.unwrap();
        let stats = t.stats();
        send_all(&t, &evs).await;
        // Shutdown flushes open batches to the spool too.
        t.shutdown().await.unwrap();
        assert_eq!(stats.snapshot().spooled_events, 2_000);
    }
    assert!(!segment_files(spool.path()).is_empty());

    let nats = Nats::start(port, store.path());
    let t = Transport::start(config(&url, spool.path()), &mut Registry::default()).await.unwrap();
    let stats = t.stats();
    let js = consumer_js(&nats.url()).await;
    let seen = wait_stream(&js, Duration::from_secs(30), |s| s.distinct() >= 2_000).await;
    assert_eq!(seen.distinct(), 2_000);
    assert_eq!(seen.total(), 2_000);
    wait_for(Duration::from_secs(30), "spool emptied", || segment_files(spool.path()).is_empty()).await;
    assert_eq!(stats.snapshot().spool_drained_events, 2_000);
    t.shutdown().await.unwrap();
}

/// The server's side of commands: its key, and orders signed with it.
struct Server {
    _dir: tempfile::TempDir,
    signer: CommandSigner,
}

impl Server {
    fn new() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let signer = CommandSigner::load_or_create(&dir.path().join("command.nk")).unwrap();
        Server { _dir: dir, signer }
    }

    /// `body` (`id`, `command`, `args`, `sent_by`) as an order for `agent`, valid for a minute from `issued`.
    fn order(&self, agent: &str, body: &Value, issued: chrono::DateTime<Utc>) -> Value {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        let order = CommandOrder {
            id: text("id"),
            agent_id: agent.into(),
            command: text("command"),
            args: body.get("args").cloned().unwrap_or_else(|| json!({})),
            sent_by: text("sent_by"),
            issued_at: issued,
            expires_at: issued + chrono::Duration::seconds(60),
        };
        serde_json::from_slice(&self.signer.sign(&order).unwrap()).unwrap()
    }

    fn sign(&self, body: &Value) -> Value {
        self.order("agent-test", body, Utc::now())
    }
}

/// A transport taking commands signed by `server`, over a memory blocklist.
async fn commanded(nats: &Nats, spool: &Path, server: &Server) -> (Transport, Arc<MemoryBlocklist>) {
    let mut c = config(&nats.url(), spool);
    c.command_key = Some(server.signer.public_key());
    c.never_block = vec!["198.51.100.0/24".parse().unwrap()];
    let mut t = Transport::start(c, &mut Registry::default()).await.unwrap();
    let blocklist = Arc::new(MemoryBlocklist::open(spool).unwrap());
    t.serve_commands(Arc::new(AgentCommands::new(blocklist.clone()))).await.unwrap();
    (t, blocklist)
}

/// Sends `body` as it is to `subject` and returns the reply (retrying until the agent subscribed).
async fn ask_raw(client: &async_nats::Client, subject: &str, body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.request(subject.to_string(), serde_json::to_vec(body).unwrap().into()).await {
            Ok(m) => return serde_json::from_slice::<Value>(&m.payload).unwrap(),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("request failed: {e}"),
        }
    }
}

/// (f) Commands over request/reply: block, list, unblock, bad IP, unknown
/// command; the blocklist survives re-creation; each command is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_block_list_unblock_and_are_recorded() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let server = Server::new();
    let (t, _blocklist) = commanded(&nats, spool.path(), &server).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let subject = t.command_subject();
    assert_eq!(subject, "vigil.commands.agent.agent-test");

    let ask = |body: Value| {
        let (client, subject, signed) = (client.clone(), subject.clone(), server.sign(&body));
        async move { ask_raw(&client, &subject, &signed).await }
    };
    let r = ask(json!({"id": "c1", "command": "block_ip", "args": {"ip": "203.0.113.5"}, "sent_by": "alice"})).await;
    assert_eq!(r["id"], "c1");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["changed"], true);
    let r = ask(json!({"id": "c2", "command": "block_ip", "args": {"ip": "2001:db8::7"}, "sent_by": "alice"})).await;
    assert_eq!(r["ok"], true, "{r}");
    let r = ask(json!({"id": "c3", "command": "list_blocked", "sent_by": "alice"})).await;
    assert_eq!(r["result"]["blocked"], json!(["203.0.113.5", "2001:db8::7"]), "{r}");
    let r = ask(json!({"id": "c4", "command": "unblock_ip", "args": {"ip": "203.0.113.5"}, "sent_by": "alice"})).await;
    assert_eq!((r["ok"].clone(), r["result"]["changed"].clone()), (json!(true), json!(true)), "{r}");
    let r = ask(json!({"id": "c5", "command": "block_ip", "args": {"ip": "300.1.2.3"}, "sent_by": "alice"})).await;
    assert_eq!(r["ok"], false);
    assert_eq!(r["code"], "invalid_argument");
    assert!(r["error"].as_str().unwrap().contains("300.1.2.3"), "{r}");
    assert!(r.get("result").is_none());
    let r = ask(json!({"id": "c6", "command": "format_disk", "sent_by": "alice"})).await;
    assert_eq!((r["ok"].clone(), r["code"].clone()), (json!(false), json!("unknown_command")), "{r}");
    assert!(r["error"].as_str().unwrap().contains("format_disk"));
    let r = ask(json!({"id": "c7", "command": "rescan_packages", "sent_by": "alice"})).await;
    assert_eq!(r["code"], "unsupported", "{r}");

    // The blocklist survives re-creation from the same directory.
    let again = MemoryBlocklist::open(spool.path()).unwrap();
    assert_eq!(again.list().unwrap(), vec!["2001:db8::7".parse::<std::net::IpAddr>().unwrap()]);

    // Each request is recorded as a log event naming its sender.
    let js = jetstream::new(client.clone());
    let is_cmd = |e: &Event| e.raw["type"] == "command";
    let seen = wait_stream(&js, Duration::from_secs(10), |s| s.others.iter().filter(|e| is_cmd(e)).count() >= 7).await;
    let cmds: Vec<&Event> = seen.others.iter().filter(|e| is_cmd(e)).collect();
    assert_eq!(cmds.len(), 7);
    assert!(cmds
        .iter()
        .all(|e| e.kind == Kind::Log && e.raw["sent_by"] == "alice" && e.raw["agent_id"] == "agent-test"));
    let block = cmds.iter().find(|e| e.raw["command_id"] == "c1").unwrap();
    assert_eq!((block.raw["command"].clone(), block.raw["ok"].clone()), (json!("block_ip"), json!(true)));
    assert_eq!(block.raw["args"]["ip"], "203.0.113.5");
    let bad = cmds.iter().find(|e| e.raw["command_id"] == "c5").unwrap();
    assert_eq!((bad.raw["ok"].clone(), bad.raw["code"].clone()), (json!(false), json!("invalid_argument")));
    let s = t.stats().snapshot();
    assert_eq!((s.commands, s.command_errors), (7, 3));
    t.shutdown().await.unwrap();
}

/// Unsigned, tampered, expired, replayed and wrong-agent orders, and blocks
/// of protected addresses, are each refused with their reason and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_are_not_the_servers_change_nothing() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let server = Server::new();
    let (t, blocklist) = commanded(&nats, spool.path(), &server).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let subject = t.command_subject();
    let block = |id: &str, ip: &str| json!({"id": id, "command": "block_ip", "args": {"ip": ip}, "sent_by": "mallory"});

    let r = ask_raw(&client, &subject, &block("u1", "203.0.113.5")).await;
    assert_eq!(
        (r["ok"].clone(), r["code"].clone(), r["id"].clone()),
        (json!(false), json!("unsigned"), json!("u1")),
        "{r}"
    );

    let mut tampered = server.sign(&block("t1", "203.0.113.5"));
    let forged = server.sign(&block("t1", "203.0.113.66"));
    tampered["order"] = forged["order"].clone();
    tampered["signature"] = server.sign(&block("t2", "203.0.113.5"))["signature"].clone();
    let r = ask_raw(&client, &subject, &tampered).await;
    assert_eq!(r["code"], "bad_signature", "{r}");

    let other = Server::new();
    let r = ask_raw(&client, &subject, &other.sign(&block("k1", "203.0.113.5"))).await;
    assert_eq!(r["code"], "bad_signature", "another key: {r}");

    let expired = server.order("agent-test", &block("e1", "203.0.113.5"), Utc::now() - chrono::Duration::seconds(90));
    let r = ask_raw(&client, &subject, &expired).await;
    assert_eq!(r["code"], "expired", "{r}");

    let elsewhere = server.order("agent-other", &block("w1", "203.0.113.5"), Utc::now());
    let r = ask_raw(&client, &subject, &elsewhere).await;
    assert_eq!(r["code"], "wrong_agent", "{r}");

    let list = server.sign(&json!({"id": "r1", "command": "list_blocked", "sent_by": "alice"}));
    assert_eq!(ask_raw(&client, &subject, &list).await["ok"], true);
    let r = ask_raw(&client, &subject, &list).await;
    assert_eq!(r["code"], "replayed", "{r}");

    let r = ask_raw(&client, &subject, &server.sign(&block("n1", "198.51.100.7"))).await;
    assert_eq!(r["code"], "invalid_argument", "{r}");
    assert!(r["error"].as_str().unwrap().contains("never_block"), "{r}");
    let own = if_addrs::get_if_addrs().unwrap().into_iter().find(|i| !i.is_loopback()).map(|i| i.ip());
    if let Some(own) = own {
        let r = ask_raw(&client, &subject, &server.sign(&block("o1", &own.to_string()))).await;
        assert_eq!(r["code"], "invalid_argument", "{r}");
        assert!(r["error"].as_str().unwrap().contains("own address"), "{r}");
    }

    assert!(blocklist.list().unwrap().is_empty(), "nothing was blocked");
    let s = t.stats().snapshot();
    assert_eq!(s.commands, s.command_errors + 1, "every order but the first list_blocked was refused");
    t.shutdown().await.unwrap();
}

/// An agent without the server's command key takes no command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_a_command_key_refuses_every_command() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let server = Server::new();
    let mut t = Transport::start(config(&nats.url(), spool.path()), &mut Registry::default()).await.unwrap();
    let blocklist = Arc::new(MemoryBlocklist::open(spool.path()).unwrap());
    t.serve_commands(Arc::new(AgentCommands::new(blocklist.clone()))).await.unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let order = server.sign(&json!({"id": "c1", "command": "block_ip", "args": {"ip": "203.0.113.5"}, "sent_by": "a"}));
    let r = ask_raw(&client, &t.command_subject(), &order).await;
    assert_eq!(r["code"], "no_command_key", "{r}");
    assert!(blocklist.list().unwrap().is_empty());
    t.shutdown().await.unwrap();
}

/// Heartbeats name the agent, its version and capabilities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_capabilities() {
    let store = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let mut cfg = config(&nats.url(), spool.path());
    cfg.heartbeat_interval = Duration::from_millis(300);
    cfg.capabilities =
        Capabilities { process_source: "procfs".into(), connection_source: "procfs".into(), ebpf: false, xdp: true };
    let t = Transport::start(cfg, &mut Registry::default()).await.unwrap();
    let js = consumer_js(&nats.url()).await;
    let beats = |s: &Seen| s.others.iter().filter(|e| e.raw["type"] == "heartbeat").count();
    let seen = wait_stream(&js, Duration::from_secs(10), |s| beats(s) >= 2).await;
    assert!(beats(&seen) >= 2);
    let hb = seen.others.iter().find(|e| e.raw["type"] == "heartbeat").unwrap();
    assert_eq!(hb.kind, Kind::Log);
    assert_eq!(hb.raw["agent_id"], "agent-test");
    assert_eq!(hb.raw["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        hb.raw["capabilities"],
        json!({"process_source": "procfs", "connection_source": "procfs", "ebpf": false, "xdp": true})
    );
    t.shutdown().await.unwrap();
}

/// A second transport on a spool directory in use is refused.
#[tokio::test]
async fn one_transport_per_spool_directory() {
    let spool = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let t = Transport::start(config(&url, spool.path()), &mut Registry::default()).await.unwrap();
    let err = Transport::start(config(&url, spool.path()), &mut Registry::default()).await.unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    t.shutdown().await.unwrap();
    let mut bad = config(&url, spool.path());
    bad.agent_id = "a.b".into();
    assert!(Transport::start(bad, &mut Registry::default()).await.is_err());
}
