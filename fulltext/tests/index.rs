#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The BM25 index fed from a real PostgreSQL: events go in through the
//! `EventWriter`, come out of the tail, and are searched with tantivy.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vigil_event::{Event, Kind, Process};
use vigil_fulltext::{reindex, sync, TextIndex, TextQuery};
use vigil_store::testing::TempDatabase;
use vigil_store::{EventWriter, Pool, TimescaleChoice};

/// A scratch index directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "vigil-fulltext-test-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_subsec_nanos()
        ));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn fresh(choice: TimescaleChoice) -> (TempDatabase, Pool) {
    vigil_store::testing::migrated(choice).await
}

fn open(dir: &TempDir) -> TextIndex {
    TextIndex::open(&dir.0).unwrap().with_settle(Duration::ZERO)
}

fn ev(tag: &str, time: DateTime<Utc>, message: &str, cmdline: Option<&str>) -> Event {
    let mut e = Event::new(Kind::Process, "fulltext-test", time, tag.as_bytes());
    e.host = Some("web-01".into());
    e.message = message.into();
    e.user = Some("www-data".into());
    if let Some(c) = cmdline {
        e.process = Some(Process {
            pid: Some(42),
            ppid: Some(1),
            name: c.split_whitespace().next().map(String::from),
            path: None,
            cmdline: Some(c.into()),
        });
    }
    e
}

/// Now, at the microsecond precision PostgreSQL keeps.
fn now_us() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn words(text: &str) -> TextQuery {
    TextQuery { text: text.into(), phrase: false, window: None, limit: 10 }
}

fn phrase(text: &str) -> TextQuery {
    TextQuery { text: text.into(), phrase: true, window: None, limit: 10 }
}

fn ids(index: &TextIndex, q: &TextQuery) -> Vec<Uuid> {
    index.search(q).unwrap().hits.iter().map(|h| h.event_id).collect()
}

async fn count_events(pool: &Pool) -> u64 {
    let n: i64 = pool.get().await.unwrap().query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
    n as u64
}

struct Corpus {
    short_sshd: Event,
    long_sshd: Event,
    cat_shadow: Event,
    tail_shadow: Event,
    ip5: Event,
    ip50: Event,
    old_beacon: Event,
    new_beacon: Event,
}

fn corpus(now: DateTime<Utc>) -> Corpus {
    let t = now - chrono::Duration::minutes(10);
    Corpus {
        short_sshd: ev("short", t, "sshd sshd restarted", None),
        long_sshd: ev(
            "long",
            t,
            "session opened for user root by sshd after a long sequence of pam modules checked the account \
             password expiry lastlog motd environment limits keyinit and systemd user sessions",
            None,
        ),
        cat_shadow: ev("cat", t, "process started", Some("cat /etc/shadow")),
        tail_shadow: ev("tail", t, "process started", Some("tail -n 10 /etc/shadow")),
        ip5: ev("ip5", t, "connection from 10.0.0.5 port 22", None),
        ip50: ev("ip50", t, "connection from 10.0.0.50 port 22", None),
        old_beacon: ev("old", now - chrono::Duration::days(3), "beacon to c2.example.invalid", None),
        new_beacon: ev("new", t, "beacon to c2.example.invalid", None),
    }
}

impl Corpus {
    fn all(&self) -> Vec<Event> {
        vec![
            self.short_sshd.clone(),
            self.long_sshd.clone(),
            self.cat_shadow.clone(),
            self.tail_shadow.clone(),
            self.ip5.clone(),
            self.ip50.clone(),
            self.old_beacon.clone(),
            self.new_beacon.clone(),
        ]
    }
}

async fn search_semantics(choice: TimescaleChoice) {
    let (_db, pool) = fresh(choice).await;
    let now = now_us();
    let c = corpus(now);
    EventWriter::new(pool.clone()).write(&c.all()).await.unwrap();
    let dir = TempDir::new();
    let index = open(&dir);
    assert_eq!(sync(&index, &pool, 3).await.unwrap(), 8);
    assert_eq!(index.num_docs(), 8);

    // BM25: the term twice in a short text beats once in a long one.
    let hits = index.search(&words("sshd")).unwrap();
    assert_eq!(hits.total, 2);
    assert_eq!(hits.hits.iter().map(|h| h.event_id).collect::<Vec<_>>(), vec![c.short_sshd.id, c.long_sshd.id]);
    assert!(hits.hits[0].score > hits.hits[1].score);
    assert_eq!(hits.hits[0].time, c.short_sshd.time);
    // Case does not matter; every word must match.
    assert_eq!(ids(&index, &words("SSHD Restarted")), vec![c.short_sshd.id]);
    assert!(ids(&index, &words("sshd beacon")).is_empty());

    // Paths: the phrase is exact, a bare path matches wherever it occurs.
    assert_eq!(ids(&index, &phrase("cat /etc/shadow")), vec![c.cat_shadow.id]);
    assert!(ids(&index, &phrase("tail /etc/shadow")).is_empty(), "phrase is contiguous");
    assert_eq!(ids(&index, &phrase("tail -n 10 /etc/shadow")), vec![c.tail_shadow.id]);
    let mut both = ids(&index, &words("/etc/shadow"));
    both.sort();
    let mut expected = vec![c.cat_shadow.id, c.tail_shadow.id];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(ids(&index, &words("shadow cat")), vec![c.cat_shadow.id], "words in any order, all required");
    // Punctuation users type is not query syntax.
    assert_eq!(ids(&index, &words("\"cat\" -n")), Vec::<Uuid>::new());
    assert_eq!(ids(&index, &words("-n")), vec![c.tail_shadow.id]);
    // A word that tokenizes into several tokens must match as a unit.
    assert_eq!(ids(&index, &words("10.0.0.5")), vec![c.ip5.id]);
    // The user name is part of the text.
    assert_eq!(index.search(&words("www-data")).unwrap().total, 8);
    assert_eq!(index.search(&TextQuery { limit: 3, ..words("www-data") }).unwrap().hits.len(), 3);

    // The time window is [start, end).
    let all = index.search(&words("beacon")).unwrap();
    assert_eq!(all.total, 2);
    let recent =
        index.search(&TextQuery { window: Some((now - chrono::Duration::days(1), now)), ..words("beacon") }).unwrap();
    assert_eq!(recent.total, 1);
    assert_eq!(recent.hits[0].event_id, c.new_beacon.id);
    let at_old = c.old_beacon.time;
    let edge = index
        .search(&TextQuery { window: Some((at_old, at_old + chrono::Duration::microseconds(1))), ..words("beacon") })
        .unwrap();
    assert_eq!(edge.hits.iter().map(|h| h.event_id).collect::<Vec<_>>(), vec![c.old_beacon.id]);
    let before =
        index.search(&TextQuery { window: Some((at_old - chrono::Duration::hours(1), at_old)), ..words("beacon") });
    assert_eq!(before.unwrap().total, 0);
    // Nothing searchable typed: everything in the window.
    assert_eq!(
        index.search(&TextQuery { window: Some((now - chrono::Duration::days(1), now)), ..words(" ") }).unwrap().total,
        7
    );
}

