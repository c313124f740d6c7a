//! Sigma rules stored as hunts, for `POST /api/v1/sigma/import` and
//! `vigil sigma import`: each hunt spec `vigil_sigma` converted is validated
//! like any other hunt and stored: created, or replacing the hunt with the
//! same Sigma id (and part, in its meta) or, failing that, the same name. An
//! import reports what it stored and what it refused, with a stable reason.
//! See docs/sigma.md.

use std::collections::BTreeMap;

use chrono::{TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use vigil_sigma::{Converted, Failure, Report};
use vigil_store::Pool;

use crate::hunt::{self, Hunt, HuntSpec, Validated};
use crate::{DeliveryConfig, HuntError, Settings};

/// One rule's outcome in an import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stored {
    /// The hunt's id (none on a dry run).
    #[schema(required)]
    pub id: Option<Uuid>,
    pub name: String,
    #[schema(required)]
    pub sigma_id: Option<String>,
    /// `created`, `replaced`, or `validated` (dry run).
    pub action: &'static str,
    pub correlation: bool,
    /// `[k, n]`: part k of a rule split into n hunts (too large for one query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<[usize; 2]>,
}

impl Stored {
    fn validated(c: &Converted) -> Stored {
        Stored {
            id: None,
            name: c.name.clone(),
            sigma_id: c.sigma_id.clone(),
            action: "validated",
            correlation: c.correlation,
            part: c.part,
        }
    }
}

/// A rule that did not become a hunt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refused {
    /// Where it came from (a path or `rules[i]`).
    pub rule: String,
    #[schema(required)]
    pub sigma_id: Option<String>,
    #[schema(required)]
    pub title: Option<String>,
    pub reason: String,
    pub message: String,
}

impl Refused {
    /// A rule that did not convert.
    fn unconverted(f: &Failure) -> Refused {
        Refused {
            rule: f.origin.clone(),
            sigma_id: f.sigma_id.clone(),
            title: f.title.clone(),
            reason: f.error.reason().to_string(),
            message: f.error.to_string(),
        }
    }

    /// A converted rule the hunts crate refused.
    fn unstored(c: &Converted, reason: &str, message: String) -> Refused {
        Refused {
            rule: c.origin.clone(),
            sigma_id: c.sigma_id.clone(),
            title: Some(c.title.clone()),
            reason: reason.to_string(),
            message,
        }
    }
}

/// An import in numbers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Rules converted (a rule split into parts counts once).
    pub converted: usize,
    /// Hunts stored (or validated, on a dry run).
    pub hunts: usize,
    pub failed: usize,
    /// Base rules used only inside correlations.
    pub referenced_only: usize,
    /// Failed rules per reason.
    pub by_reason: BTreeMap<String, usize>,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub converted: Vec<Stored>,
    pub failed: Vec<Refused>,
    /// Base rules used only inside correlations (`generate: false`).
    pub referenced_only: usize,
}

impl Outcome {
    /// The conversion alone, each converted rule `validated` without the hunts
    /// crate's validation: a dry run with no database.
    pub fn converted_only(report: &Report) -> Outcome {
        Outcome {
            converted: report.converted.iter().map(Stored::validated).collect(),
            failed: report.failed.iter().map(Refused::unconverted).collect(),
            referenced_only: report.referenced_only.len(),
        }
    }

    /// Rules converted: a rule split into parts counts once.
    pub fn rules_converted(&self) -> usize {
        self.converted.iter().filter(|c| c.part.is_none_or(|[k, _]| k == 1)).count()
    }

    pub fn summary(&self) -> ImportSummary {
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for f in &self.failed {
            *by_reason.entry(f.reason.clone()).or_insert(0) += 1;
        }
        ImportSummary {
            converted: self.rules_converted(),
            hunts: self.converted.len(),
            failed: self.failed.len(),
            referenced_only: self.referenced_only,
            by_reason,
        }
    }

    /// `converted N, failed M`, then the failures grouped by reason with their rules.
    pub fn render(&self) -> String {
        let mut out = format!("converted {}, failed {}", self.rules_converted(), self.failed.len());
        if self.rules_converted() != self.converted.len() {
            out.push_str(&format!(" ({} hunts: rules too large for one query are split)", self.converted.len()));
        }
        if self.referenced_only > 0 {
            out.push_str(&format!(" ({} base rules used only by correlations)", self.referenced_only));
        }
        out.push('\n');
        let mut groups: BTreeMap<&str, Vec<&Refused>> = BTreeMap::new();
        for f in &self.failed {
            groups.entry(f.reason.as_str()).or_default().push(f);
        }
        for (reason, fs) in groups {
            out.push_str(&format!("  {reason}: {}\n", fs.len()));
            for f in fs {
                out.push_str(&format!("    {}: {}\n", f.rule, f.message));
            }
        }
        out
    }
}

/// Validates every converted hunt with the hunts crate and (unless
/// `dry_run`) stores it, replacing a hunt of the same Sigma id or name. A
/// rule refused (by validation, or a name taken by another rule's hunt) is
/// reported in the outcome; an error is a failure of the database.
pub async fn store(
    pool: &Pool,
    report: Report,
    created_by: Option<&str>,
    settle: TimeDelta,
    dry_run: bool,
) -> Result<Outcome, HuntError> {
    let mut out = Outcome {
        failed: report.failed.iter().map(Refused::unconverted).collect(),
        referenced_only: report.referenced_only.len(),
        ..Outcome::default()
    };
    let existing = if dry_run { Vec::new() } else { hunt::list(pool).await? };
    for c in report.converted {
        let v = match validate(&c) {
            Ok(v) => v,
            Err(refused) => {
                out.failed.push(refused);
                continue;
            }
        };
        if dry_run {
            out.converted.push(Stored::validated(&c));
            continue;
        }
        let (h, action) = match same_hunt(&existing, &c) {
            Some(h) => (hunt::update(pool, h.id, &v).await, "replaced"),
            None => (hunt::create(pool, &v, created_by, Utc::now(), settle).await, "created"),
        };
        match h {
            Ok(h) => out.converted.push(Stored {
                id: Some(h.id),
                name: h.name,
                sigma_id: c.sigma_id,
                action,
                correlation: c.correlation,
                part: c.part,
            }),
            Err(HuntError::Conflict(m)) => out.failed.push(Refused::unstored(&c, "conflict", m)),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A converted rule's hunt spec, validated as any hunt's is.
fn validate(c: &Converted) -> Result<Validated, Refused> {
    let spec: HuntSpec = serde_json::from_value(c.spec.clone())
        .map_err(|e| Refused::unstored(c, "rejected_by_hunts", format!("the hunts crate refused the spec: {e}")))?;
    // Converted rules have no actions, so no outbound configuration applies.
    spec.validate(Settings::default().row_limit, &DeliveryConfig::default())
        .map_err(|e| Refused::unstored(c, "rejected_by_hunts", e.to_string()))
}

/// The hunt a converted rule replaces: the one of the same Sigma id and part,
/// else the one of the same name.
fn same_hunt<'a>(existing: &'a [Hunt], c: &Converted) -> Option<&'a Hunt> {
    let part = c.part.map(|[k, _]| k as u64);
    existing
        .iter()
        .find(|h| {
            c.sigma_id.is_some()
                && h.meta.pointer("/sigma/id").and_then(Value::as_str) == c.sigma_id.as_deref()
                && h.meta.pointer("/sigma/part/index").and_then(Value::as_u64) == part
        })
        .or_else(|| existing.iter().find(|h| h.name == c.name))
}
