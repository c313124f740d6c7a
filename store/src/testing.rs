//! Throw-away databases on the real test server, one per test, so tests run in
//! parallel without sharing state. The admin connection comes from
//! `VIGIL_TEST_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::sync::atomic::{AtomicU32, Ordering};

/// The admin URL tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("VIGIL_TEST_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for the life of this value and is dropped after it.
#[derive(Debug)]
pub struct TempDatabase {
    pub name: String,
    pub url: String,
}

impl TempDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> Result<Self, crate::StoreError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vigil_test_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_subsec_micros()
        );
        let admin = admin_url();
        let client = crate::connect_one(&admin).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(crate::StoreError::db("creating a test database"))?;
        let url = match admin.rfind('/') {
            Some(i) => format!("{}/{name}", &admin[..i]),
            None => format!("{admin} dbname={name}"),
        };
        Ok(TempDatabase { name, url })
    }
}

/// A new database, migrated in the given storage mode, and a pool on it.
/// Panics on failure: it is for tests.
#[allow(clippy::expect_used)]
pub async fn migrated(choice: crate::TimescaleChoice) -> (TempDatabase, crate::Pool) {
    let db = TempDatabase::create().await.expect("create test database");
    let pool = crate::connect(&db.url, 4).expect("pool");
    crate::migrate(&pool, &crate::MigrateOptions { timescaledb: choice }).await.expect("migrate");
    (db, pool)
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // drop the database from a thread with a runtime of its own.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = crate::connect_one(&admin_url()).await {
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A file of the shared public data set (`shared/data/<path>`: Sigma rules,
/// loghub logs, the labelled Zeek capture …), which lives beside the
/// repository rather than in it (its licences differ). Looked up in
/// `VIGIL_SHARED_DATA`, then `../shared/data` from the workspace root, then
/// `/work/shared/data`; `None` (and a note on stderr) when it is nowhere, so a
/// checkout without it still runs every other test.
pub fn shared_data(path: &str) -> Option<std::path::PathBuf> {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = std::env::var_os("VIGIL_SHARED_DATA")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([workspace.join("../shared/data"), std::path::PathBuf::from("/work/shared/data")]);
    for dir in candidates {
        let p = dir.join(path);
        if p.is_file() {
            return Some(p);
        }
    }
    eprintln!("skipped: shared/data/{path} not found (set VIGIL_SHARED_DATA to the shared data directory)");
    None
}

/// 15-second metric events for two hosts over `hours` hours from `start`, for
/// the retention and rollup tests of store and search; cpu
/// varies per sample, `load1` is missing from host b, `note` is not a number.
pub fn metric_samples(start: chrono::DateTime<chrono::Utc>, hours: i64) -> Vec<vigil_event::Event> {
    let mut out = Vec::new();
    for (h, host) in ["a", "b"].into_iter().enumerate() {
        for i in 0..hours * 240 {
            let t = start + chrono::Duration::seconds(i * 15);
            let mut e =
                vigil_event::Event::new(vigil_event::Kind::Metric, "vigil-agent", t, format!("{host}-{i}").as_bytes());
            e.host = Some(format!("host-{host}"));
            let cpu = ((i * 37 + h as i64 * 11) % 1000) as f64 / 10.0;
            e.raw = if h == 0 {
                serde_json::json!({"metric": "cpu", "cpu_pct": cpu, "load1": (i % 7) as f64 * 0.5, "note": "x"})
            } else {
                serde_json::json!({"metric": "cpu", "cpu_pct": cpu, "note": "y"})
            };
            out.push(e);
        }
    }
    out
}
