//! Reproducible synthetic `connections` rows for benchmarks and tests.
//!
//! This module owns [`edges`]: an enterprise-shaped connection table from a
//! seed. Same arguments, same rows (for a given `rand` version).
//!
//! # Shape
//!
//! Hosts `host-00000`, `host-00001`, … get addresses in `10.0.0.0/8` (index `i`
//! → `10.a.b.c` with `c` in 1..=254). About 2 % are servers (DNS, domain
//! controllers, web, app, database, file), one in 20 000 (at least one) is an
//! admin jump host, one is a vulnerability scanner, the rest are clients.
//! Database servers are multi-homed: a second address in `10.250.0.0/16` (with
//! the same host name) takes the database traffic from app servers. Rows, by
//! share:
//!
//! - 64 % client → server on the service's ports (DNS 53/udp, Kerberos/LDAP/SMB
//!   to domain controllers, 443/80 to web, …), the busiest servers of a role
//!   taking most of it;
//! - 15 % server → server (web → app, app → database, everything → DNS and AD);
//! - 10 % east-west client → client (SMB, RDP, SSH);
//! - 10 % hubs: jump hosts to servers (SSH, RDP, WinRM), the scanner to anyone;
//! - 1 % multicast and broadcast noise (mDNS, SSDP, DHCP), which the graph ignores.
//!
//! One row in 20 has no `dst_host` (the agent did not resolve it). `last_seen`
//! falls in the 24 hours before `now`, `first_seen` between then and
//! `last_seen`; counts are log-uniform in 1..10 000. Keys are distinct, so the
//! graph holds one flow per row except the noise; with few hosts there may be
//! fewer distinct keys than asked for, and fewer rows are returned.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::EdgeRecord;

/// Most hosts [`edges`] lays out (addresses stay below `10.250.0.0`).
pub const MAX_HOSTS: usize = 254 * 256 * 250;

/// The name of host `i`.
pub fn host_name(i: usize) -> String {
    format!("host-{i:05}")
}

/// The (primary) address of host `i`.
pub fn host_ip(i: usize) -> IpAddr {
    let (block, c) = (i / 254, (i % 254 + 1) as u8);
    IpAddr::V4(Ipv4Addr::new(10, (block >> 8) as u8, block as u8, c))
}

fn secondary_ip(j: usize) -> IpAddr {
    let (block, c) = (j / 254, (j % 254 + 1) as u8);
    IpAddr::V4(Ipv4Addr::new(10, 250 + (block >> 8) as u8, block as u8, c))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dns,
    Dc,
    Web,
    App,
    Db,
    File,
}

/// A service: ports, protocol, client processes.
struct Service {
    ports: &'static [u16],
    protocol: &'static str,
    processes: &'static [&'static str],
}

fn service(role: Role, from_server: bool) -> Service {
    match (role, from_server) {
        (Role::Dns, false) => Service {
            ports: &[53],
            protocol: "udp",
            processes: &["systemd-resolved", "svchost.exe", "dnsmasq", "chrome"],
        },
        (Role::Dns, true) => Service { ports: &[53], protocol: "udp", processes: &["systemd-resolved", "named"] },
        (Role::Dc, false) => Service {
            ports: &[88, 389, 445, 135, 636],
            protocol: "tcp",
            processes: &["lsass.exe", "svchost.exe", "sssd", "gpupdate.exe"],
        },
        (Role::Dc, true) => Service { ports: &[88, 389, 636], protocol: "tcp", processes: &["sssd", "lsass.exe"] },
        (Role::Web, _) => Service {
            ports: &[443, 80, 8080],
            protocol: "tcp",
            processes: &["chrome", "firefox", "msedge", "outlook.exe", "teams", "curl", "python3"],
        },
        (Role::App, false) => {
            Service { ports: &[8443, 9000], protocol: "tcp", processes: &["java", "python3", "chrome"] }
        }
        (Role::App, true) => {
            Service { ports: &[8080, 8443, 9000], protocol: "tcp", processes: &["nginx", "haproxy", "envoy"] }
        }
        (Role::Db, false) => {
            Service { ports: &[5432, 3306, 1433], protocol: "tcp", processes: &["psql", "dbeaver", "python3"] }
        }
        (Role::Db, true) => Service {
            ports: &[5432, 3306, 1433],
            protocol: "tcp",
            processes: &["java", "python3", "gunicorn", "node", "pg_basebackup"],
        },
        (Role::File, _) => {
            Service { ports: &[445, 2049], protocol: "tcp", processes: &["explorer.exe", "smbclient", "rsync"] }
        }
    }
}

