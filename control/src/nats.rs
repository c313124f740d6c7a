//! How a Vigil process authenticates to NATS and protects the connection.

use std::path::PathBuf;

use async_nats::ConnectOptions;

use crate::files::read_secret;
use crate::ControlError;

/// Credentials and TLS for one NATS connection, read once from the
/// process's configuration. The default is what an unauthenticated local
/// NATS needs: nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsSecurity {
    /// A NATS credentials file: a `.creds` file (user JWT and nkey seed, as
    /// `nsc` writes them) or a file holding an nkey user seed (`SU…`, as
    /// `vigil agent enroll` and `vigil up` write them). Must be mode 0600.
    pub credentials: Option<PathBuf>,
    /// A user name, with its password in `password_file` (mode 0600).
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) the server's certificate must chain to.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    pub require_tls: bool,
    /// Reply subjects this client subscribes under (an agent's own prefix,
    /// so it need not be allowed to read every `_INBOX`).
    pub inbox_prefix: Option<String>,
}

/// What a credentials file holds.
enum Credentials {
    /// A `.creds` file: handed to async-nats as it is.
    CredsFile,
    NkeySeed(String),
}

impl NatsSecurity {
    /// Whether any credential is configured.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some() || self.user.is_some()
    }

    /// Adds these credentials and TLS settings to `opts`. Fails, naming the
    /// file, when a file is missing, readable by others or not what it should be.
    pub async fn apply(&self, mut opts: ConnectOptions) -> Result<ConnectOptions, ControlError> {
        if let Some(path) = &self.credentials {
            opts = match read_credentials(path)? {
                Credentials::CredsFile => opts.credentials_file(path).await.map_err(|e| ControlError::BadFile {
                    path: path.clone(),
                    what: "NATS credentials file",
                    reason: e.to_string(),
                })?,
                Credentials::NkeySeed(seed) => opts.nkey(seed),
            };
        }
        match (&self.user, &self.password_file) {
            (Some(user), Some(file)) => {
                let password = read_secret(file)?.trim_end_matches(['\r', '\n']).to_string();
                opts = opts.user_and_password(user.clone(), password);
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ControlError::Invalid {
                    what: "NATS credentials",
                    reason: "a NATS user needs a password file, and a password file needs a user".into(),
                })
            }
            (None, None) => {}
        }
        opts = self.apply_tls(opts)?;
        if let Some(prefix) = &self.inbox_prefix {
            opts = opts.custom_inbox_prefix(prefix);
        }
        Ok(opts)
    }

    fn apply_tls(&self, mut opts: ConnectOptions) -> Result<ConnectOptions, ControlError> {
        for path in [&self.tls_ca, &self.tls_cert, &self.tls_key].into_iter().flatten() {
            if let Err(source) = std::fs::metadata(path) {
                return Err(ControlError::Read { path: path.clone(), source });
            }
        }
        if let Some(ca) = &self.tls_ca {
            opts = opts.add_root_certificates(ca.clone());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                read_secret(key)?;
                opts = opts.add_client_certificate(cert.clone(), key.clone());
            }
            (None, None) => {}
            _ => {
                return Err(ControlError::Invalid {
                    what: "NATS TLS settings",
                    reason: "a client certificate needs its key, and a key its certificate".into(),
                })
            }
        }
        if self.require_tls || self.tls_ca.is_some() || self.tls_cert.is_some() {
            opts = opts.require_tls(true);
        }
        Ok(opts)
    }
}

fn read_credentials(path: &std::path::Path) -> Result<Credentials, ControlError> {
    let text = read_secret(path)?;
    if text.contains("-----BEGIN NATS USER JWT-----") {
        return Ok(Credentials::CredsFile);
    }
    let seed = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or_default();
    if seed.starts_with("SU") {
        nkeys::KeyPair::from_seed(seed).map_err(|e| ControlError::BadFile {
            path: path.to_path_buf(),
            what: "nkey seed file",
            reason: e.to_string(),
        })?;
        return Ok(Credentials::NkeySeed(seed.to_string()));
    }
    Err(ControlError::BadFile {
        path: path.to_path_buf(),
        what: "NATS credentials file",
        reason: "expected a .creds file (a user JWT and seed) or an nkey user seed starting with SU".into(),
    })
}

/// `url` with any password replaced by `***`, for logs and messages
/// (several comma-separated URLs are each redacted).
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let shown = if userinfo.contains(':') { format!("{user}:***") } else { "***".to_string() };
            format!("{scheme}://{shown}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_hidden() {
        assert_eq!(redact_url("nats://alice:s3cret@n1:4222"), "nats://alice:***@n1:4222");
        assert_eq!(redact_url("nats://tok3n@n1:4222"), "nats://***@n1:4222");
        assert_eq!(redact_url("nats://n1:4222,tls://bob:pw@n2"), "nats://n1:4222,tls://bob:***@n2");
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[tokio::test]
    async fn credentials_files_are_checked_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        let good = dir.path().join("agent.nk");
        crate::files::write_secret(&good, seed.as_bytes()).unwrap();
        let ok = NatsSecurity { credentials: Some(good.clone()), ..Default::default() };
        ok.apply(ConnectOptions::new()).await.unwrap();

        let junk = dir.path().join("junk");
        crate::files::write_secret(&junk, b"hello").unwrap();
        let e = NatsSecurity { credentials: Some(junk), ..Default::default() }
            .apply(ConnectOptions::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nkey user seed"), "{e}");

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ok.apply(ConnectOptions::new()).await.unwrap_err();
        assert!(matches!(e, ControlError::Readable { .. }), "{e}");

        let half = NatsSecurity { user: Some("u".into()), ..Default::default() };
        assert!(half.apply(ConnectOptions::new()).await.is_err());
    }
}
