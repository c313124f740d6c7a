//! Falco JSON alerts (`json_output: true`): one alert per line.

use chrono::{DateTime, Utc};
use serde_json::Value;
use vigil_event::{Event, Kind, Process, Severity};

use super::ParseError;

/// Falco priorities (syslog levels) to OCSF severity.
fn severity(priority: &str) -> Severity {
    match priority.to_ascii_lowercase().as_str() {
        "emergency" => Severity::Fatal,
        "alert" | "critical" => Severity::Critical,
        "error" => Severity::High,
        "warning" => Severity::Medium,
        "notice" => Severity::Low,
        "informational" | "info" | "debug" => Severity::Info,
        _ => Severity::Unknown,
    }
}

pub fn parse_line(line: &str, line_no: usize) -> Result<Event, ParseError> {
    let v: Value = serde_json::from_str(line).map_err(|e| ParseError::new(line_no, format!("invalid JSON: {e}")))?;
    let time = v
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ParseError::new(line_no, "field `time` is missing or not RFC 3339"))?;
    let rule = v.get("rule").and_then(Value::as_str).unwrap_or_default();
    let fields = v.get("output_fields").cloned().unwrap_or(Value::Null);
    let f = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
    let mut e = Event::new(Kind::Alert, "falco", time, line.as_bytes());
    e.severity = severity(v.get("priority").and_then(Value::as_str).unwrap_or_default());
    e.activity_id = Some(1);
    e.message = v.get("output").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| rule.to_string());
    e.host = v.get("hostname").and_then(Value::as_str).map(str::to_string);
    e.user = f("user.name");
    let pid = fields.get("proc.pid").and_then(Value::as_i64).and_then(|p| i32::try_from(p).ok());
    let ppid = fields.get("proc.ppid").and_then(Value::as_i64).and_then(|p| i32::try_from(p).ok());
    // Rules template only the fields they name: some alerts carry just
    // `proc.cmdline` (no pid, no name), and that is still the process.
    let process = Process { pid, ppid, name: f("proc.name"), path: f("proc.exepath"), cmdline: f("proc.cmdline") };
    if process != Process::default() {
        e.process = Some(process);
    }
    e.raw = v;
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Shaped like Falco's documented JSON output for its stock rule.
    const SAMPLE: &str = r#"{"hostname":"web-01","output":"10:00:00.000000000: Notice A shell was spawned in a container with an attached terminal (evt_type=execve user=root user_uid=0 process=bash proc_exepath=/usr/bin/bash parent=runc command=bash terminal=34816 container_id=4f1e9e4a8a7c)","priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["T1059","container","mitre_execution","shell"],"time":"2026-01-15T10:00:00.000000000Z","output_fields":{"container.id":"4f1e9e4a8a7c","evt.type":"execve","proc.cmdline":"bash","proc.exepath":"/usr/bin/bash","proc.name":"bash","proc.pid":4242,"proc.pname":"runc","user.name":"root","user.uid":0}}"#;

    #[test]
    fn falco_alerts_become_alert_events() {
        let e = parse_line(SAMPLE, 1).unwrap();
        assert_eq!((e.kind, e.source.as_str(), e.severity), (Kind::Alert, "falco", Severity::Low));
        assert_eq!(e.host.as_deref(), Some("web-01"));
        assert_eq!(e.user.as_deref(), Some("root"));
        let p = e.process.unwrap();
        assert_eq!((p.pid, p.name.as_deref(), p.path.as_deref()), (Some(4242), Some("bash"), Some("/usr/bin/bash")));
        assert!(e.message.contains("shell was spawned"));
        assert_eq!(e.raw["rule"], "Terminal shell in container");
        assert!(parse_line(r#"{"rule":"x"}"#, 3).unwrap_err().reason.contains("time"));
    }

    #[test]
    fn a_command_line_alone_is_still_the_process() {
        // Falco's own test output: the rule templates only `proc.cmdline`.
        let line = r#"{"output":"2016-08-04T16:17:57.881781397+0000: Warning An open was seen (command=cat /dev/null)","priority":"Warning","rule":"open_from_cat","time":"2016-08-04T16:17:57.881781397Z", "output_fields": {"evt.time.iso8601":1470327477881781397,"proc.cmdline":"cat /dev/null"}}"#;
        let p = parse_line(line, 1).unwrap().process.unwrap();
        assert_eq!((p.cmdline.as_deref(), p.pid, p.name), (Some("cat /dev/null"), None, None));
        let bare = r#"{"output":"x","priority":"Notice","rule":"r","time":"2026-01-15T10:00:00Z","output_fields":{"fd.name":"/etc/shadow"}}"#;
        assert_eq!(parse_line(bare, 2).unwrap().process, None);
    }
}
