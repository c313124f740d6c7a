//! The planner: a checked [`Query`] becomes a chain of SQL stages. The search
//! part (filters, time window) is the base `SELECT`; each pipe wraps the
//! previous stage; `sort:`/`limit:` shape the final result.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::ast::*;
use crate::cond::{self, like_pattern, Resolved};
use crate::error::{ErrorKind, SrqlError};
use crate::params::{Param, Params};
use crate::registry::{self, EntityDef, FieldDef, FieldType};
use crate::time::{self, Window};

/// Limits and defaults the planner applies.
#[derive(Debug, Clone)]
pub struct Config {
    /// Window searched when a query names no time.
    pub default_window: Duration,
    /// Longest window a query may search.
    pub max_span: Duration,
    /// Rows returned when a query names no limit.
    pub default_limit: u64,
    /// Most rows any query may return; larger limits are capped.
    pub max_limit: u64,
    /// `SIMILAR_TO` neighbours when `k` is not given, and its cap.
    pub default_k: u64,
    pub max_k: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_window: Duration::hours(24),
            max_span: Duration::days(90),
            default_limit: 100,
            max_limit: 10_000,
            default_k: 50,
            max_k: 1_000,
        }
    }
}

/// A result column: its name for users and its alias in the SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    /// The column's name in the SQL result (a registry name or `aN`).
    pub alias: String,
    #[serde(rename = "type")]
    pub ty: &'static str,
}

/// How a result is best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Visualization {
    Table,
    Stats,
    Timechart,
    Similarity,
}

/// A `SIMILAR_TO` the executor must embed before running the SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Similarity {
    pub text: String,
    /// 1-based index of the `Param::Embedding` to replace.
    pub param: usize,
    pub k: u64,
    pub min_score: Option<f64>,
}

/// A compiled query: SQL, its parameters, and what it returns.
#[derive(Debug, Clone, Serialize)]
pub struct Compiled {
    pub entity: &'static str,
    pub sql: String,
    pub params: Vec<Param>,
    pub columns: Vec<Column>,
    /// Human-readable plan steps, for `explain`.
    pub plan: Vec<String>,
    pub warnings: Vec<String>,
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub visualization: Visualization,
    pub similarity: Option<Similarity>,
    pub limit: u64,
}

// ------------------------------------------------------------ stages

#[derive(Debug, Clone)]
struct Col {
    name: String,
    /// SQL reference to the column in the next stage (quoted alias).
    sql: String,
    alias: String,
    ty: FieldType,
    /// What to order by for this column (enum columns order by their id).
    order_sql: String,
}

#[derive(Debug, Clone)]
struct Stage {
    /// `SELECT … FROM … [WHERE …]` without ORDER BY/LIMIT.
    select: String,
    cols: Vec<Col>,
    /// Current logical order: (order expression, descending).
    order: Vec<(String, bool)>,
    /// Whether this stage is still the entity's base select (filters merge in).
    is_base: bool,
    /// Name of a time column usable by `timechart`.
    time_col: Option<String>,
}

struct Planner<'a> {
    cfg: &'a Config,
    now: DateTime<Utc>,
    entity: &'static EntityDef,
    params: Params,
    plan: Vec<String>,
    warnings: Vec<String>,
    stage_no: usize,
}

/// Directives pulled out of the top level of the search.
#[derive(Default)]
struct Directives<'q> {
    entity: Option<&'q Term>,
    /// Every `in:` written; the last one wins, but all must name entities.
    entities: Vec<&'q Term>,
    time: Vec<&'q Term>,
    sort: Option<&'q Term>,
    limit: Option<&'q Term>,
    stats: Vec<StatsSpec>,
    having: Option<&'q Term>,
    bucket: Option<&'q Term>,
    agg: Option<&'q Term>,
    value_field: Option<&'q Term>,
    series: Option<&'q Term>,
}

const DIRECTIVES: &[&str] = &[
    "in",
    "time",
    "timeframe",
    "timestamp",
    "sort",
    "limit",
    "stats",
    "having",
    "bucket",
    "agg",
    "value_field",
    "series",
];

fn is_directive(name: &str) -> bool {
    DIRECTIVES.iter().any(|d| d.eq_ignore_ascii_case(name))
}

fn misplaced(t: &Term) -> SrqlError {
    SrqlError::new(
        ErrorKind::MisplacedDirective,
        format!(
            "`{}:` applies to the whole query; it cannot be inside parentheses, OR, NOT or a where pipe",
            t.field.name
        ),
        t.span,
    )
}

/// Refuses directives anywhere but the top-level AND.
fn no_directives(e: &Expr, allow_time: bool) -> Result<(), SrqlError> {
    match e {
        Expr::And(items, _) | Expr::Or(items, _) => items.iter().try_for_each(|i| no_directives(i, allow_time)),
        Expr::Not(inner, _) => no_directives(inner, allow_time),
        Expr::Term(t) if is_directive(&t.field.name) && !(allow_time && t.field.name.eq_ignore_ascii_case("time")) => {
            Err(misplaced(t))
        }
        Expr::Stats(s) => Err(SrqlError::new(
            ErrorKind::MisplacedDirective,
            "`stats:` applies to the whole query; it cannot be inside parentheses, OR, NOT or a where pipe",
            s.span,
        )),
        _ => Ok(()),
    }
}