const EAST_WEST: &[(u16, &str, &[&str])] = &[
    (445, "tcp", &["svchost.exe", "explorer.exe"]),
    (3389, "tcp", &["mstsc.exe"]),
    (22, "tcp", &["ssh", "scp"]),
    (135, "tcp", &["svchost.exe"]),
];
const ADMIN: &[(u16, &str, &[&str])] =
    &[(22, "tcp", &["ssh", "ansible"]), (3389, "tcp", &["mstsc.exe"]), (5985, "tcp", &["powershell.exe"])];
const SCAN_PORTS: &[u16] = &[21, 22, 23, 25, 80, 135, 139, 443, 445, 1433, 3306, 3389, 5432, 5985, 8080, 8443];
const NOISE: &[(Ipv4Addr, u16, &str)] = &[
    (Ipv4Addr::new(224, 0, 0, 251), 5353, "avahi-daemon"),
    (Ipv4Addr::new(239, 255, 255, 250), 1900, "svchost.exe"),
    (Ipv4Addr::new(255, 255, 255, 255), 67, "dhclient"),
];

struct Layout {
    hosts: usize,
    /// Server host indices per role.
    dns: Vec<usize>,
    dc: Vec<usize>,
    web: Vec<usize>,
    app: Vec<usize>,
    db: Vec<usize>,
    file: Vec<usize>,
    servers: usize,
    jump: Vec<usize>,
    scanner: Option<usize>,
    /// Clients are `clients.0..clients.1`.
    clients: (usize, usize),
}

impl Layout {
    fn new(hosts: usize) -> Self {
        let servers = (hosts / 50).clamp(1, hosts / 2);
        let hubs = if hosts >= 10 { (hosts / 20_000).max(1) + 1 } else { 0 };
        let share = |pct: usize| (servers * pct / 100).max(1);
        let mut next = 0usize;
        let mut take = |n: usize| {
            let v: Vec<usize> = (next..(next + n).min(servers)).collect();
            next = (next + n).min(servers);
            v
        };
        let (dns, dc, web, db, file) =
            (take(share(5)), take(share(5)), take(share(30)), take(share(20)), take(share(10)));
        let app = take(servers);
        let jump: Vec<usize> = (servers..servers + hubs.saturating_sub(1)).collect();
        let scanner = (hubs > 0).then_some(servers + hubs - 1);
        Layout { hosts, dns, dc, web, app, db, file, servers, jump, scanner, clients: (servers + hubs, hosts) }
    }

    fn role(&self, role: Role) -> &[usize] {
        match role {
            Role::Dns => &self.dns,
            Role::Dc => &self.dc,
            Role::Web => &self.web,
            Role::App => &self.app,
            Role::Db => &self.db,
            Role::File => &self.file,
        }
    }

    /// Any role with servers, falling back in a fixed order.
    fn server(&self, rng: &mut StdRng, role: Role) -> Option<usize> {
        let order = [role, Role::Web, Role::App, Role::Dns, Role::Dc, Role::Db, Role::File];
        let list = order.iter().map(|&r| self.role(r)).find(|l| !l.is_empty())?;
        // Skewed: the first servers of a role are the busiest.
        let x: f64 = rng.random();
        Some(list[((x * x * list.len() as f64) as usize).min(list.len() - 1)])
    }

    fn client(&self, rng: &mut StdRng) -> usize {
        if self.clients.0 < self.clients.1 {
            rng.random_range(self.clients.0..self.clients.1)
        } else {
            rng.random_range(0..self.hosts)
        }
    }
}

