//! The graph sync against a real PostgreSQL (one throw-away database per
//! test): the NjRAT Zeek capture folded into `connections`, exactly-once
//! across a crash, a restart, redelivery and two concurrent workers,
//! malformed raw records, and running-vs-dormant vulnerabilities with their
//! alert, checked through SRQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufReader;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus_client::registry::Registry;
use serde_json::json;
use vigil_event::{Endpoint, Event, Kind, Process, Severity};
use vigil_graph::sync::{vuln_alert_id, GraphSync, SyncCounters, SyncStats, TAIL_NAME};
use vigil_store::testing::{migrated, TempDatabase};
use vigil_store::{EventWriter, Pool, TimescaleChoice};

const NJRAT: &str = "stratosphere_njrat_zeek/labeled-conn.log";

async fn db() -> (TempDatabase, Pool) {
    migrated(TimescaleChoice::Auto).await
}

/// Both storage modes: TimescaleDB where the server has it, and native partitioning.
const MODES: [TimescaleChoice; 2] = [TimescaleChoice::Auto, TimescaleChoice::Off];

fn sync() -> GraphSync {
    GraphSync::new().with_settle(Duration::ZERO)
}

/// `graph` counting in a registry of its own (as a server's), and that registry.
fn counted(graph: GraphSync) -> (GraphSync, Registry) {
    let mut registry = Registry::with_prefix("vigil");
    (graph.with_counters(SyncCounters::register(&mut registry)), registry)
}

/// What `/metrics` would show of `registry`.
fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry).unwrap();
    text
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn write(pool: &Pool, events: &[Event]) -> vigil_store::WriteStats {
    EventWriter::new(pool.clone()).write(events).await.unwrap()
}

async fn scalar(pool: &Pool, sql: &str) -> i64 {
    pool.get().await.unwrap().query_one(sql, &[]).await.unwrap().get(0)
}

/// Expected figures for one edge of a Zeek TSV conn.log, read from the file itself.
#[derive(Debug, Default)]
struct EdgeTruth {
    count: i64,
    bytes: i64,
    first_ts: f64,
    last_ts: f64,
}

fn zeek_truth(text: &str, src: &str, dst: &str, port: &str, proto: &str) -> (EdgeTruth, i64, i64) {
    let (mut edge, mut lines, mut all_bytes) = (EdgeTruth { first_ts: f64::MAX, ..Default::default() }, 0, 0);
    let num = |v: &str| v.parse::<i64>().unwrap_or(0);
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        lines += 1;
        let bytes = num(f[9]) + num(f[10]);
        all_bytes += bytes;
        if (f[2], f[4], f[5], f[6]) == (src, dst, port, proto) {
            let ts: f64 = f[0].parse().unwrap();
            edge.count += 1;
            edge.bytes += bytes;
            edge.first_ts = edge.first_ts.min(ts);
            edge.last_ts = edge.last_ts.max(ts);
        }
    }
    (edge, lines, all_bytes)
}

fn zeek_time(ts: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros((ts * 1e6).round() as i64).unwrap()
}

#[tokio::test]
async fn njrat_capture_becomes_edges_with_the_c2_connection() {
    for mode in MODES {
        njrat_capture(mode).await;
    }
}

