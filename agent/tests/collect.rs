//! The collectors against this machine's kernel and /proc, and against the
//! dpkg fixtures in `tests/fixtures/dpkg/`: the netlink connector catches
//! short-lived execs, /proc polling catches a child and its exit, a
//! loopback connection is reported with this test's pid and then closed,
//! the dpkg inventory and its diff, sane metrics, the running collectors
//! and `vigil-agent once`. Every event produced must pass `Event::validate`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_agent::collect::metrics::MetricsCollector;
use vigil_agent::collect::net::ConnectionCollector;
use vigil_agent::collect::netlink::ProcConnector;
use vigil_agent::collect::packages::{dpkg_inventory, PackageCollector, PathResolver};
use vigil_agent::collect::process::{ProcessCollector, ProcessSource, ProcessStream, StreamSource};
use vigil_agent::collect::procfs::ProcFs;
use vigil_agent::collect::{Collectors, HostContext};
use vigil_agent::config::{AgentConfig, ProcessSourcePreference};
use vigil_event::{Event, Kind};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dpkg")
}

fn ctx(dpkg_dir: PathBuf) -> HostContext {
    HostContext {
        host: "test-host".into(),
        agent_id: "test-agent".into(),
        proc_root: "/proc".into(),
        passwd: "/etc/passwd".into(),
        dpkg_dir,
        fs_root: None,
        rpm: false,
    }
}

fn valid(events: &[Event]) {
    for e in events {
        e.validate().unwrap_or_else(|err| panic!("invalid event {err}: {}", serde_json::to_string(e).unwrap()));
        assert_eq!(e.source, "vigil-agent");
        assert!(e.host.is_some());
    }
}

fn pid_of(e: &Event) -> Option<i32> {
    e.process.as_ref().and_then(|p| p.pid)
}

#[test]
fn netlink_catches_100_short_lived_execs() {
    let conn = match ProcConnector::open() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED netlink_catches_100_short_lived_execs: the proc connector cannot be opened here ({e})");
            return;
        }
    };
    let ctx = ctx(fixtures().join("v1"));
    let stream = ProcessStream::start(StreamSource::Netlink(conn), ProcFs::new("/proc"), "/etc/passwd".into()).unwrap();
    let mut pc = ProcessCollector::new(&ctx, ProcessSource::Netlink);

    let mut children: Vec<std::process::Child> =
        (0..100).map(|_| Command::new("/bin/true").spawn().expect("spawning /bin/true")).collect();
    let pids: HashSet<i32> = children.iter().map(|c| c.id() as i32).collect();
    for c in &mut children {
        c.wait().unwrap();
    }

    let mut launched: HashMap<i32, Event> = HashMap::new();
    let mut exited: HashSet<i32> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (launched.len() < pids.len() || exited.len() < pids.len()) && Instant::now() < deadline {
        let Ok(item) = stream.recv_timeout(Duration::from_millis(200)) else { continue };
        let events = pc.apply(item);
        valid(&events);
        for e in events {
            let Some(pid) = pid_of(&e).filter(|p| pids.contains(p)) else { continue };
            match e.activity_id {
                Some(1) => {
                    launched.insert(pid, e);
                }
                Some(2) => {
                    exited.insert(pid);
                }
                _ => {}
            }
        }
    }
    assert!(launched.len() >= 100, "exec events for {} of the 100 pids", launched.len());
    assert!(exited.len() >= 100, "exit events for {} of the 100 pids", exited.len());
    // Each launch knows its parent (this test) even when /proc was too late.
    let me = std::process::id() as i32;
    let wrong: Vec<String> = launched
        .values()
        .filter(|e| e.process.as_ref().unwrap().ppid != Some(me))
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert!(wrong.is_empty(), "launches without this test as parent ({me}): {wrong:#?}");
    // Those read in time name the real executable.
    for e in launched.values().filter(|e| e.raw["complete"] == true) {
        let path = e.process.as_ref().unwrap().path.clone().unwrap_or_default();
        assert!(path.ends_with("/true"), "{path}");
    }
    eprintln!(
        "netlink: {} launches ({} described from /proc), {} exits",
        launched.len(),
        launched.values().filter(|e| e.raw["complete"] == true).count(),
        exited.len()
    );
}

