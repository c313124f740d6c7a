//! `GET /api/v1/session`: who the token belongs to and what its role may do,
//! so a client (the web UI) offers only what will be allowed. The server still
//! checks every request; this only saves a user from buttons that answer 403.

use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{Caller, Permission, Role};
use crate::error::ErrorBody;

/// The calling token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// What the role may do.
    pub permissions: Vec<Permission>,
}

/// The calling token: id, name, role and permissions.
#[utoipa::path(get, path = "/api/v1/session", tag = "server",
    responses((status = 200, description = "The token's id, name, role and permissions", body = Session),
              (status = 401, description = "No, unknown or revoked token", body = ErrorBody)),
    security(("token" = [])))]
pub async fn session(caller: Caller) -> Json<Session> {
    Json(Session {
        id: caller.token.id,
        name: caller.token.name.clone(),
        role: caller.role,
        permissions: caller.permissions().collect(),
    })
}
