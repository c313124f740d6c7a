//! What a run writes, inside its transaction: the hunt's position (locked,
//! then its watermark and slot moved), the alerts it raises or joins, their
//! links to events, the actions it queues, and its row in `hunt_runs`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use crate::{HuntError, RunReport};

/// How far a hunt's runs have got.
pub(crate) struct Position {
    /// Events ingested up to here have been searched.
    pub watermark: DateTime<Utc>,
    pub last_slot: DateTime<Utc>,
}

/// Locks the hunt's row until the transaction ends, so a second runner waits
/// and then sees the watermark this run moved. None: the hunt is gone.
pub(crate) async fn lock_hunt(tx: &Transaction<'_>, hunt_id: Uuid) -> Result<Option<Position>, HuntError> {
    let row = tx
        .query_opt("SELECT watermark, last_slot FROM hunts WHERE id = $1 FOR UPDATE", &[&hunt_id])
        .await
        .map_err(HuntError::db("locking a hunt"))?;
    Ok(row.map(|r| Position { watermark: r.get(0), last_slot: r.get(1) }))
}

/// Moves the slot alone, the window staying where it is.
pub(crate) async fn advance_slot(tx: &Transaction<'_>, hunt_id: Uuid, slot: DateTime<Utc>) -> Result<(), HuntError> {
    tx.execute("UPDATE hunts SET last_slot = $2 WHERE id = $1", &[&hunt_id, &slot])
        .await
        .map_err(HuntError::db("advancing a hunt"))?;
    Ok(())
}

/// Moves the slot forward to `slot` if it is behind, the window staying
/// where it is (a failed run: the next run covers the window again).
pub(crate) async fn keep_slot(tx: &Transaction<'_>, hunt_id: Uuid, slot: DateTime<Utc>) -> Result<(), HuntError> {
    tx.execute("UPDATE hunts SET last_slot = greatest(last_slot, $2) WHERE id = $1", &[&hunt_id, &slot])
        .await
        .map_err(HuntError::db("recording a failed run"))?;
    Ok(())
}

/// Moves the watermark past the window a run covered, and the slot.
pub(crate) async fn advance(
    tx: &Transaction<'_>,
    hunt_id: Uuid,
    watermark: DateTime<Utc>,
    last_slot: DateTime<Utc>,
) -> Result<(), HuntError> {
    tx.execute("UPDATE hunts SET watermark = $2, last_slot = $3 WHERE id = $1", &[&hunt_id, &watermark, &last_slot])
        .await
        .map_err(HuntError::db("advancing a hunt"))?;
    Ok(())
}

/// The group's newest open or acknowledged alert raised after `after`,
/// locked: new matches of the group join it instead of raising another.
pub(crate) async fn suppressing_alert(
    tx: &Transaction<'_>,
    hunt_id: Uuid,
    group_key: &str,
    after: DateTime<Utc>,
) -> Result<Option<Uuid>, HuntError> {
    let row = tx
        .query_opt(
            "SELECT alert_id FROM alerts
              WHERE hunt_id = $1 AND group_key = $2 AND status <> 'closed' AND time > $3
              ORDER BY time DESC LIMIT 1 FOR UPDATE",
            &[&hunt_id, &group_key, &after],
        )
        .await
        .map_err(HuntError::db("finding an alert"))?;
    Ok(row.map(|r| r.get(0)))
}

/// An alert about to be raised, with no events yet.
pub(crate) struct NewAlert<'a> {
    pub id: Uuid,
    /// The run's slot.
    pub time: DateTime<Utc>,
    /// The hunt's name.
    pub rule: &'a str,
    pub title: &'a str,
    pub severity_id: i16,
    pub host: Option<&'a str>,
    pub raw: &'a Value,
    pub hunt_id: Uuid,
    pub group_key: &'a str,
    pub group_values: &'a Value,
    pub meta: &'a Value,
}

pub(crate) async fn raise_alert(tx: &Transaction<'_>, a: &NewAlert<'_>) -> Result<(), HuntError> {
    tx.execute(
        "INSERT INTO alerts (alert_id, time, rule, title, severity_id, status, host, event_count, raw,
                             hunt_id, group_key, group_values, last_matched_at, meta, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, 0, $7, $8, $9, $10, $2, $11, now())",
        &[
            &a.id,
            &a.time,
            &a.rule,
            &a.title,
            &a.severity_id,
            &a.host,
            a.raw,
            &a.hunt_id,
            &a.group_key,
            a.group_values,
            a.meta,
        ],
    )
    .await
    .map_err(HuntError::db("raising an alert"))?;
    Ok(())
}

