//! Correlation hunts (Sigma correlation rules): a hunt whose alerts come from
//! several matches of one or more base rules close together in event time,
//! per group, rather than from single events.
//!
//! - [`Correlation::parse`] checks the `correlation` object of a
//!   [`crate::HuntSpec`] and normalises it (registry field names, the
//!   timespan in seconds, the condition as a threshold);
//! - [`evaluate`] slides a window of length `timespan` over the event times of
//!   one group's matches and says whether (and where) the condition holds in
//!   a window holding at least one match new in this run;
//! - the runner ([`crate::runner`]) fetches each rule's new matches and their
//!   context (see docs/hunts.md, "Correlation hunts").

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use vigil_srql::ast::{Expr, Ident, Literal, Query, Span, Term, Value as SValue};
use vigil_srql::registry;
use vigil_srql::SrqlError;

use crate::HuntError;

/// The longest timespan (7 days).
pub const MAX_TIMESPAN_S: i64 = 7 * 86_400;
/// Most base rules of one correlation.
pub const MAX_RULES: usize = 10;
/// Most events one correlation alert links per run.
pub const MAX_LINKED: usize = 1_000;
/// Most distinct values listed in an alert's correlation details.
const MAX_VALUES: usize = 100;
const MAX_RULE_NAME: usize = 200;

/// The kinds of Sigma correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CorrelationKind)]
pub enum Kind {
    /// At least N matches of one rule within the timespan.
    EventCount,
    /// At least N distinct values of `field` among one rule's matches within the timespan.
    ValueCount,
    /// Matches of (by default) all the rules within the timespan, in any order.
    Temporal,
    /// Matches of all the rules within the timespan, in the rules' order.
    TemporalOrdered,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EventCount => "event_count",
            Kind::ValueCount => "value_count",
            Kind::Temporal => "temporal",
            Kind::TemporalOrdered => "temporal_ordered",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::EventCount, Kind::ValueCount, Kind::Temporal, Kind::TemporalOrdered]
            .into_iter()
            .find(|k| k.as_str() == s.trim())
    }
}

/// One base rule: a name and SRQL returning events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CorrelationRule)]
pub struct Rule {
    pub name: String,
    pub query: String,
}

/// The Sigma condition as given (only lower bounds, and `eq` where it means "all rules").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CorrelationCondition)]
pub struct Condition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<u64>,
}

impl Condition {
    /// The smallest measure that satisfies the condition (at least 1).
    pub fn threshold(&self) -> u64 {
        let mut t = 1u64;
        if let Some(g) = self.gt {
            t = t.max(g.saturating_add(1));
        }
        if let Some(g) = self.gte {
            t = t.max(g);
        }
        if let Some(e) = self.eq {
            t = t.max(e);
        }
        t
    }
}

/// A checked correlation, as stored on the hunt (`hunts.correlation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Correlation {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub rules: Vec<Rule>,
    /// Registry names of the fields whose values make a group.
    pub group_by: Vec<String>,
    /// As written (`5m`).
    pub timespan: String,
    pub timespan_s: i64,
    pub condition: Condition,
    /// `value_count`: the registry name of the field whose distinct values count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A checked rule query: its entity and result column names.
