//! The demo dataset `vigil up` loads into an empty database: real public logs
//! from `shared/data` when they are present (loghub OpenSSH and Linux syslog,
//! a labeled Zeek conn.log from an NjRAT infection), moved in time so they end
//! a few minutes ago, plus a day of generated telemetry from 50 hosts with
//! their software: package inventories, the daemons they run and nightly
//! Trivy findings ([`inventory`]), so vulnerabilities come out `running`,
//! `dormant` or `fixed`. Each real record keeps its dataset and licence in
//! `raw.dataset`. [`hunts`] are the hunts a SOC would run over it.

pub mod inventory;
pub mod story;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use vigil_event::Event;

use crate::formats::Format;
use crate::generate::{Generator, GeneratorConfig};
use crate::import::LineParser;

/// A real dataset the demo draws on, with its attribution.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub path: &'static str,
    pub format: Format,
    pub name: &'static str,
    pub license: &'static str,
}

pub const DATASETS: &[Dataset] = &[
    Dataset {
        path: "loghub/OpenSSH/OpenSSH_2k.log",
        format: Format::Syslog,
        name: "loghub OpenSSH_2k (https://github.com/logpai/loghub)",
        license: "loghub terms: research use, cite the loghub paper",
    },
    Dataset {
        path: "loghub/Linux/Linux_2k.log",
        format: Format::Syslog,
        name: "loghub Linux_2k (https://github.com/logpai/loghub)",
        license: "loghub terms: research use, cite the loghub paper",
    },
    Dataset {
        path: "stratosphere_njrat_zeek/labeled-conn.log",
        format: Format::ZeekConnTsv,
        name: "Stratosphere CTU-Malware-Capture-Botnet-230-1 (NjRAT), labeled conn.log",
        license: "GPL-2.0",
    },
];

/// Where the shared data usually is: `$VIGIL_DEMO_DATA`, else `../shared/data`
/// from the working directory or from the source tree.
pub fn find_shared_data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("VIGIL_DEMO_DATA").map(PathBuf::from),
        Some(PathBuf::from("../shared/data")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

/// What went into the demo dataset.
#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    /// (dataset name, events) for each real dataset used.
    pub datasets: Vec<(String, usize)>,
    pub generated: usize,
    /// Hosts of the generated telemetry.
    pub hosts: usize,
    /// Events of the scripted intrusion ([`story`]).
    pub story: usize,
    /// `package` events (inventory snapshots and upgrades).
    pub packages: usize,
    /// Process launches of the agents' start-up snapshot (sshd, nginx, …).
    pub daemons: usize,
    /// `vuln` events (Trivy findings).
    pub vulns: usize,
}

/// Builds the demo events: `generated` synthetic events over the last 24 h
/// ending at `now`, the hosts' packages, daemons and Trivy findings, plus the
/// real datasets under `shared` if given.
pub fn build(shared: Option<&Path>, now: DateTime<Utc>, generated: u64) -> (Vec<Event>, DemoSummary) {
    let mut summary = DemoSummary::default();
    let cfg = GeneratorConfig::recent(generated, Duration::hours(24), now);
    let generator = Generator::new(cfg.clone());
    let hosts = generator.hosts().to_vec();
    let mut events: Vec<Event> = generator.collect();
    summary.generated = events.len();
    summary.hosts = hosts.len();
    let inv = inventory::build(&hosts, cfg.start, cfg.end, cfg.seed);
    (summary.packages, summary.daemons, summary.vulns) = (inv.packages.len(), inv.processes.len(), inv.vulns.len());
    events.extend(inv.packages);
    events.extend(inv.processes);
    events.extend(inv.vulns);
    let story = story::build(&hosts, now);
    summary.story = story.len();
    events.extend(story);
    if let Some(dir) = shared {
        for (i, ds) in DATASETS.iter().enumerate() {
            let Ok(text) = fs::read_to_string(dir.join(ds.path)) else {
                continue;
            };
            // Each dataset ends a few minutes before now, staggered so they interleave.
            let end = now - Duration::minutes(5 + 7 * i as i64);
            let real = load_rebased(&text, ds, end);
            summary.datasets.push((ds.name.to_string(), real.len()));
            events.extend(real);
        }
    }
    (events, summary)
}

