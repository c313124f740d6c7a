//! Filter terms → SQL conditions, per field type. Values become parameters;
//! the SQL text holds only registry identifiers, operators and placeholders.

use std::net::IpAddr;

use crate::ast::{CmpOp, Literal, Span, Term, Value};
use crate::error::{ErrorKind, SrqlError};
use crate::params::{Param, Params};
use crate::registry::FieldType;
use crate::time;

/// A field resolved for use in SQL.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The field's name as the user wrote it.
    pub name: String,
    /// SQL expression for the column (an identifier from the registry or a
    /// quoted stage alias).
    pub sql: String,
    pub ty: FieldType,
    /// For `raw.a.b`: the placeholder of the path parameter (`$n::text[]`).
    pub json_path: Option<String>,
}

impl Resolved {
    /// The text value at a JSON path, or the column itself.
    fn text_expr(&self) -> String {
        match &self.json_path {
            Some(p) => format!("({} #>> {p})", self.sql),
            None => self.sql.clone(),
        }
    }

    fn json_number_expr(&self, p: &str) -> String {
        format!("(CASE WHEN jsonb_typeof({c} #> {p}) = 'number' THEN ({c} #>> {p})::float8 END)", c = self.sql)
    }
}

/// Whether a literal holds wildcards: `*` `?` `%` unquoted, `%` quoted (ServiceRadar).
pub(crate) fn has_wildcard(l: &Literal) -> bool {
    if l.quoted {
        l.text.contains('%')
    } else {
        l.text.contains(['*', '?', '%'])
    }
}

/// The ILIKE pattern for a literal: wildcards translated, LIKE's own
/// metacharacters escaped. `contains` wraps it in `%…%`.
pub(crate) fn like_pattern(text: &str, quoted: bool, contains: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    if contains {
        out.push('%');
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '_' => out.push_str("\\_"),
            '*' if !quoted => out.push('%'),
            '?' if !quoted => out.push('_'),
            '%' => out.push('%'),
            c => out.push(c),
        }
    }
    if contains {
        out.push('%');
    }
    out
}

fn bad_value(msg: impl Into<String>, span: Span) -> SrqlError {
    SrqlError::new(ErrorKind::BadValue, msg, span)
}

