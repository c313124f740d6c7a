//! The eBPF parts against this machine's kernel: the exec/exit tracepoint
//! source catches 100 of 100 short-lived `/bin/true` runs with exe and
//! argv and their exits; the TCP state tracepoint reports 50 of 50
//! loopback connections that live a few milliseconds (far less than the
//! /proc/net poll interval) opened and closed, with their ports and this
//! test's pid, and a connection both it and the /proc poll see (including
//! an inbound one seen before it was accepted) is reported once; the XDP blocklist drops pings from a blocked
//! address across a veth pair between two network namespaces while an
//! allowed address gets through, with the map's drop counter equal to the
//! pings sent; and blocks (and counters) survive a reload from the pinned
//! maps. Each test prints `SKIPPED …` and passes when it cannot run here
//! (not root, no kernel BTF, or the agent was built without its BPF
//! objects). Namespaces and pins are removed even when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_agent::collect::ebpf;
use vigil_agent::collect::ebpf_net::{choose_connection_source, ConnectionSource, NetTracer};
use vigil_agent::collect::net::ConnectionCollector;
use vigil_agent::collect::process::{choose_source, ProcessSource, ProcessStream, StreamItem};
use vigil_agent::collect::procfs::ProcFs;
use vigil_agent::collect::HostContext;
use vigil_agent::config::{ConnectionSourcePreference, ProcessSourcePreference, XdpAttachMode};
use vigil_agent::transport::xdp::{self, XdpBlocklist, XdpOptions};
use vigil_agent::transport::Blocklist;
use vigil_event::Event;

