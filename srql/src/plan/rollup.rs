//! `| timechart` over metrics that have been rolled up (docs/retention.md).
//!
//! Metric events older than the rollup boundary ([`super::Config::rollup_before`])
//! no longer exist as rows of `events`: the rollup job moved them into
//! hourly rows of `metric_rollups` (count, sum, min, max per series and
//! numeric `raw` field). Every observation is in exactly one of the two
//! places, so a timechart whose window reaches before the boundary reads
//! both: raw rows aggregated into partial states, `UNION ALL` rollup rows
//! aggregated into the same partial states, then combined — count is the sum
//! of counts, sum the sum of sums, min/max the min/max, avg the summed sums
//! over the summed counts. Exact for these aggregates as long as each bucket
//! is a whole number of hours (a rolled-up hour never straddles two buckets).
//!
//! It applies when the query is `kind:metric` on `in:events`, its filters
//! name only fields both tables have (tenant, kind, source, host), and its
//! first pipe is a `| timechart` with a span of whole hours, aggregates
//! `count()` or count/sum/avg/min/max of a top-level `raw.<field>`, grouped
//! by those same fields. Any other query over such a window reads raw rows
//! only and gets a warning that rolled-up metrics are missing from it.

use chrono::{DateTime, Duration, Utc};

use super::{q, Col, Planner, Stage};
use crate::ast::*;
use crate::params::Param;
use crate::registry::FieldType;
use crate::time::{self, Window};

/// Columns `events` and the rollup rows share, so a filter or grouping on
/// them means the same thing on both.
const SHARED: &[&str] = &["tenant", "kind", "source", "host"];

/// The rollup rows as the raw part's columns: `time` is the hour's start.
const ROLLUP_FROM: &str = "(SELECT bucket AS time, tenant, 'metric'::text AS kind, source, NULLIF(host, '') AS host, \
                           field, count AS r_count, sum AS r_sum, min AS r_min, max AS r_max FROM metric_rollups) AS mr";

/// One aggregate of the rollup path.
#[derive(Debug, Clone)]
enum Part {
    Count,
    /// count / sum / avg / min / max of a top-level numeric `raw` key.
    Field {
        func: &'static str,
        key: String,
    },
}

/// What the rollup path will compute.
#[derive(Debug)]
pub(super) struct RollupPlan<'q> {
    bucket: Duration,
    aggs: Vec<(Part, String)>,
    by: Vec<&'q Ident>,
}

