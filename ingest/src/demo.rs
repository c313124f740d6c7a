//! The demo dataset `vigil up` loads into an empty database: real public logs
//! from `shared/data` when they are present (loghub OpenSSH and Linux syslog,
//! a labeled Zeek conn.log from an NjRAT infection), moved in time so they end
//! a few minutes ago, plus a day of generated telemetry from 50 hosts with
//! their software: package inventories, the daemons they run and nightly
//! Trivy findings ([`inventory`]), so vulnerabilities come out `running`,
//! `dormant` or `fixed`. Each real record keeps its dataset and licence in
//! `raw.dataset`. [`hunts`] are the hunts a SOC would run over it.
//!
//! A real dataset can span far more than the demo's day (Linux_2k covers six
//! weeks), and what lay more than 30 days back would go in the first
//! retention pass; so [`rebase`] fits each one into the last
//! [`REAL_WINDOW`]: the timing of events closer together than a cap is kept
//! exactly (bursts of password guesses, C2 beacons), longer idle gaps are
//! shortened to that cap (the largest that makes the dataset fit; none when
//! it fits as it is), and the order is kept. `raw.dataset` records each event's `original_time`, the
//! shift applied to it (`time_shifted_by_s`) and the cap
//! (`idle_gaps_capped_at_s`, when gaps were shortened).

pub mod inventory;
pub mod story;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
use serde_json::json;
use vigil_event::Event;

use crate::formats::{syslog, Format};
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

