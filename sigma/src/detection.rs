//! Sigma `detection` → SRQL: selections (maps AND, lists OR), keyword
//! lists and the `condition` expression, through the logsource's field
//! mapping; rules too long for one query are split into parts.

use std::cell::{Cell, RefCell};

use serde_yaml::Value as Yaml;

use super::*;

/// A detection rule converted to its SRQL queries (before they become
/// hunts): one, or several parts when one query would exceed SRQL's size limit.
pub(crate) struct RuleQuery {
    pub(crate) queries: Vec<String>,
    pub(crate) logsource: Logsource,
}

/// The most hunts one rule may be split into.
const MAX_PARTS: usize = 16;

fn logsource_of(body: &serde_yaml::Mapping) -> Result<Logsource, SigmaError> {
    let Some(Yaml::Mapping(ls)) = get(body, "logsource") else {
        return Err(SigmaError::InvalidRule { message: "`logsource` is missing or not a map".into() });
    };
    let low = |k: &str| get_str(ls, k).map(|s| s.to_ascii_lowercase());
    Ok(Logsource { product: low("product"), category: low("category"), service: low("service") })
}

struct DetectionCtx<'a, 'm> {
    detection: &'a serde_yaml::Mapping,
    resolved: &'a mapping::Resolved<'m>,
    /// How many `not` enclose what is being converted.
    negated: usize,
    /// Field value lists in the order they are converted.
    seq: Cell<usize>,
    lists: RefCell<Vec<ListInfo>>,
    /// Converts only this slice of the values of list number `.0` (a rule
    /// too large for one query is split into several hunts).
    restrict: Option<(usize, std::ops::Range<usize>)>,
}

/// A field's value list as converted: how large it came out, and whether
/// splitting it across hunts keeps the rule's meaning (OR'd values, not
/// under `not`: the union of the parts' matches is the rule's).
#[derive(Debug, Clone)]
struct ListInfo {
    seq: usize,
    values: usize,
    bytes: usize,
    splittable: bool,
}

