//! The cluster's configuration: `vigil.conf` (port, preloads, TLS),
//! `pg_hba.conf` (passwords for everyone), the server's TLS files, and the
//! superuser's password in an existing cluster (one an earlier version made
//! with `initdb -A trust`).

use std::fs;
use std::io::Write;
use std::process::Stdio;

use super::{EmbeddedPostgres, EmbeddedPostgresError, ServerTls, APP_ROLE, DATABASE, SUPERUSER};

/// First line of the `pg_hba.conf` Vigil writes.
const HBA_MARK: &str = "# Written by `vigil up` at every start";

impl EmbeddedPostgres {
    /// Whether `pg_hba.conf` is the one this version writes (else it is
    /// `initdb`'s, which an earlier version made with `trust`).
    pub(super) fn hba_is_ours(&self) -> Result<bool, EmbeddedPostgresError> {
        Ok(fs::read_to_string(self.data().join("pg_hba.conf"))?.starts_with(HBA_MARK))
    }

    pub(super) fn write_config(&self) -> Result<(), EmbeddedPostgresError> {
        let conf = self.data().join("postgresql.conf");
        let main = fs::read_to_string(&conf)?;
        if !main.contains("include_if_exists = 'vigil.conf'") {
            fs::write(&conf, format!("{main}\ninclude_if_exists = 'vigil.conf'\n"))?;
        }
        let pkglib = self.bin.join("../lib");
        let timescale = pkglib.join("timescaledb.so").is_file();
        let mut vigil = format!(
            "# Written by `vigil up` at every start.\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\npassword_encryption = 'scram-sha-256'\n",
            self.port,
            self.root.display()
        );
        if timescale {
            vigil.push_str("shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n");
        }
        if self.tls {
            vigil.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        // Room for bulk COPY: fewer forced checkpoints.
        vigil.push_str("max_wal_size = 4GB\ncheckpoint_timeout = 15min\nwal_compression = lz4\n");
        fs::write(self.data().join("vigil.conf"), vigil)?;
        self.chown(&[&self.data().join("vigil.conf"), &conf])
    }

    /// Every connection signs in with a SCRAM password: the superuser to any
    /// database, the application role to its own only. With TLS, TCP
    /// connections must use it.
    pub(super) fn write_hba(&self) -> Result<(), EmbeddedPostgresError> {
        let host = if self.tls { "hostssl" } else { "host" };
        let hba = format!(
            "{HBA_MARK}: every connection needs a password.\n\
             # TYPE  DATABASE  USER  ADDRESS  METHOD\n\
             local   all       {SUPERUSER}                 scram-sha-256\n\
             local   {DATABASE}     {APP_ROLE}                scram-sha-256\n\
             {host}  all       {SUPERUSER}   127.0.0.1/32  scram-sha-256\n\
             {host}  {DATABASE}     {APP_ROLE}  127.0.0.1/32  scram-sha-256\n"
        );
        let path = self.data().join("pg_hba.conf");
        fs::write(&path, hba)?;
        self.chown(&[&path])
    }

    /// The certificate and key TLS is served with (`server.crt`, `server.key`,
    /// mode 0600: PostgreSQL refuses a key others can read).
    pub(super) fn write_server_tls(&self, tls: &ServerTls) -> Result<(), EmbeddedPostgresError> {
        for (name, pem) in [("server.crt", &tls.cert_pem), ("server.key", &tls.key_pem)] {
            let path = self.data().join(name);
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path)?.write_all(pem.as_bytes())?;
            self.chown(&[&path])?;
        }
        Ok(())
    }

    /// Gives the superuser the password of `superuser.password` in an
    /// existing cluster: one made with `trust` by an earlier version, or one
    /// whose password file was removed. Set in single-user mode, so no
    /// connection (and no old password) is needed, before `pg_hba.conf` is
    /// rewritten. A cluster still running from a killed earlier run is stopped first.
    pub(super) fn set_superuser_password(&self) -> Result<(), EmbeddedPostgresError> {
        tracing::info!(dir = %self.data().display(), "setting the PostgreSQL superuser's password");
        if self.running_port().is_some() {
            super::run(
                "pg_ctl stop",
                self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "fast", "-w", "-t", "60", "stop"]),
            )?;
        }
        let verifier = crate::secret::scram_verifier(&self.superuser_password);
        let sql = format!("ALTER ROLE {SUPERUSER} PASSWORD '{verifier}';\n");
        let mut child = self
            .command("postgres")
            .args(["--single", "-D"])
            .arg(self.data())
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        // Single-user mode reports a failed statement on its output, not in its exit code.
        if !out.status.success() || text.contains("ERROR") || text.contains("FATAL") {
            return Err(EmbeddedPostgresError::Command {
                what: "setting the superuser's password (postgres --single)".into(),
                detail: text.trim().to_string(),
            });
        }
        Ok(())
    }
}