pub type Checked = (&'static registry::EntityDef, Vec<String>);

fn bad(message: impl Into<String>) -> HuntError {
    HuntError::invalid("correlation", "bad_correlation", message)
}

const KEYS: [&str; 6] = ["type", "rules", "group_by", "timespan", "condition", "field"];

impl Correlation {
    /// Checks a hunt's `correlation` object. `hunt_query` is the hunt's own
    /// (already checked) query, which must be the first rule's;
    /// `hunt_group_by` the hunt's group-by (registry names), which must be
    /// empty or the correlation's. `check` compiles a rule's query and
    /// returns its entity and result columns, or the reason it is not a
    /// query returning events.
    pub fn parse(
        v: &Value,
        hunt_query: &str,
        hunt_group_by: &[String],
        check: &dyn Fn(&str) -> Result<Checked, HuntError>,
    ) -> Result<Correlation, HuntError> {
        let obj = v.as_object().ok_or_else(|| bad("correlation: must be an object"))?;
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(bad(format!("correlation.{k}: unknown key; expected one of {}", KEYS.join(", "))));
        }
        let kinds = "event_count, value_count, temporal or temporal_ordered";
        let kind = match obj.get("type") {
            Some(Value::String(s)) => {
                Kind::parse(s).ok_or_else(|| bad(format!("correlation.type: `{s}` is not one of {kinds}")))?
            }
            _ => return Err(bad(format!("correlation.type: required, one of {kinds}"))),
        };
        let (rules, entities) = parse_rules(kind, obj.get("rules"), hunt_query, check)?;
        let group_by = parse_group_by(obj.get("group_by"), &entities)?;
        if !hunt_group_by.is_empty() && hunt_group_by != group_by.as_slice() {
            return Err(bad(format!(
                "correlation.group_by: the hunt's group_by ({}) differs; leave the hunt's empty or make them equal",
                hunt_group_by.join(", ")
            )));
        }
        let (timespan, timespan_s) = parse_timespan(obj.get("timespan"))?;
        let field = match (kind, obj.get("field")) {
            (Kind::ValueCount, Some(Value::String(f))) if !f.trim().is_empty() => {
                Some(resolve_field(&entities, "field", f)?)
            }
            (Kind::ValueCount, _) => {
                return Err(bad("correlation.field: value_count needs the field whose distinct values count"))
            }
            (_, None | Some(Value::Null)) => None,
            (k, Some(_)) => {
                return Err(bad(format!("correlation.field: only value_count takes a field, not {}", k.as_str())))
            }
        };
        let condition = parse_condition(kind, obj.get("condition"), rules.len())?;
        Ok(Correlation { kind, rules, group_by, timespan, timespan_s, condition, field })
    }
}

/// The base rules, as many as `kind` takes, each checked with `check`; the
/// first must be the hunt's own query.
fn parse_rules(
    kind: Kind,
    v: Option<&Value>,
    hunt_query: &str,
    check: &dyn Fn(&str) -> Result<Checked, HuntError>,
) -> Result<(Vec<Rule>, Vec<Checked>), HuntError> {
    let raw_rules = match v {
        Some(Value::Array(a)) => a,
        _ => return Err(bad("correlation.rules: required, a list of {\"name\", \"query\"}")),
    };
    let (min, max) = match kind {
        Kind::EventCount | Kind::ValueCount => (1, 1),
        Kind::Temporal | Kind::TemporalOrdered => (2, MAX_RULES),
    };
    if raw_rules.len() < min || raw_rules.len() > max {
        let want = if min == max { "exactly 1 rule".to_string() } else { format!("{min} to {max} rules") };
        return Err(bad(format!("correlation.rules: {} takes {want}, not {}", kind.as_str(), raw_rules.len())));
    }
    let mut rules: Vec<Rule> = Vec::new();
    let mut entities = Vec::new();
    for (i, r) in raw_rules.iter().enumerate() {
        let o = r.as_object().ok_or_else(|| bad(format!("correlation.rules[{i}]: must be {{\"name\", \"query\"}}")))?;
        if let Some(k) = o.keys().find(|k| *k != "name" && *k != "query") {
            return Err(bad(format!("correlation.rules[{i}].{k}: unknown key; a rule has a name and a query")));
        }
        let name = o.get("name").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        if name.is_empty() || name.chars().count() > MAX_RULE_NAME {
            return Err(bad(format!("correlation.rules[{i}].name: needs 1 to {MAX_RULE_NAME} characters")));
        }
        if rules.iter().any(|x| x.name == name) {
            return Err(bad(format!("correlation.rules[{i}].name: `{name}` names two rules")));
        }
        let query = o
            .get("query")
            .and_then(Value::as_str)
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| bad(format!("correlation.rules[{i}].query: required, SRQL returning events")))?;
        if i == 0 && query.trim() != hunt_query.trim() {
            return Err(bad("correlation.rules[0].query: must be the hunt's `query`"));
        }
        entities.push(check_rule_query(i, query, check)?);
        rules.push(Rule { name: name.to_string(), query: query.to_string() });
    }
    Ok((rules, entities))
}

