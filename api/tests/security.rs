//! The control plane's smaller guards, against a real `vigil serve` and
//! PostgreSQL: live tails end when their token is revoked or expires and are
//! capped per token; tokens expire; failed token checks are limited per
//! address before any lookup; events older than the retention are refused at
//! ingest (HTTP, NATS and `vigil import`) unless an import asks for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::Value;
use vigil_event::{Event, Kind};
use vigil_store::testing::TempDatabase;

/// `vigil token create` with extra arguments: (status ok, stdout, stderr).
fn token_create(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::BIN)
        .args(["token", "create", "--name", "security"])
        .args(args)
        .env("DATABASE_URL", db_url)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

async fn session(base: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(format!("{base}/api/v1/session")).bearer_auth(token).send().await.unwrap()
}

async fn open_tail(base: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/tail"))
        .query(&[("query", "host:nobody-here")])
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Reads the stream until it ends (or `within` passes): the `error` event's
/// data, if one came, and whether the stream ended.
async fn read_to_end(resp: &mut reqwest::Response, within: Duration) -> (Option<Value>, bool) {
    let (deadline, mut buf, mut error) = (tokio::time::Instant::now() + within, String::new(), None);
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(_) => return (error, true),
            Err(_) => return (error, false),
        }
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if block.lines().any(|l| l == "event: error") {
                let data = block.lines().find_map(|l| l.strip_prefix("data:")).unwrap();
                error = Some(serde_json::from_str(data.trim()).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn a_revoked_tokens_tail_ends_within_one_poll_and_tails_are_capped_per_token() {
    let db = TempDatabase::create().await.unwrap();
    let env = [("VIGIL_RATE_LIMIT", "0"), ("VIGIL_MAX_TAILS_PER_TOKEN", "2")];
    let (_server, base) = common::serve(&db.url, &env).await;
    let viewer = common::token(&db.url, "viewer", "tailer");
    let other = common::token(&db.url, "viewer", "other");

    let mut first = open_tail(&base, &viewer).await;
    assert_eq!(first.status(), 200);
    let second = open_tail(&base, &viewer).await;
    assert_eq!(second.status(), 200);
    let third = open_tail(&base, &viewer).await;
    assert_eq!(third.status(), 429, "the third tail of one token is refused");
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_tails");
    assert!(body["error"]["message"].as_str().unwrap().contains("2 live tails"), "{body}");
    assert_eq!(open_tail(&base, &other).await.status(), 200, "another token has its own tails");

    // The tail runs; then its token is revoked with the CLI.
    let (_, running) = read_to_end(&mut first, Duration::from_secs(2)).await;
    assert!(!running, "the tail streams while its token works");
    let id = session(&base, &viewer).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let revoked = Command::new(common::BIN).args(["token", "revoke", &id]).env("DATABASE_URL", &db.url).status();
    assert!(revoked.unwrap().success());
    let at = Instant::now();
    let (error, ended) = read_to_end(&mut first, Duration::from_secs(10)).await;
    assert!(ended, "the stream ends");
    assert!(at.elapsed() < Duration::from_millis(2_500), "within one poll (1 s): took {:?}", at.elapsed());
    let message = error.expect("an error event says why")["message"].as_str().unwrap().to_string();
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(session(&base, &viewer).await.status(), 401);
}

#[tokio::test]
async fn tokens_expire_with_a_clear_error_and_their_tails_end() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_RATE_LIMIT", "0")]).await;

    let (ok, _, err) = token_create(&db.url, &["--role", "viewer", "--expires", "2020-01-01"]);
    assert!(!ok && err.contains("not in the future"), "{err}");
    let (ok, _, err) = token_create(&db.url, &["--role", "viewer", "--expires", "soon"]);
    assert!(!ok && err.contains("\"soon\" is not a duration"), "{err}");
    let (ok, long, err) = token_create(&db.url, &["--role", "viewer", "--expires", "30d"]);
    assert!(ok && err.contains("expires 20"), "{err}");
    assert_eq!(session(&base, &long).await.status(), 200);

    let (ok, token, err) = token_create(&db.url, &["--role", "viewer", "--expires", "3s"]);
    assert!(ok, "{err}");
    assert_eq!(session(&base, &token).await.status(), 200, "works until it expires");
    let mut tail = open_tail(&base, &token).await;
    assert_eq!(tail.status(), 200);
    let (error, ended) = read_to_end(&mut tail, Duration::from_secs(10)).await;
    assert!(ended, "the tail ends when its token expires");
    assert!(error.unwrap()["message"].as_str().unwrap().contains("expired"));

    let r = session(&base, &token).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_expired");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("token expired at 20"), "{body}");
    assert_eq!(session(&base, &long).await.status(), 200, "the other token still works");
}

#[tokio::test]
async fn failed_token_checks_are_limited_per_address_before_any_lookup() {
    let db = TempDatabase::create().await.unwrap();
    // Five failures, then one back every 4 s.
    let env = [("VIGIL_RATE_LIMIT", "0"), ("VIGIL_AUTH_FAILURE_LIMIT", "0.25,5")];
    let (_server, base) = common::serve(&db.url, &env).await;
    let viewer = common::token(&db.url, "viewer", "victim");
    let pool = vigil_store::connect(&db.url, 1).unwrap();
    let last_used = || async {
        let c = pool.get().await.unwrap();
        let row = c.query_one("SELECT last_used_at FROM api_tokens WHERE name = 'victim'", &[]).await.unwrap();
        row.get::<_, Option<chrono::DateTime<Utc>>>(0)
    };

    for i in 0..5 {
        let r = session(&base, &format!("vgl_guess-{i}")).await;
        assert_eq!(r.status(), 401, "guess {i} is looked up and refused");
    }
    let r = session(&base, "vgl_guess-5").await;
    assert_eq!(r.status(), 429, "the address is past its failures");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].as_str().unwrap().contains("127.0.0.1"), "{body}");

    // Even a good token from that address is refused before it is looked up:
    // the lookup would have stamped `last_used_at`.
    assert_eq!(last_used().await, None);
    assert_eq!(session(&base, &viewer).await.status(), 429);
    assert_eq!(last_used().await, None, "no lookup happened");

    // The budget refills.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(session(&base, &viewer).await.status(), 200);
    assert!(last_used().await.is_some());
}

