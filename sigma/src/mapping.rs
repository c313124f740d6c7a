//! The Sigma → Vigil mapping: per logsource, a base SRQL filter and field
//! maps (`sigma/mapping.yaml`, embedded; a user file replaces it).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::SigmaError;

/// The built-in mapping's text (`sigma/mapping.yaml`).
pub const BUILTIN_MAPPING: &str = include_str!("../mapping.yaml");

/// Where a Sigma field goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An SRQL field (`process_path`, `raw.Event.EventData.ParentImage`).
    Field(String),
    /// The mapping says Vigil has no equivalent.
    Unmapped,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductDefaults {
    #[serde(default)]
    fields: BTreeMap<String, Option<String>>,
    #[serde(default)]
    fallback: Option<String>,
}

/// One logsource entry of the mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsourceMap {
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    /// SRQL ANDed in front of every hunt of this logsource.
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, Option<String>>,
    #[serde(default)]
    fallback: Option<String>,
    /// When set, rules of this logsource fail with this reason.
    #[serde(default)]
    pub unsupported: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    products: BTreeMap<String, ProductDefaults>,
    #[serde(default)]
    logsources: Vec<LogsourceMap>,
}

/// A parsed mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    file: MappingFile,
}

/// A rule's logsource (lower-cased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logsource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

impl std::fmt::Display for Logsource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [("product", &self.product), ("category", &self.category), ("service", &self.service)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}:{v}")))
            .collect();
        if parts.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// The mapping resolved for one logsource.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    pub logsource: Logsource,
    pub filter: Option<&'a str>,
    entry: &'a LogsourceMap,
    product: Option<&'a ProductDefaults>,
}

impl Mapping {
    /// The built-in mapping.
    pub fn builtin() -> Mapping {
        // The embedded file is checked by a unit test; a broken edit of it
        // would fail there, so an empty mapping here is unreachable in practice.
        Mapping::from_yaml(BUILTIN_MAPPING).unwrap_or(Mapping { file: MappingFile::default() })
    }

    /// Parses a mapping file.
    pub fn from_yaml(text: &str) -> Result<Mapping, SigmaError> {
        let file: MappingFile =
            serde_yaml::from_str(text).map_err(|e| SigmaError::BadMapping { message: e.to_string() })?;
        for l in &file.logsources {
            if l.product.is_none() && l.category.is_none() && l.service.is_none() {
                return Err(SigmaError::BadMapping {
                    message: "a logsource entry needs a product, category or service".into(),
                });
            }
        }
        Ok(Mapping { file })
    }

    /// The most specific entry matching `ls`, or why none does.
    pub fn resolve(&self, ls: &Logsource) -> Result<Resolved<'_>, SigmaError> {
        let eq = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
        };
        let best = self
            .file
            .logsources
            .iter()
            .filter(|e| eq(&e.product, &ls.product) && eq(&e.category, &ls.category) && eq(&e.service, &ls.service))
            .max_by_key(|e| {
                // Category and service weigh more than product; first entry wins ties.
                (e.category.is_some() as u8 + e.service.is_some() as u8) * 2 + e.product.is_some() as u8
            });
        // max_by_key returns the last max; prefer the first listed instead.
        let best = best.and_then(|b| {
            let key = |e: &LogsourceMap| {
                (e.category.is_some() as u8 + e.service.is_some() as u8) * 2 + e.product.is_some() as u8
            };
            self.file.logsources.iter().find(|e| {
                key(e) == key(b)
                    && eq(&e.product, &ls.product)
                    && eq(&e.category, &ls.category)
                    && eq(&e.service, &ls.service)
            })
        });
        let Some(entry) = best else {
            return Err(SigmaError::UnsupportedLogsource {
                logsource: ls.to_string(),
                reason: "the mapping has no entry for it".into(),
            });
        };
        // A product-only entry must not swallow a rule whose category/service
        // the mapping does not know (that would drop the rule's real scope).
        let specific = entry.category.is_some() || entry.service.is_some();
        if !specific && (ls.category.is_some() || ls.service.is_some()) {
            return Err(SigmaError::UnsupportedLogsource {
                logsource: ls.to_string(),
                reason: "the mapping has no entry for this category/service".into(),
            });
        }
        if let Some(reason) = &entry.unsupported {
            return Err(SigmaError::UnsupportedLogsource { logsource: ls.to_string(), reason: reason.clone() });
        }
        let product = ls
            .product
            .as_ref()
            .and_then(|p| self.file.products.iter().find(|(k, _)| k.eq_ignore_ascii_case(p)).map(|(_, v)| v));
        Ok(Resolved { logsource: ls.clone(), filter: entry.filter.as_deref(), entry, product })
    }
}

impl Resolved<'_> {
    /// Where the Sigma field `name` goes, or `None` when nothing maps it.
    pub fn field(&self, name: &str) -> Option<Target> {
        let lookup = |m: &BTreeMap<String, Option<String>>| {
            m.get(name).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)).cloned()
        };
        if let Some(t) = lookup(&self.entry.fields).or_else(|| self.product.and_then(|p| lookup(&p.fields))) {
            return Some(t.map(Target::Field).unwrap_or(Target::Unmapped));
        }
        let fallback = self.entry.fallback.as_deref().or(self.product.and_then(|p| p.fallback.as_deref()))?;
        Some(Target::Field(fallback.replace("{field}", name)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ls(p: &str, c: Option<&str>, s: Option<&str>) -> Logsource {
        Logsource { product: Some(p.into()), category: c.map(Into::into), service: s.map(Into::into) }
    }

    #[test]
    fn builtin_parses_and_resolves() {
        let m = Mapping::from_yaml(BUILTIN_MAPPING).unwrap();
        let r = m.resolve(&ls("windows", Some("process_creation"), None)).unwrap();
        assert!(r.filter.unwrap().contains("EventID:1"));
        assert_eq!(r.field("Image"), Some(Target::Field("process_path".into())));
        assert_eq!(r.field("ParentImage"), Some(Target::Field("raw.Event.EventData.ParentImage".into())));
        assert_eq!(r.field("TargetFilename"), Some(Target::Field("raw.Event.EventData.TargetFilename".into())));
        let l = m.resolve(&ls("linux", Some("process_creation"), None)).unwrap();
        assert_eq!(l.field("ParentImage"), Some(Target::Unmapped));
        assert_eq!(l.field("Whatever"), None);
        assert!(matches!(
            m.resolve(&ls("linux", Some("file_event"), None)),
            Err(SigmaError::UnsupportedLogsource { .. })
        ));
        assert!(matches!(
            m.resolve(&ls("linux", Some("nonsense"), None)),
            Err(SigmaError::UnsupportedLogsource { .. })
        ));
        assert!(m.resolve(&ls("linux", None, None)).is_ok());
        assert!(matches!(m.resolve(&ls("macos", None, None)), Err(SigmaError::UnsupportedLogsource { .. })));
    }

    #[test]
    fn every_builtin_filter_compiles() {
        let m = Mapping::from_yaml(BUILTIN_MAPPING).unwrap();
        for e in &m.file.logsources {
            if let Some(f) = &e.filter {
                vigil_srql::compile(f, &vigil_srql::Config::default(), chrono::Utc::now())
                    .unwrap_or_else(|err| panic!("{f}: {err}"));
            }
        }
    }
}
