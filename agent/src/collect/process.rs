//! Process telemetry: choosing the process-event source ([`choose_source`]:
//! eBPF, then the netlink proc connector, then /proc polling, with the
//! reason for each), the stream's reader thread ([`ProcessStream`]: for the
//! connector it describes each exec from /proc at once so short-lived
//! processes are not lost; for eBPF the kernel's record already carries
//! exe, argv, uid and parent, and /proc adds cwd and cgroup while the
//! process is still there), and the [`ProcessCollector`] that applies stream items
//! and /proc reconciles to the [`ProcessTable`] and turns the changes into
//! process events (activity 1 launch, 2 terminate).
//!
//! What is emitted: a launch per exec (`raw.origin = "exec"`), per process
//! a reconcile or poll finds that the stream did not report
//! (`"reconcile"` / `"poll"`), and per live process in a snapshot
//! (`"snapshot"`, `raw.snapshot = true`); a terminate per exit of a known
//! process (`"exit"`, with the exit code or signal) and per known process a
//! reconcile finds gone. A fork without exec (a worker forked from its
//! master) is not an event until a reconcile sees it still running. Kernel
//! threads and zombies are never reported.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use vigil_event::{Event, Kind, Process};

#[cfg(vigil_bpf)]
use super::ebpf::{BpfExec, BpfProcEvent, ExecTracer};
use super::netlink::{decode_exit, NetlinkError, ProcConnector, ProcEvent};
use super::procfs::{monotonic_to_wall, ProcFs, Users};
use super::{new_event, truncate, HostContext};
use crate::config::ProcessSourcePreference;
use crate::state::{ExitStatus, ProcessChange, ProcessInfo, ProcessTable};

/// Forks remembered for the parent of a process that exits before it can be read.
const MAX_FORKS: usize = 65_536;
/// Stream items buffered between the reader thread and the collector.
const STREAM_BUFFER: usize = 16_384;

/// Where process events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessSource {
    Ebpf,
    Netlink,
    Procfs,
}

impl ProcessSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessSource::Ebpf => "ebpf",
            ProcessSource::Netlink => "netlink",
            ProcessSource::Procfs => "procfs",
        }
    }
}

impl fmt::Display for ProcessSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One source tried and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceAttempt {
    pub source: ProcessSource,
    pub ok: bool,
    pub reason: String,
}

/// The process source chosen at start, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceChoice {
    pub preference: ProcessSourcePreference,
    pub source: ProcessSource,
    /// Why this one (the last attempt's reason).
    pub reason: String,
    /// Every source tried, in order.
    pub attempts: Vec<SourceAttempt>,
}

impl fmt::Display for SourceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "process source: {} (preference {})", self.source, self.preference)?;
        for a in &self.attempts {
            writeln!(f, "  {} {}", if a.ok { "+" } else { "-" }, a.reason)?;
        }
        Ok(())
    }
}

/// A subscribed process-event stream, before its reader thread starts.
#[derive(Debug)]
pub enum StreamSource {
    /// The eBPF exec/exit tracepoints.
    #[cfg(vigil_bpf)]
    Ebpf(Box<ExecTracer>),
    /// The netlink proc connector.
    Netlink(ProcConnector),
}

/// Loads the eBPF exec tracer: the reason it is not available, or it and a description.
fn try_ebpf() -> Result<(StreamSource, String), String> {
    #[cfg(vigil_bpf)]
    {
        let tracer = ExecTracer::load()?;
        Ok((
            StreamSource::Ebpf(Box::new(tracer)),
            "ebpf: tracepoints sched/sched_process_exec and sched/sched_process_exit attached (ring buffer)".into(),
        ))
    }
    #[cfg(not(vigil_bpf))]
    {
        Err(super::ebpf::NOT_BUILT.to_string())
    }
}