fn event_at(time: chrono::DateTime<Utc>, n: u32) -> String {
    let mut e = Event::new(Kind::Auth, "sshd", time, format!("age-{n}").as_bytes());
    e.host = Some("web-01".into());
    e.message = format!("Failed password for root #{n}");
    serde_json::to_string(&e).unwrap()
}

/// The count `sql` returns; -1 while it cannot run (the schema not there yet).
async fn count(db_url: &str, sql: &str) -> i64 {
    let pool = vigil_store::connect(db_url, 1).unwrap();
    pool.get().await.unwrap().query_one(sql, &[]).await.map_or(-1, |r| r.get(0))
}

#[tokio::test]
async fn http_ingest_refuses_events_older_than_the_retention_and_keeps_the_rest() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_RETENTION", "events=30d,rollup_after=off")]).await;
    let ingest = common::token(&db.url, "ingest", "ingest");
    let now = Utc::now();
    let body = [
        event_at(now - TimeDelta::minutes(5), 1),
        event_at(now - TimeDelta::days(40), 2),
        event_at(now + TimeDelta::days(3), 3),
        event_at(now - TimeDelta::days(29), 4),
    ]
    .join("\n");
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(&ingest)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["received"].as_u64(), v["stored"].as_u64()), (Some(4), Some(2)), "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!((rejected[0]["line"].as_u64(), rejected[0]["code"].as_str()), (Some(2), Some("too_old")));
    let reason = rejected[0]["reason"].as_str().unwrap();
    assert!(reason.contains("field `time`") && reason.contains("30 days"), "{reason}");
    assert_eq!((rejected[1]["line"].as_u64(), rejected[1]["code"].as_str()), (Some(3), Some("invalid_event")));
    assert!(rejected[1]["reason"].as_str().unwrap().contains("ahead"), "{v}");
    assert_eq!(count(&db.url, "SELECT count(*) FROM events").await, 2);
    let letters = "SELECT count(*) FROM ingest_errors WHERE channel = 'http' AND reason_code = 'too_old'";
    assert_eq!(count(&db.url, letters).await, 1, "the refused event is a dead letter");
}

