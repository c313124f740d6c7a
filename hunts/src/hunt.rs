//! Hunt definitions: what a client sends ([`HuntSpec`]), how it is checked
//! ([`HuntSpec::validate`]) and how it is stored (table `hunts`).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;
use vigil_srql::registry::{self, SEVERITY};
use vigil_srql::{compile, Config, SrqlError, Visualization};
use vigil_store::Pool;

use crate::actions::{keep_secrets, serialize_redacted};
use crate::correlation::Correlation;
use crate::{Action, DeliveryConfig, HuntError, Schedule};

/// Suppression when a hunt names none.
pub const DEFAULT_SUPPRESSION_S: i64 = 3600;
/// The longest suppression window (30 days).
pub const MAX_SUPPRESSION_S: i64 = 30 * 86_400;
const MAX_NAME: usize = 200;
const MAX_GROUP_BY: usize = 8;
const MAX_ACTIONS: usize = 10;

/// A hunt as a client writes it (`POST /api/v1/hunts`, `PUT …/{id}`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HuntSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// SRQL returning events (`in:events` or `in:logs`).
    pub query: String,
    /// Cron, in UTC: `*/5 * * * *`.
    pub schedule: String,
    /// `info` … `critical` or 0–6; default `medium`.
    #[serde(default)]
    pub severity: Option<Value>,
    /// Result fields whose values group matches into alerts.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// A duration (`30m`, `1h`, `0`) or seconds; default 1 h.
    #[serde(default)]
    pub suppression: Option<Value>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Free-form metadata, e.g. a Sigma rule's id, title, level, tags, references.
    #[serde(default)]
    pub meta: Option<Value>,
    /// A Sigma correlation over base rules (see [`Correlation::parse`] and
    /// docs/hunts.md, "Correlation hunts"); absent or null for a plain hunt.
    #[serde(default)]
    pub correlation: Option<Value>,
}

fn yes() -> bool {
    true
}

/// A checked [`HuntSpec`].
#[derive(Debug, Clone)]
pub struct Validated {
    pub name: String,
    pub description: String,
    pub query: String,
    pub schedule: Schedule,
    pub severity_id: i16,
    /// Registry names of the group-by fields.
    pub group_by: Vec<String>,
    pub suppression_s: i64,
    pub actions: Vec<Action>,
    pub enabled: bool,
    pub meta: Value,
    pub correlation: Option<Correlation>,
}

/// A stored hunt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hunt {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub query: String,
    pub schedule: String,
    pub severity: &'static str,
    pub severity_id: i16,
    pub group_by: Vec<String>,
    pub suppression_s: i64,
    /// Webhook secrets are stored, and shown only as `has_secret`.
    #[serde(serialize_with = "serialize_redacted")]
    #[schema(value_type = Vec<crate::actions::ActionView>)]
    pub actions: Vec<Action>,
    pub enabled: bool,
    pub meta: Value,
    /// The correlation, for a correlation hunt (null for a plain one).
    #[schema(required)]
    pub correlation: Option<Correlation>,
    /// The last schedule slot handled.
    pub last_slot: DateTime<Utc>,
    /// Events ingested up to here have been searched.
    pub watermark: DateTime<Utc>,
    /// The next slot, when the schedule has one.
    #[schema(required)]
    pub next_run: Option<DateTime<Utc>>,
    #[schema(required)]
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The label of a severity id.
pub fn severity_label(id: i16) -> &'static str {
    SEVERITY.iter().find(|(_, v)| *v == i64::from(id)).map(|(n, _)| *n).unwrap_or("unknown")
}