/// Why the BPF tests cannot run here, if they cannot.
fn skip_reason(needs_ip: bool) -> Option<String> {
    if !ebpf::BUILT {
        return Some(ebpf::NOT_BUILT.into());
    }
    // /proc/self belongs to the effective uid.
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root.unwrap_or(false) {
        return Some("not running as root (loading BPF programs needs it)".into());
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("the kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    if needs_ip {
        for tool in ["ip", "ping"] {
            let found = Command::new(tool).arg("-V").output().is_ok();
            if !found {
                return Some(format!("`{tool}` is not installed (iproute2, iputils-ping)"));
            }
        }
    }
    None
}

macro_rules! skip_unless_bpf {
    ($name:expr, $needs_ip:expr) => {
        if let Some(why) = skip_reason($needs_ip) {
            eprintln!("SKIPPED {}: {why}", $name);
            return;
        }
    };
}

#[test]
fn ebpf_catches_100_short_lived_execs_with_exe_and_argv() {
    skip_unless_bpf!("ebpf_catches_100_short_lived_execs_with_exe_and_argv", false);
    let (choice, stream) = choose_source(ProcessSourcePreference::Ebpf, Duration::from_secs(2));
    assert_eq!(choice.source, ProcessSource::Ebpf, "{choice}");
    let stream = ProcessStream::start(stream.unwrap(), ProcFs::new("/proc"), "/etc/passwd".into()).unwrap();

    let nonce = format!("vigil-bpf-test-{}", std::process::id());
    let mut pids = HashSet::new();
    for i in 0..100 {
        let mut child = Command::new("/bin/true").arg(&nonce).arg(i.to_string()).spawn().expect("spawning /bin/true");
        pids.insert(child.id() as i32);
        child.wait().unwrap();
    }
    let true_exe = std::fs::canonicalize("/bin/true").unwrap().to_string_lossy().into_owned();

    let mut execs: HashMap<i32, (Option<String>, Option<String>)> = HashMap::new();
    let mut exits = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && (execs.len() < 100 || exits.len() < 100) {
        match stream.recv_timeout(Duration::from_millis(200)) {
            Ok(StreamItem::Exec { info, .. }) if pids.contains(&info.pid) => {
                execs.insert(info.pid, (info.exe.clone(), info.cmdline.clone()));
            }
            Ok(StreamItem::Exit { pid, .. }) if pids.contains(&pid) => {
                exits.insert(pid);
            }
            _ => {}
        }
    }
    let complete = execs
        .values()
        .filter(|(exe, cmd)| {
            exe.as_deref() == Some(true_exe.as_str())
                && cmd.as_deref().is_some_and(|c| c.starts_with(&format!("/bin/true {nonce} ")))
        })
        .count();
    eprintln!("ebpf: {} of 100 execs, {complete} with exe and argv, {} exits", execs.len(), exits.len());
    assert_eq!(execs.len(), 100, "execs caught");
    assert_eq!(complete, 100, "execs with exe {true_exe} and argv: {execs:?}");
    assert_eq!(exits.len(), 100, "exits caught");
}

fn host_ctx() -> HostContext {
    HostContext {
        host: "test-host".into(),
        agent_id: "test-agent".into(),
        proc_root: "/proc".into(),
        passwd: "/etc/passwd".into(),
        dpkg_dir: "/nonexistent".into(),
        fs_root: None,
        rpm: false,
    }
}

fn load_net_tracer() -> NetTracer {
    let (choice, tracer) = choose_connection_source(ConnectionSourcePreference::Ebpf, Duration::from_secs(5));
    assert_eq!(choice.source, ConnectionSource::Ebpf, "{choice}");
    tracer.unwrap()
}

/// Applies every record that arrives within `wait` (or until `done`) to `cc`.
fn pump(
    tracer: &mut NetTracer,
    cc: &mut ConnectionCollector,
    wait: Duration,
    mut done: impl FnMut(&[Event]) -> bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !done(&events) {
        tracer.poll(Duration::from_millis(100), 4096, |c| events.extend(cc.apply_bpf(&c))).unwrap();
    }
    for e in &events {
        e.validate().unwrap_or_else(|err| panic!("invalid event {err}: {}", serde_json::to_string(e).unwrap()));
    }
    events
}

fn ports(e: &Event) -> (Option<u16>, Option<u16>) {
    (e.src.and_then(|s| s.port), e.dst.and_then(|d| d.port))
}

fn pid_of(e: &Event) -> Option<i32> {
    e.process.as_ref().and_then(|p| p.pid)
}

#[test]
fn ebpf_reports_50_short_lived_loopback_connections_opened_and_closed() {
    skip_unless_bpf!("ebpf_reports_50_short_lived_loopback_connections_opened_and_closed", false);
    let mut tracer = load_net_tracer();
    let mut cc = ConnectionCollector::new(&host_ctx());
    let me = std::process::id() as i32;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // One poll, so the table knows the listener and its owner (this process).
    cc.poll(Utc::now());
    tracer.poll(Duration::ZERO, usize::MAX, |c| drop(cc.apply_bpf(&c))).unwrap();
    tracer.take_lost();

    let server = std::thread::spawn(move || {
        for _ in 0..50 {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
    });
    let mut clients = Vec::new();
    let mut longest = Duration::ZERO;
    for i in 0..50u8 {
        let start = Instant::now();
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        clients.push(c.local_addr().unwrap().port());
        c.write_all(&[i]).unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i);
        drop(c);
        longest = longest.max(start.elapsed());
    }
    server.join().unwrap();
    let clients: HashSet<u16> = clients.into_iter().collect();
    assert_eq!(clients.len(), 50);

    let ours = |e: &&Event| {
        let (src, dst) = ports(e);
        dst == Some(port) && src.is_some_and(|p| clients.contains(&p))
    };
    let count = |events: &[Event], activity: i32, direction: &str| {
        events
            .iter()
            .filter(ours)
            .filter(|e| e.activity_id == Some(activity) && e.raw["direction"] == direction)
            .count()
    };
    let events = pump(&mut tracer, &mut cc, Duration::from_secs(10), |ev| {
        ["outbound", "inbound"].iter().all(|d| count(ev, 1, d) == 50 && count(ev, 2, d) == 50)
    });
    let lost = tracer.take_lost();
    let mut tally = Vec::new();
    for d in ["outbound", "inbound"] {
        tally.push(format!("{d}: {} opened, {} closed", count(&events, 1, d), count(&events, 2, d)));
    }
    eprintln!("ebpf connections (each lived at most {longest:?}): {}; {lost} records lost", tally.join("; "));

    let mine: Vec<&Event> = events.iter().filter(ours).collect();
    for e in &mine {
        assert_eq!(e.raw["origin"], "ebpf", "{e:?}");
        assert_eq!(e.protocol.as_deref(), Some("tcp"));
        // The client is src whichever end the socket is; both ends are this process.
        assert_eq!(pid_of(e), Some(me), "{}", serde_json::to_string(e).unwrap());
    }
    for d in ["outbound", "inbound"] {
        for activity in [1, 2] {
            let seen: HashSet<u16> = mine
                .iter()
                .filter(|e| e.activity_id == Some(activity) && e.raw["direction"] == d)
                .filter_map(|e| ports(e).0)
                .collect();
            assert_eq!(seen, clients, "{d} activity {activity}: client ports seen");
        }
    }
    assert_eq!(mine.len(), 200, "one open and one close per socket, no duplicates");
    assert_eq!(lost, 0);
    assert!(longest < Duration::from_secs(1), "each connection must be far shorter than the poll: {longest:?}");
}

#[test]
fn ebpf_and_the_proc_poll_report_a_connection_once() {
    skip_unless_bpf!("ebpf_and_the_proc_poll_report_a_connection_once", false);
    let mut tracer = load_net_tracer();
    let mut cc = ConnectionCollector::new(&host_ctx());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    cc.poll(Utc::now());
    tracer.poll(Duration::ZERO, usize::MAX, |c| drop(cc.apply_bpf(&c))).unwrap();
    // Every event with the step that produced it.
    let mut all: Vec<(&str, Event)> = Vec::new();
    let tag = |step: &'static str, events: Vec<Event>| events.into_iter().map(move |e| (step, e));

    // A: the poll sees it first, the kernel's records come after.
    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let a_port = a.local_addr().unwrap().port();
    let (a_srv, _) = listener.accept().unwrap();
    all.extend(tag("A poll", cc.poll(Utc::now())));
    all.extend(tag("A records", pump(&mut tracer, &mut cc, Duration::from_millis(300), |_| false)));

    // B: the records first (before accept: the server side has no inode),
    // then a poll while it is still not accepted, then accepted and polled.
    let b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let b_port = b.local_addr().unwrap().port();
    all.extend(tag("B records", pump(&mut tracer, &mut cc, Duration::from_millis(300), |_| false)));
    all.extend(tag("B poll unaccepted", cc.poll(Utc::now())));
    let (b_srv, _) = listener.accept().unwrap();
    all.extend(tag("B poll accepted", cc.poll(Utc::now())));

    // Closes: A's from the records then a poll, B's from a poll then the records.
    drop(a);
    drop(a_srv);
    all.extend(tag("A close records", pump(&mut tracer, &mut cc, Duration::from_millis(300), |_| false)));
    all.extend(tag("A close poll", cc.poll(Utc::now())));
    drop(b);
    drop(b_srv);
    std::thread::sleep(Duration::from_millis(100));
    all.extend(tag("B close poll", cc.poll(Utc::now())));
    all.extend(tag("B close records", pump(&mut tracer, &mut cc, Duration::from_millis(300), |_| false)));

    for (name, client) in [("A", a_port), ("B", b_port)] {
        let mine: Vec<&(&str, Event)> = all.iter().filter(|(_, e)| ports(e) == (Some(client), Some(port))).collect();
        let summary: Vec<String> = mine
            .iter()
            .map(|(step, e)| {
                format!("{step}: {} {} inode {}", e.activity_id.unwrap(), e.raw["direction"], e.raw["inode"])
            })
            .collect();
        eprintln!("connection {name}: {summary:?}");
        for d in ["outbound", "inbound"] {
            for activity in [1, 2] {
                let n = mine.iter().filter(|(_, e)| e.activity_id == Some(activity) && e.raw["direction"] == d).count();
                assert_eq!(n, 1, "connection {name}, {d}, activity {activity}: {summary:?}");
            }
        }
        assert_eq!(mine.len(), 4, "{summary:?}");
    }
    // B was reported by the records first, and its server side keeps the
    // owner (this process) once the poll found the accepted socket.
    let b_open: Vec<&Event> = all
        .iter()
        .map(|(_, e)| e)
        .filter(|e| ports(e) == (Some(b_port), Some(port)) && e.activity_id == Some(1))
        .collect();
    assert!(b_open.iter().all(|e| e.raw["origin"] == "ebpf"), "{b_open:?}");
    assert!(b_open.iter().all(|e| pid_of(e) == Some(std::process::id() as i32)), "{b_open:?}");
}

/// Runs a command, returning whether it succeeded.
fn run(args: &[&str]) -> bool {
    Command::new(args[0]).args(&args[1..]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn must(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Two network namespaces joined by a veth pair: `a` (the agent's side,
/// `<net>.1`) and `b` (`<net>.2` and `<net>.3`). Removed on drop, with
/// the pin directory.
struct Netns {
    a: String,
    b: String,
    if_a: String,
    net: String,
    pin_dir: PathBuf,
}

impl Netns {
    fn new(tag: &str, net: &str) -> Netns {
        let id = std::process::id() % 100_000;
        let n = Netns {
            a: format!("vgl-{tag}a-{id}"),
            b: format!("vgl-{tag}b-{id}"),
            if_a: format!("vgl{tag}a{id}"),
            net: net.into(),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/vigil-test-{tag}-{id}")),
        };
        n.cleanup();
        let if_b = format!("vgl{tag}b{id}");
        must(&["ip", "netns", "add", &n.a]);
        must(&["ip", "netns", "add", &n.b]);
        must(&["ip", "link", "add", &n.if_a, "type", "veth", "peer", "name", &if_b]);
        must(&["ip", "link", "set", &n.if_a, "netns", &n.a]);
        must(&["ip", "link", "set", &if_b, "netns", &n.b]);
        let (a1, b2, b3) = (format!("{net}.1/24"), format!("{net}.2/24"), format!("{net}.3/24"));
        must(&["ip", "-n", &n.a, "addr", "add", &a1, "dev", &n.if_a]);
        must(&["ip", "-n", &n.b, "addr", "add", &b2, "dev", &if_b]);
        must(&["ip", "-n", &n.b, "addr", "add", &b3, "dev", &if_b]);
        for (ns, dev) in [(&n.a, &n.if_a), (&n.b, &if_b)] {
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        n
    }

    /// Pings `<net>.1` from namespace b with source `<net>.<from>`; true when answered.
    fn ping(&self, from: u8, count: u32) -> bool {
        let src = format!("{}.{from}", self.net);
        let dst = format!("{}.1", self.net);
        let count = count.to_string();
        run(&[
            "ip", "netns", "exec", &self.b, "ping", "-q", "-n", "-c", &count, "-i", "0.2", "-W", "1", "-I", &src, &dst,
        ])
    }

    fn addr(&self, host: u8) -> IpAddr {
        format!("{}.{host}", self.net).parse().unwrap()
    }

    /// Opens the XDP blocklist inside namespace a (the interface is looked up
    /// and attached there), keeping its record in `record_dir`.
    fn open_blocklist(&self, record_dir: &Path) -> XdpBlocklist {
        let ns = format!("/run/netns/{}", self.a);
        let options = XdpOptions {
            pin_dir: self.pin_dir.clone(),
            interfaces: Some(vec![self.if_a.clone()]),
            mode: XdpAttachMode::Generic,
        };
        let record_dir = record_dir.to_path_buf();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            xdp::open(&record_dir, &options)
        })
        .join()
        .unwrap()
        .expect("opening the XDP blocklist")
    }

    fn cleanup(&self) {
        let _ = Command::new("ip").args(["netns", "del", &self.a]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).output();
        if let Ok(dir) = std::fs::read_dir(&self.pin_dir) {
            for e in dir.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.pin_dir);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn drops(bl: &XdpBlocklist, ip: IpAddr) -> u64 {
    bl.drop_counts().unwrap().unwrap().into_iter().find(|(a, _)| *a == ip).map_or(0, |(_, n)| n)
}

#[test]
fn xdp_drops_pings_from_a_blocked_address_only() {
    skip_unless_bpf!("xdp_drops_pings_from_a_blocked_address_only", true);
    let ns = Netns::new("d", "10.231.7");
    let record = tempfile::tempdir().unwrap();
    let bl = ns.open_blocklist(record.path());
    assert_eq!(bl.backend(), "xdp");
    // Both addresses get through before any block.
    assert!(ns.ping(2, 1), "ping from .2 before blocking");
    assert!(ns.ping(3, 1), "ping from .3 before blocking");

    let blocked = ns.addr(3);
    assert!(bl.block(blocked).unwrap());
    assert!(!bl.block(blocked).unwrap());
    assert_eq!(bl.list().unwrap(), vec![blocked]);
    assert!(!ns.ping(3, 5), "ping from the blocked address must fail");
    assert!(ns.ping(2, 5), "ping from the allowed address must succeed");
    assert_eq!(drops(&bl, blocked), 5, "one drop per echo request sent from the blocked address");

    assert!(bl.unblock(blocked).unwrap());
    assert!(ns.ping(3, 1), "ping from .3 after unblocking");
    assert!(bl.list().unwrap().is_empty());
}

#[test]
fn xdp_blocks_survive_a_reload_from_the_pinned_maps() {
    skip_unless_bpf!("xdp_blocks_survive_a_reload_from_the_pinned_maps", true);
    let ns = Netns::new("r", "10.231.8");
    let blocked = ns.addr(3);
    let v6: IpAddr = "fd00:7669:6769:6c::3".parse().unwrap();
    {
        let record = tempfile::tempdir().unwrap();
        let bl = ns.open_blocklist(record.path());
        bl.block(blocked).unwrap();
        bl.block(v6).unwrap();
        assert!(!ns.ping(3, 2));
        assert_eq!(drops(&bl, blocked), 2);
        // The loader (program, links, map handles) is dropped here.
    }
    assert!(ns.pin_dir.join(xdp::MAP_V4).exists(), "the v4 map stays pinned");
    assert!(ns.ping(3, 1), "nothing is dropped while no agent runs");

    // A fresh record: what is blocked now comes from the pinned maps alone.
    let record = tempfile::tempdir().unwrap();
    let bl = ns.open_blocklist(record.path());
    let mut want = vec![blocked, v6];
    want.sort();
    assert_eq!(bl.list().unwrap(), want);
    assert_eq!(drops(&bl, blocked), 2, "the counter survived too");
    assert!(!ns.ping(3, 3), "still blocked after the reload");
    assert!(ns.ping(2, 1));
    assert_eq!(drops(&bl, blocked), 5);
    // And the record learned them.
    let text = std::fs::read_to_string(record.path().join("blocklist.json")).unwrap();
    assert!(text.contains(&blocked.to_string()), "{text}");
}
