//! The HTTP clients of actions and what every outbound call shares: rustls
//! with the Mozilla roots plus `VIGIL_WEBHOOK_CA`, no redirects, no proxy
//! from the environment, a time bound on each call, error bodies read to at
//! most [`MAX_ERROR_BODY`] bytes, and the HMAC signature of webhook bodies.
//!
//! Webhooks resolve names through [`AllowResolver`], which drops every
//! address the allow-list does not permit: the check applies to the address
//! actually connected to, so DNS rebinding cannot get round it. (A URL with a
//! literal address is not resolved; [`AllowList::check_url`] covers it before
//! the call.)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use sha2::Sha256;

use crate::allow::{AllowList, Blocked};
use crate::{DeliveryConfig, HuntError};

/// Bytes of an error answer's body kept (for the server's log only).
pub const MAX_ERROR_BODY: usize = 1024;

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>` on webhook
/// deliveries whose action has a secret.
pub const SIGNATURE_HEADER: &str = "X-Vigil-Signature-256";

/// Extra trusted root certificates for https actions (`VIGIL_WEBHOOK_CA`).
#[derive(Debug, Clone)]
pub struct RootCerts(Arc<Vec<reqwest::Certificate>>);

impl RootCerts {
    /// Reads a PEM file of one or more CA certificates.
    pub fn from_file(path: &Path) -> Result<RootCerts, String> {
        let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_pem(pem: &[u8]) -> Result<RootCerts, String> {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err("no PEM certificate in it".into());
        }
        Ok(RootCerts(Arc::new(certs)))
    }
}

/// The client for webhooks (names resolved through the allow-list) and the
/// one for AWX (only ever called at `VIGIL_AWX_URL`'s origin).
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    pub webhook: reqwest::Client,
    pub awx: reqwest::Client,
}

impl Clients {
    pub fn new(cfg: &DeliveryConfig) -> Result<Clients, HuntError> {
        let build = |b: reqwest::ClientBuilder| {
            b.build().map_err(|e| HuntError::invalid("actions", "http_client", crate::actions::error_chain(&e)))
        };
        Ok(Clients {
            webhook: build(builder(cfg).dns_resolver(Arc::new(AllowResolver(cfg.webhook_allow.clone()))))?,
            awx: build(builder(cfg))?,
        })
    }
}

fn builder(cfg: &DeliveryConfig) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(Policy::none())
        .no_proxy()
        .connect_timeout(cfg.timeout)
        .timeout(cfg.timeout);
    if let Some(RootCerts(certs)) = &cfg.extra_roots {
        for c in certs.iter() {
            b = b.add_root_certificate(c.clone());
        }
    }
    b
}

/// Resolves names, then keeps only the addresses the allow-list permits for
/// that name; none left is an error ([`Blocked`]).
#[derive(Debug)]
struct AllowResolver(AllowList);

impl Resolve for AllowResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| allow.permits(&host, a.ip()));
            if ok.is_empty() {
                let ips: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                tracing::warn!(host = %host, addresses = %ips.join(", "), "webhook refused: no allowed address");
                let msg = format!("webhook host `{host}` resolves to no address VIGIL_WEBHOOK_ALLOW permits");
                return Err(Box::new(Blocked(msg)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// The allow-list's refusal inside a client error, if that is what it is.
pub(crate) fn blocked<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return Some(b);
        }
        // An io::Error's source() skips the error it wraps.
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(b) = inner.downcast_ref::<Blocked>() {
                return Some(b);
            }
        }
        cur = err.source();
    }
    None
}

/// At most `limit` bytes of a body, read chunk by chunk; the rest is never read.
pub(crate) async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as
/// [`SIGNATURE_HEADER`] carries it.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={:x}", mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
