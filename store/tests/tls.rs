//! `sslmode` in the database URL, against a private PostgreSQL cluster that
//! serves TLS with a certificate made here and refuses TCP without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use vigil_embedded::{EmbeddedPostgres, Options, ServerTls};
use vigil_store::{connect, connect_one, StoreError};

/// A CA (its PEM) and, when `server_names` is given, a certificate it signed
/// for those names and its key.
struct Ca {
    pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), cert, key }
}

fn server_cert(ca: &Ca, names: &[&str]) -> ServerTls {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    ServerTls { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// Removes the scratch directory (the cluster inside belongs to `postgres`).
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the connection `url` opens is encrypted, as the server sees it.
async fn ssl_in_use(url: &str) -> Result<bool, StoreError> {
    let client = connect_one(url).await?;
    Ok(client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0))
}

fn key_value(pg: &EmbeddedPostgres, host: &str, extra: &str) -> String {
    let password = std::fs::read_to_string(pg.superuser_password_file()).unwrap();
    format!("host={host} port={} user=postgres password={} dbname=postgres {extra}", pg.port(), password.trim())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn sslmode_is_honoured() {
    let dir = std::env::temp_dir().join(format!("vigil-store-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(dir.clone());
    let trusted = ca("Vigil test CA");
    let other = ca("Some other CA");
    // The certificate names `localhost` only: 127.0.0.1 is not in it.
    let tls = server_cert(&trusted, &["localhost"]);
    let options = Options { tls: Some(tls), ..Options::default() };
    let data = dir.clone();
    let mut pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start_with_options(&data, &options))
        .await
        .unwrap()
        .unwrap();
    let ca_file = write(&dir, "ca.pem", &trusted.pem);
    let other_file = write(&dir, "other.pem", &other.pem);

    // require: encrypted, the certificate not checked (libpq's meaning); the pool too.
    let url = format!("{}?sslmode=require", pg.url("postgres"));
    assert!(ssl_in_use(&url).await.unwrap(), "sslmode=require encrypts");
    let pool = connect(&url, 1).unwrap();
    let ssl: bool = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the pool honours sslmode=require");
    // No sslmode: prefer, and this server offers TLS.
    assert!(ssl_in_use(&pg.url("postgres")).await.unwrap(), "the default (prefer) uses TLS when offered");

    // verify-full: the CA signed it and it names the host.
    let full = key_value(&pg, "localhost", &format!("sslmode=verify-full sslrootcert={ca_file}"));
    assert!(ssl_in_use(&full).await.unwrap(), "verify-full against the right CA and name");
    // verify-ca checks the chain only; verify-full also the name.
    let by_ip = key_value(&pg, "127.0.0.1", &format!("sslmode=verify-ca sslrootcert={ca_file}"));
    assert!(ssl_in_use(&by_ip).await.unwrap(), "verify-ca does not compare names");
    let wrong_name = key_value(&pg, "127.0.0.1", &format!("sslmode=verify-full sslrootcert={ca_file}"));
    let e = ssl_in_use(&wrong_name).await.unwrap_err().to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "verify-full refuses a certificate for another name: {e}");
    // Another CA: refused by verify-full and verify-ca, and by require with
    // that sslrootcert (libpq: a root file makes require check the chain).
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = key_value(&pg, "localhost", &format!("sslmode={mode} sslrootcert={other_file}"));
        let e = ssl_in_use(&url).await.unwrap_err().to_string();
        assert!(e.contains("TLS") && e.contains("certificate"), "{mode} with the wrong CA is refused: {e}");
    }

    // disable: the server accepts TCP only with TLS.
    let e = ssl_in_use(&format!("{}?sslmode=disable", pg.url("postgres"))).await.unwrap_err().to_string();
    assert!(e.contains("no encryption"), "a hostssl-only server refuses sslmode=disable: {e}");

    tokio::task::spawn_blocking(move || pg.stop()).await.unwrap().unwrap();
}
