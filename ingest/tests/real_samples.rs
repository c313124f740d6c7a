#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Falco, Suricata and Trivy mappings against real output of those tools
//! (copied, never edited, from public repositories: `tests/data/README.md`
//! names the source, commit and licence of every file).
//!
//! Each file goes through the crate's public API the way `vigil import` takes
//! it: the format is detected from the first non-blank line, line formats are
//! parsed line by line with [`LineParser`], a Trivy report as one document.
//! The expected values below were read off the sample files.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use vigil_event::{Event, Kind, Severity};
use vigil_ingest::formats::trivy;
use vigil_ingest::import::{import, LineParser};
use vigil_ingest::Format;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Detects the format like `vigil import` (first non-blank line), then parses
/// every line; any rejected line fails the test with its number and reason.
fn parse_lines(rel: &str) -> (Format, Vec<Event>) {
    let text = read(rel);
    let first = text.lines().find(|l| !l.trim().is_empty()).expect("sample is not empty");
    let format = Format::detect(first).unwrap_or_else(|| panic!("{rel}: format not detected"));
    let mut parser = LineParser::new(format, Utc::now());
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parser.line(line, i + 1) {
            Ok(Some(e)) => {
                // The original record is kept verbatim.
                assert_eq!(e.raw, serde_json::from_str::<Value>(line).unwrap(), "{rel}:{}", i + 1);
                events.push(e);
            }
            Ok(None) => {}
            Err(err) => panic!("{rel}: rejected {err}"),
        }
    }
    assert_eq!(events.len(), text.lines().filter(|l| !l.trim().is_empty()).count(), "{rel}: one event per record");
    for e in &events {
        assert_eq!(e.validate(), Ok(()), "{rel}: {e:?}");
    }
    (format, events)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An endpoint as (address, port).
type Peer = (IpAddr, Option<u16>);

fn endpoints(e: &Event) -> (Option<Peer>, Option<Peer>) {
    (e.src.map(|p| (p.ip, p.port)), e.dst.map(|p| (p.ip, p.port)))
}

fn by_kind(events: &[Event]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(e.kind.as_str()).or_default() += 1;
    }
    m
}