fn parse_severity(v: Option<&Value>) -> Result<i16, HuntError> {
    let bad = |what: &str| {
        HuntError::invalid(
            "severity",
            "bad_severity",
            format!("severity {what} is not one of info, low, medium, high, critical, fatal or 0-6"),
        )
    };
    match v {
        None | Some(Value::Null) => Ok(3),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i @ 0..=6) => Ok(i as i16),
            _ => Err(bad(&n.to_string())),
        },
        Some(Value::String(s)) => {
            let t = s.trim();
            if let Ok(i @ 0..=6) = t.parse::<i16>() {
                return Ok(i);
            }
            SEVERITY.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)).map(|(_, i)| *i as i16).ok_or_else(|| bad(t))
        }
        Some(other) => Err(bad(&other.to_string())),
    }
}

fn parse_suppression(v: Option<&Value>) -> Result<i64, HuntError> {
    let bad = |what: &str| {
        HuntError::invalid(
            "suppression",
            "bad_suppression",
            format!("suppression {what} is not a duration like 30m or 1h (or seconds) up to 30 days"),
        )
    };
    let s = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_SUPPRESSION_S),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| bad(&n.to_string()))?,
        Some(Value::String(s)) => {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(n) => n,
                Err(_) => vigil_srql::time::parse_duration(t).map(|d| d.num_seconds()).ok_or_else(|| bad(t))?,
            }
        }
        Some(other) => return Err(bad(&other.to_string())),
    };
    if (0..=MAX_SUPPRESSION_S).contains(&s) {
        Ok(s)
    } else {
        Err(bad(&s.to_string()))
    }
}

/// Compiles a hunt's query as a run would (over an ingestion window, the
/// SQL path), so that what validates is what runs.
pub fn compile_for_run(
    query: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    row_limit: u64,
) -> Result<vigil_srql::Compiled, SrqlError> {
    compile(query, &run_config(window, row_limit), window.1)
}

/// The SRQL configuration of a run over `window`.
pub fn run_config(window: (DateTime<Utc>, DateTime<Utc>), row_limit: u64) -> Config {
    Config {
        ingested_window: Some(window),
        default_limit: row_limit,
        max_limit: row_limit,
        text_index: false,
        ..Config::default()
    }
}

impl HuntSpec {
    /// Checks every field: the name, the query (compiles and returns events
    /// with `event_id` and `time`), the schedule, the severity, the group-by
    /// fields (in the entity's registry and in the result), the suppression
    /// window and the actions (which must go where `outbound` allows).
    pub fn validate(&self, row_limit: u64, outbound: &DeliveryConfig) -> Result<Validated, HuntError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(HuntError::invalid(
                "name",
                "bad_name",
                format!("a hunt needs a name of 1 to {MAX_NAME} characters"),
            ));
        }
        let (entity, columns) = check_events_query(&self.query, row_limit)?;
        if self.group_by.len() > MAX_GROUP_BY {
            return Err(HuntError::invalid(
                "group_by",
                "bad_group_by",
                format!("at most {MAX_GROUP_BY} group-by fields"),
            ));
        }
        let mut group_by = Vec::new();
        for g in &self.group_by {
            let f = entity.field(g.trim()).ok_or_else(|| {
                let mut near = nearest_fields(g, entity);
                near.truncate(3);
                let hint =
                    if near.is_empty() { String::new() } else { format!("; did you mean {}?", near.join(" or ")) };
                HuntError::invalid(
                    "group_by",
                    "unknown_field",
                    format!("group_by: unknown field `{g}` in `in:{}`{hint}", entity.name),
                )
            })?;
            if !columns.iter().any(|c| c == f.name) {
                return Err(HuntError::invalid(
                    "group_by",
                    "bad_group_by",
                    format!("group_by: the query's result has no `{}` field", f.name),
                ));
            }
            if !group_by.iter().any(|x| x == f.name) {
                group_by.push(f.name.to_string());
            }
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(HuntError::invalid("actions", "bad_action", format!("at most {MAX_ACTIONS} actions")));
        }
        for (i, a) in self.actions.iter().enumerate() {
            a.validate(i, outbound)?;
        }
        let meta = match &self.meta {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(m @ Value::Object(_)) => m.clone(),
            Some(_) => return Err(HuntError::invalid("meta", "bad_meta", "meta must be a JSON object")),
        };
        let correlation = match &self.correlation {
            None | Some(Value::Null) => None,
            Some(c) => {
                let check = |q: &str| check_events_query(q, row_limit);
                let c = Correlation::parse(c, &self.query, &group_by, &check)?;
                group_by = c.group_by.clone();
                Some(c)
            }
        };
        Ok(Validated {
            name: name.to_string(),
            description: self.description.clone(),
            query: self.query.clone(),
            schedule: Schedule::parse(&self.schedule)?,
            severity_id: parse_severity(self.severity.as_ref())?,
            group_by,
            suppression_s: parse_suppression(self.suppression.as_ref())?,
            actions: self.actions.clone(),
            enabled: self.enabled,
            meta,
            correlation,
        })
    }
}

