//! Directives: the `in:`, `time:`, `sort:`, `limit:`, `stats:`, `having:`
//! and `bucket:` terms that shape the whole query rather than filter rows.

use chrono::{DateTime, Duration, Utc};

use super::{Planner, Stage};
use crate::ast::*;
use crate::error::{ErrorKind, SrqlError};
use crate::params::Param;
use crate::time::{self, Window};

/// Directives pulled out of the top level of the search.
#[derive(Default)]
pub(super) struct Directives<'q> {
    pub(super) entity: Option<&'q Term>,
    /// Every `in:` written; the last one wins, but all must name entities.
    pub(super) entities: Vec<&'q Term>,
    pub(super) time: Vec<&'q Term>,
    pub(super) sort: Option<&'q Term>,
    pub(super) limit: Option<&'q Term>,
    pub(super) stats: Vec<StatsSpec>,
    pub(super) having: Option<&'q Term>,
    pub(super) bucket: Option<&'q Term>,
    pub(super) agg: Option<&'q Term>,
    pub(super) value_field: Option<&'q Term>,
    pub(super) series: Option<&'q Term>,
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
pub(super) fn no_directives(e: &Expr, allow_time: bool) -> Result<(), SrqlError> {
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

pub(super) fn split_directives(filter: Option<&Expr>) -> Result<(Directives<'_>, Vec<&Expr>), SrqlError> {
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

pub(super) fn literal_of<'t>(t: &'t Term, what: &str) -> Result<&'t Literal, SrqlError> {
    match &t.value {
        Value::Literal(l) => Ok(l),
        other => Err(SrqlError::new(ErrorKind::BadValue, format!("`{}:` takes {what}", t.field.name), other.span())),
    }
}

pub(super) fn merge_stats(specs: &[StatsSpec]) -> Result<StatsSpec, SrqlError> {
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

impl Planner<'_> {
    pub(super) fn window(&mut self, terms: &[&Term]) -> Result<Option<Window>, SrqlError> {
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

    pub(super) fn limit(&mut self, t: Option<&Term>) -> Result<u64, SrqlError> {
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

    pub(super) fn having(&mut self, stage: Stage, t: &Term) -> Result<Stage, SrqlError> {
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

    pub(super) fn bucket_directive(
        &mut self,
        stage: Stage,
        bucket: &Term,
        d: &Directives<'_>,
    ) -> Result<Stage, SrqlError> {
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

    pub(super) fn sort_directive(&mut self, stage: &Stage, t: &Term) -> Result<Vec<(String, bool)>, SrqlError> {
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
}