/// Checks rule `i`'s query, with the errors named after the rule.
fn check_rule_query(
    i: usize,
    query: &str,
    check: &dyn Fn(&str) -> Result<Checked, HuntError>,
) -> Result<Checked, HuntError> {
    let checked = check(query).map_err(|e| match e {
        HuntError::Invalid { message, .. } => bad(format!("correlation.rules[{i}].query: {message}")),
        HuntError::Srql(e) => bad(format!(
            "correlation.rules[{i}].query: {} ({}, at {}..{})\n{}",
            e.message,
            e.kind.code(),
            e.span.start,
            e.span.end,
            e.render(query)
        )),
        other => other,
    })?;
    // A run also searches the query limited to an event-time range: that
    // must compile too, or every run of the hunt would fail.
    let now = Utc::now();
    let ranged = with_event_time(query, now - TimeDelta::hours(1), now)
        .map_err(|e| e.message)
        .and_then(|q| check(&q).map(|_| ()).map_err(|e| e.to_string()));
    if let Err(e) = ranged {
        return Err(bad(format!("correlation.rules[{i}].query: cannot be limited to an event-time range: {e}")));
    }
    Ok(checked)
}

/// A field resolved in every rule's entity, to one registry name present in
/// every rule's result.
fn resolve_field(entities: &[Checked], key: &str, name: &str) -> Result<String, HuntError> {
    let mut found: Option<&'static str> = None;
    for (i, (entity, columns)) in entities.iter().enumerate() {
        let f = entity.field(name.trim()).ok_or_else(|| {
            bad(format!("correlation.{key}: unknown field `{name}` in `in:{}` (rule {i})", entity.name))
        })?;
        if !columns.iter().any(|c| c == f.name) {
            return Err(bad(format!("correlation.{key}: rule {i}'s result has no `{}` field", f.name)));
        }
        match found {
            Some(n) if n != f.name => {
                return Err(bad(format!("correlation.{key}: `{name}` is `{n}` in one rule, `{}` in another", f.name)))
            }
            _ => found = Some(f.name),
        }
    }
    Ok(found.unwrap_or_default().to_string())
}

/// Up to 8 fields, resolved in every rule ([`resolve_field`]), without repeats.
fn parse_group_by(v: Option<&Value>, entities: &[Checked]) -> Result<Vec<String>, HuntError> {
    let mut group_by: Vec<String> = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            if a.len() > 8 {
                return Err(bad("correlation.group_by: at most 8 fields"));
            }
            for g in a {
                let g = g.as_str().ok_or_else(|| bad("correlation.group_by: a list of field names"))?;
                let n = resolve_field(entities, "group_by", g)?;
                if !group_by.contains(&n) {
                    group_by.push(n);
                }
            }
        }
        Some(_) => return Err(bad("correlation.group_by: a list of field names")),
    }
    Ok(group_by)
}

/// The timespan as written and in seconds: seconds, or a duration like `5m`,
/// of at most [`MAX_TIMESPAN_S`].
fn parse_timespan(v: Option<&Value>) -> Result<(String, i64), HuntError> {
    let (timespan, timespan_s) = match v {
        Some(Value::String(s)) => {
            let t = s.trim();
            let secs = match t.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => vigil_srql::time::parse_duration(t).map(|d| d.num_seconds()),
            };
            (t.to_string(), secs)
        }
        Some(Value::Number(n)) => (n.to_string(), n.as_i64()),
        _ => (String::new(), None),
    };
    let timespan_s = timespan_s.filter(|s| (1..=MAX_TIMESPAN_S).contains(s)).ok_or_else(|| {
        bad(format!(
            "correlation.timespan: {} is not a duration like 30s, 5m, 1h or 2d of at most 7 days",
            if timespan.is_empty() { "missing or".to_string() } else { format!("`{timespan}`") }
        ))
    })?;
    Ok((timespan, timespan_s))
}