impl DetectionCtx<'_, '_> {
    fn names(&self) -> Vec<String> {
        self.detection
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| *k != "condition" && *k != "timeframe")
            .map(str::to_string)
            .collect()
    }

    fn named(&mut self, name: &str) -> Result<String, SigmaError> {
        let item = get(self.detection, name).ok_or_else(|| SigmaError::BadCondition {
            message: format!("the condition names `{name}`, which the detection does not define"),
        })?;
        self.item(item)
    }

    /// A detection item: a map (AND of fields), a list of maps (OR), or keywords.
    fn item(&self, v: &Yaml) -> Result<String, SigmaError> {
        match v {
            Yaml::Mapping(m) => self.map(m),
            Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) => {
                let parts: Vec<String> =
                    items.iter().filter_map(|i| i.as_mapping()).map(|m| self.map(m)).collect::<Result<_, _>>()?;
                or(parts)
            }
            Yaml::Sequence(items) => {
                if items.iter().any(|i| matches!(i, Yaml::Mapping(_) | Yaml::Sequence(_))) {
                    return Err(SigmaError::InvalidRule { message: "a list mixes maps and keywords".into() });
                }
                self.keywords(&[], items)
            }
            other => self.keywords(&[], std::slice::from_ref(other)),
        }
    }

    fn keywords(&self, modifiers: &[String], items: &[Yaml]) -> Result<String, SigmaError> {
        let (vals, flags) = value::apply("keywords", modifiers, items)?;
        let parts: Vec<String> = vals.iter().map(|v| emit::keyword(v, flags)).collect::<Result<_, _>>()?;
        if flags.all {
            and(parts)
        } else {
            or(parts)
        }
    }

    /// The Vigil field a Sigma field maps to under this rule's logsource.
    fn target(&self, field: &str) -> Result<String, SigmaError> {
        match self.resolved.field(field) {
            Some(Target::Field(f)) => Ok(f),
            Some(Target::Unmapped) => Err(SigmaError::UnmappedField {
                field: field.into(),
                message: format!("the mapping says {} has no Vigil equivalent", self.resolved.logsource),
            }),
            None => Err(SigmaError::UnmappedField {
                field: field.into(),
                message: format!("no field map or fallback for {}", self.resolved.logsource),
            }),
        }
    }

    /// `Field|fieldref: Other`: the field equals another field of the same
    /// event, SRQL's `field:$other` (exact, as pySigma compares references).
    /// Several names are alternatives; `all` makes them all required.
    fn field_refs(&self, field: &str, modifiers: &[String], items: &[Yaml]) -> Result<String, SigmaError> {
        if let Some(other) = modifiers.iter().find(|m| *m != "fieldref" && *m != "all") {
            return Err(SigmaError::UnsupportedModifier { modifier: format!("fieldref|{other}"), field: field.into() });
        }
        let target = self.target(field)?;
        let mut parts = Vec::new();
        for item in items {
            let Yaml::String(other) = item else {
                return Err(SigmaError::UnsupportedValue {
                    field: field.into(),
                    message: "`fieldref` takes field names".into(),
                });
            };
            parts.push(format!("{target}:${}", self.target(other)?));
        }
        if parts.is_empty() {
            return Err(SigmaError::UnsupportedValue {
                field: field.into(),
                message: "an empty list of values".into(),
            });
        }
        if modifiers.iter().any(|m| m == "all") {
            and(parts)
        } else {
            or(parts)
        }
    }

    fn map(&self, m: &serde_yaml::Mapping) -> Result<String, SigmaError> {
        let mut parts = Vec::new();
        for (k, v) in m {
            let key = match k {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                _ => return Err(SigmaError::InvalidRule { message: "a detection field name must be a string".into() }),
            };
            let mut segs = key.split('|');
            let field = segs.next().unwrap_or_default().to_string();
            let modifiers: Vec<String> = segs.map(str::to_string).collect();
            let items: Vec<Yaml> = match v {
                Yaml::Sequence(s) => s.clone(),
                other => vec![other.clone()],
            };
            if items.iter().any(|i| matches!(i, Yaml::Mapping(_) | Yaml::Sequence(_))) {
                return Err(SigmaError::UnsupportedValue {
                    field: field.clone(),
                    message: "values must be scalars".into(),
                });
            }
            if field.is_empty() {
                parts.push(self.keywords(&modifiers, &items)?);
                continue;
            }
            if modifiers.iter().any(|m| m == "fieldref") {
                parts.push(self.field_refs(&field, &modifiers, &items)?);
                continue;
            }
            // Modifiers are checked before the mapping so that a rule using
            // an unsupported one says so whatever its fields.
            let (vals, flags) = value::apply(&field, &modifiers, &items)?;
            let target = self.target(&field)?;
            let kind = emit::kind_of(&target, &field)?;
            let seq = self.seq.get();
            self.seq.set(seq + 1);
            let used = match &self.restrict {
                Some((s, r)) if *s == seq => vals.get(r.clone()).unwrap_or(&vals[..]),
                _ => &vals[..],
            };
            if let Some(t) = emit::values(&target, &field, kind, used, flags)? {
                self.lists.borrow_mut().push(ListInfo {
                    seq,
                    values: vals.len(),
                    bytes: t.len(),
                    splittable: self.negated == 0 && !flags.all && vals.len() > 1,
                });
                parts.push(t);
            }
        }
        and(parts)
    }

    fn cond(&mut self, c: &Cond) -> Result<String, SigmaError> {
        match c {
            Cond::Ref(n) => self.named(n),
            Cond::Not(inner) => {
                self.negated += 1;
                let r = self.cond(inner);
                self.negated -= 1;
                Ok(format!("NOT {}", paren(&r?)))
            }
            Cond::And(cs) => {
                let parts = cs.iter().map(|c| self.cond(c)).collect::<Result<Vec<_>, _>>()?;
                and(parts)
            }
            Cond::Or(cs) => {
                let parts = cs.iter().map(|c| self.cond(c)).collect::<Result<Vec<_>, _>>()?;
                or(parts)
            }
            Cond::OneOf(p) | Cond::AllOf(p) => {
                let names: Vec<String> = self
                    .names()
                    .into_iter()
                    .filter(|n| if p == "them" { !n.starts_with('_') } else { glob(p, n) })
                    .collect();
                if names.is_empty() {
                    return Err(SigmaError::BadCondition { message: format!("`of {p}` matches no detection") });
                }
                let parts = names.iter().map(|n| self.named(n)).collect::<Result<Vec<_>, _>>()?;
                if matches!(c, Cond::OneOf(_)) {
                    or(parts)
                } else {
                    and(parts)
                }
            }
        }
    }
}

fn paren(s: &str) -> String {
    if (s.starts_with('(') && s.ends_with(')') && balanced_inner(s)) || single_term(s) {
        s.to_string()
    } else {
        format!("({s})")
    }
}

/// The characters of an SRQL text outside quoted values and regexes, with
/// their byte offsets (escapes inside those are skipped with them).
fn outside_values(s: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let (mut in_quote, mut in_regex, mut prev, mut escaped) = (false, false, ' ', false);
    s.char_indices().filter(move |&(_, c)| {
        if escaped {
            escaped = false;
            prev = 'x';
            return false;
        }
        let was_outside = !in_quote && !in_regex;
        if c == '\\' && !was_outside {
            escaped = true;
        } else if in_quote {
            in_quote = c != '"';
        } else if in_regex {
            in_regex = c != '/';
        } else if c == '"' {
            in_quote = true;
        } else if c == '/' && prev == ':' {
            in_regex = true;
        }
        prev = c;
        was_outside && !in_quote && !in_regex && c != '"'
    })
}

/// Whether the outer parentheses of `s` enclose all of it (a `(a) OR (b)` does not).
fn balanced_inner(s: &str) -> bool {
    let mut depth = 0i32;
    for (i, c) in outside_values(s) {
        if c == '(' {
            depth += 1;
        } else if c == ')' {
            depth -= 1;
            if depth == 0 && i + 1 < s.len() {
                return false;
            }
        }
    }
    depth == 0
}

