#![allow(clippy::unwrap_used, clippy::expect_used)]
//! BM25 retention: whole-index cutoffs and per-kind cutoffs.

use chrono::{Duration, Utc};
use uuid::Uuid;
use vigil_fulltext::{Doc, TextIndex, TextQuery};

#[test]
fn delete_kind_before_removes_only_that_kind_before_the_cutoff() {
    let dir = std::env::temp_dir().join(format!("vigil-fulltext-retention-{}-{}", std::process::id(), Uuid::new_v4()));
    let index = TextIndex::open(&dir).unwrap().with_settle(std::time::Duration::ZERO);
    let now = Utc::now();
    let doc = |kind: &str, days: i64| Doc {
        event_id: Uuid::new_v4(),
        time: now - Duration::days(days),
        kind: kind.into(),
        host: Some("web-01".into()),
        text: format!("{kind} sshd session opened {days}"),
    };
    let docs: Vec<Doc> = (0..10).flat_map(|d| [doc("auth", d), doc("process", d)]).collect();
    index.add(&docs).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 20);

    // auth older than 5 days: days 6..9 (day 5 is a moment after the cutoff).
    let cutoff = now - Duration::days(5) - Duration::minutes(1);
    assert_eq!(index.delete_kind_before("auth", cutoff).unwrap(), 4);
    assert_eq!(index.num_docs(), 16);
    assert_eq!(index.delete_kind_before("auth", cutoff).unwrap(), 0);
    let q = TextQuery { text: "sshd".into(), phrase: false, window: None, limit: 100 };
    assert_eq!(index.search(&q).unwrap().total, 16);
    // Then everything older than 8 days: the process documents of day 9 (auth's went already).
    assert_eq!(index.delete_before(now - Duration::days(8) - Duration::minutes(1)).unwrap(), 1);
    assert_eq!(index.num_docs(), 15);
    drop(index);
    let _ = std::fs::remove_dir_all(&dir);
}
