//! The collectors and their schedule. Owns [`HostContext`] (what every
//! collector needs to know about the host), the event constructor shared by
//! them, [`Collectors::start`] (the threads that run them and send their
//! events into a channel) and [`snapshot`] (one full snapshot, for
//! `vigil-agent once`).
//!
//! - [`process`]: process launches and terminations (eBPF tracepoints, the
//!   netlink proc connector or /proc polling, always with a /proc reconcile).
//! - [`net`]: connections and listeners from /proc/net, and TCP
//!   connections as they open and close from [`ebpf_net`] when it loads.
//! - [`metrics`]: CPU, memory, disk, network counters.
//! - [`packages`]: dpkg / rpm inventory and its changes.
//! - [`ebpf`], [`ebpf_net`], [`netlink`], [`procfs`]: the kernel interfaces underneath.
//!
//! Collectors are synchronous (all their work is small blocking reads of
//! /proc) and run on two plain threads, `vigil-processes` (the process
//! stream and reconcile) and `vigil-collect` (connections, metrics,
//! packages, heartbeat; it waits on the eBPF connection ring buffer between
//! its jobs), plus the process event stream's reader thread. They hand
//! events to a `tokio::sync::mpsc::Sender<Event>` with `blocking_send`,
//! so a full channel (transport backed up) slows them down instead of
//! growing memory; they stop when the channel closes or on [`Collectors::stop`].

pub mod ebpf;
pub mod ebpf_net;
pub mod metrics;
pub mod net;
pub mod netlink;
pub mod packages;
pub mod process;
pub mod procfs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::Sender;
use vigil_event::{Event, Kind};

use crate::config::{AgentConfig, Intervals};
use ebpf_net::{choose_connection_source, ConnectionSourceChoice, NetTracer};
use metrics::MetricsCollector;
use net::ConnectionCollector;
use packages::PackageCollector;
use process::{choose_source, ProcessCollector, ProcessSource, ProcessStream, SourceChoice};

/// The `source` of every event the agent emits.
pub const SOURCE: &str = "vigil-agent";

/// Longest wait between two checks of the stop flag.
const TICK: Duration = Duration::from_millis(250);

/// Why collection could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("starting the {name} thread: {source}")]
    Thread { name: &'static str, source: std::io::Error },
}

/// What every collector needs to know about the host.
#[derive(Debug, Clone)]
pub struct HostContext {
    /// The host name put on events.
    pub host: String,
    /// The agent id (heartbeats).
    pub agent_id: String,
    /// Where /proc is mounted.
    pub proc_root: PathBuf,
    /// The passwd file for uid → user name.
    pub passwd: PathBuf,
    /// The dpkg database.
    pub dpkg_dir: PathBuf,
    /// The root package file paths are resolved against (`None`: not resolved).
    pub fs_root: Option<PathBuf>,
    /// Inventory rpm packages where `rpm` exists.
    pub rpm: bool,
}

impl HostContext {
    pub fn from_config(config: &AgentConfig) -> Self {
        HostContext {
            host: config.host.clone(),
            agent_id: config.agent_id.clone(),
            proc_root: config.proc_root.clone(),
            passwd: PathBuf::from("/etc/passwd"),
            dpkg_dir: config.dpkg_dir.clone(),
            fs_root: Some(PathBuf::from("/")),
            rpm: config.rpm,
        }
    }
}

