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
use serde::Serialize;
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
    /// More fields of the error object (an SRQL error's span, say); boxed
    /// to keep `Result<_, ApiError>` small.
    pub details: Box<ErrorDetails>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

/// The body of every 4xx and 5xx answer of the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong: a stable code, a message for people, and for some
/// errors where it applies.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable, for programs: `bad_request`, `not_found`, `forbidden`, an SRQL
    /// error kind, `query_timeout`, `unavailable`, `search_failed`, …
    pub code: &'static str,
    pub message: String,
    #[serde(flatten)]
    pub details: ErrorDetails,
}

/// The optional fields of an [`ErrorObject`], each sent only when set.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ErrorDetails {
    /// An SRQL error: the byte range of the query at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<ErrorSpan>,
    /// An SRQL error: what would have been valid there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<String>>,
    /// An SRQL error: the nearest valid names, for a typo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<String>>,
    /// An SRQL error: the query with a caret under the span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    /// A refused hunt: the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// A 500: the id the server logged the detail under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

/// A byte range `[start, end)` of a query's text.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct ErrorSpan {
    pub start: usize,
    pub end: usize,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Default::default(), retry_after: None }
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
        let mut error = ApiError::srql_without_text(e);
        error.details.rendered = Some(e.render(query));
        error
    }

    fn srql_without_text(e: &SrqlError) -> Self {
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, e.kind.code(), e.message.clone());
        error.details.span = Some(ErrorSpan { start: e.span.start, end: e.span.end });
        error.details.expected = Some(e.expected.clone());
        error.details.suggestions = Some(e.suggestions.clone());
        error
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
        let mut error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            format!("internal error; the server logged it as {id}"),
        );
        error.details.error_id = Some(id.to_string());
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = ErrorObject { code: self.code, message: self.message, details: *self.details };
        let mut resp = (self.status, Json(ErrorBody { error })).into_response();
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

impl From<vigil_control::ControlError> for ApiError {
    /// Signing a command failed: the server's key, not the request, is at fault.
    fn from(e: vigil_control::ControlError) -> Self {
        ApiError::internal("command_signing_failed", &e)
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
                let mut error = ApiError::new(StatusCode::BAD_REQUEST, code, message);
                error.details.field = Some(field);
                error
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
