//! SRQL row conformance: each case in `srql/tests/rows/*.case` runs against a
//! real PostgreSQL seeded with `fixtures/srql_seed.sql`, in both storage
//! modes, and must return exactly the expected rows. `SRQL_BLESS=1` rewrites
//! the expectations from what the database returns (review the diff).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_search::{run, QueryOptions};
use vigil_srql::casefile;
use vigil_srql::{compile, Config};
use vigil_store::testing::TempDatabase;
use vigil_store::{connect, migrate, MigrateOptions, Pool, TimescaleChoice};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-15T12:00:00Z").unwrap().with_timezone(&Utc)
}

async fn seeded(choice: TimescaleChoice) -> (TempDatabase, Pool) {
    let db = TempDatabase::create().await.unwrap();
    let pool = connect(&db.url, 2).unwrap();
    migrate(&pool, &MigrateOptions { timescaledb: choice }).await.unwrap();
    let client = pool.get().await.unwrap();
    // Native partitions for the seeded days.
    client.execute("SELECT vigil_ensure_event_partitions('2026-01-09', '2026-01-16')", &[]).await.unwrap();
    let seed = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/srql_seed.sql")).unwrap();
    client.batch_execute(&seed).await.unwrap();
    drop(client);
    (db, pool)
}

fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{}", (f * 1000.0).round() / 1000.0),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The planner's configuration for a case file: `*rollup*` files run with a
/// metric rollup boundary at 2026-01-15T00:00:00Z (the seed's rollup rows are before it).
fn config_for(file: &Path) -> Config {
    let mut cfg = Config::default();
    if file.file_name().is_some_and(|n| n.to_string_lossy().contains("rollup")) {
        cfg.rollup_before = Some(DateTime::parse_from_rfc3339("2026-01-15T00:00:00Z").unwrap().with_timezone(&Utc));
    }
    cfg
}

async fn outcome(pool: &Pool, query: &str, cfg: &Config) -> Vec<String> {
    let compiled = match compile(query, cfg, now()) {
        Ok(c) => c,
        Err(e) => return vec![format!("error: {} {}", e.kind.code(), e.message)],
    };
    match run(pool, &compiled, &QueryOptions::default()).await {
        Ok(r) => {
            let mut out =
                vec!["rows:".to_string(), r.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(" | ")];
            out.extend(r.rows.iter().map(|row| row.iter().map(render).collect::<Vec<_>>().join(" | ")));
            out
        }
        Err(e) => vec![format!("error: {e}")],
    }
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../srql/tests/rows");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    files
}

async fn run_all(choice: TimescaleChoice, bless: bool) {
    let (_db, pool) = seeded(choice).await;
    let mut failures = Vec::new();
    let mut total = 0;
    for file in case_files() {
        let cases = casefile::read(&fs::read_to_string(&file).unwrap());
        let mut results = Vec::new();
        for c in &cases {
            total += 1;
            let got = outcome(&pool, &c.query, &config_for(&file)).await;
            if !bless {
                failures.extend(c.mismatch(&file, &got));
            }
            results.push((c, got));
        }
        if bless {
            fs::write(&file, casefile::write(results)).unwrap();
        }
    }
    assert!(total >= 40, "expected the row suite, found {total} cases");
    assert!(
        failures.is_empty(),
        "{choice:?}: {} of {total} row cases differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn srql_rows_on_timescaledb() {
    run_all(TimescaleChoice::Require, std::env::var_os("SRQL_BLESS").is_some()).await;
}

#[tokio::test]
async fn srql_rows_on_native_partitioning() {
    // Same expectations on the fallback path; never rewrites them.
    run_all(TimescaleChoice::Off, false).await;
}

#[tokio::test]
async fn similar_to_without_the_embedding_model_says_so() {
    let (_db, pool) = seeded(TimescaleChoice::Auto).await;
    let compiled =
        compile(r#"kind:process | SIMILAR_TO("reading the password hashes file")"#, &Config::default(), now()).unwrap();
    let err = run(&pool, &compiled, &QueryOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("embedding model"), "{err}");
}

#[tokio::test]
async fn a_slow_query_is_cancelled_by_the_statement_timeout() {
    let (_db, pool) = seeded(TimescaleChoice::Auto).await;
    // pg_sleep stands in for a runaway query.
    let compiled = compile("shadow", &Config::default(), now()).unwrap();
    let mut slow = compiled.clone();
    slow.sql = format!("SELECT * FROM ({}) AS q, pg_sleep(0.5)", compiled.sql);
    let err =
        run(&pool, &slow, &QueryOptions { statement_timeout: std::time::Duration::from_millis(50) }).await.unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
    // The API answers this one variant with 504 query_timeout.
    assert!(matches!(err, vigil_search::SearchError::Timeout(_)), "{err:?}");
}