/// The hunts `vigil up` creates with the demo data, as `POST /api/v1/hunts`
/// takes them (`vigil_hunts::HuntSpec`): what a SOC runs against the
/// attacker behaviour in the demo (SSH password guessing, reverse shells,
/// credential file reads, connections to reverse-shell and RAT ports).
/// Each carries `meta.demo = true`.
pub fn hunts() -> Vec<serde_json::Value> {
    let meta =
        |technique: &str, tactic: &str| json!({"demo": true, "mitre": {"technique": technique, "tactic": tactic}});
    vec![
        json!({
            "name": "SSH brute force from one source",
            "description": "20 or more failed SSH logons from one address within an hour, on any hosts.",
            "query": "kind:auth status:failure",
            "schedule": "*/5 * * * *",
            "severity": "high",
            "group_by": ["src_ip"],
            "suppression": "6h",
            "correlation": {
                "type": "event_count",
                "rules": [{"name": "ssh_logon_failed", "query": "kind:auth status:failure"}],
                "group_by": ["src_ip"],
                "timespan": "1h",
                "condition": {"gte": 20}
            },
            "meta": meta("T1110 Brute Force", "credential-access"),
        }),
        json!({
            "name": "Reverse shell spawned",
            "description": "A shell wired to a network socket: bash /dev/tcp redirection, nc -e, a Python pty.",
            "query": "kind:process activity_id:1 (cmdline:\"/dev/tcp/\" OR cmdline:\"nc -e\" OR cmdline:\"pty.spawn\")",
            "schedule": "*/5 * * * *",
            "severity": "critical",
            "group_by": ["host"],
            "suppression": "6h",
            "meta": meta("T1059.004 Unix Shell", "execution"),
        }),
        json!({
            "name": "Credential file read (/etc/shadow)",
            "description": "A process reads the password hashes.",
            "query": "kind:process activity_id:1 cmdline:\"/etc/shadow\"",
            "schedule": "*/5 * * * *",
            "severity": "high",
            "group_by": ["host", "user"],
            "suppression": "6h",
            "meta": meta("T1003.008 /etc/passwd and /etc/shadow", "credential-access"),
        }),
        json!({
            "name": "Outbound connection to a reverse-shell or RAT port",
            "description": "Connections to ports that Metasploit handlers, netcat listeners and njRAT use, outside the private ranges.",
            "query": "kind:network dst_port:(4444,1177,9001) !dst_ip:(10.0.0.0/8,172.16.0.0/12,192.168.0.0/16)",
            "schedule": "*/5 * * * *",
            "severity": "high",
            "group_by": ["src_ip", "dst_ip"],
            "suppression": "6h",
            "meta": meta("T1571 Non-Standard Port", "command-and-control"),
        }),
    ]
}

