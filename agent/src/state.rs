//! The last known state of each collector and the deltas against it: the
//! live processes ([`ProcessTable`]), the open sockets ([`ConnectionTable`])
//! and the installed packages ([`PackageState`]). Collectors feed what they
//! observe in; what comes out is a list of changes (process started or
//! stopped, connection opened or closed, package installed, removed or
//! upgraded) that `collect` turns into events. The tables also hold what a
//! periodic full snapshot re-sends. Pure data: no /proc, no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the agent knows about one process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: Option<i32>,
    /// The kernel's name for it (`comm`, at most 15 bytes).
    pub name: Option<String>,
    /// Absolute real path of the executable (readlink of /proc/<pid>/exe).
    pub exe: Option<String>,
    /// The executable was deleted (or replaced) after the process started.
    pub exe_deleted: bool,
    /// Arguments joined by spaces.
    pub cmdline: Option<String>,
    pub cwd: Option<String>,
    /// Real uid.
    pub uid: Option<u32>,
    /// Effective uid.
    pub euid: Option<u32>,
    /// User name of the real uid.
    pub user: Option<String>,
    /// Container id from the process's cgroup, when it runs in one.
    pub container_id: Option<String>,
    /// The cgroup path (v2 unified, else the first named hierarchy).
    pub cgroup: Option<String>,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22):
    /// with the pid, the process's identity across pid reuse.
    pub start_ticks: Option<u64>,
    pub started_at: Option<DateTime<Utc>>,
    /// False when the executable could not be read: the process was gone
    /// (only the pid and the parent from the fork event are known) or
    /// exiting, or the agent may not look.
    pub complete: bool,
}

/// The minimum read from /proc to tell whether a pid is still the process
/// known: its start time (pid reuse) and executable (an exec keeps the pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSeen {
    pub pid: i32,
    pub start_ticks: u64,
    /// `None` when unreadable (permissions, zombie): then not compared.
    pub exe: Option<String>,
}

/// How a process ended, when the kernel said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitStatus {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
}

/// A change in the process table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessChange {
    Started(ProcessInfo),
    Stopped { info: ProcessInfo, exit: Option<ExitStatus> },
}

/// The live processes by pid.
#[derive(Debug, Default)]
pub struct ProcessTable {
    by_pid: HashMap<i32, ProcessInfo>,
}

impl ProcessTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    pub fn get(&self, pid: i32) -> Option<&ProcessInfo> {
        self.by_pid.get(&pid)
    }

    /// Every known process, by pid.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessInfo> {
        let mut v: Vec<&ProcessInfo> = self.by_pid.values().collect();
        v.sort_by_key(|p| p.pid);
        v.into_iter()
    }

    /// A process executed a program: it replaces whatever the pid was
    /// (an exec keeps the pid; a reused pid is a new process anyway).
    pub fn exec(&mut self, info: ProcessInfo) -> ProcessChange {
        self.by_pid.insert(info.pid, info.clone());
        ProcessChange::Started(info)
    }

    /// A process exited: the change, if the pid was known.
    pub fn exit(&mut self, pid: i32, exit: Option<ExitStatus>) -> Option<ProcessChange> {
        self.by_pid.remove(&pid).map(|info| ProcessChange::Stopped { info, exit })
    }

    /// Brings the table in line with the processes /proc lists now: a known
    /// pid that is gone, or whose start time changed (reused), stopped; a
    /// pid not known (or reused) started, described by `describe` (which
    /// returns `None` when the process vanished meanwhile); a known process
    /// running another executable than known (an exec the stream missed)
    /// started again, replacing itself, as an exec does. Stopped come first,
    /// then started, each by pid.
    pub fn reconcile(
        &mut self,
        seen: &[ProcessSeen],
        mut describe: impl FnMut(i32) -> Option<ProcessInfo>,
    ) -> Vec<ProcessChange> {
        let now: HashMap<i32, &ProcessSeen> = seen.iter().map(|s| (s.pid, s)).collect();
        let mut gone: Vec<i32> = self
            .by_pid
            .iter()
            .filter(|(pid, info)| match now.get(pid) {
                None => true,
                Some(s) => info.start_ticks != Some(s.start_ticks),
            })
            .map(|(pid, _)| *pid)
            .collect();
        gone.sort_unstable();
        let mut changes = Vec::new();
        for pid in gone {
            if let Some(info) = self.by_pid.remove(&pid) {
                changes.push(ProcessChange::Stopped { info, exit: None });
            }
        }
        let mut new: Vec<&ProcessSeen> = seen
            .iter()
            .filter(|s| match self.by_pid.get(&s.pid) {
                None => true,
                Some(info) => matches!((&info.exe, &s.exe), (Some(known), Some(now)) if known != now),
            })
            .collect();
        new.sort_unstable_by_key(|s| s.pid);
        for s in new {
            if let Some(mut info) = describe(s.pid) {
                info.start_ticks = info.start_ticks.or(Some(s.start_ticks));
                self.by_pid.insert(s.pid, info.clone());
                changes.push(ProcessChange::Started(info));
            }
        }
        changes
    }
}

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One socket's identity: protocol, both ends and the kernel's inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketKey {
    pub protocol: Protocol,
    pub local: SocketAddr,
    /// `0.0.0.0:0` (or `[::]:0`) for a listener.
    pub remote: SocketAddr,
    pub inode: u64,
}

