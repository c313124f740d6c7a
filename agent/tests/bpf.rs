//! The eBPF parts against this machine's kernel: the exec/exit tracepoint
//! source catches 100 of 100 short-lived `/bin/true` runs with exe and
//! argv and their exits; the XDP blocklist drops pings from a blocked
//! address across a veth pair between two network namespaces while an
//! allowed address gets through, with the map's drop counter equal to the
//! pings sent; and blocks (and counters) survive a reload from the pinned
//! maps. Each test prints `SKIPPED …` and passes when it cannot run here
//! (not root, no kernel BTF, or the agent was built without its BPF
//! objects). Namespaces and pins are removed even when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_agent::collect::ebpf;
use vigil_agent::collect::process::{choose_source, ProcessSource, ProcessStream, StreamItem};
use vigil_agent::collect::procfs::ProcFs;
use vigil_agent::config::{ProcessSourcePreference, XdpAttachMode};
use vigil_agent::transport::xdp::{self, XdpBlocklist, XdpOptions};
use vigil_agent::transport::Blocklist;

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
