//! Token authentication and roles. Every endpoint but `/health` (and the
//! landing page) requires `Authorization: Bearer <token>`; the token's role
//! decides what it may do.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use vigil_store::tokens::{self, TokenInfo};

use crate::AppState;

/// What a token may do. Higher roles include the lower ones' rights, except
/// `ingest`, which may only send events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
    Ingest,
}

impl Role {
    pub const NAMES: [&'static str; 4] = ["viewer", "analyst", "admin", "ingest"];

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "analyst" => Role::Analyst,
            "admin" => Role::Admin,
            "ingest" => Role::Ingest,
            _ => return None,
        })
    }
}

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

    /// A 400 for a query with an error: its stable code (the SRQL error kind), the
    /// message, the byte span and the caret drawing.
    pub fn srql(e: &vigil_srql::SrqlError, query: &str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.kind.code(), e.message.clone())
            .with("span", json!({"start": e.span.start, "end": e.span.end}))
            .with("expected", json!(e.expected))
            .with("suggestions", json!(e.suggestions))
            .with("rendered", json!(e.render(query)))
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

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: TokenInfo,
    pub role: Role,
}

impl Caller {
    /// Refuses the request unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("a {} token may not do this", Role::NAMES[self.role as usize]),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header =
            parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send `Authorization: Bearer <token>`")
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the Authorization header must be `Bearer <token>`")
        })?;
        let info = tokens::verify(&state.pool, token.trim())
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("cannot check the token: {e}"))
            })?
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown or revoked token"))?;
        let role = Role::parse(&info.role)
            .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the token has an unknown role"))?;
        if let Err(wait) = state.rate.check(info.id, std::time::Instant::now()) {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this token sent more than {} requests in a short time; retry in {secs} s", state.rate.burst()),
            );
            e.retry_after = Some(secs);
            return Err(e);
        }
        Ok(Caller { token: info, role })
    }
}