/// The process that holds a socket open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SocketOwner {
    pub pid: i32,
    pub name: Option<String>,
    pub exe: Option<String>,
}

/// Which way a connection goes, seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Accepted on a local listening port: the remote end is the client.
    Inbound,
    /// Opened from here: the local end is the client.
    Outbound,
}

/// One open socket: a connection, or a listener (TCP LISTEN, unconnected UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub key: SocketKey,
    /// Kernel state name (`ESTABLISHED`, `LISTEN`, `UNCONN`, …).
    pub state: &'static str,
    pub uid: u32,
    pub listening: bool,
    pub direction: Option<Direction>,
    pub owner: Option<SocketOwner>,
    /// The IPv6 socket table it came from (an IPv4-mapped address is shown as IPv4).
    pub ipv6: bool,
}

/// A change in the socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionChange {
    Opened(Socket),
    Closed(Socket),
}

/// The open sockets, by key.
#[derive(Debug, Default)]
pub struct ConnectionTable {
    sockets: BTreeMap<SocketKey, Socket>,
}

impl ConnectionTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    pub fn contains(&self, key: &SocketKey) -> bool {
        self.sockets.contains_key(key)
    }

    pub fn sockets(&self) -> impl Iterator<Item = &Socket> {
        self.sockets.values()
    }

    /// The socket with these ends (any inode), if one is known.
    pub fn find_ends(&self, protocol: Protocol, local: SocketAddr, remote: SocketAddr) -> Option<&Socket> {
        let lo = SocketKey { protocol, local, remote, inode: 0 };
        let hi = SocketKey { inode: u64::MAX, ..lo };
        self.sockets.range(lo..=hi).next().map(|(_, s)| s)
    }

    /// Adds a socket an event stream reported opened (replacing one with the same key).
    pub fn insert(&mut self, socket: Socket) {
        self.sockets.insert(socket.key, socket);
    }

    /// Removes the socket with these ends (any inode), returning it.
    pub fn remove_ends(&mut self, protocol: Protocol, local: SocketAddr, remote: SocketAddr) -> Option<Socket> {
        let key = self.find_ends(protocol, local, remote)?.key;
        self.sockets.remove(&key)
    }

    /// Replaces the table with `now`: sockets not known before opened, known
    /// ones missing now closed (closed first). A known socket keeps the owner
    /// and direction found when it opened; its state is updated. A known
    /// socket with inode 0 (an event stream saw it before it had a file: an
    /// inbound connection not yet accepted) is the same socket as one in
    /// `now` with the same ends: it takes that one's inode, and no event.
    pub fn update(&mut self, now: Vec<Socket>) -> Vec<ConnectionChange> {
        let mut next: BTreeMap<SocketKey, Socket> = BTreeMap::new();
        let mut opened = Vec::new();
        for mut s in now {
            // /proc/net read while sockets come and go can list one twice.
            if next.contains_key(&s.key) {
                continue;
            }
            let known = self.sockets.remove(&s.key).or_else(|| self.sockets.remove(&SocketKey { inode: 0, ..s.key }));
            match known {
                Some(old) => {
                    s.owner = s.owner.or(old.owner);
                    s.direction = old.direction.or(s.direction);
                    next.insert(s.key, s);
                }
                None => {
                    opened.push(ConnectionChange::Opened(s.clone()));
                    next.insert(s.key, s);
                }
            }
        }
        let mut changes: Vec<ConnectionChange> =
            std::mem::take(&mut self.sockets).into_values().map(ConnectionChange::Closed).collect();
        changes.extend(opened);
        self.sockets = next;
        changes
    }
}