async fn njrat_capture(mode: TimescaleChoice) {
    let Some(path) = vigil_store::testing::shared_data(NJRAT) else { return };
    let text = std::fs::read_to_string(path).expect("the NjRAT sample in shared/data");
    let (c2, lines, all_bytes) = zeek_truth(&text, "192.168.1.115", "41.108.179.197", "1177", "tcp");
    assert!(c2.count > 200, "the sample has the C2 flows ({})", c2.count);

    let (_db, pool) = migrated(mode).await;
    // The infected machine is a known host; the C2 server is not.
    pool.get()
        .await
        .unwrap()
        .execute("INSERT INTO hosts (host, ip) VALUES ('victim-pc', $1)", &[&ip("192.168.1.115")])
        .await
        .unwrap();
    let writer = EventWriter::new(pool.clone());
    let (_, summary) =
        vigil_ingest::import::import(BufReader::new(text.as_bytes()), None, &writer, 250, "labeled-conn.log", |_| {})
            .await
            .unwrap();
    assert_eq!((summary.stored, summary.rejected), (lines as u64, 0));

    let (graph, registry) = counted(sync().with_page_size(100));
    let total = graph.sync_all(&pool).await.unwrap();
    assert_eq!(total.events, lines as u64);
    assert_eq!(total.network_events, lines as u64);

    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT dst_port, protocol, src_process, count, bytes, first_seen, last_seen, src_host, dst_host
               FROM connections WHERE src_ip = $1 AND dst_ip = $2",
            &[&ip("192.168.1.115"), &ip("41.108.179.197")],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one edge from the victim to the C2 server");
    let r = &rows[0];
    assert_eq!((r.get::<_, i32>(0), r.get::<_, String>(1), r.get::<_, String>(2)), (1177, "tcp".into(), "".into()));
    assert_eq!(r.get::<_, i64>(3), c2.count);
    assert_eq!(r.get::<_, i64>(4), c2.bytes);
    assert_eq!(r.get::<_, DateTime<Utc>>(5), zeek_time(c2.first_ts));
    assert_eq!(r.get::<_, DateTime<Utc>>(6), zeek_time(c2.last_ts));
    assert_eq!(r.get::<_, Option<String>>(7).as_deref(), Some("victim-pc"), "source named from hosts");
    assert_eq!(r.get::<_, Option<String>>(8), None, "unknown destination");

    // Every network event is in exactly one edge, and every byte too.
    let (count, bytes): (i64, i64) = {
        let r = client.query_one("SELECT sum(count)::int8, sum(bytes)::int8 FROM connections", &[]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(count, scalar(&pool, "SELECT count(*) FROM events WHERE kind = 'network'").await);
    assert_eq!((count, bytes), (lines, all_bytes));

    // Caught up: nothing more to do, the watermark is saved.
    assert_eq!(graph.sync_once(&pool).await.unwrap(), SyncStats::default());
    assert!(graph.tail().watermark(&pool).await.unwrap().is_some());
    let metrics = scrape(&registry);
    assert!(metrics.contains(&format!("vigil_graph_events_total{{stage=\"network\"}} {lines}\n")), "{metrics}");
}

/// `n` agent-reported connections from web-01 (nginx) to the database, 100 bytes each.
fn agent_flows(from: u32, n: u32, base: DateTime<Utc>) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let time = base + TimeDelta::milliseconds(i64::from(i));
            let mut e = Event::new(Kind::Network, "vigil-agent", time, format!("flow-{i}").as_bytes());
            e.host = Some("web-01".into());
            e.activity_id = Some(1);
            e.src = Some(Endpoint { ip: ip("10.0.0.5"), port: Some(40_000 + (i % 1000) as u16) });
            e.dst = Some(Endpoint { ip: ip("10.0.0.9"), port: Some(5432) });
            e.protocol = Some("tcp".into());
            e.process = Some(Process { pid: Some(4242), name: Some("nginx".into()), ..Default::default() });
            e.raw = json!({"bytes": 100});
            e
        })
        .collect()
}

async fn edge(pool: &Pool) -> (i64, i64, Option<String>) {
    let client = pool.get().await.unwrap();
    let rows = client
        .query("SELECT count, bytes, src_host FROM connections WHERE src_process = 'nginx' AND dst_port = 5432", &[])
        .await
        .unwrap();
    assert!(rows.len() <= 1);
    rows.first().map(|r| (r.get(0), r.get(1), r.get(2))).unwrap_or((0, 0, None))
}

#[tokio::test]
async fn a_crash_a_restart_and_redelivery_never_double_count() {
    for mode in MODES {
        crash_restart_redelivery(mode).await;
    }
}

