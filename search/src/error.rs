/// Why a search or the embedding worker failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Srql(#[from] vigil_srql::SrqlError),
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
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
