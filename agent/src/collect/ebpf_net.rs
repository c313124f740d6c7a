//! The eBPF connection source: the C program `agent/bpf/net.bpf.c`
//! (compiled by `build.rs`, embedded, loaded with aya) on the tracepoint
//! `sock/inet_sock_set_state`, sending one record per TCP connection that
//! becomes ESTABLISHED (opened: SYN_SENT → ESTABLISHED is outbound,
//! SYN_RECV → ESTABLISHED inbound) and per established connection that
//! reaches CLOSE (closed), with family, both addresses and ports, the
//! socket's uid and inode, and a pid and comm. Records the ring buffer had
//! no room for are counted in `conn_lost`; the collector turns a rising
//! count into a /proc reconcile.
//!
//! Whose pid: the state changes to ESTABLISHED and to CLOSE mostly run in
//! the network receive path, where the current task is whoever the CPU was
//! running. For outbound connections the program remembers the task that
//! called `connect()` (current at CLOSE → SYN_SENT) and sends that
//! ([`BpfConn::pid_is_owner`]); inbound and close records carry the current
//! task only as a hint, and [`super::net::ConnectionCollector::apply_bpf`]
//! takes the owner of an inbound connection from its listener and the owner
//! of a closed one from what was known when it opened.
//!
//! This is only a source of deltas: the /proc/net poll keeps running as the
//! reconcile, and the two are merged in the same `ConnectionTable` (see
//! `net.rs`), so a connection both see is reported once.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use crate::config::ConnectionSourcePreference;
use crate::state::Direction;

/// Record kinds (`VIGIL_EV_CONN_*` in `agent/bpf/vigil.h`).
const EV_CONN_OPEN: u32 = 3;
const EV_CONN_CLOSE: u32 = 4;
/// Size of a record (`struct vigil_conn`).
pub const CONN_RECORD_LEN: usize = 96;
/// `VIGIL_CONN_OWNER_CONNECT`: pid and comm are the task that called connect().
const OWNER_CONNECT: u32 = 1;
const AF_INET6: u16 = 10;
const TCP_SYN_SENT: u8 = 2;
const TCP_SYN_RECV: u8 = 3;

/// One TCP state change from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfConn {
    /// Became ESTABLISHED (else: reached CLOSE).
    pub opened: bool,
    /// Thread group id: the owner when [`BpfConn::pid_is_owner`], else the task
    /// that happened to be current (0 in interrupt context on an idle CPU).
    pub pid: i32,
    pub tid: i32,
    /// `pid` and `comm` are the task that called connect() on this socket.
    pub pid_is_owner: bool,
    /// The socket's uid (as `/proc/net/tcp` shows it).
    pub uid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// The socket inode; 0 when the socket has no file yet (an inbound
    /// connection not accepted) or any more (closed by its owner).
    pub inode: u64,
    /// An `AF_INET6` socket (IPv4-mapped addresses are given as IPv4, as in /proc).
    pub ipv6: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's TCP states before and after.
    pub old_state: u8,
    pub new_state: u8,
    pub comm: String,
}

impl BpfConn {
    /// Which way an opened connection goes: from SYN_SENT outbound, from
    /// SYN_RECV inbound.
    pub fn direction(&self) -> Option<Direction> {
        if !self.opened {
            return None;
        }
        match self.old_state {
            TCP_SYN_SENT => Some(Direction::Outbound),
            TCP_SYN_RECV => Some(Direction::Inbound),
            _ => None,
        }
    }
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn addr(bytes: &[u8], v6: bool) -> IpAddr {
    if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&bytes[..16]);
        let ip = Ipv6Addr::from(a);
        match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(ip),
        }
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

