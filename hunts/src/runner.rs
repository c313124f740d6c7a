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
use uuid::Uuid;
use vigil_search::{SearchOptions, Searcher};
use vigil_store::query::QueryOptions;
use vigil_store::Pool;

use crate::actions::{self, DeliveryConfig};
use crate::correlation::{self, Correlation, Ev};
use crate::hunt::{self, severity_label, Hunt};
use crate::metrics::{add, COUNTERS};
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
        let found = if window_end <= window_start {
            Ok(Found::default())
        } else if let Some(c) = &h.correlation {
            self.correlate(c, window_start, window_end).await
        } else {
            self.search(h, window_start, window_end).await.map(|(matches, truncated)| {
                // Group the matches, in a stable order.
                let mut groups: BTreeMap<String, Vec<Match>> = BTreeMap::new();
                let n = matches.len() as u32;
                for m in matches {
                    let key =
                        if h.group_by.is_empty() { String::new() } else { Value::Array(m.group.clone()).to_string() };
                    groups.entry(key).or_default().push(m);
                }
                let groups = groups
                    .into_iter()
                    .map(|(key, matches)| Group { key, values: matches[0].group.clone(), matches, correlation: None })
                    .collect();
                Found { matches: n, truncated, groups }
            })
        };
        let Found { matches, truncated, groups } = match found {
            Ok(m) => m,
            Err(e) => {
                report.error = Some(actions::error_chain(&e));
                self.record_error(h, &report, manual, started).await?;
                add(&COUNTERS.run_errors, 1);
                return Ok(report);
            }
        };
        report.matches = matches;
        report.truncated = truncated;
        let mut client = self.pool.get().await.map_err(vigil_store::StoreError::from)?;
        let tx = client.transaction().await.map_err(HuntError::db("starting a run"))?;
        let row = tx
            .query_opt("SELECT watermark, last_slot FROM hunts WHERE id = $1 FOR UPDATE", &[&h.id])
            .await
            .map_err(HuntError::db("locking a hunt"))?;
        let Some(row) = row else { return Err(HuntError::NotFound { what: "hunt", id: h.id.to_string() }) };
        let watermark: DateTime<Utc> = row.get(0);
        let last_slot: DateTime<Utc> = row.get(1);
        if watermark != window_start || (!manual && last_slot >= slot) {
            report.skipped = true;
            return Ok(report);
        }
        if window_end == window_start {
            // Nothing to search yet: only the slot moves.
            if !manual {
                tx.execute("UPDATE hunts SET last_slot = $2 WHERE id = $1", &[&h.id, &slot])
                    .await
                    .map_err(HuntError::db("advancing a hunt"))?;
                tx.commit().await.map_err(HuntError::db("advancing a hunt"))?;
            }
            report.skipped = true;
            return Ok(report);
        }

        let mut action_ids: Vec<i64> = Vec::new();
        let suppress_after = slot - TimeDelta::seconds(h.suppression_s);
        for Group { key, values, matches: ms, correlation: details } in &groups {
            let existing = tx
                .query_opt(
                    "SELECT alert_id FROM alerts
                      WHERE hunt_id = $1 AND group_key = $2 AND status <> 'closed' AND time > $3
                      ORDER BY time DESC LIMIT 1 FOR UPDATE",
                    &[&h.id, key, &suppress_after],
                )
                .await
                .map_err(HuntError::db("finding an alert"))?;
            let (alert_id, created) = match existing {
                Some(r) => (r.get::<_, Uuid>(0), false),
                None => {
                    let id = Uuid::new_v4();
                    let group_values: serde_json::Map<String, Value> =
                        h.group_by.iter().cloned().zip(values.iter().cloned()).collect();
                    let host = common_host(ms);
                    let title = if group_values.is_empty() {
                        h.name.clone()
                    } else {
                        let parts: Vec<String> = group_values
                            .iter()
                            .map(|(k, v)| {
                                format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                            })
                            .collect();
                        format!("{} ({})", h.name, parts.join(", "))
                    };
                    let raw = json!({"hunt": h.name, "query": h.query});
                    let mut meta = h.meta.clone();
                    if let (Some(d), Value::Object(m)) = (details, &mut meta) {
                        m.insert("correlation".into(), d.clone());
                    }
                    tx.execute(
                        "INSERT INTO alerts (alert_id, time, rule, title, severity_id, status, host, event_count, raw,
                                             hunt_id, group_key, group_values, last_matched_at, meta, updated_at)
                         VALUES ($1, $2, $3, $4, $5, 'open', $6, 0, $7, $8, $9, $10, $2, $11, now())",
                        &[
                            &id,
                            &slot,
                            &h.name,
                            &title,
                            &h.severity_id,
                            &host,
                            &raw,
                            &h.id,
                            key,
                            &Value::Object(group_values),
                            &meta,
                        ],
                    )
                    .await
                    .map_err(HuntError::db("raising an alert"))?;
                    (id, true)
                }
            };
            let ids: Vec<Uuid> = ms.iter().map(|m| m.event_id).collect();
            let times: Vec<DateTime<Utc>> = ms.iter().map(|m| m.time).collect();
            let linked = tx
                .query_one(
                    "WITH ins AS (
                        INSERT INTO alert_events (alert_id, hunt_id, event_id, event_time)
                        SELECT $1, $2, e, t FROM unnest($3::uuid[], $4::timestamptz[]) AS x(e, t)
                        ON CONFLICT DO NOTHING
                        RETURNING event_time)
                     SELECT count(*)::int4, min(event_time), max(event_time) FROM ins",
                    &[&alert_id, &h.id, &ids, &times],
                )
                .await
                .map_err(HuntError::db("linking events to an alert"))?;
            let n: i32 = linked.get(0);
            if n == 0 {
                if created {
                    tx.execute("DELETE FROM alerts WHERE alert_id = $1", &[&alert_id])
                        .await
                        .map_err(HuntError::db("dropping an empty alert"))?;
                }
                continue;
            }
            let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (linked.get(1), linked.get(2));
            let row = tx
                .query_one(
                    "UPDATE alerts SET event_count = event_count + $2,
                            first_seen = least(first_seen, $3), last_seen = greatest(last_seen, $4),
                            last_matched_at = $5, meta = meta || $6::jsonb, updated_at = now()
                      WHERE alert_id = $1
                     RETURNING alert_id, time, rule, title, severity_id, status, host, event_count, group_key,
                               group_values, first_seen, last_seen, meta",
                    &[
                        &alert_id,
                        &n,
                        &first,
                        &last,
                        &slot,
                        &details.as_ref().map_or(json!({}), |d| json!({"correlation": d})),
                    ],
                )
                .await
                .map_err(HuntError::db("updating an alert"))?;
            if created {
                report.alerts_created += 1;
                report.new_alerts.push(alert_id);
                let payload = self.payload(h, &row, &ids, details.as_ref());
                for a in &h.actions {
                    let (url, body) = a.request(&payload, &self.settings.delivery);
                    let r = tx
                        .query_one(
                            "INSERT INTO alert_actions (alert_id, hunt_id, kind, url, body) VALUES ($1, $2, $3, $4, $5)
                             RETURNING id",
                            &[&alert_id, &h.id, &a.kind(), &url, &body],
                        )
                        .await
                        .map_err(HuntError::db("queueing an action"))?;
                    action_ids.push(r.get(0));
                }
            } else {
                report.alerts_updated += 1;
            }
        }
        let finished = self.clock.now();
        tx.execute(
            "INSERT INTO hunt_runs (hunt_id, slot, slots, manual, window_start, window_end, started_at, finished_at,
                                    matches, alerts_created, alerts_updated, truncated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &h.id,
                &slot,
                &(slots as i32),
                &manual,
                &window_start,
                &window_end,
                &started,
                &finished.max(started),
                &(report.matches as i32),
                &(report.alerts_created as i32),
                &(report.alerts_updated as i32),
                &truncated,
            ],
        )
        .await
        .map_err(HuntError::db("recording a run"))?;
        let new_slot = if manual { last_slot } else { slot };
        tx.execute("UPDATE hunts SET watermark = $2, last_slot = $3 WHERE id = $1", &[&h.id, &window_end, &new_slot])
            .await
            .map_err(HuntError::db("advancing a hunt"))?;
        tx.commit().await.map_err(HuntError::db("committing a run"))?;

        add(&COUNTERS.runs, 1);
        add(&COUNTERS.slots_collapsed, u64::from(slots.saturating_sub(1)));
        add(&COUNTERS.matches, u64::from(report.matches));
        add(&COUNTERS.alerts_created, u64::from(report.alerts_created));
        add(&COUNTERS.alerts_suppressed, u64::from(report.alerts_updated));
        report.queued_actions = action_ids;
        Ok(report)
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
        tx.execute(
            "INSERT INTO hunt_runs (hunt_id, slot, slots, manual, window_start, window_end, started_at, finished_at, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &h.id,
                &r.slot,
                &(r.slots as i32),
                &manual,
                &r.window_start,
                &r.window_end,
                &started,
                &self.clock.now().max(started),
                &r.error,
            ],
        )
        .await
        .map_err(HuntError::db("recording a failed run"))?;
        if !manual {
            // The slot is handled; the window is not: the next run covers it again.
            tx.execute("UPDATE hunts SET last_slot = greatest(last_slot, $2) WHERE id = $1", &[&h.id, &r.slot])
                .await
                .map_err(HuntError::db("recording a failed run"))?;
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

/// The host every match shares, if they share one.
fn common_host(ms: &[Match]) -> Option<String> {
    let first = ms.first()?.host.clone()?;
    ms.iter().all(|m| m.host.as_deref() == Some(first.as_str())).then_some(first)
}
