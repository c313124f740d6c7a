//! Windows event logs rendered as JSON (the `evtx_dump -o json` shape that
//! SigmaHQ's regression data uses): `{"Event": {"System": {…}, "EventData": {…}}}`,
//! one object, several objects one after another (pretty-printed or one per
//! line), or an array of them.
//!
//! Each record becomes an event: time from `System.TimeCreated.SystemTime`,
//! `host` from `System.Computer`, `source` from the provider
//! (`Microsoft-Windows-Sysmon` → `sysmon`, `Microsoft-Windows-Security-Auditing`
//! → `security`, `Microsoft-Windows-Windows Defender` → `windefend`, else the
//! provider name without `Microsoft-Windows-`, lower-cased, spaces as `-`).
//! Sysmon 1 and Security 4688 are `process` events (path, command line, pid,
//! parent pid, user); Sysmon 3 is a `network` event (endpoints, protocol);
//! everything else is a `log` event (with its process when the record names an
//! `Image`, as most Sysmon events do). `raw` is the record with three changes that
//! let SRQL paths (letters, digits, `_`) reach every value: each
//! `#attributes` object is merged into its element
//! (`raw.Event.System.Provider.Name`, `raw.Event.System.TimeCreated.SystemTime`),
//! and spaces are dropped from `EventData` names (`Source Name` →
//! `raw.Event.EventData.SourceName`, as Sigma spells it), and the one element
//! of a `UserData` record (WMI, Task Scheduler …) is also given as `EventData`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use vigil_event::{Endpoint, Event, Kind, Process};

use super::ParseError;

/// Whether a document looks like evtx JSON (for format detection).
pub fn looks_like(text: &str) -> bool {
    let t = text.trim_start().trim_start_matches('[').trim_start();
    if !t.starts_with('{') {
        return false;
    }
    // The first key of a record is "Event".
    let after = t[1..].trim_start();
    after.starts_with("\"Event\"")
}

/// Parses a whole document into events; one bad record fails it with the
/// record's number (1-based).
pub fn parse_document(text: &str) -> Result<Vec<Event>, ParseError> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let v = v.map_err(|e| ParseError::new(e.line(), format!("invalid JSON: {e}")))?;
        match v {
            Value::Array(items) => {
                for item in items {
                    n += 1;
                    out.push(parse_record(item, n)?);
                }
            }
            other => {
                n += 1;
                out.push(parse_record(other, n)?);
            }
        }
    }
    Ok(out)
}

/// One line holding one record (NDJSON).
pub fn parse_line(line: &str, line_no: usize) -> Result<Event, ParseError> {
    let v: Value = serde_json::from_str(line).map_err(|e| ParseError::new(line_no, format!("invalid JSON: {e}")))?;
    parse_record(v, line_no)
}

