//! Alerts as analysts see and triage them: list with filters and a keyset
//! cursor, one with its linked events and actions, acknowledge, assign, close
//! with a reason.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;
use vigil_store::Pool;

use crate::hunt::severity_label;
use crate::HuntError;

/// Alert statuses.
pub const STATUSES: [&str; 3] = ["open", "acknowledged", "closed"];

/// An alert.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: Uuid,
    /// When it was raised (the hunt's schedule slot).
    pub time: DateTime<Utc>,
    #[schema(required)]
    pub hunt_id: Option<Uuid>,
    pub rule: String,
    pub title: String,
    pub severity: &'static str,
    pub severity_id: i16,
    pub status: String,
    #[schema(required)]
    pub host: Option<String>,
    #[schema(required)]
    pub assignee: Option<String>,
    pub count: i32,
    #[schema(required)]
    pub group_key: Option<String>,
    pub group: Value,
    /// Event times of the first and last linked events.
    #[schema(required)]
    pub first_seen: Option<DateTime<Utc>>,
    #[schema(required)]
    pub last_seen: Option<DateTime<Utc>>,
    #[schema(required)]
    pub last_matched_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub acknowledged_by: Option<String>,
    #[schema(required)]
    pub closed_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub closed_by: Option<String>,
    #[schema(required)]
    pub close_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub meta: Value,
}

const COLUMNS: &str = "alert_id, time, hunt_id, rule, title, severity_id, status, host, assignee, event_count, \
                       group_key, group_values, first_seen, last_seen, last_matched_at, acknowledged_at, \
                       acknowledged_by, closed_at, closed_by, close_reason, updated_at, meta";

fn from_row(r: &Row) -> Result<Alert, HuntError> {
    let e = |x| HuntError::db("reading an alert")(x);
    let severity_id: i16 = r.try_get("severity_id").map_err(e)?;
    Ok(Alert {
        id: r.try_get("alert_id").map_err(e)?,
        time: r.try_get("time").map_err(e)?,
        hunt_id: r.try_get("hunt_id").map_err(e)?,
        rule: r.try_get("rule").map_err(e)?,
        title: r.try_get("title").map_err(e)?,
        severity: severity_label(severity_id),
        severity_id,
        status: r.try_get("status").map_err(e)?,
        host: r.try_get("host").map_err(e)?,
        assignee: r.try_get("assignee").map_err(e)?,
        count: r.try_get("event_count").map_err(e)?,
        group_key: r.try_get("group_key").map_err(e)?,
        group: r.try_get("group_values").map_err(e)?,
        first_seen: r.try_get("first_seen").map_err(e)?,
        last_seen: r.try_get("last_seen").map_err(e)?,
        last_matched_at: r.try_get("last_matched_at").map_err(e)?,
        acknowledged_at: r.try_get("acknowledged_at").map_err(e)?,
        acknowledged_by: r.try_get("acknowledged_by").map_err(e)?,
        closed_at: r.try_get("closed_at").map_err(e)?,
        closed_by: r.try_get("closed_by").map_err(e)?,
        close_reason: r.try_get("close_reason").map_err(e)?,
        updated_at: r.try_get("updated_at").map_err(e)?,
        meta: r.try_get("meta").map_err(e)?,
    })
}

/// Filters of a listing; all optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<String>,
    /// At least this severity.
    pub min_severity: Option<i16>,
    pub hunt_id: Option<Uuid>,
    pub assignee: Option<String>,
    /// Raised at or after.
    pub since: Option<DateTime<Utc>>,
    /// Continue after this alert (newest first): from a previous page's `next_cursor`.
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// A position in the newest-first order: `(time, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// `<unix microseconds>_<uuid>`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.time.timestamp_micros(), self.id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (t, id) = s.split_once('_')?;
        Some(Cursor { time: DateTime::from_timestamp_micros(t.parse().ok()?)?, id: id.parse().ok()? })
    }
}

/// A page of alerts and the cursor of the next one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AlertPage)]
pub struct Page {
    pub alerts: Vec<Alert>,
    #[schema(required)]
    pub next_cursor: Option<String>,
}