/// Decodes one ring buffer record; `None` for a short or unknown one.
pub fn parse_conn_record(b: &[u8]) -> Option<BpfConn> {
    if b.len() < CONN_RECORD_LEN {
        return None;
    }
    let opened = match u32_at(b, 0) {
        EV_CONN_OPEN => true,
        EV_CONN_CLOSE => false,
        _ => return None,
    };
    let ipv6 = u16_at(b, 32) == AF_INET6;
    let comm_end = b[72..88].iter().position(|&c| c == 0).unwrap_or(16);
    Some(BpfConn {
        opened,
        pid: u32_at(b, 4) as i32,
        tid: u32_at(b, 8) as i32,
        pid_is_owner: u32_at(b, 88) & OWNER_CONNECT != 0,
        uid: u32_at(b, 12),
        ts_ns: u64_at(b, 16),
        inode: u64_at(b, 24),
        ipv6,
        local: SocketAddr::new(addr(&b[40..56], ipv6), u16_at(b, 34)),
        remote: SocketAddr::new(addr(&b[56..72], ipv6), u16_at(b, 36)),
        old_state: b[38],
        new_state: b[39],
        comm: String::from_utf8_lossy(&b[72..72 + comm_end]).into_owned(),
    })
}

/// Where connection events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionSource {
    /// The TCP state-change tracepoint, with the /proc/net poll as the reconcile.
    Ebpf,
    /// The /proc/net poll alone.
    Procfs,
}

impl ConnectionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionSource::Ebpf => "ebpf",
            ConnectionSource::Procfs => "procfs",
        }
    }
}

impl fmt::Display for ConnectionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connection source chosen at start, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionSourceChoice {
    pub preference: ConnectionSourcePreference,
    pub source: ConnectionSource,
    pub reason: String,
}

impl fmt::Display for ConnectionSourceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "connection source: {} (preference {})", self.source, self.preference)?;
        writeln!(f, "  {}", self.reason)
    }
}

/// Loads the connection tracer unless `preference` is `procfs`; the
/// /proc/net poll (every `poll`) runs either way.
pub fn choose_connection_source(
    preference: ConnectionSourcePreference,
    poll: std::time::Duration,
) -> (ConnectionSourceChoice, Option<NetTracer>) {
    let procfs = |why: String| ConnectionSourceChoice {
        preference,
        source: ConnectionSource::Procfs,
        reason: format!("procfs: polling /proc/net every {poll:?} ({why})"),
    };
    if preference == ConnectionSourcePreference::Procfs {
        return (procfs("configured".into()), None);
    }
    match NetTracer::load() {
        Ok(t) => (
            ConnectionSourceChoice {
                preference,
                source: ConnectionSource::Ebpf,
                reason: format!(
                    "ebpf: tracepoint sock/inet_sock_set_state attached (ring buffer); /proc/net reconcile every {poll:?}"
                ),
            },
            Some(t),
        ),
        Err(e) => (procfs(format!("fallback: ebpf: {e}")), None),
    }
}

#[cfg(vigil_bpf)]
pub use loader::NetTracer;

#[cfg(vigil_bpf)]
mod loader {
    use std::time::Duration;

    use aya::{include_bytes_aligned, Ebpf};

    use super::super::ebpf::{attach_tracepoint, ensure_tracefs, error_chain, Ring};
    use super::{parse_conn_record, BpfConn};

    static NET_OBJ: &[u8] = include_bytes_aligned!(env!("VIGIL_BPF_NET_OBJ"));

    /// The loaded and attached TCP state-change program and its ring
    /// buffer. Dropping it detaches it.
    pub struct NetTracer {
        ring: Ring,
        // Holds the program, its link and the `connectors` map.
        _bpf: Ebpf,
    }

    impl std::fmt::Debug for NetTracer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("NetTracer").field("ring", &self.ring).finish_non_exhaustive()
        }
    }

    impl NetTracer {
        /// Loads the program and attaches it to `sock/inet_sock_set_state`
        /// (mounting tracefs first when needed).
        pub fn load() -> Result<NetTracer, String> {
            ensure_tracefs()?;
            let mut bpf = Ebpf::load(NET_OBJ).map_err(|e| format!("loading net.bpf.o: {}", error_chain(&e)))?;
            attach_tracepoint(&mut bpf, "net.bpf.o", "vigil_sock_state", "sock", "inet_sock_set_state")?;
            let ring = Ring::take(&mut bpf, "net.bpf.o", "conn_events", "conn_lost")?;
            Ok(NetTracer { ring, _bpf: bpf })
        }

        /// Hands each waiting record (at most `max`) to `f`; when none is
        /// waiting, first waits up to `timeout` for one. Returns how many.
        pub fn poll(&mut self, timeout: Duration, max: usize, f: impl FnMut(BpfConn)) -> std::io::Result<usize> {
            self.ring.poll(timeout, max, parse_conn_record, f)
        }

        /// Records dropped since the last call (the ring buffer was full).
        pub fn take_lost(&mut self) -> u64 {
            self.ring.take_lost()
        }
    }
}