fn parse_condition(kind: Kind, v: Option<&Value>, n_rules: usize) -> Result<Condition, HuntError> {
    let n = n_rules as u64;
    let o = match v {
        None | Some(Value::Null) => match kind {
            Kind::Temporal | Kind::TemporalOrdered => return Ok(Condition { gte: Some(n), ..Default::default() }),
            _ => {
                return Err(bad(format!(
                    "correlation.condition: {} needs a condition such as {{\"gte\": 10}}",
                    kind.as_str()
                )))
            }
        },
        Some(Value::Object(o)) => o,
        Some(_) => return Err(bad("correlation.condition: an object such as {\"gte\": 10}")),
    };
    if o.is_empty() || o.len() > 2 {
        return Err(bad("correlation.condition: one or two of gt, gte, lt, lte, eq"));
    }
    let mut c = Condition::default();
    for (k, v) in o {
        let x =
            v.as_u64().ok_or_else(|| bad(format!("correlation.condition.{k}: {v} is not a non-negative integer")))?;
        match k.as_str() {
            "gt" => c.gt = Some(x),
            "gte" => c.gte = Some(x),
            "eq" => c.eq = Some(x),
            "lt" | "lte" => {
                return Err(bad(format!(
                    "correlation.condition.{k}: upper bounds (`lt`, `lte`: \"fewer than\", absence-like) are not \
                     supported; a run cannot tell a quiet group from one whose events have not arrived yet. \
                     Use gt or gte"
                )))
            }
            _ => return Err(bad(format!("correlation.condition.{k}: unknown; one or two of gt, gte, lt, lte, eq"))),
        }
    }
    match kind {
        Kind::EventCount | Kind::ValueCount => {
            if c.eq.is_some() {
                return Err(bad(
                    "correlation.condition.eq: `eq` bounds the count from above, which is not supported; use gte",
                ));
            }
        }
        Kind::Temporal | Kind::TemporalOrdered => {
            if c.eq.is_some_and(|e| e != n) {
                return Err(bad(format!(
                    "correlation.condition.eq: only `eq: {n}` (all rules) is supported for {}",
                    kind.as_str()
                )));
            }
            let t = c.threshold();
            if t > n {
                return Err(bad(format!(
                    "correlation.condition: needs more than the {n} rules there are (at least {t} distinct rules)"
                )));
            }
            if kind == Kind::TemporalOrdered && t != n {
                return Err(bad(format!(
                    "correlation.condition: temporal_ordered matches all {n} rules in order; drop the condition \
                     or use gte: {n}"
                )));
            }
        }
    }
    Ok(c)
}

/// `query` with its event time limited to `[lo, hi]` (both included), as a
/// top-level `time:` directive (which intersects any `time:` it has).
pub fn with_event_time(query: &str, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Result<String, SrqlError> {
    let q = vigil_srql::parse(query)?;
    let lit = |t: DateTime<Utc>| {
        Some(Literal { text: t.to_rfc3339_opts(SecondsFormat::Micros, true), quoted: true, span: Span::default() })
    };
    let hi = hi + TimeDelta::microseconds(1);
    let term = Expr::Term(Term {
        negated: false,
        field: Ident { name: "time".into(), span: Span::default() },
        value: SValue::Bracket(vec![lit(lo), lit(hi)], Span::default()),
        span: Span::default(),
    });
    let filter = match q.filter {
        None => term,
        Some(Expr::And(mut items, s)) => {
            items.insert(0, term);
            Expr::And(items, s)
        }
        Some(e) => Expr::And(vec![term, e], Span::default()),
    };
    Ok(Query { filter: Some(filter), ..q }.to_string())
}

/// One base-rule match of one group.
#[derive(Debug, Clone)]
pub struct Ev {
    /// Index of the rule it matched.
    pub rule: usize,
    pub event_id: Uuid,
    pub time: DateTime<Utc>,
    /// Ingested in this run's window.
    pub new: bool,
    /// `value_count`: the field's value (events without one do not count).
    pub value: Option<String>,
}

/// Where and how a group satisfied the correlation.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Indices (into the sorted matches) of the events to link: the union
    /// of every satisfying window, oldest first, one per event, at most
    /// [`MAX_LINKED`].
    pub linked: Vec<usize>,
    /// More events were in satisfying windows than [`MAX_LINKED`].
    pub capped: bool,
    /// How many windows (one per starting match) satisfied the condition.
    pub windows: usize,
    /// The satisfying window with the largest measure (the earliest of equals).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Events in that window (distinct events).
    pub count: usize,
    /// Distinct values of the field in it (value_count).
    pub values: Vec<String>,
    /// Indices of the rules matched in it.
    pub rules: Vec<usize>,
}

