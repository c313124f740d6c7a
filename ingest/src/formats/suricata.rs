//! Suricata EVE JSON (`eve.json`): alerts become alert events, flows network
//! events, other event types log events; every field is kept in `raw`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use vigil_event::{Endpoint, Event, Kind, Severity};

use super::ParseError;

fn time(v: &Value) -> Option<DateTime<Utc>> {
    let t = v.get("timestamp")?.as_str()?;
    DateTime::parse_from_rfc3339(t)
        .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn parse_line(line: &str, line_no: usize) -> Result<Event, ParseError> {
    let v: Value = serde_json::from_str(line).map_err(|e| ParseError::new(line_no, format!("invalid JSON: {e}")))?;
    let t = time(&v).ok_or_else(|| ParseError::new(line_no, "field `timestamp` is missing or not a time"))?;
    let event_type = v.get("event_type").and_then(Value::as_str).unwrap_or("");
    let kind = match event_type {
        "alert" => Kind::Alert,
        "flow" | "netflow" => Kind::Network,
        _ => Kind::Log,
    };
    let mut e = Event::new(kind, "suricata", t, line.as_bytes());
    let endpoint = |ip: &str, port: &str| {
        v.get(ip)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .map(|ip| Endpoint { ip, port: v.get(port).and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()) })
    };
    e.src = endpoint("src_ip", "src_port");
    e.dst = endpoint("dest_ip", "dest_port");
    // `app_proto` is "failed" (or "unknown") when Suricata could not identify
    // the application protocol: the transport protocol is then the better answer.
    let app_proto = v.get("app_proto").and_then(Value::as_str).filter(|p| !matches!(*p, "" | "failed" | "unknown"));
    e.protocol = app_proto.or_else(|| v.get("proto").and_then(Value::as_str)).map(str::to_ascii_lowercase);
    e.host = v.get("host").and_then(Value::as_str).map(str::to_string);
    if let Some(alert) = v.get("alert") {
        // Suricata: 1 is the most severe.
        e.severity = match alert.get("severity").and_then(Value::as_u64) {
            Some(1) => Severity::High,
            Some(2) => Severity::Medium,
            Some(3) => Severity::Low,
            _ => Severity::Info,
        };
        e.activity_id = Some(1);
        e.message = alert.get("signature").and_then(Value::as_str).unwrap_or("suricata alert").to_string();
    } else {
        e.severity = Severity::Info;
        e.message = format!("suricata {event_type}");
    }
    e.raw = v;
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Shaped like Suricata's documented eve.json alert record.
    const ALERT: &str = r#"{"timestamp":"2026-01-15T10:00:00.123456+0000","flow_id":1805461738637437,"in_iface":"eth0","event_type":"alert","src_ip":"192.168.1.115","src_port":60160,"dest_ip":"41.108.179.197","dest_port":1177,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2019401,"rev":3,"signature":"ET MALWARE NjRAT/Bladabindi Variant CnC Beacon","category":"A Network Trojan was detected","severity":1},"host":"sensor-01"}"#;

    #[test]
    fn alerts_flows_and_other_records() {
        let e = parse_line(ALERT, 1).unwrap();
        assert_eq!((e.kind, e.severity), (Kind::Alert, Severity::High));
        assert_eq!(e.dst.unwrap().ip.to_string(), "41.108.179.197");
        assert_eq!(e.protocol.as_deref(), Some("tcp"));
        assert!(e.message.contains("NjRAT"));
        assert_eq!(e.time.timestamp_subsec_micros(), 123_456);
        let flow = parse_line(r#"{"timestamp":"2026-01-15T10:00:00+0000","event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","proto":"UDP"}"#, 2).unwrap();
        assert_eq!(flow.kind, Kind::Network);
        let dns = parse_line(r#"{"timestamp":"2026-01-15T10:00:00+0000","event_type":"dns"}"#, 3).unwrap();
        assert_eq!(dns.kind, Kind::Log);
        assert!(parse_line(r#"{"event_type":"dns"}"#, 4).is_err());
    }

    #[test]
    fn failed_app_proto_falls_back_to_the_transport() {
        let flow = r#"{"timestamp":"2011-08-14T07:38:53.914038+0200","event_type":"flow","src_ip":"147.32.84.165","src_port":138,"dest_ip":"147.32.84.255","dest_port":138,"proto":"UDP","app_proto":"failed"}"#;
        assert_eq!(parse_line(flow, 1).unwrap().protocol.as_deref(), Some("udp"));
        let dns =
            r#"{"timestamp":"2017-01-30T16:12:29.951412+0100","event_type":"flow","proto":"UDP","app_proto":"dns"}"#;
        assert_eq!(parse_line(dns, 2).unwrap().protocol.as_deref(), Some("dns"));
    }
}
