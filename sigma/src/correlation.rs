//! Sigma correlation rules (`event_count`, `value_count`, `temporal`,
//! `temporal_ordered`) → a hunt whose `correlation` object names its base
//! rules' queries, group-by fields, timespan and condition.

use super::*;

/// A detection rule's document index, its hunts (or why none) and its logsource.
pub(crate) type Base = (usize, Result<Vec<Converted>, SigmaError>, Option<Logsource>);
type Bases = [Base];

/// A correlation rule → a hunt with a `correlation` object; also which
/// documents it references and whether they generate hunts of their own.
pub(crate) fn correlation(
    d: &Doc,
    docs: &[Doc],
    bases: &Bases,
    mapping: &Mapping,
    opts: &Options,
) -> Result<(Converted, Vec<usize>, bool), SigmaError> {
    let title =
        get_str(&d.body, "title").ok_or_else(|| SigmaError::InvalidRule { message: "`title` is missing".into() })?;
    let Some(Yaml::Mapping(c)) = get(&d.body, "correlation") else {
        return Err(bad("`correlation` must be a map".into()));
    };
    let kind = get_str(c, "type").ok_or_else(|| bad("`correlation.type` is missing".into()))?;
    let refs = str_list(get(c, "rules"));
    check_kind(&kind, &refs)?;
    let generate = matches!(get(c, "generate").or_else(|| get(&d.body, "generate")), Some(Yaml::Bool(true)));
    let referenced = resolve(&refs, docs, bases)?;
    let fields = Fields {
        refs: &refs,
        logsources: &referenced.logsources,
        aliases: match get(c, "aliases") {
            Some(Yaml::Mapping(a)) => a.clone(),
            _ => Default::default(),
        },
        mapping,
    };
    let group_by = str_list(get(c, "group-by")).iter().map(|g| fields.map(g)).collect::<Result<Vec<_>, _>>()?;
    let timespan = timespan(c)?;
    let (cond, field) = condition(c, &kind, refs.len(), &fields)?;
    let first_query = referenced.rules[0]["query"].as_str().unwrap_or_default().to_string();
    let (name, mut spec) = hunt_spec(&d.body, &first_query, opts);
    let mut corr = json!({
        "type": kind,
        "rules": referenced.rules,
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
        referenced.docs,
        generate,
    ))
}

fn bad(message: String) -> SigmaError {
    SigmaError::BadCorrelation { message }
}

/// The correlation types Vigil runs, each with the number of rules it takes.
fn check_kind(kind: &str, refs: &[String]) -> Result<(), SigmaError> {
    if !matches!(kind, "event_count" | "value_count" | "temporal" | "temporal_ordered") {
        return Err(SigmaError::UnsupportedCorrelation { kind: kind.to_string() });
    }
    if refs.is_empty() {
        return Err(bad("`correlation.rules` names no rule".into()));
    }
    if !kind.starts_with("temporal") && refs.len() != 1 {
        return Err(bad(format!("{kind} over {} rules: Vigil counts the events of exactly one rule", refs.len())));
    }
    if kind.starts_with("temporal") && refs.len() < 2 {
        return Err(bad("a temporal correlation needs at least two rules".into()));
    }
    Ok(())
}

/// The base rules a correlation references, in its order.
struct Referenced {
    /// `{"name", "query"}` of each, as the hunt's correlation lists them.
    rules: Vec<Json>,
    /// Their document indexes.
    docs: Vec<usize>,
    logsources: Vec<Logsource>,
}

/// Resolves each reference (a rule's `name` or `id`) to a base rule that
/// converted into exactly one hunt.
fn resolve(refs: &[String], docs: &[Doc], bases: &Bases) -> Result<Referenced, SigmaError> {
    let mut out = Referenced { rules: Vec::new(), docs: Vec::new(), logsources: Vec::new() };
    for r in refs {
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
                out.rules.push(json!({"name": r, "query": parts[0].query}));
                out.docs.push(*i);
                out.logsources.push(ls.clone().unwrap_or_default());
            }
            Err(e) => return Err(SigmaError::BaseRuleFailed { name: r.clone(), message: e.to_string() }),
        }
    }
    Ok(out)
}

/// Maps the correlation's Sigma field names (group-by, value_count's field)
/// through each base rule's logsource mapping and the rule's `aliases`.
struct Fields<'a> {
    refs: &'a [String],
    logsources: &'a [Logsource],
    aliases: serde_yaml::Mapping,
    mapping: &'a Mapping,
}

impl Fields<'_> {
    /// The one registry field `sigma` names in every base rule.
    fn map(&self, sigma: &str) -> Result<String, SigmaError> {
        let mut out: Option<String> = None;
        for (k, ls) in self.refs.iter().zip(self.logsources) {
            let per_rule = match self.aliases.get(Yaml::String(sigma.into())) {
                Some(Yaml::Mapping(m)) => {
                    get_str(m, k).ok_or_else(|| bad(format!("alias `{sigma}` has no field for rule `{k}`")))?
                }
                _ => sigma.to_string(),
            };
            let resolved = self.mapping.resolve(ls)?;
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
    }
}

/// `timespan` (or `timeframe`): a whole number and s, m, h or d.
fn timespan(c: &serde_yaml::Mapping) -> Result<String, SigmaError> {
    let timespan = get_str(c, "timespan")
        .or_else(|| get_str(c, "timeframe"))
        .ok_or_else(|| bad("`timespan` is missing".into()))?;
    let ok_span = timespan.len() > 1
        && timespan[..timespan.len() - 1].chars().all(|ch| ch.is_ascii_digit())
        && matches!(timespan.chars().last(), Some('s' | 'm' | 'h' | 'd'));
    if !ok_span {
        return Err(bad(format!("timespan `{timespan}` is not a number and s, m, h or d")));
    }
    Ok(timespan)
}

/// The condition's operators (temporal ones default to all rules) and
/// value_count's registry field.
fn condition(
    c: &serde_yaml::Mapping,
    kind: &str,
    n_rules: usize,
    fields: &Fields<'_>,
) -> Result<(serde_json::Map<String, Json>, Option<String>), SigmaError> {
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
                        field = Some(
                            fields.map(
                                &v.as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| bad("condition `field` must be a field name".into()))?,
                            )?,
                        )
                    }
                    other => return Err(bad(format!("unknown condition operator `{other}`"))),
                }
            }
        }
        None if kind.starts_with("temporal") => {
            cond.insert("gte".into(), json!(n_rules));
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
        let ok = kind.starts_with("temporal") && eq.as_u64() == Some(n_rules as u64);
        if !ok {
            return Err(bad("`eq` bounds a count from above, which correlation hunts do not support; use gte".into()));
        }
    }
    if kind == "value_count" && field.is_none() {
        return Err(bad("value_count needs `condition.field`".into()));
    }
    Ok((cond, field))
}
