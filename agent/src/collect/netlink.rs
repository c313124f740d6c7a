//! The kernel's process-event connector (`NETLINK_CONNECTOR`, group
//! `CN_IDX_PROC`): opening and subscribing ([`ProcConnector::open`], which
//! needs `CAP_NET_ADMIN` in the initial namespaces), reading, and parsing its
//! messages into [`ProcEvent`]s (fork, exec, exit). Parsing is a pure
//! function over the bytes, tested on built messages; the socket is driven
//! through `rustix`'s safe API.
//!
//! Layout (native byte order): `nlmsghdr` (16 bytes) · `cn_msg` (`idx`,
//! `val`, `seq`, `ack`: u32; `len`, `flags`: u16; 20 bytes) · `proc_event`
//! (`what`: u32, `cpu`: u32, `timestamp_ns`: u64, then the event's fields).

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// `CN_IDX_PROC`: the connector's index (and multicast group) for process events.
pub const CN_IDX_PROC: u32 = 1;
/// `CN_VAL_PROC`.
pub const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN`.
pub const PROC_CN_MCAST_LISTEN: u32 = 1;
/// `PROC_CN_MCAST_IGNORE`.
pub const PROC_CN_MCAST_IGNORE: u32 = 2;

const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// Receive buffer asked for (forced past `rmem_max` where permitted), so
/// an exec storm is buffered rather than dropped.
const RECV_BUFFER: usize = 8 * 1024 * 1024;

/// Why the connector could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a NETLINK_CONNECTOR socket: {0}")]
    Socket(std::io::Error),
    #[error("joining the process-events group (CN_IDX_PROC): {0}")]
    Bind(std::io::Error),
    #[error("sending the subscription: {0}")]
    Send(std::io::Error),
    #[error("reading process events: {0}")]
    Recv(std::io::Error),
    #[error("the kernel refused the subscription (errno {0}; needs CAP_NET_ADMIN in the initial namespaces)")]
    Refused(u32),
    #[error("the kernel did not acknowledge the subscription within {0:?} (not permitted in this namespace?)")]
    NoAck(Duration),
    #[error("the kernel dropped process events (receive buffer overrun); a reconcile will catch up")]
    Overrun,
}

/// One process event from the kernel. Pids are the kernel's `pid` (thread
/// id) and `tgid` (process id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// The answer to a subscription (`err` 0 is success).
    Ack {
        err: u32,
    },
    Fork {
        ts_ns: u64,
        parent_pid: i32,
        parent_tgid: i32,
        child_pid: i32,
        child_tgid: i32,
    },
    Exec {
        ts_ns: u64,
        pid: i32,
        tgid: i32,
    },
    Exit {
        ts_ns: u64,
        pid: i32,
        tgid: i32,
        exit_code: u32,
        exit_signal: u32,
        parent_tgid: Option<i32>,
    },
    /// Another kind (uid, gid, sid, ptrace, comm, coredump changes).
    Other {
        what: u32,
    },
}

impl ProcEvent {
    /// A fork that made a new process (not a thread).
    pub fn is_process_fork(&self) -> bool {
        matches!(self, ProcEvent::Fork { child_pid, child_tgid, .. } if child_pid == child_tgid)
    }
}

/// The kernel's wait status of an exit split into exit code and signal.
pub fn decode_exit(exit_code: u32) -> (Option<i32>, Option<i32>) {
    let signal = (exit_code & 0x7f) as i32;
    if signal == 0 {
        (Some(((exit_code >> 8) & 0xff) as i32), None)
    } else {
        (None, Some(signal))
    }
}

/// A subscription message (`PROC_CN_MCAST_LISTEN` or `_IGNORE`).
pub fn subscription(op: u32, seq: u32, port: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&port.to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&4u16.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&op.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Every process event in one datagram (normally one); malformed or
/// foreign messages are skipped.
pub fn parse(buf: &[u8]) -> Vec<ProcEvent> {
    let mut events = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let Some(len) = u32_at(buf, off).map(|l| l as usize) else { break };
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            break;
        }
        let kind = u16_at(buf, off + 4).unwrap_or(0);
        let msg = &buf[off + NLMSG_HDRLEN..off + len];
        off += (len + 3) & !3;
        if kind == NLMSG_NOOP || kind == NLMSG_ERROR {
            continue;
        }
        if let Some(ev) = parse_cn_msg(msg) {
            events.push(ev);
        }
    }
    events
}

fn parse_cn_msg(msg: &[u8]) -> Option<ProcEvent> {
    if u32_at(msg, 0)? != CN_IDX_PROC || u32_at(msg, 4)? != CN_VAL_PROC {
        return None;
    }
    let data_len = u16_at(msg, 16)? as usize;
    let ev = msg.get(CN_MSG_LEN..CN_MSG_LEN + data_len)?;
    let what = u32_at(ev, 0)?;
    let ts_ns = u64_at(ev, 8)?;
    const D: usize = 16;
    Some(match what {
        PROC_EVENT_NONE => ProcEvent::Ack { err: u32_at(ev, D)? },
        PROC_EVENT_FORK => ProcEvent::Fork {
            ts_ns,
            parent_pid: i32_at(ev, D)?,
            parent_tgid: i32_at(ev, D + 4)?,
            child_pid: i32_at(ev, D + 8)?,
            child_tgid: i32_at(ev, D + 12)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec { ts_ns, pid: i32_at(ev, D)?, tgid: i32_at(ev, D + 4)? },
        PROC_EVENT_EXIT => ProcEvent::Exit {
            ts_ns,
            pid: i32_at(ev, D)?,
            tgid: i32_at(ev, D + 4)?,
            exit_code: u32_at(ev, D + 8)?,
            exit_signal: u32_at(ev, D + 12)?,
            // Kernels since 4.x append the parent.
            parent_tgid: i32_at(ev, D + 20),
        },
        other => ProcEvent::Other { what: other },
    })
}

/// A subscribed process-event socket. Dropping it unsubscribes.
#[derive(Debug)]
pub struct ProcConnector {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl ProcConnector {
    /// Opens the socket, joins `CN_IDX_PROC`, subscribes, and waits (up to
    /// a second) for the kernel's acknowledgement.
    pub fn open() -> Result<ProcConnector, NetlinkError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(rustix::net::netlink::CONNECTOR),
        )
        .map_err(|e| NetlinkError::Socket(e.into()))?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC)).map_err(|e| NetlinkError::Bind(e.into()))?;
        // Best effort: a bigger buffer survives exec storms; forcing needs CAP_NET_ADMIN.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, RECV_BUFFER).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, RECV_BUFFER);
        }
        let mut conn = ProcConnector { fd, seq: 0, buf: vec![0u8; 64 * 1024] };
        conn.send_op(PROC_CN_MCAST_LISTEN)?;
        let limit = Duration::from_secs(1);
        let start = Instant::now();
        conn.set_timeout(Duration::from_millis(100))?;
        while start.elapsed() < limit {
            match conn.recv() {
                Ok(events) => {
                    if let Some(err) = events.iter().find_map(|e| match e {
                        ProcEvent::Ack { err } => Some(*err),
                        _ => None,
                    }) {
                        return if err == 0 { Ok(conn) } else { Err(NetlinkError::Refused(err)) };
                    }
                }
                // Events that were dropped before the ack still prove the subscription.
                Err(NetlinkError::Overrun) => return Ok(conn),
                Err(e) => return Err(e),
            }
        }
        Err(NetlinkError::NoAck(limit))
    }

    fn send_op(&mut self, op: u32) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let msg = subscription(op, self.seq, std::process::id());
        rustix::net::send(&self.fd, &msg, SendFlags::empty()).map_err(|e| NetlinkError::Send(e.into()))?;
        Ok(())
    }

    /// How long [`ProcConnector::recv`] waits before returning nothing.
    pub fn set_timeout(&self, timeout: Duration) -> Result<(), NetlinkError> {
        rustix::net::sockopt::set_socket_timeout(&self.fd, rustix::net::sockopt::Timeout::Recv, Some(timeout))
            .map_err(|e| NetlinkError::Recv(e.into()))
    }

    /// The events of the next datagram; empty after the timeout.
    /// [`NetlinkError::Overrun`] means events were lost (the socket stays usable).
    pub fn recv(&mut self) -> Result<Vec<ProcEvent>, NetlinkError> {
        match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
            Ok((n, _)) => Ok(parse(&self.buf[..n])),
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => Ok(Vec::new()),
            Err(e) if e == rustix::io::Errno::NOBUFS => Err(NetlinkError::Overrun),
            Err(e) => Err(NetlinkError::Recv(e.into())),
        }
    }
}

impl Drop for ProcConnector {
    fn drop(&mut self) {
        let _ = self.send_op(PROC_CN_MCAST_IGNORE);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A netlink datagram carrying one proc_event with `fields` after its header.
    fn message(what: u32, ts: u64, fields: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes());
        ev.extend_from_slice(&ts.to_ne_bytes());
        for f in fields {
            ev.extend_from_slice(&f.to_ne_bytes());
        }
        let mut m = subscription(0, 7, 0);
        m.truncate(NLMSG_HDRLEN + CN_MSG_LEN);
        m[NLMSG_HDRLEN + 16..NLMSG_HDRLEN + 18].copy_from_slice(&(ev.len() as u16).to_ne_bytes());
        m.extend_from_slice(&ev);
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn subscription_is_40_bytes_to_the_proc_connector() {
        let m = subscription(PROC_CN_MCAST_LISTEN, 1, 99);
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }

    #[test]
    fn fork_exec_exit_and_ack_parse() {
        let fork = message(PROC_EVENT_FORK, 5, &[10, 10, 11, 11]);
        assert_eq!(
            parse(&fork),
            vec![ProcEvent::Fork { ts_ns: 5, parent_pid: 10, parent_tgid: 10, child_pid: 11, child_tgid: 11 }]
        );
        assert!(parse(&fork)[0].is_process_fork());
        let thread = message(PROC_EVENT_FORK, 5, &[10, 10, 12, 10]);
        assert!(!parse(&thread)[0].is_process_fork());
        let exec = message(PROC_EVENT_EXEC, 6, &[11, 11]);
        assert_eq!(parse(&exec), vec![ProcEvent::Exec { ts_ns: 6, pid: 11, tgid: 11 }]);
        let exit = message(PROC_EVENT_EXIT, 7, &[11, 11, 256 * 3, 17, 10, 10]);
        assert_eq!(
            parse(&exit),
            vec![ProcEvent::Exit {
                ts_ns: 7,
                pid: 11,
                tgid: 11,
                exit_code: 768,
                exit_signal: 17,
                parent_tgid: Some(10)
            }]
        );
        let old_kernel_exit = message(PROC_EVENT_EXIT, 7, &[11, 11, 9, 17]);
        assert!(matches!(parse(&old_kernel_exit)[0], ProcEvent::Exit { parent_tgid: None, .. }));
        assert_eq!(parse(&message(PROC_EVENT_NONE, 0, &[1])), vec![ProcEvent::Ack { err: 1 }]);
        assert_eq!(parse(&message(0x200, 0, &[1, 1])), vec![ProcEvent::Other { what: 0x200 }]);
        // Two in one datagram; then garbage and truncation are skipped, not a panic.
        let mut two = exec.clone();
        two.extend_from_slice(&fork);
        assert_eq!(parse(&two).len(), 2);
        assert!(parse(&exec[..exec.len() - 3]).is_empty());
        assert!(parse(&[0xff; 7]).is_empty());
        assert!(parse(&[0xff; 64]).is_empty());
    }

    #[test]
    fn exit_status_decodes_code_and_signal() {
        assert_eq!(decode_exit(3 << 8), (Some(3), None));
        assert_eq!(decode_exit(0), (Some(0), None));
        assert_eq!(decode_exit(9), (None, Some(9)));
    }
}
