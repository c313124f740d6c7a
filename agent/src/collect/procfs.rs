//! Reading /proc (under a configurable root): the process list, one
//! process's description (stat, status, exe, cmdline, cwd, cgroup), socket
//! inode owners from `/proc/<pid>/fd`, boot time and clock ticks, and the
//! uid → user name map from `/etc/passwd`. Parsers are pure functions over
//! the text, tested on samples; the readers tolerate processes vanishing
//! between two reads (the normal case on a busy host).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};

use crate::state::{ProcessInfo, ProcessSeen, SocketOwner};

/// Longest command line kept (bytes); longer ones are cut and flagged.
pub const MAX_CMDLINE: usize = 8 * 1024;

/// `PF_KTHREAD` in `/proc/<pid>/stat` flags: a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/<pid>/stat` the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidStat {
    pub pid: i32,
    pub comm: String,
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    pub state: char,
    pub ppid: i32,
    pub flags: u64,
    pub utime: u64,
    pub stime: u64,
    pub start_ticks: u64,
}

impl PidStat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0 || self.pid == 2 || self.ppid == 2
    }

    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/<pid>/stat` (the name may hold spaces and parentheses: it
/// ends at the last `)`).
pub fn parse_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |i: usize| rest.get(i).copied();
    Some(PidStat {
        pid,
        comm,
        state: field(0)?.chars().next()?,
        ppid: field(1)?.parse().ok()?,
        flags: field(6)?.parse().ok()?,
        utime: field(11)?.parse().ok()?,
        stime: field(12)?.parse().ok()?,
        start_ticks: field(19)?.parse().ok()?,
    })
}

/// Real and effective uid from `/proc/<pid>/status`.
pub fn parse_status_uids(text: &str) -> Option<(u32, u32)> {
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some((ids.next()??, ids.next()??))
}

/// A value (in kB, as bytes) from `/proc/<pid>/status` or `/proc/meminfo`.
pub fn parse_kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// NUL-separated arguments joined by spaces, cut at [`MAX_CMDLINE`] bytes
/// (the flag says whether it was cut).
pub fn parse_cmdline(bytes: &[u8]) -> (String, bool) {
    let truncated = bytes.len() > MAX_CMDLINE;
    let bytes = &bytes[..bytes.len().min(MAX_CMDLINE)];
    let args: Vec<String> =
        bytes.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    (args.join(" "), truncated)
}

/// The executable path without the kernel's ` (deleted)` mark, and whether it was there.
pub fn strip_deleted(link: &str) -> (String, bool) {
    match link.strip_suffix(" (deleted)") {
        Some(path) => (path.to_string(), true),
        None => (link.to_string(), false),
    }
}

/// The cgroup path that describes a process: the v2 unified one (`0::…`),
/// else systemd's, else the first non-root one.
pub fn parse_cgroup(text: &str) -> Option<String> {
    let entries: Vec<(&str, &str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            Some((parts.next()?, parts.next()?, parts.next()?))
        })
        .collect();
    let pick = entries
        .iter()
        .find(|(h, c, p)| *h == "0" && c.is_empty() && *p != "/")
        .or_else(|| entries.iter().find(|(_, c, p)| *c == "name=systemd" && *p != "/"))
        .or_else(|| entries.iter().find(|(_, _, p)| *p != "/" && !p.is_empty()));
    pick.map(|(_, _, p)| p.to_string())
}

/// A container id in a cgroup path: the 64-hex-digit segment that docker,
/// containerd, CRI-O and podman name their cgroups with
/// (`/docker/<id>`, `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>`, `libpod-<id>`).
pub fn container_id(cgroup: &str) -> Option<String> {
    cgroup.split(['/', ':']).find_map(|seg| {
        let seg = seg.strip_suffix(".scope").unwrap_or(seg);
        let id = seg.rsplit('-').next().unwrap_or(seg);
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
    })
}

/// `btime` from `/proc/stat`: boot time in seconds since the epoch.
pub fn parse_btime(text: &str) -> Option<i64> {
    text.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// uid → user name from a passwd file.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let uid = f.next()?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// The socket inode a `/proc/<pid>/fd/<n>` link names (`socket:[12345]`).
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// User names by uid, re-read when the passwd file changes.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
    names: HashMap<u32, String>,
}

impl Users {
    /// Users from `path` (usually `/etc/passwd`); empty if unreadable.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let mut u = Users { path: path.into(), modified: None, checked: None, names: HashMap::new() };
        u.refresh();
        u
    }

    /// Re-reads the file if it changed since the last read.
    pub fn refresh(&mut self) {
        self.checked = Some(Instant::now());
        let modified = fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified.is_some() && modified == self.modified {
            return;
        }
        if let Ok(text) = fs::read_to_string(&self.path) {
            self.names = parse_passwd(&text);
            self.modified = modified;
        }
    }

    /// The name of `uid`; an unknown uid re-checks the file at most every 10 s.
    pub fn name(&mut self, uid: u32) -> Option<String> {
        if let Some(n) = self.names.get(&uid) {
            return Some(n.clone());
        }
        if self.checked.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            self.refresh();
        }
        self.names.get(&uid).cloned()
    }
}

/// A /proc mount.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
    boot_time: Option<i64>,
    ticks_per_second: u64,
}

impl ProcFs {
    /// The /proc at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let boot_time = fs::read_to_string(root.join("stat")).ok().as_deref().and_then(parse_btime);
        let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
        ProcFs { root, boot_time, ticks_per_second }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    fn pid_path(&self, pid: i32, file: &str) -> PathBuf {
        let mut p = self.root.join(pid.to_string());
        p.push(file);
        p
    }

    /// Clock ticks (`utime`, `starttime`) per second.
    pub fn ticks_per_second(&self) -> u64 {
        self.ticks_per_second
    }

    /// Wall-clock time of a start time in ticks since boot.
    pub fn started_at(&self, start_ticks: u64) -> Option<DateTime<Utc>> {
        let boot = self.boot_time?;
        let millis = (start_ticks as i128 * 1000 / self.ticks_per_second as i128) as i64;
        Utc.timestamp_millis_opt(boot.checked_mul(1000)?.checked_add(millis)?).single()
    }

    /// Every pid in /proc, ascending.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let mut pids: Vec<i32> = fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            .filter(|p| *p > 0)
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// `/proc/<pid>/stat`.
    pub fn stat(&self, pid: i32) -> io::Result<PidStat> {
        let text = fs::read_to_string(self.pid_path(pid, "stat"))?;
        parse_stat(&text)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unparseable /proc/{pid}/stat")))
    }

    /// The user-space processes alive now (no kernel threads, no zombies),
    /// with their start times and executables: one stat read and one
    /// readlink per process.
    pub fn seen(&self) -> io::Result<Vec<ProcessSeen>> {
        Ok(self
            .pids()?
            .into_iter()
            .filter_map(|pid| self.stat(pid).ok())
            .filter(|s| !s.is_kernel_thread() && !s.is_dead())
            .map(|s| ProcessSeen { pid: s.pid, start_ticks: s.start_ticks, exe: self.exe(s.pid).ok().map(|e| e.0) })
            .collect())
    }

    /// The real path of a process's executable (and whether it was deleted).
    pub fn exe(&self, pid: i32) -> io::Result<(String, bool)> {
        let link = fs::read_link(self.pid_path(pid, "exe"))?;
        Ok(strip_deleted(&link.to_string_lossy()))
    }

    /// The kernel's name of a process.
    pub fn comm(&self, pid: i32) -> io::Result<String> {
        Ok(fs::read_to_string(self.pid_path(pid, "comm"))?.trim_end_matches('\n').to_string())
    }

    /// Everything /proc says about `pid`; `Err(NotFound)` when it is gone
    /// before its stat could be read. Later reads that fail (the process
    /// exited meanwhile, or is a zombie) leave their fields empty; without
    /// the executable the description is not `complete`.
    pub fn describe(&self, pid: i32, users: &mut Users) -> io::Result<ProcessInfo> {
        // The executable first: for a short-lived process it is what matters
        // most, and every read later may find the process gone.
        let exe = self.exe(pid);
        let stat = match self.stat(pid) {
            Ok(stat) => Some(stat),
            Err(e) if exe.is_err() => return Err(e),
            Err(_) => None,
        };
        let mut info = ProcessInfo { pid, complete: exe.is_ok(), ..Default::default() };
        if let Some(stat) = stat {
            info.ppid = Some(stat.ppid);
            info.name = Some(stat.comm);
            info.start_ticks = Some(stat.start_ticks);
            info.started_at = self.started_at(stat.start_ticks);
        }
        // Without an executable (exited meanwhile, a zombie, not permitted) the description is incomplete.
        if let Ok((exe, deleted)) = exe {
            if info.name.is_none() {
                // What the kernel's comm would be: the file name, cut to 15 bytes.
                let base = exe.rsplit('/').next().unwrap_or(&exe);
                info.name = Some(crate::collect::truncate(base, 15).to_string());
            }
            info.exe = Some(exe);
            info.exe_deleted = deleted;
        }
        if let Ok(bytes) = read_capped(&self.pid_path(pid, "cmdline"), MAX_CMDLINE + 1) {
            let (cmdline, _) = parse_cmdline(&bytes);
            if !cmdline.is_empty() {
                info.cmdline = Some(cmdline);
            }
        }
        if let Some((uid, euid)) =
            fs::read_to_string(self.pid_path(pid, "status")).ok().as_deref().and_then(parse_status_uids)
        {
            info.uid = Some(uid);
            info.euid = Some(euid);
            info.user = users.name(uid);
        }
        if let Ok(cwd) = fs::read_link(self.pid_path(pid, "cwd")) {
            info.cwd = Some(cwd.to_string_lossy().into_owned());
        }
        if let Some(cgroup) = fs::read_to_string(self.pid_path(pid, "cgroup")).ok().as_deref().and_then(parse_cgroup) {
            info.container_id = container_id(&cgroup);
            info.cgroup = Some(cgroup);
        }
        Ok(info)
    }

    /// Socket inode → owning process, from every `/proc/<pid>/fd`. A socket
    /// shared by several processes (inherited by forked workers) belongs to
    /// the lowest pid, usually the parent.
    pub fn socket_owners(&self) -> io::Result<HashMap<u64, i32>> {
        let mut owners = HashMap::new();
        for pid in self.pids()? {
            let Ok(dir) = fs::read_dir(self.pid_path(pid, "fd")) else { continue };
            for entry in dir.flatten() {
                let Ok(link) = fs::read_link(entry.path()) else { continue };
                if let Some(inode) = link.to_str().and_then(socket_inode) {
                    owners.entry(inode).or_insert(pid);
                }
            }
        }
        Ok(owners)
    }

    /// Name and executable of a socket's owner.
    pub fn owner(&self, pid: i32) -> SocketOwner {
        SocketOwner { pid, name: self.comm(pid).ok(), exe: self.exe(pid).ok().map(|(e, _)| e) }
    }
}

/// Reads at most `cap` bytes of a file.
pub fn read_capped(path: &Path, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)?.take(cap as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Wall-clock time of a `CLOCK_MONOTONIC` timestamp in nanoseconds (the
/// kernel's process-event time), by the current offset between the clocks.
pub fn monotonic_to_wall(ts_ns: u64) -> DateTime<Utc> {
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mono_ns = (mono.tv_sec as i128) * 1_000_000_000 + mono.tv_nsec as i128;
    let now = Utc::now();
    let ago = (mono_ns - ts_ns as i128).max(0);
    let ago = chrono::Duration::nanoseconds(i64::try_from(ago).unwrap_or(i64::MAX));
    now.checked_sub_signed(ago).unwrap_or(now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_name_parses() {
        let text = "4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123456 1000 10";
        let s = parse_stat(text).unwrap();
        assert_eq!((s.pid, s.comm.as_str(), s.state, s.ppid), (4242, "we ird) (x)", 'S', 1));
        assert_eq!((s.utime, s.stime, s.start_ticks), (7, 3, 123_456));
        assert!(!s.is_kernel_thread());
        let k = parse_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0").unwrap();
        assert!(k.is_kernel_thread());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn status_cmdline_and_deleted_exe() {
        let status = "Name:\tpasswd\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\nVmRSS:\t  1234 kB\n";
        assert_eq!(parse_status_uids(status), Some((1000, 0)));
        assert_eq!(parse_kb_field(status, "VmRSS"), Some(1234 * 1024));
        assert_eq!(parse_cmdline(b"/bin/sh\0-c\0echo hi\0"), ("/bin/sh -c echo hi".to_string(), false));
        let long = vec![b'a'; MAX_CMDLINE + 1];
        let (c, cut) = parse_cmdline(&long);
        assert!(cut && c.len() == MAX_CMDLINE);
        assert_eq!(strip_deleted("/usr/bin/x (deleted)"), ("/usr/bin/x".to_string(), true));
        assert_eq!(strip_deleted("/usr/bin/x"), ("/usr/bin/x".to_string(), false));
    }

    #[test]
    fn cgroups_and_container_ids() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let v2 = format!("0::/system.slice/docker-{id}.scope\n");
        assert_eq!(parse_cgroup(&v2).unwrap(), format!("/system.slice/docker-{id}.scope"));
        assert_eq!(container_id(&parse_cgroup(&v2).unwrap()).as_deref(), Some(id));
        let v1 = format!("12:pids:/docker/{id}\n1:name=systemd:/docker/{id}\n0::/\n");
        assert_eq!(container_id(&parse_cgroup(&v1).unwrap()).as_deref(), Some(id));
        let k8s = format!("0::/kubepods/burstable/pod1234/cri-containerd-{id}.scope");
        assert_eq!(container_id(&k8s).as_deref(), Some(id));
        assert_eq!(container_id("/user.slice/user-1000.slice/session-2.scope"), None);
        assert_eq!(parse_cgroup("0::/\n"), None);
    }

    #[test]
    fn passwd_btime_and_socket_links() {
        let p = parse_passwd("root:x:0:0:root:/root:/bin/bash\n# c\nalice:x:1000:1000::/home/alice:/bin/sh\nbad\n");
        assert_eq!(p.get(&0).map(String::as_str), Some("root"));
        assert_eq!(p.get(&1000).map(String::as_str), Some("alice"));
        assert_eq!(parse_btime("cpu 1 2 3\nbtime 1700000000\n"), Some(1_700_000_000));
        assert_eq!(socket_inode("socket:[123]"), Some(123));
        assert_eq!(socket_inode("pipe:[123]"), None);
    }

    #[test]
    fn this_process_describes_itself() {
        let procfs = ProcFs::new("/proc");
        let mut users = Users::new("/etc/passwd");
        let me = std::process::id() as i32;
        let info = procfs.describe(me, &mut users).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(info.exe.as_deref(), Some(exe.to_str().unwrap()));
        assert!(info.start_ticks.is_some() && info.started_at.is_some());
        assert!(info.started_at.unwrap() <= Utc::now());
        assert!(procfs.seen().unwrap().iter().any(|s| s.pid == me));
        let wall = monotonic_to_wall({
            let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
        });
        assert!((Utc::now() - wall).num_milliseconds().abs() < 1000);
    }
}
