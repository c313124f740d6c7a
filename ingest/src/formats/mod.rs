//! Input formats and their mapping to [`vigil_event::Event`].

pub mod evtx;
pub mod falco;
pub mod native;
pub mod suricata;
pub mod syslog;
pub mod trivy;
pub mod zeek;

use std::fmt;

/// A record that could not be turned into an event, and where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number in the input.
    pub line: usize,
    pub reason: String,
}

impl ParseError {
    pub fn new(line: usize, reason: impl Into<String>) -> Self {
        ParseError { line, reason: reason.into() }
    }
}

/// The formats Vigil reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Vigil's own event JSON, one per line.
    Native,
    /// Zeek `conn.log` as TSV with its `#fields` header.
    ZeekConnTsv,
    /// Zeek `conn.log` as JSON lines.
    ZeekConnJson,
    /// BSD syslog lines (`Mmm dd hh:mm:ss host prog[pid]: message`).
    Syslog,
    /// Falco JSON alerts, one per line.
    Falco,
    /// Suricata EVE JSON, one record per line.
    Suricata,
    /// A Trivy JSON report: one document, not lines.
    Trivy,
    /// Windows event records as JSON (`{"Event": {"System": …, "EventData": …}}`):
    /// one per line, or a document of several (pretty-printed or an array).
    Evtx,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Native => "vigil-json",
            Format::ZeekConnTsv => "zeek-conn-tsv",
            Format::ZeekConnJson => "zeek-conn-json",
            Format::Syslog => "syslog",
            Format::Falco => "falco-json",
            Format::Suricata => "suricata-eve",
            Format::Trivy => "trivy-json",
            Format::Evtx => "evtx-json",
        })
    }
}

impl Format {
    /// Guesses the format from the first non-empty line of a file.
    pub fn detect(first_line: &str) -> Option<Format> {
        let line = first_line.trim_start();
        if line.starts_with("#separator") || line.starts_with("#fields") {
            return Some(Format::ZeekConnTsv);
        }
        if line.starts_with('[') {
            // A JSON array: Windows event records (the only array format).
            return Some(Format::Evtx);
        }
        if line.starts_with('{') {
            if evtx::looks_like(line) {
                return Some(Format::Evtx);
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                // A pretty-printed document (Trivy) does not fit on its first line.
                return (line.trim() == "{" || line.contains("\"SchemaVersion\"")).then_some(Format::Trivy);
            };
            if v.get("id.orig_h").is_some() {
                return Some(Format::ZeekConnJson);
            }
            if v.get("output_fields").is_some() || (v.get("priority").is_some() && v.get("rule").is_some()) {
                return Some(Format::Falco);
            }
            if v.get("event_type").is_some() && v.get("timestamp").is_some() {
                return Some(Format::Suricata);
            }
            if v.get("Results").is_some() && v.get("SchemaVersion").is_some() {
                return Some(Format::Trivy);
            }
            return Some(Format::Native);
        }
        if syslog::parse_timestamp(line, 2000).is_some() {
            return Some(Format::Syslog);
        }
        None
    }
}
