//! Token authentication and the one permission model. Every endpoint but
//! `/health` (and the landing page) requires `Authorization: Bearer <token>`;
//! the token's [`Role`] grants [`Permission`]s, each handler requires one
//! ([`Caller::require`]), and `/api/v1/session` lists the same grants.
//!
//! Failed token checks are counted per client address, and an address past
//! its budget is refused before its token is looked up (so a flood of
//! guessed tokens never reaches the database); requests per token are
//! limited once the token is known.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::Serialize;
use vigil_store::tokens::{self, Lookup, TokenInfo};

use crate::error::ApiError;
use crate::AppState;

/// What a token may do. Higher roles include the lower ones' rights, except
/// `ingest`, which may only send events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
    Ingest,
}

impl Role {
    pub const NAMES: [&'static str; 4] = ["viewer", "analyst", "admin", "ingest"];

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "analyst" => Role::Analyst,
            "admin" => Role::Admin,
            "ingest" => Role::Ingest,
            _ => return None,
        })
    }

    /// The role's name, as tokens store it.
    pub fn name(self) -> &'static str {
        Role::NAMES[self as usize]
    }

    /// Whether a token of this role may do `p`.
    pub fn grants(self, p: Permission) -> bool {
        use Permission::*;
        let reads = matches!(p, Search | Tail | Graph | AlertsRead | HuntsRead | Inventory | ServerRead);
        match self {
            Role::Viewer => reads,
            Role::Analyst => reads || matches!(p, AlertsWrite | HuntsWrite | AgentsCommand),
            Role::Admin => true,
            Role::Ingest => p == Ingest,
        }
    }
}

/// Something a handler does that not every role may; serialized as its
/// [`name`](Permission::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Permission {
    /// Run SRQL: search, explain, fields.
    #[serde(rename = "search")]
    Search,
    /// Follow a live tail.
    #[serde(rename = "tail")]
    Tail,
    /// Query the connection graph.
    #[serde(rename = "graph")]
    Graph,
    #[serde(rename = "alerts:read")]
    AlertsRead,
    #[serde(rename = "hunts:read")]
    HuntsRead,
    /// Agents, their command history and vulnerabilities.
    #[serde(rename = "inventory")]
    Inventory,
    /// Read the server's metrics (`/metrics`) and the OpenAPI document.
    #[serde(rename = "server:read")]
    ServerRead,
    #[serde(rename = "alerts:write")]
    AlertsWrite,
    /// Create, change, run and import (Sigma) hunts.
    #[serde(rename = "hunts:write")]
    HuntsWrite,
    /// Send a command to an agent.
    #[serde(rename = "agents:command")]
    AgentsCommand,
    /// Send events.
    #[serde(rename = "ingest")]
    Ingest,
    /// Administer the server.
    #[serde(rename = "admin")]
    Admin,
}

impl Permission {
    /// Every permission, in the order `/api/v1/session` lists them.
    pub const ALL: [Permission; 12] = [
        Permission::Search,
        Permission::Tail,
        Permission::Graph,
        Permission::AlertsRead,
        Permission::HuntsRead,
        Permission::Inventory,
        Permission::ServerRead,
        Permission::AlertsWrite,
        Permission::HuntsWrite,
        Permission::AgentsCommand,
        Permission::Ingest,
        Permission::Admin,
    ];

    /// The name clients check for.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Search => "search",
            Permission::Tail => "tail",
            Permission::Graph => "graph",
            Permission::AlertsRead => "alerts:read",
            Permission::HuntsRead => "hunts:read",
            Permission::Inventory => "inventory",
            Permission::ServerRead => "server:read",
            Permission::AlertsWrite => "alerts:write",
            Permission::HuntsWrite => "hunts:write",
            Permission::AgentsCommand => "agents:command",
            Permission::Ingest => "ingest",
            Permission::Admin => "admin",
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: TokenInfo,
    pub role: Role,
}

impl Caller {
    /// Refuses the request unless the caller's role grants `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.grants(p) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("a {} token may not do this", self.role.name()),
            ))
        }
    }

    /// The permissions the caller's role grants, for `/api/v1/session`.
    pub fn permissions(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::ALL.into_iter().filter(|p| self.role.grants(*p))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header =
            parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send `Authorization: Bearer <token>`")
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the Authorization header must be `Bearer <token>`")
        })?;
        let client = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if let Some(ip) = client {
            state.auth_failures.admit(ip, Instant::now()).map_err(|wait| too_many_failures(ip, wait))?;
        }
        let failed = |e: ApiError| {
            if let Some(ip) = client {
                // Only counting: the next request from `ip` is the one refused.
                let _ = state.auth_failures.check(ip, Instant::now());
            }
            e
        };
        let info = match tokens::lookup(&state.pool, token.trim()).await.map_err(ApiError::from)? {
            Lookup::Valid(info) => info,
            Lookup::Expired(at) => {
                return Err(failed(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    format!("token expired at {}; ask an admin for a new one", at.to_rfc3339()),
                )))
            }
            Lookup::Unknown => {
                return Err(failed(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown or revoked token")))
            }
        };
        let role = Role::parse(&info.role)
            .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the token has an unknown role"))?;
        if let Err(wait) = state.rate.check(info.id, Instant::now()) {
            let secs = retry_secs(wait);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this token sent more than {} requests in a short time; retry in {secs} s", state.rate.burst()),
            );
            e.retry_after = Some(secs);
            return Err(e);
        }
        Ok(Caller { token: info, role })
    }
}

fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The answer to an address past its failed-token budget.
fn too_many_failures(ip: IpAddr, wait: Duration) -> ApiError {
    let secs = retry_secs(wait);
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests with unknown, revoked or expired tokens from {ip}; retry in {secs} s"),
    );
    e.retry_after = Some(secs);
    e
}

#[cfg(test)]
mod tests {
    use super::{Permission, Role};

    #[test]
    fn roles_and_permissions_serialize_as_their_names() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).ok(), Some(serde_json::json!(p.name())));
        }
        for r in [Role::Viewer, Role::Analyst, Role::Admin, Role::Ingest] {
            assert_eq!(serde_json::to_value(r).ok(), Some(serde_json::json!(r.name())));
        }
    }
}
