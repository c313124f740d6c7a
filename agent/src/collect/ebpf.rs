//! The eBPF process-event source: the C program `agent/bpf/exec.bpf.c`
//! (compiled by `build.rs`, embedded in the binary, loaded with aya) on the
//! tracepoints `sched/sched_process_exec` and `sched/sched_process_exit`,
//! sending one record per exec and per process exit into a ring buffer.
//! An exec record carries pid, parent, real and effective uid, comm, the
//! file name given to execve, argv (the first [`ARGS_SIZE`] bytes), the
//! cgroup id and the task's start time; an exit the wait status. Records
//! the ring buffer had no room for are counted in the `lost` map, and the
//! reader turns a rising count into a /proc reconcile.
//!
//! Also owns the file-system set-up eBPF needs: [`ensure_tracefs`] (mounts
//! tracefs on `/sys/kernel/tracing` when it is not mounted) and
//! [`ensure_bpffs`] (mounts the BPF file system on `/sys/fs/bpf` for pins).
//!
//! Everything that needs the compiled objects is behind `cfg(vigil_bpf)`
//! ([`BUILT`]); the record parser is always built so it can be tested.

use std::path::Path;

/// The BPF objects were compiled into this binary.
pub const BUILT: bool = cfg!(vigil_bpf);

/// Why this binary has no BPF objects.
pub const NOT_BUILT: &str = "this agent was built without its BPF programs (clang, bpftool, libbpf-dev or the kernel \
                             BTF were missing at build time, or VIGIL_AGENT_BPF=0; see the build warning)";

/// Record kinds (`VIGIL_EV_*` in `agent/bpf/vigil.h`).
const EV_EXEC: u32 = 1;
const EV_EXIT: u32 = 2;
/// Size of the record header (`struct vigil_hdr`).
pub const HEADER_LEN: usize = 80;
/// Bytes of the file name (`VIGIL_FILENAME_SIZE`).
pub const FILENAME_SIZE: usize = 256;
/// Bytes of argv copied at most (`VIGIL_ARGS_SIZE`; one less is used).
pub const ARGS_SIZE: usize = 2048;
const EXEC_LEN: usize = HEADER_LEN + FILENAME_SIZE + ARGS_SIZE;
const FLAG_ARGS_TRUNCATED: u32 = 1;

/// The tracefs mount point the agent uses.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where the BPF file system is mounted.
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: u64 = 0xcafe_4a11;

/// One record from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BpfProcEvent {
    Exec(BpfExec),
    Exit(BpfExit),
}

/// An exec as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfExec {
    /// Thread group id.
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub euid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// The process's start, nanoseconds since boot (the base of `/proc/<pid>/stat` field 22).
    pub start_ns: u64,
    pub cgroup_id: u64,
    pub comm: String,
    /// The path given to execve (may be relative).
    pub filename: String,
    /// The arguments, as copied (at most [`ARGS_SIZE`] - 1 bytes).
    pub argv: Vec<String>,
    /// argv was longer than what was copied.
    pub args_truncated: bool,
}

/// The last thread of a process exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfExit {
    pub pid: i32,
    pub ppid: i32,
    pub ts_ns: u64,
    pub start_ns: u64,
    /// The wait status (`exit_code` of the task).
    pub exit_code: u32,
    pub comm: String,
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