/// Tries the sources from `preference` down; returns the choice and, for
/// eBPF or netlink, the subscribed stream.
pub fn choose_source(preference: ProcessSourcePreference, poll: Duration) -> (SourceChoice, Option<StreamSource>) {
    let mut attempts = Vec::new();
    let (try_ebpf_first, try_netlink) = match preference {
        ProcessSourcePreference::Auto | ProcessSourcePreference::Ebpf => (true, true),
        ProcessSourcePreference::Netlink => (false, true),
        ProcessSourcePreference::Procfs => (false, false),
    };
    let mut stream = None;
    if try_ebpf_first {
        match try_ebpf() {
            Ok((s, reason)) => {
                stream = Some(s);
                attempts.push(SourceAttempt { source: ProcessSource::Ebpf, ok: true, reason });
            }
            Err(e) => {
                attempts.push(SourceAttempt { source: ProcessSource::Ebpf, ok: false, reason: format!("ebpf: {e}") })
            }
        }
    }
    if try_netlink && stream.is_none() {
        match ProcConnector::open() {
            Ok(c) => {
                stream = Some(StreamSource::Netlink(c));
                attempts.push(SourceAttempt {
                    source: ProcessSource::Netlink,
                    ok: true,
                    reason: "netlink: subscribed to the kernel's process events connector (CN_IDX_PROC)".into(),
                });
            }
            Err(e) => attempts.push(SourceAttempt {
                source: ProcessSource::Netlink,
                ok: false,
                reason: format!("netlink: {e}"),
            }),
        }
    }
    if stream.is_none() {
        let why = if preference == ProcessSourcePreference::Procfs { "configured" } else { "fallback" };
        attempts.push(SourceAttempt {
            source: ProcessSource::Procfs,
            ok: true,
            reason: format!("procfs: polling /proc every {poll:?} ({why})"),
        });
    }
    let last = attempts.iter().rev().find(|a| a.ok);
    let (source, reason) = match last {
        Some(a) => (a.source, a.reason.clone()),
        None => (ProcessSource::Procfs, "procfs".into()),
    };
    (SourceChoice { preference, source, reason, attempts }, stream)
}

/// What the reader thread hands the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A process executed a program: as described from /proc right away
    /// (`complete = false` when it was already gone).
    Exec { info: Box<ProcessInfo>, time: DateTime<Utc> },
    /// A process (thread group) exited.
    Exit { pid: i32, ppid: Option<i32>, exit: ExitStatus, time: DateTime<Utc> },
    /// Events were lost; a reconcile should run now.
    Lost,
}

