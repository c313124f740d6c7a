//! A private PostgreSQL cluster in Vigil's data directory, driven by the
//! installed server's own `initdb` and `pg_ctl`. PostgreSQL refuses to run as
//! root, so when Vigil runs as root the cluster belongs to, and runs as, the
//! `postgres` OS user.
//!
//! Every connection needs a password (SCRAM): the superuser's is generated at
//! `initdb` and kept in `superuser.password` beside the cluster (mode 0600);
//! the application connects as the unprivileged `vigil_app` ([`app`]). A
//! cluster made by an earlier version with `trust` is upgraded in place ([`config`]).

mod app;
mod config;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::process::{free_port, is_root, wait_for_port};

/// OS user that owns the cluster when Vigil runs as root.
const SERVICE_USER: &str = "postgres";
/// The cluster's superuser.
const SUPERUSER: &str = "postgres";
/// Database Vigil keeps its data in.
pub const DATABASE: &str = "vigil";
/// The role the application connects as: owns the `vigil` database, nothing more.
pub const APP_ROLE: &str = "vigil_app";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPostgresError {
    #[error("PostgreSQL server binaries not found (looked for {0}); run scripts/setup.sh or set VIGIL_PG_BIN")]
    NoBinaries(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("the `{user}` OS user cannot reach {dir}; PostgreSQL must run as that user when Vigil runs as root. Choose a data directory it can reach with --data-dir (e.g. /var/lib/vigil)")]
    Unreachable { user: String, dir: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("PostgreSQL started but does not accept connections on port {0}; see its log in {1}")]
    NotListening(u16, String),
    #[error("preparing the application role and database in the embedded PostgreSQL ({context}): {source}")]
    Prepare {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// A certificate and key (PEM) the cluster serves TLS with.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// How to start the cluster.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory of the server binaries ([`EmbeddedPostgres::locate_bin`]).
    pub bin_dir: Option<PathBuf>,
    /// Serve TLS and refuse TCP connections without it (`hostssl` only).
    pub tls: Option<ServerTls>,
}

/// A running private cluster.
pub struct EmbeddedPostgres {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    superuser_password: String,
    tls: bool,
    stopped: bool,
}

/// Everything but the password.
impl std::fmt::Debug for EmbeddedPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPostgres")
            .field("root", &self.root)
            .field("bin", &self.bin)
            .field("port", &self.port)
            .field("run_as", &self.run_as)
            .field("tls", &self.tls)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl EmbeddedPostgres {
    /// Finds the PostgreSQL 15 server binaries: in `explicit` (`--pg-bin` /
    /// `VIGIL_PG_BIN`) when given, else where Debian and `pg_config` put them.
    pub fn locate_bin(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedPostgresError> {
        let mut candidates: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
        candidates.push(PathBuf::from("/usr/lib/postgresql/15/bin"));
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
        candidates.iter().find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file()).cloned().ok_or_else(|| {
            EmbeddedPostgresError::NoBinaries(
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            )
        })
    }

    /// Starts the cluster under `<data_dir>/postgres`, creating it on first
    /// use. A cluster left running by an earlier, killed `vigil up` is adopted.
    /// Blocking: call from `spawn_blocking`.
    pub fn start(data_dir: &Path) -> Result<Self, EmbeddedPostgresError> {
        Self::start_with_options(data_dir, &Options::default())
    }

    /// [`start`](Self::start) with the binaries in `bin_dir` ([`locate_bin`](Self::locate_bin)).
    pub fn start_with(data_dir: &Path, bin_dir: Option<&Path>) -> Result<Self, EmbeddedPostgresError> {
        Self::start_with_options(data_dir, &Options { bin_dir: bin_dir.map(Path::to_path_buf), tls: None })
    }

    /// [`start`](Self::start) with [`Options`].
    pub fn start_with_options(data_dir: &Path, options: &Options) -> Result<Self, EmbeddedPostgresError> {
        let bin = Self::locate_bin(options.bin_dir.as_deref())?;
        let root = data_dir.join("postgres");
        fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let run_as = is_root().then_some(SERVICE_USER);
        let mut pg = EmbeddedPostgres {
            root,
            bin,
            port: 0,
            run_as,
            superuser_password: String::new(),
            tls: options.tls.is_some(),
            stopped: false,
        };
        pg.check_reachable()?;
        let (password, new_password) = crate::secret::password_file(&pg.superuser_password_file())?;
        pg.superuser_password = password;
        pg.chown(&[&pg.superuser_password_file()])?;
        if !pg.data().join("PG_VERSION").is_file() {
            pg.initdb()?;
        } else if new_password || !pg.hba_is_ours()? {
            // A cluster of an earlier version (trust), or one whose password
            // file was removed to reset the password.
            pg.set_superuser_password()?;
        }
        pg.write_hba()?;
        if let Some(tls) = &options.tls {
            pg.write_server_tls(tls)?;
        }
        if let Some(port) = pg.running_port() {
            tracing::info!(port, "adopting the PostgreSQL cluster left running by an earlier run");
            pg.port = port;
            // Settings written above (pg_hba.conf) take effect for new connections.
            run("pg_ctl reload", pg.command("pg_ctl").arg("-D").arg(pg.data()).arg("reload"))?;
            return Ok(pg);
        }
        pg.port = free_port()?;
        pg.write_config()?;
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    /// As root: gives the cluster directory to the service user and checks it
    /// can reach it.
    fn check_reachable(&self) -> Result<(), EmbeddedPostgresError> {
        let Some(user) = self.run_as else {
            return Ok(());
        };
        run("chown", Command::new("chown").arg("-R").arg(format!("{user}:{user}")).arg(&self.root))?;
        let reachable = Command::new("runuser")
            .args(["-u", user, "--", "test", "-w"])
            .arg(&self.root)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !reachable {
            return Err(EmbeddedPostgresError::Unreachable { user: user.into(), dir: self.root.display().to_string() });
        }
        Ok(())
    }

    /// Gives `paths` to the service user when running as root.
    fn chown(&self, paths: &[&Path]) -> Result<(), EmbeddedPostgresError> {
        if let Some(user) = self.run_as {
            run("chown", Command::new("chown").arg(format!("{user}:{user}")).args(paths))?;
        }
        Ok(())
    }

    /// A new cluster whose superuser signs in with the generated password.
    fn initdb(&self) -> Result<(), EmbeddedPostgresError> {
        tracing::info!(dir = %self.data().display(), "creating a PostgreSQL cluster");
        run(
            "initdb",
            self.command("initdb")
                .arg("-D")
                .arg(self.data())
                .args(["-U", SUPERUSER, "--auth=scram-sha-256", "--pwfile"])
                .arg(self.superuser_password_file())
                .args(["-E", "UTF8", "--no-locale", "--no-instructions"]),
        )?;
        Ok(())
    }

    /// `pg_ctl start` on the written configuration, then waits for the port.
    fn pg_ctl_start(&self) -> Result<(), EmbeddedPostgresError> {
        run(
            "pg_ctl start",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.root.join("server.log"))
                .args(["-w", "-t", "60", "start"]),
        )?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        if !wait_for_port(addr, std::time::Duration::from_secs(30)) {
            return Err(EmbeddedPostgresError::NotListening(
                self.port,
                self.root.join("server.log").display().to_string(),
            ));
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The file holding the superuser's password (mode 0600).
    pub fn superuser_password_file(&self) -> PathBuf {
        self.root.join("superuser.password")
    }

    /// Connection URL for `db` as the cluster's superuser over TCP, password
    /// included: for administration, never to print.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}", self.superuser_password, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding the Unix socket (and the cluster).
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// The port of a postmaster already serving this data directory.
    fn running_port(&self) -> Option<u16> {
        let status = self.command("pg_ctl").arg("-D").arg(self.data()).arg("status").output().ok()?;
        if !status.status.success() {
            return None;
        }
        let pid_file = fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    /// Starts a stopped cluster again on the same port.
    pub fn start_again(&mut self) -> Result<(), EmbeddedPostgresError> {
        self.pg_ctl_start()?;
        self.stopped = false;
        Ok(())
    }

    /// Stops the cluster (fast shutdown: sessions end, data is flushed).
    pub fn stop(&mut self) -> Result<(), EmbeddedPostgresError> {
        if self.stopped {
            return Ok(());
        }
        run(
            "pg_ctl stop",
            self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "fast", "-w", "-t", "60", "stop"]),
        )?;
        self.stopped = true;
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("stopping the embedded PostgreSQL: {e}");
        }
    }
}

fn run(what: &str, cmd: &mut Command) -> Result<Output, EmbeddedPostgresError> {
    let out = cmd.output().map_err(|e| EmbeddedPostgresError::Command { what: what.into(), detail: e.to_string() })?;
    if !out.status.success() {
        let detail = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        return Err(EmbeddedPostgresError::Command { what: what.into(), detail: detail.trim().to_string() });
    }
    Ok(out)
}
