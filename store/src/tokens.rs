//! API tokens: created with a role (and optionally an expiry), stored only as
//! a SHA-256 hash, looked up by hash on every request.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Pool, StoreError};

/// A token's identity and role (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    /// When the token stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a presented token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A token that works now.
    Valid(TokenInfo),
    /// A token that existed but expired at this time.
    Expired(DateTime<Utc>),
    /// Not a token, or a revoked one.
    Unknown,
}

/// Prefix that makes Vigil tokens recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "vgl_";

fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token that works until `expires_at` (`None`: until revoked) and
/// returns it: the only time it is ever visible.
pub async fn create(
    pool: &Pool,
    name: &str,
    role: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(TokenInfo, String), StoreError> {
    let mut secret = [0u8; 32];
    StdRng::from_os_rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", secret.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let id = Uuid::new_v4();
    pool.get()
        .await?
        .execute(
            "INSERT INTO api_tokens (id, name, role, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &name, &role, &hash(&token), &expires_at],
        )
        .await
        .map_err(StoreError::db("creating a token"))?;
    Ok((TokenInfo { id, name: name.to_string(), role: role.to_string(), expires_at }, token))
}

/// The token's identity, if it exists, is not revoked and has not expired.
pub async fn verify(pool: &Pool, token: &str) -> Result<Option<TokenInfo>, StoreError> {
    Ok(match lookup(pool, token).await? {
        Lookup::Valid(info) => Some(info),
        Lookup::Expired(_) | Lookup::Unknown => None,
    })
}

/// What `token` is now; a valid one's `last_used_at` is updated.
pub async fn lookup(pool: &Pool, token: &str) -> Result<Lookup, StoreError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(Lookup::Unknown);
    }
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE api_tokens SET last_used_at = now()
              WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              RETURNING id, name, role, expires_at",
            &[&hash(token)],
        )
        .await
        .map_err(StoreError::db("checking a token"))?;
    if let Some(r) = row {
        return Ok(Lookup::Valid(TokenInfo { id: r.get(0), name: r.get(1), role: r.get(2), expires_at: r.get(3) }));
    }
    // Only a failed lookup asks why, so the caller can say "expired".
    let expired = client
        .query_opt(
            "SELECT expires_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at <= now()",
            &[&hash(token)],
        )
        .await
        .map_err(StoreError::db("checking a token"))?;
    Ok(expired.map_or(Lookup::Unknown, |r| Lookup::Expired(r.get(0))))
}

/// Whether the token with this id still works (not revoked, not expired):
/// what a long-lived request (a live tail) checks as it goes.
pub async fn is_active(pool: &Pool, id: Uuid) -> Result<bool, StoreError> {
    let row = pool
        .get()
        .await?
        .query_opt(
            "SELECT 1 FROM api_tokens
              WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            &[&id],
        )
        .await
        .map_err(StoreError::db("checking a token"))?;
    Ok(row.is_some())
}

/// Revokes a token by id; returns whether one was revoked.
pub async fn revoke(pool: &Pool, id: Uuid) -> Result<bool, StoreError> {
    let n = pool
        .get()
        .await?
        .execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", &[&id])
        .await
        .map_err(StoreError::db("revoking a token"))?;
    Ok(n == 1)
}
