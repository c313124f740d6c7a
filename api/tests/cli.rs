//! The `vigil` binary end to end: `vigil up` with its own PostgreSQL and NATS,
//! `vigil serve`, `vigil migrate` and `vigil import` against the real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vigil_store::testing::TempDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_vigil");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn vigil(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("DATABASE_URL").env_remove("NATS_URL").env("VIGIL_LOG", "warn");
    c
}

/// A shared data file where `vigil up`'s demo loader finds it (so the test
/// expects what the product will load).
fn shared(path: &str) -> Option<PathBuf> {
    vigil_ingest::demo::find_shared_data(None).map(|d| d.join(path)).filter(|p| p.is_file())
}

/// Polls /health until it answers 200, or the child exits, or time runs out.
async fn wait_healthy(child: &mut Child, port: u16, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    let url = format!("http://127.0.0.1:{port}/health");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("vigil exited early with {status}");
        }
        if let Ok(resp) = reqwest::get(&url).await {
            if resp.status() == 200 {
                return resp.json().await.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "vigil did not become healthy within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn interrupt_and_wait(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let ok = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vigil did not stop within {timeout:?} of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn embedded_event_count(data_dir: &Path) -> i64 {
    embedded_count(data_dir, "SELECT count(*) FROM events").await
}

/// The connection string of the embedded database of a running `vigil up`.
fn embedded_url(data_dir: &Path) -> String {
    // The cluster's port is chosen at start; postmaster.pid names it (4th line).
    let pid_file = std::fs::read_to_string(data_dir.join("postgres/data/postmaster.pid")).unwrap();
    let port = pid_file.lines().nth(3).unwrap().trim();
    // As the application: its role and the password `vigil up` keeps for it.
    format!(
        "host={} port={port} user={} password={} dbname=vigil",
        data_dir.join("postgres").display(),
        vigil_embedded::APP_ROLE,
        embedded_app_password(data_dir)
    )
}

fn embedded_app_password(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("postgres/vigil_app.password")).unwrap().trim().to_string()
}