/// Suricata's own record type decides the kind: alerts are alerts, flow and
/// netflow records network events, everything else (dns, http, fileinfo,
/// stats, quic…) a log event.
fn assert_suricata_kinds(events: &[Event]) {
    for e in events {
        let expected = match e.raw["event_type"].as_str().unwrap() {
            "alert" => Kind::Alert,
            "flow" | "netflow" => Kind::Network,
            _ => Kind::Log,
        };
        assert_eq!(e.kind, expected, "{}", e.raw);
        assert_eq!(e.source, "suricata");
        // EVE writes the offset without a colon (`+0200`).
        let t = DateTime::parse_from_str(e.raw["timestamp"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f%z").unwrap();
        assert_eq!(e.time, t.with_timezone(&Utc));
        if e.kind == Kind::Alert {
            assert_eq!(e.message, e.raw["alert"]["signature"].as_str().unwrap());
            assert_eq!(e.activity_id, Some(1));
        } else {
            assert_eq!(e.severity, Severity::Info);
        }
    }
}

#[test]
fn suricata_tenzir_eve_alert_flow_netflow_and_protocol_records() {
    let (format, events) = parse_lines("suricata/tenzir-eve.json");
    assert_eq!(format, Format::Suricata);
    assert_suricata_kinds(&events);
    assert_eq!(by_kind(&events), BTreeMap::from([("alert", 1), ("log", 4), ("network", 2)]));

    // The IRC download-command alert (Suricata severity 2 = medium), with its
    // +0200 timestamp normalised to UTC.
    let alert = &events[0];
    assert_eq!(alert.kind, Kind::Alert);
    assert_eq!(alert.message, "ET CURRENT_EVENTS SUSPICIOUS IRC - PRIVMSG *.(exe|tar|tgz|zip)  download command");
    assert_eq!(alert.severity, Severity::Medium);
    assert_eq!(
        alert.time,
        Utc.with_ymd_and_hms(2011, 8, 12, 12, 52, 57).unwrap() + chrono::Duration::microseconds(716_360)
    );
    assert_eq!(endpoints(alert), (Some((ip("147.32.84.165"), Some(1181))), Some((ip("78.40.125.4"), Some(6667)))));
    assert_eq!(alert.protocol.as_deref(), Some("tcp"));
    assert_eq!(alert.raw["alert"]["signature_id"], 2017318);
    assert_eq!(alert.raw["alert"]["category"], "Potentially Bad Traffic");

    // A NetBIOS flow and its netflow record: app_proto "failed" means Suricata
    // could not tell the application protocol, so the protocol is the transport.
    for i in [3, 5] {
        let flow = &events[i];
        assert_eq!(flow.kind, Kind::Network, "{}", flow.raw);
        assert_eq!(flow.raw["app_proto"], "failed");
        assert_eq!(flow.protocol.as_deref(), Some("udp"), "{}", flow.raw);
        assert_eq!(endpoints(flow), (Some((ip("147.32.84.165"), Some(138))), Some((ip("147.32.84.255"), Some(138)))));
    }

    // The fileinfo record names its application protocol.
    assert_eq!((events[2].kind, events[2].protocol.as_deref()), (Kind::Log, Some("http")));
    assert_eq!(events[2].message, "suricata fileinfo");
    // A DNS query, and a QUIC record written with spaces after the separators.
    assert_eq!((events[1].kind, events[1].protocol.as_deref()), (Kind::Log, Some("udp")));
    let quic = &events[6];
    assert_eq!((quic.kind, quic.protocol.as_deref()), (Kind::Log, Some("udp")));
    assert_eq!(quic.time, utc("2018-03-02T15:20:26.274662Z"));
    assert_eq!(endpoints(quic).1, Some((ip("209.85.202.155"), Some(443))));

    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "distinct records get distinct ids");
}

#[test]
fn suricata_surevego_eve_alerts_ipv6_icmp_flows_and_repeated_records() {
    let (format, events) = parse_lines("suricata/surevego-eve.json");
    assert_eq!(format, Format::Suricata);
    assert_suricata_kinds(&events);
    assert_eq!(by_kind(&events), BTreeMap::from([("alert", 6), ("log", 15), ("network", 13)]));

    // Every alert is the APT user-agent policy rule (severity 3 = low), from
    // the container to the Debian mirror; `\/` in the JSON is a plain slash.
    let alerts: Vec<&Event> = events.iter().filter(|e| e.kind == Kind::Alert).collect();
    assert_eq!(alerts.len(), 6);
    for a in &alerts {
        assert_eq!(a.message, "ET POLICY GNU/Linux APT User-Agent Outbound likely related to package management");
        assert_eq!(a.severity, Severity::Low);
        assert_eq!(a.raw["alert"]["signature_id"], 2013504);
        assert_eq!(endpoints(a), (Some((ip("172.17.0.2"), Some(41402))), Some((ip("54.230.202.37"), Some(80)))));
        assert_eq!(a.protocol.as_deref(), Some("tcp"));
    }
    // Suricata writes some alerts with `http` before `alert`: same mapping.
    let tx2 = alerts.iter().find(|a| a.raw["tx_id"] == 2).unwrap();
    assert_eq!(tx2.raw["http"]["url"], "/debian/pool/main/p/perl/perl-modules-5.24_5.24.1-1_all.deb");
    assert_eq!(alerts[0].time, utc("2017-01-30T15:12:36.066011Z"));

    let flow = |id: u64| events.iter().find(|e| e.kind == Kind::Network && e.raw["flow_id"] == id).unwrap();
    // mDNS over IPv6 (zero-padded addresses), application protocol unknown.
    let mdns6 = flow(2_012_358_999_903_934);
    assert_eq!(
        endpoints(mdns6),
        (Some((ip("fe80::42:95ff:fea2:534a"), Some(5353))), Some((ip("ff02::fb"), Some(5353))))
    );
    assert_eq!(mdns6.protocol.as_deref(), Some("udp"));
    // ICMPv6 router solicitation: no ports.
    let icmp6 = flow(1_234_003_551_600_694);
    assert_eq!(endpoints(icmp6), (Some((ip("fe80::42:acff:fe11:2"), None)), Some((ip("ff02::2"), None))));
    assert_eq!(icmp6.protocol.as_deref(), Some("ipv6-icmp"));
    // A DNS flow names its application protocol; the mirror download is http.
    assert_eq!(flow(955_054_024_165_314).protocol.as_deref(), Some("dns"));
    assert_eq!(flow(1_501_577_875_823_823).protocol.as_deref(), Some("http"));

    let stats = events.last().unwrap();
    assert_eq!((stats.kind, stats.message.as_str(), stats.src, stats.dst), (Kind::Log, "suricata stats", None, None));

    // Suricata repeated one DNS answer byte for byte (lines 8 and 10): the same
    // record gets the same id, so it is stored once; everything else is distinct.
    assert_eq!(events[7].raw, events[9].raw);
    assert_eq!(events[7].id, events[9].id);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len() - 1);
}