/// `vigil import` of `path` with `args`: (status ok, stdout, stderr).
fn import(db_url: &str, path: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::BIN)
        .arg("import")
        .arg(path)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env_remove("VIGIL_RETENTION")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn import_refuses_history_older_than_the_retention_unless_asked() {
    let db = TempDatabase::create().await.unwrap();
    let path = std::env::temp_dir().join(format!("vigil-history-{}-{}.ndjson", std::process::id(), db.name));
    let now = Utc::now();
    let lines = [
        event_at(now - TimeDelta::hours(1), 1),
        event_at(now - TimeDelta::days(400), 2),
        event_at(now - TimeDelta::days(1000), 3),
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let name = path.display().to_string();

    // The default policy keeps events at most 365 days: the older two are refused, with the reason.
    let (ok, out, err) = import(&db.url, &path, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("1 stored, 0 duplicate, 2 rejected"), "{out}");
    assert!(out.contains(&format!("rejected {name}:line 2: field `time`")), "{out}");
    assert!(out.contains("365 days") && out.contains("--oldest"), "{out}");
    let letters = "SELECT count(*) FROM ingest_errors WHERE channel = 'file' AND reason_code = 'too_old'";
    assert_eq!(count(&db.url, letters).await, 2);

    // Asked for: history back to 800 days ago, with a note that retention would delete it.
    let (ok, out, err) = import(&db.url, &path, &["--oldest", "800d"]);
    assert!(ok, "{err}");
    assert!(out.contains("1 stored, 1 duplicate, 1 rejected"), "{out}");
    assert!(out.contains("is before the oldest time accepted"), "{out}");
    assert!(err.contains("retention pass deletes") && err.contains("365"), "{err}");
    let (ok, out, _) = import(&db.url, &path, &["--oldest", "any"]);
    assert!(ok && out.contains("1 stored, 2 duplicate, 0 rejected"), "{out}");
    assert_eq!(count(&db.url, "SELECT count(*) FROM events").await, 3);

    let (ok, _, err) = import(&db.url, &path, &["--oldest", "last tuesday"]);
    assert!(!ok && err.contains("not a time"), "{err}");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn the_nats_pipeline_dead_letters_events_older_than_the_retention() {
    let scratch =
        std::env::temp_dir().join(format!("vigil-age-nats-{}-{}", std::process::id(), Utc::now().timestamp_micros()));
    std::fs::create_dir_all(&scratch).unwrap();
    let nats =
        vigil_embedded::EmbeddedNats::start(&scratch).unwrap().expect("nats-server is installed by scripts/setup.sh");
    let db = TempDatabase::create().await.unwrap();
    let client = vigil_ingest::nats::connect(&nats.url(), &Default::default()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    vigil_ingest::nats::ensure_streams(&js, &vigil_ingest::nats::NatsConfig::new(nats.url())).await.unwrap();
    let mut ingester = Command::new(common::BIN)
        .args(["ingest", "--nats-url", &nats.url()])
        .env("DATABASE_URL", &db.url)
        .env("VIGIL_RETENTION", "events=30d,rollup_after=off")
        .env("VIGIL_LOG", "warn")
        .spawn()
        .unwrap();

    let now = Utc::now();
    for (n, age) in [(1, TimeDelta::minutes(1)), (2, TimeDelta::days(31))] {
        let payload = event_at(now - age, n).into_bytes();
        vigil_ingest::publish::publish_raw(&js, "auth", &format!("age-{n}"), payload).await.unwrap().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let letters = "SELECT count(*) FROM ingest_errors WHERE channel = 'nats' AND reason_code = 'too_old'";
    while count(&db.url, letters).await < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = ingester.kill();
    let _ = ingester.wait();
    drop(nats);
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(count(&db.url, letters).await, 1, "the 31-day-old event is dead-lettered");
    assert_eq!(count(&db.url, "SELECT count(*) FROM events").await, 1, "the recent one is stored");
}