fn split_directives(filter: Option<&Expr>) -> Result<(Directives<'_>, Vec<&Expr>), SrqlError> {
    let mut d = Directives::default();
    let mut rest = Vec::new();
    let items: Vec<&Expr> = match filter {
        None => Vec::new(),
        Some(Expr::And(items, _)) => items.iter().collect(),
        Some(e) => vec![e],
    };
    for e in items {
        match e {
            Expr::Stats(s) => d.stats.push(s.clone()),
            Expr::Term(t) if is_directive(&t.field.name) => {
                if t.negated {
                    return Err(misplaced(t));
                }
                let slot = match t.field.name.to_ascii_lowercase().as_str() {
                    "in" => {
                        d.entities.push(t);
                        &mut d.entity
                    }
                    "time" | "timeframe" | "timestamp" => {
                        d.time.push(t);
                        continue;
                    }
                    "sort" => &mut d.sort,
                    "limit" => &mut d.limit,
                    "having" => &mut d.having,
                    "bucket" => &mut d.bucket,
                    "agg" => &mut d.agg,
                    "value_field" => &mut d.value_field,
                    "series" => &mut d.series,
                    // `stats:` whose text did not parse as aggregates.
                    _ => {
                        let span = t.value.span();
                        let (text, quoted) = match &t.value {
                            Value::Literal(l) => (l.text.clone(), l.quoted),
                            _ => (String::new(), false),
                        };
                        let offset = span.start + usize::from(quoted);
                        return Err(crate::parse::parse_stats_spec(&text, offset).err().unwrap_or_else(|| {
                            SrqlError::new(ErrorKind::Syntax, "expected aggregates like `count() by field`", span)
                        }));
                    }
                };
                // The last `in:`/`sort:`/`limit:` wins, as in ServiceRadar.
                *slot = Some(t);
            }
            other => {
                no_directives(other, false)?;
                rest.push(other);
            }
        }
    }
    Ok((d, rest))
}

fn literal_of<'t>(t: &'t Term, what: &str) -> Result<&'t Literal, SrqlError> {
    match &t.value {
        Value::Literal(l) => Ok(l),
        other => Err(SrqlError::new(ErrorKind::BadValue, format!("`{}:` takes {what}", t.field.name), other.span())),
    }
}

/// Compiles SRQL text to SQL. `now` anchors relative times.
pub fn compile(text: &str, cfg: &Config, now: DateTime<Utc>) -> Result<Compiled, SrqlError> {
    let q = crate::parse::parse(text)?;
    compile_query(&q, cfg, now)
}

/// Compiles a parsed query.
pub fn compile_query(q: &Query, cfg: &Config, now: DateTime<Utc>) -> Result<Compiled, SrqlError> {
    let (d, filters) = split_directives(q.filter.as_ref())?;
    let mut entity = &registry::ENTITIES[0];
    for t in &d.entities {
        let l = literal_of(t, "an entity name like `in:events`")?;
        entity = registry::entity(&l.text).ok_or_else(|| {
            SrqlError::new(ErrorKind::UnknownEntity, format!("unknown entity `{}`", l.text), l.span)
                .expected(registry::ENTITIES.iter().map(|e| format!("`in:{}`", e.name)))
                .suggest(crate::suggest::nearest(&l.text, registry::entity_names()))
        })?;
    }
    if d.bucket.is_none() {
        if let Some(t) = d.agg.or(d.value_field).or(d.series) {
            return Err(SrqlError::new(
                ErrorKind::BadValue,
                format!("`{}:` only applies with `bucket:` (e.g. bucket:5m agg:avg value_field:x)", t.field.name),
                t.span,
            ));
        }
    } else if let (Some(b), false) = (d.bucket, d.stats.is_empty()) {
        return Err(SrqlError::new(ErrorKind::BadValue, "use either `bucket:` or `stats:`, not both", b.span));
    }
    let mut p = Planner {
        cfg,
        now,
        entity,
        params: Params::default(),
        plan: vec![format!("scan {} ({})", entity.name, entity.table)],
        warnings: Vec::new(),
        stage_no: 0,
    };

    // Base stage: filters and the time window.
    let mut conds: Vec<String> = entity.base_filter.iter().map(|s| s.to_string()).collect();
    let window = p.window(&d.time)?;
    if let (Some(w), Some(tf)) = (window, entity.time_field) {
        let col = entity.field(tf).map(|f| f.column).unwrap_or(tf);
        conds.push(format!(
            "{col} >= {} AND {col} < {}",
            p.params.add(Param::Time(w.start)),
            p.params.add(Param::Time(w.end))
        ));
        p.plan.push(format!("time window {} .. {}", w.start.to_rfc3339(), w.end.to_rfc3339()));
    }
    for f in &filters {
        let c = p.expr(f, None)?;
        conds.push(c);
    }
    if !filters.is_empty() {
        p.plan.push(format!("filter: {}", filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" AND ")));
    }
    let mut stage = p.base_stage(&conds);
    let mut visualization = Visualization::Table;
    let mut similarity = None;

    // ServiceRadar-style aggregation directives run first, then pipes in order.
    if !d.stats.is_empty() {
        let merged = merge_stats(&d.stats)?;
        stage = p.stats(stage, &merged, None)?;
        visualization = Visualization::Stats;
    } else if let Some(bucket) = d.bucket {
        stage = p.bucket_directive(stage, bucket, &d)?;
        visualization = Visualization::Timechart;
    }
    if let Some(h) = d.having {
        stage = p.having(stage, h)?;
    }
    for pipe in &q.pipes {
        match pipe {
            Pipe::Where(e, _) => {
                no_directives(e, true)?;
                stage = p.where_pipe(stage, e)?;
            }
            Pipe::Stats(s) => {
                stage = p.stats(stage, s, None)?;
                visualization = Visualization::Stats;
            }
            Pipe::Timechart { args, stats, span } => {
                let span_arg = args.iter().find(|a| a.name.name.eq_ignore_ascii_case("span"));
                if let Some(bad) = args.iter().find(|a| !a.name.name.eq_ignore_ascii_case("span")) {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        format!("unknown timechart argument `{}`", bad.name.name),
                        bad.name.span,
                    )
                    .expected(["`span:5m`".to_string()]));
                }
                let bucket = match span_arg {
                    Some(a) => Some(time::parse_duration(&a.value.text).ok_or_else(|| {
                        SrqlError::new(
                            ErrorKind::BadValue,
                            format!("`{}` is not a duration like 5m or 1h", a.value.text),
                            a.value.span,
                        )
                    })?),
                    None => None,
                };
                stage = p.timechart(stage, bucket, stats, window, *span)?;
                visualization = Visualization::Timechart;
            }
            Pipe::Sort(keys, _) => {
                let order =
                    keys.iter().map(|k| p.order_key(&stage, &k.field, k.descending)).collect::<Result<_, _>>()?;
                stage.order = order;
                p.plan.push(format!(
                    "sort {}",
                    keys.iter()
                        .map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.field.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Pipe::Head(n, _) => {
                let n = n.unwrap_or(10);
                stage = p.head(stage, n);
            }
            Pipe::Dedup(fields, _) => stage = p.dedup(stage, fields)?,
            Pipe::Fields(fields, _) => stage = p.fields(stage, fields)?,
            Pipe::SimilarTo { text, args, span } => {
                let (s, sim) = p.similar(stage, text, args, *span)?;
                stage = s;
                similarity = Some(sim);
                visualization = Visualization::Similarity;
            }
            Pipe::Cluster(_, span) => {
                return Err(SrqlError::new(
                    ErrorKind::NotAvailable,
                    "`| cluster` needs event embeddings, which this server does not have yet",
                    *span,
                ))
            }
            Pipe::BlastRadius(_, span) => {
                return Err(SrqlError::new(
                    ErrorKind::NotAvailable,
                    "`| blast_radius` needs the connection graph, which this server does not have yet",
                    *span,
                ))
            }
        }
    }

    // Final shape: sort directive, then limit.
    if let Some(t) = d.sort {
        stage.order = p.sort_directive(&stage, t)?;
    }
    let limit = match (d.limit, visualization, &similarity) {
        (None, Visualization::Timechart, _) => cfg.max_limit,
        (None, _, Some(sim)) => sim.k,
        (t, ..) => p.limit(t)?,
    };
    let sql = p.finish(&stage, limit);
    let columns =
        stage.cols.iter().map(|c| Column { name: c.name.clone(), alias: c.alias.clone(), ty: c.ty.name() }).collect();
    Ok(Compiled {
        entity: entity.name,
        sql,
        params: p.params.0,
        columns,
        plan: p.plan,
        warnings: p.warnings,
        window: window.map(|w| (w.start, w.end)),
        visualization,
        similarity,
        limit,
    })
}