#[test]
fn falco_engine_output_with_only_a_command_line() {
    // Falco's own regression-test output: no hostname, and a rule whose output
    // templates only `proc.cmdline`.
    let (format, events) = parse_lines("falco/falco-single_rule_with_cat_write.json");
    assert_eq!(format, Format::Falco);
    assert_eq!(events.len(), 8);
    for e in &events {
        assert_eq!((e.kind, e.source.as_str()), (Kind::Alert, "falco"));
        assert_eq!(e.severity, Severity::Medium, "priority Warning");
        assert_eq!(e.raw["rule"], "open_from_cat");
        assert_eq!(e.host, None);
        assert_eq!(e.user, None);
        assert!(e.message.ends_with(": Warning An open was seen (command=cat /dev/null)"), "{}", e.message);
        let p = e.process.as_ref().expect("proc.cmdline alone still names the process");
        assert_eq!((p.cmdline.as_deref(), p.pid, p.name.as_deref()), (Some("cat /dev/null"), None, None));
        // Nanosecond timestamps are kept.
        assert_eq!(e.time, utc(e.raw["time"].as_str().unwrap()));
    }
    assert_eq!(events[0].time, utc("2016-08-04T16:17:57.881781397Z"));
    assert_eq!(events[0].time.timestamp_subsec_nanos(), 881_781_397);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 8);
}

#[test]
fn falco_terminal_shell_in_container() {
    let (format, events) = parse_lines("falco/falco-website-terminal-shell.json");
    assert_eq!(format, Format::Falco);
    let [e] = events.as_slice() else { panic!("one alert") };
    assert_eq!((e.kind, e.severity), (Kind::Alert, Severity::Critical));
    assert_eq!(e.raw["rule"], "Terminal shell in container");
    assert_eq!(e.host.as_deref(), Some("falco-xczjd"));
    assert_eq!(e.user.as_deref(), Some("root"));
    let p = e.process.as_ref().unwrap();
    assert_eq!(p.name.as_deref(), Some("sh"));
    assert_eq!(p.cmdline.as_deref(), Some("sh -c clear; (bash || ash || sh)"));
    assert_eq!(p.pid, None, "the rule did not template proc.pid");
    assert!(e.message.starts_with("13:44:05.478445995: Critical A shell was spawned in a container"), "{}", e.message);
    assert_eq!(e.time, utc("2023-05-25T13:44:05.478445995Z"));
    // Container and Kubernetes context stay searchable in the raw record.
    assert_eq!(e.raw["output_fields"]["container.id"], "ee97d9c4186f");
    assert_eq!(e.raw["output_fields"]["container.image.repository"], "docker.io/library/alpine");
    assert_eq!(e.raw["output_fields"]["k8s.pod.name"], "kubecon");
    assert_eq!(e.raw["tags"], serde_json::json!(["container", "mitre_execution", "shell"]));
}