/// The count a `SELECT count(*) …` gives in the embedded database.
async fn embedded_count(data_dir: &Path, sql: &str) -> i64 {
    let client = vigil_store::connect_one(&embedded_url(data_dir)).await.unwrap();
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Polls `sql` (a count) until it is positive; false when `timeout` passes first.
async fn eventually_positive(data_dir: &Path, sql: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if embedded_count(data_dir, sql).await > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Runs `vigil retention run --json` (default policy) against the embedded
/// database of a running `vigil up` and returns its report. A pass the
/// server happens to be running at that moment holds the lock: wait and retry.
fn retention_pass(data_dir: &Path) -> serde_json::Value {
    let dir = data_dir.to_str().unwrap();
    for _ in 0..30 {
        let out = vigil(&["retention", "run", "--json", "--data-dir", dir])
            .env("DATABASE_URL", embedded_url(data_dir))
            .env_remove("VIGIL_RETENTION")
            .env_remove("VIGIL_INDEX_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("another maintenance pass is running") {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        assert!(out.status.success(), "vigil retention run failed: {stderr}");
        return serde_json::from_slice(&out.stdout).unwrap();
    }
    panic!("the server's maintenance pass kept the lock for 30 s");
}

/// Kills the child if a test fails before stopping it, so nothing is left running.
struct Guard(Option<Child>);
impl Guard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    fn take(&mut self) -> Child {
        self.0.take().unwrap()
    }
}
impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = Command::new("kill").arg("-INT").arg(c.id().to_string()).status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Removes the data directory even though the cluster inside belongs to another user.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn vigil_up_starts_answers_health_stops_cleanly_and_reuses_its_data() {
    let dir = std::env::temp_dir().join(format!("vigil-up-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = Cleanup(dir.clone());
    let dir_s = dir.to_str().unwrap();

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["up", "--data-dir", dir_s, "--listen", &listen, "--demo-events", "2000"];
    let mut guard = Guard(Some(vigil(&args).stdout(Stdio::piped()).spawn().unwrap()));
    let health = wait_healthy(guard.child(), port, Duration::from_secs(180)).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["storage_mode"], "timescaledb", "the set-up installs TimescaleDB and vigil up preloads it");

    // The embedded cluster wants passwords (kept readable by their owner
    // only) and the server works as an unprivileged role.
    for file in ["postgres/superuser.password", "postgres/vigil_app.password"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join(file)).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let pg_port = embedded_url(&dir).split("port=").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let no_password = format!("host=127.0.0.1 port={pg_port} user=postgres dbname=vigil");
    assert!(vigil_store::connect_one(&no_password).await.is_err(), "no connection without a password");
    assert_eq!(
        embedded_count(&dir, "SELECT count(*) FROM pg_roles WHERE rolname = current_user AND NOT rolsuper").await,
        1,
        "the application's role is no superuser"
    );
    let as_app = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'vigil' AND usename = 'vigil_app' AND application_name = 'vigil'";
    assert!(embedded_count(&dir, as_app).await > 0, "the server is connected as vigil_app");

    // Demo data is in the embedded database: the generated events plus the
    // real datasets when shared/data is beside the repository.
    let first = embedded_event_count(&dir).await;
    let expected_min = if shared("loghub/OpenSSH/OpenSSH_2k.log").is_some() { 2000 + 2000 + 2000 + 992 } else { 2000 };
    assert!(first >= expected_min, "demo data loaded: {first} events, want at least {expected_min}");

    // The demo's software: the graph worker finds vulnerable binaries running
    // (after its 5 s settle); the demo hunts run ~settle + 3 s after the load
    // and fill the alerts inbox.
    let running = "SELECT count(*) FROM vulnerabilities WHERE status = 'running'";
    assert!(eventually_positive(&dir, running, Duration::from_secs(30)).await, "in:vulns status:running has rows");
    let dormant = "SELECT count(*) FROM vulnerabilities WHERE status = 'dormant'";
    assert!(embedded_count(&dir, dormant).await > 0, "and some are dormant");
    assert_eq!(embedded_count(&dir, "SELECT count(*) FROM hunts WHERE meta->>'demo' = 'true' AND enabled").await, 4);
    let hunt_alerts = "SELECT count(*) FROM alerts WHERE hunt_id IS NOT NULL";
    assert!(eventually_positive(&dir, hunt_alerts, Duration::from_secs(30)).await, "the demo hunts raised alerts");

    // The demo fits the default retention: a maintenance pass right after the
    // load (the server's own first pass comes a minute after start) removes
    // nothing, so every event the demo stored is still there.
    assert_eq!(embedded_event_count(&dir).await, first, "nothing came or went since the load");
    let report = retention_pass(&dir);
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["target"] == "events[kind=log]"), "the pass covers the kinds: {report}");
    let removed: Vec<&serde_json::Value> =
        steps.iter().filter(|s| s["rows"] != 0 || s["chunks"] != 0 || s["related"] != 0).collect();
    assert!(removed.is_empty(), "a retention pass right after `vigil up` removed demo data: {removed:#?}");
    assert_eq!(embedded_event_count(&dir).await, first, "the retention pass left every demo event");

    // The embedded NATS admits only identities: the server's, made at first
    // start, and agents enrolled beside it (it reloads at once). Secrets are 0600.
    let out = run(&mut vigil(&["agent", "enroll", "web-01", "--data-dir", dir_s]));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("command_key = \"N"), "{said}");
    assert!(said.contains("The embedded NATS reloaded its authorization"), "{said}");
    use std::os::unix::fs::PermissionsExt;
    for secret in ["agents/web-01.nk", "nats-auth/service.nk", "command-signing.nk"] {
        let mode = std::fs::metadata(dir.join(secret)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
    let auth = std::fs::read_to_string(dir.join("nats-auth/authorization.conf")).unwrap();
    assert!(auth.contains("vigil.commands.agent.web-01"), "{auth}");

    // The landing page is served.
    let page = reqwest::get(format!("http://{listen}/")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Vigil"));

    let mut child = guard.take();
    let status = interrupt_and_wait(&mut child, Duration::from_secs(60));
    assert!(status.success(), "Ctrl-C gives a clean exit, got {status}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Vigil is up: http://"), "prints the URL:\n{stdout}");
    assert!(stdout.contains("Demo hunts: 4 created; first run in ~"), "{stdout}");
    assert!(stdout.contains("Stopped."), "{stdout}");
    assert!(stdout.contains("PostgreSQL: embedded, postgres://vigil_app@127.0.0.1:"), "{stdout}");
    assert!(!stdout.contains(&embedded_app_password(&dir)), "the database password is never printed:\n{stdout}");
    // The admin token is printed once, when made, and kept readable by its owner only.
    let token_file = dir.join("admin-token");
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    assert!(token.starts_with("vgl_") && stdout.contains(&token), "the new token is printed:\n{stdout}");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!dir.join("postgres/data/postmaster.pid").exists(), "the embedded PostgreSQL was stopped");
    assert!(reqwest::get(format!("http://{listen}/health")).await.is_err(), "the server is gone");

    // Second run: same data, no second demo load.
    let mut guard = Guard(Some(vigil(&args).stdout(Stdio::piped()).spawn().unwrap()));
    wait_healthy(guard.child(), port, Duration::from_secs(120)).await;
    assert_eq!(embedded_event_count(&dir).await, first, "a second `vigil up` reuses the data as it was");
    let mut child = guard.take();
    let status = interrupt_and_wait(&mut child, Duration::from_secs(60));
    assert!(status.success());
    let stdout = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string();
    assert!(stdout.contains("already has events"), "{stdout}");
    assert!(!stdout.contains(&token), "a later start does not print the token again:\n{stdout}");
    assert!(stdout.contains(&format!("admin token kept in {}", token_file.display())), "{stdout}");
}

#[tokio::test]
async fn vigil_serve_uses_database_url() {
    let db = TempDatabase::create().await.unwrap();
    let port = free_port();
    let mut guard = Guard(Some(
        vigil(&["serve", "--listen", &format!("127.0.0.1:{port}")]).env("DATABASE_URL", &db.url).spawn().unwrap(),
    ));
    let health = wait_healthy(guard.child(), port, Duration::from_secs(60)).await;
    assert_eq!(health["status"], "ok");
    assert!(interrupt_and_wait(&mut guard.take(), Duration::from_secs(30)).success());
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn migrate_reports_and_import_summarises_stored_duplicate_rejected() {
    let db = TempDatabase::create().await.unwrap();
    let out = run(vigil(&["migrate", "--timescaledb", "off"]).env("DATABASE_URL", &db.url));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("storage mode: native"), "{text}");
    let out = run(vigil(&["migrate"]).env("DATABASE_URL", &db.url));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied 0 migration(s)"));

    // A file with two good syslog lines and one bad one.
    let dir = std::env::temp_dir().join(format!("vigil-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(dir.clone());
    let file = dir.join("auth.log");
    std::fs::write(
        &file,
        "Nov 20 10:00:01 web-01 sshd[1]: Failed password for root from 203.0.113.9 port 4242 ssh2\n\
         this line is not syslog\n\
         Nov 20 10:00:02 web-01 sshd[1]: Accepted publickey for alice from 10.0.0.4 port 5555 ssh2\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run(vigil(&["import", f]).env("DATABASE_URL", &db.url));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(syslog): 2 stored, 0 duplicate, 1 rejected"), "{text}");
    assert!(text.contains(":line 2: expected a syslog timestamp"), "names the bad line: {text}");
    let out = run(vigil(&["import", f]).env("DATABASE_URL", &db.url));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 stored, 2 duplicate, 1 rejected"));

    // Rejected lines are kept with their reason and bytes.
    let pool = vigil_store::connect(&db.url, 1).unwrap();
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT origin, reason, convert_from(payload, 'UTF8') FROM ingest_errors WHERE channel = 'file'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, String>(0).ends_with("auth.log:2"));
    assert!(row.get::<_, String>(1).contains("syslog timestamp"));
    assert_eq!(row.get::<_, String>(2), "this line is not syslog");

    // Other formats are detected from their content.
    let samples = [
        ("falco.json", r#"{"hostname":"web-01","output":"shell in container","priority":"Warning","rule":"Terminal shell in container","time":"2026-11-20T10:00:00Z","output_fields":{"proc.name":"bash","proc.pid":7,"user.name":"root"}}"#, "falco-json"),
        ("eve.json", r#"{"timestamp":"2026-11-20T10:00:00.000000+0000","event_type":"alert","src_ip":"10.0.0.5","src_port":5000,"dest_ip":"203.0.113.9","dest_port":4444,"proto":"TCP","alert":{"signature":"ET TROJAN test","severity":1}}"#, "suricata-eve"),
        ("trivy.json", "{\n  \"SchemaVersion\": 2,\n  \"ArtifactName\": \"web-01\",\n  \"Results\": [{\"Target\": \"debian\", \"Vulnerabilities\": [{\"VulnerabilityID\": \"CVE-2024-6387\", \"PkgName\": \"openssh-server\", \"InstalledVersion\": \"1\", \"FixedVersion\": \"2\", \"Severity\": \"CRITICAL\"}]}]\n}\n", "trivy-json"),
    ];
    for (name, body, format) in samples {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        // Their dates are fixed: one day older than any retention keeps.
        let out = run(vigil(&["import", path.to_str().unwrap(), "--oldest", "any"]).env("DATABASE_URL", &db.url));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("({format}): 1 stored, 0 duplicate, 0 rejected")), "{text}");
    }
    let kinds: Vec<String> = client
        .query("SELECT kind FROM events WHERE source IN ('falco', 'suricata', 'trivy') ORDER BY source", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["alert", "alert", "vuln"]);

    // The real Zeek sample (its times are from 1970) goes in whole when asked for.
    if let Some(zeek) = shared("stratosphere_njrat_zeek/labeled-conn.log") {
        let args = ["import", zeek.to_str().unwrap(), "--oldest", "any"];
        let out = run(vigil(&args).env("DATABASE_URL", &db.url));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("(zeek-conn-tsv): 992 stored, 0 duplicate, 0 rejected"), "{text}");
    }
}
