//! The on-disk spool: a bounded, append-only queue of [`Envelope`]s that
//! could not be published (NATS unreachable, a publish or its ack failed or
//! timed out), drained in order once JetStream answers again.
//!
//! **Format.** The spool directory holds segment files
//! `spool-<20-digit sequence>.seg`. A segment starts with the 8-byte magic
//! `VGSPOOL1`, then records, each:
//!
//! ```text
//! u32 LE  body length
//! u32 LE  CRC-32 (IEEE) of the body
//! body:   u8 flags (bit 0: NDJSON batch)
//!         u32 LE events in the payload
//!         u16 LE subject length, subject bytes
//!         u16 LE message id length, message id bytes (the `Nats-Msg-Id`)
//!         payload (the rest of the body)
//! ```
//!
//! Records are only ever appended, to the newest ("active") segment; it is
//! rolled over at a fraction of the limit (`max_bytes / 16`, between 4 KiB
//! and 4 MiB). The writer calls [`Spool::sync`] (fsync of the segment, and of
//! the directory when a segment was created) once per batch of appends. On
//! open, every existing segment is sealed and scanned; a record with a bad
//! length or checksum (a torn write from a crash) ends its segment: what
//! precedes it is kept, the rest is counted in [`OpenReport::corrupt`].
//!
//! **Bound and drop policy.** When the segments together exceed `max_bytes`,
//! the **oldest** segment is deleted whole and its unacknowledged records
//! are counted as dropped: under a long outage the spool keeps the most
//! recent telemetry. The active segment and a segment being drained (records
//! loaded or in flight) are never dropped, so the spool may exceed the limit
//! by up to one segment plus one record.
//!
//! **Draining.** The drainer seals the active segment, reads sealed segments
//! oldest first, and reports each record's outcome with [`Spool::settle`]; a
//! segment is deleted once all of its records are acknowledged. Which
//! records were acknowledged is kept in memory only: after a restart a
//! partially drained segment is sent again from its start; those repeats keep
//! their `Nats-Msg-Id` and the events table is idempotent on event id.
//!
//! A lock file (`spool.lock`, an advisory `flock`) keeps two agents from
//! sharing one spool directory.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::envelope::Envelope;

const MAGIC: &[u8; 8] = b"VGSPOOL1";
const RECORD_HEADER: usize = 8;
/// A record body longer than this is corruption (NATS payloads are ≤ 1 MiB by default).
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
const SEGMENT_PREFIX: &str = "spool-";
const SEGMENT_SUFFIX: &str = ".seg";
const LOCK_FILE: &str = "spool.lock";
const MIN_SEGMENT_BYTES: u64 = 4 * 1024;
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool directory {path} is in use by another agent (lock held on {LOCK_FILE})")]
    Locked { path: PathBuf },
    #[error("message of {len} bytes is too large to spool (limit {MAX_RECORD_BYTES})")]
    TooLarge { len: usize },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_path_buf(), source }
}

/// Creates `dir` (and missing parents) readable by the agent's user only.
/// The agent runs as root: what it spools and blocks is nobody else's.
pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens `path` with `options`, never through a symbolic link (a link
/// planted there would make root write, or read, another file); files it
/// creates are mode 0600.
pub(super) fn open_private(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| {
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            io::Error::new(
                e.kind(),
                "is a symbolic link; refusing to follow it (remove it if you did not put it there)",
            )
        } else {
            e
        }
    })
}

/// Reads the whole file at `path` without following a symbolic link.
pub(super) fn read_private(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_private(OpenOptions::new().read(true), path)?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// What [`Spool::open`] found on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    pub messages: u64,
    pub events: u64,
    pub bytes: u64,
    /// Segments whose tail was unreadable (torn write, bad checksum) and cut off.
    pub corrupt: u64,
}

/// Records read back by [`Spool::load`].
#[derive(Debug, Default)]
pub struct Loaded {
    /// Index in the segment and record, oldest first.
    pub records: Vec<(u32, Envelope)>,
    /// Records that could not be read back and were given up.
    pub lost: Dropped,
}

