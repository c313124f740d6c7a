//! Modifiers end to end on real PostgreSQL: the SRQL a rule converts to
//! matches exactly the events Sigma says it should (case folding, `cased`,
//! literal `%` `_` `*`, `?`, backslashes, numbers, CIDR on a raw field,
//! windash, regex flags, null/exists, keywords, base64offset).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeDelta, Utc};
use serde_json::json;
use vigil_event::{Event, Kind};
use vigil_sigma::{convert, Mapping};
use vigil_store::testing::migrated;
use vigil_store::{EventWriter, TimescaleChoice};

fn event(host: &str, message: &str, raw: serde_json::Value) -> Event {
    let mut e = Event::new(Kind::Log, "auditd", Utc::now() - TimeDelta::minutes(1), host.as_bytes());
    e.host = Some(host.into());
    e.message = message.into();
    e.raw = raw;
    e
}

#[tokio::test]
async fn modifiers_match_what_sigma_says() {
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;
    let events = vec![
        event(
            "a1",
            "User Root logged",
            json!({"type": "EXECVE", "a0": "Wget", "a1": "http://x/100%_done", "path": "C:\\Tmp\\A_b.exe",
                   "n": 5, "ip": "10.1.2.3",
                   "u": "alice", "pu": "alice"}),
        ),
        event(
            "a2",
            "user root logged in",
            json!({"type": "execve", "a0": "wget", "a1": "-O", "path": "C:\\tmp\\aXb.exe", "n": 50, "ip": "172.20.0.1",
                   "u": "Root", "pu": "root"}),
        ),
        event(
            "a3",
            "other",
            json!({"type": "SYSCALL", "a0": "curl", "a1": "/O", "path": "C:\\Tmp\\A*b.exe", "n": "7",
                   "ip": "192.168.1.1", "multi": "line1\nline2", "cmd": "ZWNobyAvYmluL3NoIC1p"}),
        ),
    ];
    EventWriter::new(pool.clone()).write(&events).await.unwrap();

    let cases: &[(&str, &[&str])] = &[
        ("{type: execve}", &["a1", "a2"]),
        ("{type|cased: execve}", &["a2"]),
        ("{a0|startswith: WG}", &["a1", "a2"]),
        ("{a1|contains: '100%_'}", &["a1"]),
        ("{a1|contains: '100%x'}", &[]),
        ("{path|endswith: '\\A_b.exe'}", &["a1"]),
        ("{path|endswith: '\\A\\*b.exe'}", &["a3"]),
        ("{path: 'c:\\tmp\\a?b.exe'}", &["a1", "a2", "a3"]),
        ("{path: 'c:\\tmp\\a*'}", &["a1", "a2", "a3"]),
        ("{path|cased: 'C:\\Tmp\\A_b.exe'}", &["a1"]),
        ("{n|gte: 10}", &["a2"]),
        ("{n|lt: 10}", &["a1"]),
        ("{ip|cidr: 172.16.0.0/12}", &["a2"]),
        ("{ip|cidr: 10.0.0.0/8}", &["a1"]),
        ("{a1|windash: '-O'}", &["a2", "a3"]),
        ("{multi|re: 'line1.line2'}", &[]),
        ("{multi|re|s: 'line1.line2'}", &["a3"]),
        ("{multi|re|m: '^line2$'}", &["a3"]),
        ("{multi|re: '^line2$'}", &[]),
        ("{a0|re: '^W'}", &["a1"]),
        ("{a0|re|i: '^W'}", &["a1", "a2"]),
        ("{a0|re: '(?i)^W'}", &["a1", "a2"]),
        ("{missing: null}", &["a1", "a2", "a3"]),
        ("{a1: null}", &[]),
        ("{multi|exists: true}", &["a3"]),
        ("{multi|exists: false}", &["a1", "a2"]),
        ("{cmd|base64offset|contains: '/bin/sh'}", &["a3"]),
        ("['root logged']", &["a1", "a2"]),
        ("['user*in']", &["a2"]),
        ("{a0: [wget, curl]}", &["a1", "a2", "a3"]),
        ("{a0|contains|all: [w, t]}", &["a1", "a2"]),
        // fieldref: equal to another field of the event, exactly; a missing one never equals.
        ("{u|fieldref: pu}", &["a1"]),
        ("{u|fieldref: missing}", &[]),
    ];
    let mut failures = Vec::new();
    for (detection, want) in cases {
        let rule = format!(
            "title: t\nlogsource: {{product: linux, service: auditd}}\ndetection:\n  sel: {detection}\n  condition: sel\n"
        );
        let c = match convert(&rule, &Mapping::builtin()) {
            Ok(c) => c,
            Err(f) => {
                failures.push(format!("{detection}: {}", f.error));
                continue;
            }
        };
        let now = Utc::now();
        let compiled =
            vigil_hunts::hunt::compile_for_run(&c[0].query, (now - TimeDelta::hours(1), now), 1_000).unwrap();
        let r = vigil_search::run(&pool, &compiled, &Default::default()).await.unwrap();
        let host = r.columns.iter().position(|c| c.name == "host").unwrap();
        let mut got: Vec<String> = r.rows.iter().map(|row| row[host].as_str().unwrap().to_string()).collect();
        got.sort();
        if got != *want {
            failures.push(format!("{detection}: got {got:?}, want {want:?}\n    {}", c[0].query));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
