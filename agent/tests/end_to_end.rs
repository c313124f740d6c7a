//! The agent end to end: `vigil-agent run` → NATS JetStream → the ingest
//! pipeline → PostgreSQL, on a real nats-server and database. What the
//! agent reports about this host must land in `events`, once each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_ingest::metrics::Metrics;
use vigil_ingest::nats::NatsConfig;
use vigil_ingest::shutdown::Shutdown;
use vigil_store::testing::migrated;

const AGENT: &str = env!("CARGO_BIN_EXE_vigil-agent");

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn scalar(pool: &vigil_store::Pool, sql: &str) -> i64 {
    pool.get().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn what_the_agent_reports_lands_in_events_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _nats = Kill(
        Command::new("/usr/sbin/nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path().join("nats"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed by scripts/setup.sh"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("nats://127.0.0.1:{port}");
    let (_db, pool) = migrated(vigil_store::TimescaleChoice::Auto).await;
    let (trigger, stop) = Shutdown::new();
    let pipeline = tokio::spawn(vigil_ingest::nats::run(
        NatsConfig::new(url.clone()),
        pool.clone(),
        Arc::new(Metrics::new()),
        stop,
    ));

    let agent = Kill(
        Command::new(AGENT)
            .arg("run")
            .env("NATS_URL", &url)
            .env("VIGIL_AGENT_ID", "e2e-agent")
            .env("VIGIL_AGENT_SPOOL_DIR", dir.path().join("spool"))
            .env("VIGIL_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // A process started after the agent: its launch must arrive.
    let marker = Kill(Command::new("/bin/sleep").arg("7.25").spawn().unwrap());
    let marker_pid = i64::from(marker.0.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = format!(
        "SELECT count(*) FROM events WHERE source = 'vigil-agent' AND kind = 'process' AND process_pid = {marker_pid} AND activity_id = 1"
    );
    while scalar(&pool, &want).await == 0 {
        assert!(Instant::now() < deadline, "the marker process's launch never reached the table");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The start-up snapshot brought the host's packages and processes too.
    let host: String = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT host FROM events WHERE process_pid = $1::int8::int4 LIMIT 1", &[&marker_pid])
        .await
        .unwrap()
        .get(0);
    assert!(!host.is_empty());
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(&pool, "SELECT count(*) FROM events WHERE kind = 'package'").await == 0 {
        assert!(Instant::now() < deadline, "no package inventory arrived");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(agent);
    drop(marker);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Batches and snapshots never store an event twice.
    let rows = scalar(&pool, "SELECT count(*) FROM events").await;
    let distinct = scalar(&pool, "SELECT count(DISTINCT event_id) FROM events").await;
    assert_eq!(rows, distinct);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM ingest_errors").await, 0, "nothing the agent sent was refused");
    trigger.trigger();
    pipeline.await.unwrap().unwrap();
}