fn load_rebased(text: &str, ds: &Dataset, end: DateTime<Utc>) -> Vec<Event> {
    let mut parser = LineParser::new(ds.format, end);
    let mut events: Vec<Event> =
        text.lines().enumerate().filter_map(|(i, l)| parser.line(l, i + 1).ok().flatten()).collect();
    let Some(last) = events.iter().map(|e| e.time).max() else {
        return events;
    };
    let shift = end - last;
    for e in &mut events {
        e.time += shift;
        if let Some(raw) = e.raw.as_object_mut() {
            raw.insert(
                "dataset".into(),
                json!({"name": ds.name, "license": ds.license, "time_shifted_by_s": shift.num_seconds()}),
            );
        }
    }
    events
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    /// Even the smallest demo holds the whole intrusion the demo hunts look for.
    #[test]
    fn a_small_demo_still_holds_the_scripted_intrusion() {
        let now = chrono::Utc::now();
        let (events, _) = build(None, now, 10);
        let story: Vec<&Event> = events.iter().filter(|e| e.raw["story"] == "demo intrusion").collect();
        let failures: Vec<&&Event> =
            story.iter().filter(|e| e.kind == vigil_event::Kind::Auth && e.status_id == Some(2)).collect();
        assert!(failures.len() >= 20, "{} failed logons", failures.len());
        let first = failures.iter().map(|e| e.time).min().unwrap();
        let last = failures.iter().map(|e| e.time).max().unwrap();
        assert!(last - first < Duration::hours(1) && last < now, "the guessing fits the brute-force hunt's hour");
        let src = |e: &Event| e.src.as_ref().map(|s| s.ip);
        assert!(failures.iter().all(|e| src(e) == src(failures[0])), "one source");
        let cmdlines: Vec<String> =
            story.iter().filter_map(|e| e.process.as_ref()?.cmdline.clone()).filter(|c| !c.is_empty()).collect();
        assert!(cmdlines.iter().any(|c| c.contains("/dev/tcp/")) && cmdlines.iter().any(|c| c.contains("/etc/shadow")));
        assert!(story.iter().any(|e| e.dst.as_ref().and_then(|d| d.port) == Some(4444)));
    }

    use super::*;

    use std::collections::{HashMap, HashSet};
    use vigil_event::Kind;

    #[test]
    fn generated_only_when_no_shared_data() {
        let (events, summary) = build(None, Utc::now(), 1_000);
        assert_eq!(summary.generated, 1_000);
        assert_eq!(events.len(), 1_000 + summary.packages + summary.daemons + summary.vulns + summary.story);
        assert!(summary.datasets.is_empty());
        assert_eq!(summary.hosts, 50);
    }

    /// (host, package) → (time, version, files) of its newest package event.
    type Installed = HashMap<(String, String), (DateTime<Utc>, String, Vec<String>)>;

    fn inventory(events: &[Event]) -> Installed {
        let mut inv = Installed::new();
        for e in events.iter().filter(|e| e.kind == Kind::Package) {
            let key = (e.host.clone().unwrap(), e.raw["package"].as_str().unwrap().to_string());
            let files = e.raw["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
            let version = e.raw["version"].as_str().unwrap().to_string();
            if inv.get(&key).is_none_or(|(t, _, _)| *t <= e.time) {
                inv.insert(key, (e.time, version, files));
            }
        }
        inv
    }

    #[test]
    fn packages_and_findings_are_deterministic_and_valid() {
        let now = Utc::now();
        let (a, sa) = build(None, now, 5_000);
        let (b, _) = build(None, now, 5_000);
        assert_eq!(a, b, "same time, same demo");
        assert!(sa.packages > 50 * 20, "a realistic inventory per host: {}", sa.packages);
        assert!(sa.vulns >= 40, "findings: {}", sa.vulns);
        for e in &a {
            e.validate().unwrap();
            assert!(e.time <= now && e.time >= now - Duration::hours(24), "{e:?}");
        }
        let ids: HashSet<_> = a.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), a.len(), "ids are unique");
        let hosts: HashSet<_> = a.iter().filter(|e| e.kind == Kind::Package).filter_map(|e| e.host.clone()).collect();
        assert_eq!(hosts.len(), 50, "every host has an inventory");
        let cves: HashSet<_> = a
            .iter()
            .filter(|e| e.kind == Kind::Vuln)
            .map(|e| e.raw["vulnerability"]["VulnerabilityID"].clone())
            .collect();
        for cve in ["CVE-2024-6387", "CVE-2023-38545", "CVE-2024-2961", "CVE-2022-0778"] {
            assert!(cves.contains(&json!(cve)), "{cve} in {cves:?}");
        }
    }

    #[test]
    fn each_finding_is_an_installed_package_some_running_some_dormant() {
        let now = Utc::now();
        let (events, _) = build(None, now, 5_000);
        let inv = inventory(&events);
        // What each host runs: every process launch (the generator's and the daemons).
        let mut runs: HashMap<String, HashSet<String>> = HashMap::new();
        for e in events.iter().filter(|e| e.kind == Kind::Process && e.activity_id == Some(1)) {
            let path = e.process.as_ref().and_then(|p| p.path.clone()).unwrap();
            runs.entry(e.host.clone().unwrap()).or_default().insert(path);
        }
        let (mut running, mut dormant, mut fixed) = (Vec::new(), Vec::new(), Vec::new());
        for e in events.iter().filter(|e| e.kind == Kind::Vuln) {
            let v = &e.raw["vulnerability"];
            let host = e.host.clone().unwrap();
            let pkg = v["PkgName"].as_str().unwrap().to_string();
            let (_, version, files) = inv.get(&(host.clone(), pkg.clone())).expect("the package is on that host");
            let what = (host.clone(), v["VulnerabilityID"].as_str().unwrap().to_string(), pkg.clone());
            if version != v["InstalledVersion"].as_str().unwrap() {
                assert!(inv.get(&(host.clone(), pkg.clone())).unwrap().0 > e.time, "{what:?} upgraded after the scan");
                fixed.push(what);
            } else if files.iter().any(|f| runs.get(&host).is_some_and(|r| r.contains(f))) {
                running.push(what);
            } else {
                dormant.push(what);
            }
        }
        assert!(running.iter().any(|(_, c, p)| c == "CVE-2024-6387" && p == "openssh-server"), "{running:?}");
        assert!(running.iter().any(|(_, c, p)| c == "CVE-2023-38545" && p == "curl"), "{running:?}");
        assert!(dormant.iter().any(|(_, c, p)| c == "CVE-2024-2961" && p == "libc6"), "{dormant:?}");
        assert!(dormant.iter().any(|(_, c, p)| c == "CVE-2023-38545" && p == "libcurl4"), "{dormant:?}");
        assert!(running.len() >= 10 && dormant.len() >= 10, "{} running, {} dormant", running.len(), dormant.len());
        assert!(!fixed.is_empty(), "some hosts patched after the scan");
    }

    #[test]
    fn every_executable_the_generator_runs_belongs_to_a_package() {
        let (events, _) = build(None, Utc::now(), 0);
        let owned: HashSet<String> = inventory(&events).into_values().flat_map(|(_, _, files)| files).collect();
        for exe in crate::generate::executables() {
            assert!(owned.contains(exe), "{exe} has no package");
        }
    }

    #[test]
    fn demo_hunts_are_marked_and_named_once() {
        let hunts = hunts();
        assert!(hunts.len() >= 3);
        let names: HashSet<_> = hunts.iter().map(|h| h["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), hunts.len());
        assert!(hunts.iter().all(|h| h["meta"]["demo"] == true && h["query"].is_string()));
    }

    #[test]
    fn real_datasets_are_rebased_to_recent_time() {
        let Some(dir) = find_shared_data() else {
            eprintln!("skipped: shared/data not found (set VIGIL_DEMO_DATA)");
            return;
        };
        let now = Utc::now();
        let (events, summary) = build(Some(&dir), now, 0);
        let names: Vec<&str> = summary.datasets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(summary.datasets.iter().any(|(n, c)| n.contains("OpenSSH") && *c == 2_000));
        assert!(summary.datasets.iter().any(|(n, c)| n.contains("NjRAT") && *c == 992));
        assert!(events.iter().all(|e| e.time <= now && e.time > now - Duration::days(400)));
        let c2 = events.iter().filter(|e| e.dst.map(|d| d.ip.to_string()) == Some("41.108.179.197".into())).count();
        assert!(c2 >= 237, "the NjRAT C2 flows are there: {c2}");
        let real: usize = summary.datasets.iter().map(|(_, n)| n).sum();
        let named = events.iter().filter(|e| e.raw.get("dataset").is_some()).count();
        assert_eq!(named, real, "every real record names its dataset");
    }
}