/// The text up to the first NUL.
fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Decodes one ring buffer record; `None` for a short or unknown one.
pub fn parse_record(b: &[u8]) -> Option<BpfProcEvent> {
    if b.len() < HEADER_LEN {
        return None;
    }
    let kind = u32_at(b, 0);
    let pid = u32_at(b, 4) as i32;
    let ppid = u32_at(b, 12) as i32;
    let ts_ns = u64_at(b, 32);
    let start_ns = u64_at(b, 40);
    let comm = c_str(&b[64..80]);
    match kind {
        EV_EXEC if b.len() >= EXEC_LEN => {
            let args_len = (u32_at(b, 28) as usize).min(ARGS_SIZE);
            let args = &b[HEADER_LEN + FILENAME_SIZE..HEADER_LEN + FILENAME_SIZE + args_len];
            let args = args.strip_suffix(&[0]).unwrap_or(args);
            let argv = if args.is_empty() {
                Vec::new()
            } else {
                args.split(|&c| c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
            };
            Some(BpfProcEvent::Exec(BpfExec {
                pid,
                ppid,
                uid: u32_at(b, 16),
                euid: u32_at(b, 20),
                ts_ns,
                start_ns,
                cgroup_id: u64_at(b, 48),
                comm,
                filename: c_str(&b[HEADER_LEN..HEADER_LEN + FILENAME_SIZE]),
                argv,
                args_truncated: u32_at(b, 56) & FLAG_ARGS_TRUNCATED != 0,
            }))
        }
        EV_EXIT => Some(BpfProcEvent::Exit(BpfExit { pid, ppid, ts_ns, start_ns, exit_code: u32_at(b, 24), comm })),
        _ => None,
    }
}

/// Clock ticks since boot (USER_HZ = 100), as `/proc/<pid>/stat` field 22 gives the start.
pub fn start_ticks(start_ns: u64) -> u64 {
    start_ns / 10_000_000
}

/// Mounts tracefs on [`TRACEFS`] unless it (or debugfs's tracing
/// directory) is already there. Tracepoints are attached through it.
pub fn ensure_tracefs() -> Result<(), String> {
    let populated = |p: &str| std::fs::read_dir(p).map(|mut d| d.next().is_some()).unwrap_or(false);
    if populated(TRACEFS) || populated("/sys/kernel/debug/tracing") {
        return Ok(());
    }
    rustix::mount::mount("tracefs", TRACEFS, "tracefs", rustix::mount::MountFlags::empty(), None)
        .map_err(|e| format!("tracefs is not mounted and mounting it on {TRACEFS} failed: {e}"))?;
    tracing::info!(path = TRACEFS, "mounted tracefs");
    Ok(())
}

/// Makes sure the BPF file system is mounted on [`BPFFS`] (pins live
/// there) and that `dir` exists under it.
pub fn ensure_bpffs(dir: &Path) -> Result<(), String> {
    let is_bpffs = |p: &str| rustix::fs::statfs(p).map(|s| s.f_type as u64 == BPF_FS_MAGIC).unwrap_or(false);
    if dir.starts_with(BPFFS) && !is_bpffs(BPFFS) {
        rustix::mount::mount("bpf", BPFFS, "bpf", rustix::mount::MountFlags::empty(), None)
            .map_err(|e| format!("the BPF file system is not mounted and mounting it on {BPFFS} failed: {e}"))?;
        tracing::info!(path = BPFFS, "mounted the BPF file system");
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Hands the heap freed after loading BPF objects back to the system: aya
/// parses the kernel's BTF (megabytes of short-lived allocations) for every
/// object it loads, and glibc keeps that heap otherwise (16 MB of RSS).
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only returns free memory at the allocator's discretion.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// An error and its causes, one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    // Verifier logs are long; the first lines say enough in a reason.
    if s.len() > 600 {
        s = format!("{}…", super::truncate(&s, 600));
    }
    s
}

#[cfg(vigil_bpf)]
pub use loader::{attach_tracepoint, ExecTracer, Ring};

#[cfg(vigil_bpf)]
mod loader {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use aya::maps::{Array, MapData, RingBuf};
    use aya::programs::TracePoint;
    use aya::{include_bytes_aligned, Ebpf};

    use super::{ensure_tracefs, error_chain, parse_record, BpfProcEvent};

    static EXEC_OBJ: &[u8] = include_bytes_aligned!(env!("VIGIL_BPF_EXEC_OBJ"));

    /// Loads program `prog` of object `obj` and attaches it to tracepoint `category/name`.
    pub fn attach_tracepoint(bpf: &mut Ebpf, obj: &str, prog: &str, category: &str, name: &str) -> Result<(), String> {
        let p: &mut TracePoint = bpf
            .program_mut(prog)
            .ok_or_else(|| format!("{obj} has no program {prog}"))?
            .try_into()
            .map_err(|e| format!("{prog}: {}", error_chain(&e)))?;
        p.load().map_err(|e| format!("loading {prog}: {}", error_chain(&e)))?;
        p.attach(category, name).map_err(|e| format!("attaching {prog} to {category}/{name}: {}", error_chain(&e)))?;
        Ok(())
    }

    /// A BPF ring buffer and the counter (an array map, slot 0) of records
    /// the kernel side dropped because it was full.
    pub struct Ring {
        ring: RingBuf<MapData>,
        lost: Array<MapData, u64>,
        lost_seen: u64,
    }

    impl std::fmt::Debug for Ring {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Ring").field("lost_seen", &self.lost_seen).finish_non_exhaustive()
        }
    }

    impl Ring {
        /// Takes maps `ring` and `lost` out of object `obj`.
        pub fn take(bpf: &mut Ebpf, obj: &str, ring: &str, lost: &str) -> Result<Ring, String> {
            let r = bpf.take_map(ring).ok_or_else(|| format!("{obj} has no map {ring}"))?;
            let r = RingBuf::try_from(r).map_err(|e| format!("{ring}: {}", error_chain(&e)))?;
            let l = bpf.take_map(lost).ok_or_else(|| format!("{obj} has no map {lost}"))?;
            let l = Array::try_from(l).map_err(|e| format!("{lost}: {}", error_chain(&e)))?;
            Ok(Ring { ring: r, lost: l, lost_seen: 0 })
        }

        /// Hands each waiting record (at most `max`) that `parse` reads to
        /// `f`; when none is waiting, first waits up to `timeout` for one.
        /// Returns how many records were taken.
        pub fn poll<T>(
            &mut self,
            timeout: Duration,
            max: usize,
            parse: impl Fn(&[u8]) -> Option<T>,
            mut f: impl FnMut(T),
        ) -> std::io::Result<usize> {
            let mut n = self.drain(max, &parse, &mut f);
            if n == 0 && !timeout.is_zero() {
                let ts = rustix::time::Timespec {
                    tv_sec: timeout.as_secs() as i64,
                    tv_nsec: i64::from(timeout.subsec_nanos()),
                };
                let mut fds = [rustix::event::PollFd::new(&self.ring, rustix::event::PollFlags::IN)];
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
                n = self.drain(max, &parse, &mut f);
            }
            Ok(n)
        }

        fn drain<T>(&mut self, max: usize, parse: &impl Fn(&[u8]) -> Option<T>, f: &mut impl FnMut(T)) -> usize {
            let mut n = 0;
            while n < max {
                let Some(item) = self.ring.next() else { break };
                if let Some(v) = parse(&item) {
                    f(v);
                }
                n += 1;
            }
            n
        }

        /// Records dropped since the last call (the ring buffer was full).
        pub fn take_lost(&mut self) -> u64 {
            let total = self.lost.get(&0, 0).unwrap_or(self.lost_seen);
            let new = total.saturating_sub(self.lost_seen);
            self.lost_seen = total;
            new
        }

        /// The ring buffer's descriptor (for callers that poll several).
        pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.ring.as_fd()
        }
    }

    /// The loaded and attached exec/exit programs and their ring buffer.
    /// Dropping it detaches them.
    pub struct ExecTracer {
        ring: Ring,
        // Holds the programs and their links.
        _bpf: Ebpf,
    }

    impl std::fmt::Debug for ExecTracer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ExecTracer").field("ring", &self.ring).finish_non_exhaustive()
        }
    }

    impl ExecTracer {
        /// Loads the programs and attaches them to the two tracepoints
        /// (mounting tracefs first when needed).
        pub fn load() -> Result<ExecTracer, String> {
            ensure_tracefs()?;
            let mut bpf = Ebpf::load(EXEC_OBJ).map_err(|e| format!("loading exec.bpf.o: {}", error_chain(&e)))?;
            for (prog, tp) in [("vigil_exec", "sched_process_exec"), ("vigil_exit", "sched_process_exit")] {
                attach_tracepoint(&mut bpf, "exec.bpf.o", prog, "sched", tp)?;
            }
            let ring = Ring::take(&mut bpf, "exec.bpf.o", "events", "lost")?;
            Ok(ExecTracer { ring, _bpf: bpf })
        }

        /// Waits up to `timeout` for records, then hands each waiting one
        /// (at most `max`) to `f`. Returns how many.
        pub fn poll(&mut self, timeout: Duration, max: usize, f: impl FnMut(BpfProcEvent)) -> std::io::Result<usize> {
            self.ring.poll(timeout, max, parse_record, f)
        }

        /// Records dropped since the last call (the ring buffer was full).
        pub fn take_lost(&mut self) -> u64 {
            self.ring.take_lost()
        }

        /// The ring buffer's descriptor (for callers that poll several).
        pub fn ring_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.ring.fd()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn header(kind: u32, pid: u32, ppid: u32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&kind.to_le_bytes());
        b[4..8].copy_from_slice(&pid.to_le_bytes());
        b[12..16].copy_from_slice(&ppid.to_le_bytes());
        b[16..20].copy_from_slice(&1000u32.to_le_bytes());
        b[24..28].copy_from_slice(&256u32.to_le_bytes());
        b[32..40].copy_from_slice(&5_000_000_000u64.to_le_bytes());
        b[40..48].copy_from_slice(&1_230_000_000u64.to_le_bytes());
        b[48..56].copy_from_slice(&77u64.to_le_bytes());
        b[64..68].copy_from_slice(b"true");
        b
    }

    #[test]
    fn parses_an_exec_record() {
        let mut b = header(EV_EXEC, 42, 7);
        b.resize(EXEC_LEN, 0);
        b[HEADER_LEN..HEADER_LEN + 9].copy_from_slice(b"/bin/true");
        let args = b"/bin/true\0--x\0a b\0";
        b[28..32].copy_from_slice(&(args.len() as u32).to_le_bytes());
        let at = HEADER_LEN + FILENAME_SIZE;
        b[at..at + args.len()].copy_from_slice(args);
        let Some(BpfProcEvent::Exec(e)) = parse_record(&b) else { panic!("not an exec") };
        assert_eq!((e.pid, e.ppid, e.uid, e.cgroup_id), (42, 7, 1000, 77));
        assert_eq!(e.filename, "/bin/true");
        assert_eq!(e.comm, "true");
        assert_eq!(e.argv, vec!["/bin/true", "--x", "a b"]);
        assert!(!e.args_truncated);
        assert_eq!(start_ticks(e.start_ns), 123);
    }

    #[test]
    fn parses_an_exit_record_and_refuses_short_ones() {
        let b = header(EV_EXIT, 42, 7);
        let Some(BpfProcEvent::Exit(x)) = parse_record(&b) else { panic!("not an exit") };
        assert_eq!((x.pid, x.ppid, x.exit_code), (42, 7, 256));
        assert_eq!(parse_record(&b[..10]), None);
        // An exec record must be whole.
        assert_eq!(parse_record(&header(EV_EXEC, 1, 0)), None);
    }
}
