//! Trivy JSON reports (`trivy … --format json`, schema version 2): one vuln
//! event per vulnerability found in each target, naming the package, the
//! installed and fixed versions.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use vigil_event::{Event, Kind, Severity};

use super::ParseError;

fn severity(s: &str) -> Severity {
    match s.to_ascii_uppercase().as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// Parses a whole report. `now` stamps reports that carry no `CreatedAt`.
pub fn parse_report(text: &str, now: DateTime<Utc>) -> Result<Vec<Event>, ParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ParseError::new(1, format!("invalid JSON: {e}")))?;
    let results = v
        .get("Results")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::new(1, "not a Trivy report: no `Results`"))?;
    let host = v.get("ArtifactName").and_then(Value::as_str).map(str::to_string);
    let time = v
        .get("CreatedAt")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let mut events = Vec::new();
    for r in results {
        let target = r.get("Target").and_then(Value::as_str).unwrap_or_default();
        for vuln in r.get("Vulnerabilities").and_then(Value::as_array).into_iter().flatten() {
            let s = |k: &str| vuln.get(k).and_then(Value::as_str).unwrap_or_default();
            let (id, pkg, installed, fixed) =
                (s("VulnerabilityID"), s("PkgName"), s("InstalledVersion"), s("FixedVersion"));
            let identity = format!("{}|{target}|{id}|{pkg}|{installed}", host.as_deref().unwrap_or(""));
            let mut e = Event::new(Kind::Vuln, "trivy", time, identity.as_bytes());
            e.host = host.clone();
            e.severity = severity(s("Severity"));
            e.message = if fixed.is_empty() {
                format!("{id} in {pkg} {installed} (no fix yet)")
            } else {
                format!("{id} in {pkg} {installed} (fixed in {fixed})")
            };
            e.raw = json!({"target": target, "class": r.get("Class"), "type": r.get("Type"), "vulnerability": vuln});
            events.push(e);
        }
    }
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Shaped like a Trivy 0.5x `--format json` report (schema version 2).
    const REPORT: &str = r#"{
  "SchemaVersion": 2,
  "CreatedAt": "2026-01-15T09:00:00Z",
  "ArtifactName": "web-01",
  "ArtifactType": "filesystem",
  "Results": [
    {
      "Target": "web-01 (debian 12.5)",
      "Class": "os-pkgs",
      "Type": "debian",
      "Vulnerabilities": [
        {"VulnerabilityID": "CVE-2024-6387", "PkgName": "openssh-server", "InstalledVersion": "1:9.2p1-2", "FixedVersion": "1:9.2p1-2+deb12u3", "Severity": "CRITICAL", "Title": "openssh: regreSSHion"},
        {"VulnerabilityID": "CVE-2023-38545", "PkgName": "curl", "InstalledVersion": "7.88.1-10", "FixedVersion": "", "Severity": "HIGH"}
      ]
    },
    {"Target": "app/package-lock.json", "Class": "lang-pkgs", "Type": "npm"}
  ]
}"#;

    #[test]
    fn each_vulnerability_is_an_event() {
        let events = parse_report(REPORT, Utc::now()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].kind, events[0].severity), (Kind::Vuln, Severity::Critical));
        assert_eq!(events[0].host.as_deref(), Some("web-01"));
        assert!(events[0].message.contains("fixed in 1:9.2p1-2+deb12u3"), "{}", events[0].message);
        assert!(events[1].message.contains("no fix yet"));
        assert_eq!(events[0].raw["vulnerability"]["PkgName"], "openssh-server");
        // A re-import of the same report gives the same ids.
        assert_eq!(parse_report(REPORT, Utc::now()).unwrap()[0].id, events[0].id);
        assert!(parse_report("{}", Utc::now()).unwrap_err().reason.contains("Results"));
    }
}