fn bad_op(field: &Resolved, what: &str, span: Span) -> SrqlError {
    let ty = field.ty.name();
    let article = if ty.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    SrqlError::new(
        ErrorKind::BadOperator,
        format!("{what} does not apply to `{}`, {article} {ty} field", field.name),
        span,
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Literal(_) => "a value",
        Value::List(..) => "a list",
        Value::Bracket(..) => "a bracket list",
        Value::Range(..) => "a range",
        Value::Compare(..) => "a comparison",
        Value::Regex(..) => "a regex",
        Value::Exists(_) => "`*`",
        Value::Field(..) => "a field reference",
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    op.as_str()
}

/// The condition for one `field:value` term (negation is applied by the caller).
pub(crate) fn term_condition(
    term: &Term,
    f: &Resolved,
    params: &mut Params,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, SrqlError> {
    if f.json_path.is_some() {
        return json_path_condition(&term.value, f, params);
    }
    match f.ty {
        FieldType::Keyword => keyword(&term.value, f, params),
        FieldType::Text => text(&term.value, f, params),
        FieldType::Int | FieldType::Float => number(&term.value, f, params),
        FieldType::Bool => boolean(&term.value, f, params),
        FieldType::Time => time_field(&term.value, f, params, now),
        FieldType::Ip => ip(&term.value, f, params),
        FieldType::Uuid => uuid(&term.value, f, params),
        FieldType::Enum(labels) => enumeration(&term.value, f, labels, params),
        FieldType::Json => json_root(&term.value, f, params),
    }
}

/// `a:$b`: the two fields of one row are equal (both present). Same-typed
/// columns compare natively; otherwise their text forms are compared, exactly
/// (case-sensitive, like keyword equality).
pub(crate) fn fields_equal(a: &Resolved, b: &Resolved, span: Span) -> Result<String, SrqlError> {
    if a.json_path.is_none() && b.json_path.is_none() && a.ty == b.ty && comparable(a.ty) {
        return Ok(format!("{} = {}", a.sql, b.sql));
    }
    Ok(format!("{} = {}", text_form(a, span)?, text_form(b, span)?))
}

/// Field references are planned by the caller ([`fields_equal`]); a type's
/// value parser never sees one.
fn field_ref_elsewhere(span: Span) -> SrqlError {
    SrqlError::new(ErrorKind::BadOperator, "a field reference `$field` is only an equality: `a:$b`", span)
}

fn comparable(ty: FieldType) -> bool {
    matches!(
        ty,
        FieldType::Keyword | FieldType::Text | FieldType::Int | FieldType::Float | FieldType::Ip | FieldType::Uuid
    )
}

fn text_form(f: &Resolved, span: Span) -> Result<String, SrqlError> {
    if f.json_path.is_some() {
        return Ok(f.text_expr());
    }
    match f.ty {
        FieldType::Keyword | FieldType::Text => Ok(f.sql.clone()),
        FieldType::Int | FieldType::Float | FieldType::Uuid => Ok(format!("({})::text", f.sql)),
        FieldType::Ip => Ok(format!("host({})", f.sql)),
        _ => Err(bad_op(f, "a field reference `$field`", span)),
    }
}

fn exists(f: &Resolved) -> String {
    format!("{} IS NOT NULL", f.sql)
}

fn any_of(parts: Vec<String>) -> String {
    if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

/// Bracket values `[a, b]` mean a list everywhere but on time fields.
fn bracket_items(items: &[Option<Literal>], span: Span) -> Result<Vec<Literal>, SrqlError> {
    items.iter().map(|i| i.clone().ok_or_else(|| bad_value("empty item in list", span))).collect()
}

fn keyword(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => exists(f),
        Value::Literal(l) if has_wildcard(l) => {
            format!("{} ILIKE {}", f.sql, params.add(Param::Text(like_pattern(&l.text, l.quoted, false))))
        }
        Value::Literal(l) => format!("{} = {}", f.sql, params.add(Param::Text(l.text.clone()))),
        Value::List(items, _) => keyword_list(items, f, params),
        Value::Bracket(items, span) => keyword_list(&bracket_items(items, *span)?, f, params),
        Value::Compare(op, l, _) => format!("{} {} {}", f.sql, sql_op(*op), params.add(Param::Text(l.text.clone()))),
        Value::Range(a, b, _) => format!(
            "{} BETWEEN {} AND {}",
            f.sql,
            params.add(Param::Text(a.text.clone())),
            params.add(Param::Text(b.text.clone()))
        ),
        Value::Regex(r, _) => format!("{} ~ {}", f.sql, params.add(Param::Text(r.clone()))),
    })
}

fn keyword_list(items: &[Literal], f: &Resolved, params: &mut Params) -> String {
    let (wild, exact): (Vec<&Literal>, Vec<&Literal>) = items.iter().partition(|l| has_wildcard(l));
    let mut parts = Vec::new();
    if !exact.is_empty() {
        let values = exact.iter().map(|l| l.text.clone()).collect();
        parts.push(format!("{} = ANY({})", f.sql, params.add(Param::TextArray(values))));
    }
    for l in wild {
        parts.push(format!("{} ILIKE {}", f.sql, params.add(Param::Text(like_pattern(&l.text, l.quoted, false)))));
    }
    any_of(parts)
}

fn text(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    let contains = |l: &Literal, params: &mut Params| {
        // Text fields match anywhere in the text, wildcards or not (`fail*` finds "login failed").
        format!("{} ILIKE {}", f.sql, params.add(Param::Text(like_pattern(&l.text, l.quoted, true))))
    };
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => exists(f),
        Value::Literal(l) => contains(l, params),
        Value::List(items, _) => any_of(items.iter().map(|l| contains(l, params)).collect()),
        Value::Bracket(items, span) => {
            any_of(bracket_items(items, *span)?.iter().map(|l| contains(l, params)).collect())
        }
        Value::Regex(r, _) => format!("{} ~* {}", f.sql, params.add(Param::Text(r.clone()))),
        Value::Compare(_, _, s) => return Err(bad_op(f, "a comparison", *s)),
        Value::Range(_, _, s) => return Err(bad_op(f, "a range", *s)),
    })
}

fn parse_number(l: &Literal, f: &Resolved) -> Result<Param, SrqlError> {
    let t = l.text.trim();
    if f.ty == FieldType::Int {
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Param::Int(i));
        }
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() && f.ty == FieldType::Float => Ok(Param::Float(x)),
        Ok(x) if x.is_finite() => Ok(Param::Float(x)),
        _ => Err(bad_value(format!("`{}` is not a number (field `{}` is {})", l.text, f.name, f.ty.name()), l.span)),
    }
}

