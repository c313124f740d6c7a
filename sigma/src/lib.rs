//! Sigma rules → Vigil hunts.
//!
//! [`convert`] reads Sigma YAML (one or more documents: a rule, a rule
//! collection with `action: global`, a correlation rule and its base rules)
//! and turns each rule into a hunt spec (the JSON of `vigil_hunts::HuntSpec`)
//! whose query is SRQL. Field names and logsources go through a [`Mapping`]
//! (`sigma/mapping.yaml`, editable). Every generated query is compiled with
//! `vigil_srql` as a hunt run would, so a rule either converts to a query
//! that runs or fails with a named [`SigmaError`] (`reason()` is a stable
//! code). [`convert_all`] converts a batch of files in which correlation
//! rules may reference rules of other files, and reports what failed and why.
//!
//! Pure: no I/O. See docs/sigma.md.

mod condition;
pub mod emit;
mod error;
pub mod mapping;
pub mod value;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use chrono::{TimeDelta, Utc};
use serde::Serialize;
use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;

pub use condition::{glob, parse as parse_condition, Cond};
pub use error::{SigmaError, REASONS};
pub use mapping::{Logsource, Mapping, Target, BUILTIN_MAPPING};

/// The schedule of a converted hunt unless told otherwise.
pub const DEFAULT_SCHEDULE: &str = "*/5 * * * *";
const MAX_NAME: usize = 200;

/// Conversion options.
#[derive(Debug, Clone)]
pub struct Options {
    pub schedule: String,
    pub enabled: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { schedule: DEFAULT_SCHEDULE.into(), enabled: true }
    }
}

/// One input file (or request item).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Where it came from (a path), for reports.
    pub origin: &'a str,
    pub yaml: &'a str,
}

/// A converted rule.
#[derive(Debug, Clone, Serialize)]
pub struct Converted {
    pub origin: String,
    pub sigma_id: Option<String>,
    pub title: String,
    /// The hunt's name: the title and the first 8 characters of the id.
    pub name: String,
    pub query: String,
    /// The hunt spec (`vigil_hunts::HuntSpec` JSON).
    pub spec: Json,
    /// Whether this is a correlation rule's hunt.
    pub correlation: bool,
    /// `[k, n]` when the rule was too large for one query and became `n`
    /// hunts, each searching a part of its largest value list.
    pub part: Option<[usize; 2]>,
}

/// A rule that did not convert.
#[derive(Debug, Clone)]
pub struct Failure {
    pub origin: String,
    pub sigma_id: Option<String>,
    pub title: Option<String>,
    pub error: SigmaError,
}

/// What a batch conversion did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Hunts to create.
    pub converted: Vec<Converted>,
    /// Base rules of correlations that say `generate: false` (the default):
    /// converted, used inside the correlation, not hunts of their own.
    pub referenced_only: Vec<Converted>,
    pub failed: Vec<Failure>,
}

impl Report {
    /// Failures counted by reason code.
    pub fn by_reason(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for f in &self.failed {
            *m.entry(f.error.reason()).or_insert(0) += 1;
        }
        m
    }

    /// Failures counted by reason and what it names (`unsupported_modifier fieldref`).
    pub fn by_detail(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for f in &self.failed {
            *m.entry(f.error.detail_key()).or_insert(0) += 1;
        }
        m
    }

    /// Rules converted (a rule split into parts counts once).
    pub fn rules_converted(&self) -> usize {
        self.converted.iter().filter(|c| c.part.is_none_or(|[k, _]| k == 1)).count()
    }

    /// `converted N, failed M` and the failures grouped by reason, each with its rules.
    pub fn render(&self) -> String {
        let mut out = format!("converted {}, failed {}", self.rules_converted(), self.failed.len());
        if self.rules_converted() != self.converted.len() {
            out.push_str(&format!(" ({} hunts: rules too large for one query are split)", self.converted.len()));
        }
        if !self.referenced_only.is_empty() {
            out.push_str(&format!(" ({} more converted as correlation base rules only)", self.referenced_only.len()));
        }
        out.push('\n');
        let mut groups: BTreeMap<String, Vec<&Failure>> = BTreeMap::new();
        for f in &self.failed {
            groups.entry(f.error.detail_key()).or_default().push(f);
        }
        for (reason, fs) in groups {
            out.push_str(&format!("  {reason}: {}\n", fs.len()));
            for f in fs {
                out.push_str(&format!("    {}: {}\n", f.origin, f.error));
            }
        }
        out
    }
}