/// An alert raised by a run that linked no event (all already counted).
pub(crate) async fn drop_alert(tx: &Transaction<'_>, alert_id: Uuid) -> Result<(), HuntError> {
    tx.execute("DELETE FROM alerts WHERE alert_id = $1", &[&alert_id])
        .await
        .map_err(HuntError::db("dropping an empty alert"))?;
    Ok(())
}

/// The events a run linked to an alert.
pub(crate) struct Linked {
    pub count: i32,
    /// Their earliest and latest event times.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

/// Links events (`ids` with their event `times`) to an alert, skipping those
/// already linked to an alert of the hunt: an event counts once per hunt.
pub(crate) async fn link_events(
    tx: &Transaction<'_>,
    alert_id: Uuid,
    hunt_id: Uuid,
    ids: &[Uuid],
    times: &[DateTime<Utc>],
) -> Result<Linked, HuntError> {
    let row = tx
        .query_one(
            "WITH ins AS (
                INSERT INTO alert_events (alert_id, hunt_id, event_id, event_time)
                SELECT $1, $2, e, t FROM unnest($3::uuid[], $4::timestamptz[]) AS x(e, t)
                ON CONFLICT DO NOTHING
                RETURNING event_time)
             SELECT count(*)::int4, min(event_time), max(event_time) FROM ins",
            &[&alert_id, &hunt_id, &ids, &times],
        )
        .await
        .map_err(HuntError::db("linking events to an alert"))?;
    Ok(Linked { count: row.get(0), first: row.get(1), last: row.get(2) })
}

/// Adds newly linked events to an alert's count and seen range, marks it
/// matched at `matched_at` and merges `meta` into its meta. Returns the
/// alert's row (the columns a webhook payload needs).
pub(crate) async fn add_linked(
    tx: &Transaction<'_>,
    alert_id: Uuid,
    linked: &Linked,
    matched_at: DateTime<Utc>,
    meta: &Value,
) -> Result<Row, HuntError> {
    tx.query_one(
        "UPDATE alerts SET event_count = event_count + $2,
                first_seen = least(first_seen, $3), last_seen = greatest(last_seen, $4),
                last_matched_at = $5, meta = meta || $6::jsonb, updated_at = now()
          WHERE alert_id = $1
         RETURNING alert_id, time, rule, title, severity_id, status, host, event_count, group_key,
                   group_values, first_seen, last_seen, meta",
        &[&alert_id, &linked.count, &linked.first, &linked.last, &matched_at, meta],
    )
    .await
    .map_err(HuntError::db("updating an alert"))
}

/// Queues an action's request for delivery after the commit; returns its id.
pub(crate) async fn queue_action(
    tx: &Transaction<'_>,
    alert_id: Uuid,
    hunt_id: Uuid,
    kind: &str,
    url: &str,
    body: &Value,
) -> Result<i64, HuntError> {
    let row = tx
        .query_one(
            "INSERT INTO alert_actions (alert_id, hunt_id, kind, url, body) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
            &[&alert_id, &hunt_id, &kind, &url, body],
        )
        .await
        .map_err(HuntError::db("queueing an action"))?;
    Ok(row.get(0))
}

/// The run's row in `hunt_runs`: what it covered and found, or its error.
pub(crate) async fn record_run(
    tx: &Transaction<'_>,
    r: &RunReport,
    manual: bool,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> Result<(), HuntError> {
    let context = if r.error.is_some() { "recording a failed run" } else { "recording a run" };
    tx.execute(
        "INSERT INTO hunt_runs (hunt_id, slot, slots, manual, window_start, window_end, started_at, finished_at,
                                matches, alerts_created, alerts_updated, truncated, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &r.hunt_id,
            &r.slot,
            &(r.slots as i32),
            &manual,
            &r.window_start,
            &r.window_end,
            &started,
            &finished.max(started),
            &(r.matches as i32),
            &(r.alerts_created as i32),
            &(r.alerts_updated as i32),
            &r.truncated,
            &r.error,
        ],
    )
    .await
    .map_err(HuntError::db(context))?;
    Ok(())
}
