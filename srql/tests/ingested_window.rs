//! `Config::ingested_window`: the ingestion window scheduled hunts run by.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use vigil_srql::{compile, Config, ErrorKind, Param};

#[test]
fn the_ingestion_window_is_bound_and_replaces_the_default_event_window() {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let (a, b) = (now - chrono::Duration::minutes(5), now);
    let cfg = Config { ingested_window: Some((a, b)), ..Config::default() };
    let c = compile("host:web-01", &cfg, now).unwrap();
    assert!(c.sql.contains("ingested_at > $1::timestamptz AND ingested_at <= $2::timestamptz"), "{}", c.sql);
    assert_eq!(c.params[0], Param::Time(a));
    assert_eq!(c.params[1], Param::Time(b));
    // No `time:` in the query: no event-time window, so late events match.
    assert!(c.window.is_none());
    assert!(!c.sql.contains("time >= "), "{}", c.sql);

    // An explicit `time:` still narrows the event time.
    let c = compile("host:web-01 time:last_1h", &cfg, now).unwrap();
    assert!(c.sql.contains("ingested_at > $1"), "{}", c.sql);
    assert!(c.sql.contains("time >= $3::timestamptz AND time < $4::timestamptz"), "{}", c.sql);
    assert!(c.window.is_some());

    // `in:logs` keeps its base filter and gets the window too.
    let c = compile("in:logs sshd", &cfg, now).unwrap();
    assert!(c.sql.contains("kind = 'log'") && c.sql.contains("ingested_at > $1"), "{}", c.sql);

    // Without the window nothing changes.
    let c = compile("host:web-01", &Config::default(), now).unwrap();
    assert!(!c.sql.contains("ingested_at >"), "{}", c.sql);
    assert!(c.window.is_some());
}

#[test]
fn an_entity_without_ingestion_time_is_refused() {
    let now = Utc::now();
    let cfg = Config { ingested_window: Some((now - chrono::Duration::minutes(1), now)), ..Config::default() };
    let e = compile("in:hosts os:linux", &cfg, now).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadValue);
    assert!(e.message.contains("in:hosts"), "{}", e.message);
}