#[tokio::test]
async fn words_phrases_ranking_and_windows_timescaledb() {
    search_semantics(TimescaleChoice::Require).await;
}

#[tokio::test]
async fn words_phrases_ranking_and_windows_native() {
    search_semantics(TimescaleChoice::Off).await;
}

#[tokio::test]
async fn sync_is_idempotent_survives_restarts_and_reindexes() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    let writer = EventWriter::new(pool.clone());
    let now = now_us();
    let c = corpus(now);
    writer.write(&c.all()).await.unwrap();
    let dir = TempDir::new();

    {
        let index = open(&dir);
        assert_eq!(sync(&index, &pool, 5).await.unwrap(), 8);
        assert_eq!(sync(&index, &pool, 5).await.unwrap(), 0, "nothing new");
        assert_eq!(index.num_docs(), 8);
        // Adding the same document again replaces it.
        let again = vigil_fulltext::Doc {
            event_id: c.cat_shadow.id,
            time: c.cat_shadow.time,
            kind: "process".into(),
            host: None,
            text: "cat /etc/shadow".into(),
        };
        index.add(&[again.clone(), again]).unwrap();
        index.commit().unwrap();
        assert_eq!(index.num_docs(), 8);
        assert_eq!(index.stats().docs_indexed.get(), 8);
    }

    // More events while the indexer is down.
    let later: Vec<Event> = (0..30)
        .map(|i| {
            ev(&format!("later-{i}"), now - chrono::Duration::minutes(5), &format!("later event {i} powershell"), None)
        })
        .collect();
    writer.write(&later).await.unwrap();

    // A restart continues from the watermark.
    let index = open(&dir);
    assert_eq!(index.num_docs(), 8, "committed documents survive the restart");
    assert_eq!(sync(&index, &pool, 7).await.unwrap(), 30, "only the new events");
    assert_eq!(index.num_docs(), 38);
    assert_eq!(index.search(&words("powershell")).unwrap().total, 30);

    // Retention.
    let cutoff = now - chrono::Duration::days(1);
    assert_eq!(index.delete_before(cutoff).unwrap(), 1);
    assert_eq!(index.num_docs(), 37);
    assert_eq!(index.search(&words("beacon")).unwrap().hits[0].event_id, c.new_beacon.id);
    assert_eq!(index.delete_before(cutoff).unwrap(), 0);

    // Rebuild from PostgreSQL, which still has the old event.
    let n = reindex(&index, &pool).await.unwrap();
    assert_eq!(n, count_events(&pool).await);
    assert_eq!(index.num_docs(), 38);
    assert_eq!(sync(&index, &pool, 100).await.unwrap(), 0);

    // Clearing empties the index; a new, empty directory starts from the beginning
    // even though PostgreSQL holds a watermark.
    index.clear().unwrap();
    assert_eq!(index.num_docs(), 0);
    drop(index);
    let other = TempDir::new();
    let index = open(&other);
    assert_eq!(sync(&index, &pool, 1000).await.unwrap(), 38);
    assert_eq!(index.num_docs(), 38);
}

#[tokio::test]
async fn rows_are_held_back_for_the_settle_window() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    EventWriter::new(pool.clone()).write(&corpus(now_us()).all()).await.unwrap();
    let dir = TempDir::new();
    let index = TextIndex::open(&dir.0).unwrap(); // default settle: 5 s
    assert_eq!(sync(&index, &pool, 100).await.unwrap(), 0);
    assert_eq!(index.num_docs(), 0);
}

#[tokio::test]
async fn run_indexer_catches_up_and_stops() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    EventWriter::new(pool.clone()).write(&corpus(now_us()).all()).await.unwrap();
    let dir = TempDir::new();
    let index = std::sync::Arc::new(open(&dir));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task =
        tokio::spawn(vigil_fulltext::run_indexer(index.clone(), pool.clone(), Duration::from_millis(50), async {
            let _ = rx.await;
        }));
    // Generous: the machine may be busy with other tests.
    for _ in 0..600 {
        if index.num_docs() == 8 && index.stats().syncs.get() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = index.stats();
    assert_eq!(index.num_docs(), 8, "syncs {} errors {}", stats.syncs.get(), stats.errors.get());
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    assert!(index.stats().syncs.get() >= 1);
}
