//! The API's one error model: every failure a handler returns is an
//! [`ApiError`], and this module alone decides its HTTP status.
//!
//! - What the caller got wrong (a bad query, an unknown id, a conflict) is a
//!   4xx whose message says what was wrong and where.
//! - What may succeed on retry (the database down, pool exhausted, a
//!   serialization failure) is a 503 `unavailable`.
//! - Anything else is a 500 with a stable code per part (`search_failed`,
//!   `hunts_failed`, `database_error`, …) and an `error_id`; the detail
//!   (often a raw database message) is logged once under that id and never
//!   sent to the client.
//!
//! Errors that may point into an SRQL query's text are converted with
//! [`InQuery::in_query`], so the answer carries the span and caret drawing.

use std::fmt::Display;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use vigil_graph::GraphError;
use vigil_hunts::HuntError;
use vigil_search::SearchError;
use vigil_srql::SrqlError;
use vigil_store::StoreError;

/// A JSON error with a stable code.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More fields of the error object (an SRQL error's span, say).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Default::default(), retry_after: None }
    }

    /// Adds `key: value` to the error object.
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    /// A 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A 503 `unavailable` for a part of the server that is not running here.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A 400 for a query with an error: its stable code (the SRQL error kind), the
    /// message, the byte span and the caret drawing.
    pub fn srql(e: &SrqlError, query: &str) -> Self {
        ApiError::srql_without_text(e).with("rendered", json!(e.render(query)))
    }

    fn srql_without_text(e: &SrqlError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.kind.code(), e.message.clone())
            .with("span", json!({"start": e.span.start, "end": e.span.end}))
            .with("expected", json!(e.expected))
            .with("suggestions", json!(e.suggestions))
    }

    /// The database refused a batch of events that decoded: 503 when it may
    /// pass, else 422 with the database's reason, since only the sender can
    /// change what it sends.
    pub fn batch_refused(e: StoreError) -> Self {
        if e.is_transient() {
            ApiError::transient(&e)
        } else {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected_by_database", e.to_string())
        }
    }

    /// A failure that may pass: logged (a warning, with the detail) and
    /// answered 503 without the detail.
    fn transient(detail: &dyn Display) -> Self {
        tracing::warn!("request failed, retryable: {detail}");
        ApiError::unavailable("the database is unavailable; retry shortly")
    }

    /// A failure the caller cannot fix: logged once with its detail under a
    /// fresh id, answered 500 with `code` and the id to quote.
    fn internal(code: &'static str, detail: &dyn Display) -> Self {
        let id = uuid::Uuid::new_v4();
        tracing::error!(error_id = %id, code, "request failed: {detail}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, format!("internal error; the server logged it as {id}"))
            .with("error_id", json!(id.to_string()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = self.details;
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        let mut resp = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = axum::http::HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            ApiError::transient(&e)
        } else {
            ApiError::internal("database_error", &e)
        }
    }
}

impl From<SrqlError> for ApiError {
    /// Without the query text there is no caret drawing; prefer
    /// [`InQuery::in_query`] where the query is at hand.
    fn from(e: SrqlError) -> Self {
        ApiError::srql_without_text(&e)
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Srql(e) => e.into(),
            SearchError::Timeout(t) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "query_timeout",
                format!("the query was cancelled after {t:?}; narrow its time window or filters"),
            ),
            SearchError::Store(e) if e.is_transient() => ApiError::transient(&e),
            e @ (SearchError::NoEmbedder(_) | SearchError::NoGraph) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_available", e.to_string())
            }
            e => ApiError::internal("search_failed", &e),
        }
    }
}

impl From<HuntError> for ApiError {
    fn from(e: HuntError) -> Self {
        match e {
            HuntError::Srql(e) => e.into(),
            HuntError::Invalid { field, code, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, code, message).with("field", json!(field))
            }
            HuntError::NotFound { .. } => ApiError::not_found(e.to_string()),
            HuntError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            HuntError::Store(e) => e.into(),
            HuntError::Search(e) => e.into(),
            e @ HuntError::Corrupt(_) => ApiError::internal("hunts_failed", &e),
        }
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::UnknownStart(_) | GraphError::UnknownTarget(_) => ApiError::not_found(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// Errors that may come from an SRQL query the caller sent.
pub trait InQuery {
    /// The API error, with carets into `query` when the query was at fault.
    fn in_query(self, query: &str) -> ApiError;
}

impl InQuery for SrqlError {
    fn in_query(self, query: &str) -> ApiError {
        ApiError::srql(&self, query)
    }
}

impl InQuery for SearchError {
    fn in_query(self, query: &str) -> ApiError {
        match self {
            SearchError::Srql(e) => ApiError::srql(&e, query),
            e => e.into(),
        }
    }
}

impl InQuery for HuntError {
    fn in_query(self, query: &str) -> ApiError {
        match self {
            HuntError::Srql(e) => ApiError::srql(&e, query),
            HuntError::Search(e) => e.in_query(query),
            e => e.into(),
        }
    }
}
