//! File import: detect the format, parse line by line, write in batches
//! through the store's idempotent writer, and keep every rejected line's
//! number and reason.

use std::io::BufRead;

use chrono::{DateTime, Datelike, Utc};
use vigil_event::Event;
use vigil_store::deadletter::DeadLetter;
use vigil_store::{EventWriter, StoreError};

use crate::decode::Oldest;
use crate::formats::{evtx, falco, native, suricata, syslog, trivy, zeek, Format, ParseError};

/// Turns lines of one format into events.
#[derive(Debug)]
pub struct LineParser {
    format: Format,
    zeek: zeek::TsvReader,
    /// Syslog has no year: lines take the reference time's (see [`syslog::infer_year`]).
    reference: DateTime<Utc>,
}

impl LineParser {
    pub fn new(format: Format, reference: DateTime<Utc>) -> Self {
        LineParser { format, zeek: zeek::TsvReader::new(), reference }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Parses one line; `Ok(None)` for lines that carry no event (blank, headers).
    pub fn line(&mut self, line: &str, line_no: usize) -> Result<Option<Event>, ParseError> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        match self.format {
            Format::Native => native::parse_line(line, line_no).map(Some),
            Format::ZeekConnTsv => self.zeek.line(line, line_no),
            Format::ZeekConnJson => zeek::parse_json_line(line, line_no).map(Some),
            Format::Falco => falco::parse_line(line, line_no).map(Some),
            Format::Suricata => suricata::parse_line(line, line_no).map(Some),
            Format::Trivy => {
                Err(ParseError::new(line_no, "a Trivy report is one JSON document; import the whole file"))
            }
            Format::Evtx => evtx::parse_line(line, line_no).map(Some),
            Format::Syslog => {
                let year = syslog::parse_timestamp(line, 2000)
                    .map(|(t, _)| syslog::infer_year((t.month(), t.day()), self.reference))
                    .unwrap_or(self.reference.year());
                syslog::parse_line(line, line_no, year).map(Some)
            }
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub lines: u64,
    /// Bytes of input read so far (for progress).
    pub bytes: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// The first rejected lines with their reasons (at most [`MAX_KEPT_ERRORS`]).
    pub errors: Vec<ParseError>,
}

/// How many rejected lines an [`ImportSummary`] lists one by one.
pub const MAX_KEPT_ERRORS: usize = 100;

/// Errors that stop an import (a bad line never does).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not detect the input format from its first line; expected Vigil JSON, Zeek conn.log (TSV or JSON), syslog, Falco, Suricata, Trivy or Windows evtx JSON")]
    UnknownFormat,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads `input` to the end, storing events in batches of `batch_size`.
/// Rejected lines are kept in `ingest_errors` (channel `file`, origin
/// `origin:line`) with their reason and bytes. `progress` is called after
/// each batch with the running summary. Events of any age are stored; see
/// [`import_with`].
pub async fn import<R: BufRead>(
    input: R,
    format: Option<Format>,
    writer: &EventWriter,
    batch_size: usize,
    origin: &str,
    progress: impl FnMut(&ImportSummary),
) -> Result<(Format, ImportSummary), ImportError> {
    import_with(input, format, writer, batch_size, origin, Oldest::Any, progress).await
}

/// [`import`], refusing events older than `oldest` (code `too_old`) like
/// lines that do not parse: the rest of the file is still stored.
pub async fn import_with<R: BufRead>(
    input: R,
    format: Option<Format>,
    writer: &EventWriter,
    batch_size: usize,
    origin: &str,
    oldest: Oldest,
    progress: impl FnMut(&ImportSummary),
) -> Result<(Format, ImportSummary), ImportError> {
    let mut letters = Vec::new();
    let target = Target { writer, batch_size, origin, oldest, now: Utc::now() };
    let out = import_lines(input, format, &target, &mut letters, progress).await?;
    vigil_store::deadletter::store(writer.pool(), &letters).await?;
    Ok(out)
}

/// Where an import writes and what it accepts.
struct Target<'a> {
    writer: &'a EventWriter,
    batch_size: usize,
    origin: &'a str,
    oldest: Oldest,
    now: DateTime<Utc>,
}

impl Target<'_> {
    /// Keeps `event` unless it is too old; a refused one becomes a dead
    /// letter (`at`: its line and, made only then, its text) and a counted,
    /// listed error.
    fn accept(
        &self,
        event: Event,
        at: (usize, impl FnOnce(&Event) -> String),
        letters: &mut Vec<DeadLetter>,
        summary: &mut ImportSummary,
    ) -> Option<Event> {
        let Err(rej) = self.oldest.check(&event, self.now) else { return Some(event) };
        let (line_no, payload) = (at.0, (at.1)(&event));
        let origin = format!("{}:{line_no}", self.origin);
        summary.rejected += 1;
        letters.push(DeadLetter {
            channel: "file",
            dedup_key: Some(vigil_store::deadletter::input_key("file", &origin, payload.as_bytes())),
            origin,
            stream_seq: None,
            reason_code: rej.code,
            reason: rej.reason.clone(),
            payload: payload.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
        });
        if summary.errors.len() < MAX_KEPT_ERRORS {
            summary.errors.push(ParseError::new(line_no, rej.reason));
        }
        None
    }
}