/// Compiles `query` as a run would and checks that it returns events with
/// `event_id` and `time`: its entity and result column names.
fn check_events_query(query: &str, row_limit: u64) -> Result<(&'static registry::EntityDef, Vec<String>), HuntError> {
    let now = Utc::now();
    let compiled = compile_for_run(query, (now - TimeDelta::minutes(5), now), row_limit)?;
    let unsupported = match compiled.visualization {
        Visualization::Table => None,
        Visualization::Stats => Some("aggregation (`stats:`, `| stats`)"),
        Visualization::Timechart => Some("`| timechart` and `bucket:`"),
        Visualization::Similarity => Some("`SIMILAR_TO`"),
        Visualization::Cluster => Some("`| cluster`"),
        Visualization::Graph => Some("`| blast_radius`"),
    };
    if let Some(what) = unsupported {
        return Err(HuntError::invalid(
            "query",
            "not_supported",
            format!("a hunt's query must return events; {what} is not supported in hunts"),
        ));
    }
    for needed in ["event_id", "time"] {
        if !compiled.columns.iter().any(|c| c.name == needed) {
            return Err(HuntError::invalid(
                "query",
                "not_supported",
                format!("a hunt's query must keep the `{needed}` field (alerts link to the events)"),
            ));
        }
    }
    let entity = registry::entity(compiled.entity)
        .ok_or_else(|| HuntError::invalid("query", "not_supported", format!("unknown entity {}", compiled.entity)))?;
    Ok((entity, compiled.columns.into_iter().map(|c| c.name).collect()))
}

/// Field names of `entity` nearest to `name` (for typos).
fn nearest_fields(name: &str, entity: &registry::EntityDef) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = entity
        .field_names()
        .map(|n| (edit_distance(&lower, &n.to_ascii_lowercase()), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, n)| format!("`{n}`")).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

const COLUMNS: &str =
    "id, name, description, query, schedule, severity_id, group_by, suppression_s, actions, enabled, \
                       meta, correlation, last_slot, watermark, created_by, created_at, updated_at";

pub(crate) fn from_row(r: &Row) -> Result<Hunt, HuntError> {
    let get = |e: tokio_postgres::Error| HuntError::db("reading a hunt")(e);
    let schedule: String = r.try_get("schedule").map_err(get)?;
    let last_slot: DateTime<Utc> = r.try_get("last_slot").map_err(get)?;
    let actions: Value = r.try_get("actions").map_err(get)?;
    let severity_id: i16 = r.try_get("severity_id").map_err(get)?;
    let suppression: i32 = r.try_get("suppression_s").map_err(get)?;
    // Written only by this crate; unreadable, the hunt must not run as a plain one.
    let correlation = match r.try_get::<_, Option<Value>>("correlation").map_err(get)? {
        None => None,
        Some(c) => Some(serde_json::from_value::<Correlation>(c).map_err(|e| {
            HuntError::Corrupt(format!("hunt {:?}: its correlation is unreadable: {e}", r.get::<_, Uuid>("id")))
        })?),
    };
    Ok(Hunt {
        id: r.try_get("id").map_err(get)?,
        name: r.try_get("name").map_err(get)?,
        description: r.try_get("description").map_err(get)?,
        query: r.try_get("query").map_err(get)?,
        next_run: Schedule::parse(&schedule).ok().and_then(|s| s.next_after(last_slot)),
        schedule,
        severity: severity_label(severity_id),
        severity_id,
        group_by: r.try_get("group_by").map_err(get)?,
        suppression_s: i64::from(suppression),
        actions: serde_json::from_value(actions).unwrap_or_default(),
        enabled: r.try_get("enabled").map_err(get)?,
        meta: r.try_get("meta").map_err(get)?,
        correlation,
        last_slot,
        watermark: r.try_get("watermark").map_err(get)?,
        created_by: r.try_get("created_by").map_err(get)?,
        created_at: r.try_get("created_at").map_err(get)?,
        updated_at: r.try_get("updated_at").map_err(get)?,
    })
}

