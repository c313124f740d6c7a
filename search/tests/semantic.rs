//! SIMILAR_TO and | cluster on a seeded corpus, with the real model, real
//! PostgreSQL + pgvector, and the embedding worker filling the vectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use vigil_embed::{CachedEmbedder, EmbedConfig, Embedder, Selection};
use vigil_event::{Event, Kind, Process, Severity};
use vigil_search::{SearchOptions, SearchResult, Searcher, Vectorizer};
use vigil_store::testing::{migrated, TempDatabase};
use vigil_store::{EventWriter, Pool, TimescaleChoice};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

fn embedder() -> Arc<CachedEmbedder> {
    let e = Embedder::load(&EmbedConfig::default()).expect("model files (run scripts/setup.sh)");
    Arc::new(CachedEmbedder::new(e, 10_000))
}

fn process(i: usize, host: &str, cmdline: &str) -> Event {
    let t = now() - chrono::Duration::seconds(10 + i as i64);
    let mut e = Event::new(Kind::Process, "vigil-agent", t, format!("{host}-{i}-{cmdline}").as_bytes());
    e.host = Some(host.into());
    e.activity_id = Some(1);
    e.user = Some("www-data".into());
    let name = cmdline.split_whitespace().next().unwrap_or("sh").to_string();
    e.message = format!("process started: {cmdline}");
    e.process = Some(Process {
        pid: Some(1000 + i as i32),
        name: Some(name),
        cmdline: Some(cmdline.into()),
        ..Default::default()
    });
    e
}

/// Routine commands on web-01..web-04, and shadow-file reads spelled three
/// ways on web-02 (only one of them with `cat`).
fn corpus() -> Vec<Event> {
    let routine = [
        "ls -la /var/www/html",
        "systemctl status nginx",
        "curl -s http://127.0.0.1:8080/healthz",
        "apt-get update",
        "ps aux",
        "grep -i error /var/log/nginx/error.log",
        "df -h",
        "uptime",
        "crontab -l",
        "git pull origin main",
        "python3 manage.py migrate",
        "tar czf /tmp/backup.tgz /var/www",
    ];
    let mut out = Vec::new();
    for i in 0..240 {
        let host = format!("web-0{}", 1 + i % 4);
        out.push(process(i, &host, routine[i % routine.len()]));
    }
    for (j, cmd) in
        ["tail -n 10 /etc/shadow", "head -5 /etc/shadow", "less /etc/shadow", "cat /etc/shadow"].iter().enumerate()
    {
        out.push(process(1000 + j, "web-02", cmd));
    }
    out
}

async fn setup(events: &[Event]) -> (TempDatabase, Pool, Arc<CachedEmbedder>) {
    let (db, pool) = migrated(TimescaleChoice::Auto).await;
    EventWriter::new(pool.clone()).write(events).await.unwrap();
    let emb = embedder();
    let v = Vectorizer::new(emb.clone(), Selection::default()).with_settle(Duration::ZERO);
    let linked = v.sync(&pool).await.unwrap();
    assert_eq!(linked, events.len() as u64, "every selected event is linked to a vector");
    (db, pool, emb)
}

