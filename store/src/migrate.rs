//! Applies `migrations/*.sql` in order, once each, choosing between the
//! TimescaleDB and native-partitioning variants the first time a database is
//! migrated. Safe to run from several processes at once: every step holds a
//! transaction-scoped advisory lock.

use std::collections::BTreeMap;
use std::fmt;

use tokio_postgres::Transaction;

use crate::{Pool, StoreError};

mod files {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// Key for the advisory lock that serialises migrators ("vigil" in ASCII).
const MIGRATION_LOCK: i64 = 0x76_69_67_69_6c;

/// Whether to use TimescaleDB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimescaleChoice {
    /// Use it when the server has it (installed and preloaded), else fall back.
    #[default]
    Auto,
    /// Fail unless it can be used.
    Require,
    /// Never use it: plain PostgreSQL partitioning.
    Off,
}

impl std::str::FromStr for TimescaleChoice {
    type Err = String;

    /// `auto`, `require` or `off` (`--timescaledb`, `VIGIL_TIMESCALEDB`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TimescaleChoice::Auto),
            "require" => Ok(TimescaleChoice::Require),
            "off" => Ok(TimescaleChoice::Off),
            other => Err(format!("`{other}` is not auto, require or off")),
        }
    }
}

/// How `events` is partitioned in a database. Chosen once, then fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    TimescaleDb,
    Native,
}

impl StorageMode {
    fn as_str(self) -> &'static str {
        match self {
            StorageMode::TimescaleDb => "timescaledb",
            StorageMode::Native => "native",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "timescaledb" => Some(StorageMode::TimescaleDb),
            "native" => Some(StorageMode::Native),
            _ => None,
        }
    }
}

impl fmt::Display for StorageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for [`migrate`].
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    pub timescaledb: TimescaleChoice,
}

/// What a [`migrate`] call did.
#[derive(Debug, Clone)]
pub struct MigrationReport {
    pub mode: StorageMode,
    /// File names applied by this call, in order.
    pub applied: Vec<String>,
    /// How many migrations were already in place.
    pub already_applied: usize,
}

/// One version of the schema: either one file for every mode, or a pair.
#[derive(Debug, Default)]
struct Step {
    common: Option<(&'static str, &'static str)>,
    timescaledb: Option<(&'static str, &'static str)>,
    native: Option<(&'static str, &'static str)>,
}

fn steps() -> Result<BTreeMap<i32, Step>, StoreError> {
    let mut steps: BTreeMap<i32, Step> = BTreeMap::new();
    for &(name, sql) in files::FILES {
        let version: i32 = name
            .split('_')
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::MigrationSet(format!("{name}: name must start with a number and '_'")))?;
        let step = steps.entry(version).or_default();
        let slot = if name.ends_with(".timescaledb.sql") {
            &mut step.timescaledb
        } else if name.ends_with(".native.sql") {
            &mut step.native
        } else {
            &mut step.common
        };
        if slot.replace((name, sql)).is_some() {
            return Err(StoreError::MigrationSet(format!("version {version} has two files for the same mode")));
        }
    }
    for (v, s) in &steps {
        let paired = s.timescaledb.is_some() && s.native.is_some();
        let ok = match s.common {
            Some(_) => s.timescaledb.is_none() && s.native.is_none(),
            None => paired,
        };
        if !ok {
            return Err(StoreError::MigrationSet(format!(
                "version {v} needs either one common file or both a .timescaledb.sql and a .native.sql file"
            )));
        }
    }
    Ok(steps)
}

/// FNV-1a, hex: a stable fingerprint of a migration's text.
fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(StoreError::db("taking the migration lock"))?;
    Ok(())
}

/// Brings the database's schema up to date.
pub async fn migrate(pool: &Pool, opts: &MigrateOptions) -> Result<MigrationReport, StoreError> {
    let steps = steps()?;
    let mut client = pool.get().await?;
    let mode = choose_mode(&mut client, opts.timescaledb).await?;

    let mut applied = Vec::new();
    let mut already_applied = 0;
    for (version, step) in &steps {
        let (name, sql) = match (step.common, mode) {
            (Some(f), _) => f,
            (None, StorageMode::TimescaleDb) => step.timescaledb.ok_or_else(|| missing(*version))?,
            (None, StorageMode::Native) => step.native.ok_or_else(|| missing(*version))?,
        };
        let sum = checksum(sql);
        let tx = client.transaction().await.map_err(StoreError::db("starting a migration"))?;
        lock(&tx).await?;
        let row = tx
            .query_opt("SELECT checksum FROM vigil_schema_migrations WHERE version = $1", &[version])
            .await
            .map_err(StoreError::db("reading applied migrations"))?;
        if let Some(row) = row {
            let applied_sum: String = row.get(0);
            if applied_sum != sum {
                return Err(StoreError::MigrationChanged { name: name.to_string(), applied: applied_sum, found: sum });
            }
            already_applied += 1;
            continue;
        }
        tx.batch_execute(sql).await.map_err(|source| StoreError::Migration { name: name.to_string(), source })?;
        tx.execute(
            "INSERT INTO vigil_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[version, &name, &sum],
        )
        .await
        .map_err(StoreError::db("recording a migration"))?;
        tx.commit().await.map_err(|source| StoreError::Migration { name: name.to_string(), source })?;
        tracing::info!(migration = name, "applied");
        applied.push(name.to_string());
    }
    Ok(MigrationReport { mode, applied, already_applied })
}