#[test]
fn procfs_polling_catches_a_long_lived_child_and_its_exit() {
    let ctx = ctx(fixtures().join("v1"));
    let mut pc = ProcessCollector::new(&ctx, ProcessSource::Procfs);
    let snapshot = pc.snapshot(Utc::now());
    valid(&snapshot);
    let me = std::process::id() as i32;
    assert!(snapshot.iter().any(|e| pid_of(e) == Some(me) && e.raw["snapshot"] == true));

    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    let sleep_exe = std::fs::canonicalize(
        String::from_utf8(Command::new("sh").args(["-c", "command -v sleep"]).output().unwrap().stdout).unwrap().trim(),
    )
    .unwrap();
    let mut launch = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while launch.is_none() && Instant::now() < deadline {
        let events = pc.reconcile(Utc::now());
        valid(&events);
        // Polled right after fork, the child may still be this test's image; its exec replaces it.
        launch = events.into_iter().find(|e| {
            e.activity_id == Some(1)
                && pid_of(e) == Some(pid)
                && e.process.as_ref().unwrap().path.as_deref() == sleep_exe.to_str()
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let launch = launch.expect("a launch for the sleeping child");
    let p = launch.process.as_ref().unwrap();
    assert_eq!(p.cmdline.as_deref(), Some("sleep 30"));
    assert_eq!(p.ppid, Some(me));
    assert_eq!(p.name.as_deref(), Some("sleep"));
    assert_eq!(launch.raw["origin"], "poll");
    assert!(launch.raw["uid"].is_u64() && launch.raw["start_time"].is_string());

    child.kill().unwrap();
    child.wait().unwrap();
    let events = pc.reconcile(Utc::now());
    valid(&events);
    let stop = events.iter().find(|e| e.activity_id == Some(2) && pid_of(e) == Some(pid));
    let stop = stop.expect("a terminate for the killed child");
    assert_eq!(stop.process.as_ref().unwrap().path.as_deref(), sleep_exe.to_str());
    assert!(pc.table().get(pid).is_none());
}

#[test]
fn a_loopback_connection_is_owned_by_this_test_then_closed() {
    let ctx = ctx(fixtures().join("v1"));
    let mut cc = ConnectionCollector::new(&ctx);
    valid(&cc.snapshot(Utc::now()));
    let me = std::process::id() as i32;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let (server, _) = listener.accept().unwrap();

    let events = cc.poll(Utc::now());
    valid(&events);
    let ours: Vec<&Event> = events
        .iter()
        .filter(|e| e.src.and_then(|s| s.port) == Some(client_port) || e.src.and_then(|s| s.port) == Some(port))
        .collect();
    let listen = ours.iter().find(|e| e.activity_id == Some(7)).expect("the listener");
    assert_eq!(pid_of(listen), Some(me));
    assert!(listen.dst.is_none());
    let opened: Vec<&&Event> = ours.iter().filter(|e| e.activity_id == Some(1)).collect();
    assert_eq!(opened.len(), 2, "the client's and the accepted socket: {opened:?}");
    let exe = std::env::current_exe().unwrap();
    for e in &opened {
        assert_eq!(pid_of(e), Some(me));
        assert_eq!(e.process.as_ref().unwrap().path.as_deref(), exe.to_str());
        assert_eq!(e.protocol.as_deref(), Some("tcp"));
        // Client in src, server in dst, whichever end this socket is.
        assert_eq!(e.src.unwrap().port, Some(client_port));
        assert_eq!(e.dst.unwrap().port, Some(port));
        assert_eq!(e.raw["state"], "ESTABLISHED");
    }
    let directions: HashSet<&str> = opened.iter().map(|e| e.raw["direction"].as_str().unwrap()).collect();
    assert_eq!(directions, HashSet::from(["inbound", "outbound"]));

    drop(client);
    drop(server);
    drop(listener);
    let events = cc.poll(Utc::now());
    valid(&events);
    let closed: Vec<&Event> = events
        .iter()
        .filter(|e| e.activity_id == Some(2))
        .filter(|e| e.src.and_then(|s| s.port) == Some(client_port) || e.src.and_then(|s| s.port) == Some(port))
        .collect();
    assert_eq!(closed.len(), 3, "both ends and the listener close: {closed:?}");
    assert!(closed.iter().all(|e| pid_of(e) == Some(me)));
}

#[test]
fn dpkg_fixture_parses_into_an_inventory_with_files() {
    let inv = dpkg_inventory(&fixtures().join("v1"), &mut PathResolver::new(None)).unwrap();
    let names: Vec<&str> = inv.values().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["coreutils", "libc6", "oldtool", "openssl"], "leftover is config-files only");
    let core = &inv[&("dpkg", "coreutils".to_string())];
    assert_eq!(core.version, "9.1-1");
    assert_eq!(
        core.files,
        vec!["/bin/cat", "/bin/ls", "/usr/bin/sha256sum", "/usr/share/doc/coreutils/copyright"],
        "directories are not files"
    );
    let libc = &inv[&("dpkg", "libc6".to_string())];
    assert_eq!(libc.architectures, vec!["amd64", "i386"]);
    assert!(libc.files.contains(&"/lib/i386-linux-gnu/libc.so.6".to_string()));
    assert!(libc.files.contains(&"/lib/x86_64-linux-gnu/libc.so.6".to_string()));
}

#[test]
fn package_paths_through_a_symlinked_directory_are_also_given_resolved() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
    let mut r = PathResolver::new(Some(root.path()));
    let files = r.expand(vec!["/bin/ls".into(), "/usr/bin/sha256sum".into(), "/missing/x".into()]);
    assert_eq!(files, vec!["/bin/ls", "/missing/x", "/usr/bin/ls", "/usr/bin/sha256sum"]);
}

#[test]
fn dpkg_changes_are_installed_removed_and_upgraded_events() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |version: &str| {
        let src = fixtures().join(version);
        let _ = std::fs::remove_dir_all(dir.path().join("info"));
        std::fs::create_dir_all(dir.path().join("info")).unwrap();
        std::fs::copy(src.join("status"), dir.path().join("status")).unwrap();
        for f in std::fs::read_dir(src.join("info")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.path().join("info").join(f.file_name())).unwrap();
        }
    };
    copy("v1");
    let mut pc = PackageCollector::new(&ctx(dir.path().to_path_buf()));
    let first = pc.snapshot(Utc::now());
    valid(&first);
    assert_eq!(first.len(), 4);
    assert!(first
        .iter()
        .all(|e| e.kind == Kind::Package && e.raw["action"] == "installed" && e.raw["snapshot"] == true));
    assert!(pc.poll(Utc::now(), false).is_empty(), "nothing changed");

    copy("v2");
    let events = pc.poll(Utc::now(), true);
    valid(&events);
    let by: HashMap<&str, &Event> = events.iter().map(|e| (e.raw["package"].as_str().unwrap(), e)).collect();
    assert_eq!(by.len(), 3, "{events:?}");
    let up = by["openssl"];
    assert_eq!(up.raw["action"], "upgraded");
    assert_eq!(up.raw["version"], "3.0.13-1~deb12u1");
    assert_eq!(up.raw["previous_version"], "3.0.11-1~deb12u2");
    assert_eq!(up.raw["manager"], "dpkg");
    assert_eq!(
        up.raw["files"],
        serde_json::json!([
            "/etc/ssl/openssl.cnf",
            "/usr/bin/c_rehash",
            "/usr/bin/openssl",
            "/usr/lib/ssl/misc/CA.pl",
            "/usr/lib/ssl/misc/tsget"
        ])
    );
    assert_eq!(by["oldtool"].raw["action"], "removed");
    assert_eq!(by["oldtool"].raw["snapshot"], false);
    assert_eq!(by["newtool"].raw["action"], "installed");
    assert_eq!(by["newtool"].raw["files"], serde_json::json!(["/usr/sbin/newtool"]));
    assert_eq!(by["newtool"].message, "newtool 0.1-1 installed");
}

