//! API tokens: created with a role, stored only as a SHA-256 hash, looked up
//! by hash on every request.

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
}

/// Prefix that makes Vigil tokens recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "vgl_";

fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token and returns it: the only time it is ever visible.
pub async fn create(pool: &Pool, name: &str, role: &str) -> Result<(TokenInfo, String), StoreError> {
    let mut secret = [0u8; 32];
    StdRng::from_os_rng().fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", secret.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let id = Uuid::new_v4();
    pool.get()
        .await?
        .execute(
            "INSERT INTO api_tokens (id, name, role, token_hash) VALUES ($1, $2, $3, $4)",
            &[&id, &name, &role, &hash(&token)],
        )
        .await
        .map_err(StoreError::db("creating a token"))?;
    Ok((TokenInfo { id, name: name.to_string(), role: role.to_string() }, token))
}

/// The token's identity, if it exists and is not revoked.
pub async fn verify(pool: &Pool, token: &str) -> Result<Option<TokenInfo>, StoreError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = pool
        .get()
        .await?
        .query_opt(
            "UPDATE api_tokens SET last_used_at = now()
              WHERE token_hash = $1 AND revoked_at IS NULL
              RETURNING id, name, role",
            &[&hash(token)],
        )
        .await
        .map_err(StoreError::db("checking a token"))?;
    Ok(row.map(|r| TokenInfo { id: r.get(0), name: r.get(1), role: r.get(2) }))
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