/// One installed package, as its manager reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// `dpkg` or `rpm`.
    pub manager: &'static str,
    /// Architectures installed (Multi-Arch: same packages can have several).
    pub architectures: Vec<String>,
    /// Absolute paths of the files it owns (not directories), sorted.
    pub files: Vec<String>,
}

/// Installed packages by (manager, name).
pub type Inventory = BTreeMap<(&'static str, String), Package>;

/// A change in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageChange {
    Installed(Package),
    Removed(Package),
    /// The version changed (up or down; `previous` says from what).
    Upgraded {
        previous: String,
        package: Package,
    },
}

/// Differences from `old` to `new`: removed, then upgraded, then installed, each by name.
pub fn diff_inventory(old: &Inventory, new: &Inventory) -> Vec<PackageChange> {
    let mut removed = Vec::new();
    let mut upgraded = Vec::new();
    let mut installed = Vec::new();
    for (key, pkg) in old {
        if !new.contains_key(key) {
            removed.push(PackageChange::Removed(pkg.clone()));
        }
    }
    for (key, pkg) in new {
        match old.get(key) {
            None => installed.push(PackageChange::Installed(pkg.clone())),
            Some(prev) if prev.version != pkg.version => {
                upgraded.push(PackageChange::Upgraded { previous: prev.version.clone(), package: pkg.clone() })
            }
            Some(_) => {}
        }
    }
    removed.extend(upgraded);
    removed.extend(installed);
    removed
}

/// The last inventory and the changes against it.
#[derive(Debug, Default)]
pub struct PackageState {
    inventory: Option<Inventory>,
}

impl PackageState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an inventory has been taken yet.
    pub fn is_known(&self) -> bool {
        self.inventory.is_some()
    }

    pub fn inventory(&self) -> Option<&Inventory> {
        self.inventory.as_ref()
    }

    /// Stores `new`; the changes since the last one (every package
    /// installed the first time).
    pub fn update(&mut self, new: Inventory) -> Vec<PackageChange> {
        let changes = diff_inventory(self.inventory.as_ref().unwrap_or(&Inventory::new()), &new);
        self.inventory = Some(new);
        changes
    }

    /// Replaces the packages of one manager only (the others untouched);
    /// the changes for that manager.
    pub fn update_manager(&mut self, manager: &'static str, packages: Inventory) -> Vec<PackageChange> {
        let mut next: Inventory = match &self.inventory {
            Some(inv) => inv.iter().filter(|((m, _), _)| *m != manager).map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => Inventory::new(),
        };
        next.extend(packages.into_iter().filter(|((m, _), _)| *m == manager));
        self.update(next)
    }
}