/// Records and events removed (by the size bound, or unreadable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub messages: u64,
    pub events: u64,
}

impl Dropped {
    fn add(&mut self, messages: u64, events: u32) {
        self.messages += messages;
        self.events += u64::from(events);
    }

    fn sub(&mut self, other: Dropped) {
        self.messages = self.messages.saturating_sub(other.messages);
        self.events = self.events.saturating_sub(other.events);
    }
}

#[derive(Debug)]
struct Entry {
    events: u32,
    acked: bool,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    bytes: u64,
    entries: Vec<Entry>,
    acked: usize,
    inflight: u32,
    sealed: bool,
}

impl Segment {
    fn unacked(&self) -> Dropped {
        let mut d = Dropped::default();
        for e in self.entries.iter().filter(|e| !e.acked) {
            d.add(1, e.events);
        }
        d
    }
}

/// The spool. Not thread-safe: owned by the publisher task.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_max: u64,
    segments: VecDeque<Segment>,
    /// Open file of the last segment while it is unsealed.
    active: Option<File>,
    next_id: u64,
    bytes: u64,
    dirty: bool,
    dir_dirty: bool,
    /// Segment the drainer has loaded; not dropped by the size bound.
    reading: Option<u64>,
    /// Records (and events) not yet acknowledged, kept up to date.
    pending: Dropped,
    /// Appends since the last [`Spool::sync`].
    unsynced: usize,
    _lock: File,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, bounded to `max_bytes`, and scans
    /// what an earlier run left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, OpenReport), SpoolError> {
        create_private_dir(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = open_private(OpenOptions::new().create(true).truncate(false).write(true), &lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(SpoolError::Locked { path: dir.to_path_buf() }),
            Err(TryLockError::Error(e)) => return Err(SpoolError::Io { path: lock_path, source: e }),
        }
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_prefix(SEGMENT_PREFIX).and_then(|s| s.strip_suffix(SEGMENT_SUFFIX)) {
                if let Ok(id) = id.parse::<u64>() {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let mut report = OpenReport::default();
        let mut segments = VecDeque::new();
        let mut bytes = 0;
        for id in &ids {
            let path = segment_path(dir, *id);
            let buf = read_private(&path).map_err(io_err(&path))?;
            let parsed = parse_segment(&buf);
            if parsed.corrupt {
                report.corrupt += 1;
                tracing::warn!(
                    path = %path.display(),
                    kept = parsed.records.len(),
                    "spool segment has an unreadable tail (torn write or bad checksum); the rest of it is lost"
                );
            }
            if parsed.records.is_empty() {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let entries: Vec<Entry> = parsed.records.iter().map(|r| Entry { events: r.events, acked: false }).collect();
            report.messages += entries.len() as u64;
            report.events += entries.iter().map(|e| u64::from(e.events)).sum::<u64>();
            let size = buf.len() as u64;
            bytes += size;
            segments.push_back(Segment { id: *id, path, bytes: size, entries, acked: 0, inflight: 0, sealed: true });
        }
        report.segments = segments.len();
        report.bytes = bytes;
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_max: (max_bytes / 16).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
            segments,
            active: None,
            next_id: ids.last().map_or(1, |id| id + 1),
            bytes,
            dirty: false,
            dir_dirty: false,
            reading: None,
            pending: Dropped { messages: report.messages, events: report.events },
            unsynced: 0,
            _lock: lock,
        };
        Ok((spool, report))
    }

    /// Appends `env` (not yet durable: call [`Spool::sync`]); returns what the
    /// size bound dropped to make room.
    pub fn append(&mut self, env: &Envelope) -> Result<Dropped, SpoolError> {
        let frame = encode_record(env)?;
        if self.active.is_none() {
            self.start_segment()?;
        }
        let (Some(file), Some(seg)) = (self.active.as_mut(), self.segments.back_mut()) else {
            return Err(SpoolError::Io { path: self.dir.clone(), source: io::Error::other("no active spool segment") });
        };
        if let Err(e) = file.write_all(&frame) {
            // Cut the partial record off so later records stay readable; if
            // even that fails, seal the segment (a reader stops at the tear).
            if file.set_len(seg.bytes).is_err() {
                seg.sealed = true;
                self.active = None;
            }
            return Err(SpoolError::Io { path: seg.path.clone(), source: e });
        }
        seg.bytes += frame.len() as u64;
        seg.entries.push(Entry { events: env.events, acked: false });
        self.bytes += frame.len() as u64;
        self.pending.add(1, env.events);
        self.dirty = true;
        self.unsynced += 1;
        if seg.bytes >= self.segment_max {
            self.seal_active()?;
        }
        Ok(self.enforce_limit())
    }

    /// Makes every append so far durable (fsync of the active segment, and of
    /// the directory when segments were created).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.dirty {
            if let (Some(file), Some(seg)) = (self.active.as_ref(), self.segments.back()) {
                file.sync_data().map_err(io_err(&seg.path))?;
            }
            self.dirty = false;
            self.unsynced = 0;
        }
        if self.dir_dirty {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_err(&self.dir))?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Whether appends wait for [`Spool::sync`].
    pub fn is_dirty(&self) -> bool {
        self.dirty || self.dir_dirty
    }

    /// Appends since the last [`Spool::sync`].
    pub fn unsynced(&self) -> usize {
        self.unsynced
    }

    /// No record waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.acked == s.entries.len())
    }

    /// Bytes of segment files on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Records (and their events) not yet acknowledged.
    pub fn pending(&self) -> Dropped {
        self.pending
    }

    /// The oldest sealed segment after `after` (from the start with `None`).
    pub fn next_sealed(&self, after: Option<u64>) -> Option<u64> {
        self.segments.iter().find(|s| s.sealed && after.is_none_or(|a| s.id > a)).map(|s| s.id)
    }

    /// Seals the active segment (syncing it) so it can be drained; returns its
    /// id, or `None` when there is no active segment with records.
    pub fn seal_active(&mut self) -> Result<Option<u64>, SpoolError> {
        if self.active.is_none() {
            return Ok(None);
        }
        self.sync()?;
        self.active = None;
        let Some(seg) = self.segments.back_mut() else { return Ok(None) };
        seg.sealed = true;
        if seg.entries.is_empty() {
            let path = seg.path.clone();
            self.bytes -= seg.bytes;
            self.segments.pop_back();
            fs::remove_file(&path).map_err(io_err(&path))?;
            return Ok(None);
        }
        Ok(Some(seg.id))
    }

    /// Reads the records of sealed segment `id` not yet acknowledged, with
    /// their index in the segment, and marks the segment as being read (it is
    /// then not dropped by the size bound until [`Spool::set_reading`] moves
    /// on). Records that can no longer be read (the file was damaged since it
    /// was scanned) are given up and returned as `lost`; an unreadable file
    /// is an error, after which the caller should [`Spool::discard`] it.
    pub fn load(&mut self, id: u64) -> Result<Loaded, SpoolError> {
        let Some(pos) = self.segments.iter().position(|s| s.id == id) else { return Ok(Loaded::default()) };
        let seg = &mut self.segments[pos];
        let buf = read_private(&seg.path).map_err(io_err(&seg.path))?;
        let mut parsed = parse_segment(&buf).records.into_iter();
        let mut loaded = Loaded::default();
        for (i, entry) in seg.entries.iter_mut().enumerate() {
            let record = parsed.next();
            if entry.acked {
                continue;
            }
            match (record, u32::try_from(i)) {
                (Some(r), Ok(i)) => loaded.records.push((i, r)),
                _ => {
                    entry.acked = true;
                    seg.acked += 1;
                    loaded.lost.add(1, entry.events);
                }
            }
        }
        self.reading = Some(id);
        self.pending.sub(loaded.lost);
        if loaded.records.is_empty() {
            self.delete_if_done(pos)?;
        }
        Ok(loaded)
    }

    /// Gives up segment `id` (unreadable): deletes it and returns its unacknowledged records.
    pub fn discard(&mut self, id: u64) -> Dropped {
        let Some(pos) = self.segments.iter().position(|s| s.id == id) else { return Dropped::default() };
        let Some(seg) = self.segments.remove(pos) else { return Dropped::default() };
        self.bytes -= seg.bytes;
        if self.reading == Some(id) {
            self.reading = None;
        }
        if let Err(e) = fs::remove_file(&seg.path) {
            tracing::error!(path = %seg.path.display(), "cannot delete a discarded spool segment: {e}");
        }
        let lost = seg.unacked();
        self.pending.sub(lost);
        lost
    }

    /// Which segment the drainer holds in memory (protected from the size bound).
    pub fn set_reading(&mut self, id: Option<u64>) {
        self.reading = id;
    }

    /// Record `idx` of segment `id` was published; its ack is awaited.
    pub fn sent(&mut self, id: u64) {
        if let Some(seg) = self.segments.iter_mut().find(|s| s.id == id) {
            seg.inflight += 1;
        }
    }

    /// The outcome of a record sent with [`Spool::sent`]. `done` means it
    /// needs no further sending (acknowledged, or refused for good). Returns
    /// whether the segment was thereby completed and deleted.
    pub fn settle(&mut self, id: u64, idx: u32, done: bool) -> Result<bool, SpoolError> {
        let Some(pos) = self.segments.iter().position(|s| s.id == id) else { return Ok(false) };
        let seg = &mut self.segments[pos];
        seg.inflight = seg.inflight.saturating_sub(1);
        if done {
            if let Some(e) = usize::try_from(idx).ok().and_then(|i| seg.entries.get_mut(i)) {
                if !e.acked {
                    e.acked = true;
                    seg.acked += 1;
                    self.pending.sub(Dropped { messages: 1, events: u64::from(e.events) });
                }
            }
        }
        self.delete_if_done(pos)
    }

    /// Deletes the segment at `pos` when it is sealed, fully acknowledged and has nothing in flight.
    fn delete_if_done(&mut self, pos: usize) -> Result<bool, SpoolError> {
        let Some(seg) = self.segments.get(pos) else { return Ok(false) };
        if !(seg.sealed && seg.acked == seg.entries.len() && seg.inflight == 0) {
            return Ok(false);
        }
        let Some(seg) = self.segments.remove(pos) else { return Ok(false) };
        self.bytes -= seg.bytes;
        if self.reading == Some(seg.id) {
            self.reading = None;
        }
        fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        Ok(true)
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        let id = self.next_id;
        self.next_id += 1;
        let path = segment_path(&self.dir, id);
        let mut file = open_private(OpenOptions::new().create_new(true).append(true), &path).map_err(io_err(&path))?;
        file.write_all(MAGIC).map_err(io_err(&path))?;
        self.bytes += MAGIC.len() as u64;
        self.segments.push_back(Segment {
            id,
            path,
            bytes: MAGIC.len() as u64,
            entries: Vec::new(),
            acked: 0,
            inflight: 0,
            sealed: false,
        });
        self.active = Some(file);
        self.dirty = true;
        self.dir_dirty = true;
        Ok(())
    }

    /// Drops the oldest droppable segments while over the limit.
    fn enforce_limit(&mut self) -> Dropped {
        let mut dropped = Dropped::default();
        while self.bytes > self.max_bytes {
            let last = self.segments.len().saturating_sub(1);
            let active = self.active.is_some();
            let victim = self
                .segments
                .iter()
                .enumerate()
                .position(|(i, s)| !(active && i == last) && s.inflight == 0 && self.reading != Some(s.id));
            let Some(pos) = victim else { break };
            let Some(seg) = self.segments.remove(pos) else { break };
            let lost = seg.unacked();
            dropped.add(lost.messages, 0);
            dropped.events += lost.events;
            self.pending.sub(lost);
            self.bytes -= seg.bytes;
            tracing::warn!(
                segment = seg.id,
                messages = lost.messages,
                events = lost.events,
                "spool over its size limit: dropped the oldest segment"
            );
            if let Err(e) = fs::remove_file(&seg.path) {
                tracing::error!(path = %seg.path.display(), "cannot delete a dropped spool segment: {e}");
            }
        }
        dropped
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{id:020}{SEGMENT_SUFFIX}"))
}

