//! Zeek `conn.log`, as TSV (with its `#` header) or JSON lines, mapped to
//! network events (OCSF Network Activity, activity "traffic").

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vigil_event::{Endpoint, Event, Kind, Severity};

use super::ParseError;

/// OCSF Network Activity: activity 6 is "Traffic", a finished flow summary.
const ACTIVITY_TRAFFIC: i32 = 6;

/// Reads the TSV form: header lines set the separator and field names, data
/// lines become events.
#[derive(Debug)]
pub struct TsvReader {
    separator: char,
    unset: String,
    empty: String,
    fields: Vec<String>,
}

impl Default for TsvReader {
    fn default() -> Self {
        TsvReader { separator: '\t', unset: "-".into(), empty: "(empty)".into(), fields: Vec::new() }
    }
}

impl TsvReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line. Header and blank lines give `Ok(None)`.
    pub fn line(&mut self, line: &str, line_no: usize) -> Result<Option<Event>, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(None);
        }
        if let Some(header) = line.strip_prefix('#') {
            self.header(header);
            return Ok(None);
        }
        if self.fields.is_empty() {
            return Err(ParseError::new(line_no, "data line before the #fields header"));
        }
        let values: Vec<&str> = line.split(self.separator).collect();
        if values.len() != self.fields.len() {
            return Err(ParseError::new(
                line_no,
                format!("expected {} tab-separated fields, found {}", self.fields.len(), values.len()),
            ));
        }
        let mut record = Map::new();
        for (name, v) in self.fields.iter().zip(values) {
            let value = if v == self.unset {
                Value::Null
            } else if v == self.empty {
                Value::String(String::new())
            } else {
                typed(name, v)
            };
            record.insert(name.clone(), value);
        }
        from_record(record, line_no).map(Some)
    }

    fn header(&mut self, header: &str) {
        let mut parts = header.splitn(2, [' ', '\t']);
        let key = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        match key {
            "separator" => {
                self.separator = match rest.trim() {
                    r"\x09" => '\t',
                    s => s.chars().next().unwrap_or('\t'),
                }
            }
            "unset_field" => self.unset = rest.trim().to_string(),
            "empty_field" => self.empty = rest.trim().to_string(),
            "fields" => self.fields = rest.split(self.separator).map(str::to_string).collect(),
            _ => {}
        }
    }
}

/// Numbers stay numbers in the raw record, so `raw.orig_bytes:>1000` compares numerically.
fn typed(name: &str, v: &str) -> Value {
    let numeric = matches!(
        name,
        "ts" | "id.orig_p"
            | "id.resp_p"
            | "duration"
            | "orig_bytes"
            | "resp_bytes"
            | "missed_bytes"
            | "orig_pkts"
            | "orig_ip_bytes"
            | "resp_pkts"
            | "resp_ip_bytes"
    );
    if numeric {
        if let Ok(n) = v.parse::<i64>() {
            return Value::from(n);
        }
        if let Some(n) = v.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    match (name, v) {
        ("local_orig" | "local_resp", "T") => Value::Bool(true),
        ("local_orig" | "local_resp", "F") => Value::Bool(false),
        _ => Value::String(v.to_string()),
    }
}

/// Parses one JSON-lines record.
pub fn parse_json_line(line: &str, line_no: usize) -> Result<Event, ParseError> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => from_record(map, line_no),
        Ok(_) => Err(ParseError::new(line_no, "expected a JSON object")),
        Err(e) => Err(ParseError::new(line_no, format!("invalid JSON: {e}"))),
    }
}

