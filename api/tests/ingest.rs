//! The ingest pipeline against real NATS JetStream and PostgreSQL: no loss,
//! no duplicates, dead letters for bad input, recovery from crashes and
//! restarts, and scale-out. Each test runs its own nats-server (a real one,
//! on a free port) so tests do not share a stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_embedded::EmbeddedNats;
use vigil_event::Event;
use vigil_ingest::generate::{Generator, GeneratorConfig};
use vigil_ingest::metrics::Metrics;
use vigil_ingest::nats::{ensure_streams, NatsConfig};
use vigil_ingest::publish::{publish_batched, publish_events, publish_raw};
use vigil_ingest::shutdown::Shutdown;
use vigil_store::testing::TempDatabase;
use vigil_store::{connect, migrate, MigrateOptions, Pool};

const BIN: &str = env!("CARGO_BIN_EXE_vigil");

struct Scratch(PathBuf);
impl Scratch {
    fn new(name: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("vigil-{name}-{}-{}", std::process::id(), Utc::now().timestamp_micros()));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a child process when the test ends, however it ends.
struct Proc(Option<Child>);
impl Proc {
    fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn interrupt(&mut self) -> String {
        let c = self.0.take().unwrap();
        Command::new("kill").arg("-INT").arg(c.id().to_string()).status().unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).to_string()
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn db() -> (TempDatabase, Pool) {
    let db = TempDatabase::create().await.unwrap();
    let pool = connect(&db.url, 4).unwrap();
    migrate(&pool, &MigrateOptions::default()).await.unwrap();
    (db, pool)
}

async fn count(pool: &Pool, sql: &str) -> i64 {
    match pool.get().await {
        Ok(c) => c.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(-1),
        Err(_) => -1,
    }
}

/// Waits until `sql` returns at least `want`; returns what it last saw.
async fn wait_for(pool: &Pool, sql: &str, want: i64, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let n = count(pool, sql).await;
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn corpus(n: u64, seed: u64) -> Vec<Event> {
    Generator::new(GeneratorConfig { seed, ..GeneratorConfig::recent(n, chrono::Duration::hours(6), Utc::now()) })
        .collect()
}

async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = vigil_ingest::nats::connect(url, &Default::default()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    ensure_streams(&js, &NatsConfig::new(url)).await.unwrap();
    js
}

fn spawn_ingester(db_url: &str, nats_url: &str) -> Proc {
    Proc(Some(
        Command::new(BIN)
            .args(["ingest", "--nats-url", nats_url])
            .env("DATABASE_URL", db_url)
            .env("VIGIL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_and_good_ones_stored() {
    let scratch = Scratch::new("dlq");
    let nats = EmbeddedNats::start(&scratch.0).unwrap().expect("nats-server is installed by scripts/setup.sh");
    let (_db, pool) = db().await;
    let js = jetstream(&nats.url()).await;
    let mut registry = vigil_api::metrics_registry();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let (trigger, stop) = Shutdown::new();
    let pipeline =
        tokio::spawn(vigil_ingest::nats::run(NatsConfig::new(nats.url()), pool.clone(), metrics.clone(), stop));

    // 20k good events with 10k malformed messages interleaved: one bad after every two good.
    let good = corpus(20_000, 7);
    let oversize = vec![b'x'; vigil_ingest::decode::MAX_MESSAGE_BYTES + 10];
    let mut acks = Vec::new();
    for (i, e) in good.iter().enumerate() {
        acks.push(publish_raw(&js, e.kind.as_str(), &e.id.to_string(), serde_json::to_vec(e).unwrap()).await.unwrap());
        if i % 2 == 1 {
            let n = i / 2;
            let (kind, payload): (&str, Vec<u8>) = match n % 5 {
                0 => ("log", format!("{{not json {n}").into_bytes()),
                1 => ("auth", format!(r#"{{"id":"x{n}","time":42,"kind":"auth","source":"t"}}"#).into_bytes()),
                2 => ("metric", oversize.clone()),
                3 => ("frobnicator", serde_json::to_vec(e).unwrap()),
                _ => {
                    let mut v = serde_json::to_value(e).unwrap();
                    v["schema_version"] = 9.into();
                    v["id"] = uuid_like(n).into();
                    (e.kind.as_str(), serde_json::to_vec(&v).unwrap())
                }
            };
            acks.push(publish_raw(&js, kind, &format!("bad-{n}"), payload).await.unwrap());
        }
        if acks.len() >= 512 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }

    let stored = wait_for(&pool, "SELECT count(*) FROM events", 20_000, Duration::from_secs(90)).await;
    let dead = wait_for(&pool, "SELECT count(*) FROM ingest_errors", 10_000, Duration::from_secs(60)).await;
    assert_eq!(stored, 20_000, "every good event stored");
    assert_eq!(dead, 10_000, "every malformed message dead-lettered");
    assert_eq!(count(&pool, "SELECT count(DISTINCT event_id) FROM events").await, 20_000);
    let client = pool.get().await.unwrap();
    let reasons: Vec<(String, i64)> = client
        .query("SELECT reason_code, count(*) FROM ingest_errors GROUP BY 1 ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("future_schema".to_string(), 2_000),
            ("invalid_event".to_string(), 2_000),
            ("invalid_json".to_string(), 2_000),
            ("oversize".to_string(), 2_000),
            ("unknown_kind".to_string(), 2_000),
        ]
    );
    // The original bytes are kept, and the reason names the problem.
    let row = client
        .query_one(
            "SELECT payload, reason FROM ingest_errors WHERE reason_code = 'invalid_json' ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert!(String::from_utf8(row.get::<_, Vec<u8>>(0)).unwrap().starts_with("{not json"));
    assert!(row.get::<_, String>(1).contains("JSON"));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("vigil_ingest_dead_lettered_total{channel=\"nats\",reason=\"oversize\"} 2000"), "{text}");
    trigger.trigger();
    pipeline.await.unwrap().unwrap();
}

fn uuid_like(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn kill_9_mid_stream_loses_nothing_and_duplicates_nothing() {
    kill_9_mid_stream(1).await;
}

#[tokio::test]
async fn kill_9_mid_stream_of_batched_messages_loses_nothing_and_duplicates_nothing() {
    kill_9_mid_stream(100).await;
}

/// 200k events published `per_message` to a message while the ingester is
/// killed with SIGKILL part-way and restarted: the table ends with each once.
async fn kill_9_mid_stream(per_message: usize) {
    let scratch = Scratch::new("kill9");
    let nats = EmbeddedNats::start(&scratch.0).unwrap().unwrap();
    let (db, pool) = db().await;
    let js = jetstream(&nats.url()).await;
    let events = corpus(200_000, 11);
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move { publish_batched(&js, events, 1024, per_message).await.unwrap() })
    };
    let mut ingester = spawn_ingester(&db.url, &nats.url());
    let seen = wait_for(&pool, "SELECT count(*) FROM events", 30_000, Duration::from_secs(60)).await;
    assert!(seen >= 30_000, "the ingester made progress before the kill ({seen})");
    ingester.kill9();
    let at_kill = count(&pool, "SELECT count(*) FROM events").await;
    assert!(at_kill < 200_000, "killed mid-stream ({at_kill} of 200000 stored)");
    assert_eq!(publisher.await.unwrap(), 200_000);

    let mut ingester = spawn_ingester(&db.url, &nats.url());
    let stored = wait_for(&pool, "SELECT count(*) FROM events", 200_000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 200_000, "exact count after restart (saw {stored})");
    assert_eq!(count(&pool, "SELECT count(DISTINCT event_id) FROM events").await, 200_000);
    let summary = ingester.interrupt();
    assert!(summary.contains("stopped:"), "{summary}");
}

#[tokio::test]
async fn batch_messages_store_every_good_line_and_dead_letter_each_bad_one() {
    let scratch = Scratch::new("ndjson");
    let nats = EmbeddedNats::start(&scratch.0).unwrap().unwrap();
    let (db, pool) = db().await;
    let js = jetstream(&nats.url()).await;
    let good: Vec<Event> = corpus(2_000, 31).into_iter().filter(|e| e.kind == vigil_event::Kind::Process).collect();
    let n_good = good.len() as i64;
    assert!(n_good > 100, "the corpus has process events ({n_good})");
    // One message: every fourth line is broken in a different way, with blank lines between.
    let mut body = Vec::new();
    let mut bad = 0;
    for (i, e) in good.iter().enumerate() {
        body.extend(serde_json::to_vec(e).unwrap());
        body.push(b'\n');
        if i % 4 == 3 {
            bad += 1;
            let line: Vec<u8> = match bad % 3 {
                0 => format!("{{broken line {i}").into_bytes(),
                1 => {
                    let mut v = serde_json::to_value(e).unwrap();
                    v["kind"] = "auth".into();
                    v["id"] = uuid_like(i).into();
                    serde_json::to_vec(&v).unwrap()
                }
                _ => format!(r#"{{"id":"{}","time":"yesterday","kind":"process","source":"t"}}"#, uuid_like(i))
                    .into_bytes(),
            };
            body.extend(line);
            body.extend(b"\n\n");
        }
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "ndjson-test-1");
    headers.insert("Content-Type", vigil_ingest::publish::NDJSON);
    js.publish_with_headers("vigil.events.process", headers, body.clone().into()).await.unwrap().await.unwrap();
    // A second copy under another message id: the table keeps each event once.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "ndjson-test-2");
    headers.insert("Content-Type", vigil_ingest::publish::NDJSON);
    js.publish_with_headers("vigil.events.process", headers, body.into()).await.unwrap().await.unwrap();

    let _ingester = spawn_ingester(&db.url, &nats.url());
    let stored = wait_for(&pool, "SELECT count(*) FROM events", n_good, Duration::from_secs(60)).await;
    let dead = wait_for(&pool, "SELECT count(*) FROM ingest_errors", 2 * bad, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored, n_good, "every good line stored");
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, n_good, "and stored once");
    assert_eq!(dead, 2 * bad, "each bad line of both copies dead-lettered on its own");
    let client = pool.get().await.unwrap();
    let reasons: Vec<(String, i64)> = client
        .query("SELECT reason_code, count(*) FROM ingest_errors GROUP BY 1 ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let codes: Vec<&str> = reasons.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["invalid_event", "invalid_json", "kind_mismatch"], "{reasons:?}");
    // The reason names the line, and the payload is that line alone.
    let row = client
        .query_one(
            "SELECT reason, payload FROM ingest_errors WHERE reason_code = 'invalid_json' ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let reason: String = row.get(0);
    let payload = String::from_utf8(row.get::<_, Vec<u8>>(1)).unwrap();
    assert!(reason.starts_with("line "), "{reason}");
    assert!(payload.starts_with("{broken line ") && !payload.contains('\n'), "{payload}");
}

#[tokio::test]
async fn ingester_recovers_when_nats_restarts() {
    let scratch = Scratch::new("natsrestart");
    let mut nats = EmbeddedNats::start(&scratch.0).unwrap().unwrap();
    let port = nats.port();
    let (db, pool) = db().await;
    let js = jetstream(&nats.url()).await;
    publish_events(&js, corpus(100_000, 13), 1024).await.unwrap();
    let _ingester = spawn_ingester(&db.url, &nats.url());
    wait_for(&pool, "SELECT count(*) FROM events", 10_000, Duration::from_secs(60)).await;
    nats.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _nats = EmbeddedNats::start_on(&scratch.0, port).unwrap().unwrap();
    let stored = wait_for(&pool, "SELECT count(*) FROM events", 100_000, Duration::from_secs(120)).await;
    assert_eq!(stored, 100_000);
    assert_eq!(count(&pool, "SELECT count(DISTINCT event_id) FROM events").await, 100_000);
}

#[tokio::test]
async fn ingester_recovers_when_postgres_restarts() {
    let scratch = Scratch::new("pgrestart");
    let nats = EmbeddedNats::start(&scratch.0).unwrap().unwrap();
    let dir = scratch.0.clone();
    let mut pg =
        tokio::task::spawn_blocking(move || vigil_embedded::EmbeddedPostgres::start(&dir)).await.unwrap().unwrap();
    let url = pg.url("postgres");
    let pool = connect(&url, 2).unwrap();
    migrate(&pool, &MigrateOptions::default()).await.unwrap();
    let js = jetstream(&nats.url()).await;
    publish_events(&js, corpus(100_000, 17), 1024).await.unwrap();
    let _ingester = spawn_ingester(&url, &nats.url());
    wait_for(&pool, "SELECT count(*) FROM events", 10_000, Duration::from_secs(60)).await;
    let mut pg = tokio::task::spawn_blocking(move || {
        pg.stop().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        pg.start_again().unwrap();
        pg
    })
    .await
    .unwrap();
    let stored = wait_for(&pool, "SELECT count(*) FROM events", 100_000, Duration::from_secs(120)).await;
    assert_eq!(stored, 100_000);
    assert_eq!(count(&pool, "SELECT count(DISTINCT event_id) FROM events").await, 100_000);
    drop(_ingester);
    pool.close();
    tokio::task::spawn_blocking(move || pg.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn two_ingesters_share_the_load_without_duplicates() {
    let scratch = Scratch::new("scaleout");
    let nats = EmbeddedNats::start(&scratch.0).unwrap().unwrap();
    let (db, pool) = db().await;
    let js = jetstream(&nats.url()).await;
    let mut a = spawn_ingester(&db.url, &nats.url());
    let mut b = spawn_ingester(&db.url, &nats.url());
    tokio::time::sleep(Duration::from_secs(1)).await;
    publish_events(&js, corpus(100_000, 19), 1024).await.unwrap();
    let stored = wait_for(&pool, "SELECT count(*) FROM events", 100_000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stored, 100_000);
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 100_000);
    let (sa, sb) = (a.interrupt(), b.interrupt());
    let received = |s: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix("stopped: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (ra, rb) = (received(&sa), received(&sb));
    assert!(ra > 0 && rb > 0, "both processes took work: {ra} and {rb}\n{sa}\n{sb}");
    assert!(ra + rb >= 100_000, "together they received everything: {ra} + {rb}");
}

#[tokio::test]
async fn republished_messages_are_stored_once() {
    let scratch = Scratch::new("dedup");
    let nats = EmbeddedNats::start(&scratch.0).unwrap().unwrap();
    let (db, pool) = db().await;
    let js = jetstream(&nats.url()).await;
    let events = corpus(5_000, 23);
    publish_events(&js, events.clone(), 512).await.unwrap();
    // Same events again: JetStream's duplicate window drops them by Nats-Msg-Id.
    publish_events(&js, events.clone(), 512).await.unwrap();
    // And with new message ids: the table's idempotency catches them.
    let mut acks = Vec::new();
    for e in &events {
        acks.push(
            publish_raw(&js, e.kind.as_str(), &format!("again-{}", e.id), serde_json::to_vec(e).unwrap())
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    let _ingester = spawn_ingester(&db.url, &nats.url());
    let _ = wait_for(&pool, "SELECT count(*) FROM events", 5_000, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 5_000);
    let kinds = count(&pool, "SELECT count(DISTINCT kind) FROM events").await;
    assert!(kinds >= 5, "all lanes delivered ({kinds} kinds)");
}