/// Where the shared data is: `explicit` (`vigil up --demo-data` /
/// `VIGIL_DEMO_DATA`) when given, else `../shared/data` from the working
/// directory or from the source tree.
pub fn find_shared_data(explicit: Option<&Path>) -> Option<PathBuf> {
    let candidates = [
        explicit.map(Path::to_path_buf),
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
    /// How each real dataset (with events) was moved in time.
    pub rebased: Vec<Rebased>,
}

/// The real datasets are fitted into this much time before `now`: inside the
/// generated day with an hour to spare (so a "last 24 h" view opened a while
/// later still shows all of them), and far inside the shortest default event
/// retention (30 days).
pub const REAL_WINDOW: Duration = Duration::hours(23);

/// How a real dataset was moved in time ([`rebase`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rebased {
    /// [`Dataset::name`].
    pub name: String,
    /// Its first and last event time as recorded (for syslog, with the year inferred).
    pub original: (DateTime<Utc>, DateTime<Utc>),
    /// Its first and last event time in the demo.
    pub moved: (DateTime<Utc>, DateTime<Utc>),
    /// `None` when the dataset was only shifted; otherwise every gap between
    /// consecutive event times longer than this was shortened to it.
    pub idle_gap_cap: Option<Duration>,
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
            // Each dataset ends a few minutes before now, staggered so they
            // interleave, and starts no earlier than REAL_WINDOW before now.
            let end = now - Duration::minutes(5 + 7 * i as i64);
            let (real, rebased) = load_rebased(&text, ds, now - REAL_WINDOW, end);
            summary.datasets.push((ds.name.to_string(), real.len()));
            summary.rebased.extend(rebased);
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

/// Parses a real dataset and moves it into `[start, end]` ([`rebase`]).
fn load_rebased(text: &str, ds: &Dataset, start: DateTime<Utc>, end: DateTime<Utc>) -> (Vec<Event>, Option<Rebased>) {
    let mut events: Vec<Event> = if ds.format == Format::Syslog {
        let lines: Vec<&str> = text.lines().collect();
        let years = syslog_years(&lines, end);
        lines
            .iter()
            .zip(years)
            .enumerate()
            .filter(|(_, (l, _))| !l.trim().is_empty())
            .filter_map(|(i, (l, year))| syslog::parse_line(l, i + 1, year).ok())
            .collect()
    } else {
        let mut parser = LineParser::new(ds.format, end);
        text.lines().enumerate().filter_map(|(i, l)| parser.line(l, i + 1).ok().flatten()).collect()
    };
    let rebased = rebase(&mut events, ds, start, end);
    (events, rebased)
}

/// The year of each syslog line, which syslog leaves out: counted along the
/// file (one more at each New Year, where the month goes back by more than
/// half a year), ending in the latest year that does not put the last line
/// after `end`. Inferring each line's year from `end` on its own would split
/// a file that spans `end`'s month and day into two years and reorder it.
fn syslog_years(lines: &[&str], end: DateTime<Utc>) -> Vec<i32> {
    let (mut wraps, mut prev_month, mut last) = (0, None, None);
    let offsets: Vec<i32> = lines
        .iter()
        .map(|l| {
            // 2000 is a leap year: Feb 29 parses.
            if let Some((t, _)) = syslog::parse_timestamp(l, 2000) {
                if prev_month.is_some_and(|p| t.month() + 6 < p) {
                    wraps += 1;
                }
                prev_month = Some(t.month());
                last = Some((t.month(), t.day()));
            }
            wraps
        })
        .collect();
    let base = last.map_or(end.year(), |md| syslog::infer_year(md, end)) - wraps;
    offsets.into_iter().map(|w| base + w).collect()
}

/// Moves a real dataset's `events` in time so that the latest is at `end`
/// and the earliest no earlier than `start`, and records in each event's
/// `raw.dataset` the dataset, its licence, the event's `original_time` and
/// the shift applied to it. `None` when there are no events.
///
/// A dataset that fits is shifted as a whole. One that does not also has its
/// idle gaps shortened: every gap between consecutive (distinct) event times
/// longer than a cap becomes the cap, the largest cap (in whole seconds when
/// it is one or more) that makes the dataset fit; recorded as
/// `raw.dataset.idle_gaps_capped_at_s`. So the spacing of events closer
/// together than the cap is exactly as recorded (a brute-force run, a C2
/// beacon), two events less than the cap apart in the demo were exactly that
/// far apart in the data, and the order is kept (a later original time never
/// becomes an earlier one; equal times stay equal).
pub fn rebase(events: &mut [Event], ds: &Dataset, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Rebased> {
    let mut times: Vec<DateTime<Utc>> = events.iter().map(|e| e.time).collect();
    times.sort_unstable();
    times.dedup();
    let (first, last) = (*times.first()?, *times.last()?);
    let micros = |d: Duration| d.num_microseconds().unwrap_or(i64::MAX);
    let gaps: Vec<i64> = times.windows(2).map(|w| micros(w[1] - w[0])).collect();
    let budget = micros(end - start).max(0);
    let span = |cap: i64| gaps.iter().fold(0i64, |sum, g| sum.saturating_add((*g).min(cap)));
    let cap = if span(i64::MAX) <= budget {
        None
    } else {
        // span(0) = 0 fits, span(max gap) does not: the largest cap that fits.
        let (mut lo, mut hi) = (0i64, gaps.iter().copied().max().unwrap_or(0));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if span(mid) <= budget {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(if lo >= 1_000_000 { lo / 1_000_000 * 1_000_000 } else { lo })
    };
    // Each distinct original time's new time, from the end backwards.
    let mut moved = vec![end; times.len()];
    for k in (0..gaps.len()).rev() {
        moved[k] = moved[k + 1] - Duration::microseconds(cap.map_or(gaps[k], |c| gaps[k].min(c)));
    }
    for e in events.iter_mut() {
        let original = e.time;
        let Ok(k) = times.binary_search(&original) else { continue };
        e.time = moved[k];
        if let Some(raw) = e.raw.as_object_mut() {
            let mut dataset = json!({
                "name": ds.name,
                "license": ds.license,
                "original_time": original.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                "time_shifted_by_s": (e.time - original).num_seconds(),
            });
            if let Some(c) = cap {
                dataset["idle_gaps_capped_at_s"] =
                    if c % 1_000_000 == 0 { json!(c / 1_000_000) } else { json!(c as f64 / 1e6) };
            }
            raw.insert("dataset".into(), dataset);
        }
    }
    Some(Rebased {
        name: ds.name.to_string(),
        original: (first, last),
        moved: (moved[0], end),
        idle_gap_cap: cap.map(Duration::microseconds),
    })
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
        let Some(dir) = find_shared_data(None) else {
            eprintln!("skipped: shared/data not found");
            return;
        };
        let now = Utc::now();
        let (events, summary) = build(Some(&dir), now, 0);
        let names: Vec<&str> = summary.datasets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(summary.datasets.iter().any(|(n, c)| n.contains("OpenSSH") && *c == 2_000));
        assert!(summary.datasets.iter().any(|(n, c)| n.contains("NjRAT") && *c == 992));
        let real_events = events.iter().filter(|e| e.raw.get("dataset").is_some());
        assert!(real_events.clone().all(|e| e.time <= now - Duration::minutes(5) && e.time >= now - REAL_WINDOW));
        let c2 = events.iter().filter(|e| e.dst.map(|d| d.ip.to_string()) == Some("41.108.179.197".into())).count();
        assert!(c2 >= 237, "the NjRAT C2 flows are there: {c2}");
        let real: usize = summary.datasets.iter().map(|(_, n)| n).sum();
        let named = events.iter().filter(|e| e.raw.get("dataset").is_some()).count();
        assert_eq!(named, real, "every real record names its dataset");
        // Each says where it came from: its original time plus its shift is its time.
        for e in real_events {
            let d = &e.raw["dataset"];
            let original: DateTime<Utc> = d["original_time"].as_str().unwrap().parse().unwrap();
            let shift = Duration::seconds(d["time_shifted_by_s"].as_i64().unwrap());
            assert!((original + shift - e.time).abs() < Duration::seconds(1), "{d}");
        }
        assert_eq!(summary.rebased.len(), 3);
        for r in &summary.rebased {
            eprintln!(
                "{}: {} .. {} ({:.1} h) -> {} .. {} ({:.1} h), idle gaps capped at {:?} s",
                r.name,
                r.original.0,
                r.original.1,
                (r.original.1 - r.original.0).num_seconds() as f64 / 3600.0,
                r.moved.0,
                r.moved.1,
                (r.moved.1 - r.moved.0).num_seconds() as f64 / 3600.0,
                r.idle_gap_cap.map(|c| c.num_seconds())
            );
        }
        // The samples that fit in the window are only shifted; the Linux one
        // (six weeks) has its idle gaps shortened and keeps its order.
        let by = |s: &str| summary.rebased.iter().find(|r| r.name.contains(s)).unwrap();
        assert_eq!(by("OpenSSH").idle_gap_cap, None);
        assert_eq!(by("NjRAT").idle_gap_cap, None);
        let linux = by("Linux_2k");
        assert!(linux.original.1 - linux.original.0 > Duration::days(30), "{linux:?}");
        assert!(linux.idle_gap_cap.is_some_and(|c| c >= Duration::minutes(1)), "{linux:?}");
        let mut linux_events: Vec<&Event> =
            events.iter().filter(|e| e.raw["dataset"]["name"].as_str() == Some(linux.name.as_str())).collect();
        linux_events
            .sort_by_key(|e| e.raw["dataset"]["original_time"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap());
        assert!(linux_events.windows(2).all(|w| w[0].time <= w[1].time), "the Linux sample keeps its order");
    }

    /// Everything `vigil up` loads (with the real datasets when they are
    /// here) is inside the generated day and outlives a week of maintenance
    /// passes under the default retention policy: a pass never deletes what
    /// the demo just stored.
    #[test]
    fn every_demo_event_is_in_the_window_and_inside_the_default_retention() {
        let now = Utc::now();
        let shared = find_shared_data(None);
        if shared.is_none() {
            eprintln!("shared/data not found (set VIGIL_DEMO_DATA): checking the generated demo only");
        }
        let (events, summary) = build(shared.as_deref(), now, 2_000);
        assert_eq!(summary.datasets.len(), if shared.is_some() { 3 } else { 0 });
        let policy = vigil_store::retention::RetentionPolicy::default();
        let pass = now + Duration::days(7);
        let cutoffs: HashMap<Kind, DateTime<Utc>> = policy.kind_cutoffs(pass).into_iter().collect();
        let days_cutoff = policy.events_cutoff(pass).unwrap();
        for e in &events {
            assert!(e.time <= now && e.time >= now - Duration::hours(24), "outside the demo's day: {e:?}");
            assert!(e.time >= days_cutoff, "{e:?}");
            if let Some(cutoff) = cutoffs.get(&e.kind) {
                assert!(e.time >= *cutoff, "a pass a week from now would delete this {} event: {e:?}", e.kind);
            }
        }
        assert!(cutoffs.contains_key(&Kind::Log) && cutoffs.contains_key(&Kind::Auth), "{cutoffs:?}");
    }

    fn test_dataset() -> Dataset {
        Dataset { path: "test", format: Format::Syslog, name: "test data", license: "test licence" }
    }

    /// Events at the given offsets (seconds) from a time long ago, in that (file) order.
    fn events_at(offsets: &[i64]) -> Vec<Event> {
        let t0: DateTime<Utc> = "2005-06-14T15:16:01Z".parse().unwrap();
        offsets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut e = Event::new(Kind::Auth, "test", t0 + Duration::seconds(*s), &i.to_be_bytes());
                e.raw = json!({ "line": i });
                e
            })
            .collect()
    }

    #[test]
    fn a_burst_keeps_its_spacing_while_long_idle_gaps_are_shortened() {
        // Two brute-force runs (30 guesses 2 s apart, 25 guesses 1 s apart)
        // ten days apart, with a quiet host logging every 3 h for five days
        // in between, a line written out of order and two at the same second.
        let day = 86_400;
        let mut offsets: Vec<i64> = (0..30).map(|i| i * 2).collect();
        offsets.extend((0..40).map(|i| 2 * day + i * 3 * 3600));
        offsets.extend((0..25).map(|i| 10 * day + i));
        offsets.extend([10 * day - 7_200, 10 * day + 5, 3 * day]);
        let original = events_at(&offsets);
        let mut events = original.clone();
        let end: DateTime<Utc> = "2026-12-07T18:00:00Z".parse().unwrap();
        let start = end - REAL_WINDOW;
        let r = rebase(&mut events, &test_dataset(), start, end).unwrap();

        // It fits, ends at `end`, and only gaps longer than the cap changed.
        assert!(events.iter().all(|e| e.time >= start && e.time <= end));
        assert_eq!(events.iter().map(|e| e.time).max(), Some(end));
        assert_eq!(r.moved.1, end);
        assert_eq!(r.original, (original[0].time, original[0].time + Duration::days(10) + Duration::seconds(24)));
        let cap = r.idle_gap_cap.expect("ten days do not fit in a day without shortening");
        assert!(cap >= Duration::minutes(5) && cap < Duration::hours(3), "cap {cap}");
        // The bursts are intact: same spacing between their events.
        let spacing = |es: &[Event], range: std::ops::Range<usize>| {
            es[range].windows(2).map(|w| w[1].time - w[0].time).collect::<Vec<_>>()
        };
        assert_eq!(spacing(&events, 0..30), spacing(&original, 0..30));
        assert_eq!(spacing(&events, 70..95), spacing(&original, 70..95));
        assert_eq!(events[96].time - events[70].time, Duration::seconds(5), "the late line's place in its burst");
        // Order is kept: a later original time is later, equal times stay equal.
        for (a, oa) in events.iter().zip(&original) {
            for (b, ob) in events.iter().zip(&original) {
                assert_eq!(a.time.cmp(&b.time), oa.time.cmp(&ob.time), "{} vs {}", oa.time, ob.time);
            }
        }
        // Long gaps (3 h between the quiet host's lines) became the cap.
        assert_eq!(events[31].time - events[30].time, cap);
        // Each event tells how it was moved.
        for (e, o) in events.iter().zip(&original) {
            let d = &e.raw["dataset"];
            assert_eq!(d["name"], "test data");
            assert_eq!(d["license"], "test licence");
            assert_eq!(d["original_time"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), o.time);
            assert_eq!(d["time_shifted_by_s"], (e.time - o.time).num_seconds());
            assert_eq!(d["idle_gaps_capped_at_s"], cap.num_seconds());
            assert_eq!(e.raw["line"], o.raw["line"], "the rest of raw is kept");
        }
    }

    #[test]
    fn a_dataset_that_fits_is_only_shifted() {
        let mut events = events_at(&[0, 1, 2, 3_600, 4 * 3_600, 4 * 3_600 + 30]);
        let original = events.clone();
        let end: DateTime<Utc> = "2026-12-07T18:00:00Z".parse().unwrap();
        let r = rebase(&mut events, &test_dataset(), end - REAL_WINDOW, end).unwrap();
        assert_eq!(r.idle_gap_cap, None);
        let shift = end - original[5].time;
        for (e, o) in events.iter().zip(&original) {
            assert_eq!(e.time - o.time, shift);
            assert!(e.raw["dataset"].get("idle_gaps_capped_at_s").is_none(), "{}", e.raw);
        }
        assert!(rebase(&mut [], &test_dataset(), end - REAL_WINDOW, end).is_none());
    }

    #[test]
    fn syslog_years_follow_the_file_not_todays_date() {
        // A file spanning today's month and day stays in one year, in order.
        let text = "Jun 14 15:16:01 combo sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2\n\
                    Jul 27 14:42:00 combo kernel: Real Time Clock Driver v1.12\n";
        let end: DateTime<Utc> = "2026-07-01T12:00:00Z".parse().unwrap();
        let (events, r) = load_rebased(text, &test_dataset(), end - REAL_WINDOW, end);
        let r = r.unwrap();
        assert_eq!(r.original.0.to_rfc3339(), "2025-06-14T15:16:01+00:00");
        assert_eq!(r.original.1.to_rfc3339(), "2025-07-27T14:42:00+00:00");
        assert!(events[0].time < events[1].time && events[1].time == end);
        // A file running over New Year moves on to the next year.
        let lines = ["Dec 31 23:59:58 h sshd[1]: a", "", "Jan  1 00:00:01 h sshd[1]: b", "Feb 29 00:00:01 h cron: c"];
        assert_eq!(syslog_years(&lines, "2028-06-01T00:00:00Z".parse().unwrap()), [2027, 2027, 2028, 2028]);
    }
}