/// Sorts one group's matches (by time, rule, event) and evaluates the
/// correlation over them: for each match `i` (of the first rule, for
/// temporal_ordered), the window is every match with a time in
/// `[time_i, time_i + timespan]`; it satisfies when it holds at least one
/// new match and its measure (events, distinct values, distinct rules, or
/// the rules in order) reaches the condition. `None` when no window does.
pub fn evaluate(c: &Correlation, evs: &mut Vec<Ev>) -> Option<Hit> {
    if c.kind == Kind::ValueCount {
        evs.retain(|e| e.value.is_some());
    }
    evs.sort_by_key(|e| (e.time, e.rule, e.event_id));
    let n = evs.len();
    if n == 0 {
        return None;
    }
    let span = TimeDelta::seconds(c.timespan_s);
    let threshold = c.condition.threshold() as usize;
    let n_rules = c.rules.len();
    let mut new_before = vec![0usize; n + 1];
    for (i, e) in evs.iter().enumerate() {
        new_before[i + 1] = new_before[i] + usize::from(e.new);
    }
    // Positions of each rule's matches, for temporal_ordered.
    let mut by_rule: Vec<Vec<usize>> = vec![Vec::new(); n_rules];
    for (i, e) in evs.iter().enumerate() {
        if let Some(v) = by_rule.get_mut(e.rule) {
            v.push(i);
        }
    }

    let mut windows: Vec<(usize, usize, usize)> = Vec::new(); // (start, end exclusive, measure)
    let mut values: HashMap<&str, usize> = HashMap::new();
    let mut rule_counts = vec![0usize; n_rules];
    let mut j = 0usize;
    for i in 0..n {
        while j < n && evs[j].time - evs[i].time <= span {
            if let Some(v) = &evs[j].value {
                *values.entry(v.as_str()).or_default() += 1;
            }
            if let Some(r) = rule_counts.get_mut(evs[j].rule) {
                *r += 1;
            }
            j += 1;
        }
        let has_new = new_before[j] > new_before[i];
        let measure = match c.kind {
            Kind::EventCount => j - i,
            Kind::ValueCount => values.len(),
            Kind::Temporal => rule_counts.iter().filter(|n| **n > 0).count(),
            Kind::TemporalOrdered => {
                if evs[i].rule == 0 && in_order(&by_rule, i, j) {
                    n_rules
                } else {
                    0
                }
            }
        };
        if has_new && measure >= threshold {
            windows.push((i, j, measure));
        }
        if let Some(v) = &evs[i].value {
            if let Some(k) = values.get_mut(v.as_str()) {
                *k -= 1;
                if *k == 0 {
                    values.remove(v.as_str());
                }
            }
        }
        if let Some(r) = rule_counts.get_mut(evs[i].rule) {
            *r -= 1;
        }
    }
    let &(bs, be, _) = windows.iter().max_by(|a, b| a.2.cmp(&b.2).then(b.0.cmp(&a.0)))?;

    // The union of the satisfying windows, one index per event.
    let mut linked = Vec::new();
    let mut seen = HashSet::new();
    let mut capped = false;
    let mut next = 0usize;
    'outer: for &(s, e, _) in &windows {
        let from = s.max(next);
        for (k, ev) in evs.iter().enumerate().take(e).skip(from) {
            if seen.insert(ev.event_id) {
                if linked.len() == MAX_LINKED {
                    capped = true;
                    break 'outer;
                }
                linked.push(k);
            }
        }
        next = next.max(e);
    }
    let best = &evs[bs..be];
    let mut vals: Vec<String> = best.iter().filter_map(|e| e.value.clone()).collect();
    vals.sort();
    vals.dedup();
    let mut rules: Vec<usize> = best.iter().map(|e| e.rule).collect();
    rules.sort_unstable();
    rules.dedup();
    Some(Hit {
        linked,
        capped,
        windows: windows.len(),
        start: best[0].time,
        end: best[best.len() - 1].time,
        count: best.iter().map(|e| e.event_id).collect::<HashSet<_>>().len(),
        values: vals,
        rules,
    })
}

/// Whether matches of rules 0, 1, … follow each other (at the same time or
/// later) among positions `[i, j)`, starting with the rule-0 match at `i`.
fn in_order(by_rule: &[Vec<usize>], i: usize, j: usize) -> bool {
    let mut pos = i;
    for positions in by_rule.iter().skip(1) {
        let k = positions.partition_point(|p| *p <= pos);
        match positions.get(k) {
            Some(&p) if p < j => pos = p,
            _ => return false,
        }
    }
    true
}

