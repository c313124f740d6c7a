//! Connection telemetry: parsing `/proc/net/{tcp,tcp6,udp,udp6}`, mapping
//! socket inodes to their processes through `/proc/<pid>/fd`, and the
//! [`ConnectionCollector`] that diffs the sockets against the
//! [`ConnectionTable`] into network events.
//!
//! Events: a connection (TCP in any state but LISTEN and TIME_WAIT, or a
//! connected UDP socket) that appears is `activity_id` 1 (open), one that
//! disappears 2 (close). `src` is the client and `dst` the server: for a
//! connection accepted on a local listening port (`raw.direction =
//! "inbound"`) `src` is the remote end, otherwise (`"outbound"`) the local
//! one. Listening sockets (TCP LISTEN, unconnected bound UDP) are separate
//! events with `activity_id` 7 (OCSF Listen) and only `src` (the local
//! address) when they appear, 2 with `raw.listening = true` when they go;
//! lacking a `dst` they make no graph edge. `raw` carries the kernel state,
//! direction, inode, socket uid and `snapshot`.
//!
//! With the eBPF connection source ([`super::ebpf_net`]) TCP connections
//! are also reported as the kernel changes their state
//! ([`ConnectionCollector::apply_bpf`], `raw.origin = "ebpf"`): same events,
//! same table, so the poll still runs as the reconcile and a connection
//! both see is reported once (the table matches by protocol and both ends;
//! see `ConnectionTable::update`). Owners there: outbound, the task that
//! called connect(); inbound, the listener's owner (the accepting process
//! as found in `/proc/*/fd` replaces it in the table at the next poll,
//! without a new event); closes, the owner known at open.
//!
//! Cost: the four tables are read every tick; the `/proc/*/fd` walk that
//! finds owners runs only when a socket appears whose inode has no known
//! owner, so an idle host costs four small reads per tick.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use chrono::{DateTime, Utc};
use serde_json::json;
use vigil_event::{Endpoint, Event, Kind, Process};

use super::ebpf_net::BpfConn;
use super::procfs::{monotonic_to_wall, ProcFs, Users};
use super::{new_event, HostContext};
use crate::state::{ConnectionChange, ConnectionTable, Direction, Protocol, Socket, SocketKey, SocketOwner};

