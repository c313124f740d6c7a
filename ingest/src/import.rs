//! File import: detect the format, parse line by line, write in batches
//! through the store's idempotent writer, and keep every rejected line's
//! number and reason.

use std::io::BufRead;

use chrono::{DateTime, Datelike, Utc};
use vigil_event::Event;
use vigil_store::{EventWriter, StoreError};

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
/// each batch with the running summary.
pub async fn import<R: BufRead>(
    input: R,
    format: Option<Format>,
    writer: &EventWriter,
    batch_size: usize,
    origin: &str,
    progress: impl FnMut(&ImportSummary),
) -> Result<(Format, ImportSummary), ImportError> {
    let mut letters = Vec::new();
    let out = import_lines(input, format, writer, batch_size, origin, &mut letters, progress).await?;
    vigil_store::deadletter::store(writer.pool(), &letters).await?;
    Ok(out)
}

async fn import_lines<R: BufRead>(
    mut input: R,
    format: Option<Format>,
    writer: &EventWriter,
    batch_size: usize,
    origin: &str,
    letters: &mut Vec<vigil_store::deadletter::DeadLetter>,
    mut progress: impl FnMut(&ImportSummary),
) -> Result<(Format, ImportSummary), ImportError> {
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
                for chunk in events.chunks(batch_size.max(1)) {
                    let mut batch = chunk.to_vec();
                    flush(writer, &mut batch, &mut summary).await?;
                    progress(&summary);
                }
            }
            Err(e) => {
                summary.rejected = 1;
                letters.push(vigil_store::deadletter::DeadLetter {
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
            Ok(Some(e)) => batch.push(e),
            Ok(None) => summary.lines -= 1,
            Err(err) => {
                summary.rejected += 1;
                letters.push(vigil_store::deadletter::DeadLetter {
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