/// A new agent event of `kind` about `host`, its id derived from `identity`.
pub fn new_event(kind: Kind, host: &str, time: DateTime<Utc>, identity: &str) -> Event {
    let mut e = Event::new(kind, SOURCE, time, identity.as_bytes());
    e.host = Some(host.to_string());
    e
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Requests from outside the schedule (the transport's agent commands).
#[derive(Debug, Clone, Default)]
pub struct Control {
    stop: Arc<AtomicBool>,
    snapshot_now: Arc<AtomicBool>,
    rescan_packages: Arc<AtomicBool>,
    process_snapshot_now: Arc<AtomicBool>,
}

impl Control {
    /// Every collector sends a full snapshot at its next check (within ¼ s).
    pub fn snapshot_now(&self) {
        self.snapshot_now.store(true, Ordering::Relaxed);
        self.process_snapshot_now.store(true, Ordering::Relaxed);
    }

    /// The package databases are re-read at the next check, changed or not.
    pub fn rescan_packages(&self) {
        self.rescan_packages.store(true, Ordering::Relaxed);
    }

    /// Asks the collectors to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// How [`Collectors::start_with`] runs the collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartOptions {
    /// Send a heartbeat every `intervals.heartbeat` (off when the transport
    /// sends its own).
    pub heartbeats: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions { heartbeats: true }
    }
}

/// The running collectors.
#[derive(Debug)]
pub struct Collectors {
    source: SourceChoice,
    connection_source: ConnectionSourceChoice,
    control: Control,
    threads: Vec<JoinHandle<()>>,
}

impl Collectors {
    /// Chooses the process source and starts every collector, sending
    /// events to `tx`. Each collector first sends a full snapshot.
    pub fn start(config: &AgentConfig, tx: Sender<Event>) -> Result<Collectors, CollectError> {
        Collectors::start_with(config, tx, StartOptions::default())
    }

    /// [`Collectors::start`] with options.
    pub fn start_with(
        config: &AgentConfig,
        tx: Sender<Event>,
        options: StartOptions,
    ) -> Result<Collectors, CollectError> {
        let ctx = HostContext::from_config(config);
        let intervals = config.intervals;
        let (mut source, stream_source) = choose_source(config.process_source, intervals.process_poll);
        let (connection_source, net_tracer) = choose_connection_source(config.connection_source, intervals.connections);
        ebpf::release_freed_memory();
        let control = Control::default();

        let mut processes = ProcessCollector::new(&ctx, source.source);
        let stream = match stream_source {
            Some(src) => match ProcessStream::start(src, procfs::ProcFs::new(&ctx.proc_root), ctx.passwd.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "process event stream; polling /proc instead");
                    processes.set_source(ProcessSource::Procfs);
                    source.source = ProcessSource::Procfs;
                    source.reason = format!(
                        "procfs: polling /proc every {:?} (fallback: the {} reader could not start: {e})",
                        intervals.process_poll, source.source
                    );
                    None
                }
            },
            None => None,
        };
        tracing::info!(source = %source.source, reason = %source.reason, "process source");
        tracing::info!(source = %connection_source.source, reason = %connection_source.reason, "connection source");
        let mut threads = Vec::new();
        let (c, t) = (control.clone(), tx.clone());
        threads.push(spawn("vigil-processes", move || process_loop(processes, stream, intervals, t, c))?);
        let (c, t) = (control.clone(), tx);
        threads.push(spawn("vigil-collect", move || collect_loop(ctx, intervals, options, net_tracer, t, c))?);
        Ok(Collectors { source, connection_source, control, threads })
    }

    /// The process source chosen, and why.
    pub fn source(&self) -> &SourceChoice {
        &self.source
    }

    /// The connection source chosen, and why.
    pub fn connection_source(&self) -> &ConnectionSourceChoice {
        &self.connection_source
    }

    /// A handle for snapshot and rescan requests.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Stops every collector and waits for them.
    pub fn stop(self) {
        self.control.stop();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn spawn(name: &'static str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, CollectError> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(|source| CollectError::Thread { name, source })
}

/// Sends every event; false once the receiver is gone.
fn send_all(tx: &Sender<Event>, events: Vec<Event>) -> bool {
    for e in events {
        if tx.blocking_send(e).is_err() {
            return false;
        }
    }
    true
}

fn process_loop(
    mut pc: ProcessCollector,
    mut stream: Option<ProcessStream>,
    intervals: Intervals,
    tx: Sender<Event>,
    control: Control,
) {
    let mut every = if stream.is_some() { intervals.process_reconcile } else { intervals.process_poll };
    if !send_all(&tx, pc.snapshot(Utc::now())) {
        return;
    }
    let mut next_poll = Instant::now() + every;
    let mut next_snapshot = Instant::now() + intervals.snapshot;
    loop {
        if control.stopping() || tx.is_closed() {
            return;
        }
        let now = Instant::now();
        let wait = next_poll.min(next_snapshot).saturating_duration_since(now).min(TICK);
        let mut events = Vec::new();
        let mut lost_stream = false;
        if let Some(s) = &stream {
            match s.recv_timeout(wait) {
                Ok(item) => {
                    events.extend(pc.apply(item));
                    // Drain what else is waiting, in bounded batches.
                    for _ in 0..1024 {
                        match s.try_recv() {
                            Some(item) => events.extend(pc.apply(item)),
                            None => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => lost_stream = true,
            }
        } else {
            std::thread::sleep(wait);
        }
        if lost_stream {
            tracing::warn!("process event stream ended; polling /proc from now on");
            stream = None;
            pc.set_source(ProcessSource::Procfs);
            every = intervals.process_poll;
            next_poll = Instant::now();
        }
        let now = Instant::now();
        let snapshot_requested = control.process_snapshot_now.swap(false, Ordering::Relaxed);
        if now >= next_snapshot || now >= next_poll || snapshot_requested {
            // Apply what the stream already said before looking at /proc.
            if let Some(s) = &stream {
                while let Some(item) = s.try_recv() {
                    events.extend(pc.apply(item));
                }
            }
            if now >= next_snapshot || snapshot_requested {
                events.extend(pc.snapshot(Utc::now()));
                next_snapshot = now + intervals.snapshot;
            } else {
                events.extend(pc.reconcile(Utc::now()));
            }
            next_poll = now + every;
        }
        if !send_all(&tx, events) {
            return;
        }
    }
}

/// One periodic job of the `vigil-collect` thread.
struct Job {
    every: Duration,
    next: Instant,
}

impl Job {
    fn new(every: Duration) -> Self {
        Job { every, next: Instant::now() + every }
    }

    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

/// Waits up to `wait` for eBPF connection records and applies them (all
/// that are waiting when `wait` is zero). True when records were lost.
fn pump_connections(
    tracer: &mut NetTracer,
    conns: &mut ConnectionCollector,
    wait: Duration,
    send: &mut impl FnMut(Event),
) -> std::io::Result<bool> {
    let mut batch = Vec::new();
    loop {
        let n = tracer.poll(wait, 4096, |c| batch.push(c))?;
        for c in batch.drain(..) {
            conns.apply_bpf(&c).into_iter().for_each(&mut *send);
        }
        // A full batch: more may be waiting.
        if n < 4096 {
            break;
        }
    }
    Ok(tracer.take_lost() > 0)
}

fn collect_loop(
    ctx: HostContext,
    intervals: Intervals,
    options: StartOptions,
    mut net_tracer: Option<NetTracer>,
    tx: Sender<Event>,
    control: Control,
) {
    let mut conns = ConnectionCollector::new(&ctx);
    let mut metrics = MetricsCollector::new(&ctx);
    let mut packages = PackageCollector::new(&ctx);
    let heartbeat = |now| match crate::heartbeat(Some(&ctx.agent_id), now) {
        Ok(e) if options.heartbeats => vec![e],
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat");
            Vec::new()
        }
    };

    // Package events go out one by one as their files are read, not gathered first.
    // A send fails only once the receiver is gone, which the loop checks.
    let mut send_one = |e: Event| {
        if !tx.is_closed() {
            let _ = tx.blocking_send(e);
        }
    };
    let now = Utc::now();
    heartbeat(now).into_iter().chain(conns.snapshot(now)).for_each(&mut send_one);
    packages.snapshot_each(now, &mut send_one);
    if tx.is_closed() {
        return;
    }
    let mut conn_job = Job::new(intervals.connections);
    let mut metric_job = Job::new(intervals.metrics);
    let mut package_job = Job::new(intervals.packages);
    let mut snapshot_job = Job::new(intervals.snapshot);
    let mut heartbeat_job = Job::new(intervals.heartbeat);
    loop {
        if control.stopping() || tx.is_closed() {
            return;
        }
        let next = [&conn_job, &metric_job, &package_job, &snapshot_job, &heartbeat_job]
            .iter()
            .map(|j| j.next)
            .min()
            .unwrap_or_else(Instant::now);
        let wait = next.saturating_duration_since(Instant::now()).min(TICK);
        match net_tracer.as_mut() {
            Some(t) => match pump_connections(t, &mut conns, wait, &mut send_one) {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!("connection events were lost (the ring buffer was full); reconciling from /proc");
                    conn_job.next = Instant::now();
                }
                Err(e) => {
                    tracing::error!(error = %e, "eBPF connection ring buffer failed; polling /proc/net only");
                    net_tracer = None;
                }
            },
            None => std::thread::sleep(wait),
        }
        let now = Instant::now();
        let wall = Utc::now();
        let snapshot_requested = control.snapshot_now.swap(false, Ordering::Relaxed);
        let conn_due = now >= snapshot_job.next || now >= conn_job.next || snapshot_requested;
        if let (true, Some(t)) = (conn_due, net_tracer.as_mut()) {
            // What the kernel already said goes in before /proc is read, so
            // the poll and the records agree on what is open.
            if let Err(e) = pump_connections(t, &mut conns, Duration::ZERO, &mut send_one) {
                tracing::error!(error = %e, "eBPF connection ring buffer failed; polling /proc/net only");
                net_tracer = None;
            }
        }
        if snapshot_job.due(now) || snapshot_requested {
            conns.snapshot(wall).into_iter().for_each(&mut send_one);
            packages.snapshot_each(wall, &mut send_one);
            conn_job.next = now + conn_job.every;
        } else if conn_job.due(now) {
            conns.poll(wall).into_iter().for_each(&mut send_one);
        }
        let rescan = control.rescan_packages.swap(false, Ordering::Relaxed);
        if package_job.due(now) || rescan {
            packages.poll_each(wall, rescan, &mut send_one);
        }
        if metric_job.due(now) {
            metrics.sample(wall).into_iter().for_each(&mut send_one);
        }
        if heartbeat_job.due(now) {
            heartbeat(wall).into_iter().for_each(&mut send_one);
        }
    }
}

/// One full snapshot of the host, without a transport: the process source
/// choice is not made (processes come from /proc), every live process,
/// connection, listener and installed package as a snapshot event, one
/// metrics sample (CPU over `cpu_window`) and a heartbeat.
pub fn snapshot(config: &AgentConfig, cpu_window: Duration) -> Vec<Event> {
    let ctx = HostContext::from_config(config);
    let now = Utc::now();
    let mut events = Vec::new();
    if let Ok(hb) = crate::heartbeat(Some(&ctx.agent_id), now) {
        events.push(hb);
    }
    events.extend(ProcessCollector::new(&ctx, ProcessSource::Procfs).snapshot(now));
    events.extend(ConnectionCollector::new(&ctx).snapshot(now));
    events.extend(PackageCollector::new(&ctx).snapshot(now));
    let mut metrics = MetricsCollector::new(&ctx);
    std::thread::sleep(cpu_window);
    events.extend(metrics.sample(Utc::now()));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
