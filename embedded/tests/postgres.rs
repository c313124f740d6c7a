//! The embedded cluster of `vigil up`: passwords for every connection, kept in
//! 0600 files; the application works as an unprivileged role; a cluster an
//! earlier version made with `trust` is upgraded in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration, Utc};
use vigil_embedded::{EmbeddedPostgres, APP_ROLE};
use vigil_event::{Event, Kind};
use vigil_store::retention::{self, RetentionPolicy, RunOptions};
use vigil_store::{connect, connect_one, migrate, EventWriter, MigrateOptions, Pool, StorageMode};

/// A scratch data directory, removed at the end (the cluster inside belongs to `postgres`).
struct Scratch(PathBuf);
impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vigil-embedded-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(dir: &Path) -> EmbeddedPostgres {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir)).await.unwrap().unwrap()
}

async fn stop(mut pg: EmbeddedPostgres) {
    tokio::task::spawn_blocking(move || pg.stop()).await.unwrap().unwrap();
}

async fn count(pool: &Pool, sql: &str) -> i64 {
    pool.get().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

fn log_event(at: chrono::DateTime<Utc>, id: &str) -> Event {
    let mut e = Event::new(Kind::Log, "test", at, id.as_bytes());
    e.host = Some("h1".into());
    e.message = format!("event {id}");
    e
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// What a user checks: without the password nobody gets in, with a wrong one
/// neither; the application's role is no superuser.
async fn assert_passwords_required(pg: &EmbeddedPostgres, app_url: &str) {
    for user in ["postgres", APP_ROLE] {
        for password in ["", "password=wrong"] {
            let url = format!("host=127.0.0.1 port={} user={user} dbname=vigil {password}", pg.port());
            let e = connect_one(&url).await.err().unwrap_or_else(|| panic!("{user} connected with `{password}`"));
            assert!(e.to_string().contains("password"), "{user} without the right password: {e}");
        }
    }
    let socket = format!("host={} port={} user=postgres dbname=vigil", pg.socket_dir().display(), pg.port());
    assert!(connect_one(&socket).await.is_err(), "the Unix socket wants the password too");
    let app = connect_one(app_url).await.unwrap();
    let row = app
        .query_one("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user", &[])
        .await
        .unwrap();
    let (superuser, createrole, createdb): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    assert!(!superuser && !createrole && !createdb, "the application role is unprivileged");
    let e = app.batch_execute("CREATE ROLE intruder").await.unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("permission denied"), "{e:?}");
}

#[tokio::test]
async fn the_app_role_needs_its_password_is_no_superuser_and_runs_vigil() {
    let scratch = Scratch::new("scram");
    let pg = start(&scratch.0).await;
    let app_url = pg.prepare_app(true).await.unwrap();
    assert!(app_url.starts_with(&format!("postgres://{APP_ROLE}:")), "the app connects as its own role");
    let password = std::fs::read_to_string(pg.app_password_file()).unwrap();
    assert!(app_url.contains(password.trim()), "the app's URL carries the password of its file");
    assert!(!pg.app_url_for_display().contains(password.trim()), "the URL for messages does not");
    #[cfg(unix)]
    for file in [pg.superuser_password_file(), pg.app_password_file()] {
        assert_eq!(mode(&file), 0o600, "{} is readable by its owner only", file.display());
    }
    assert_passwords_required(&pg, &app_url).await;

    // This cluster serves no TLS: sslmode=require refuses it, and says why.
    let refused = connect(&format!("{app_url}?sslmode=require"), 1).unwrap().get().await.err().unwrap();
    let e = vigil_store::StoreError::from(refused).to_string();
    assert!(e.contains("TLS") && e.contains("server does not support TLS"), "{e}");

    // The app role migrates, ingests, queries and runs retention (dropping
    // whole TimescaleDB chunks) on its own.
    let pool = connect(&app_url, 2).unwrap();
    let report = migrate(&pool, &MigrateOptions::default()).await.unwrap();
    assert_eq!(report.mode, StorageMode::TimescaleDb, "the set-up installs TimescaleDB and the cluster preloads it");
    let now = Utc::now();
    let events: Vec<Event> = (0..50)
        .map(|i| log_event(now - Duration::minutes(i), &format!("new-{i}")))
        .chain((0..20).map(|i| log_event(now - Duration::days(12) - Duration::minutes(i), &format!("old-{i}"))))
        .collect();
    assert_eq!(EventWriter::new(pool.clone()).write(&events).await.unwrap().inserted, 70);
    assert_eq!(count(&pool, "SELECT count(*) FROM events WHERE message LIKE 'event new-%'").await, 50);
    let policy = RetentionPolicy::parse("events=10d,rollup_after=off").unwrap();
    let rep = retention::run(&pool, &policy, now, RunOptions::default()).await.unwrap();
    assert!(rep.ok(), "retention as the app role: {rep:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 50, "the 12-day-old chunk was dropped");
    pool.close();

    // A second start keeps the passwords.
    let saved = std::fs::read_to_string(pg.app_password_file()).unwrap();
    stop(pg).await;
    let pg = start(&scratch.0).await;
    let again = pg.prepare_app(true).await.unwrap();
    assert_eq!(std::fs::read_to_string(pg.app_password_file()).unwrap(), saved);
    let pool = connect(&again, 1).unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 50);
    pool.close();

    // Removing the superuser's password file resets that password at the next start.
    stop(pg).await;
    let old = std::fs::read_to_string(scratch.0.join("postgres/superuser.password")).unwrap();
    std::fs::remove_file(scratch.0.join("postgres/superuser.password")).unwrap();
    let pg = start(&scratch.0).await;
    assert_ne!(std::fs::read_to_string(pg.superuser_password_file()).unwrap(), old);
    pg.prepare_app(true).await.unwrap();
    assert!(connect_one(&pg.url("postgres")).await.is_ok(), "the new superuser password works");
    stop(pg).await;
}

/// Runs `program` from the server's binaries as the cluster's OS user.
fn pg_command(program: &str) -> Command {
    let path = EmbeddedPostgres::locate_bin(None).unwrap().join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A cluster as an earlier `vigil up` left it: `initdb -A trust`, the
/// `vigil` database migrated by the superuser, with events, still running.
async fn trust_cluster(dir: &Path) -> i64 {
    let root = dir.join("postgres");
    std::fs::create_dir_all(&root).unwrap();
    if is_root() {
        ok(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&root));
    }
    let data = root.join("data");
    ok(pg_command("initdb").arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]));
    let port = vigil_embedded::free_port().unwrap();
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c shared_preload_libraries=timescaledb",
        root.display()
    );
    ok(pg_command("pg_ctl")
        .arg("-D")
        .arg(&data)
        .args(["-o", &opts, "-l"])
        .arg(root.join("server.log"))
        .args(["-w", "start"]));
    let admin = connect_one(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await.unwrap();
    admin.batch_execute("CREATE DATABASE vigil").await.unwrap();
    let pool = connect(&format!("postgres://postgres@127.0.0.1:{port}/vigil"), 2).unwrap();
    migrate(&pool, &MigrateOptions::default()).await.unwrap();
    let events: Vec<Event> = (0..30).map(|i| log_event(Utc::now() - Duration::minutes(i), &format!("e{i}"))).collect();
    EventWriter::new(pool.clone()).write(&events).await.unwrap();
    pool.close();
    30
}

#[tokio::test]
async fn a_trust_cluster_of_an_earlier_version_is_upgraded_in_place() {
    let scratch = Scratch::new("upgrade");
    let stored = trust_cluster(&scratch.0).await;
    // Started (and left running) by the earlier version; this one takes over.
    let pg = start(&scratch.0).await;
    let app_url = pg.prepare_app(true).await.unwrap();
    assert_passwords_required(&pg, &app_url).await;
    let pool = connect(&app_url, 2).unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, stored, "the data is kept");
    let owner: String = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT tableowner::text FROM pg_tables WHERE tablename = 'events'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, APP_ROLE, "the schema now belongs to the application role");
    // It migrates (nothing left to do) and writes as before.
    let report = migrate(&pool, &MigrateOptions::default()).await.unwrap();
    assert!(report.applied.is_empty());
    let more: Vec<Event> = (0..5).map(|i| log_event(Utc::now(), &format!("after-{i}"))).collect();
    assert_eq!(EventWriter::new(pool.clone()).write(&more).await.unwrap().inserted, 5);
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, stored + 5);
    pool.close();
    stop(pg).await;
}