fn number(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => exists(f),
        // `http_status:4%`: match the digits as text.
        Value::Literal(l) if has_wildcard(l) => {
            format!("{}::text LIKE {}", f.sql, params.add(Param::Text(like_pattern(&l.text, l.quoted, false))))
        }
        Value::Literal(l) => format!("{} = {}", f.sql, params.add(parse_number(l, f)?)),
        Value::List(items, _) => number_list(items, f, params)?,
        Value::Bracket(items, span) => number_list(&bracket_items(items, *span)?, f, params)?,
        Value::Compare(op, l, _) => format!("{} {} {}", f.sql, sql_op(*op), params.add(parse_number(l, f)?)),
        Value::Range(a, b, _) => {
            let (a, b) = (parse_number(a, f)?, parse_number(b, f)?);
            format!("{} BETWEEN {} AND {}", f.sql, params.add(a), params.add(b))
        }
        Value::Regex(_, s) => return Err(bad_op(f, "a regex", *s)),
    })
}

fn number_list(items: &[Literal], f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    let values: Vec<Param> = items.iter().map(|l| parse_number(l, f)).collect::<Result<_, _>>()?;
    if values.iter().all(|p| matches!(p, Param::Int(_))) {
        let ints = values.iter().filter_map(|p| if let Param::Int(i) = p { Some(*i) } else { None }).collect();
        Ok(format!("{} = ANY({})", f.sql, params.add(Param::IntArray(ints))))
    } else {
        Ok(any_of(values.into_iter().map(|p| format!("{} = {}", f.sql, params.add(p))).collect()))
    }
}

fn parse_bool(l: &Literal, f: &Resolved) -> Result<bool, SrqlError> {
    match l.text.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "1" => Ok(true),
        "false" | "f" | "no" | "0" => Ok(false),
        _ => Err(bad_value(format!("`{}` is not true or false (field `{}`)", l.text, f.name), l.span)),
    }
}

fn boolean(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    match v {
        Value::Exists(_) => Ok(exists(f)),
        Value::Literal(l) => Ok(format!("{} = {}", f.sql, params.add(Param::Bool(parse_bool(l, f)?)))),
        other => Err(bad_op(f, kind_of(other), other.span())),
    }
}

fn instant(
    l: &Literal,
    f: &Resolved,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, SrqlError> {
    time::parse_instant(&l.text, now).ok_or_else(|| {
        bad_value(
            format!(
                "`{}` is not a time (field `{}`); use RFC 3339 like 2026-01-02T15:04:05Z, a date, or now-1h",
                l.text, f.name
            ),
            l.span,
        )
    })
}

fn time_field(
    v: &Value,
    f: &Resolved,
    params: &mut Params,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, SrqlError> {
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => exists(f),
        Value::Literal(l) => {
            let day = time::is_date(&l.text).then(|| time::parse_instant(&l.text, now)).flatten();
            let window = match day {
                Some(d) => Some(time::Window { start: d, end: d + chrono::Duration::days(1) }),
                None => time::parse_relative(&l.text, now).filter(|_| time::parse_instant(&l.text, now).is_none()),
            };
            if let Some(w) = window {
                format!(
                    "{c} >= {} AND {c} < {}",
                    params.add(Param::Time(w.start)),
                    params.add(Param::Time(w.end)),
                    c = f.sql
                )
            } else {
                format!("{} = {}", f.sql, params.add(Param::Time(instant(l, f, now)?)))
            }
        }
        Value::Compare(op, l, _) => {
            format!("{} {} {}", f.sql, sql_op(*op), params.add(Param::Time(instant(l, f, now)?)))
        }
        // Half-open like the query window: `[a TO b]` ends just before b.
        Value::Range(a, b, _) => {
            let (a, b) = (instant(a, f, now)?, instant(b, f, now)?);
            format!("{c} >= {} AND {c} < {}", params.add(Param::Time(a)), params.add(Param::Time(b)), c = f.sql)
        }
        Value::Bracket(items, span) => {
            let mut parts = Vec::new();
            match items.as_slice() {
                [a, b] => {
                    if let Some(a) = a {
                        parts.push(format!("{} >= {}", f.sql, params.add(Param::Time(instant(a, f, now)?))));
                    }
                    if let Some(b) = b {
                        parts.push(format!("{} < {}", f.sql, params.add(Param::Time(instant(b, f, now)?))));
                    }
                }
                _ => return Err(bad_value("a time range is `[start, end]`", *span)),
            }
            if parts.is_empty() {
                "TRUE".to_string()
            } else {
                parts.join(" AND ")
            }
        }
        Value::List(_, s) => return Err(bad_op(f, "a list", *s)),
        Value::Regex(_, s) => return Err(bad_op(f, "a regex", *s)),
    })
}