/// Converts every rule of `yaml` with the default options; the first rule
/// that does not convert is the error.
pub fn convert(yaml: &str, mapping: &Mapping) -> Result<Vec<Converted>, Box<Failure>> {
    let report = convert_all(&[Source { origin: "<input>", yaml }], mapping, &Options::default());
    if let Some(f) = report.failed.into_iter().next() {
        return Err(Box::new(f));
    }
    let mut out = report.converted;
    out.extend(report.referenced_only);
    Ok(out)
}

/// A parsed document: a detection rule or a correlation rule.
#[derive(Debug)]
struct Doc {
    origin: String,
    body: serde_yaml::Mapping,
}

fn get<'a>(m: &'a serde_yaml::Mapping, k: &str) -> Option<&'a Yaml> {
    m.get(Yaml::String(k.into()))
}

fn get_str(m: &serde_yaml::Mapping, k: &str) -> Option<String> {
    match get(m, k)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_list(v: Option<&Yaml>) -> Vec<String> {
    match v {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .filter_map(|x| match x {
                Yaml::String(s) => Some(s.clone()),
                Yaml::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn yaml_to_json(v: &Yaml) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Deep merge (`action: global` collections): `over` wins.
fn merge(base: &Yaml, over: &Yaml) -> Yaml {
    match (base, over) {
        (Yaml::Mapping(a), Yaml::Mapping(b)) => {
            let mut out = a.clone();
            for (k, v) in b {
                let merged = match a.get(k) {
                    Some(old) => merge(old, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Yaml::Mapping(out)
        }
        (_, o) => o.clone(),
    }
}

/// Splits a file into its documents, applying `action: global/reset/repeat`.
fn documents(src: &Source<'_>) -> Result<Vec<Doc>, SigmaError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    let mut global: Option<Yaml> = None;
    let mut previous: Option<Yaml> = None;
    for de in serde_yaml::Deserializer::from_str(src.yaml) {
        let v = Yaml::deserialize(de).map_err(|e| SigmaError::Yaml { message: e.to_string() })?;
        let Yaml::Mapping(m) = &v else {
            if v.is_null() {
                continue;
            }
            return Err(SigmaError::InvalidRule { message: "a rule document must be a map".into() });
        };
        match get_str(m, "action").as_deref() {
            Some("global") => {
                let mut g = m.clone();
                g.remove(Yaml::String("action".into()));
                global = Some(Yaml::Mapping(g));
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => {
                let mut r = m.clone();
                r.remove(Yaml::String("action".into()));
                let base = previous.clone().unwrap_or(Yaml::Mapping(Default::default()));
                let merged = merge(&base, &Yaml::Mapping(r));
                previous = Some(merged.clone());
                if let Yaml::Mapping(body) = merged {
                    out.push(Doc { origin: src.origin.to_string(), body });
                }
                continue;
            }
            _ => {}
        }
        let merged = match &global {
            Some(g) => merge(g, &v),
            None => v.clone(),
        };
        previous = Some(merged.clone());
        if let Yaml::Mapping(body) = merged {
            out.push(Doc { origin: src.origin.to_string(), body });
        }
    }
    Ok(out)
}

/// The Sigma metadata kept on the hunt (and so on its alerts).
fn sigma_meta(body: &serde_yaml::Mapping) -> Json {
    let mut meta = serde_json::Map::new();
    for k in ["id", "title", "name", "level", "status", "description", "author", "date", "modified", "license"] {
        if let Some(v) = get(body, k) {
            meta.insert(k.into(), yaml_to_json(v));
        }
    }
    for k in ["tags", "references", "falsepositives"] {
        meta.insert(k.into(), json!(str_list(get(body, k))));
    }
    meta.insert("logsource".into(), get(body, "logsource").map(yaml_to_json).unwrap_or(json!({})));
    if let Some(r) = get(body, "related") {
        meta.insert("related".into(), yaml_to_json(r));
    }
    // DRL 1.1: the rule's author and references stay with what is derived from it.
    meta.insert(
        "attribution".into(),
        json!("Sigma rule; Detection Rule License (DRL) 1.1: author and references kept as written"),
    );
    Json::Object(meta)
}

fn severity(level: Option<&str>) -> &'static str {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("informational") | Some("info") => "info",
        Some("low") => "low",
        Some("high") => "high",
        Some("critical") => "critical",
        _ => "medium",
    }
}

fn hunt_name(title: &str, id: Option<&str>) -> String {
    let suffix = id.map(|i| format!(" ({})", i.chars().take(8).collect::<String>())).unwrap_or_default();
    // Room for a ` [k/n]` part suffix too.
    let room = MAX_NAME.saturating_sub(suffix.chars().count() + 8);
    let t: String = title.trim().chars().take(room).collect();
    format!("{t}{suffix}")
}

fn description(body: &serde_yaml::Mapping) -> String {
    let mut d = get_str(body, "description").unwrap_or_default().trim().to_string();
    if let Some(a) = get_str(body, "author") {
        if !d.is_empty() {
            d.push_str("\n\n");
        }
        d.push_str(&format!("Sigma rule by {a} (DRL 1.1)."));
    }
    d
}

/// Compiles `query` as a hunt run would; the error names the SRQL code.
pub fn validate_query(query: &str) -> Result<(), SigmaError> {
    let now = Utc::now();
    let cfg = vigil_srql::Config {
        ingested_window: Some((now - TimeDelta::minutes(5), now)),
        default_limit: 10_000,
        max_limit: 10_000,
        text_index: false,
        ..vigil_srql::Config::default()
    };
    if query.len() > vigil_srql::MAX_QUERY_BYTES {
        return Err(SigmaError::TooComplex {
            message: format!("the query is {} bytes; SRQL's limit is {}", query.len(), vigil_srql::MAX_QUERY_BYTES),
        });
    }
    let c = vigil_srql::compile(query, &cfg, now)
        .map_err(|e| SigmaError::InvalidQuery { code: e.kind.code().to_string(), message: e.message.clone() })?;
    if c.visualization != vigil_srql::Visualization::Table {
        return Err(SigmaError::InvalidQuery {
            code: "not_supported".into(),
            message: "the query does not return events".into(),
        });
    }
    Ok(())
}

/// A detection rule converted to its SRQL queries (before they become
/// hunts): one, or several parts when one query would exceed SRQL's size limit.
struct RuleQuery {
    queries: Vec<String>,
    logsource: Logsource,
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

fn rule_query(body: &serde_yaml::Mapping, mapping: &Mapping) -> Result<RuleQuery, SigmaError> {
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

fn hunt_spec(body: &serde_yaml::Mapping, query: &str, opts: &Options) -> (String, Json) {
    let title = get_str(body, "title").unwrap_or_default();
    let id = get_str(body, "id");
    let name = hunt_name(&title, id.as_deref());
    let spec = json!({
        "name": name,
        "description": description(body),
        "query": query,
        "schedule": opts.schedule,
        "severity": severity(get_str(body, "level").as_deref()),
        "group_by": [],
        "enabled": opts.enabled,
        "meta": {"sigma": sigma_meta(body)},
    });
    (name, spec)
}

/// Converts a batch of files. Correlation rules may reference rules (by
/// `name` or `id`) of any file of the batch.
pub fn convert_all(sources: &[Source<'_>], mapping: &Mapping, opts: &Options) -> Report {
    let mut report = Report::default();
    let mut docs = Vec::new();
    for s in sources {
        match documents(s) {
            Ok(d) => docs.extend(d),
            Err(error) => {
                report.failed.push(Failure { origin: s.origin.to_string(), sigma_id: None, title: None, error })
            }
        }
    }
    // Detection rules first, so that correlations find their base rules.
    let mut bases: Vec<Base> = Vec::new();
    let mut correlations = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if get(&d.body, "correlation").is_some() {
            correlations.push(i);
            continue;
        }
        let title = get_str(&d.body, "title");
        let result = (|| {
            if title.as_deref().is_none_or(|t| t.trim().is_empty()) {
                return Err(SigmaError::InvalidRule { message: "`title` is missing".into() });
            }
            if get(&d.body, "detection").is_none() {
                return Err(SigmaError::UnsupportedRuleType {
                    message: "the document has neither `detection` nor `correlation` (a Sigma filter or meta rule?)"
                        .into(),
                });
            }
            let rq = rule_query(&d.body, mapping)?;
            let n = rq.queries.len();
            let out = rq
                .queries
                .into_iter()
                .enumerate()
                .map(|(k, query)| {
                    let (mut name, mut spec) = hunt_spec(&d.body, &query, opts);
                    let part = (n > 1).then_some([k + 1, n]);
                    if let Some([k, n]) = part {
                        name = format!("{name} [{k}/{n}]");
                        spec["name"] = json!(name);
                        spec["meta"]["sigma"]["part"] = json!({"index": k, "of": n});
                    }
                    Converted {
                        origin: d.origin.clone(),
                        sigma_id: get_str(&d.body, "id"),
                        title: title.clone().unwrap_or_default(),
                        name,
                        query,
                        spec,
                        correlation: false,
                        part,
                    }
                })
                .collect::<Vec<_>>();
            Ok((out, rq.logsource))
        })();
        match result {
            Ok((c, ls)) => bases.push((i, Ok(c), Some(ls))),
            Err(e) => bases.push((i, Err(e), None)),
        }
    }
    let mut hidden = vec![false; docs.len()];
    let mut corr_out = Vec::new();
    for &ci in &correlations {
        let d = &docs[ci];
        let result = correlation(d, &docs, &bases, mapping, opts);
        match result {
            Ok((c, refs, generate)) => {
                if !generate {
                    for r in refs {
                        hidden[r] = true;
                    }
                }
                corr_out.push(Ok(c));
            }
            Err(e) => corr_out.push(Err((ci, e))),
        }
    }
    for (i, r, _) in bases {
        let d = &docs[i];
        match r {
            Ok(c) if hidden[i] => report.referenced_only.extend(c),
            Ok(c) => report.converted.extend(c),
            Err(error) => report.failed.push(Failure {
                origin: d.origin.clone(),
                sigma_id: get_str(&d.body, "id"),
                title: get_str(&d.body, "title"),
                error,
            }),
        }
    }
    for r in corr_out {
        match r {
            Ok(c) => report.converted.push(c),
            Err((ci, error)) => report.failed.push(Failure {
                origin: docs[ci].origin.clone(),
                sigma_id: get_str(&docs[ci].body, "id"),
                title: get_str(&docs[ci].body, "title"),
                error,
            }),
        }
    }
    report
}

/// A detection rule's document index, its hunts (or why none) and its logsource.
type Base = (usize, Result<Vec<Converted>, SigmaError>, Option<Logsource>);
type Bases = [Base];

/// A correlation rule → a hunt with a `correlation` object; also which
/// documents it references and whether they generate hunts of their own.
fn correlation(
    d: &Doc,
    docs: &[Doc],
    bases: &Bases,
    mapping: &Mapping,
    opts: &Options,
) -> Result<(Converted, Vec<usize>, bool), SigmaError> {
    let bad = |m: String| SigmaError::BadCorrelation { message: m };
    let title =
        get_str(&d.body, "title").ok_or_else(|| SigmaError::InvalidRule { message: "`title` is missing".into() })?;
    let Some(Yaml::Mapping(c)) = get(&d.body, "correlation") else {
        return Err(bad("`correlation` must be a map".into()));
    };
    let kind = get_str(c, "type").ok_or_else(|| bad("`correlation.type` is missing".into()))?;
    if !matches!(kind.as_str(), "event_count" | "value_count" | "temporal" | "temporal_ordered") {
        return Err(SigmaError::UnsupportedCorrelation { kind });
    }
    let refs = str_list(get(c, "rules"));
    if refs.is_empty() {
        return Err(bad("`correlation.rules` names no rule".into()));
    }
    if !kind.starts_with("temporal") && refs.len() != 1 {
        return Err(bad(format!("{kind} over {} rules: Vigil counts the events of exactly one rule", refs.len())));
    }
    if kind.starts_with("temporal") && refs.len() < 2 {
        return Err(bad("a temporal correlation needs at least two rules".into()));
    }
    let generate = matches!(get(c, "generate").or_else(|| get(&d.body, "generate")), Some(Yaml::Bool(true)));
    // Resolve each reference to a converted base rule.
    let mut rules = Vec::new();
    let mut idx = Vec::new();
    let mut logsources = Vec::new();
    for r in &refs {
        let found = bases.iter().find(|(i, _, _)| {
            let b = &docs[*i].body;
            get_str(b, "name").as_deref() == Some(r.as_str()) || get_str(b, "id").as_deref() == Some(r.as_str())
        });
        let Some((i, res, ls)) = found else { return Err(SigmaError::UnknownRuleReference { name: r.clone() }) };
        match res {
            Ok(parts) if parts.len() != 1 => {
                return Err(SigmaError::BaseRuleFailed {
                    name: r.clone(),
                    message: format!("it is split into {} hunts (too large for one query)", parts.len()),
                })
            }
            Ok(parts) => {
                rules.push(json!({"name": r, "query": parts[0].query}));
                idx.push(*i);
                logsources.push(ls.clone().unwrap_or_default());
            }
            Err(e) => return Err(SigmaError::BaseRuleFailed { name: r.clone(), message: e.to_string() }),
        }
    }
    // Group-by fields (and value_count's field) through each base rule's mapping.
    let aliases = match get(c, "aliases") {
        Some(Yaml::Mapping(a)) => a.clone(),
        _ => Default::default(),
    };
    let map_field = |sigma: &str| -> Result<String, SigmaError> {
        let mut out: Option<String> = None;
        for (k, ls) in refs.iter().zip(&logsources) {
            let per_rule = match aliases.get(Yaml::String(sigma.into())) {
                Some(Yaml::Mapping(m)) => {
                    get_str(m, k).ok_or_else(|| bad(format!("alias `{sigma}` has no field for rule `{k}`")))?
                }
                _ => sigma.to_string(),
            };
            let resolved = mapping.resolve(ls)?;
            let target = match resolved.field(&per_rule) {
                Some(Target::Field(f)) => f,
                _ => {
                    return Err(SigmaError::UnmappedField {
                        field: per_rule,
                        message: format!("no mapping for {}", resolved.logsource),
                    })
                }
            };
            emit::kind_of(&target, &per_rule)?;
            if target.contains('.') {
                return Err(bad(format!(
                    "`{sigma}` maps to `{target}`; correlation hunts group and count by registry fields only"
                )));
            }
            match &out {
                Some(o) if *o != target => {
                    return Err(bad(format!("`{sigma}` maps to `{o}` and `{target}` in different base rules")))
                }
                _ => out = Some(target),
            }
        }
        out.ok_or_else(|| bad("no base rule".into()))
    };
    let group_by = str_list(get(c, "group-by")).iter().map(|g| map_field(g)).collect::<Result<Vec<_>, _>>()?;
    let timespan = get_str(c, "timespan")
        .or_else(|| get_str(c, "timeframe"))
        .ok_or_else(|| bad("`timespan` is missing".into()))?;
    let ok_span = timespan.len() > 1
        && timespan[..timespan.len() - 1].chars().all(|ch| ch.is_ascii_digit())
        && matches!(timespan.chars().last(), Some('s' | 'm' | 'h' | 'd'));
    if !ok_span {
        return Err(bad(format!("timespan `{timespan}` is not a number and s, m, h or d")));
    }
    let mut cond = serde_json::Map::new();
    let mut field = None;
    match get(c, "condition") {
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let k = k.as_str().unwrap_or_default();
                match k {
                    "gt" | "gte" | "lt" | "lte" | "eq" => {
                        let n = v
                            .as_u64()
                            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
                        let n = n.ok_or_else(|| bad(format!("condition `{k}` needs a whole number")))?;
                        cond.insert(k.into(), json!(n));
                    }
                    "field" => {
                        field = Some(map_field(
                            &v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| bad("condition `field` must be a field name".into()))?,
                        )?)
                    }
                    other => return Err(bad(format!("unknown condition operator `{other}`"))),
                }
            }
        }
        None if kind.starts_with("temporal") => {
            cond.insert("gte".into(), json!(refs.len()));
        }
        _ => return Err(bad("`condition` must be a map like {gte: 10}".into())),
    }
    if cond.is_empty() {
        return Err(bad("the condition has no operator".into()));
    }
    if cond.len() > 2 {
        return Err(bad("at most two condition operators (a range)".into()));
    }
    // Vigil's correlation hunts count upwards only: a run cannot tell a quiet
    // group from one whose events have not arrived yet.
    if let Some(op) = ["lt", "lte"].iter().find(|o| cond.contains_key(**o)) {
        return Err(bad(format!("an upper bound (`{op}`) is not supported by correlation hunts; use gt or gte")));
    }
    if let Some(eq) = cond.get("eq") {
        let ok = kind.starts_with("temporal") && eq.as_u64() == Some(refs.len() as u64);
        if !ok {
            return Err(bad("`eq` bounds a count from above, which correlation hunts do not support; use gte".into()));
        }
    }
    if kind == "value_count" && field.is_none() {
        return Err(bad("value_count needs `condition.field`".into()));
    }
    let first_query = rules[0]["query"].as_str().unwrap_or_default().to_string();
    let (name, mut spec) = hunt_spec(&d.body, &first_query, opts);
    let mut corr = json!({
        "type": kind,
        "rules": rules,
        "group_by": group_by,
        "timespan": timespan,
        "condition": cond,
    });
    if let Some(f) = field {
        corr["field"] = json!(f);
    }
    spec["correlation"] = corr;
    Ok((
        Converted {
            origin: d.origin.clone(),
            sigma_id: get_str(&d.body, "id"),
            title,
            name,
            query: first_query,
            spec,
            correlation: true,
            part: None,
        },
        idx,
        generate,
    ))
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