#[cfg(not(vigil_bpf))]
pub use stub::NetTracer;

#[cfg(not(vigil_bpf))]
mod stub {
    use std::time::Duration;

    use super::BpfConn;

    /// Never constructed: this agent was built without its BPF programs.
    #[derive(Debug)]
    pub struct NetTracer {
        never: std::convert::Infallible,
    }

    impl NetTracer {
        pub fn load() -> Result<NetTracer, String> {
            Err(super::super::ebpf::NOT_BUILT.to_string())
        }

        pub fn poll(&mut self, _timeout: Duration, _max: usize, _f: impl FnMut(BpfConn)) -> std::io::Result<usize> {
            match self.never {}
        }

        pub fn take_lost(&mut self) -> u64 {
            match self.never {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn record(kind: u32, family: u16, old: u8, new: u8) -> Vec<u8> {
        let mut b = vec![0u8; CONN_RECORD_LEN];
        b[0..4].copy_from_slice(&kind.to_le_bytes());
        b[4..8].copy_from_slice(&4242u32.to_le_bytes());
        b[8..12].copy_from_slice(&4243u32.to_le_bytes());
        b[12..16].copy_from_slice(&1000u32.to_le_bytes());
        b[16..24].copy_from_slice(&5_000_000_000u64.to_le_bytes());
        b[24..32].copy_from_slice(&777u64.to_le_bytes());
        b[32..34].copy_from_slice(&family.to_le_bytes());
        b[34..36].copy_from_slice(&40000u16.to_le_bytes());
        b[36..38].copy_from_slice(&443u16.to_le_bytes());
        b[38] = old;
        b[39] = new;
        b[72..76].copy_from_slice(b"curl");
        b[88..92].copy_from_slice(&OWNER_CONNECT.to_le_bytes());
        b
    }

    #[test]
    fn parses_an_outbound_ipv4_open() {
        let mut b = record(EV_CONN_OPEN, 2, TCP_SYN_SENT, 1);
        b[40..44].copy_from_slice(&[10, 0, 0, 1]);
        b[56..60].copy_from_slice(&[93, 184, 216, 34]);
        let c = parse_conn_record(&b).unwrap();
        assert!(c.opened && c.pid_is_owner && !c.ipv6);
        assert_eq!((c.pid, c.tid, c.uid, c.inode), (4242, 4243, 1000, 777));
        assert_eq!(c.local, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(c.remote, "93.184.216.34:443".parse().unwrap());
        assert_eq!(c.direction(), Some(Direction::Outbound));
        assert_eq!(c.comm, "curl");
    }

    #[test]
    fn parses_ipv6_and_mapped_addresses_and_inbound_closes() {
        let mut b = record(EV_CONN_OPEN, AF_INET6, TCP_SYN_RECV, 1);
        b[40..56].copy_from_slice(&"::1".parse::<Ipv6Addr>().unwrap().octets());
        b[56..72].copy_from_slice(&"::ffff:10.0.0.5".parse::<Ipv6Addr>().unwrap().octets());
        let c = parse_conn_record(&b).unwrap();
        assert!(c.ipv6);
        assert_eq!(c.local, "[::1]:40000".parse().unwrap());
        assert_eq!(c.remote, "10.0.0.5:443".parse().unwrap());
        assert_eq!(c.direction(), Some(Direction::Inbound));

        let c = parse_conn_record(&record(EV_CONN_CLOSE, 2, 1, 7)).unwrap();
        assert!(!c.opened);
        assert_eq!(c.direction(), None);
        assert_eq!(parse_conn_record(&record(9, 2, 1, 7)), None);
        assert_eq!(parse_conn_record(&record(EV_CONN_OPEN, 2, 2, 1)[..50]), None);
    }

    #[test]
    fn procfs_preference_loads_nothing() {
        let (choice, tracer) =
            choose_connection_source(ConnectionSourcePreference::Procfs, std::time::Duration::from_secs(5));
        assert!(tracer.is_none());
        assert_eq!(choice.source, ConnectionSource::Procfs);
        assert!(choice.reason.contains("configured"), "{}", choice.reason);
    }
}
