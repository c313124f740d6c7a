/// Why a search or the embedding worker failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Srql(#[from] vigil_srql::SrqlError),
    /// The database or its pool failed.
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
    /// The database cancelled the query at its statement timeout.
    #[error("query cancelled after the {0:?} statement timeout")]
    Timeout(std::time::Duration),
    /// A parameter only the executor can supply was not supplied (the BM25
    /// hits of a free text, the HNSW path's events).
    #[error("{0}")]
    Unbound(&'static str),
    /// A result the executor cannot turn into JSON values.
    #[error("{0}")]
    Result(String),
    #[error("embedding failed: {0}")]
    Embed(#[from] vigil_embed::EmbedError),
    #[error(transparent)]
    Fulltext(#[from] vigil_fulltext::FulltextError),
    #[error("{0} needs the embedding model, which this server has not loaded (run scripts/setup.sh, then restart)")]
    NoEmbedder(&'static str),
    #[error("an embedding task stopped unexpectedly: {0}")]
    Task(String),
    #[error("`| blast_radius` needs the connection graph, which is not loaded here")]
    NoGraph,
    #[error("graph query failed: {0}")]
    Graph(String),
}
