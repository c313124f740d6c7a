//! NATS over TLS: a real nats-server that requires TLS (certificate from a
//! CA made here) and admits only the identities of an [`IdentityDir`].
//! `NatsSecurity` connects when it trusts that CA, and fails otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vigil_control::{IdentityDir, NatsSecurity};
use vigil_embedded::{free_port, EmbeddedNats};

/// A CA and a certificate for 127.0.0.1 signed by it: (CA file, cert file, key file).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let files = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server-key.pem"));
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    vigil_control::files::write_secret(&files.2, key.serialize_pem().as_bytes()).unwrap();
    files
}

#[tokio::test]
async fn tls_connects_only_with_the_servers_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityDir::open(&dir.path().join("nats-auth"), "VIGIL_EVENTS").unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let config = dir.path().join("nats.conf");
    let authorization = std::fs::read_to_string(ids.authorization_file()).unwrap();
    let tls = format!("tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n", cert.display(), key.display());
    std::fs::write(&config, format!("{tls}{authorization}")).unwrap();
    let nats = EmbeddedNats::start_configured(dir.path(), free_port().unwrap(), None, Some(&config))
        .unwrap()
        .expect("nats-server is installed by scripts/setup.sh");
    let creds = Some(ids.service_credentials());

    let trusted = NatsSecurity { credentials: creds.clone(), tls_ca: Some(ca.clone()), ..Default::default() };
    let client = trusted.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(nats.url()).await.unwrap();
    assert!(client.server_info().tls_required, "the server requires TLS");
    client.publish("vigil.events.log", "over tls".into()).await.unwrap();
    client.flush().await.unwrap();

    // Without the CA the server's certificate is not trusted.
    let untrusted = NatsSecurity { credentials: creds.clone(), require_tls: true, ..Default::default() };
    let e = untrusted.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(nats.url()).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("tls") || e.to_string().contains("certificate"), "{e}");

    // A missing CA file is named before anything is sent.
    let missing = NatsSecurity { credentials: creds, tls_ca: Some(dir.path().join("nope.pem")), ..Default::default() };
    let e = missing.apply(async_nats::ConnectOptions::new()).await.unwrap_err();
    assert!(e.to_string().contains("nope.pem"), "{e}");
}
