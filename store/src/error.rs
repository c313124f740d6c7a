/// Errors from the store, with the context a user needs to act on them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL: {0}")]
    Config(#[source] tokio_postgres::Error),
    #[error("database URL: {0}")]
    Tls(String),
    /// Opening a connection failed; the message carries the whole cause
    /// (e.g. `error performing TLS handshake: invalid peer certificate: …`).
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("could not get a database connection: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("could not build the connection pool: {0}")]
    PoolBuild(#[from] deadpool_postgres::BuildError),
    #[error("database error while {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("migration {name} failed: {source}")]
    Migration {
        name: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("migration {name} was changed after it was applied (checksum {applied} in the database, {found} now)")]
    MigrationChanged { name: String, applied: String, found: String },
    #[error("migration set is malformed: {0}")]
    MigrationSet(String),
    #[error("TimescaleDB was required but is not usable on this server: {0}")]
    TimescaleUnavailable(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("database is in {found} storage mode but {wanted} was required")]
    StorageModeMismatch { found: String, wanted: String },
}

impl From<deadpool_postgres::PoolError> for StoreError {
    /// A new connection that could not be opened says why in full, like [`StoreError::connect`].
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::connect(&e),
            e => StoreError::Pool(e),
        }
    }
}

impl StoreError {
    /// Whether retrying later can succeed (the database or network is down),
    /// as opposed to the data being refused.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Connect(_) => true,
            StoreError::Db { source, .. } | StoreError::Migration { source, .. } => match source.code() {
                None => true,
                Some(code) => {
                    let c = code.code();
                    // connection exceptions, operator intervention, resources, serialization
                    c.starts_with("08") || c.starts_with("57") || c.starts_with("53") || c == "40001" || c == "40P01"
                }
            },
            _ => false,
        }
    }

    /// A connection failure with every cause in its message: tokio-postgres
    /// shows only the kind ("error performing TLS handshake") in its own.
    pub(crate) fn connect(e: &tokio_postgres::Error) -> StoreError {
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        StoreError::Connect(message)
    }

    pub fn db(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Db { context, source }
    }
}