/// Encodes one record (header and body).
fn encode_record(env: &Envelope) -> Result<Vec<u8>, SpoolError> {
    let subject = env.subject.as_bytes();
    let msg_id = env.msg_id.as_bytes();
    let body_len = 1 + 4 + 2 + subject.len() + 2 + msg_id.len() + env.payload.len();
    if body_len > MAX_RECORD_BYTES {
        return Err(SpoolError::TooLarge { len: body_len });
    }
    let (Ok(subject_len), Ok(msg_id_len), Ok(len)) =
        (u16::try_from(subject.len()), u16::try_from(msg_id.len()), u32::try_from(body_len))
    else {
        return Err(SpoolError::TooLarge { len: body_len });
    };
    let mut frame = Vec::with_capacity(RECORD_HEADER + body_len);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.push(u8::from(env.ndjson));
    frame.extend_from_slice(&env.events.to_le_bytes());
    frame.extend_from_slice(&subject_len.to_le_bytes());
    frame.extend_from_slice(subject);
    frame.extend_from_slice(&msg_id_len.to_le_bytes());
    frame.extend_from_slice(msg_id);
    frame.extend_from_slice(&env.payload);
    let crc = crc32fast::hash(&frame[RECORD_HEADER..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(frame)
}

struct Parsed {
    records: Vec<Envelope>,
    corrupt: bool,
}

/// Reads records until the end or the first unreadable one.
fn parse_segment(buf: &[u8]) -> Parsed {
    let mut records = Vec::new();
    if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
        return Parsed { records, corrupt: !buf.is_empty() };
    }
    let mut at = MAGIC.len();
    while at < buf.len() {
        match parse_record(&buf[at..]) {
            Some((env, used)) => {
                records.push(env);
                at += used;
            }
            None => return Parsed { records, corrupt: true },
        }
    }
    Parsed { records, corrupt: false }
}

fn parse_record(buf: &[u8]) -> Option<(Envelope, usize)> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let body = buf.get(RECORD_HEADER..RECORD_HEADER + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let flags = *body.first()?;
    let events = u32::from_le_bytes(body.get(1..5)?.try_into().ok()?);
    let subject_len = u16::from_le_bytes(body.get(5..7)?.try_into().ok()?) as usize;
    let mut at = 7;
    let subject = std::str::from_utf8(body.get(at..at + subject_len)?).ok()?.to_string();
    at += subject_len;
    let msg_id_len = u16::from_le_bytes(body.get(at..at + 2)?.try_into().ok()?) as usize;
    at += 2;
    let msg_id = std::str::from_utf8(body.get(at..at + msg_id_len)?).ok()?.to_string();
    at += msg_id_len;
    let payload = Bytes::copy_from_slice(body.get(at..)?);
    Some((Envelope { subject, msg_id, ndjson: flags & 1 == 1, events, payload }, RECORD_HEADER + len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(n: u32, size: usize) -> Envelope {
        Envelope {
            subject: "vigil.events.process".into(),
            msg_id: format!("id-{n}+10"),
            ndjson: true,
            events: 10,
            payload: Bytes::from(vec![b'a' + (n % 26) as u8; size]),
        }
    }

    fn drain_all(spool: &mut Spool) -> Vec<Envelope> {
        let mut out = Vec::new();
        spool.seal_active().unwrap();
        let mut after = None;
        while let Some(id) = spool.next_sealed(after) {
            for (idx, e) in spool.load(id).unwrap().records {
                spool.sent(id);
                out.push(e);
                spool.settle(id, idx, true).unwrap();
            }
            after = Some(id);
        }
        out
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_spool_is_private_to_the_agent() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spool");
        let (mut spool, _) = Spool::open(&dir, 10 << 20).unwrap();
        spool.append(&env(1, 100)).unwrap();
        spool.sync().unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
        let segments: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        assert!(!segments.is_empty());
        assert!(segments.iter().all(|p| mode(p) == 0o600), "{segments:?}");
    }

    #[test]
    fn a_symlink_in_the_spool_is_refused_and_its_target_untouched() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        for planted in [LOCK_FILE.to_string(), format!("{SEGMENT_PREFIX}{:020}{SEGMENT_SUFFIX}", 1)] {
            let dir = root.path().join(format!("spool-{planted}"));
            fs::create_dir(&dir).unwrap();
            std::os::unix::fs::symlink(&victim, dir.join(&planted)).unwrap();
            let Err(err) = Spool::open(&dir, 10 << 20) else { panic!("{planted}: a planted link is refused") };
            let err = err.to_string();
            assert!(err.contains(&planted) && err.contains("symbolic link"), "{planted}: {err}");
            assert_eq!(fs::read(&victim).unwrap(), b"precious");
        }
    }

    #[test]
    fn records_round_trip_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let sent: Vec<Envelope> = (0..50).map(|n| env(n, 1000)).collect();
        {
            let (mut spool, report) = Spool::open(dir.path(), 10 << 20).unwrap();
            assert_eq!(report, OpenReport::default());
            for e in &sent {
                assert_eq!(spool.append(e).unwrap(), Dropped::default());
            }
            spool.sync().unwrap();
            assert_eq!(spool.pending(), Dropped { messages: 50, events: 500 });
        }
        let (mut spool, report) = Spool::open(dir.path(), 10 << 20).unwrap();
        assert_eq!((report.messages, report.events, report.corrupt), (50, 500, 0));
        assert_eq!(drain_all(&mut spool), sent);
        assert!(spool.is_empty());
        assert_eq!(spool.segment_count(), 0);
        let left: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(left, vec![LOCK_FILE.to_string()]);
    }

    #[test]
    fn a_second_spool_on_the_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(Spool::open(dir.path(), 1 << 20), Err(SpoolError::Locked { .. })));
    }

    #[test]
    fn over_the_limit_the_oldest_segment_goes_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path(), 64 * 1024).unwrap();
        let mut dropped = Dropped::default();
        for n in 0..100 {
            let d = spool.append(&env(n, 2000)).unwrap();
            dropped.messages += d.messages;
            dropped.events += d.events;
        }
        spool.sync().unwrap();
        assert!(dropped.messages > 0);
        assert_eq!(spool.pending().messages + dropped.messages, 100);
        assert!(spool.bytes() <= 64 * 1024 + 2 * (4 * 1024 + 2100), "{}", spool.bytes());
        let kept = drain_all(&mut spool);
        assert_eq!(kept.len() as u64 + dropped.messages, 100);
        // What survives is the newest, in order.
        let first = 100 - kept.len() as u32;
        assert_eq!(kept, (first..100).map(|n| env(n, 2000)).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_keeps_the_records_before_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut spool, _) = Spool::open(dir.path(), 10 << 20).unwrap();
            for n in 0..3 {
                spool.append(&env(n, 100)).unwrap();
            }
            spool.sync().unwrap();
        }
        let seg = segment_path(dir.path(), 1);
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 7).unwrap();
        let (mut spool, report) = Spool::open(dir.path(), 10 << 20).unwrap();
        assert_eq!((report.messages, report.corrupt), (2, 1));
        assert_eq!(drain_all(&mut spool), vec![env(0, 100), env(1, 100)]);
    }

    #[test]
    fn a_segment_is_deleted_only_when_every_record_is_acked() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path(), 10 << 20).unwrap();
        for n in 0..3 {
            spool.append(&env(n, 100)).unwrap();
        }
        let id = spool.seal_active().unwrap().unwrap();
        let recs = spool.load(id).unwrap().records;
        for (idx, _) in &recs {
            spool.sent(id);
            let _ = idx;
        }
        assert!(!spool.settle(id, 0, true).unwrap());
        assert!(!spool.settle(id, 1, false).unwrap());
        assert!(!spool.settle(id, 2, true).unwrap());
        assert!(!spool.is_empty());
        // A retry reads only the record that failed.
        let again = spool.load(id).unwrap().records;
        assert_eq!(again.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1]);
        spool.sent(id);
        assert!(spool.settle(id, 1, true).unwrap());
        assert!(spool.is_empty());
    }
}
