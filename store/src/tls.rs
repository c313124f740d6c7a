//! TLS for connections to PostgreSQL, as the connection string's `sslmode`
//! asks, with libpq's meanings:
//!
//! | sslmode       | TLS                               | certificate checked                |
//! |---------------|-----------------------------------|------------------------------------|
//! | `disable`     | never                             | –                                  |
//! | `prefer` (default) | when the server offers it    | no                                 |
//! | `require`     | always, or the connection fails   | no (as `verify-ca` with `sslrootcert=`) |
//! | `verify-ca`   | always                            | signed by a trusted CA             |
//! | `verify-full` | always                            | signed by a trusted CA, and names the host |
//!
//! The trusted CAs are the PEM file `sslrootcert=<path>`, else (or with
//! `sslrootcert=system`) the system's store. rustls with the ring provider.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and no
//! `sslrootcert`, so these two settings are taken out of the string here and
//! the rest is parsed by tokio-postgres.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// What the connection string's `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(StoreError::Tls(format!(
                "sslmode={other} is not supported; use disable, prefer, require, verify-ca or verify-full"
            ))),
        }
    }
}

/// The TLS settings taken out of a connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    mode: SslMode,
    root_cert: Option<String>,
}

/// The parts of a connection string: tokio-postgres's configuration and the
/// TLS connector its `sslmode` needs.
pub(crate) fn parse(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    let (rest, params) = split_tls_params(url)?;
    let mut cfg: tokio_postgres::Config = rest.parse().map_err(StoreError::Config)?;
    cfg.ssl_mode(match params.mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    Ok((cfg, MakeRustlsConnect::new(client_config(&params)?)))
}

/// Takes `sslmode` and `sslrootcert` out of `url` (URL or key=value form).
fn split_tls_params(url: &str) -> Result<(String, TlsParams), StoreError> {
    let mut params = TlsParams::default();
    let mut take = |key: &str, value: String| -> Result<bool, StoreError> {
        match key {
            "sslmode" => params.mode = value.parse()?,
            "sslrootcert" => params.root_cert = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), params));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| StoreError::Tls(format!("database URL parameter {key} is not UTF-8")))?;
            if !take(key, value.into_owned())? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for (key, value, raw) in key_values(url)? {
            if !take(key, value)? {
                kept.push(raw);
            }
        }
        kept.join(" ")
    };
    Ok((rest, params))
}

/// The `key = value` pairs of a libpq key/value connection string: each key,
/// its value (quotes and backslash escapes removed) and its text as written.
fn key_values(s: &str) -> Result<Vec<(&str, String, &str)>, StoreError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i == b.len() {
            return Ok(out);
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        let key = &s[start..i];
        i = skip_ws(i);
        if b.get(i) != Some(&b'=') {
            return Err(StoreError::Tls(format!("database URL: `{key}` is not followed by `=`")));
        }
        i = skip_ws(i + 1);
        let mut value = Vec::new();
        let quoted = b.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        loop {
            match b.get(i) {
                None if quoted => {
                    return Err(StoreError::Tls(format!("database URL: the value of `{key}` has no closing quote")))
                }
                None => break,
                Some(b'\'') if quoted => {
                    i += 1;
                    break;
                }
                Some(c) if !quoted && c.is_ascii_whitespace() => break,
                Some(b'\\') if i + 1 < b.len() => {
                    value.push(b[i + 1]);
                    i += 2;
                }
                Some(&c) => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        let value =
            String::from_utf8(value).map_err(|_| StoreError::Tls(format!("database URL: `{key}` is not UTF-8")))?;
        out.push((key, value, &s[start..i]));
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for `params`.
fn client_config(params: &TlsParams) -> Result<ClientConfig, StoreError> {
    let provider = provider();
    // As libpq: `require` with a root certificate file checks the chain.
    let mode = match (params.mode, &params.root_cert) {
        (SslMode::Require, Some(path)) if path != "system" => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(EncryptOnly(provider.clone())),
        SslMode::VerifyCa => {
            Arc::new(ChainOnly { roots: Arc::new(roots(params.root_cert.as_deref())?), provider: provider.clone() })
        }
        SslMode::VerifyFull => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(params.root_cert.as_deref())?), provider.clone())
                .build()
                .map_err(|e| StoreError::Tls(format!("sslmode=verify-full: {e}")))?
        }
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The CAs to trust: the PEM file `sslrootcert`, else the system's.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(StoreError::Tls(
                    "no trusted CA certificates found on this system; set sslrootcert=<PEM file> in the database URL"
                        .into(),
                ));
            }
        }
        Some(path) => {
            let unreadable = |e: rustls::pki_types::pem::Error| StoreError::Tls(format!("sslrootcert={path}: {e}"));
            for cert in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
                roots
                    .add(cert.map_err(unreadable)?)
                    .map_err(|e| StoreError::Tls(format!("sslrootcert={path}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(StoreError::Tls(format!("sslrootcert={path} holds no PEM certificate")));
            }
        }
    }
    Ok(roots)
}

/// `prefer` and `require`: the connection is encrypted, but whoever answers
/// is trusted (libpq's meaning). The handshake signatures are still checked,
/// so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the certificate must chain to a trusted CA; its names are not
/// compared with the host.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        split_tls_params(url).unwrap()
    }

    #[test]
    fn url_form_keeps_the_other_parameters() {
        let (rest, p) =
            split("postgres://u:p@db:5432/vigil?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(rest, "postgres://u:p@db:5432/vigil?application_name=x");
        assert_eq!(p, TlsParams { mode: SslMode::VerifyFull, root_cert: Some("/etc/ca.pem".into()) });
        let (rest, p) = split("postgresql://db/vigil?sslmode=disable");
        assert_eq!((rest.as_str(), p.mode), ("postgresql://db/vigil", SslMode::Disable));
        let (rest, p) = split("postgres://db/vigil");
        assert_eq!((rest.as_str(), p), ("postgres://db/vigil", TlsParams::default()));
    }

    #[test]
    fn key_value_form_handles_quotes_and_escapes() {
        let (rest, p) = split("host=db  sslrootcert = '/my certs/it\\'s.pem' password='a b' sslmode=require");
        assert_eq!(rest, "host=db password='a b'");
        assert_eq!(p, TlsParams { mode: SslMode::Require, root_cert: Some("/my certs/it's.pem".into()) });
        let cfg: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(cfg.get_password(), Some(&b"a b"[..]));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = split_tls_params("host=db sslmode=allow").unwrap_err().to_string();
        assert!(e.contains("sslmode=allow is not supported"), "{e}");
        let e = split_tls_params("host=db password='open").unwrap_err().to_string();
        assert!(e.contains("`password` has no closing quote"), "{e}");
        let e = parse("postgres://db/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem").err().unwrap().to_string();
        assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn verify_modes_become_require_for_tokio_postgres() {
        let (cfg, _) = parse("host=db sslmode=require").unwrap();
        assert_eq!(cfg.get_ssl_mode(), PgSslMode::Require);
        let (cfg, _) = parse("host=db").unwrap();
        assert_eq!(cfg.get_ssl_mode(), PgSslMode::Prefer);
        let (cfg, _) = parse("postgres://db/x?sslmode=disable").unwrap();
        assert_eq!(cfg.get_ssl_mode(), PgSslMode::Disable);
    }
}
