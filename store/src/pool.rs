use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};

use crate::StoreError;

/// A pool of connections to Vigil's database.
pub type Pool = deadpool_postgres::Pool;

/// Connects a pool of at most `size` connections to `url`
/// (`postgres://user@host:port/db` or key=value form). Connections are opened
/// lazily; call `pool.get()` to check the server is reachable. TLS is as the
/// URL's `sslmode` says (libpq's meanings; `prefer` when it says nothing), with
/// `verify-ca`/`verify-full` checking the certificate against `sslrootcert`.
pub fn connect(url: &str, size: usize) -> Result<Pool, StoreError> {
    let (mut cfg, tls) = crate::tls::parse(url)?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("vigil");
    }
    let mgr = Manager::from_config(cfg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(mgr).max_size(size.max(1)).build()?)
}

/// One connection to `url` outside any pool (TLS as for [`connect`]), for
/// administration: creating and dropping databases. Its connection task runs
/// until the client is dropped.
pub async fn connect_one(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (cfg, tls) = crate::tls::parse(url)?;
    let (client, connection) = cfg.connect(tls).await.map_err(|e| StoreError::connect(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("database connection closed: {e}");
        }
    });
    Ok(client)
}