async fn crash_restart_redelivery(mode: TimescaleChoice) {
    let (_db, pool) = migrated(mode).await;
    let base = Utc::now() - TimeDelta::hours(1);
    let first = agent_flows(0, 30, base);
    write(&pool, &first).await;

    // One page of 10 committed.
    let graph = sync().with_page_size(10);
    let s = graph.sync_once(&pool).await.unwrap();
    assert_eq!((s.events, s.network_events, s.edges, s.page_full), (10, 10, 1, true));
    assert_eq!(edge(&pool).await, (10, 1_000, Some("web-01".into())), "the agent's host is the source host");

    // The next page is applied, then the process dies before the commit.
    let saved = graph.tail().watermark(&pool).await.unwrap();
    let page = graph.tail().next(&pool, saved, 10).await.unwrap();
    let until = page.last().unwrap().watermark();
    {
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        let applied = graph.apply_range(&tx, saved, until).await.unwrap();
        assert_eq!(applied.network_events, 10);
        let inside: i64 = tx.query_one("SELECT sum(count)::int8 FROM connections", &[]).await.unwrap().get(0);
        assert_eq!(inside, 20, "applied inside the transaction");
        // Dropped without commit: what a crash does.
    }
    assert_eq!(edge(&pool).await.0, 10, "nothing of the crashed page is visible");
    assert_eq!(graph.tail().watermark(&pool).await.unwrap(), saved, "and the watermark did not move");

    // A restarted worker (a new instance) resumes from the saved watermark.
    let restarted = sync().with_page_size(10);
    let s = restarted.sync_all(&pool).await.unwrap();
    assert_eq!((s.events, s.network_events), (20, 20));
    assert_eq!(edge(&pool).await, (30, 3_000, Some("web-01".into())));

    // Redelivery: the same 30 events again (stored once by the writer), plus 5 new ones.
    let again = write(&pool, &first).await;
    assert_eq!((again.inserted, again.duplicates), (0, 30));
    let more = agent_flows(30, 5, base);
    let mut mixed = first[..12].to_vec();
    mixed.extend(more);
    let w = write(&pool, &mixed).await;
    assert_eq!((w.inserted, w.duplicates), (5, 12));
    let s = restarted.sync_all(&pool).await.unwrap();
    assert_eq!(s.network_events, 5);
    assert_eq!(edge(&pool).await, (35, 3_500, Some("web-01".into())));
    assert_eq!(restarted.sync_all(&pool).await.unwrap().events, 0);
    assert_eq!(edge(&pool).await.0, 35);
}

#[tokio::test]
async fn two_workers_on_one_watermark_apply_each_page_once() {
    let (_db, pool) = db().await;
    let base = Utc::now() - TimeDelta::hours(1);
    for chunk in agent_flows(0, 400, base).chunks(50) {
        write(&pool, chunk).await;
    }
    let (a, b) = (sync().with_page_size(7), sync().with_page_size(7));
    let (sa, sb) = tokio::join!(a.sync_all(&pool), b.sync_all(&pool));
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.network_events + sb.network_events, 400, "{sa:?} {sb:?}");
    assert_eq!(edge(&pool).await, (400, 40_000, Some("web-01".into())));
    let name: String =
        pool.get().await.unwrap().query_one("SELECT name FROM index_watermarks", &[]).await.unwrap().get(0);
    assert_eq!(name, TAIL_NAME);
}