#[test]
fn metrics_are_sane() {
    let mut m = MetricsCollector::new(&ctx(fixtures().join("v1")));
    std::thread::sleep(Duration::from_millis(200));
    let events = m.sample(Utc::now());
    valid(&events);
    assert!(events.iter().all(|e| e.kind == Kind::Metric));
    let of = |name: &'static str| events.iter().filter(move |e| e.raw["metric"] == name);
    let mem = of("memory").next().expect("a memory sample");
    let total = mem.raw["total_bytes"].as_u64().unwrap();
    let used = mem.raw["used_bytes"].as_u64().unwrap();
    assert!(total > 0 && used <= total, "{mem:?}");
    let cpu = of("cpu").next().expect("a cpu sample");
    let pct = cpu.raw["cpu_percent"].as_f64().expect("a cpu percentage after a first sample");
    assert!((0.0..=100.0).contains(&pct), "{pct}");
    assert!(cpu.raw["cores"].as_u64().unwrap() >= 1);
    let root = of("disk").find(|e| e.raw["mount"] == "/");
    if let Some(root) = root {
        assert!(root.raw["total_bytes"].as_u64().unwrap() >= root.raw["used_bytes"].as_u64().unwrap());
    }
    assert!(of("net").any(|e| e.raw["interface"] == "lo" && e.raw["rx_bytes"].is_u64()));
}