fn conflict_or<'a>(context: &'static str, name: &'a str) -> impl FnOnce(tokio_postgres::Error) -> HuntError + 'a {
    move |e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            HuntError::Conflict(format!("a hunt named {name:?} exists already"))
        } else {
            HuntError::db(context)(e)
        }
    }
}

fn correlation_json(v: &Validated) -> Option<Value> {
    v.correlation.as_ref().and_then(|c| serde_json::to_value(c).ok())
}

/// Stores a new hunt. Its first run covers what is ingested from `now − settle` on.
pub async fn create(
    pool: &Pool,
    v: &Validated,
    created_by: Option<&str>,
    now: DateTime<Utc>,
    settle: TimeDelta,
) -> Result<Hunt, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let actions = serde_json::to_value(keep_secrets(&v.actions, &[])).unwrap_or(Value::Array(Vec::new()));
    let row = client
        .query_one(
            &format!(
                "INSERT INTO hunts (id, name, description, query, schedule, severity_id, group_by, suppression_s,
                                    actions, enabled, meta, last_slot, watermark, created_by, created_at, updated_at,
                                    correlation)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now(), now(), $15)
                 RETURNING {COLUMNS}"
            ),
            &[
                &Uuid::new_v4(),
                &v.name,
                &v.description,
                &v.query,
                &v.schedule.as_str(),
                &v.severity_id,
                &v.group_by,
                &(v.suppression_s as i32),
                &actions,
                &v.enabled,
                &v.meta,
                &now,
                &(now - settle),
                &created_by,
                &correlation_json(v),
            ],
        )
        .await
        .map_err(conflict_or("creating a hunt", &v.name))?;
    from_row(&row)
}

/// Replaces a hunt's definition; its watermark and last slot stay, so the
/// next run continues where the last one stopped. A webhook sent without its
/// secret keeps the one it had (responses never show it).
pub async fn update(pool: &Pool, id: Uuid, v: &Validated) -> Result<Hunt, HuntError> {
    let mut client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let tx = client.transaction().await.map_err(HuntError::db("updating a hunt"))?;
    let old: Vec<Action> = tx
        .query_opt("SELECT actions FROM hunts WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .map_err(HuntError::db("reading a hunt"))?
        .and_then(|r| serde_json::from_value(r.get(0)).ok())
        .unwrap_or_default();
    let actions = serde_json::to_value(keep_secrets(&v.actions, &old)).unwrap_or(Value::Array(Vec::new()));
    let row = tx
        .query_opt(
            &format!(
                "UPDATE hunts SET name = $2, description = $3, query = $4, schedule = $5, severity_id = $6,
                        group_by = $7, suppression_s = $8, actions = $9, enabled = $10, meta = $11,
                        correlation = $12, updated_at = now()
                  WHERE id = $1
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &v.name,
                &v.description,
                &v.query,
                &v.schedule.as_str(),
                &v.severity_id,
                &v.group_by,
                &(v.suppression_s as i32),
                &actions,
                &v.enabled,
                &v.meta,
                &correlation_json(v),
            ],
        )
        .await
        .map_err(conflict_or("updating a hunt", &v.name))?;
    tx.commit().await.map_err(HuntError::db("updating a hunt"))?;
    match row {
        Some(r) => from_row(&r),
        None => Err(HuntError::NotFound { what: "hunt", id: id.to_string() }),
    }
}

pub async fn get(pool: &Pool, id: Uuid) -> Result<Hunt, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM hunts WHERE id = $1"), &[&id])
        .await
        .map_err(HuntError::db("reading a hunt"))?;
    match row {
        Some(r) => from_row(&r),
        None => Err(HuntError::NotFound { what: "hunt", id: id.to_string() }),
    }
}

