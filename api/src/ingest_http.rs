//! `POST /api/v1/ingest`: NDJSON events through the same decoding, dead
//! letters and writer as the NATS pipeline, with an answer per refused line.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::json;
use vigil_ingest::decode::decode;
use vigil_store::deadletter::{self, DeadLetter};

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What an ingest request did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestResult {
    /// Non-blank lines read.
    pub received: u64,
    /// Events stored (new).
    pub stored: u64,
    /// Events already stored, not added again.
    pub duplicates: u64,
    /// Lines refused (kept as dead letters).
    pub rejected: Vec<RejectedLine>,
}

/// A line that did not decode as an event, or an event refused (older than
/// the longest retention, `too_old`; more than a day ahead, `invalid_event`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RejectedLine {
    /// 1-based line number in the request body.
    pub line: usize,
    /// Stable reason code (`invalid_json`, `invalid_event`, `unknown_kind`, `oversize`, `too_old`, …).
    pub code: &'static str,
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/ingest", tag = "ingest",
    request_body(content = String, content_type = "application/x-ndjson", description = "Vigil event JSON, one per line"),
    responses((status = 200, description = "What was stored and which lines were refused", body = IngestResult),
        (status = 413, description = "Over 16 MiB"),
        (status = 422, description = "The database refused the batch (`rejected_by_database`)", body = ErrorBody)),
    security(("token" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Json<IngestResult>, ApiError> {
    caller.require(Permission::Ingest)?;
    let mut events = Vec::new();
    let mut letters = Vec::new();
    let mut rejected = Vec::new();
    let origin = format!("http:{}", caller.token.name);
    let mut lines = 0u64;
    let now = chrono::Utc::now();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        match decode(None, line).and_then(|e| state.ingest_oldest.check(&e, now).map(|()| e)) {
            Ok(e) => events.push(e),
            Err(rej) => {
                state.ingest_metrics.dead_lettered("http", rej.code);
                rejected.push(RejectedLine { line: i + 1, code: rej.code, reason: rej.reason.clone() });
                let at = format!("{origin}:{}", i + 1);
                letters.push(DeadLetter {
                    channel: "http",
                    dedup_key: Some(deadletter::input_key("http", &at, line)),
                    origin: at,
                    stream_seq: None,
                    reason_code: rej.code,
                    reason: rej.reason,
                    payload: line.to_vec(),
                });
            }
        }
    }
    state.ingest_metrics.received("http", lines);
    let stats = state.writer.write(&events).await.map_err(|e| {
        state.ingest_metrics.write_error("http");
        ApiError::batch_refused(e)
    })?;
    if !events.is_empty() {
        state.ingest_metrics.batch("http", events.len() as u64, stats.inserted, stats.duplicates);
    }
    deadletter::store(&state.pool, &letters).await?;
    let entry = crate::audit::Entry::new("ingest")
        .detail(json!({"received": lines, "duplicates": stats.duplicates, "rejected": rejected.len()}))
        .size(stats.inserted as usize);
    crate::audit::record(&state.pool, &caller, entry).await;
    Ok(Json(IngestResult { received: lines, stored: stats.inserted, duplicates: stats.duplicates, rejected }))
}