fn join(parts: Vec<String>, op: &str) -> Result<String, SigmaError> {
    let mut parts = parts;
    parts.dedup();
    match parts.len() {
        0 => Err(SigmaError::InvalidRule { message: "an empty selection".into() }),
        1 => Ok(parts.remove(0)),
        _ => Ok(format!("({})", parts.iter().map(|p| paren_if_op(p)).collect::<Vec<_>>().join(op))),
    }
}

/// Parenthesises a part that holds a top-level operator.
fn paren_if_op(p: &str) -> String {
    if p.starts_with("NOT ") || (p.starts_with('(') && balanced_inner(p)) || !p.contains(' ') {
        p.to_string()
    } else {
        // A single term with a quoted value or regex may contain spaces.
        if single_term(p) {
            p.to_string()
        } else {
            format!("({p})")
        }
    }
}

/// Whether `p` is one `field:value` term (its spaces inside quotes or a regex).
fn single_term(p: &str) -> bool {
    !outside_values(p).any(|(_, c)| c == ' ')
}

fn and(parts: Vec<String>) -> Result<String, SigmaError> {
    join(parts, " AND ")
}

fn or(parts: Vec<String>) -> Result<String, SigmaError> {
    join(parts, " OR ")
}

pub(crate) fn rule_query(body: &serde_yaml::Mapping, mapping: &Mapping) -> Result<RuleQuery, SigmaError> {
    let logsource = logsource_of(body)?;
    let Some(Yaml::Mapping(detection)) = get(body, "detection") else {
        return Err(SigmaError::InvalidRule { message: "`detection` is missing or not a map".into() });
    };
    let conditions: Vec<String> = match get(detection, "condition") {
        Some(Yaml::String(s)) => vec![s.clone()],
        Some(Yaml::Sequence(s)) => s.iter().filter_map(|c| c.as_str().map(str::to_string)).collect(),
        _ => return Err(SigmaError::InvalidRule { message: "`detection.condition` is missing".into() }),
    };
    if conditions.is_empty() {
        return Err(SigmaError::InvalidRule { message: "`detection.condition` is empty".into() });
    }
    let parsed = conditions.iter().map(|c| condition::parse(c)).collect::<Result<Vec<_>, _>>()?;
    let resolved = mapping.resolve(&logsource)?;
    let build = |restrict: Option<(usize, std::ops::Range<usize>)>| -> Result<(String, Vec<ListInfo>), SigmaError> {
        let mut ctx = DetectionCtx {
            detection,
            resolved: &resolved,
            negated: 0,
            seq: Cell::new(0),
            lists: RefCell::new(Vec::new()),
            restrict,
        };
        let parts = parsed.iter().map(|c| ctx.cond(c)).collect::<Result<Vec<_>, _>>()?;
        let expr = or(parts)?;
        let query = match resolved.filter {
            Some(f) => format!("({f}) AND {}", paren(&expr)),
            None => expr,
        };
        Ok((query, ctx.lists.into_inner()))
    };
    let (query, lists) = build(None)?;
    if query.len() <= vigil_srql::MAX_QUERY_BYTES {
        validate_query(&query)?;
        return Ok(RuleQuery { queries: vec![query], logsource });
    }
    // Too large for one query: split the largest OR'd value list across
    // several hunts (their matches together are the rule's).
    let too_big =
        || validate_query(&query).err().unwrap_or(SigmaError::TooComplex { message: "the query is too large".into() });
    let Some(big) = lists.iter().filter(|l| l.splittable).max_by_key(|l| l.bytes).cloned() else {
        return Err(too_big());
    };
    let other = query.len().saturating_sub(big.bytes);
    let budget = vigil_srql::MAX_QUERY_BYTES.saturating_sub(other + 64);
    if budget == 0 {
        return Err(too_big());
    }
    let mut n = big.bytes.div_ceil(budget).max(2);
    while n <= MAX_PARTS {
        let chunk = big.values.div_ceil(n);
        let mut queries = Vec::new();
        for start in (0..big.values).step_by(chunk.max(1)) {
            let (q, _) = build(Some((big.seq, start..(start + chunk).min(big.values))))?;
            if q.len() > vigil_srql::MAX_QUERY_BYTES {
                break;
            }
            queries.push(q);
        }
        if queries.len() == big.values.div_ceil(chunk.max(1)) {
            for q in &queries {
                validate_query(q)?;
            }
            return Ok(RuleQuery { queries, logsource });
        }
        n += 1;
    }
    Err(too_big())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parens() {
        assert!(balanced_inner("(a OR b)"));
        assert!(!balanced_inner("(a) OR (b)"));
        assert!(balanced_inner(r#"(a:"(" OR b)"#));
        assert!(single_term(r#"cmdline:"a b""#));
        assert!(single_term(r"cmdline:/a b/"));
        assert!(!single_term("a:b OR c:d"));
    }
}