/// Alerts matching `f`, newest first.
pub async fn list(pool: &Pool, f: &Filter) -> Result<Page, HuntError> {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut add = |cond: &str, p: Box<dyn ToSql + Sync + Send>, params: &mut Vec<Box<dyn ToSql + Sync + Send>>| {
        params.push(p);
        conds.push(cond.replace('?', &format!("${}", params.len())));
    };
    if let Some(s) = &f.status {
        add("status = ?", Box::new(s.clone()), &mut params);
    }
    if let Some(s) = f.min_severity {
        add("severity_id >= ?", Box::new(s), &mut params);
    }
    if let Some(h) = f.hunt_id {
        add("hunt_id = ?", Box::new(h), &mut params);
    }
    if let Some(a) = &f.assignee {
        add("assignee = ?", Box::new(a.clone()), &mut params);
    }
    if let Some(t) = f.since {
        add("time >= ?", Box::new(t), &mut params);
    }
    if let Some(c) = f.cursor {
        params.push(Box::new(c.time));
        params.push(Box::new(c.id));
        conds.push(format!("(time, alert_id) < (${}, ${})", params.len() - 1, params.len()));
    }
    let limit = f.limit.clamp(1, 1000);
    params.push(Box::new(limit + 1));
    let where_sql = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let sql =
        format!("SELECT {COLUMNS} FROM alerts{where_sql} ORDER BY time DESC, alert_id DESC LIMIT ${}", params.len());
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&sql, &refs).await.map_err(HuntError::db("listing alerts"))?;
    let mut alerts = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if alerts.len() as i64 > limit {
        alerts.truncate(limit as usize);
        alerts.last().map(|a| Cursor { time: a.time, id: a.id }.encode())
    } else {
        None
    };
    Ok(Page { alerts, next_cursor })
}

/// An event linked to an alert.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LinkedEvent {
    pub event_id: Uuid,
    pub time: DateTime<Utc>,
}

pub async fn get(pool: &Pool, id: Uuid) -> Result<Alert, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM alerts WHERE alert_id = $1"), &[&id])
        .await
        .map_err(HuntError::db("reading an alert"))?;
    match row {
        Some(r) => from_row(&r),
        None => Err(HuntError::NotFound { what: "alert", id: id.to_string() }),
    }
}

/// The events linked to an alert (oldest first, at most `limit`).
pub async fn events(pool: &Pool, id: Uuid, limit: i64) -> Result<Vec<LinkedEvent>, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let rows = client
        .query(
            "SELECT event_id, event_time FROM alert_events WHERE alert_id = $1 ORDER BY event_time, event_id LIMIT $2",
            &[&id, &limit],
        )
        .await
        .map_err(HuntError::db("reading an alert's events"))?;
    Ok(rows.iter().map(|r| LinkedEvent { event_id: r.get(0), time: r.get(1) }).collect())
}

async fn change(pool: &Pool, id: Uuid, set: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Alert, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![&id];
    all.extend_from_slice(params);
    let row = client
        .query_opt(
            &format!("UPDATE alerts SET {set}, updated_at = now() WHERE alert_id = $1 RETURNING {COLUMNS}"),
            &all,
        )
        .await
        .map_err(HuntError::db("changing an alert"))?;
    match row {
        Some(r) => from_row(&r),
        None => Err(HuntError::NotFound { what: "alert", id: id.to_string() }),
    }
}

fn not_closed(a: &Alert, what: &str) -> Result<(), HuntError> {
    if a.status == "closed" {
        return Err(HuntError::Conflict(format!("alert {} is closed; it cannot be {what}", a.id)));
    }
    Ok(())
}

/// Open → acknowledged (again: no change). A closed alert stays closed.
pub async fn acknowledge(pool: &Pool, id: Uuid, by: &str) -> Result<Alert, HuntError> {
    not_closed(&get(pool, id).await?, "acknowledged")?;
    change(
        pool,
        id,
        "status = 'acknowledged', acknowledged_at = coalesce(acknowledged_at, now()), \
         acknowledged_by = coalesce(acknowledged_by, $2)",
        &[&by],
    )
    .await
}

/// Sets (or, with an empty name, clears) the assignee.
pub async fn assign(pool: &Pool, id: Uuid, assignee: Option<&str>) -> Result<Alert, HuntError> {
    not_closed(&get(pool, id).await?, "assigned")?;
    change(pool, id, "assignee = $2", &[&assignee]).await
}

/// Closes with a reason (required).
pub async fn close(pool: &Pool, id: Uuid, reason: &str, by: &str) -> Result<Alert, HuntError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(HuntError::invalid("reason", "reason_required", "closing an alert needs a reason"));
    }
    not_closed(&get(pool, id).await?, "closed again")?;
    change(pool, id, "status = 'closed', closed_at = now(), closed_by = $2, close_reason = $3", &[&by, &reason]).await
}