/// An address or network, validated here so a typo is an error with a caret,
/// not a database error.
fn parse_ip(l: &Literal, f: &Resolved) -> Result<(String, bool), SrqlError> {
    let t = l.text.trim();
    let err = || bad_value(format!("`{t}` is not an IP address or CIDR network (field `{}`)", f.name), l.span);
    match t.split_once('/') {
        Some((addr, prefix)) => {
            let addr: IpAddr = addr.parse().map_err(|_| err())?;
            let prefix: u8 = prefix.parse().map_err(|_| err())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(bad_value(format!("prefix /{prefix} is longer than {max} bits"), l.span));
            }
            Ok((format!("{addr}/{prefix}"), true))
        }
        None => t.parse::<IpAddr>().map(|a| (a.to_string(), false)).map_err(|_| err()),
    }
}

fn ip(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    let one = |l: &Literal, params: &mut Params| -> Result<String, SrqlError> {
        // ServiceRadar's address range `10.0.0.10-10.0.0.50`.
        if let Some((a, b)) =
            l.text.split_once('-').filter(|(a, b)| a.parse::<IpAddr>().is_ok() && b.parse::<IpAddr>().is_ok())
        {
            let (a, b) = (params.add(Param::Text(a.to_string())), params.add(Param::Text(b.to_string())));
            return Ok(format!("{} BETWEEN {a}::inet AND {b}::inet", f.sql));
        }
        if has_wildcard(l) {
            return Ok(format!(
                "host({}) LIKE {}",
                f.sql,
                params.add(Param::Text(like_pattern(&l.text, l.quoted, false)))
            ));
        }
        let (text, network) = parse_ip(l, f)?;
        let p = params.add(Param::Text(text));
        Ok(if network { format!("{} <<= {p}::inet", f.sql) } else { format!("{} = {p}::inet", f.sql) })
    };
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => exists(f),
        Value::Literal(l) => one(l, params)?,
        Value::List(items, _) => ip_list(items, f, params, one)?,
        Value::Bracket(items, span) => ip_list(&bracket_items(items, *span)?, f, params, one)?,
        Value::Compare(op, l, _) => {
            let (text, _) = parse_ip(l, f)?;
            format!("{} {} {}::inet", f.sql, sql_op(*op), params.add(Param::Text(text)))
        }
        Value::Range(a, b, _) => {
            let (a, b) = (parse_ip(a, f)?.0, parse_ip(b, f)?.0);
            format!("{} BETWEEN {}::inet AND {}::inet", f.sql, params.add(Param::Text(a)), params.add(Param::Text(b)))
        }
        Value::Regex(r, _) => format!("host({}) ~ {}", f.sql, params.add(Param::Text(r.clone()))),
    })
}

fn ip_list(
    items: &[Literal],
    f: &Resolved,
    params: &mut Params,
    one: impl Fn(&Literal, &mut Params) -> Result<String, SrqlError>,
) -> Result<String, SrqlError> {
    let all_plain = items.iter().all(|l| !has_wildcard(l) && !l.text.contains(['/', '-']));
    if all_plain {
        let addrs = items.iter().map(|l| parse_ip(l, f).map(|(t, _)| t)).collect::<Result<Vec<_>, _>>()?;
        return Ok(format!("{} = ANY({}::inet[])", f.sql, params.add(Param::TextArray(addrs))));
    }
    Ok(any_of(items.iter().map(|l| one(l, params)).collect::<Result<_, _>>()?))
}

fn parse_uuid(l: &Literal, f: &Resolved) -> Result<String, SrqlError> {
    let t = l.text.trim().to_ascii_lowercase();
    let hex: String = t.chars().filter(|c| *c != '-').collect();
    let dashes_ok = t.len() == 32 || (t.len() == 36 && [8, 13, 18, 23].iter().all(|&i| t.as_bytes()[i] == b'-'));
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && dashes_ok {
        Ok(t)
    } else {
        Err(bad_value(format!("`{}` is not a UUID (field `{}`)", l.text, f.name), l.span))
    }
}

fn uuid(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    Ok(match v {
        Value::Exists(_) => exists(f),
        Value::Literal(l) => format!("{} = {}::uuid", f.sql, params.add(Param::Text(parse_uuid(l, f)?))),
        Value::List(items, _) => {
            let ids = items.iter().map(|l| parse_uuid(l, f)).collect::<Result<Vec<_>, _>>()?;
            format!("{} = ANY({}::uuid[])", f.sql, params.add(Param::TextArray(ids)))
        }
        other => return Err(bad_op(f, kind_of(other), other.span())),
    })
}