/// Detects the format from the first line, as `vigil import` does, and parses
/// the whole document; also returns the report as JSON for cross-checks.
fn parse_trivy(rel: &str, now: DateTime<Utc>) -> (Vec<Event>, Value) {
    let text = read(rel);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(Format::detect(first), Some(Format::Trivy), "{rel}");
    let events = trivy::parse_report(&text, now).unwrap_or_else(|e| panic!("{rel}: rejected {e}"));
    for e in &events {
        assert_eq!((e.kind, e.source.as_str()), (Kind::Vuln, "trivy"));
        assert_eq!(e.validate(), Ok(()));
    }
    (events, serde_json::from_str(&text).unwrap())
}

/// One vuln event per entry of `Results[].Vulnerabilities`, in order, each
/// naming its target, package, versions and severity; nothing else.
fn assert_one_event_per_vulnerability(events: &[Event], report: &Value) {
    let host = report["ArtifactName"].as_str();
    let mut expected = Vec::new();
    for r in report["Results"].as_array().unwrap() {
        for v in r["Vulnerabilities"].as_array().into_iter().flatten() {
            expected.push((r, v));
        }
    }
    assert_eq!(events.len(), expected.len());
    for (e, (r, v)) in events.iter().zip(expected) {
        assert_eq!(e.host.as_deref(), host);
        assert_eq!(&e.raw["vulnerability"], v);
        assert_eq!(e.raw["target"], r["Target"]);
        let sev = match v["Severity"].as_str().unwrap() {
            "CRITICAL" => Severity::Critical,
            "HIGH" => Severity::High,
            "MEDIUM" => Severity::Medium,
            "LOW" => Severity::Low,
            _ => Severity::Unknown,
        };
        assert_eq!(e.severity, sev);
        let s = |k: &str| v[k].as_str().unwrap();
        assert_eq!(
            e.message,
            format!(
                "{} in {} {} (fixed in {})",
                s("VulnerabilityID"),
                s("PkgName"),
                s("InstalledVersion"),
                s("FixedVersion")
            )
        );
    }
}

#[test]
fn trivy_report_with_package_inventory() {
    let now = Utc::now();
    let (events, report) = parse_trivy("trivy/trivy-pip.json", now);
    assert_one_event_per_vulnerability(&events, &report);
    // Two Werkzeug advisories; the seven packages of the `Packages` inventory
    // are context, not findings, and become no events of their own.
    assert_eq!(events.len(), 2);
    assert_eq!(report["Results"][0]["Packages"].as_array().unwrap().len(), 7);
    let high = &events[0];
    assert_eq!(high.message, "CVE-2019-14806 in Werkzeug 0.11 (fixed in 0.15.3)");
    assert_eq!(high.severity, Severity::High);
    assert_eq!(high.host.as_deref(), Some("testdata/fixtures/repo/pip"));
    assert_eq!((high.raw["target"].as_str(), high.raw["type"].as_str()), (Some("requirements.txt"), Some("pip")));
    assert_eq!(
        (events[1].raw["vulnerability"]["VulnerabilityID"].as_str(), events[1].severity),
        (Some("CVE-2020-28724"), Severity::Medium)
    );
    // Every vulnerable package is in the target's inventory, at the installed version.
    let inventory: HashSet<(&str, &str)> = report["Results"][0]["Packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["Name"].as_str().unwrap(), p["Version"].as_str().unwrap()))
        .collect();
    for e in &events {
        let v = &e.raw["vulnerability"];
        assert!(inventory.contains(&(v["PkgName"].as_str().unwrap(), v["InstalledVersion"].as_str().unwrap())));
    }
    // The scan time is the report's CreatedAt, so a re-import later gives the same ids.
    assert!(events.iter().all(|e| e.time == utc("2021-08-25T12:20:30.000000005Z")));
    let again = trivy::parse_report(&read("trivy/trivy-pip.json"), now + chrono::Duration::days(3)).unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), events.iter().map(|e| e.id).collect::<Vec<_>>());
}