/// Merges `#attributes` into their elements, recursively.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if k == "#attributes" {
                    if let Value::Object(attrs) = v {
                        for (ak, av) in attrs {
                            out.entry(ak).or_insert(av);
                        }
                    }
                } else {
                    out.insert(k, normalise(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        other => other,
    }
}

/// `Microsoft-Windows-Sysmon` → `sysmon` and so on.
pub fn source_name(provider: &str) -> String {
    match provider {
        "Microsoft-Windows-Sysmon" => "sysmon".into(),
        "Microsoft-Windows-Security-Auditing" => "security".into(),
        "Microsoft-Windows-Windows Defender" => "windefend".into(),
        "" => "windows".into(),
        p => p.strip_prefix("Microsoft-Windows-").unwrap_or(p).to_ascii_lowercase().replace(' ', "-"),
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc()))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() && s != "-" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number that Windows may write as decimal or `0x…` hex.
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(h) => i64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

fn file_name(path: &str) -> Option<String> {
    path.rsplit(['\\', '/']).next().filter(|s| !s.is_empty()).map(str::to_string)
}

fn parse_record(v: Value, n: usize) -> Result<Event, ParseError> {
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    let mut v = normalise(v);
    let err = |m: &str| ParseError::new(n, format!("record {n}: {m}"));
    let event = v.get_mut("Event").ok_or_else(|| err("no `Event` object"))?;
    // A `UserData` record (WMI, TaskScheduler …) holds one element whose
    // fields are what Sigma calls the event's fields: expose them as `EventData`.
    if event.get("EventData").is_none() {
        let inner = event.get("UserData").and_then(Value::as_object).and_then(|u| {
            let mut objs = u.values().filter(|v| v.is_object());
            match (objs.next(), objs.next()) {
                (Some(one), None) => Some(one.clone()),
                _ => None,
            }
        });
        if let (Some(inner), Some(obj)) = (inner, event.as_object_mut()) {
            obj.insert("EventData".into(), inner);
        }
    }
    // EventData names without spaces (Defender writes `Source Name`).
    if let Some(Value::Object(data)) = event.get_mut("EventData") {
        let renamed: Map<String, Value> =
            std::mem::take(data).into_iter().map(|(k, v)| (k.replace(' ', ""), v)).collect();
        *data = renamed;
    }
    // `EventID` written as {"#text": 4688, "Qualifiers": …}.
    if let Some(sys) = event.get_mut("System").and_then(Value::as_object_mut) {
        if let Some(id) = sys.get("EventID").and_then(|e| e.get("#text")).cloned() {
            sys.insert("EventID".into(), id);
        }
    }
    let event = &v["Event"];
    let sys = event.get("System").ok_or_else(|| err("no `Event.System`"))?;
    let data = event.get("EventData").cloned().unwrap_or(Value::Null);
    let time = sys
        .get("TimeCreated")
        .and_then(|t| t.get("SystemTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)
        .ok_or_else(|| err("`System.TimeCreated.SystemTime` is missing or not a time"))?;
    let provider = sys.get("Provider").and_then(|p| p.get("Name")).and_then(Value::as_str).unwrap_or_default();
    let source = source_name(provider);
    let event_id = number(sys.get("EventID"));
    let d = |k: &str| text(data.get(k));
    let kind = match (source.as_str(), event_id) {
        ("sysmon", Some(1)) | ("security", Some(4688)) => Kind::Process,
        ("sysmon", Some(3)) => Kind::Network,
        _ => Kind::Log,
    };
    let mut e = Event::new(kind, source.clone(), time, &bytes);
    e.host = text(sys.get("Computer"));
    let channel = text(sys.get("Channel")).unwrap_or_default();
    let summary = match event_id {
        Some(id) => format!("{provider} event {id}"),
        None => provider.to_string(),
    };
    match kind {
        Kind::Process => {
            let sysmon = source == "sysmon";
            let path = if sysmon { d("Image") } else { d("NewProcessName") };
            let pid = if sysmon { number(data.get("ProcessId")) } else { number(data.get("NewProcessId")) };
            let ppid = if sysmon { number(data.get("ParentProcessId")) } else { number(data.get("ProcessId")) };
            e.activity_id = Some(1);
            e.user = if sysmon {
                d("User")
            } else {
                match (d("TargetDomainName"), d("TargetUserName").or_else(|| d("SubjectUserName"))) {
                    (Some(dom), Some(u)) => Some(format!("{dom}\\{u}")),
                    (_, u) => u,
                }
            };
            let cmdline = d("CommandLine");
            e.process = Some(Process {
                pid: pid.and_then(|p| i32::try_from(p).ok()),
                ppid: ppid.and_then(|p| i32::try_from(p).ok()),
                name: path.as_deref().and_then(file_name),
                path: path.clone(),
                cmdline: cmdline.clone(),
            });
            e.message = format!(
                "{summary}: process {} started{}",
                path.as_deref().unwrap_or("?"),
                cmdline.map(|c| format!(": {c}")).unwrap_or_default()
            );
        }
        Kind::Network => {
            let ep = |ip: &str, port: &str| {
                d(ip)
                    .and_then(|i| i.parse().ok())
                    .map(|ip| Endpoint { ip, port: number(data.get(port)).and_then(|p| u16::try_from(p).ok()) })
            };
            e.src = ep("SourceIp", "SourcePort");
            e.dst = ep("DestinationIp", "DestinationPort");
            e.protocol = d("Protocol").map(|p| p.to_ascii_lowercase());
            e.activity_id = Some(1);
            e.user = d("User");
            let path = d("Image");
            e.process = path.clone().map(|p| Process {
                pid: number(data.get("ProcessId")).and_then(|p| i32::try_from(p).ok()),
                name: file_name(&p),
                path: Some(p),
                ..Process::default()
            });
            e.message = format!(
                "{summary}: {} connection {}:{} -> {}:{}",
                path.as_deref().unwrap_or("?"),
                d("SourceIp").unwrap_or_default(),
                d("SourcePort").unwrap_or_default(),
                d("DestinationIp").unwrap_or_default(),
                d("DestinationPort").unwrap_or_default()
            );
        }
        _ => {
            e.user = d("User").or_else(|| d("SubjectUserName"));
            // Sysmon names the acting process `Image` in most of its events.
            if let Some(path) = d("Image") {
                e.process = Some(Process {
                    pid: number(data.get("ProcessId")).and_then(|p| i32::try_from(p).ok()),
                    name: file_name(&path),
                    path: Some(path),
                    ..Process::default()
                });
            }
            e.message = if channel.is_empty() { summary } else { format!("{summary} ({channel})") };
        }
    }
    e.raw = v;
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SYSMON_1: &str = r##"{
  "Event": {
    "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
    "System": {
      "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
      "EventID": 1,
      "TimeCreated": {"#attributes": {"SystemTime": "2025-11-27T07:40:10.165324Z"}},
      "Channel": "Microsoft-Windows-Sysmon/Operational",
      "Computer": "ws-01"
    },
    "EventData": {
      "Image": "C:\\Windows\\System32\\cmd.exe",
      "CommandLine": "cmd.exe /c whoami",
      "ProcessId": 4460,
      "ParentProcessId": 1200,
      "ParentImage": "C:\\Windows\\explorer.exe",
      "User": "WS-01\\alice"
    }
  }
}"##;

    #[test]
    fn sysmon_process_creation() {
        let evs = parse_document(SYSMON_1).unwrap();
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!((e.kind, e.source.as_str(), e.host.as_deref()), (Kind::Process, "sysmon", Some("ws-01")));
        assert_eq!(e.time.to_rfc3339(), "2025-11-27T07:40:10.165324+00:00");
        let p = e.process.as_ref().unwrap();
        assert_eq!(p.path.as_deref(), Some(r"C:\Windows\System32\cmd.exe"));
        assert_eq!(p.name.as_deref(), Some("cmd.exe"));
        assert_eq!((p.pid, p.ppid), (Some(4460), Some(1200)));
        assert_eq!(p.cmdline.as_deref(), Some("cmd.exe /c whoami"));
        assert_eq!(e.user.as_deref(), Some(r"WS-01\alice"));
        assert_eq!(e.raw["Event"]["System"]["Provider"]["Name"], "Microsoft-Windows-Sysmon");
        assert_eq!(e.raw["Event"]["EventData"]["ParentImage"], r"C:\Windows\explorer.exe");
        assert!(e.raw["Event"].get("#attributes").is_none());
        assert!(looks_like(SYSMON_1));
        // The same record twice (concatenated, as SigmaHQ's multi-event files are) gives the same id.
        let two = parse_document(&format!("{SYSMON_1}\n{SYSMON_1}")).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].id, two[1].id);
        let arr = parse_document(&format!("[{SYSMON_1}, {SYSMON_1}]")).unwrap();
        assert_eq!(arr.len(), 2);
        let line = SYSMON_1.replace('\n', " ");
        assert_eq!(parse_line(&line, 7).unwrap().id, e.id);
    }

    #[test]
    fn security_4688_network_and_other_records() {
        let sec = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":{"#text":4688,"#attributes":{"Qualifiers":""}},"TimeCreated":{"#attributes":{"SystemTime":"2026-01-02T03:04:05Z"}},"Channel":"Security","Computer":"dc-01"},"EventData":{"NewProcessName":"C:\\Windows\\System32\\net.exe","NewProcessId":"0x1a4","ProcessId":"0x10","CommandLine":"net user","TargetUserName":"bob","TargetDomainName":"CORP"}}}"##;
        let e = parse_line(sec, 1).unwrap();
        assert_eq!((e.kind, e.source.as_str()), (Kind::Process, "security"));
        let p = e.process.unwrap();
        assert_eq!((p.pid, p.ppid, p.path.as_deref()), (Some(0x1a4), Some(0x10), Some(r"C:\Windows\System32\net.exe")));
        assert_eq!(e.user.as_deref(), Some(r"CORP\bob"));
        assert_eq!(e.raw["Event"]["System"]["EventID"], 4688);

        let net = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":3,"TimeCreated":{"#attributes":{"SystemTime":"2026-01-02T03:04:05Z"}},"Computer":"ws-02"},"EventData":{"Image":"C:\\x\\evil.exe","Protocol":"tcp","SourceIp":"10.0.0.5","SourcePort":"49152","DestinationIp":"203.0.113.9","DestinationPort":"4444"}}}"##;
        let e = parse_line(net, 1).unwrap();
        assert_eq!(e.kind, Kind::Network);
        assert_eq!(e.dst.as_ref().unwrap().port, Some(4444));
        assert_eq!(e.src.as_ref().unwrap().ip.to_string(), "10.0.0.5");
        assert_eq!(e.protocol.as_deref(), Some("tcp"));

        let def = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Windows Defender"}},"EventID":1119,"TimeCreated":{"#attributes":{"SystemTime":"2026-04-17T04:14:33.653414Z"}},"Channel":"Microsoft-Windows-Windows Defender/Operational","Computer":"ws-03"},"EventData":{"Source Name":"Real-Time Protection","Threat Name":"Virus:DOS/EICAR_Test_File"}}}"##;
        let e = parse_line(def, 1).unwrap();
        assert_eq!((e.kind, e.source.as_str()), (Kind::Log, "windefend"));
        assert_eq!(e.raw["Event"]["EventData"]["SourceName"], "Real-Time Protection");
        assert!(e.message.contains("1119"));

        let wmi = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-WMI-Activity"}},"EventID":5858,"TimeCreated":{"#attributes":{"SystemTime":"2026-07-02T02:05:27Z"}},"Computer":"ws-04"},"UserData":{"Operation_ClientFailure":{"#attributes":{"xmlns":"x"},"Operation":"ExecMethod"}}}}"##;
        let e = parse_line(wmi, 1).unwrap();
        assert_eq!(e.raw["Event"]["EventData"]["Operation"], "ExecMethod");
        assert_eq!(e.raw["Event"]["UserData"]["Operation_ClientFailure"]["Operation"], "ExecMethod");
        assert_eq!(e.source, "wmi-activity");
        let file = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":11,"TimeCreated":{"#attributes":{"SystemTime":"2026-07-02T02:05:27Z"}}},"EventData":{"Image":"C:\\Windows\\system32\\cmd.exe","ProcessId":10048,"TargetFilename":"C:\\lsass.dmp"}}}"##;
        let e = parse_line(file, 1).unwrap();
        assert_eq!(e.kind, Kind::Log);
        assert_eq!(e.process.unwrap().path.as_deref(), Some(r"C:\Windows\system32\cmd.exe"));
        assert!(parse_line(r##"{"Event":{"System":{}}}"##, 4).unwrap_err().reason.contains("SystemTime"));
        assert!(parse_line(r##"{"x":1}"##, 5).is_err());
        assert!(!looks_like(r##"{"SchemaVersion": 2}"##));
        assert_eq!(source_name("Microsoft-Windows-TaskScheduler"), "taskscheduler");
    }
}