#[tokio::test]
async fn malformed_raw_records_never_fail_a_page() {
    let (_db, pool) = db().await;
    let t = Utc::now() - TimeDelta::hours(1);
    let net = |id: &str, raw: serde_json::Value, proto: Option<&str>| {
        let mut e = Event::new(Kind::Network, "zeek", t, id.as_bytes());
        e.src = Some(Endpoint { ip: ip("192.0.2.1"), port: Some(5555) });
        e.dst = Some(Endpoint { ip: ip("192.0.2.2"), port: None });
        e.protocol = proto.map(str::to_string);
        e.raw = raw;
        e
    };
    let other = |kind: Kind, id: &str, raw: serde_json::Value| {
        let mut e = Event::new(kind, "vigil-agent", t, id.as_bytes());
        e.host = Some("h1".into());
        e.raw = raw;
        e
    };
    let events = vec![
        net("a", json!({"bytes": "12kB"}), None),
        net("b", json!({"orig_bytes": -5, "resp_bytes": 1e30}), None),
        net("c", json!(["not", "an", "object"]), None),
        net("d", json!({"flow": {"bytes_toserver": 10, "bytes_toclient": "x"}}), Some("udp")),
        other(Kind::Package, "p1", json!({"package": 42, "files": "/bin/x"})),
        other(Kind::Package, "p2", json!({"package": "tool", "version": 3, "files": [1, null, "/usr/bin/tool", ""]})),
        other(Kind::Package, "p3", json!("just a string")),
        other(Kind::Vuln, "v1", json!({"vulnerability": {"VulnerabilityID": 7, "PkgName": "tool"}})),
        other(Kind::Vuln, "v2", json!({"vulnerability": "CVE-0000-0000"})),
    ];
    write(&pool, &events).await;
    let s = sync().sync_all(&pool).await.unwrap();
    assert_eq!((s.events, s.network_events, s.packages, s.vulns), (9, 4, 1, 0));
    let client = pool.get().await.unwrap();
    let rows =
        client.query("SELECT protocol, dst_port, count, bytes FROM connections ORDER BY protocol", &[]).await.unwrap();
    let got: Vec<(String, i32, i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    // Non-numbers count as absent, negatives as 0, and the total is clamped to bigint.
    assert_eq!(got, vec![("".into(), 0, 3, i64::MAX), ("udp".into(), 0, 1, 10)]);
    let files: Vec<String> = client
        .query("SELECT path FROM package_files WHERE package = 'tool'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(files, ["/usr/bin/tool"]);
}

const HOST: &str = "web-01";

fn agent(kind: Kind, host: &str, time: DateTime<Utc>, id: &str) -> Event {
    let mut e = Event::new(kind, "vigil-agent", time, id.as_bytes());
    e.host = Some(host.into());
    e
}

fn package(host: &str, time: DateTime<Utc>, name: &str, version: &str, action: &str, files: &[&str]) -> Event {
    let mut e = agent(Kind::Package, host, time, &format!("{name}-{version}-{action}"));
    e.message = format!("{name} {version} {action}");
    e.raw = json!({"package": name, "version": version, "manager": "dpkg", "action": action, "files": files});
    e
}

fn process(host: &str, time: DateTime<Utc>, activity: i32, pid: i32, path: &str) -> Event {
    let mut e = agent(Kind::Process, host, time, &format!("{activity}-{pid}-{time}"));
    e.activity_id = Some(activity);
    let name = path.rsplit('/').next().unwrap_or(path);
    e.process =
        Some(Process { pid: Some(pid), name: Some(name.into()), path: Some(path.into()), ..Default::default() });
    e
}

/// A Trivy report for web-01 with two critical vulnerabilities, parsed by the real importer.
fn trivy_report(created: DateTime<Utc>) -> Vec<Event> {
    let report = json!({
        "SchemaVersion": 2,
        "CreatedAt": created.to_rfc3339(),
        "ArtifactName": HOST,
        "ArtifactType": "filesystem",
        "Results": [{
            "Target": "web-01 (debian 12.5)", "Class": "os-pkgs", "Type": "debian",
            "Vulnerabilities": [
                {"VulnerabilityID": "CVE-2024-6387", "PkgName": "openssh-server", "InstalledVersion": "1:9.2p1-2",
                 "FixedVersion": "1:9.2p1-2+deb12u3", "Severity": "CRITICAL", "Title": "openssh: regreSSHion"},
                {"VulnerabilityID": "CVE-2023-38545", "PkgName": "curl", "InstalledVersion": "7.88.1-10",
                 "FixedVersion": "7.88.1-10+deb12u4", "Severity": "CRITICAL", "Title": "curl: SOCKS5 heap overflow"}
            ]
        }]
    });
    let events = vigil_ingest::formats::trivy::parse_report(&report.to_string(), Utc::now()).unwrap();
    assert!(events.iter().all(|e| e.kind == Kind::Vuln && e.severity == Severity::Critical));
    events
}

async fn statuses(pool: &Pool) -> Vec<(String, String, String)> {
    pool.get()
        .await
        .unwrap()
        .query("SELECT cve, package, status FROM vulnerabilities ORDER BY cve", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn st(cve: &str, package: &str, status: &str) -> (String, String, String) {
    (cve.into(), package.into(), status.into())
}

/// The CVEs `in:vulnerabilities status:running severity:critical` returns.
async fn srql_running_critical(pool: &Pool) -> Vec<String> {
    let compiled =
        vigil_srql::compile("in:vulnerabilities status:running severity:critical", &Default::default(), Utc::now())
            .unwrap();
    let result = vigil_search::run(pool, &compiled, &Default::default()).await.unwrap();
    let cve = result.columns.iter().position(|c| c.name == "cve").expect("a cve column");
    let host = result.columns.iter().position(|c| c.name == "host").expect("a host column");
    result.rows.iter().map(|r| format!("{}@{}", r[cve].as_str().unwrap(), r[host].as_str().unwrap())).collect()
}

async fn alerts(pool: &Pool) -> Vec<(uuid::Uuid, String, i16, String, Option<String>, serde_json::Value)> {
    pool.get()
        .await
        .unwrap()
        .query("SELECT alert_id, rule, severity_id, title, host, raw FROM alerts ORDER BY time", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

#[tokio::test]
async fn a_vulnerability_is_running_only_while_its_binary_runs() {
    let (_db, pool) = db().await;
    let t0 = Utc::now() - TimeDelta::hours(2);
    let at = |minutes: i64| t0 + TimeDelta::minutes(minutes);
    let (graph, registry) = counted(sync());

    // Inventory, then the scan, then sshd starts on web-01. db-01 runs curl,
    // which must not make web-01's curl vulnerability running.
    let mut events = vec![
        package(HOST, at(0), "openssh-server", "1:9.2p1-2", "installed", &["/usr/sbin/sshd", "/usr/bin/ssh-keygen"]),
        package(HOST, at(0), "curl", "7.88.1-10", "installed", &["/usr/bin/curl"]),
        process("db-01", at(1), 1, 77, "/usr/bin/curl"),
        process(HOST, at(1), 1, 500, "/usr/sbin/nginx"),
    ];
    events.extend(trivy_report(at(5)));
    events.push(process(HOST, at(6), 1, 812, "/usr/sbin/sshd"));
    write(&pool, &events).await;

    let s = graph.sync_all(&pool).await.unwrap();
    assert_eq!((s.vulns, s.packages, s.processes_started), (2, 2, 3));
    assert_eq!((s.vulns_running, s.alerts), (1, 1), "{s:?}");
    assert_eq!(
        statuses(&pool).await,
        [st("CVE-2023-38545", "curl", "dormant"), st("CVE-2024-6387", "openssh-server", "running")]
    );

    // Exactly one P0 alert, with a deterministic id, naming CVE, package, binary and host.
    let raised = alerts(&pool).await;
    assert_eq!(raised.len(), 1);
    let (id, rule, severity, title, host, raw) = &raised[0];
    assert_eq!(*id, vuln_alert_id(HOST, "CVE-2024-6387", "openssh-server"));
    assert_eq!((rule.as_str(), *severity, host.as_deref()), ("vulnerable-and-running", 5, Some(HOST)));
    for part in ["CVE-2024-6387", "openssh-server", "/usr/sbin/sshd", HOST] {
        assert!(title.contains(part), "{title:?} names {part}");
    }
    assert_eq!((raw["binary"].as_str(), raw["pid"].as_i64()), (Some("/usr/sbin/sshd"), Some(812)));
    assert_eq!(raw["fixed_version"], "1:9.2p1-2+deb12u3");

    assert_eq!(srql_running_critical(&pool).await, ["CVE-2024-6387@web-01"]);

    // sshd exits: dormant again; the alert stays as it was.
    write(&pool, &[process(HOST, at(10), 2, 812, "/usr/sbin/sshd")]).await;
    let s = graph.sync_all(&pool).await.unwrap();
    assert_eq!((s.processes_stopped, s.vulns_dormant, s.alerts), (1, 1, 0));
    assert_eq!(
        statuses(&pool).await,
        [st("CVE-2023-38545", "curl", "dormant"), st("CVE-2024-6387", "openssh-server", "dormant")]
    );
    assert_eq!(alerts(&pool).await.len(), 1);
    assert!(srql_running_critical(&pool).await.is_empty());

    // It starts again (new pid): running, but no second alert. A late
    // termination of an older process with that pid changes nothing.
    write(&pool, &[process(HOST, at(20), 1, 900, "/usr/sbin/sshd")]).await;
    write(&pool, &[process(HOST, at(19), 2, 900, "/usr/sbin/sshd")]).await;
    let s = graph.sync_all(&pool).await.unwrap();
    assert_eq!((s.vulns_running, s.alerts), (1, 0), "{s:?}");
    assert_eq!(statuses(&pool).await[1], st("CVE-2024-6387", "openssh-server", "running"));
    assert_eq!(alerts(&pool).await.len(), 1);

    // Launch and exit of curl within one page: it never counts as running.
    write(&pool, &[process(HOST, at(21), 1, 901, "/usr/bin/curl"), process(HOST, at(22), 2, 901, "/usr/bin/curl")])
        .await;
    graph.sync_all(&pool).await.unwrap();
    assert_eq!(statuses(&pool).await[0], st("CVE-2023-38545", "curl", "dormant"));

    // openssh-server is upgraded past the scan: fixed, even though sshd runs.
    write(&pool, &[package(HOST, at(30), "openssh-server", "1:9.2p1-2+deb12u3", "upgraded", &["/usr/sbin/sshd"])])
        .await;
    let s = graph.sync_all(&pool).await.unwrap();
    assert_eq!((s.packages, s.vulns_fixed), (1, 1), "{s:?}");
    assert_eq!(statuses(&pool).await[1], st("CVE-2024-6387", "openssh-server", "fixed"));
    assert!(srql_running_critical(&pool).await.is_empty());

    // A package event older than what is known changes nothing.
    write(&pool, &[package(HOST, at(25), "openssh-server", "1:9.2p1-2", "installed", &["/usr/sbin/sshd"])]).await;
    assert_eq!(graph.sync_all(&pool).await.unwrap().packages, 0);
    assert_eq!(statuses(&pool).await[1].2, "fixed");

    // curl removed: its vulnerability is fixed too; the package stays as a tombstone without files.
    write(&pool, &[package(HOST, at(31), "curl", "7.88.1-10", "removed", &[])]).await;
    graph.sync_all(&pool).await.unwrap();
    assert_eq!(statuses(&pool).await[0].2, "fixed");
    assert_eq!(scalar(&pool, "SELECT count(*) FROM package_files WHERE package = 'curl'").await, 0);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM packages WHERE status = 'removed'").await, 1);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM running_processes").await, 3, "db-01 curl, nginx, sshd 900");

    let metrics = scrape(&registry);
    assert!(metrics.contains("vigil_graph_alerts_raised_total 1\n"), "{metrics}");
    assert!(metrics.contains("vigil_graph_vulnerability_transitions_total{to=\"running\"} 2\n"), "{metrics}");
}

#[tokio::test]
async fn run_keeps_up_until_stopped() {
    let (_db, pool) = db().await;
    let (graph, registry) = counted(sync().with_page_size(25).with_idle_interval(Duration::from_millis(20)));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(graph.run(pool.clone(), async move {
        let _ = stop_rx.await;
    }));
    let base = Utc::now() - TimeDelta::hours(1);
    write(&pool, &agent_flows(0, 60, base)).await;
    write(&pool, &agent_flows(60, 40, base)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while edge(&pool).await.0 < 100 {
        assert!(std::time::Instant::now() < deadline, "the worker did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker).await.expect("stops promptly").unwrap();
    assert_eq!(edge(&pool).await, (100, 10_000, Some("web-01".into())));
    assert!(scrape(&registry).contains("vigil_graph_events_total{stage=\"read\"} 100\n"));
}

/// Throughput probe (not a pass/fail test): `cargo test -p vigil-graph --test
/// sync --release -- --ignored --nocapture throughput`. Network, process and
/// package events in writer-sized transactions, synced in default pages.
#[tokio::test]
#[ignore]
async fn throughput() {
    let (_db, pool) = db().await;
    let total: i64 = std::env::var("GRAPH_SYNC_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let batch = 5_000i64;
    let client = pool.get().await.unwrap();
    let started = std::time::Instant::now();
    for from in (0..total).step_by(batch as usize) {
        // One transaction per batch, like the writer: one ingested_at each.
        client
            .execute(
                "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, activity_id,
                                     process_pid, process_name, process_path, src_ip, dst_ip, dst_port, protocol,
                                     raw, schema_version)
                 SELECT now() - interval '1 hour' + i * interval '1 ms', gen_random_uuid(),
                        k.kind, 'vigil-agent', 'h' || (i % 200), 4001, 4, 1 + (i % 3 = 0)::int,
                        i % 5000, 'proc' || (i % 7), '/usr/bin/proc' || (i % 7),
                        ('10.0.' || (i % 200) || '.1')::inet, ('10.1.' || (i % 250) || '.' || (i % 2 + 1))::inet,
                        443, 'tcp',
                        CASE WHEN k.kind = 'package'
                             THEN jsonb_build_object('package', 'pkg' || (i % 300), 'version', '1.' || i,
                                                     'files', jsonb_build_array('/usr/bin/proc' || (i % 7)))
                             ELSE jsonb_build_object('bytes', i % 1000) END,
                        1
                   FROM generate_series($1::int8, $1::int8 + $2::int8 - 1) i
                  CROSS JOIN LATERAL (SELECT CASE WHEN i % 10 < 7 THEN 'network'
                                                  WHEN i % 10 < 9 THEN 'process' ELSE 'package' END AS kind) k",
                &[&from, &batch.min(total - from)],
            )
            .await
            .unwrap();
    }
    client.batch_execute("ANALYZE events").await.unwrap();
    eprintln!("loaded {total} events in {:.1}s", started.elapsed().as_secs_f64());
    let graph = sync();
    let started = std::time::Instant::now();
    let s = graph.sync_all(&pool).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("synced {} events in {secs:.1}s = {:.0} events/s: {s:?}", s.events, s.events as f64 / secs);
    assert_eq!(s.events, total as u64);
}