#[test]
fn trivy_report_without_created_at_and_with_a_clean_target() {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let (events, report) = parse_trivy("trivy/defectdojo-scheme_2_many_vulns.json", now);
    assert_one_event_per_vulnerability(&events, &report);
    // Three Alpine package CVEs, none for the clean HdrHistogram jar, two for commons-compress.
    assert_eq!(events.len(), 5);
    let targets: Vec<&str> = events.iter().map(|e| e.raw["target"].as_str().unwrap()).collect();
    assert_eq!(targets.iter().filter(|t| **t == "teamdojo:latest (alpine 3.9.4)").count(), 3);
    assert_eq!(targets.iter().filter(|t| **t == "app/libs/commons-compress-1.14.jar").count(), 2);
    assert!(!targets.contains(&"app/libs/HdrHistogram-2.1.9.jar"));
    let bz2 = events.iter().find(|e| e.raw["vulnerability"]["VulnerabilityID"] == "CVE-2019-12900").unwrap();
    assert_eq!(bz2.severity, Severity::Critical);
    assert_eq!(bz2.message, "CVE-2019-12900 in libbz2 1.0.6-r6 (fixed in 1.0.6-r7)");
    assert_eq!(bz2.host.as_deref(), Some("teamdojo:latest"));
    assert_eq!((bz2.raw["class"].as_str(), bz2.raw["type"].as_str()), (Some("os-pkgs"), Some("alpine")));
    let krb5 = events.iter().find(|e| e.raw["vulnerability"]["PkgName"] == "krb5-libs").unwrap();
    assert_eq!(
        (krb5.severity, krb5.raw["vulnerability"]["FixedVersion"].as_str()),
        (Severity::High, Some("1.15.5-r1"))
    );
    let compress = events.iter().find(|e| e.raw["vulnerability"]["VulnerabilityID"] == "CVE-2018-1324").unwrap();
    assert_eq!(compress.message, "CVE-2018-1324 in org.apache.commons:commons-compress 1.14 (fixed in 1.16)");
    assert_eq!((compress.severity, compress.raw["type"].as_str()), (Severity::Medium, Some("jar")));
    // Reports from Trivy before `CreatedAt` existed carry no scan time: they
    // are stamped with the time the import passes in.
    assert!(report.get("CreatedAt").is_none());
    assert!(events.iter().all(|e| e.time == now));
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 5);
}

/// The same files through `import()` into a real database (as `vigil import`
/// runs it): detected format, nothing rejected, every record stored (an exact
/// repeat once), and a second import of a file adds nothing.
#[tokio::test]
async fn import_stores_every_real_record() {
    let (_db, pool) = vigil_store::testing::migrated(vigil_store::TimescaleChoice::Auto).await;
    let writer = vigil_store::EventWriter::new(pool);
    // (file, format, events stored, exact repeats, re-import adds nothing)
    let cases = [
        ("suricata/tenzir-eve.json", Format::Suricata, 7, 0, true),
        ("suricata/surevego-eve.json", Format::Suricata, 33, 1, true),
        ("falco/falco-single_rule_with_cat_write.json", Format::Falco, 8, 0, true),
        ("falco/falco-website-terminal-shell.json", Format::Falco, 1, 0, true),
        ("trivy/trivy-pip.json", Format::Trivy, 2, 0, true),
        // No CreatedAt: each import stamps the report with its own time, so a
        // re-import is stored again (see the README's known limitations).
        ("trivy/defectdojo-scheme_2_many_vulns.json", Format::Trivy, 5, 0, false),
    ];
    for (rel, want_format, stored, repeats, idempotent) in cases {
        let run = || async {
            let file = BufReader::new(File::open(path(rel)).unwrap());
            import(file, None, &writer, 10, rel, |_| {}).await.unwrap()
        };
        let (format, s) = run().await;
        assert_eq!(format, want_format, "{rel}");
        assert_eq!((s.rejected, s.errors.len()), (0, 0), "{rel}: {:?}", s.errors);
        assert_eq!((s.stored, s.duplicates), (stored, repeats), "{rel}");
        if idempotent {
            let (_, again) = run().await;
            assert_eq!((again.stored, again.duplicates, again.rejected), (0, stored + repeats, 0), "{rel}: re-import");
        }
    }
}