/// One line of a `/proc/net` socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketLine {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's state number (`0A` LISTEN …).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// TCP state names by number.
pub fn tcp_state_name(state: u8) -> &'static str {
    match state {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        0x0C => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// An address as `/proc/net` prints it: the 32-bit words of the network
/// byte order address in host order, hex; then the port, hex.
pub fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            // An IPv4 peer of a dual-stack socket is shown as IPv4.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The sockets in one `/proc/net/{tcp,udp}[6]` table (header and bad lines skipped).
pub fn parse_table(text: &str) -> Vec<SocketLine> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(SocketLine {
                local: parse_addr(f.get(1)?)?,
                remote: parse_addr(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                uid: f.get(7)?.parse().ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Sorts the lines of one table into sockets worth reporting: no inode
/// (TIME_WAIT, orphans closing) means no process holds it, so it is not
/// reported; TCP LISTEN and unconnected UDP are listeners.
pub fn classify(protocol: Protocol, ipv6: bool, lines: Vec<SocketLine>) -> Vec<Socket> {
    lines
        .into_iter()
        .filter(|l| l.inode != 0)
        .filter_map(|l| {
            let (listening, state) = match protocol {
                Protocol::Tcp => match l.state {
                    0x0A => (true, "LISTEN"),
                    0x06 | 0x07 => return None,
                    s => (false, tcp_state_name(s)),
                },
                Protocol::Udp => {
                    if l.remote.port() == 0 && l.remote.ip().is_unspecified() {
                        (true, "UNCONN")
                    } else {
                        (false, "ESTABLISHED")
                    }
                }
            };
            Some(Socket {
                key: SocketKey { protocol, local: l.local, remote: l.remote, inode: l.inode },
                state,
                uid: l.uid,
                listening,
                direction: None,
                owner: None,
                ipv6,
            })
        })
        .collect()
}

/// Marks each connection inbound (its local port is a listener's, on the
/// same address or a wildcard) or outbound.
pub fn set_directions(sockets: &mut [Socket]) {
    let listeners: HashSet<(Protocol, IpAddr, u16)> = sockets
        .iter()
        .filter(|s| s.listening)
        .map(|s| (s.key.protocol, s.key.local.ip(), s.key.local.port()))
        .collect();
    let wildcard_ports: HashSet<(Protocol, u16)> =
        listeners.iter().filter(|(_, ip, _)| ip.is_unspecified()).map(|(proto, _, port)| (*proto, *port)).collect();
    for s in sockets.iter_mut().filter(|s| !s.listening) {
        let (proto, local) = (s.key.protocol, s.key.local);
        let inbound =
            listeners.contains(&(proto, local.ip(), local.port())) || wildcard_ports.contains(&(proto, local.port()));
        s.direction = Some(if inbound { Direction::Inbound } else { Direction::Outbound });
    }
}

/// Connections and listeners, diffed tick to tick.
#[derive(Debug)]
pub struct ConnectionCollector {
    host: String,
    procfs: ProcFs,
    users: Users,
    table: ConnectionTable,
    /// Socket inode → owner from the last `/proc/*/fd` walk.
    owners: HashMap<u64, i32>,
    owner_info: HashMap<i32, SocketOwner>,
    /// How many `/proc/*/fd` walks ran (for tests and cost checks).
    pub fd_scans: u64,
}

impl ConnectionCollector {
    pub fn new(ctx: &HostContext) -> Self {
        ConnectionCollector {
            host: ctx.host.clone(),
            procfs: ProcFs::new(&ctx.proc_root),
            users: Users::new(ctx.passwd.clone()),
            table: ConnectionTable::new(),
            owners: HashMap::new(),
            owner_info: HashMap::new(),
            fd_scans: 0,
        }
    }

    pub fn table(&self) -> &ConnectionTable {
        &self.table
    }

    /// Every socket in the four tables now, with directions, and the ends
    /// of the TCP sockets in them that no process holds (`inode` 0: not
    /// accepted yet, or closed by their owner and finishing); an unreadable
    /// table (no IPv6, say) is skipped.
    fn read_sockets(&self) -> (Vec<Socket>, HashSet<(SocketAddr, SocketAddr)>) {
        let mut all = Vec::new();
        let mut unheld = HashSet::new();
        for (file, protocol, ipv6) in [
            ("net/tcp", Protocol::Tcp, false),
            ("net/tcp6", Protocol::Tcp, true),
            ("net/udp", Protocol::Udp, false),
            ("net/udp6", Protocol::Udp, true),
        ] {
            if let Ok(text) = std::fs::read_to_string(self.procfs.path(file)) {
                let lines = parse_table(&text);
                if protocol == Protocol::Tcp {
                    unheld.extend(
                        lines
                            .iter()
                            .filter(|l| l.inode == 0 && !matches!(l.state, 0x06 | 0x07 | 0x0A))
                            .map(|l| (l.local, l.remote)),
                    );
                }
                all.extend(classify(protocol, ipv6, lines));
            }
        }
        set_directions(&mut all);
        (all, unheld)
    }

    /// Sets owners on the sockets the table does not know yet, walking
    /// `/proc/*/fd` only if one of them has an inode with no known owner.
    fn resolve_owners(&mut self, sockets: &mut [Socket]) {
        let new: Vec<usize> = (0..sockets.len()).filter(|i| !self.table.contains(&sockets[*i].key)).collect();
        if new.iter().any(|i| !self.owners.contains_key(&sockets[*i].key.inode)) {
            match self.procfs.socket_owners() {
                Ok(owners) => {
                    self.owners = owners;
                    self.fd_scans += 1;
                    let live: HashSet<i32> = self.owners.values().copied().collect();
                    self.owner_info.retain(|pid, _| live.contains(pid));
                }
                Err(e) => tracing::warn!(error = %e, "walking /proc/*/fd for socket owners"),
            }
        }
        for i in new {
            let Some(pid) = self.owners.get(&sockets[i].key.inode).copied() else { continue };
            let procfs = &self.procfs;
            let owner = self.owner_info.entry(pid).or_insert_with(|| procfs.owner(pid)).clone();
            sockets[i].owner = Some(owner);
        }
    }

    /// The changes since the last poll as events.
    pub fn poll(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let changes = self.changes();
        changes.iter().map(|c| self.event(c, false, now)).collect()
    }

    fn changes(&mut self) -> Vec<ConnectionChange> {
        let (mut sockets, unheld) = self.read_sockets();
        self.resolve_owners(&mut sockets);
        // A connection the eBPF source reported before anyone accepted it
        // has no inode in the table; while /proc still lists it without one
        // it is the same connection, not a closed one.
        let listed: HashSet<(Protocol, SocketAddr, SocketAddr)> =
            sockets.iter().map(|s| (s.key.protocol, s.key.local, s.key.remote)).collect();
        let pending: Vec<Socket> = self
            .table
            .sockets()
            .filter(|s| s.key.inode == 0 && s.key.protocol == Protocol::Tcp)
            .filter(|s| unheld.contains(&(s.key.local, s.key.remote)))
            .filter(|s| !listed.contains(&(s.key.protocol, s.key.local, s.key.remote)))
            .cloned()
            .collect();
        sockets.extend(pending);
        self.table.update(sockets)
    }

    /// One record of the eBPF connection source as events: an opened
    /// connection the table does not know yet (by protocol and both ends),
    /// or the close of one it knows; nothing otherwise (the poll reported it
    /// already, or the connection was never established).
    pub fn apply_bpf(&mut self, c: &BpfConn) -> Vec<Event> {
        let time = monotonic_to_wall(c.ts_ns);
        let change = if c.opened {
            if self.table.find_ends(Protocol::Tcp, c.local, c.remote).is_some() {
                return Vec::new();
            }
            let direction = c.direction().unwrap_or(Direction::Outbound);
            let owner = match direction {
                Direction::Outbound if c.pid_is_owner && c.pid > 0 => {
                    let mut o = self.procfs.owner(c.pid);
                    if o.name.is_none() {
                        o.name = Some(c.comm.clone()).filter(|n| !n.is_empty());
                    }
                    Some(o)
                }
                Direction::Inbound => self.listener_owner(c.local),
                Direction::Outbound => None,
            };
            // Known from an earlier /proc/*/fd walk (a socket that had a file).
            let owner = owner.or_else(|| {
                let pid = self.owners.get(&c.inode).copied().filter(|_| c.inode != 0)?;
                let procfs = &self.procfs;
                Some(self.owner_info.entry(pid).or_insert_with(|| procfs.owner(pid)).clone())
            });
            let socket = Socket {
                key: SocketKey { protocol: Protocol::Tcp, local: c.local, remote: c.remote, inode: c.inode },
                state: "ESTABLISHED",
                uid: c.uid,
                listening: false,
                direction: Some(direction),
                owner,
                ipv6: c.ipv6,
            };
            self.table.insert(socket.clone());
            ConnectionChange::Opened(socket)
        } else {
            match self.table.remove_ends(Protocol::Tcp, c.local, c.remote) {
                Some(s) => ConnectionChange::Closed(s),
                None => return Vec::new(),
            }
        };
        let mut e = self.event(&change, false, time);
        if let Some(raw) = e.raw.as_object_mut() {
            raw.insert("origin".into(), json!("ebpf"));
        }
        vec![e]
    }

    /// The owner of the TCP listener a connection to `local` was accepted
    /// on: one on that address, else a wildcard one on that port.
    fn listener_owner(&self, local: SocketAddr) -> Option<SocketOwner> {
        let listeners: Vec<&Socket> = self
            .table
            .sockets()
            .filter(|s| s.listening && s.key.protocol == Protocol::Tcp && s.key.local.port() == local.port())
            .collect();
        let exact = listeners.iter().find(|s| s.key.local.ip() == local.ip());
        let any = || listeners.iter().find(|s| s.key.local.ip().is_unspecified());
        exact.or_else(any).and_then(|s| s.owner.clone())
    }

    /// A poll, then every open socket as opened (or listening) with
    /// `raw.snapshot = true`; closes found by the poll are sent as such.
    pub fn snapshot(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let changes = self.changes();
        let mut events: Vec<Event> = changes
            .iter()
            .filter(|c| matches!(c, ConnectionChange::Closed(_)))
            .map(|c| self.event(c, false, now))
            .collect();
        let open: Vec<ConnectionChange> = self.table.sockets().cloned().map(ConnectionChange::Opened).collect();
        events.extend(open.iter().map(|c| self.event(c, true, now)));
        events
    }

    fn event(&mut self, change: &ConnectionChange, snapshot: bool, time: DateTime<Utc>) -> Event {
        let user = match change {
            ConnectionChange::Opened(s) | ConnectionChange::Closed(s) => self.users.name(s.uid),
        };
        connection_event(&self.host, change, user, snapshot, time)
    }
}

/// The network event for one socket change.
pub fn connection_event(
    host: &str,
    change: &ConnectionChange,
    user: Option<String>,
    snapshot: bool,
    time: DateTime<Utc>,
) -> Event {
    let (s, opened) = match change {
        ConnectionChange::Opened(s) => (s, true),
        ConnectionChange::Closed(s) => (s, false),
    };
    let activity = match (opened, s.listening) {
        (true, true) => 7,
        (true, false) => 1,
        (false, _) => 2,
    };
    let k = &s.key;
    let identity =
        format!("network|{host}|{activity}|{}|{}|{}|{}|{snapshot}", k.protocol.as_str(), k.local, k.remote, k.inode);
    let mut e = new_event(Kind::Network, host, time, &identity);
    e.activity_id = Some(activity);
    e.protocol = Some(k.protocol.as_str().to_string());
    e.user = user;
    let local = Endpoint { ip: k.local.ip(), port: Some(k.local.port()) };
    let remote = Endpoint { ip: k.remote.ip(), port: Some(k.remote.port()) };
    let (src, dst) = match (s.listening, s.direction) {
        (true, _) => (local, None),
        (false, Some(Direction::Inbound)) => (remote, Some(local)),
        (false, _) => (local, Some(remote)),
    };
    e.src = Some(src);
    e.dst = dst;
    if let Some(o) = &s.owner {
        e.process = Some(Process { pid: Some(o.pid), name: o.name.clone(), path: o.exe.clone(), ..Default::default() });
    }
    let who = s.owner.as_ref().and_then(|o| o.name.as_deref()).unwrap_or("?");
    let proto = k.protocol.as_str();
    e.message = match (opened, s.listening) {
        (true, true) => format!("{who} listening on {proto} {}", k.local),
        (false, true) => format!("{who} stopped listening on {proto} {}", k.local),
        (true, false) => {
            format!("{proto} {} -> {} opened by {who}", fmt_ep(&src), dst.map(|d| fmt_ep(&d)).unwrap_or_default())
        }
        (false, false) => {
            format!("{proto} {} -> {} closed ({who})", fmt_ep(&src), dst.map(|d| fmt_ep(&d)).unwrap_or_default())
        }
    };
    e.raw = json!({
        "state": s.state,
        "listening": s.listening,
        "direction": s.direction,
        "local": k.local.to_string(),
        "remote": if s.listening { None } else { Some(k.remote.to_string()) },
        "inode": k.inode,
        "uid": s.uid,
        "family": if s.ipv6 { "ipv6" } else { "ipv4" },
        "pid": s.owner.as_ref().map(|o| o.pid),
        "exe": s.owner.as_ref().and_then(|o| o.exe.clone()),
        "snapshot": snapshot,
    });
    if let Some(map) = e.raw.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    e
}

fn fmt_ep(e: &Endpoint) -> String {
    SocketAddr::new(e.ip, e.port.unwrap_or(0)).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1002 1 0 20 4 30 10 -1
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 1003 1 0 20 4 30 10 -1
   3: 0100007F:D432 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0
   4: garbage
";

    #[cfg(target_endian = "little")]
    #[test]
    fn tcp_table_parses_and_classifies() {
        let lines = parse_table(TCP);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(lines[1].remote, "127.0.0.1:54321".parse().unwrap());
        assert_eq!((lines[1].uid, lines[1].inode), (1000, 1002));
        let mut socks = classify(Protocol::Tcp, false, lines);
        assert_eq!(socks.len(), 3, "TIME_WAIT without an inode is not a socket anyone holds");
        set_directions(&mut socks);
        assert!(socks[0].listening);
        assert_eq!(socks[1].direction, Some(Direction::Inbound));
        assert_eq!(socks[2].direction, Some(Direction::Outbound));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_and_mapped_addresses() {
        // [::1]:443 and ::ffff:10.0.0.5 as /proc/net/tcp6 prints them.
        let v6 = parse_addr("00000000000000000000000001000000:01BB").unwrap();
        assert_eq!(v6, "[::1]:443".parse().unwrap());
        let mapped = parse_addr("0000000000000000FFFF00000500000A:0050").unwrap();
        assert_eq!(mapped, "10.0.0.5:80".parse().unwrap());
        assert!(parse_addr("zz:1").is_none());
    }

    #[test]
    fn udp_unconnected_is_a_listener_and_connected_is_a_connection() {
        let text = "header
   1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 55 2 0 0
   2: 0100007F:A000 0200007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 56 2 0 0
";
        let s = classify(Protocol::Udp, false, parse_table(text));
        assert!(s[0].listening && s[0].state == "UNCONN");
        assert!(!s[1].listening);
    }

    #[test]
    fn events_put_the_client_in_src() {
        let sock = Socket {
            key: SocketKey {
                protocol: Protocol::Tcp,
                local: "10.0.0.1:22".parse().unwrap(),
                remote: "203.0.113.9:40000".parse().unwrap(),
                inode: 9,
            },
            state: "ESTABLISHED",
            uid: 0,
            listening: false,
            direction: Some(Direction::Inbound),
            owner: Some(SocketOwner { pid: 77, name: Some("sshd".into()), exe: Some("/usr/sbin/sshd".into()) }),
            ipv6: false,
        };
        let e = connection_event("h", &ConnectionChange::Opened(sock.clone()), None, false, Utc::now());
        e.validate().unwrap();
        assert_eq!(e.activity_id, Some(1));
        assert_eq!(e.src.unwrap().port, Some(40000));
        assert_eq!(e.dst.unwrap().port, Some(22));
        assert_eq!(e.process.as_ref().unwrap().path.as_deref(), Some("/usr/sbin/sshd"));
        assert_eq!(e.raw["direction"], "inbound");
        let mut l = sock;
        l.listening = true;
        l.state = "LISTEN";
        let e = connection_event("h", &ConnectionChange::Opened(l.clone()), None, true, Utc::now());
        assert_eq!((e.activity_id, e.dst), (Some(7), None));
        assert_eq!(e.raw["snapshot"], true);
        let e = connection_event("h", &ConnectionChange::Closed(l), None, false, Utc::now());
        assert_eq!(e.activity_id, Some(2));
        assert_eq!(e.raw["listening"], true);
    }
}
