//! Helpers every handler may use, so handler modules never import each other.

use uuid::Uuid;

use crate::audit::{self, Entry};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// An id from the path; one that does not parse names nothing, so it is a 404.
pub(crate) fn parse_id(id: &str, what: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::not_found(format!("no {what} {id}")))
}

/// Records `entry` with the outcome of `result`, and passes the result on.
pub(crate) async fn audited<T>(
    state: &AppState,
    caller: &Caller,
    entry: Entry,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let entry = match &result {
        Ok(_) => entry,
        Err(e) => entry.outcome(e.code),
    };
    audit::record(&state.pool, caller, entry).await;
    result
}