impl Planner<'_> {
    /// Whether a query pins `kind:metric` at its top level.
    fn pins_metric(&self, filters: &[&Expr]) -> bool {
        filters.iter().any(|f| {
            matches!(f, Expr::Term(t) if !t.negated
                && self.entity.field(&t.field.name).is_some_and(|f| f.column == "kind")
                && matches!(&t.value, Value::Literal(l) if l.text == "metric"))
        })
    }

    fn shared_field(&self, name: &str) -> bool {
        self.entity.field(name).is_some_and(|f| SHARED.contains(&f.column))
    }

    fn filters_fit(&self, e: &Expr) -> bool {
        match e {
            Expr::And(items, _) | Expr::Or(items, _) => items.iter().all(|i| self.filters_fit(i)),
            Expr::Not(inner, _) => self.filters_fit(inner),
            Expr::Term(t) => self.shared_field(&t.field.name),
            Expr::Text(_) | Expr::Stats(_) => false,
        }
    }

    /// The rollup plan of a query whose window reaches before the rollup
    /// boundary, or `None` (with a warning when it reads metrics) when the
    /// query must run on raw rows only.
    pub(super) fn rollup_plan<'q>(
        &mut self,
        q: &'q Query,
        filters: &[&Expr],
        directives_apply: bool,
        window: Option<Window>,
    ) -> Option<RollupPlan<'q>> {
        let (Some(boundary), Some(w)) = (self.cfg.rollup_before, window) else { return None };
        if w.start >= boundary || self.entity.name != "events" || !self.pins_metric(filters) {
            return None;
        }
        let plan = self.try_rollup_plan(q, filters, directives_apply, w);
        if plan.is_none() {
            self.warnings.push(rollup_warning(boundary));
        }
        plan
    }

    fn try_rollup_plan<'q>(
        &mut self,
        q: &'q Query,
        filters: &[&Expr],
        directives_apply: bool,
        w: Window,
    ) -> Option<RollupPlan<'q>> {
        if directives_apply || !filters.iter().all(|f| self.filters_fit(f)) {
            return None;
        }
        let Some(Pipe::Timechart { args, stats, .. }) = q.pipes.first() else { return None };
        let mut bucket = None;
        for a in args {
            if !a.name.name.eq_ignore_ascii_case("span") {
                return None; // the regular path reports it
            }
            match time::parse_duration(&a.value.text) {
                Some(d) => bucket = Some(d),
                None => return None,
            }
        }
        let bucket = bucket.unwrap_or_else(|| self.auto_bucket(Some(w)));
        if bucket.num_seconds() <= 0 || bucket.num_seconds() % 3600 != 0 {
            return None;
        }
        if !stats.by.iter().all(|b| self.shared_field(&b.name)) {
            return None;
        }
        let mut aggs = Vec::new();
        for a in &stats.aggs {
            let func = a.func.name.to_ascii_lowercase();
            let arg = a.arg.as_ref().filter(|i| i.name != "*");
            let part = match (func.as_str(), arg) {
                ("count", None) => Part::Count,
                (f @ ("count" | "sum" | "avg" | "mean" | "min" | "max"), Some(i)) => {
                    let (root, key) = i.name.split_once('.')?;
                    if !root.eq_ignore_ascii_case("raw") || key.is_empty() || key.contains('.') {
                        return None;
                    }
                    let func = match f {
                        "count" => "count",
                        "sum" => "sum",
                        "min" => "min",
                        "max" => "max",
                        _ => "avg",
                    };
                    Part::Field { func, key: key.to_string() }
                }
                _ => return None,
            };
            let default_name = match arg {
                None => func.clone(),
                Some(i) => format!("{func}_{}", i.name.replace('.', "_")),
            };
            let name = a.alias.as_ref().map(|i| i.name.clone()).unwrap_or(default_name);
            if aggs.iter().any(|(_, n)| *n == name) {
                return None; // the regular path reports the clash
            }
            aggs.push((part, name));
        }
        if aggs.is_empty() {
            return None;
        }
        Some(RollupPlan { bucket, aggs, by: stats.by.iter().collect() })
    }

    /// The timechart stage over raw rows and rollup rows; `conds` are the
    /// base conditions (time window and filters), valid on both.
    pub(super) fn rollup_timechart(&mut self, conds: &[String], plan: RollupPlan<'_>) -> Stage {
        let span = self.params.add(Param::Text(format!("{} seconds", plan.bucket.num_seconds())));
        let bin = |col: &str| format!("date_bin({span}::interval, {col}, TIMESTAMPTZ '2000-01-01 00:00:00+00')");
        let mut keys: Vec<String> = vec![String::new()];
        let mut raw_sel = vec![format!("{} AS {}", bin("time"), q("bucket"))];
        let mut roll_sel = raw_sel.clone();
        let mut outer = vec![q("bucket")];
        let mut group = vec![q("bucket")];
        let mut cols = vec![Col {
            name: "bucket".into(),
            sql: q("bucket"),
            alias: "bucket".into(),
            ty: FieldType::Time,
            order_sql: q("bucket"),
        }];
        for (i, b) in plan.by.iter().enumerate() {
            let column = self.entity.field(&b.name).map(|f| f.column).unwrap_or("host");
            let alias = format!("g{i}");
            raw_sel.push(format!("{column} AS {}", q(&alias)));
            roll_sel.push(format!("{column} AS {}", q(&alias)));
            outer.push(q(&alias));
            group.push(q(&alias));
            cols.push(Col {
                name: b.name.clone(),
                sql: q(&alias),
                alias: alias.clone(),
                ty: FieldType::Keyword,
                order_sql: q(&alias),
            });
        }
        let n_groups = group.len();
        let count_of = |field: &str| format!("coalesce(sum(r_count) FILTER (WHERE field = {field}), 0)::bigint");
        for (i, (part, name)) in plan.aggs.iter().enumerate() {
            let alias = format!("a{i}");
            let (p, s) = (q(&format!("p{i}")), q(&format!("p{i}s")));
            let ty = match part {
                Part::Count => {
                    raw_sel.push(format!("count(*) AS {p}"));
                    roll_sel.push(format!("{} AS {p}", count_of("''")));
                    outer.push(format!("sum({p})::bigint AS {}", q(&alias)));
                    FieldType::Int
                }
                Part::Field { func, key } => {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                    let path = self.params.add(Param::TextArray(vec![key.clone()]));
                    let field = self.params.add(Param::Text(key.clone()));
                    let v =
                        format!("(CASE WHEN jsonb_typeof(raw #> {path}) = 'number' THEN (raw #>> {path})::float8 END)");
                    let filt = |agg: &str, col: &str| format!("{agg}({col}) FILTER (WHERE field = {field})");
                    match *func {
                        "count" => {
                            raw_sel.push(format!("count({v}) AS {p}"));
                            roll_sel.push(format!("{} AS {p}", count_of(&field)));
                            outer.push(format!("sum({p})::bigint AS {}", q(&alias)));
                            FieldType::Int
                        }
                        "sum" => {
                            raw_sel.push(format!("sum({v}) AS {p}"));
                            roll_sel.push(format!("{} AS {p}", filt("sum", "r_sum")));
                            outer.push(format!("sum({p})::float8 AS {}", q(&alias)));
                            FieldType::Float
                        }
                        "min" | "max" => {
                            raw_sel.push(format!("{func}({v}) AS {p}"));
                            roll_sel.push(format!("{} AS {p}", filt(func, &format!("r_{func}"))));
                            outer.push(format!("{func}({p}) AS {}", q(&alias)));
                            FieldType::Float
                        }
                        _ => {
                            raw_sel.push(format!("sum({v}) AS {s}"));
                            raw_sel.push(format!("count({v}) AS {p}"));
                            roll_sel.push(format!("{} AS {s}", filt("sum", "r_sum")));
                            roll_sel.push(format!("{} AS {p}", count_of(&field)));
                            outer.push(format!("(sum({s}) / nullif(sum({p}), 0))::float8 AS {}", q(&alias)));
                            FieldType::Float
                        }
                    }
                }
            };
            cols.push(Col { name: name.clone(), sql: q(&alias), alias: alias.clone(), ty, order_sql: q(&alias) });
        }
        let conds: Vec<&str> = conds.iter().map(String::as_str).filter(|c| *c != "TRUE").collect();
        let where_raw = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
        let fields = self.params.add(Param::TextArray(keys));
        let where_roll = format!(
            "{}field = ANY({fields})",
            if conds.is_empty() { " WHERE ".to_string() } else { format!("{where_raw} AND ") }
        );
        let by: Vec<String> = (1..=n_groups).map(|i| i.to_string()).collect();
        let by = by.join(", ");
        let alias = self.next_alias();
        let select = format!(
            "SELECT {} FROM (SELECT {} FROM {}{where_raw} GROUP BY {by} UNION ALL SELECT {} FROM {ROLLUP_FROM}{where_roll} GROUP BY {by}) AS {alias} GROUP BY {}",
            outer.join(", "),
            raw_sel.join(", "),
            self.entity.table,
            roll_sel.join(", "),
            group.join(", ")
        );
        let order = cols[..n_groups].iter().map(|c| (c.order_sql.clone(), false)).collect();
        let spec: Vec<&str> = plan.aggs.iter().map(|(_, n)| n.as_str()).collect();
        self.plan.push(format!(
            "timechart {} over raw metrics and hourly rollups before {}",
            spec.join(", "),
            self.cfg.rollup_before.map(|b| b.to_rfc3339()).unwrap_or_default()
        ));
        Stage { select, cols, order, is_base: false, time_col: Some("bucket".into()) }
    }
}

fn rollup_warning(boundary: DateTime<Utc>) -> String {
    format!(
        "metrics before {} are stored as hourly rollups, which this query cannot read: it counts raw metric events \
         only (rollups serve `kind:metric | timechart` with a span of whole hours, count() and \
         count/sum/avg/min/max of raw.<field>, filtered and grouped by host, source, tenant or kind)",
        boundary.to_rfc3339()
    )
}