#[test]
fn running_collectors_send_snapshots_heartbeats_and_deltas_then_stop() {
    let mut config = AgentConfig::from_text(
        "[intervals]\nprocess_reconcile = 0.3\nprocess_poll = 0.3\nconnections = 0.3\nmetrics = 0.3\nheartbeat = 0.5",
        false,
        |_| None,
        || Ok("test-host".into()),
    )
    .unwrap();
    config.dpkg_dir = fixtures().join("v1");
    config.process_source = ProcessSourcePreference::Procfs;
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    let collectors = Collectors::start(&config, tx).unwrap();
    assert_eq!(collectors.source().source, ProcessSource::Procfs);

    let mut child = None;
    let mut seen: Vec<Event> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut child_pid = None;
    let done = |seen: &[Event], child_pid: Option<i32>| {
        let has = |k: Kind| seen.iter().any(|e| e.kind == k);
        has(Kind::Log)
            && has(Kind::Metric)
            && has(Kind::Package)
            && child_pid.is_some_and(|pid| {
                seen.iter().any(|e| e.activity_id == Some(1) && pid_of(e) == Some(pid) && e.raw["origin"] == "poll")
            })
    };
    while !done(&seen, child_pid) && Instant::now() < deadline {
        if let Ok(e) = rx.try_recv() {
            seen.push(e);
            continue;
        }
        if child.is_none() && seen.iter().any(|e| e.kind == Kind::Process) {
            let c = Command::new("sleep").arg("20").spawn().unwrap();
            child_pid = Some(c.id() as i32);
            child = Some(c);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    valid(&seen);
    assert!(done(&seen, child_pid), "kinds seen: {:?}", seen.iter().map(|e| e.kind).collect::<HashSet<_>>());
    assert!(seen.iter().any(|e| e.kind == Kind::Process && e.raw["snapshot"] == true));
    let started = Instant::now();
    collectors.stop();
    assert!(started.elapsed() < Duration::from_secs(5), "collectors stop promptly");
}

#[test]
fn once_prints_a_valid_ndjson_snapshot_and_sources_explains_itself() {
    let bin = env!("CARGO_BIN_EXE_vigil-agent");
    let out = Command::new(bin)
        .args(["once", "--print"])
        .env("VIGIL_AGENT_DPKG_DIR", fixtures().join("v1"))
        .env("VIGIL_AGENT_ID", "once-test")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Event> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    valid(&events);
    let kinds: HashSet<Kind> = events.iter().map(|e| e.kind).collect();
    for k in [Kind::Log, Kind::Process, Kind::Metric, Kind::Package] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    assert!(events.iter().any(|e| e.raw["agent_id"] == "once-test"));
    assert_eq!(events.iter().filter(|e| e.kind == Kind::Package).count(), 4);
    assert!(events.iter().filter(|e| e.kind == Kind::Process).all(|e| e.raw["snapshot"] == true));

    let spool = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(["sources", "--json"])
        .env("VIGIL_AGENT_SPOOL_DIR", spool.path())
        .env("VIGIL_AGENT_XDP", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["attempts"][0]["source"], "ebpf");
    let reason = v["attempts"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("ebpf: "), "{reason}");
    assert!(["ebpf", "netlink", "procfs"].contains(&v["source"].as_str().unwrap()));
    assert_eq!(v["blocklist"]["backend"], "memory");
    assert!(v["blocklist"]["reason"].as_str().unwrap().contains("disabled"), "{v}");
}