/// The connector's reader thread and the items it produces. Dropping it
/// stops the thread.
#[derive(Debug)]
pub struct ProcessStream {
    rx: Receiver<StreamItem>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProcessStream {
    /// Starts reading `source`, describing execs from `procfs` and
    /// naming users from `passwd`.
    pub fn start(source: StreamSource, procfs: ProcFs, passwd: PathBuf) -> Result<ProcessStream, NetlinkError> {
        let (tx, rx) = mpsc::sync_channel(STREAM_BUFFER);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let users = Users::new(passwd);
        let builder = std::thread::Builder::new().name("vigil-proc-events".into());
        let thread = match source {
            StreamSource::Netlink(connector) => {
                connector.set_timeout(Duration::from_millis(250))?;
                builder.spawn(move || read_loop(connector, procfs, users, tx, thread_stop))
            }
            #[cfg(vigil_bpf)]
            StreamSource::Ebpf(tracer) => {
                builder.spawn(move || ebpf_read_loop(*tracer, procfs, users, tx, thread_stop))
            }
        }
        .map_err(NetlinkError::Recv)?;
        Ok(ProcessStream { rx, stop, thread: Some(thread) })
    }

    /// The next item, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<StreamItem, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The next item if one is waiting.
    pub fn try_recv(&self) -> Option<StreamItem> {
        self.rx.try_recv().ok()
    }
}

impl Drop for ProcessStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_loop(
    mut conn: ProcConnector,
    procfs: ProcFs,
    mut users: Users,
    tx: SyncSender<StreamItem>,
    stop: Arc<AtomicBool>,
) {
    // child tgid -> parent tgid, for execs and exits /proc can no longer describe.
    let mut forks: HashMap<i32, i32> = HashMap::new();
    let send = |item: StreamItem| -> bool { send_item(&tx, &stop, item) };
    while !stop.load(Ordering::Relaxed) {
        let events = match conn.recv() {
            Ok(events) => events,
            Err(NetlinkError::Overrun) => {
                tracing::warn!("process events were dropped by the kernel; reconciling from /proc");
                if !send(StreamItem::Lost) {
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "process event stream failed; falling back to /proc polling");
                return;
            }
        };
        for ev in events {
            match ev {
                ProcEvent::Fork { child_tgid, parent_tgid, .. } if ev.is_process_fork() => {
                    if forks.len() >= MAX_FORKS {
                        forks.clear();
                    }
                    forks.insert(child_tgid, parent_tgid);
                }
                ProcEvent::Exec { ts_ns, tgid, .. } => {
                    let time = monotonic_to_wall(ts_ns);
                    let fork_parent = forks.get(&tgid).copied();
                    let info = match procfs.describe(tgid, &mut users) {
                        Ok(mut info) => {
                            info.ppid = fork_parent.or(info.ppid);
                            info
                        }
                        Err(_) => ProcessInfo { pid: tgid, ppid: fork_parent, complete: false, ..Default::default() },
                    };
                    if !send(StreamItem::Exec { info: Box::new(info), time }) {
                        return;
                    }
                }
                ProcEvent::Exit { ts_ns, pid, tgid, exit_code, parent_tgid, .. } if pid == tgid => {
                    let ppid = forks.remove(&tgid).or(parent_tgid);
                    let (code, signal) = decode_exit(exit_code);
                    let item = StreamItem::Exit {
                        pid: tgid,
                        ppid,
                        exit: ExitStatus { code, signal },
                        time: monotonic_to_wall(ts_ns),
                    };
                    if !send(item) {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Sends `item`, waiting while the channel is full; false once the
/// receiver is gone or the stream is stopping.
fn send_item(tx: &SyncSender<StreamItem>, stop: &AtomicBool, item: StreamItem) -> bool {
    let mut item = item;
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[cfg(vigil_bpf)]
fn ebpf_read_loop(
    mut tracer: ExecTracer,
    procfs: ProcFs,
    mut users: Users,
    tx: SyncSender<StreamItem>,
    stop: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(256);
    while !stop.load(Ordering::Relaxed) {
        batch.clear();
        if let Err(e) = tracer.poll(Duration::from_millis(250), 256, |ev| batch.push(ev)) {
            tracing::error!(error = %e, "eBPF ring buffer failed; falling back to /proc polling");
            return;
        }
        if tracer.take_lost() > 0 {
            tracing::warn!("process events were lost (the ring buffer was full); reconciling from /proc");
            if !send_item(&tx, &stop, StreamItem::Lost) {
                return;
            }
        }
        for ev in batch.drain(..) {
            let item = match ev {
                BpfProcEvent::Exec(e) => StreamItem::Exec {
                    time: monotonic_to_wall(e.ts_ns),
                    info: Box::new(describe_bpf_exec(&e, &procfs, &mut users)),
                },
                BpfProcEvent::Exit(x) => {
                    let (code, signal) = decode_exit(x.exit_code);
                    StreamItem::Exit {
                        pid: x.pid,
                        ppid: Some(x.ppid).filter(|p| *p > 0),
                        exit: ExitStatus { code, signal },
                        time: monotonic_to_wall(x.ts_ns),
                    }
                }
            };
            if !send_item(&tx, &stop, item) {
                return;
            }
        }
    }
}

/// A process as its eBPF exec record and, while it is still there and
/// still running that program, /proc describe it: the record gives pid,
/// parent, uids, name, argv and the file executed; /proc the resolved
/// executable, cwd and cgroup.
#[cfg(vigil_bpf)]
pub fn describe_bpf_exec(e: &BpfExec, procfs: &ProcFs, users: &mut Users) -> ProcessInfo {
    let tps = procfs.ticks_per_second().max(1);
    let ticks = e.start_ns / (1_000_000_000 / tps).max(1);
    let args: Vec<&str> = e.argv.iter().map(String::as_str).filter(|a| !a.is_empty()).collect();
    let bpf_cmdline = (!args.is_empty()).then(|| args.join(" "));
    let mut info = match procfs.describe(e.pid, users) {
        // Same process (start time), same program (its arguments), or a later exec's.
        Ok(p) if p.start_ticks.is_none_or(|t| t == ticks) => p,
        _ => ProcessInfo { pid: e.pid, ..Default::default() },
    };
    let same_program = match (&info.cmdline, &bpf_cmdline) {
        (Some(proc_cmd), Some(bpf_cmd)) => proc_cmd == bpf_cmd || (e.args_truncated && proc_cmd.starts_with(bpf_cmd)),
        _ => info.exe.is_some(),
    };
    if !same_program || info.exe.is_none() {
        // Gone (or exec'd again) before /proc could be read: the record is the truth.
        let file = e.filename.as_str();
        info.exe = (!file.is_empty()).then(|| {
            if file.starts_with('/') {
                std::fs::canonicalize(file).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| file.into())
            } else {
                file.to_string()
            }
        });
        info.exe_deleted = false;
        info.name = Some(e.comm.clone()).filter(|c| !c.is_empty());
    }
    if bpf_cmdline.is_some() && !(e.args_truncated && same_program && info.cmdline.is_some()) {
        info.cmdline = bpf_cmdline;
    }
    if e.ppid > 0 {
        info.ppid = Some(e.ppid);
    }
    info.uid = Some(e.uid);
    info.euid = Some(e.euid);
    if info.user.is_none() {
        info.user = users.name(e.uid);
    }
    info.start_ticks = Some(ticks);
    if info.started_at.is_none() {
        info.started_at = procfs.started_at(ticks);
    }
    if info.name.is_none() {
        info.name = Some(e.comm.clone()).filter(|c| !c.is_empty());
    }
    info.complete = info.exe.is_some() && info.cmdline.is_some();
    info
}

/// How a launch or terminate came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The event stream (exec / exit).
    Stream,
    /// A /proc poll (procfs source).
    Poll,
    /// The periodic /proc reconcile behind the stream.
    Reconcile,
    /// A full snapshot.
    Snapshot,
}

impl Origin {
    fn as_str(self, started: bool) -> &'static str {
        match (self, started) {
            (Origin::Stream, true) => "exec",
            (Origin::Stream, false) => "exit",
            (Origin::Poll, _) => "poll",
            (Origin::Reconcile, _) => "reconcile",
            (Origin::Snapshot, _) => "snapshot",
        }
    }
}

/// The process table and the events its changes make.
#[derive(Debug)]
pub struct ProcessCollector {
    host: String,
    procfs: ProcFs,
    users: Users,
    table: ProcessTable,
    source: ProcessSource,
}

impl ProcessCollector {
    pub fn new(ctx: &HostContext, source: ProcessSource) -> Self {
        ProcessCollector {
            host: ctx.host.clone(),
            procfs: ProcFs::new(&ctx.proc_root),
            users: Users::new(ctx.passwd.clone()),
            table: ProcessTable::new(),
            source,
        }
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    pub fn source(&self) -> ProcessSource {
        self.source
    }

    /// The stream ended: this collector polls from now on.
    pub fn set_source(&mut self, source: ProcessSource) {
        self.source = source;
    }

    /// One stream item as events.
    pub fn apply(&mut self, item: StreamItem) -> Vec<Event> {
        match item {
            StreamItem::Exec { info, time } => {
                let change = self.table.exec(*info);
                vec![self.event(&change, Origin::Stream, time)]
            }
            StreamItem::Exit { pid, ppid, exit, time } => match self.table.exit(pid, Some(exit)) {
                Some(mut change) => {
                    if let ProcessChange::Stopped { info, .. } = &mut change {
                        info.ppid = info.ppid.or(ppid);
                    }
                    vec![self.event(&change, Origin::Stream, time)]
                }
                None => Vec::new(),
            },
            StreamItem::Lost => self.reconcile(Utc::now()),
        }
    }

    /// Reconciles with /proc: launches for processes not known, terminates
    /// for known ones gone. The origin is `poll` when /proc is the source.
    pub fn reconcile(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let origin = if self.source == ProcessSource::Procfs { Origin::Poll } else { Origin::Reconcile };
        let changes = self.reconcile_changes();
        changes.iter().map(|c| self.event(c, origin, now)).collect()
    }

    fn reconcile_changes(&mut self) -> Vec<ProcessChange> {
        self.users.refresh();
        let seen = match self.procfs.seen() {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!(error = %e, root = %self.procfs.root().display(), "listing processes");
                return Vec::new();
            }
        };
        let procfs = &self.procfs;
        let users = &mut self.users;
        self.table.reconcile(&seen, |pid| procfs.describe(pid, users).ok())
    }

    /// A reconcile, then every live process as a launch with `raw.snapshot = true`
    /// (terminations found by the reconcile are sent as such).
    pub fn snapshot(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let changes = self.reconcile_changes();
        let mut events: Vec<Event> = changes
            .iter()
            .filter(|c| matches!(c, ProcessChange::Stopped { .. }))
            .map(|c| self.event(c, Origin::Reconcile, now))
            .collect();
        let live: Vec<ProcessChange> = self.table.processes().cloned().map(ProcessChange::Started).collect();
        events.extend(live.iter().map(|c| self.event(c, Origin::Snapshot, now)));
        events
    }

    fn event(&self, change: &ProcessChange, origin: Origin, time: DateTime<Utc>) -> Event {
        process_event(&self.host, change, origin, self.source, time)
    }
}

/// The process event for one change.
pub fn process_event(
    host: &str,
    change: &ProcessChange,
    origin: Origin,
    source: ProcessSource,
    time: DateTime<Utc>,
) -> Event {
    let (info, started, exit) = match change {
        ProcessChange::Started(info) => (info, true, None),
        ProcessChange::Stopped { info, exit } => (info, false, *exit),
    };
    let activity = if started { 1 } else { 2 };
    let snapshot = origin == Origin::Snapshot;
    let identity = format!(
        "process|{host}|{activity}|{}|{}|{}|{}",
        info.pid,
        info.start_ticks.unwrap_or(0),
        origin.as_str(started),
        info.exe.as_deref().unwrap_or("")
    );
    let mut e = new_event(Kind::Process, host, time, &identity);
    e.activity_id = Some(activity);
    e.user = info.user.clone();
    e.process = Some(Process {
        pid: Some(info.pid),
        ppid: info.ppid,
        name: info.name.clone(),
        path: info.exe.clone(),
        cmdline: info.cmdline.clone(),
    });
    let what = info.name.as_deref().or(info.exe.as_deref()).unwrap_or("?");
    let verb = match (started, snapshot) {
        (true, false) => "started",
        (true, true) => "running",
        (false, _) => "stopped",
    };
    let mut message = format!("process {what} ({}) {verb}", info.pid);
    if let Some(status) = exit {
        match (status.code, status.signal) {
            (Some(c), _) => message.push_str(&format!(", exit code {c}")),
            (_, Some(s)) => message.push_str(&format!(", killed by signal {s}")),
            _ => {}
        }
    }
    if started {
        if let Some(cmd) = &info.cmdline {
            message.push_str(": ");
            message.push_str(truncate(cmd, 512));
        }
    }
    e.message = message;
    e.raw = json!({
        "pid": info.pid,
        "ppid": info.ppid,
        "name": info.name,
        "exe": info.exe,
        "exe_deleted": info.exe_deleted,
        "cmdline": info.cmdline,
        "cwd": info.cwd,
        "uid": info.uid,
        "euid": info.euid,
        "user": info.user,
        "container_id": info.container_id,
        "cgroup": info.cgroup,
        "start_time": info.started_at,
        "exit_code": exit.and_then(|x| x.code),
        "exit_signal": exit.and_then(|x| x.signal),
        "complete": info.complete,
        "origin": origin.as_str(started),
        "process_source": source.as_str(),
        "snapshot": snapshot,
    });
    if let Some(map) = e.raw.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    e
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn procfs_preference_skips_the_stream() {
        let (choice, conn) = choose_source(ProcessSourcePreference::Procfs, Duration::from_secs(2));
        assert!(conn.is_none());
        assert_eq!(choice.source, ProcessSource::Procfs);
        assert_eq!(choice.attempts.len(), 1);
        assert!(choice.reason.contains("configured"), "{}", choice.reason);
    }

    #[test]
    fn auto_tries_ebpf_first_then_netlink() {
        let (choice, conn) = choose_source(ProcessSourcePreference::Auto, Duration::from_secs(2));
        assert_eq!(choice.attempts[0].source, ProcessSource::Ebpf);
        if choice.source == ProcessSource::Ebpf {
            assert!(conn.is_some());
            assert_eq!(choice.attempts.len(), 1);
        } else {
            assert!(!choice.attempts[0].ok);
            assert!(choice.attempts[0].reason.starts_with("ebpf: "), "{}", choice.attempts[0].reason);
            assert_eq!(choice.attempts[1].source, ProcessSource::Netlink);
            assert_eq!(conn.is_some(), choice.source == ProcessSource::Netlink);
        }
        assert!(choice.to_string().contains("process source:"));
    }

    #[test]
    fn netlink_preference_skips_ebpf() {
        let (choice, _conn) = choose_source(ProcessSourcePreference::Netlink, Duration::from_secs(2));
        assert!(choice.attempts.iter().all(|a| a.source != ProcessSource::Ebpf));
    }

    #[test]
    fn a_gone_process_still_makes_a_valid_launch() {
        let info = ProcessInfo { pid: 4242, ppid: Some(1), complete: false, ..Default::default() };
        let e = process_event("h", &ProcessChange::Started(info), Origin::Stream, ProcessSource::Netlink, Utc::now());
        e.validate().unwrap();
        assert_eq!(e.activity_id, Some(1));
        assert_eq!(e.process.as_ref().unwrap().pid, Some(4242));
        assert_eq!(e.raw["complete"], false);
        assert_eq!(e.raw["origin"], "exec");
        assert!(e.raw.get("exe").is_none());
    }

    #[test]
    fn exits_name_the_code_or_signal() {
        let info = ProcessInfo { pid: 9, name: Some("x".into()), complete: true, ..Default::default() };
        let exit = Some(ExitStatus { code: None, signal: Some(9) });
        let e = process_event(
            "h",
            &ProcessChange::Stopped { info, exit },
            Origin::Stream,
            ProcessSource::Netlink,
            Utc::now(),
        );
        assert_eq!(e.activity_id, Some(2));
        assert!(e.message.contains("signal 9"), "{}", e.message);
        assert_eq!(e.raw["exit_signal"], 9);
    }
}