async fn import_lines<R: BufRead>(
    mut input: R,
    format: Option<Format>,
    target: &Target<'_>,
    letters: &mut Vec<DeadLetter>,
    mut progress: impl FnMut(&ImportSummary),
) -> Result<(Format, ImportSummary), ImportError> {
    let (writer, batch_size, origin) = (target.writer, target.batch_size, target.origin);
    let mut summary = ImportSummary::default();
    let mut first = String::new();
    let mut line_no = 0usize;
    // Skip leading blank lines to find something to detect the format from.
    while first.trim().is_empty() {
        first.clear();
        if input.read_line(&mut first)? == 0 {
            return Ok((format.unwrap_or(Format::Native), summary));
        }
        line_no += 1;
    }
    let format = match format {
        Some(f) => f,
        None => Format::detect(&first).ok_or(ImportError::UnknownFormat)?,
    };
    if format == Format::Trivy || (format == Format::Evtx && !is_single_line_json(&first)) {
        // One document: read it whole. A pretty-printed `{` opens a Trivy
        // report or Windows event records; the content tells which.
        let mut text = first;
        input.read_to_string(&mut text)?;
        summary.lines = 1;
        let format = if evtx::looks_like(&text) { Format::Evtx } else { format };
        let parsed = match format {
            Format::Evtx => evtx::parse_document(&text),
            _ => trivy::parse_report(&text, Utc::now()),
        };
        match parsed {
            Ok(events) => {
                // One document: a refused event is reported at its line 1.
                let events: Vec<Event> = events
                    .into_iter()
                    .filter_map(|e| {
                        let text = |e: &Event| serde_json::to_string(e).unwrap_or_default();
                        target.accept(e, (1, text), letters, &mut summary)
                    })
                    .collect();
                for chunk in events.chunks(batch_size.max(1)) {
                    let mut batch = chunk.to_vec();
                    flush(writer, &mut batch, &mut summary).await?;
                    progress(&summary);
                }
            }
            Err(e) => {
                summary.rejected = 1;
                letters.push(DeadLetter {
                    channel: "file",
                    origin: origin.to_string(),
                    stream_seq: None,
                    dedup_key: Some(vigil_store::deadletter::input_key("file", origin, text.as_bytes())),
                    reason_code: "unparseable",
                    reason: e.reason.clone(),
                    payload: text.into_bytes(),
                });
                summary.errors.push(e);
            }
        }
        return Ok((format, summary));
    }
    let mut parser = LineParser::new(format, Utc::now());
    let mut batch = Vec::with_capacity(batch_size);
    let mut line = first;
    loop {
        summary.lines += 1;
        match parser.line(&line, line_no) {
            Ok(Some(e)) => batch.extend(target.accept(e, (line_no, |_: &Event| line.clone()), letters, &mut summary)),
            Ok(None) => summary.lines -= 1,
            Err(err) => {
                summary.rejected += 1;
                letters.push(DeadLetter {
                    channel: "file",
                    origin: format!("{origin}:{line_no}"),
                    stream_seq: None,
                    dedup_key: Some(vigil_store::deadletter::input_key(
                        "file",
                        &format!("{origin}:{line_no}"),
                        line.as_bytes(),
                    )),
                    reason_code: "unparseable",
                    reason: err.reason.clone(),
                    payload: line.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
                });
                if summary.errors.len() < MAX_KEPT_ERRORS {
                    summary.errors.push(err);
                }
            }
        }
        if batch.len() >= batch_size {
            flush(writer, &mut batch, &mut summary).await?;
            progress(&summary);
        }
        summary.bytes += line.len() as u64;
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
    }
    flush(writer, &mut batch, &mut summary).await?;
    progress(&summary);
    Ok((format, summary))
}

/// Whether `line` holds a whole JSON value (NDJSON) rather than the start of
/// a pretty-printed document.
fn is_single_line_json(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line.trim()).is_ok()
}

async fn flush(writer: &EventWriter, batch: &mut Vec<Event>, summary: &mut ImportSummary) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let stats = writer.write(batch).await?;
    summary.stored += stats.inserted;
    summary.duplicates += stats.duplicates;
    batch.clear();
    Ok(())
}