/// Paths in a package's file list that are directories of other listed
/// paths (dpkg lists `/usr`, `/usr/bin` before `/usr/bin/ls`).
pub fn directories_of(paths: &[String]) -> HashSet<&str> {
    let mut dirs = HashSet::new();
    for p in paths {
        let mut cur = p.as_str();
        while let Some(i) = cur.rfind('/') {
            cur = &cur[..i];
            if cur.is_empty() || !dirs.insert(cur) {
                break;
            }
        }
    }
    dirs
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn proc_(pid: i32, ticks: u64, name: &str) -> ProcessInfo {
        ProcessInfo { pid, name: Some(name.into()), start_ticks: Some(ticks), complete: true, ..Default::default() }
    }

    #[test]
    fn reconcile_starts_new_stops_gone_and_replaces_reused_pids() {
        let mut t = ProcessTable::new();
        t.exec(proc_(10, 100, "a"));
        t.exec(proc_(11, 110, "b"));
        t.exec(proc_(12, 120, "c"));
        let seen = [
            ProcessSeen { pid: 10, start_ticks: 100, exe: None },
            ProcessSeen { pid: 12, start_ticks: 999, exe: None },
            ProcessSeen { pid: 13, start_ticks: 130, exe: None },
        ];
        let changes = t.reconcile(&seen, |pid| Some(proc_(pid, 0, "new")));
        let summary: Vec<(bool, i32)> = changes
            .iter()
            .map(|c| match c {
                ProcessChange::Started(i) => (true, i.pid),
                ProcessChange::Stopped { info, .. } => (false, info.pid),
            })
            .collect();
        assert_eq!(summary, vec![(false, 11), (false, 12), (true, 12), (true, 13)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(12).unwrap().name.as_deref(), Some("new"));
        // Nothing changed: nothing to say.
        let mut seen: Vec<ProcessSeen> = t
            .processes()
            .map(|p| ProcessSeen { pid: p.pid, start_ticks: p.start_ticks.unwrap(), exe: p.exe.clone() })
            .collect();
        assert!(t.reconcile(&seen, |_| None).is_empty());
        // An exec the stream missed: same pid and start, another program.
        let mut execd = proc_(10, 100, "d");
        execd.exe = Some("/usr/bin/d".into());
        let mut a = proc_(10, 100, "a");
        a.exe = Some("/usr/bin/a".into());
        t.exec(a);
        seen[0].exe = Some("/usr/bin/d".into());
        let c = t.reconcile(&seen, |_| Some(execd.clone()));
        assert_eq!(c, vec![ProcessChange::Started(execd.clone())]);
        // A process that vanishes while being described is not started.
        assert!(t
            .reconcile(&[ProcessSeen { pid: 77, start_ticks: 1, exe: None }], |_| None)
            .iter()
            .all(|c| matches!(c, ProcessChange::Stopped { .. })));
        assert!(t.get(77).is_none());
    }

    #[test]
    fn exit_of_an_unknown_pid_says_nothing() {
        let mut t = ProcessTable::new();
        assert!(t.exit(5, None).is_none());
        t.exec(proc_(5, 1, "x"));
        let exit = Some(ExitStatus { code: Some(0), signal: None });
        assert_eq!(t.exit(5, exit), Some(ProcessChange::Stopped { info: proc_(5, 1, "x"), exit }));
    }

    fn sock(local: &str, remote: &str, inode: u64) -> Socket {
        Socket {
            key: SocketKey {
                protocol: Protocol::Tcp,
                local: local.parse().unwrap(),
                remote: remote.parse().unwrap(),
                inode,
            },
            state: "ESTABLISHED",
            uid: 0,
            listening: false,
            direction: None,
            owner: None,
            ipv6: false,
        }
    }

    #[test]
    fn connections_open_and_close_and_keep_their_owner() {
        let mut t = ConnectionTable::new();
        let mut a = sock("10.0.0.1:5000", "10.0.0.2:443", 1);
        a.owner = Some(SocketOwner { pid: 42, ..Default::default() });
        let b = sock("10.0.0.1:5001", "10.0.0.2:443", 2);
        let c = t.update(vec![a.clone(), b.clone()]);
        assert_eq!(c, vec![ConnectionChange::Opened(a.clone()), ConnectionChange::Opened(b.clone())]);
        // a seen again without an owner keeps the one it had; b closes.
        let mut a2 = a.clone();
        a2.owner = None;
        a2.state = "CLOSE_WAIT";
        let c = t.update(vec![a2]);
        assert_eq!(c, vec![ConnectionChange::Closed(b)]);
        let kept = t.sockets().next().unwrap();
        assert_eq!(kept.owner.as_ref().unwrap().pid, 42);
        assert_eq!(kept.state, "CLOSE_WAIT");
    }

    #[test]
    fn a_stream_socket_without_inode_is_adopted_by_the_poll_not_reopened() {
        let mut t = ConnectionTable::new();
        // An event stream saw an inbound connection before accept(): no inode yet.
        let mut early = sock("10.0.0.1:22", "10.0.0.9:40000", 0);
        early.direction = Some(Direction::Inbound);
        early.owner = Some(SocketOwner { pid: 7, ..Default::default() });
        t.insert(early.clone());
        assert_eq!(t.find_ends(Protocol::Tcp, early.key.local, early.key.remote), Some(&early));
        // The poll sees it with its inode: the same connection, no event.
        let polled = sock("10.0.0.1:22", "10.0.0.9:40000", 99);
        // Listed twice (a /proc/net read racing with other sockets): still one.
        assert_eq!(t.update(vec![polled.clone(), polled.clone()]), vec![]);
        assert_eq!(t.len(), 1);
        let kept = t.sockets().next().unwrap();
        assert_eq!((kept.key.inode, kept.direction), (99, Some(Direction::Inbound)));
        assert_eq!(kept.owner.as_ref().unwrap().pid, 7);
        // A socket with a known inode is not adopted by a different one.
        t.insert(sock("10.0.0.1:5000", "10.0.0.2:443", 5));
        let c = t.update(vec![polled.clone(), sock("10.0.0.1:5000", "10.0.0.2:443", 6)]);
        assert_eq!(c.len(), 2, "{c:?}");
        let gone = t.remove_ends(Protocol::Tcp, polled.key.local, polled.key.remote).unwrap();
        assert_eq!(gone.key.inode, 99);
        assert!(t.find_ends(Protocol::Tcp, polled.key.local, polled.key.remote).is_none());
    }

    fn pkg(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            manager: "dpkg",
            architectures: vec!["amd64".into()],
            files: vec![format!("/usr/bin/{name}")],
        }
    }

    fn inv(pkgs: &[Package]) -> Inventory {
        pkgs.iter().map(|p| ((p.manager, p.name.clone()), p.clone())).collect()
    }

    #[test]
    fn inventory_diff_names_installed_removed_and_upgraded() {
        let mut s = PackageState::new();
        let first = s.update(inv(&[pkg("a", "1"), pkg("b", "1")]));
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|c| matches!(c, PackageChange::Installed(_))));
        let c = s.update(inv(&[pkg("b", "2"), pkg("c", "1")]));
        assert_eq!(
            c,
            vec![
                PackageChange::Removed(pkg("a", "1")),
                PackageChange::Upgraded { previous: "1".into(), package: pkg("b", "2") },
                PackageChange::Installed(pkg("c", "1")),
            ]
        );
        assert!(s.update(inv(&[pkg("b", "2"), pkg("c", "1")])).is_empty());
    }

    #[test]
    fn updating_one_manager_leaves_the_other() {
        let mut s = PackageState::new();
        let mut r = pkg("r", "1");
        r.manager = "rpm";
        s.update(inv(&[pkg("a", "1"), r.clone()]));
        let c = s.update_manager("dpkg", inv(&[pkg("a", "1"), pkg("b", "1")]));
        assert_eq!(c, vec![PackageChange::Installed(pkg("b", "1"))]);
        assert!(s.inventory().unwrap().contains_key(&("rpm", "r".to_string())));
    }

    #[test]
    fn directories_are_the_parents_of_listed_paths() {
        let paths: Vec<String> =
            ["/.", "/usr", "/usr/bin", "/usr/bin/ls", "/usr/share/doc/x"].iter().map(|s| s.to_string()).collect();
        let d = directories_of(&paths);
        assert!(d.contains("/usr") && d.contains("/usr/bin") && d.contains("/usr/share/doc"));
        assert!(!d.contains("/usr/bin/ls"));
    }
}