fn merge_stats(specs: &[StatsSpec]) -> Result<StatsSpec, SrqlError> {
    let mut out = StatsSpec { aggs: Vec::new(), by: Vec::new(), span: specs[0].span };
    for s in specs {
        out.aggs.extend(s.aggs.iter().cloned());
        if !s.by.is_empty() {
            if !out.by.is_empty() && out.by != s.by {
                return Err(SrqlError::new(
                    ErrorKind::BadValue,
                    "two `stats:` directives group by different fields",
                    s.span,
                ));
            }
            out.by = s.by.clone();
        }
        out.span = out.span.to(s.span);
    }
    Ok(out)
}

/// A quoted SQL alias: registry names and generated `aN` only.
fn q(alias: &str) -> String {
    format!("\"{alias}\"")
}

/// Each entity's base projection (every field, enum labels included) and
/// its columns, built once: it is the same for every query.
fn base_projection(e: &'static EntityDef) -> &'static (String, Vec<Col>) {
    static CACHE: std::sync::OnceLock<Vec<(String, Vec<Col>)>> = std::sync::OnceLock::new();
    let all = CACHE.get_or_init(|| registry::ENTITIES.iter().map(build_projection).collect());
    let i = registry::ENTITIES.iter().position(|x| std::ptr::eq(x, e)).unwrap_or(0);
    &all[i]
}

fn build_projection(e: &EntityDef) -> (String, Vec<Col>) {
    let mut cols = Vec::new();
    let mut select = Vec::new();
    for f in e.fields {
        match f.ty {
            FieldType::Enum(labels) => {
                select.push(format!("{} AS {}", enum_label_sql(f.column, labels), q(f.name)));
                let id_alias = format!("{}_id", f.name);
                if f.column == id_alias {
                    select.push(f.column.to_string());
                } else {
                    select.push(format!("{} AS {}", f.column, q(&id_alias)));
                }
                cols.push(Col {
                    name: f.name.into(),
                    sql: q(f.name),
                    alias: f.name.into(),
                    ty: f.ty,
                    order_sql: q(&id_alias),
                });
                cols.push(Col {
                    name: id_alias.clone(),
                    sql: q(&id_alias),
                    alias: id_alias.clone(),
                    ty: FieldType::Int,
                    order_sql: q(&id_alias),
                });
            }
            ty => {
                if f.column == f.name {
                    select.push(f.column.to_string());
                } else {
                    select.push(format!("{} AS {}", f.column, q(f.name)));
                }
                cols.push(Col { name: f.name.into(), sql: q(f.name), alias: f.name.into(), ty, order_sql: q(f.name) });
            }
        }
    }
    (select.join(", "), cols)
}

fn enum_label_sql(column: &str, labels: &[(&str, i64)]) -> String {
    let mut seen = Vec::new();
    let mut out = format!("CASE {column}");
    for (name, id) in labels {
        if !seen.contains(id) {
            seen.push(*id);
            out.push_str(&format!(" WHEN {id} THEN '{name}'"));
        }
    }
    out.push_str(" END");
    out
}

impl Planner<'_> {
    /// A stage column by name, accepting the registry's aliases too
    /// (`dst_endpoint_ip` finds the `dst_ip` column and the other way round).
    fn stage_col<'s>(&self, stage: &'s Stage, name: &str) -> Option<&'s Col> {
        let canon =
            |n: &str| self.entity.field(n).map(|f| f.name.to_string()).unwrap_or_else(|| n.to_ascii_lowercase());
        stage
            .cols
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .or_else(|| stage.cols.iter().find(|c| canon(&c.name) == canon(name)))
    }

    fn next_alias(&mut self) -> String {
        self.stage_no += 1;
        format!("s{}", self.stage_no)
    }

    fn window(&mut self, terms: &[&Term]) -> Result<Option<Window>, SrqlError> {
        if self.entity.time_field.is_none() {
            if let Some(t) = terms.first() {
                return Err(SrqlError::new(
                    ErrorKind::UnknownField,
                    format!("`in:{}` has no time", self.entity.name),
                    t.span,
                ));
            }
            return Ok(None);
        }
        if terms.is_empty() {
            if !self.entity.default_window {
                return Ok(None);
            }
            return Ok(Some(Window { start: self.now - self.cfg.default_window, end: self.now }));
        }
        let mut start: Option<DateTime<Utc>> = None;
        let mut end: Option<DateTime<Utc>> = None;
        let mut narrow = |s: Option<DateTime<Utc>>, e: Option<DateTime<Utc>>| {
            if let Some(s) = s {
                start = Some(start.map_or(s, |x| x.max(s)));
            }
            if let Some(e) = e {
                end = Some(end.map_or(e, |x| x.min(e)));
            }
        };
        let bad = |l: &Literal| {
            SrqlError::new(ErrorKind::BadValue, format!("`{}` is not a time window", l.text), l.span).expected([
                "`last_24h`".into(),
                "`15m`".into(),
                "`today`".into(),
                "`yesterday`".into(),
                "`[2026-01-01T00:00Z, 2026-01-02]`".into(),
            ])
        };
        let instant = |l: &Literal| time::parse_instant(&l.text, self.now).ok_or_else(|| bad(l));
        for t in terms {
            match &t.value {
                Value::Literal(l) => {
                    if let Some(w) = time::parse_relative(&l.text, self.now) {
                        narrow(Some(w.start), Some(w.end));
                    } else if let Some(day) = time::parse_instant(&l.text, self.now).filter(|_| time::is_date(&l.text))
                    {
                        narrow(Some(day), Some(day + Duration::days(1)));
                    } else if let Some(since) = time::parse_instant(&l.text, self.now) {
                        // `time:now-1h`, `time:2026-01-15T10:00Z`: from then until now.
                        narrow(Some(since), None);
                    } else {
                        return Err(bad(l));
                    }
                }
                Value::Bracket(items, span) => match items.as_slice() {
                    [a, b] => {
                        let a = a.as_ref().map(&instant).transpose()?;
                        let b = b.as_ref().map(&instant).transpose()?;
                        narrow(a, b);
                    }
                    _ => return Err(SrqlError::new(ErrorKind::BadValue, "a time range is `[start, end]`", *span)),
                },
                Value::Range(a, b, _) => narrow(Some(instant(a)?), Some(instant(b)?)),
                Value::Compare(op, l, _) => match op {
                    CmpOp::Gt | CmpOp::Ge => narrow(Some(instant(l)?), None),
                    CmpOp::Lt | CmpOp::Le => narrow(None, Some(instant(l)?)),
                },
                other => {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        "`time:` takes a window like last_24h or [start, end]",
                        other.span(),
                    ))
                }
            }
        }
        let end = end.unwrap_or(self.now);
        let start = start.unwrap_or(end - self.cfg.default_window);
        let span = terms.iter().map(|t| t.span).reduce(|a, b| a.to(b)).unwrap_or_default();
        if start >= end {
            return Err(SrqlError::new(ErrorKind::TimeRange, "the time window ends before it starts", span));
        }
        if end - start > self.cfg.max_span {
            return Err(SrqlError::new(
                ErrorKind::TimeRange,
                format!(
                    "the time window spans {} days; the limit is {} days",
                    (end - start).num_days(),
                    self.cfg.max_span.num_days()
                ),
                span,
            ));
        }
        Ok(Some(Window { start, end }))
    }

    fn limit(&mut self, t: Option<&Term>) -> Result<u64, SrqlError> {
        let n = match t {
            None => self.cfg.default_limit,
            Some(t) => {
                let l = literal_of(t, "a whole number")?;
                l.text.trim().parse::<u64>().map_err(|_| {
                    SrqlError::new(ErrorKind::BadValue, format!("`{}` is not a whole number", l.text), l.span)
                })?
            }
        };
        if n > self.cfg.max_limit {
            self.warnings.push(format!("limit {n} capped at {}", self.cfg.max_limit));
            return Ok(self.cfg.max_limit);
        }
        Ok(n)
    }

    /// Resolves a field name for the base stage (registry) or a later one (its columns).
    fn resolve(&mut self, ident: &Ident, stage: Option<&Stage>) -> Result<Resolved, SrqlError> {
        match stage {
            None => self.resolve_base(ident),
            Some(s) => {
                if let Some(c) = self.stage_col(s, &ident.name) {
                    // Enum columns filter on their ids (severity:>=high), shown as labels.
                    let sql = if matches!(c.ty, FieldType::Enum(_)) { c.order_sql.clone() } else { c.sql.clone() };
                    return Ok(Resolved { name: ident.name.clone(), sql, ty: c.ty, json_path: None });
                }
                if let Some((root, path)) = ident.name.split_once('.') {
                    if let Some(c) = self.stage_col(s, root).filter(|c| c.ty == FieldType::Json) {
                        let path_param = self.json_path_param(path, ident.span)?;
                        return Ok(Resolved {
                            name: ident.name.clone(),
                            sql: c.sql.clone(),
                            ty: FieldType::Json,
                            json_path: Some(path_param),
                        });
                    }
                }
                Err(SrqlError::new(
                    ErrorKind::UnknownField,
                    format!("no column `{}` at this point of the pipeline", ident.name),
                    ident.span,
                )
                .expected(s.cols.iter().map(|c| format!("`{}`", c.name)))
                .suggest(crate::suggest::nearest(&ident.name, s.cols.iter().map(|c| c.name.as_str()))))
            }
        }
    }

    fn json_path_param(&mut self, path: &str, span: Span) -> Result<String, SrqlError> {
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        if keys.iter().any(String::is_empty) {
            return Err(SrqlError::new(ErrorKind::UnknownField, format!("the path `{path}` has an empty key"), span));
        }
        Ok(self.params.add(Param::TextArray(keys)))
    }

    fn base_field(&self, name: &str) -> Option<&'static FieldDef> {
        self.entity.field(name)
    }

    fn resolve_base(&mut self, ident: &Ident) -> Result<Resolved, SrqlError> {
        if let Some(f) = self.base_field(&ident.name) {
            return Ok(Resolved { name: ident.name.clone(), sql: f.column.to_string(), ty: f.ty, json_path: None });
        }
        if let Some((root, path)) = ident.name.split_once('.') {
            if let Some(f) = self.base_field(root).filter(|f| f.ty == FieldType::Json) {
                let path_param = self.json_path_param(path, ident.span)?;
                return Ok(Resolved {
                    name: ident.name.clone(),
                    sql: f.column.to_string(),
                    ty: FieldType::Json,
                    json_path: Some(path_param),
                });
            }
        }
        let mut hint = crate::suggest::nearest(&ident.name, self.entity.field_names());
        hint.truncate(3);
        Err(SrqlError::new(
            ErrorKind::UnknownField,
            format!("unknown field `{}` in `in:{}`", ident.name, self.entity.name),
            ident.span,
        )
        .suggest(hint))
    }

    /// A filter expression as SQL; `stage` is `None` for the base select.
    fn expr(&mut self, e: &Expr, stage: Option<&Stage>) -> Result<String, SrqlError> {
        Ok(match e {
            Expr::And(items, _) if items.is_empty() => "TRUE".into(),
            Expr::And(items, _) => {
                let parts = items.iter().map(|i| self.expr(i, stage)).collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(" AND "))
            }
            Expr::Or(items, _) => {
                let parts = items.iter().map(|i| self.expr(i, stage)).collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(" OR "))
            }
            // IS NOT TRUE keeps rows where the field is missing (NULL): `!user:root` includes events with no user.
            Expr::Not(inner, _) => format!("({}) IS NOT TRUE", self.expr(inner, stage)?),
            Expr::Term(t) => {
                let f = self.resolve(&t.field, stage)?;
                let c = cond::term_condition(t, &f, &mut self.params, self.now)?;
                if t.negated {
                    format!("({c}) IS NOT TRUE")
                } else {
                    c
                }
            }
            Expr::Text(t) => self.free_text(t, stage)?,
            Expr::Stats(s) => {
                return Err(SrqlError::new(ErrorKind::MisplacedDirective, "`stats:` cannot be used here", s.span))
            }
        })
    }

    /// Free text. The one seam for the search strategy: today an ILIKE over
    /// the entity's text columns; BM25 replaces it here.
    fn free_text(&mut self, t: &Text, stage: Option<&Stage>) -> Result<String, SrqlError> {
        if stage.is_some() {
            return Err(SrqlError::new(
                ErrorKind::BadOperator,
                "free text searches the events; put it before the first pipe",
                t.span,
            ));
        }
        let pattern = like_pattern(&t.text, t.phrase, true);
        let p = self.params.add(Param::Text(pattern));
        let parts: Vec<String> = self.entity.text_columns.iter().map(|c| format!("{c} ILIKE {p}")).collect();
        Ok(format!("({})", parts.join(" OR ")))
    }

    fn base_stage(&mut self, conds: &[String]) -> Stage {
        let e = self.entity;
        let (projection, cols) = base_projection(e);
        let cols = cols.clone();
        let mut sql = format!("SELECT {projection} FROM {}", e.table);
        let conds: Vec<&String> = conds.iter().filter(|c| c.as_str() != "TRUE").collect();
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" AND "));
        }
        let mut order = Vec::new();
        if let Some(tf) = e.time_field {
            order.push((q(tf), true));
        }
        for k in e.key_columns {
            let name = e.fields.iter().find(|f| f.column == *k).map(|f| f.name).unwrap_or(k);
            order.push((q(name), false));
        }
        Stage { select: sql, cols, order, is_base: true, time_col: e.time_field.map(str::to_string) }
    }

    /// The stage's SQL with its current order and an optional limit.
    fn ordered(&mut self, stage: &Stage, limit: Option<u64>) -> String {
        let mut sql = stage.select.clone();
        if !stage.order.is_empty() {
            let keys: Vec<String> = stage
                .order
                .iter()
                .map(|(c, desc)| format!("{c} {}", if *desc { "DESC NULLS LAST" } else { "ASC NULLS LAST" }))
                .collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
        if let Some(n) = limit {
            let p = self.params.add(Param::Int(n as i64));
            sql.push_str(&format!(" LIMIT {p}"));
        }
        sql
    }

    fn finish(&mut self, stage: &Stage, limit: u64) -> String {
        self.plan.push(format!("limit {limit}"));
        self.ordered(stage, Some(limit))
    }

    /// Wraps a stage: the next SELECT reads it as a subquery.
    fn wrap(&mut self, prev: &Stage, keep_order: bool) -> (String, String) {
        let alias = self.next_alias();
        let inner = if keep_order { self.ordered(prev, None) } else { prev.select.clone() };
        (format!("({inner}) AS {alias}"), alias)
    }

    fn where_pipe(&mut self, stage: Stage, e: &Expr) -> Result<Stage, SrqlError> {
        self.plan.push(format!("where {e}"));
        if stage.is_base {
            let c = self.expr(e, None)?;
            let mut s = stage;
            let joiner = if s.select.contains(" WHERE ") { " AND " } else { " WHERE " };
            s.select = format!("{}{joiner}{c}", s.select);
            return Ok(s);
        }
        let c = self.expr(e, Some(&stage))?;
        let (from, _) = self.wrap(&stage, false);
        Ok(Stage { select: format!("SELECT * FROM {from} WHERE {c}"), is_base: false, ..stage })
    }

    fn having(&mut self, stage: Stage, t: &Term) -> Result<Stage, SrqlError> {
        // ServiceRadar `having:"name>80"`.
        let l = literal_of(t, "a condition like \"count>10\"")?;
        let text = l.text.trim();
        let pos = text.find(['>', '<', '=']).ok_or_else(|| {
            SrqlError::new(ErrorKind::BadValue, "`having:` takes a condition like \"count>10\"", l.span)
        })?;
        let (name, rest) = text.split_at(pos);
        let (op, value) = ["!=", ">=", "<=", ">", "<", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
            .unwrap_or(("=", rest));
        let col = self.stage_col(&stage, name.trim()).cloned().ok_or_else(|| {
            SrqlError::new(
                ErrorKind::UnknownField,
                format!("no column `{}` to filter with having:", name.trim()),
                l.span,
            )
        })?;
        let x: f64 = value
            .parse()
            .map_err(|_| SrqlError::new(ErrorKind::BadValue, format!("`{value}` is not a number"), l.span))?;
        let p = self.params.add(Param::Float(x));
        let op = if op == "!=" { "<>" } else { op };
        self.plan.push(format!("having {text}"));
        let (from, _) = self.wrap(&stage, false);
        Ok(Stage { select: format!("SELECT * FROM {from} WHERE {} {op} {p}", col.sql), is_base: false, ..stage })
    }

    fn group_expr(&mut self, stage: &Stage, ident: &Ident) -> Result<(String, FieldType), SrqlError> {
        // Group enums by their label; the id rides along for order and filters.
        if let Some(c) = self.stage_col(stage, &ident.name).filter(|c| matches!(c.ty, FieldType::Enum(_))) {
            return Ok((c.sql.clone(), c.ty));
        }
        let f = self.resolve(ident, Some(stage))?;
        Ok(match &f.json_path {
            Some(p) => (format!("({} #>> {p})", f.sql), FieldType::Keyword),
            None => (f.sql, f.ty),
        })
    }

    fn agg_sql(&mut self, stage: &Stage, a: &Agg) -> Result<(String, FieldType, String), SrqlError> {
        let func = a.func.name.to_ascii_lowercase();
        let arg = match &a.arg {
            Some(i) if i.name == "*" => None,
            other => other.clone(),
        };
        let default_name = match &arg {
            None => func.clone(),
            Some(i) => format!("{func}_{}", i.name.replace('.', "_")),
        };
        let name = a.alias.as_ref().map(|i| i.name.clone()).unwrap_or(default_name);
        let need_arg = |this: &mut Self| -> Result<(String, FieldType), SrqlError> {
            let i = arg.as_ref().ok_or_else(|| {
                SrqlError::new(
                    ErrorKind::BadValue,
                    format!("`{}()` needs a field, like `{}(bytes)`", a.func.name, a.func.name),
                    a.span,
                )
            })?;
            let f = this.resolve(i, Some(stage))?;
            Ok(match &f.json_path {
                Some(p) => (
                    format!(
                        "(CASE WHEN jsonb_typeof({c} #> {p}) = 'number' THEN ({c} #>> {p})::float8 END)",
                        c = f.sql
                    ),
                    FieldType::Float,
                ),
                None => (f.sql, f.ty),
            })
        };
        let numeric = |this: &mut Self| -> Result<String, SrqlError> {
            let (sql, ty) = need_arg(this)?;
            if !ty.is_numeric() {
                let i = arg.as_ref().map(|i| i.span).unwrap_or(a.span);
                return Err(SrqlError::new(
                    ErrorKind::BadOperator,
                    format!(
                        "`{}()` needs a number field; `{}` is {}",
                        a.func.name,
                        arg.as_ref().map(|i| i.name.as_str()).unwrap_or(""),
                        ty.name()
                    ),
                    i,
                ));
            }
            Ok(sql)
        };
        let (sql, ty) = match func.as_str() {
            "count" => match &arg {
                None => ("count(*)".to_string(), FieldType::Int),
                Some(_) => (format!("count({})", need_arg(self)?.0), FieldType::Int),
            },
            "count_distinct" | "dc" | "distinct_count" => {
                (format!("count(DISTINCT {})", need_arg(self)?.0), FieldType::Int)
            }
            // float8 so every client reads one numeric type (sum/avg of integers are numeric in SQL).
            "sum" => (format!("sum({})::float8", numeric(self)?), FieldType::Float),
            "avg" | "mean" => (format!("avg({})::float8", numeric(self)?), FieldType::Float),
            "min" | "max" => {
                let (sql, ty) = need_arg(self)?;
                (format!("{func}({sql})"), ty)
            }
            "median" | "p50" | "p90" | "p95" | "p99" => {
                let frac = match func.as_str() {
                    "p90" => "0.9",
                    "p95" => "0.95",
                    "p99" => "0.99",
                    _ => "0.5",
                };
                (format!("percentile_cont({frac}) WITHIN GROUP (ORDER BY {})", numeric(self)?), FieldType::Float)
            }
            _ => {
                const FUNCS: &[&str] =
                    &["count", "count_distinct", "sum", "avg", "min", "max", "median", "p90", "p95", "p99"];
                return Err(SrqlError::new(
                    ErrorKind::UnknownFunction,
                    format!("unknown aggregate `{}()`", a.func.name),
                    a.func.span,
                )
                .expected(FUNCS.iter().map(|f| format!("`{f}()`")))
                .suggest(crate::suggest::nearest(&a.func.name, FUNCS.iter().copied())));
            }
        };
        // sum of integers stays an integer in meaning; numeric types print as numbers either way.
        Ok((sql, ty, name))
    }

    fn stats(&mut self, stage: Stage, spec: &StatsSpec, bucket: Option<(String, String)>) -> Result<Stage, SrqlError> {
        if spec.aggs.is_empty() {
            return Err(SrqlError::new(
                ErrorKind::BadValue,
                "stats needs at least one aggregate, like count()",
                spec.span,
            ));
        }
        let mut select = Vec::new();
        let mut cols = Vec::new();
        let mut group = Vec::new();
        if let Some((expr, name)) = &bucket {
            select.push(format!("{expr} AS {}", q(name)));
            cols.push(Col {
                name: name.clone(),
                sql: q(name),
                alias: name.clone(),
                ty: FieldType::Time,
                order_sql: q(name),
            });
            group.push(q(name));
        }
        for (i, b) in spec.by.iter().enumerate() {
            let (sql, ty) = self.group_expr(&stage, b)?;
            let alias = format!("g{i}");
            select.push(format!("{sql} AS {}", q(&alias)));
            // Enum labels keep their natural order (severity: low < high) through a hidden column.
            let mut order_sql = q(&alias);
            if let Some(c) = self.stage_col(&stage, &b.name).filter(|c| c.order_sql != c.sql) {
                let ord = format!("{alias}_order");
                select.push(format!("min({}) AS {}", c.order_sql, q(&ord)));
                order_sql = q(&ord);
            }
            cols.push(Col { name: b.name.clone(), sql: q(&alias), alias: alias.clone(), ty, order_sql });
            group.push(q(&alias));
        }
        for (i, a) in spec.aggs.iter().enumerate() {
            let (sql, ty, name) = self.agg_sql(&stage, a)?;
            if cols.iter().any(|c| c.name == name) {
                return Err(SrqlError::new(
                    ErrorKind::BadValue,
                    format!("two result columns are named `{name}`; name one with `as`"),
                    a.span,
                ));
            }
            let alias = format!("a{i}");
            select.push(format!("{sql} AS {}", q(&alias)));
            cols.push(Col { name, sql: q(&alias), alias: alias.clone(), ty, order_sql: q(&alias) });
        }
        let (from, _) = self.wrap(&stage, false);
        let mut sql = format!("SELECT {} FROM {from}", select.join(", "));
        if !group.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", group.join(", ")));
        }
        // Default order: time buckets ascending, else the first aggregate descending, then the groups.
        let n_groups = spec.by.len() + usize::from(bucket.is_some());
        let mut order: Vec<(String, bool)> = Vec::new();
        if bucket.is_some() {
            order.push((cols[0].sql.clone(), false));
            order.extend(cols[1..n_groups].iter().map(|c| (c.order_sql.clone(), false)));
        } else {
            order.push((cols[n_groups].sql.clone(), true));
            order.extend(cols[..n_groups].iter().map(|c| (c.order_sql.clone(), false)));
        }
        self.plan.push(format!("{} {spec}", if bucket.is_some() { "timechart" } else { "stats" }));
        let time_col = bucket.map(|(_, n)| n);
        Ok(Stage { select: sql, cols, order, is_base: false, time_col })
    }

    fn auto_bucket(&self, window: Option<Window>) -> Duration {
        let span = window.map(|w| w.end - w.start).unwrap_or(self.cfg.default_window);
        let steps = [
            Duration::minutes(1),
            Duration::minutes(5),
            Duration::minutes(15),
            Duration::hours(1),
            Duration::hours(6),
            Duration::days(1),
        ];
        steps.into_iter().find(|s| span.num_seconds() / s.num_seconds().max(1) <= 300).unwrap_or(Duration::days(7))
    }

    fn timechart(
        &mut self,
        stage: Stage,
        bucket: Option<Duration>,
        spec: &StatsSpec,
        window: Option<Window>,
        span: Span,
    ) -> Result<Stage, SrqlError> {
        let time_col = stage.time_col.clone().ok_or_else(|| {
            SrqlError::new(ErrorKind::BadOperator, "timechart needs a time column, and this stage has none", span)
        })?;
        let time_sql =
            stage.cols.iter().find(|c| c.name == time_col).map(|c| c.sql.clone()).unwrap_or_else(|| q(&time_col));
        let bucket = bucket.unwrap_or_else(|| self.auto_bucket(window));
        if bucket.num_seconds() <= 0 {
            return Err(SrqlError::new(ErrorKind::BadValue, "timechart span must be at least 1s", span));
        }
        let p = self.params.add(Param::Text(format!("{} seconds", bucket.num_seconds())));
        let expr = format!("date_bin({p}::interval, {time_sql}, TIMESTAMPTZ '2000-01-01 00:00:00+00')");
        self.stats(stage, spec, Some((expr, "bucket".to_string())))
    }

    fn bucket_directive(&mut self, stage: Stage, bucket: &Term, d: &Directives<'_>) -> Result<Stage, SrqlError> {
        let l = literal_of(bucket, "a duration like 5m")?;
        let dur = time::parse_duration(&l.text).ok_or_else(|| {
            SrqlError::new(ErrorKind::BadValue, format!("`{}` is not a duration like 5m", l.text), l.span)
        })?;
        let func = match d.agg {
            Some(t) => literal_of(t, "an aggregate name like avg")?.clone(),
            None => Literal { text: "avg".into(), quoted: false, span: bucket.span },
        };
        let arg = match d.value_field {
            Some(t) => {
                let l = literal_of(t, "a field name")?;
                Some(Ident { name: l.text.clone(), span: l.span })
            }
            None => None,
        };
        let arg = if func.text.eq_ignore_ascii_case("count") { None } else { arg };
        let by = match d.series {
            Some(t) => {
                let l = literal_of(t, "a field name")?;
                vec![Ident { name: l.text.clone(), span: l.span }]
            }
            None => Vec::new(),
        };
        let spec = StatsSpec {
            aggs: vec![Agg {
                func: Ident { name: func.text.clone(), span: func.span },
                arg,
                alias: None,
                span: func.span,
            }],
            by,
            span: bucket.span,
        };
        let window = None;
        self.timechart(stage, Some(dur), &spec, window, bucket.span)
    }

    fn order_key(&mut self, stage: &Stage, ident: &Ident, desc: bool) -> Result<(String, bool), SrqlError> {
        if let Some(c) = self.stage_col(stage, &ident.name) {
            return Ok((c.order_sql.clone(), desc));
        }
        let f = self.resolve(ident, Some(stage))?;
        // jsonb orders numbers as numbers (text would put "9" after "10").
        Ok((f.json_path.map(|p| format!("({} #> {p})", f.sql)).unwrap_or(f.sql), desc))
    }

    fn sort_directive(&mut self, stage: &Stage, t: &Term) -> Result<Vec<(String, bool)>, SrqlError> {
        let l = literal_of(t, "`field:desc` or `field:asc`")?;
        let mut order = Vec::new();
        let mut offset = l.span.start + usize::from(l.quoted);
        // Escapes make the text shorter than the source: then point at the whole value.
        let exact = l.span.end - l.span.start == l.text.len() + 2 * usize::from(l.quoted);
        for part in l.text.split(',') {
            let span = if exact { Span::new(offset, offset + part.len()) } else { l.span };
            offset += part.len() + 1;
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, dir) = match part.rsplit_once(':') {
                Some((n, d)) if d.eq_ignore_ascii_case("desc") => (n, true),
                Some((n, d)) if d.eq_ignore_ascii_case("asc") => (n, false),
                Some((_, d)) => {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        format!("sort direction `{d}` is not asc or desc"),
                        span,
                    ))
                }
                None => (part, false),
            };
            let name = name.trim_start_matches(['-', '+']);
            let desc = dir || part.starts_with('-');
            order.push(self.order_key(stage, &Ident { name: name.to_string(), span }, desc)?);
        }
        self.plan.push(format!("sort {}", l.text));
        Ok(order)
    }

    fn head(&mut self, stage: Stage, n: u64) -> Stage {
        self.plan.push(format!("head {n}"));
        let inner = self.ordered(&stage, Some(n));
        let alias = self.next_alias();
        Stage { select: format!("SELECT * FROM ({inner}) AS {alias}"), is_base: false, ..stage }
    }

    fn dedup(&mut self, stage: Stage, fields: &[Ident]) -> Result<Stage, SrqlError> {
        let keys = fields.iter().map(|f| self.group_expr(&stage, f).map(|(s, _)| s)).collect::<Result<Vec<_>, _>>()?;
        // Keep the first row of each group in the stage's current order.
        let mut order: Vec<String> = keys.clone();
        order.extend(
            stage.order.iter().map(|(c, d)| format!("{c} {}", if *d { "DESC NULLS LAST" } else { "ASC NULLS LAST" })),
        );
        let alias = self.next_alias();
        self.plan.push(format!("dedup {}", fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")));
        let select = format!(
            "SELECT DISTINCT ON ({}) * FROM ({}) AS {alias} ORDER BY {}",
            keys.join(", "),
            stage.select,
            order.join(", ")
        );
        // DISTINCT ON needs its own ORDER BY; wrap again so the outer order is free.
        let outer = self.next_alias();
        Ok(Stage { select: format!("SELECT * FROM ({select}) AS {outer}"), is_base: false, ..stage })
    }

    fn fields(&mut self, stage: Stage, fields: &[Ident]) -> Result<Stage, SrqlError> {
        let mut cols = Vec::new();
        let mut select = Vec::new();
        for f in fields {
            let c = self.stage_col(&stage, &f.name).cloned().ok_or_else(|| {
                SrqlError::new(
                    ErrorKind::UnknownField,
                    format!("no column `{}` at this point of the pipeline", f.name),
                    f.span,
                )
                .suggest(crate::suggest::nearest(&f.name, stage.cols.iter().map(|c| c.name.as_str())))
            })?;
            if !cols.iter().any(|x: &Col| x.alias == c.alias) {
                select.push(c.sql.clone());
                // An enum's id column stays (hidden) so later filters and sorts can use it.
                if c.order_sql != c.sql && !select.contains(&c.order_sql) {
                    select.push(c.order_sql.clone());
                }
                cols.push(c);
            }
        }
        // Keep the columns the current order needs (e.g. severity_id) out of the output but in the select.
        for (o, _) in &stage.order {
            if !cols.iter().any(|c| &c.sql == o) && !select.contains(o) {
                select.push(o.clone());
            }
        }
        self.plan.push(format!("fields {}", fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")));
        let (from, _) = self.wrap(&stage, false);
        let time_col = stage.time_col.clone().filter(|t| cols.iter().any(|c| &c.name == t));
        Ok(Stage {
            select: format!("SELECT {} FROM {from}", select.join(", ")),
            cols,
            order: stage.order,
            is_base: false,
            time_col,
        })
    }

    fn similar(
        &mut self,
        stage: Stage,
        text: &Literal,
        args: &[NamedArg],
        span: Span,
    ) -> Result<(Stage, Similarity), SrqlError> {
        if !self.entity.similarity {
            return Err(SrqlError::new(
                ErrorKind::NotAvailable,
                format!("`SIMILAR_TO` searches event embeddings; `in:{}` has none", self.entity.name),
                span,
            ));
        }
        let has = |n: &str| stage.cols.iter().any(|c| c.alias == n);
        if !(has("event_id") && has("time")) {
            return Err(SrqlError::new(
                ErrorKind::BadOperator,
                "`SIMILAR_TO` needs events (with event_id and time); it cannot follow stats or fields that drop them",
                span,
            ));
        }
        if text.text.trim().is_empty() {
            return Err(SrqlError::new(ErrorKind::BadValue, "`SIMILAR_TO` needs some text to compare with", text.span));
        }
        let mut k = self.cfg.default_k;
        let mut min_score = None;
        for a in args {
            match a.name.name.to_ascii_lowercase().as_str() {
                "k" => {
                    k = a.value.text.parse().map_err(|_| {
                        SrqlError::new(
                            ErrorKind::BadValue,
                            format!("k must be a whole number, not `{}`", a.value.text),
                            a.value.span,
                        )
                    })?;
                    if k == 0 {
                        return Err(SrqlError::new(ErrorKind::BadValue, "k must be at least 1", a.value.span));
                    }
                    if k > self.cfg.max_k {
                        self.warnings.push(format!("k {k} capped at {}", self.cfg.max_k));
                        k = self.cfg.max_k;
                    }
                }
                "min_score" => {
                    let x: f64 = a.value.text.parse().map_err(|_| {
                        SrqlError::new(
                            ErrorKind::BadValue,
                            format!("min_score must be a number, not `{}`", a.value.text),
                            a.value.span,
                        )
                    })?;
                    if !(-1.0..=1.0).contains(&x) {
                        return Err(SrqlError::new(
                            ErrorKind::BadValue,
                            "min_score is a cosine similarity between -1 and 1",
                            a.value.span,
                        ));
                    }
                    min_score = Some(x);
                }
                _ => {
                    return Err(SrqlError::new(
                        ErrorKind::BadValue,
                        format!("unknown SIMILAR_TO argument `{}`", a.name.name),
                        a.name.span,
                    )
                    .expected(["`k:50`".to_string(), "`min_score:0.6`".to_string()]))
                }
            }
        }
        let vec_param = self.params.add(Param::Embedding(text.text.clone()));
        let param_index = self.params.0.len();
        let inner_alias = self.next_alias();
        let mut select = format!(
            "SELECT {a}.*, 1 - (v.embedding <=> {vec_param}) AS \"score\" FROM ({}) AS {a} JOIN event_embeddings AS v ON v.event_id = {a}.\"event_id\" AND v.time = {a}.\"time\"",
            stage.select,
            a = inner_alias
        );
        if let Some(m) = min_score {
            select
                .push_str(&format!(" WHERE 1 - (v.embedding <=> {vec_param}) >= {}", self.params.add(Param::Float(m))));
        }
        select.push_str(&format!(
            " ORDER BY v.embedding <=> {vec_param} LIMIT {}",
            self.params.add(Param::Int(k as i64))
        ));
        let outer = self.next_alias();
        let mut cols = stage.cols.clone();
        cols.push(Col {
            name: "score".into(),
            sql: q("score"),
            alias: "score".into(),
            ty: FieldType::Float,
            order_sql: q("score"),
        });
        self.plan.push(format!(
            "similar to {:?} (k {k}{})",
            text.text,
            min_score.map(|m| format!(", min_score {m}")).unwrap_or_default()
        ));
        let stage = Stage {
            select: format!("SELECT * FROM ({select}) AS {outer}"),
            cols,
            order: vec![(q("score"), true)],
            is_base: false,
            time_col: stage.time_col,
        };
        Ok((stage, Similarity { text: text.text.clone(), param: param_index, k, min_score }))
    }
}
