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

mod verify;

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
    Ok((cfg, MakeRustlsConnect::new(verify::client_config(params.mode, params.root_cert.as_deref())?)))
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
