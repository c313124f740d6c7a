//! Host metrics from /proc and statvfs: CPU use (from `/proc/stat` deltas)
//! with load averages, memory and swap (`/proc/meminfo`), disk use per
//! mounted real filesystem (`/proc/self/mounts` + statvfs), and network
//! bytes per interface (`/proc/net/dev`, with rates since the last sample).
//! One `metric` event per group and tick: `raw.metric` is `cpu`, `memory`,
//! `disk` (one per mount) or `net` (one per interface), the values beside it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use vigil_event::{Event, Kind};

use super::procfs::{parse_kb_field, ProcFs};
use super::{new_event, HostContext};

/// Filesystems that hold no user data (or are counted elsewhere).
const PSEUDO_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Jiffies from the `cpu` line of `/proc/stat`: (busy, total).
pub fn parse_cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Online CPUs (`cpuN` lines of `/proc/stat`).
pub fn count_cpus(stat: &str) -> usize {
    stat.lines().filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)).count()
}

/// Interface → (rx bytes, tx bytes) from `/proc/net/dev`.
pub fn parse_net_dev(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            Some((name.trim().to_string(), *v.first()?, *v.get(8)?))
        })
        .collect()
}

/// A mount line's fields: (device, mount point, filesystem type), with
/// the kernel's octal escapes (`\040` for a space) undone.
pub fn parse_mounts(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((unescape(f.next()?), unescape(f.next()?), f.next()?.to_string()))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// CPU, memory, disk and network samples, with the previous ones for rates.
#[derive(Debug)]
pub struct MetricsCollector {
    host: String,
    procfs: ProcFs,
    last_cpu: Option<(u64, u64)>,
    last_net: HashMap<String, (u64, u64)>,
    last_at: Option<Instant>,
}

impl MetricsCollector {
    pub fn new(ctx: &HostContext) -> Self {
        let mut m = MetricsCollector {
            host: ctx.host.clone(),
            procfs: ProcFs::new(&ctx.proc_root),
            last_cpu: None,
            last_net: HashMap::new(),
            last_at: None,
        };
        // A first CPU and network sample, so the first tick has rates.
        m.last_cpu = m.read("stat").as_deref().and_then(parse_cpu_line);
        if let Some(text) = m.read("net/dev") {
            m.last_net = parse_net_dev(&text).into_iter().map(|(n, rx, tx)| (n, (rx, tx))).collect();
        }
        m.last_at = Some(Instant::now());
        m
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.procfs.path(rel)).ok()
    }

    /// One sample of every group.
    pub fn sample(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let elapsed = self.last_at.map(|t| t.elapsed().as_secs_f64()).filter(|s| *s > 0.0);
        self.last_at = Some(Instant::now());
        let mut events = Vec::new();

        if let Some(stat) = self.read("stat") {
            let cpus = count_cpus(&stat);
            if let Some((busy, total)) = parse_cpu_line(&stat) {
                let percent = self.last_cpu.and_then(|(b0, t0)| {
                    let dt = total.checked_sub(t0).filter(|d| *d > 0)?;
                    Some(round2(busy.saturating_sub(b0) as f64 * 100.0 / dt as f64))
                });
                self.last_cpu = Some((busy, total));
                let load: Vec<f64> = self
                    .read("loadavg")
                    .map(|l| l.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or_default();
                let message = match percent {
                    Some(p) => format!("cpu {p:.1}% of {cpus} cores"),
                    None => format!("cpu ({cpus} cores)"),
                };
                events.push(self.event(
                    now,
                    "cpu",
                    "",
                    message,
                    json!({"cpu_percent": percent, "cores": cpus, "load": load}),
                ));
            }
        }

        if let Some(mem) = self.read("meminfo") {
            let total = parse_kb_field(&mem, "MemTotal");
            let available = parse_kb_field(&mem, "MemAvailable").or_else(|| parse_kb_field(&mem, "MemFree"));
            if let (Some(total), Some(available)) = (total, available) {
                let used = total.saturating_sub(available);
                let swap_total = parse_kb_field(&mem, "SwapTotal").unwrap_or(0);
                let swap_free = parse_kb_field(&mem, "SwapFree").unwrap_or(0);
                events.push(self.event(
                    now,
                    "memory",
                    "",
                    format!("memory {} of {} used", human(used), human(total)),
                    json!({
                        "used_bytes": used,
                        "total_bytes": total,
                        "available_bytes": available,
                        "used_percent": round2(used as f64 * 100.0 / total.max(1) as f64),
                        "swap_used_bytes": swap_total.saturating_sub(swap_free),
                        "swap_total_bytes": swap_total,
                    }),
                ));
            }
        }

        if let Some(mounts) = self.read("self/mounts") {
            let mut devices = HashSet::new();
            for (device, mount, fs) in parse_mounts(&mounts) {
                if PSEUDO_FS.contains(&fs.as_str()) || !devices.insert(device.clone()) {
                    continue;
                }
                let Ok(st) = rustix::fs::statvfs(mount.as_str()) else { continue };
                let total = st.f_blocks.saturating_mul(st.f_frsize);
                if total == 0 {
                    continue;
                }
                let free = st.f_bfree.saturating_mul(st.f_frsize);
                let avail = st.f_bavail.saturating_mul(st.f_frsize);
                let used = total.saturating_sub(free);
                events.push(self.event(
                    now,
                    "disk",
                    &mount,
                    format!("disk {mount} {} of {} used", human(used), human(total)),
                    json!({
                        "mount": mount,
                        "device": device,
                        "fs": fs,
                        "used_bytes": used,
                        "total_bytes": total,
                        "available_bytes": avail,
                        "used_percent": round2(used as f64 * 100.0 / total as f64),
                    }),
                ));
            }
        }

        if let Some(dev) = self.read("net/dev") {
            let mut next = HashMap::new();
            for (iface, rx, tx) in parse_net_dev(&dev) {
                let rate = |now: u64, before: Option<u64>| -> Value {
                    match (before, elapsed) {
                        (Some(b), Some(s)) if now >= b => json!(round2((now - b) as f64 / s)),
                        _ => Value::Null,
                    }
                };
                let prev = self.last_net.get(&iface).copied();
                let raw = json!({
                    "interface": iface,
                    "rx_bytes": rx,
                    "tx_bytes": tx,
                    "rx_bytes_per_s": rate(rx, prev.map(|p| p.0)),
                    "tx_bytes_per_s": rate(tx, prev.map(|p| p.1)),
                });
                let message = format!("net {iface} rx {} tx {}", human(rx), human(tx));
                events.push(self.event(now, "net", &iface, message, raw));
                next.insert(iface, (rx, tx));
            }
            self.last_net = next;
        }
        events
    }

    fn event(&self, now: DateTime<Utc>, metric: &str, label: &str, message: String, mut raw: Value) -> Event {
        let mut e = new_event(Kind::Metric, &self.host, now, &format!("metric|{}|{metric}|{label}", self.host));
        e.message = message;
        if let Some(map) = raw.as_object_mut() {
            map.insert("metric".into(), json!(metric));
        }
        e.raw = raw;
        e
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Bytes in binary units for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cpu_net_and_mount_parsers() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\n";
        assert_eq!(parse_cpu_line(stat), Some((150, 1000)));
        assert_eq!(count_cpus(stat), 2);
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 100 2 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n  eth0: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), vec![("lo".into(), 100, 200), ("eth0".into(), 5, 7)]);
        let m = parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n");
        assert_eq!(m[1].1, "/mnt/my disk");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