pub async fn list(pool: &Pool) -> Result<Vec<Hunt>, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let rows = client
        .query(&format!("SELECT {COLUMNS} FROM hunts ORDER BY name"), &[])
        .await
        .map_err(HuntError::db("listing hunts"))?;
    rows.iter().map(from_row).collect()
}

/// Deletes a hunt and its runs; its alerts stay (without the hunt link).
pub async fn delete(pool: &Pool, id: Uuid) -> Result<(), HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let n =
        client.execute("DELETE FROM hunts WHERE id = $1", &[&id]).await.map_err(HuntError::db("deleting a hunt"))?;
    if n == 0 {
        return Err(HuntError::NotFound { what: "hunt", id: id.to_string() });
    }
    Ok(())
}

/// One recorded run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = HuntRun)]
pub struct Run {
    pub id: i64,
    pub hunt_id: Uuid,
    pub slot: DateTime<Utc>,
    pub slots: i32,
    pub manual: bool,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub matches: i32,
    pub alerts_created: i32,
    pub alerts_updated: i32,
    pub truncated: bool,
    #[schema(required)]
    pub error: Option<String>,
}

/// The newest `limit` runs of a hunt, newest first.
pub async fn runs(pool: &Pool, hunt_id: Uuid, limit: i64) -> Result<Vec<Run>, HuntError> {
    let client = pool.get().await.map_err(vigil_store::StoreError::from)?;
    let rows = client
        .query(
            "SELECT id, hunt_id, slot, slots, manual, window_start, window_end, started_at, finished_at, matches,
                    alerts_created, alerts_updated, truncated, error
               FROM hunt_runs WHERE hunt_id = $1 ORDER BY id DESC LIMIT $2",
            &[&hunt_id, &limit],
        )
        .await
        .map_err(HuntError::db("listing runs"))?;
    rows.iter()
        .map(|r| {
            let g = HuntError::db("reading a run");
            Ok(Run {
                id: r.try_get(0).map_err(HuntError::db("reading a run"))?,
                hunt_id: r.try_get(1).map_err(HuntError::db("reading a run"))?,
                slot: r.try_get(2).map_err(HuntError::db("reading a run"))?,
                slots: r.try_get(3).map_err(HuntError::db("reading a run"))?,
                manual: r.try_get(4).map_err(HuntError::db("reading a run"))?,
                window_start: r.try_get(5).map_err(HuntError::db("reading a run"))?,
                window_end: r.try_get(6).map_err(HuntError::db("reading a run"))?,
                started_at: r.try_get(7).map_err(HuntError::db("reading a run"))?,
                finished_at: r.try_get(8).map_err(HuntError::db("reading a run"))?,
                matches: r.try_get(9).map_err(HuntError::db("reading a run"))?,
                alerts_created: r.try_get(10).map_err(HuntError::db("reading a run"))?,
                alerts_updated: r.try_get(11).map_err(HuntError::db("reading a run"))?,
                truncated: r.try_get(12).map_err(HuntError::db("reading a run"))?,
                error: r.try_get(13).map_err(g)?,
            })
        })
        .collect()
}
