//! The application's role and database: `vigil_app` (no superuser, no
//! CREATEROLE/CREATEDB) owns the `vigil` database and every object of Vigil's
//! schema in it, which is what its migrations and its maintenance (partitions
//! made and dropped, TimescaleDB chunks dropped, vector indexes built) need.
//! The extensions, which need a superuser, are created here beforehand.

use std::path::PathBuf;

use super::{EmbeddedPostgres, EmbeddedPostgresError, APP_ROLE, DATABASE, SUPERUSER};

/// Hands Vigil's objects in `public` that the role does not own yet (those an
/// earlier version made as the superuser) to the application role. Extension
/// members stay with their extension; sequences linked to a column follow
/// their table; TimescaleDB moves a hypertable's chunks with it.
const TAKE_OWNERSHIP: &str = "
DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.oid::regclass AS name,
           CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                          WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END AS kind
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND c.relowner <> 'vigil_app'::regrole
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i'))))
     ORDER BY c.relkind = 'S'
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO vigil_app', r.kind, r.name);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS name
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND p.proowner <> 'vigil_app'::regrole
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO vigil_app', r.name);
  END LOOP;
END $$";

impl EmbeddedPostgres {
    /// The file holding the application role's password (mode 0600).
    pub fn app_password_file(&self) -> PathBuf {
        self.root.join(format!("{APP_ROLE}.password"))
    }

    /// Makes (or brings up to date) the application role, its database and
    /// the extensions Vigil's migrations use (`vector`; `timescaledb` when
    /// `timescaledb` is true and the server preloads it), and returns the URL
    /// the application connects with (its password included: never print it;
    /// [`app_url_for_display`](Self::app_url_for_display) is for that).
    /// Run at every start: it also upgrades a database an earlier version
    /// used as the superuser.
    pub async fn prepare_app(&self, timescaledb: bool) -> Result<String, EmbeddedPostgresError> {
        let (password, _) = crate::secret::password_file(&self.app_password_file())?;
        let verifier = crate::secret::scram_verifier(&password);
        let admin = self.admin_client("postgres").await?;
        let exists = |sql: &'static str, name: &'static str| {
            let admin = &admin;
            async move { admin.query_opt(sql, &[&name]).await.map(|r| r.is_some()) }
        };
        let attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
        // Utility statements take no bind parameters; the verifier is base64 and `$:+/=`.
        let role_sql = if exists("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE).await.map_err(ctx("role"))? {
            format!("ALTER ROLE {APP_ROLE} WITH {attrs} PASSWORD '{verifier}'")
        } else {
            format!("CREATE ROLE {APP_ROLE} WITH {attrs} PASSWORD '{verifier}'")
        };
        admin.batch_execute(&role_sql).await.map_err(ctx("role"))?;
        let db_sql =
            if exists("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE).await.map_err(ctx("database"))? {
                format!("ALTER DATABASE {DATABASE} OWNER TO {APP_ROLE}")
            } else {
                format!("CREATE DATABASE {DATABASE} OWNER {APP_ROLE}")
            };
        admin.batch_execute(&db_sql).await.map_err(ctx("database"))?;
        admin
            .batch_execute(&format!("REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC"))
            .await
            .map_err(ctx("database"))?;
        drop(admin);

        let admin = self.admin_client(DATABASE).await?;
        let wanted = admin
            .query(
                "SELECT name FROM pg_available_extensions
                  WHERE installed_version IS NULL
                    AND (name = 'vector' OR (name = 'timescaledb' AND $1
                         AND 'timescaledb' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))))",
                &[&timescaledb],
            )
            .await
            .map_err(ctx("extensions"))?;
        for row in wanted {
            let name: String = row.get(0);
            // The name comes from the two constants in the query above.
            admin.batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS {name}")).await.map_err(ctx("extensions"))?;
        }
        admin.batch_execute(TAKE_OWNERSHIP).await.map_err(ctx("ownership"))?;
        Ok(format!("postgres://{APP_ROLE}:{password}@127.0.0.1:{}/{DATABASE}", self.port))
    }

    /// The application's URL without its password, for messages.
    pub fn app_url_for_display(&self) -> String {
        format!("postgres://{APP_ROLE}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The superuser on `db` over the Unix socket: a local, private channel,
    /// so no TLS (the socket never offers it), whatever TCP requires.
    async fn admin_client(&self, db: &str) -> Result<tokio_postgres::Client, EmbeddedPostgresError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.root)
            .port(self.port)
            .user(SUPERUSER)
            .password(&self.superuser_password)
            .dbname(db)
            .application_name("vigil up");
        let (client, connection) = cfg.connect(tokio_postgres::NoTls).await.map_err(ctx("connecting"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("embedded PostgreSQL admin connection closed: {e}");
            }
        });
        Ok(client)
    }
}

fn ctx(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> EmbeddedPostgresError {
    move |source| EmbeddedPostgresError::Prepare { context, source }
}
