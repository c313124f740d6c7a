use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::StoreError;

/// A pool of connections to Vigil's database.
pub type Pool = deadpool_postgres::Pool;

/// Connects a pool of at most `size` connections to `url`
/// (`postgres://user@host:port/db` or key=value form). Connections are opened
/// lazily; call `pool.get()` to check the server is reachable.
pub fn connect(url: &str, size: usize) -> Result<Pool, StoreError> {
    let mut cfg = tokio_postgres::Config::from_str(url).map_err(StoreError::Config)?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("vigil");
    }
    let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(mgr).max_size(size.max(1)).build()?)
}