fn enum_value(l: &Literal, f: &Resolved, labels: &[(&str, i64)]) -> Result<i64, SrqlError> {
    if let Ok(i) = l.text.trim().parse::<i64>() {
        if labels.iter().any(|(_, v)| *v == i) {
            return Ok(i);
        }
    }
    labels.iter().find(|(n, _)| n.eq_ignore_ascii_case(l.text.trim())).map(|(_, v)| *v).ok_or_else(|| {
        // The canonical name of each value: the first listed for its id.
        let mut names: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for (n, id) in labels {
            if !seen.contains(id) {
                seen.push(*id);
                names.push((*n).to_string());
            }
        }
        bad_value(format!("`{}` is not a {} value", l.text, f.name), l.span)
            .expected(names.iter().map(|n| format!("`{n}`")))
            .suggest(crate::suggest::nearest(&l.text, labels.iter().map(|(n, _)| *n)))
    })
}

fn enumeration(
    v: &Value,
    f: &Resolved,
    labels: &'static [(&'static str, i64)],
    params: &mut Params,
) -> Result<String, SrqlError> {
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => exists(f),
        Value::Literal(l) => format!("{} = {}", f.sql, params.add(Param::Int(enum_value(l, f, labels)?))),
        Value::List(items, _) => {
            let ids = items.iter().map(|l| enum_value(l, f, labels)).collect::<Result<Vec<_>, _>>()?;
            format!("{} = ANY({})", f.sql, params.add(Param::IntArray(ids)))
        }
        Value::Bracket(items, span) => {
            let ids =
                bracket_items(items, *span)?.iter().map(|l| enum_value(l, f, labels)).collect::<Result<Vec<_>, _>>()?;
            format!("{} = ANY({})", f.sql, params.add(Param::IntArray(ids)))
        }
        Value::Compare(op, l, _) => {
            format!("{} {} {}", f.sql, sql_op(*op), params.add(Param::Int(enum_value(l, f, labels)?)))
        }
        Value::Range(a, b, _) => {
            let (a, b) = (enum_value(a, f, labels)?, enum_value(b, f, labels)?);
            format!("{} BETWEEN {} AND {}", f.sql, params.add(Param::Int(a)), params.add(Param::Int(b)))
        }
        Value::Regex(_, s) => return Err(bad_op(f, "a regex", *s)),
    })
}

fn json_root(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    Ok(match v {
        Value::Exists(_) => exists(f),
        Value::Literal(l) => format!(
            "{}::text ILIKE {}",
            f.sql,
            params.add(Param::Text(like_pattern(&l.text, l.quoted, !has_wildcard(l))))
        ),
        other => {
            return Err(bad_op(f, kind_of(other), other.span())
                .expected([format!("`{}.<key>:value` to match a key inside it", f.name)]))
        }
    })
}

fn json_path_condition(v: &Value, f: &Resolved, params: &mut Params) -> Result<String, SrqlError> {
    let path = f.json_path.clone().unwrap_or_default();
    let text = f.text_expr();
    Ok(match v {
        Value::Field(_, s) => return Err(field_ref_elsewhere(*s)),
        Value::Exists(_) => format!("{} #> {path} IS NOT NULL", f.sql),
        Value::Literal(l) if has_wildcard(l) => {
            format!("{text} ILIKE {}", params.add(Param::Text(like_pattern(&l.text, l.quoted, false))))
        }
        Value::Literal(l) => format!("{text} = {}", params.add(Param::Text(l.text.clone()))),
        Value::List(items, _) => {
            format!("{text} = ANY({})", params.add(Param::TextArray(items.iter().map(|l| l.text.clone()).collect())))
        }
        Value::Bracket(items, span) => {
            let items = bracket_items(items, *span)?;
            format!("{text} = ANY({})", params.add(Param::TextArray(items.iter().map(|l| l.text.clone()).collect())))
        }
        Value::Compare(op, l, _) => match l.text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => {
                format!("{} {} {}", f.json_number_expr(&path), sql_op(*op), params.add(Param::Float(x)))
            }
            _ => format!("{text} {} {}", sql_op(*op), params.add(Param::Text(l.text.clone()))),
        },
        Value::Range(a, b, _) => match (a.text.trim().parse::<f64>(), b.text.trim().parse::<f64>()) {
            (Ok(x), Ok(y)) => format!(
                "{} BETWEEN {} AND {}",
                f.json_number_expr(&path),
                params.add(Param::Float(x)),
                params.add(Param::Float(y))
            ),
            _ => format!(
                "{text} BETWEEN {} AND {}",
                params.add(Param::Text(a.text.clone())),
                params.add(Param::Text(b.text.clone()))
            ),
        },
        Value::Regex(r, _) => format!("{text} ~ {}", params.add(Param::Text(r.clone()))),
    })
}
