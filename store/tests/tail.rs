#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `Tail`: reading `events` in ingestion order after a durable watermark, on
//! both storage modes.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use uuid::Uuid;
use vigil_event::{Event, Kind};
use vigil_store::tail::{Tail, TailRow, Watermark};
use vigil_store::testing::TempDatabase;
use vigil_store::{EventWriter, Pool, TimescaleChoice};

async fn fresh(choice: TimescaleChoice) -> (TempDatabase, Pool) {
    vigil_store::testing::migrated(choice).await
}

fn event(batch: u32, i: u32) -> Event {
    let t = Utc::now() - chrono::Duration::minutes(30) + chrono::Duration::milliseconds(i64::from(i));
    let mut e = Event::new(Kind::Process, "tail-test", t, format!("{batch}:{i}").as_bytes());
    e.host = Some(format!("host-{}", i % 3));
    e.message = format!("batch {batch} event {i}");
    e
}

/// Every row once, in (ingested_at, event_id) order, reading pages of `page`.
async fn drain(tail: &Tail, pool: &Pool, mut after: Option<Watermark>, page: i64) -> Vec<TailRow> {
    let mut all = Vec::new();
    loop {
        let rows = tail.next(pool, after, page).await.unwrap();
        assert!(rows.len() as i64 <= page);
        let Some(last) = rows.last() else { break };
        after = Some(last.watermark());
        all.extend(rows);
    }
    all
}

fn assert_ordered_once(rows: &[TailRow], expected: usize) {
    let ids: HashSet<Uuid> = rows.iter().map(|r| r.event_id).collect();
    assert_eq!(ids.len(), rows.len(), "no row twice");
    assert_eq!(rows.len(), expected, "every row once");
    for w in rows.windows(2) {
        assert!(
            (w[0].ingested_at, w[0].event_id) < (w[1].ingested_at, w[1].event_id),
            "keyset order: {:?} then {:?}",
            w[0].watermark(),
            w[1].watermark()
        );
    }
}

async fn batches_come_back_exactly_once(choice: TimescaleChoice) {
    let (_db, pool) = fresh(choice).await;
    let writer = EventWriter::new(pool.clone());
    // Three writer transactions: three ingested_at values, 25 rows sharing each.
    for b in 0..3 {
        let events: Vec<Event> = (0..25).map(|i| event(b, i)).collect();
        assert_eq!(writer.write(&events).await.unwrap().inserted, 25);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let distinct: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(DISTINCT ingested_at) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct, 3, "one ingested_at per writer transaction");

    let tail = Tail::new("test").with_settle(Duration::ZERO);
    // Pages of 10 end inside each transaction's 25 rows.
    let rows = drain(&tail, &pool, None, 10).await;
    assert_ordered_once(&rows, 75);
    // Other page sizes read the same sequence.
    for page in [1, 7, 25, 1000] {
        let again = drain(&Tail::new("other").with_settle(Duration::ZERO), &pool, None, page).await;
        assert_eq!(again, rows, "page size {page}");
    }

    // Resuming from a watermark inside a transaction's rows continues right after it.
    let mid = rows[37].watermark();
    let rest = drain(&tail, &pool, Some(mid), 10).await;
    assert_eq!(rest, rows[38..].to_vec());
    // Caught up: nothing after the last row.
    assert!(tail.next(&pool, Some(rows[74].watermark()), 10).await.unwrap().is_empty());

    // The watermark is durable, per name, and resettable.
    assert_eq!(tail.watermark(&pool).await.unwrap(), None);
    tail.save(&pool, mid).await.unwrap();
    assert_eq!(tail.watermark(&pool).await.unwrap(), Some(mid));
    tail.save(&pool, rows[74].watermark()).await.unwrap();
    let reopened = Tail::new("test");
    assert_eq!(reopened.watermark(&pool).await.unwrap(), Some(rows[74].watermark()));
    assert_eq!(Tail::new("other").watermark(&pool).await.unwrap(), None);
    tail.reset(&pool).await.unwrap();
    assert_eq!(tail.watermark(&pool).await.unwrap(), None);

    // A later batch is picked up after the watermark, and only it.
    let late: Vec<Event> = (0..12).map(|i| event(9, i)).collect();
    writer.write(&late).await.unwrap();
    let more = drain(&tail, &pool, Some(rows[74].watermark()), 5).await;
    assert_eq!(more.len(), 12);
    assert!(more.iter().all(|r| r.message.starts_with("batch 9 ")));
}

#[tokio::test]
async fn batches_come_back_exactly_once_timescaledb() {
    batches_come_back_exactly_once(TimescaleChoice::Require).await;
}

#[tokio::test]
async fn batches_come_back_exactly_once_native() {
    batches_come_back_exactly_once(TimescaleChoice::Off).await;
}

#[tokio::test]
async fn rows_younger_than_settle_are_held_back() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    let writer = EventWriter::new(pool.clone());
    let events: Vec<Event> = (0..5).map(|i| event(0, i)).collect();
    writer.write(&events).await.unwrap();

    let patient = Tail::new("patient").with_settle(Duration::from_secs(3600));
    assert!(patient.next(&pool, None, 100).await.unwrap().is_empty(), "fresh rows wait for the settle window");
    assert_eq!(Tail::new("default").with_settle(Duration::from_secs(5)).next(&pool, None, 100).await.unwrap().len(), 0);

    // Older rows are read; newer ones in the same table are not.
    pool.get()
        .await
        .unwrap()
        .execute("UPDATE events SET ingested_at = now() - interval '2 hours' WHERE message LIKE '% event 0' OR message LIKE '% event 1'", &[])
        .await
        .unwrap();
    let rows = patient.next(&pool, None, 100).await.unwrap();
    assert_eq!(rows.len(), 2);
    let quick = Tail::new("quick").with_settle(Duration::ZERO);
    assert_eq!(quick.next(&pool, None, 100).await.unwrap().len(), 5);
    assert!(patient.next(&pool, Some(rows[1].watermark()), 100).await.unwrap().is_empty());
}

/// Ingestion with long gaps (a quiet week, a backfill) is still read in order
/// and completely: the read window widens across the gaps.
#[tokio::test]
async fn gaps_in_ingestion_time_are_crossed() {
    let (_db, pool) = fresh(TimescaleChoice::Auto).await;
    let writer = EventWriter::new(pool.clone());
    let events: Vec<Event> = (0..40).map(|i| event(1, i)).collect();
    writer.write(&events).await.unwrap();
    // Spread ingestion over ten days, several rows per instant.
    pool.get()
        .await
        .unwrap()
        .execute(
            "UPDATE events SET ingested_at = $1::timestamptz
                 + ((substring(message from '[0-9]+$')::int / 4) * interval '1 day')
                 + ((substring(message from '[0-9]+$')::int % 4 / 2) * interval '1 second')",
            &[&Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()],
        )
        .await
        .unwrap();
    let tail = Tail::new("gaps").with_settle(Duration::ZERO);
    for page in [3, 4, 100] {
        let rows = drain(&tail, &pool, None, page).await;
        assert_ordered_once(&rows, 40);
    }
}