fn missing(version: i32) -> StoreError {
    StoreError::MigrationSet(format!("version {version} has no file for this storage mode"))
}

/// Creates the bookkeeping tables and settles the storage mode (once per database).
async fn choose_mode(
    client: &mut deadpool_postgres::Client,
    choice: TimescaleChoice,
) -> Result<StorageMode, StoreError> {
    let tx = client.transaction().await.map_err(StoreError::db("starting migration set-up"))?;
    lock(&tx).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS vigil_meta (key text PRIMARY KEY, value text NOT NULL);
         CREATE TABLE IF NOT EXISTS vigil_schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());",
    )
    .await
    .map_err(StoreError::db("creating the migration tables"))?;
    let existing = tx
        .query_opt("SELECT value FROM vigil_meta WHERE key = 'storage_mode'", &[])
        .await
        .map_err(StoreError::db("reading the storage mode"))?;
    if let Some(row) = existing {
        let value: String = row.get(0);
        let mode = StorageMode::parse(&value)
            .ok_or_else(|| StoreError::MigrationSet(format!("unknown storage_mode {value:?} in vigil_meta")))?;
        let conflict = matches!(
            (choice, mode),
            (TimescaleChoice::Require, StorageMode::Native) | (TimescaleChoice::Off, StorageMode::TimescaleDb)
        );
        if conflict {
            let wanted = if choice == TimescaleChoice::Off { "native" } else { "timescaledb" };
            return Err(StoreError::StorageModeMismatch { found: mode.to_string(), wanted: wanted.into() });
        }
        tx.commit().await.map_err(StoreError::db("finishing migration set-up"))?;
        return Ok(mode);
    }

    let mode = match choice {
        TimescaleChoice::Off => StorageMode::Native,
        TimescaleChoice::Auto | TimescaleChoice::Require => match enable_timescaledb(&tx).await? {
            Ok(()) => StorageMode::TimescaleDb,
            Err(why) if choice == TimescaleChoice::Require => return Err(StoreError::TimescaleUnavailable(why)),
            Err(why) => {
                tracing::warn!("TimescaleDB not used ({why}); events use native partitioning");
                StorageMode::Native
            }
        },
    };
    tx.execute("INSERT INTO vigil_meta (key, value) VALUES ('storage_mode', $1)", &[&mode.as_str()])
        .await
        .map_err(StoreError::db("recording the storage mode"))?;
    tx.commit().await.map_err(StoreError::db("finishing migration set-up"))?;
    Ok(mode)
}

/// Creates the extension when the server can load it. The outer `Result` is a
/// database failure; the inner one says why TimescaleDB cannot be used here.
async fn enable_timescaledb(tx: &Transaction<'_>) -> Result<Result<(), String>, StoreError> {
    let installed = tx
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'", &[])
        .await
        .map_err(StoreError::db("checking for TimescaleDB"))?
        .is_some();
    // Installed (e.g. by an administrator for an unprivileged owner, as `vigil
    // up` does): nothing more to check, and such a role may not read
    // shared_preload_libraries anyway.
    if installed {
        return Ok(Ok(()));
    }
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
                    current_setting('shared_preload_libraries')",
            &[],
        )
        .await
        .map_err(StoreError::db("checking for TimescaleDB"))?;
    let (available, preload): (bool, String) = (row.get(0), row.get(1));
    if !available {
        return Ok(Err("the extension is not installed on the server".into()));
    }
    if !preload.split(',').any(|l| l.trim() == "timescaledb") {
        return Ok(Err("timescaledb is not in shared_preload_libraries".into()));
    }
    // A savepoint keeps a refused CREATE EXTENSION (e.g. no privilege) from
    // aborting the surrounding transaction, so Auto can still fall back.
    tx.batch_execute("SAVEPOINT vigil_tsdb").await.map_err(StoreError::db("creating a savepoint"))?;
    match tx.batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb").await {
        Ok(()) => Ok(Ok(())),
        Err(e) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT vigil_tsdb")
                .await
                .map_err(StoreError::db("rolling back a savepoint"))?;
            Ok(Err(format!("CREATE EXTENSION timescaledb failed: {e}")))
        }
    }
}

/// The storage mode of an already migrated database.
pub async fn storage_mode(pool: &Pool) -> Result<Option<StorageMode>, StoreError> {
    let client = pool.get().await?;
    let row = client.query_opt("SELECT value FROM vigil_meta WHERE key = 'storage_mode'", &[]).await;
    match row {
        Ok(r) => Ok(r.and_then(|r| StorageMode::parse(r.get::<_, &str>(0)))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(StoreError::Db { context: "reading the storage mode".into(), source: e }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_migration_set_is_well_formed() {
        let steps = steps().unwrap();
        assert!(!steps.is_empty());
        assert!(steps.values().any(|s| s.timescaledb.is_some() && s.native.is_some()));
    }

    #[test]
    fn checksum_notices_any_change() {
        assert_eq!(checksum("select 1"), checksum("select 1"));
        assert_ne!(checksum("select 1"), checksum("select 2"));
    }
}