/// A row's primary key packed in 128 bits (addresses here are all IPv4; the
/// process and protocol enter as a 48-bit FNV-1a hash, collisions only cost a row).
fn key(src: IpAddr, process: &str, dst: IpAddr, port: u16, protocol: &str) -> u128 {
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => 0,
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in process.bytes().chain([0]).chain(protocol.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (u128::from(v4(src)) << 96) | (u128::from(v4(dst)) << 64) | (u128::from(port) << 48) | u128::from(h >> 16)
}

fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

/// `count` rows of a synthetic enterprise `connections` table (see the
/// [module docs](self)); empty when `hosts < 2`. `hosts` is capped at [`MAX_HOSTS`].
pub fn edges(hosts: usize, count: usize, seed: u64, now: DateTime<Utc>) -> Vec<EdgeRecord> {
    let hosts = hosts.min(MAX_HOSTS);
    if hosts < 2 || count == 0 {
        return Vec::new();
    }
    let layout = Layout::new(hosts);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys: HashSet<u128> = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    let db_secondary = |i: usize| layout.db.iter().position(|&d| d == i).map(secondary_ip);
    let mut attempts = 0usize;
    while out.len() < count && attempts < count.saturating_mul(4) {
        attempts += 1;
        let kind: u32 = rng.random_range(0..100);
        // (src index, dst index or noise address, port, protocol, process)
        let (src, dst, port, protocol, process): (usize, Result<usize, Ipv4Addr>, u16, &str, &str) = if kind < 64 {
            let role = match rng.random_range(0..100) {
                0..30 => Role::Dns,
                30..45 => Role::Dc,
                45..70 => Role::Web,
                70..80 => Role::File,
                80..90 => Role::App,
                _ => Role::Db,
            };
            let Some(dst) = layout.server(&mut rng, role) else { continue };
            let s = service(role, false);
            (layout.client(&mut rng), Ok(dst), pick(&mut rng, s.ports), s.protocol, pick(&mut rng, s.processes))
        } else if kind < 79 {
            let (from, to) = match rng.random_range(0..4) {
                0 => (Role::Web, Role::App),
                1 => (Role::App, Role::Db),
                2 => (pick(&mut rng, &[Role::Web, Role::App, Role::Db, Role::File, Role::Dc]), Role::Dns),
                _ => (pick(&mut rng, &[Role::Web, Role::App, Role::Db, Role::File]), Role::Dc),
            };
            let (Some(src), Some(dst)) = (layout.server(&mut rng, from), layout.server(&mut rng, to)) else {
                continue;
            };
            let s = service(to, true);
            (src, Ok(dst), pick(&mut rng, s.ports), s.protocol, pick(&mut rng, s.processes))
        } else if kind < 89 {
            let (port, protocol, procs) = pick(&mut rng, EAST_WEST);
            (layout.client(&mut rng), Ok(layout.client(&mut rng)), port, protocol, pick(&mut rng, procs))
        } else if kind < 99 {
            match (layout.scanner, layout.jump.is_empty()) {
                (Some(scanner), _) if rng.random_bool(0.5) => {
                    let process = if rng.random_bool(0.7) { "nessusd" } else { "nmap" };
                    (scanner, Ok(rng.random_range(0..hosts)), pick(&mut rng, SCAN_PORTS), "tcp", process)
                }
                (_, false) => {
                    let (port, protocol, procs) = pick(&mut rng, ADMIN);
                    let dst = if rng.random_bool(0.8) {
                        rng.random_range(0..layout.servers)
                    } else {
                        layout.client(&mut rng)
                    };
                    (pick(&mut rng, &layout.jump), Ok(dst), port, protocol, pick(&mut rng, procs))
                }
                _ => continue,
            }
        } else {
            let (addr, port, process) = pick(&mut rng, NOISE);
            (layout.client(&mut rng), Err(addr), port, "udp", process)
        };
        let src_ip = host_ip(src);
        let (dst_ip, dst_name) = match dst {
            Ok(d) if d == src => continue,
            // App servers reach databases on their second address.
            Ok(d) if protocol == "tcp" && [5432, 3306, 1433].contains(&port) && src < layout.servers => {
                (db_secondary(d).unwrap_or_else(|| host_ip(d)), Some(host_name(d)))
            }
            Ok(d) => (host_ip(d), Some(host_name(d))),
            Err(a) => (IpAddr::V4(a), None),
        };
        if !keys.insert(key(src_ip, process, dst_ip, port, protocol)) {
            continue;
        }
        let last_seen = now - Duration::seconds(rng.random_range(0..86_400));
        let since_window = (last_seen - (now - Duration::hours(24))).num_seconds().max(0);
        let first_seen = last_seen - Duration::seconds(rng.random_range(0..=since_window));
        let count = (10_000f64.powf(rng.random::<f64>())) as i64;
        let bytes = count.saturating_mul(rng.random_range(64..16_384));
        let dst_host = if rng.random_ratio(1, 20) { None } else { dst_name };
        out.push(EdgeRecord {
            src_ip,
            src_host: Some(host_name(src)),
            src_process: process.to_string(),
            dst_ip,
            dst_host,
            dst_port: port,
            protocol: protocol.to_string(),
            first_seen,
            last_seen,
            count: count.max(1),
            bytes,
        });
    }
    out
}