fn from_record(record: Map<String, Value>, line_no: usize) -> Result<Event, ParseError> {
    let ts = record
        .get("ts")
        .and_then(json_time)
        .ok_or_else(|| ParseError::new(line_no, "field `ts` is missing or not a time"))?;
    let ip = |k: &str| -> Result<IpAddr, ParseError> {
        record
            .get(k)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ParseError::new(line_no, format!("field `{k}` is missing or not an IP address")))
    };
    let port = |k: &str| record.get(k).and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
    let (src_ip, dst_ip) = (ip("id.orig_h")?, ip("id.resp_h")?);
    let (src_port, dst_port) = (port("id.orig_p"), port("id.resp_p"));
    let text = |k: &str| record.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let proto = text("proto").map(str::to_string);
    let uid = text("uid").unwrap_or_default().to_string();

    let mut e = Event::new(Kind::Network, "zeek", ts, uid.as_bytes());
    if uid.is_empty() {
        // Without Zeek's uid, identify the flow by its 5-tuple.
        e.id = vigil_event::derive_id(
            "zeek",
            ts,
            format!("{src_ip}|{src_port:?}|{dst_ip}|{dst_port:?}|{proto:?}").as_bytes(),
        );
    }
    e.activity_id = Some(ACTIVITY_TRAFFIC);
    e.severity = Severity::Info;
    e.src = Some(Endpoint { ip: src_ip, port: src_port });
    e.dst = Some(Endpoint { ip: dst_ip, port: dst_port });
    e.message = format!(
        "{} {} {} -> {} {}{}",
        proto.as_deref().unwrap_or("?"),
        text("service").unwrap_or("-"),
        endpoint(src_ip, src_port),
        endpoint(dst_ip, dst_port),
        text("conn_state").unwrap_or("-"),
        record
            .get("orig_bytes")
            .and_then(Value::as_u64)
            .zip(record.get("resp_bytes").and_then(Value::as_u64))
            .map(|(o, r)| format!(" {o}B/{r}B"))
            .unwrap_or_default(),
    );
    e.protocol = proto;
    e.raw = Value::Object(record.into_iter().collect::<BTreeMap<_, _>>().into_iter().collect());
    Ok(e)
}

fn endpoint(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(_), Some(p)) => format!("[{ip}]:{p}"),
        (_, Some(p)) => format!("{ip}:{p}"),
        (_, None) => ip.to_string(),
    }
}

/// Zeek writes `ts` as epoch seconds (TSV, default JSON) or ISO 8601 (JSON with ISO timestamps).
fn json_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() || secs < 0.0 {
                return None;
            }
            DateTime::from_timestamp_micros((secs * 1e6).round() as i64)
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "#separator \\x09\n#unset_field\t-\n#empty_field\t(empty)\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n1488980824.5\tCgwV1C\t192.168.1.115\t60160\t41.108.179.197\t1177\ttcp\t-\t2.99\t0\t0\tS0\n";

    #[test]
    fn tsv_lines_become_network_events() {
        let mut r = TsvReader::new();
        let events: Vec<Event> = SAMPLE.lines().enumerate().filter_map(|(i, l)| r.line(l, i + 1).unwrap()).collect();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, Kind::Network);
        assert_eq!(e.src.unwrap().ip.to_string(), "192.168.1.115");
        assert_eq!(e.dst.unwrap().port, Some(1177));
        assert_eq!(e.protocol.as_deref(), Some("tcp"));
        assert_eq!(e.raw["service"], Value::Null, "unset fields are null");
        assert_eq!(e.raw["orig_bytes"], Value::from(0));
        assert_eq!(e.time.timestamp(), 1_488_980_824);
        assert!(e.message.contains("192.168.1.115:60160 -> 41.108.179.197:1177"), "{}", e.message);
    }

    #[test]
    fn bad_lines_name_the_line_and_the_problem() {
        let mut r = TsvReader::new();
        for (i, l) in SAMPLE.lines().take(4).enumerate() {
            r.line(l, i + 1).unwrap();
        }
        let err = r.line("1.0\tX\tnot-an-ip\t1\t10.0.0.1\t2\ttcp\t-\t1\t1\t1\tSF", 9).unwrap_err();
        assert_eq!(err.line, 9);
        assert!(err.reason.contains("id.orig_h"), "{err}");
        let err = r.line("1.0\tonly-two", 10).unwrap_err();
        assert!(err.reason.contains("expected 12"), "{err}");
    }

    #[test]
    fn json_lines_map_the_same_way() {
        let e = parse_json_line(
            r#"{"ts":1488980824.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5,"id.resp_h":"fd00::1","id.resp_p":53,"proto":"udp"}"#,
            1,
        )
        .unwrap();
        assert_eq!(e.dst.unwrap().ip.to_string(), "fd00::1");
        assert!(e.message.contains("[fd00::1]:53"));
    }
}