fn column(r: &SearchResult, name: &str) -> Vec<String> {
    let i = r.columns.iter().position(|c| c.name == name).unwrap_or_else(|| panic!("no column {name}"));
    r.rows.iter().map(|row| row[i].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn similarity_finds_what_keywords_miss() {
    let (_db, pool, emb) = setup(&corpus()).await;
    let s = Searcher::new(pool.clone(), Some(emb), SearchOptions::default());

    let keyword = s.search("\"cat /etc/shadow\"", now()).await.unwrap();
    let kw = column(&keyword, "cmdline");
    assert_eq!(kw, vec!["cat /etc/shadow"], "the keyword finds only the literal spelling");

    let r = s.search("kind:process | SIMILAR_TO(\"reading the password hashes file\", k:5)", now()).await.unwrap();
    let top = column(&r, "cmdline");
    assert_eq!(top.len(), 5);
    for wanted in ["tail -n 10 /etc/shadow", "head -5 /etc/shadow"] {
        assert!(top.iter().any(|c| c == wanted), "{wanted} is in the top 5: {top:?}");
    }
    let scores: Vec<f64> = r.rows.iter().map(|row| row.last().unwrap().as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked by score: {scores:?}");
    assert!(r.plan.iter().any(|p| p.contains("exact distance")), "{:?}", r.plan);
}

#[tokio::test]
async fn filtered_similarity_returns_k_rows_on_both_paths() {
    let (_db, pool, emb) = setup(&corpus()).await;
    let q = "host:web-03 | SIMILAR_TO(\"reading the password hashes file\", k:10)";
    for (exact_max, path) in [(1e12, "exact distance"), (0.0, "HNSW")] {
        let opts = SearchOptions { exact_max_candidates: exact_max, ..SearchOptions::default() };
        let r = Searcher::new(pool.clone(), Some(emb.clone()), opts).search(q, now()).await.unwrap();
        assert_eq!(r.rows.len(), 10, "k rows exist on web-03, so k come back ({path})");
        assert!(column(&r, "host").iter().all(|h| h == "web-03"), "the filter holds ({path})");
        assert!(r.plan.iter().any(|p| p.contains(path)), "plan names the {path} path: {:?}", r.plan);
        assert!(!r.partial);
    }
}

#[tokio::test]
async fn cluster_groups_template_variants() {
    let templates: [&dyn Fn(usize) -> (Kind, String); 3] = [
        &|i| {
            (
                Kind::Auth,
                format!(
                    "Failed password for {} from 10.0.{}.{} port {} ssh2",
                    ["root", "admin", "oracle", "test"][i % 4],
                    i % 7,
                    i % 250,
                    40000 + i
                ),
            )
        },
        &|i| {
            (
                Kind::Process,
                format!("CRON[{}]: (root) CMD (run-parts /etc/cron.{})", 2000 + i, ["hourly", "daily"][i % 2]),
            )
        },
        &|i| {
            (
                Kind::Alert,
                format!(
                    "Out of memory: Killed process {} ({}) total-vm:{}kB",
                    3000 + i,
                    ["java", "python3", "node"][i % 3],
                    100000 + i * 7
                ),
            )
        },
    ];
    let mut events = Vec::new();
    for i in 0..1000 {
        let (kind, msg) = templates[i % 3](i);
        let mut e = Event::new(kind, "test", now() - chrono::Duration::seconds(i as i64 + 1), msg.as_bytes());
        e.host = Some("db-01".into());
        e.severity = Severity::Medium;
        e.message = msg;
        events.push(e);
    }
    let (_db, pool, emb) = setup(&events).await;
    let r =
        Searcher::new(pool, Some(emb), SearchOptions::default()).search("host:db-01 | cluster", now()).await.unwrap();
    assert_eq!(r.rows.len(), 3, "1,000 variants of 3 templates make 3 groups: {:?}", r.rows);
    let counts: Vec<i64> = r.rows.iter().map(|row| row[1].as_i64().unwrap()).collect();
    assert_eq!(counts.iter().sum::<i64>(), 1000);
    assert!(counts.iter().all(|c| (333..=334).contains(c)), "{counts:?}");
}

#[tokio::test]
async fn free_text_ranks_by_bm25_and_feeds_similarity() {
    let (_db, pool, emb) = setup(&corpus()).await;
    let dir = std::env::temp_dir().join(format!("vigil-search-bm25-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let index = Arc::new(vigil_fulltext::TextIndex::open(&dir).unwrap().with_settle(Duration::ZERO));
    vigil_fulltext::sync(&index, &pool, 1_000).await.unwrap();
    let s = Searcher::new(pool.clone(), Some(emb), SearchOptions::default()).with_text_index(index);

    let r = s.search("\"cat /etc/shadow\"", now()).await.unwrap();
    assert_eq!(column(&r, "cmdline"), vec!["cat /etc/shadow"], "a phrase matches only itself");

    let r = s.search("shadow", now()).await.unwrap();
    let mut found = column(&r, "cmdline");
    found.sort();
    assert_eq!(found, ["cat /etc/shadow", "head -5 /etc/shadow", "less /etc/shadow", "tail -n 10 /etc/shadow"]);
    let i = r.columns.iter().position(|c| c.name == "text_score").expect("a text_score column");
    let scores: Vec<f64> = r.rows.iter().map(|row| row[i].as_f64().unwrap()).collect();
    assert!(scores.iter().all(|s| *s > 0.0) && scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(r.plan.iter().any(|p| p.contains("BM25")), "{:?}", r.plan);

    let r = s.search("host:web-02 AND NOT shadow | stats count()", now()).await.unwrap();
    assert_eq!(r.rows[0][0].as_i64(), Some(60), "free text inside NOT is a membership test");

    let r = s.search("shadow | SIMILAR_TO(\"reading the password hashes file\", k:2)", now()).await.unwrap();
    assert_eq!(r.rows.len(), 2);
    assert!(column(&r, "cmdline").iter().all(|c| c.ends_with("/etc/shadow")));
    assert!(r.plan.iter().any(|p| p.contains("reciprocal rank fusion")), "{:?}", r.plan);
    let i = r.columns.iter().position(|c| c.name == "rrf").expect("an rrf column");
    let rrf: Vec<f64> = r.rows.iter().map(|row| row[i].as_f64().unwrap()).collect();
    assert!(rrf[0] >= rrf[1] && rrf[1] > 2.0 / 70.0, "fused ranks of the top two: {rrf:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The HNSW path against exact search on a generated corpus: the same
/// events for the same queries (recall@10 ≥ 0.95).
#[tokio::test]
async fn the_hnsw_path_recalls_what_exact_search_finds() {
    use vigil_ingest::generate::{Generator, GeneratorConfig};
    let events: Vec<Event> =
        Generator::new(GeneratorConfig::recent(20_000, chrono::Duration::hours(12), now())).collect();
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;
    EventWriter::new(pool.clone()).write(&events).await.unwrap();
    let emb = embedder();
    Vectorizer::new(emb.clone(), Selection::default()).with_settle(Duration::ZERO).sync(&pool).await.unwrap();
    let with = |exact_max: f64| {
        let opts = SearchOptions { exact_max_candidates: exact_max, ..SearchOptions::default() };
        Searcher::new(pool.clone(), Some(emb.clone()), opts)
    };
    let (exact, indexed) = (with(f64::INFINITY), with(-1.0));
    let mut recalls = Vec::new();
    for text in ["reading the password hashes file", "reverse shell", "brute force login", "disk usage"] {
        for filter in ["", "kind:process", "host:web-01", "severity:>=medium"] {
            let q = format!("{filter} | SIMILAR_TO(\"{text}\", k:10)");
            let want = column(&exact.search(&q, now()).await.unwrap(), "event_id");
            let r = indexed.search(&q, now()).await.unwrap();
            assert!(r.plan.iter().any(|p| p.contains("HNSW")), "{:?}", r.plan);
            let got = column(&r, "event_id");
            if !want.is_empty() {
                recalls.push(want.iter().filter(|w| got.contains(w)).count() as f64 / want.len() as f64);
            }
        }
    }
    let recall = recalls.iter().sum::<f64>() / recalls.len() as f64;
    assert!(recalls.len() >= 12 && recall >= 0.95, "recall@10 {recall:.3} over {} queries", recalls.len());
}
