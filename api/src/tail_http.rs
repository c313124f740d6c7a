//! `GET /api/v1/tail?query=…`: a live tail. New events matching an SRQL
//! filter, streamed as Server-Sent Events as they are stored.
//!
//! Each poll reads what was ingested since the last one, a short settle time
//! behind now so a batch still committing is not skipped. Every event
//! carries the poll's watermark as its SSE id, so a reconnecting client
//! (`Last-Event-ID`) resumes where it stopped instead of missing or
//! repeating events.
//!
//! Each poll first checks that the caller's token still works, so a tail
//! ends within one poll of its token being revoked or expiring, and a token
//! has at most `VIGIL_MAX_TAILS_PER_TOKEN` tails open at once.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_srql::Visualization;

use crate::audit::{self, Entry};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody, InQuery};
use crate::tail_limit::TailSlot;
use crate::AppState;

/// How often the tail looks for new events.
const POLL: Duration = Duration::from_secs(1);
/// How far behind now a poll reads: an ingest batch commits within this.
const SETTLE: TimeDelta = TimeDelta::seconds(2);
/// Most events one poll sends; more are summarised in a warning.
const MAX_PER_POLL: u64 = 1_000;
/// Furthest back a `Last-Event-ID` may resume.
const MAX_RESUME: TimeDelta = TimeDelta::hours(1);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TailQuery {
    /// An SRQL filter (pipes that only filter or pick fields are allowed).
    pub query: String,
}

/// Streams matching events as `event: row` (the event as JSON), with
/// `event: warning` when a poll had more than it sends and `event: error`
/// when the stream must end.
#[utoipa::path(get, path = "/api/v1/tail", tag = "search", params(TailQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (a watermark)")),
    responses((status = 200, description = "`text/event-stream`: `event: row` (the event as JSON), `event: warning`, `event: error`", content_type = "text/event-stream", body = String),
        (status = 400, description = "An SRQL error, or a query that is not a filter (`bad_tail_query`)", body = ErrorBody),
        (status = 429, description = "The token has the most live tails open it may (`too_many_tails`), or sent too many requests (`rate_limited`)", body = ErrorBody)),
    security(("token" = [])))]
pub async fn tail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<TailQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(Permission::Tail)?;
    let now = Utc::now();
    // Check the query before the stream starts, so mistakes are plain 400s.
    let probe = state.searcher.with_ingested_window(now, now);
    let x = probe.explain(&q.query, now).await.map_err(|e| e.in_query(&q.query))?;
    if x.compiled.visualization != Visualization::Table {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_tail_query",
            "a live tail streams events: use filters and `| where`/`| fields`, not aggregations, SIMILAR_TO, cluster or blast_radius",
        ));
    }
    let slot = state.tails.acquire(caller.token.id).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tails",
            format!(
                "this token has {} live tails open, the most it may (VIGIL_MAX_TAILS_PER_TOKEN); close one first",
                state.tails.max()
            ),
        )
    })?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| *t <= now && now - *t <= MAX_RESUME);
    let start = resume.unwrap_or(now - SETTLE);
    audit::record(
        &state.pool,
        &caller,
        Entry::new("tail").detail(json!({"query": q.query, "resumed": resume.is_some()})),
    )
    .await;
    let poller = Poller {
        searcher: state.searcher.with_default_limit(MAX_PER_POLL),
        query: q.query,
        after: start,
        pool: state.pool.clone(),
        token: caller.token.id,
        _slot: slot,
    };
    let events = stream::unfold(Some((poller, true)), |state| async move {
        let (mut p, first) = state?;
        if !first {
            tokio::time::sleep(POLL).await;
        }
        match p.poll().await {
            Ok(batch) => Some((batch, Some((p, false)))),
            // The error is the stream's last event.
            Err(end) => Some((vec![end], None)),
        }
    })
    .flat_map(|batch| stream::iter(batch.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One client's tail: the query, how far it has read, and whose it is.
struct Poller {
    searcher: vigil_search::Searcher,
    query: String,
    after: DateTime<Utc>,
    pool: vigil_store::Pool,
    /// The caller's token, checked before every poll.
    token: uuid::Uuid,
    /// Held while the tail lives (the stream owns the poller).
    _slot: TailSlot,
}

impl Poller {
    /// The events ingested since the last poll, oldest first; `Err` is the
    /// `error` event that ends the stream.
    async fn poll(&mut self) -> Result<Vec<SseEvent>, SseEvent> {
        let end = |message: String| SseEvent::default().event("error").data(json!({"message": message}).to_string());
        match vigil_store::tokens::is_active(&self.pool, self.token).await {
            Ok(true) => {}
            Ok(false) => return Err(end("the token was revoked or has expired; the tail ends".into())),
            Err(e) => {
                tracing::warn!("live tail: checking its token failed: {e}");
                return Err(end("the token could not be checked; the tail ends (reconnect to resume)".into()));
            }
        }
        let until = Utc::now() - SETTLE;
        if until <= self.after {
            return Ok(Vec::new());
        }
        let r = self
            .searcher
            .with_ingested_window(self.after, until)
            .search(&self.query, until)
            .await
            .map_err(|e| end(e.to_string()))?;
        self.after = until;
        let names: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
        let id = until.to_rfc3339();
        let mut out = Vec::with_capacity(r.rows.len() + 1);
        if r.rows.len() as u64 >= MAX_PER_POLL {
            out.push(SseEvent::default().event("warning").data(format!(
                "more than {MAX_PER_POLL} events matched in one poll; the newest {MAX_PER_POLL} are shown"
            )));
        }
        for row in r.rows.into_iter().rev() {
            let obj = Value::Object(names.iter().cloned().zip(row).collect());
            out.push(SseEvent::default().event("row").id(id.clone()).data(obj.to_string()));
        }
        Ok(out)
    }
}