/// What an alert says about the window that raised or extended it
/// (`meta.correlation` on the alert, `correlation` in the webhook payload).
pub fn details(c: &Correlation, h: &Hit) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(c.kind.as_str()));
    m.insert("timespan".into(), json!(c.timespan));
    m.insert("condition".into(), json!(c.condition));
    m.insert("window_start".into(), json!(h.start));
    m.insert("window_end".into(), json!(h.end));
    m.insert("count".into(), json!(h.count));
    if let Some(f) = &c.field {
        m.insert("field".into(), json!(f));
        m.insert("distinct".into(), json!(h.values.len()));
        m.insert("values".into(), json!(h.values.iter().take(MAX_VALUES).collect::<Vec<_>>()));
    }
    if matches!(c.kind, Kind::Temporal | Kind::TemporalOrdered) {
        let names: Vec<&str> = h.rules.iter().filter_map(|r| c.rules.get(*r)).map(|r| r.name.as_str()).collect();
        m.insert("rules_matched".into(), json!(names));
    }
    m.insert("windows".into(), json!(h.windows));
    m.insert("linked".into(), json!(h.linked.len()));
    m.insert("linked_capped".into(), json!(h.capped));
    Value::Object(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn corr(kind: Kind, rules: usize, gte: u64) -> Correlation {
        Correlation {
            kind,
            rules: (0..rules).map(|i| Rule { name: format!("r{i}"), query: "kind:auth".into() }).collect(),
            group_by: Vec::new(),
            timespan: "5m".into(),
            timespan_s: 300,
            condition: Condition { gte: Some(gte), ..Default::default() },
            field: (kind == Kind::ValueCount).then(|| "dst_port".to_string()),
        }
    }

    fn ev(rule: usize, min: i64, new: bool) -> Ev {
        let t0 = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc);
        Ev { rule, event_id: Uuid::new_v4(), time: t0 + TimeDelta::minutes(min), new, value: None }
    }

    #[test]
    fn event_count_needs_n_within_the_timespan_and_a_new_match() {
        let c = corr(Kind::EventCount, 1, 3);
        assert!(evaluate(&c, &mut vec![ev(0, 0, true), ev(0, 1, true)]).is_none());
        assert!(evaluate(&c, &mut vec![ev(0, 0, true), ev(0, 3, true), ev(0, 6, true)]).is_none());
        let h = evaluate(&c, &mut vec![ev(0, 0, false), ev(0, 4, true), ev(0, 5, false), ev(0, 20, true)]).unwrap();
        assert_eq!((h.count, h.windows, h.linked.len()), (3, 1, 3));
        assert!(evaluate(&c, &mut vec![ev(0, 0, false), ev(0, 1, false), ev(0, 2, false), ev(0, 9, true)]).is_none());
    }

    #[test]
    fn temporal_ordered_needs_the_order() {
        let c = corr(Kind::TemporalOrdered, 2, 2);
        assert!(evaluate(&c, &mut vec![ev(1, 0, true), ev(0, 1, true)]).is_none());
        assert!(evaluate(&c, &mut vec![ev(0, 0, true), ev(1, 1, true)]).is_some());
        assert!(evaluate(&c, &mut vec![ev(0, 0, true), ev(1, 6, true)]).is_none());
        let c = corr(Kind::Temporal, 2, 2);
        assert!(evaluate(&c, &mut vec![ev(1, 0, true), ev(0, 1, true)]).is_some());
        assert!(evaluate(&c, &mut vec![ev(1, 0, true), ev(1, 1, true)]).is_none());
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let c = corr(Kind::ValueCount, 1, 3);
        let mut evs: Vec<Ev> = [22, 22, 80, 443, 443]
            .iter()
            .enumerate()
            .map(|(i, p)| Ev { value: Some(p.to_string()), ..ev(0, i as i64, true) })
            .collect();
        evs.push(ev(0, 1, true)); // no value: ignored
        let h = evaluate(&c, &mut evs).unwrap();
        assert_eq!(h.values, vec!["22", "443", "80"]);
        assert_eq!(h.linked.len(), 5);
    }

    #[test]
    fn the_time_range_joins_the_filter_at_the_top_level() {
        let lo = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc);
        let q = with_event_time("kind:auth time:last_1h user:root | head 5", lo, lo).unwrap();
        assert!(
            q.starts_with("time:[\"2026-03-01T12:00:00.000000Z\",\"2026-03-01T12:00:00.000001Z\"] AND kind:auth"),
            "{q}"
        );
        assert!(q.ends_with("| head 5"), "{q}");
        let q = with_event_time("a OR b", lo, lo).unwrap();
        assert!(q.contains("AND (a OR b)"), "{q}");
    }
}
