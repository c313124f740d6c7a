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
mod correlation;
mod detection;

use correlation::{correlation, Base};
use detection::rule_query;
pub mod emit;
mod error;
pub mod mapping;
pub mod value;

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
