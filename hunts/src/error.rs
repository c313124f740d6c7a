//! What can go wrong with a hunt, an alert or an action.

use vigil_search::SearchError;
use vigil_srql::SrqlError;
use vigil_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    /// The hunt's SRQL does not compile (with the span of what is wrong).
    #[error("invalid query: {0}")]
    Srql(#[from] SrqlError),
    /// A field of a hunt or a request is not acceptable.
    #[error("{message}")]
    Invalid { field: &'static str, code: &'static str, message: String },
    #[error("no {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    /// Stored data this version cannot read (a hunt's correlation).
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

impl HuntError {
    pub(crate) fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        HuntError::Invalid { field, code, message: message.into() }
    }

    pub(crate) fn db(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> HuntError {
        move |e| HuntError::Store(StoreError::db(context)(e))
    }
}
