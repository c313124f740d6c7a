//! One run of a hunt: search the events ingested in `(watermark, slot −
//! settle]`, group the matches into alerts (joining an alert of the same group
//! raised within the suppression window), record the run, link the events,
//! queue the actions and advance the watermark, all in one transaction; then
//! deliver the actions.
//!
//! Exactly-once: the run locks its hunt row and proceeds only if the
//! watermark is still where the search started, so two runners never record
//! the same window, and `alert_events` refuses an event twice per hunt, so a
//! window replayed anyway (a watermark set back by hand) counts nothing twice. A crash before the
//! commit leaves the watermark where it was and the next run repeats the
//! window; a failed query records an error run and leaves the watermark too,
//! so the next run covers the failed window as well.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_postgres::Transaction;
use uuid::Uuid;
use vigil_search::{QueryOptions, SearchOptions, Searcher};
use vigil_store::Pool;

use crate::actions::{self, DeliveryConfig};
use crate::correlation::{self, Correlation, Ev};
use crate::hunt::{self, severity_label, Hunt};
use crate::metrics::metrics;
use crate::runs;
use crate::{Clock, HuntError, Schedule};

/// How runs behave.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A run scheduled at `slot` covers events ingested up to `slot − settle`:
    /// a writer transaction's rows carry its start time but appear at commit.
    pub settle: TimeDelta,
    /// Most matches one run reads; more are flagged `truncated` on the run.
    pub row_limit: u64,
    pub statement_timeout: std::time::Duration,
    /// How often the scheduler looks for due hunts.
    pub tick: std::time::Duration,
    /// Prefix of the links in webhook payloads (`VIGIL_PUBLIC_URL`), else relative.
    pub public_url: Option<String>,
    pub delivery: DeliveryConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            settle: TimeDelta::seconds(10),
            row_limit: 10_000,
            statement_timeout: std::time::Duration::from_secs(60),
            tick: std::time::Duration::from_secs(1),
            public_url: None,
            delivery: DeliveryConfig::default(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunReport {
    pub hunt_id: Uuid,
    pub slot: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub slots: u32,
    pub matches: u32,
    pub alerts_created: u32,
    pub alerts_updated: u32,
    pub truncated: bool,
    #[schema(required)]
    pub error: Option<String>,
    /// The run was not recorded: another runner moved the watermark first,
    /// or the window was empty.
    pub skipped: bool,
    /// Alerts this run raised.
    pub new_alerts: Vec<Uuid>,
    /// The actions this run queued for its new alerts (`alert_actions` ids).
    #[serde(skip)]
    pub queued_actions: Vec<i64>,
}

/// Runs hunts.
#[derive(Debug, Clone)]
pub struct Runner {
    pool: Pool,
    settings: Settings,
    clock: Arc<dyn Clock>,
}

struct Match {
    event_id: Uuid,
    time: DateTime<Utc>,
    host: Option<String>,
    group: Vec<Value>,
    /// A correlation's `field` value (value_count).
    value: Option<Value>,
}

/// The matches of one alert group in a run.
struct Group {
    key: String,
    values: Vec<Value>,
    matches: Vec<Match>,
    /// A correlation hunt's details of the window that fired.
    correlation: Option<Value>,
}

/// What a run's searches found.
#[derive(Default)]
struct Found {
    /// Matches new in the run's window (distinct events).
    matches: u32,
    truncated: bool,
    groups: Vec<Group>,
}

impl Runner {
    pub fn new(pool: Pool, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        Runner { pool, settings, clock }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs every enabled hunt that has a slot due (`(last_slot, now]`); missed
    /// slots collapse into one run for the latest. Then delivers any action
    /// left pending.
    pub async fn tick(&self) -> Result<Vec<RunReport>, HuntError> {
        let now = self.clock.now();
        let mut reports = Vec::new();
        for h in hunt::list(&self.pool).await? {
            if !h.enabled {
                continue;
            }
            let schedule = match Schedule::parse(&h.schedule) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(hunt = %h.name, "unschedulable hunt: {e}");
                    continue;
                }
            };
            let Some((slot, slots)) = schedule.due(h.last_slot, now) else { continue };
            match self.run(&h, slot, slots, false).await {
                Ok(r) => reports.push(r),
                Err(e) => tracing::error!(hunt = %h.name, "hunt run failed: {e}"),
            }
        }
        actions::deliver_pending(&self.pool, &self.settings.delivery, None).await?;
        Ok(reports)
    }

    /// Runs `hunt_id` now, outside its schedule, over the events ingested
    /// since its watermark (up to now − settle).
    pub async fn run_now(&self, hunt_id: Uuid) -> Result<RunReport, HuntError> {
        let h = hunt::get(&self.pool, hunt_id).await?;
        let now = self.clock.now();
        let report = self.run(&h, now, 0, true).await?;
        if !report.new_alerts.is_empty() {
            actions::deliver_pending(&self.pool, &self.settings.delivery, None).await?;
        }
        Ok(report)
    }

    /// [`Runner::run_now`] for a caller that must answer at once (the API):
    /// new alerts' actions are delivered in the background, so a slow or
    /// unreachable webhook, with its retries, does not hold the answer. They
    /// are queued in the run's transaction, so the scheduler's next tick
    /// delivers whatever this misses.
    pub async fn run_now_deliver_later(&self, hunt_id: Uuid) -> Result<RunReport, HuntError> {
        let h = hunt::get(&self.pool, hunt_id).await?;
        let report = self.run_and_queue(&h, self.clock.now(), 0, true).await?;
        if !report.queued_actions.is_empty() {
            let (pool, delivery, ids) =
                (self.pool.clone(), self.settings.delivery.clone(), report.queued_actions.clone());
            tokio::spawn(async move {
                if let Err(e) = actions::deliver_pending(&pool, &delivery, Some(&ids)).await {
                    tracing::warn!("delivering a manual run's actions failed: {e}");
                }
            });
        }
        Ok(report)
    }

    /// One run of `h` for `slot` (covering `slots` schedule slots), then the
    /// delivery of the actions it queued.
    pub async fn run(&self, h: &Hunt, slot: DateTime<Utc>, slots: u32, manual: bool) -> Result<RunReport, HuntError> {
        let report = self.run_and_queue(h, slot, slots, manual).await?;
        if !report.queued_actions.is_empty() {
            actions::deliver_pending(&self.pool, &self.settings.delivery, Some(&report.queued_actions)).await?;
        }
        Ok(report)
    }

    /// One run, recorded with its alerts and their queued actions, undelivered.
    async fn run_and_queue(
        &self,
        h: &Hunt,
        slot: DateTime<Utc>,
        slots: u32,
        manual: bool,
    ) -> Result<RunReport, HuntError> {
        let started = self.clock.now();
        let window_start = h.watermark;
        let window_end = (slot - self.settings.settle).max(window_start);
        let mut report = RunReport { hunt_id: h.id, slot, window_start, window_end, slots, ..Default::default() };
        let Found { matches, truncated, groups } = match self.find(h, window_start, window_end).await {
            Ok(found) => found,
            Err(e) => {
                report.error = Some(actions::error_chain(&e));
                self.record_error(h, &report, manual, started).await?;
                metrics().run_failed();
                return Ok(report);
            }
        };
        report.matches = matches;
        report.truncated = truncated;
        let mut client = self.pool.get().await.map_err(vigil_store::StoreError::from)?;
        let tx = client.transaction().await.map_err(HuntError::db("starting a run"))?;
        let Some(position) = runs::lock_hunt(&tx, h.id).await? else {
            return Err(HuntError::NotFound { what: "hunt", id: h.id.to_string() });
        };
        if position.watermark != window_start || (!manual && position.last_slot >= slot) {
            report.skipped = true;
            return Ok(report);
        }
        if window_end == window_start {
            // Nothing to search yet: only the slot moves.
            if !manual {
                runs::advance_slot(&tx, h.id, slot).await?;
                tx.commit().await.map_err(HuntError::db("advancing a hunt"))?;
            }
            report.skipped = true;
            return Ok(report);
        }
        for group in &groups {
            let queued = self.alert(&tx, h, slot, group, &mut report).await?;
            report.queued_actions.extend(queued);
        }
        runs::record_run(&tx, &report, manual, started, self.clock.now()).await?;
        let last_slot = if manual { position.last_slot } else { slot };
        runs::advance(&tx, h.id, window_end, last_slot).await?;
        tx.commit().await.map_err(HuntError::db("committing a run"))?;
        count(&report);
        Ok(report)
    }

    /// The matches of `(start, end]` in alert groups (none for an empty window).
    async fn find(&self, h: &Hunt, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Found, HuntError> {
        if end <= start {
            Ok(Found::default())
        } else if let Some(c) = &h.correlation {
            self.correlate(c, start, end).await
        } else {
            let (matches, truncated) = self.search(h, start, end).await?;
            Ok(group(h, matches, truncated))
        }
    }

    /// One group's matches in the run's transaction: they join the group's
    /// alert raised within the suppression window, or raise a new one, which
    /// is dropped again when every event was already counted. Returns the
    /// actions queued for a new alert.
    async fn alert(
        &self,
        tx: &Transaction<'_>,
        h: &Hunt,
        slot: DateTime<Utc>,
        group: &Group,
        report: &mut RunReport,
    ) -> Result<Vec<i64>, HuntError> {
        let suppress_after = slot - TimeDelta::seconds(h.suppression_s);
        let (alert_id, created) = match runs::suppressing_alert(tx, h.id, &group.key, suppress_after).await? {
            Some(id) => (id, false),
            None => (raise(tx, h, slot, group).await?, true),
        };
        let ids: Vec<Uuid> = group.matches.iter().map(|m| m.event_id).collect();
        let times: Vec<DateTime<Utc>> = group.matches.iter().map(|m| m.time).collect();
        let linked = runs::link_events(tx, alert_id, h.id, &ids, &times).await?;
        if linked.count == 0 {
            if created {
                runs::drop_alert(tx, alert_id).await?;
            }
            return Ok(Vec::new());
        }
        let details = group.correlation.as_ref();
        let meta = details.map_or(json!({}), |d| json!({"correlation": d}));
        let row = runs::add_linked(tx, alert_id, &linked, slot, &meta).await?;
        if !created {
            report.alerts_updated += 1;
            return Ok(Vec::new());
        }
        report.alerts_created += 1;
        report.new_alerts.push(alert_id);
        let payload = self.payload(h, &row, &ids, details);
        let mut queued = Vec::with_capacity(h.actions.len());
        for a in &h.actions {
            let (url, body) = a.request(&payload, &self.settings.delivery);
            queued.push(runs::queue_action(tx, alert_id, h.id, a.kind(), &url, &body).await?);
        }
        Ok(queued)
    }

    /// The matching events of `(start, end]`, and whether the row limit cut them.
    async fn search(
        &self,
        h: &Hunt,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(Vec<Match>, bool), HuntError> {
        let cfg = hunt::run_config((start, end), self.settings.row_limit);
        self.search_query(&h.query, cfg, end, &h.group_by, None).await
    }

    /// Runs `query` (events) with `cfg` as of `now`: its matches with their
    /// `group_by` values (and `field`'s), and whether the row limit cut them.
    async fn search_query(
        &self,
        query: &str,
        cfg: vigil_srql::Config,
        now: DateTime<Utc>,
        group_by: &[String],
        field: Option<&str>,
    ) -> Result<(Vec<Match>, bool), HuntError> {
        let opts = SearchOptions {
            srql: cfg,
            query: QueryOptions { statement_timeout: self.settings.statement_timeout },
            ..Default::default()
        };
        let searcher = Searcher::new(self.pool.clone(), None, opts);
        let result = searcher.search(query, now).await?;
        let col = |name: &str| result.columns.iter().position(|c| c.name == name);
        let (Some(id_col), Some(time_col)) = (col("event_id"), col("time")) else {
            return Err(HuntError::invalid("query", "not_supported", "the query's result has no event_id or time"));
        };
        let host_col = col("host");
        let group_cols: Vec<Option<usize>> = group_by.iter().map(|g| col(g)).collect();
        let field_col = field.and_then(col);
        let mut out = Vec::with_capacity(result.rows.len());
        for row in &result.rows {
            let id = row.get(id_col).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
            let time = row.get(time_col).and_then(Value::as_str).and_then(|s| s.parse::<DateTime<Utc>>().ok());
            let (Some(event_id), Some(time)) = (id, time) else { continue };
            out.push(Match {
                event_id,
                time,
                host: host_col.and_then(|i| row.get(i)).and_then(Value::as_str).map(str::to_string),
                group: group_cols.iter().map(|c| c.and_then(|i| row.get(i)).cloned().unwrap_or(Value::Null)).collect(),
                value: field_col.and_then(|i| row.get(i)).cloned(),
            });
        }
        let truncated = result.rows.len() as u64 >= self.settings.row_limit || result.partial;
        Ok((out, truncated))
    }

    /// A correlation hunt's run over the ingestion window `(start, end]`:
    /// each rule's new matches, then each rule's matches ingested up to
    /// `end` whose event time is within the timespan of a new match (the
    /// context), grouped and evaluated ([`correlation::evaluate`]).
    async fn correlate(&self, c: &Correlation, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Found, HuntError> {
        let limit = self.settings.row_limit;
        let field = c.field.as_deref();
        let mut truncated = false;
        let mut new: Vec<Vec<Match>> = Vec::with_capacity(c.rules.len());
        for r in &c.rules {
            let cfg = hunt::run_config((start, end), limit);
            let (ms, cut) = self.search_query(&r.query, cfg, end, &c.group_by, field).await?;
            truncated |= cut;
            new.push(ms);
        }
        let new_ids: HashSet<Uuid> = new.iter().flatten().map(|m| m.event_id).collect();
        let first = new.iter().flatten().map(|m| m.time).min();
        let last = new.iter().flatten().map(|m| m.time).max();
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Found { truncated, ..Default::default() });
        };
        let span = TimeDelta::seconds(c.timespan_s);
        let (lo, hi) = (first - span, last + span);
        let mut cfg = hunt::run_config((DateTime::UNIX_EPOCH, end), limit);
        cfg.max_span = cfg.max_span.max(hi - lo + TimeDelta::days(1));

        type Members = (Vec<Value>, Vec<Ev>, HashMap<Uuid, Match>);
        let mut groups: BTreeMap<String, Members> = BTreeMap::new();
        for (i, (r, fresh)) in c.rules.iter().zip(new).enumerate() {
            let q = correlation::with_event_time(&r.query, lo, hi)?;
            let (context, cut) = self.search_query(&q, cfg.clone(), end, &c.group_by, field).await?;
            truncated |= cut;
            let mut seen = HashSet::new();
            for m in context.into_iter().chain(fresh) {
                if !seen.insert(m.event_id) {
                    continue;
                }
                let key = if c.group_by.is_empty() { String::new() } else { Value::Array(m.group.clone()).to_string() };
                let g = groups.entry(key).or_insert_with(|| (m.group.clone(), Vec::new(), HashMap::new()));
                let value = match &m.value {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => Some(v.to_string()),
                };
                g.1.push(Ev { rule: i, event_id: m.event_id, time: m.time, new: new_ids.contains(&m.event_id), value });
                g.2.entry(m.event_id).or_insert(m);
            }
        }
        let mut out = Vec::new();
        for (key, (values, mut evs, mut by_id)) in groups {
            let Some(hit) = correlation::evaluate(c, &mut evs) else { continue };
            let matches: Vec<Match> = hit.linked.iter().filter_map(|k| by_id.remove(&evs[*k].event_id)).collect();
            out.push(Group { key, values, matches, correlation: Some(correlation::details(c, &hit)) });
        }
        Ok(Found { matches: new_ids.len() as u32, truncated, groups: out })
    }

    async fn record_error(
        &self,
        h: &Hunt,
        r: &RunReport,
        manual: bool,
        started: DateTime<Utc>,
    ) -> Result<(), HuntError> {
        let mut client = self.pool.get().await.map_err(vigil_store::StoreError::from)?;
        let tx = client.transaction().await.map_err(HuntError::db("recording a failed run"))?;
        runs::record_run(&tx, r, manual, started, self.clock.now()).await?;
        if !manual {
            // The slot is handled; the window is not: the next run covers it again.
            runs::keep_slot(&tx, h.id, r.slot).await?;
        }
        tx.commit().await.map_err(HuntError::db("recording a failed run"))?;
        Ok(())
    }

    /// The webhook payload of a new alert.
    fn payload(&self, h: &Hunt, row: &tokio_postgres::Row, ids: &[Uuid], correlation: Option<&Value>) -> Value {
        let alert_id: Uuid = row.get("alert_id");
        let base = self.settings.public_url.clone().unwrap_or_default();
        let severity_id: i16 = row.get("severity_id");
        let mut p = json!({
            "id": alert_id,
            "time": row.get::<_, DateTime<Utc>>("time"),
            "hunt": {"id": h.id, "name": h.name, "query": h.query, "meta": h.meta},
            "title": row.get::<_, String>("title"),
            "severity": severity_label(severity_id),
            "severity_id": severity_id,
            "status": row.get::<_, String>("status"),
            "host": row.get::<_, Option<String>>("host"),
            "group_key": row.get::<_, Option<String>>("group_key"),
            "group": row.get::<_, Value>("group_values"),
            "count": row.get::<_, i32>("event_count"),
            "first_seen": row.get::<_, Option<DateTime<Utc>>>("first_seen"),
            "last_seen": row.get::<_, Option<DateTime<Utc>>>("last_seen"),
            "event_ids": ids.iter().take(100).collect::<Vec<_>>(),
            "links": {
                "alert": format!("{base}/api/v1/alerts/{alert_id}"),
                "hunt": format!("{base}/api/v1/hunts/{}", h.id),
            },
        });
        if let (Some(c), Value::Object(m)) = (correlation, &mut p) {
            m.insert("correlation".into(), c.clone());
        }
        p
    }
}

/// A plain hunt's matches grouped by its keys, in a stable order.
fn group(h: &Hunt, matches: Vec<Match>, truncated: bool) -> Found {
    let mut groups: BTreeMap<String, Vec<Match>> = BTreeMap::new();
    let n = matches.len() as u32;
    for m in matches {
        let key = if h.group_by.is_empty() { String::new() } else { Value::Array(m.group.clone()).to_string() };
        groups.entry(key).or_default().push(m);
    }
    let groups = groups
        .into_iter()
        .map(|(key, matches)| Group { key, values: matches[0].group.clone(), matches, correlation: None })
        .collect();
    Found { matches: n, truncated, groups }
}

/// Raises the alert of a group with no alert to join; returns its id.
async fn raise(tx: &Transaction<'_>, h: &Hunt, slot: DateTime<Utc>, group: &Group) -> Result<Uuid, HuntError> {
    let id = Uuid::new_v4();
    let group_values: serde_json::Map<String, Value> =
        h.group_by.iter().cloned().zip(group.values.iter().cloned()).collect();
    let title = title(&h.name, &group_values);
    let host = common_host(&group.matches);
    let raw = json!({"hunt": h.name, "query": h.query});
    let group_values = Value::Object(group_values);
    let mut meta = h.meta.clone();
    if let (Some(d), Value::Object(m)) = (&group.correlation, &mut meta) {
        m.insert("correlation".into(), d.clone());
    }
    let alert = runs::NewAlert {
        id,
        time: slot,
        rule: &h.name,
        title: &title,
        severity_id: h.severity_id,
        host: host.as_deref(),
        raw: &raw,
        hunt_id: h.id,
        group_key: &group.key,
        group_values: &group_values,
        meta: &meta,
    };
    runs::raise_alert(tx, &alert).await?;
    Ok(id)
}

/// The hunt's name, followed by the group's values when it has some.
fn title(name: &str, group_values: &serde_json::Map<String, Value>) -> String {
    if group_values.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = group_values
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    format!("{name} ({})", parts.join(", "))
}

/// A recorded run in the counters.
fn count(r: &RunReport) {
    metrics().run_recorded(r.slots, r.matches, r.alerts_created, r.alerts_updated);
}

/// The host every match shares, if they share one.
fn common_host(ms: &[Match]) -> Option<String> {
    let first = ms.first()?.host.clone()?;
    ms.iter().all(|m| m.host.as_deref() == Some(first.as_str())).then_some(first)
}
