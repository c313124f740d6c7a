//! `GET /api/v1/session`: who the token belongs to and what its role may do,
//! so a client (the web UI) offers only what will be allowed. The server still
//! checks every request; this only saves a user from buttons that answer 403.

use axum::Json;
use serde_json::{json, Value};

use crate::auth::{Caller, Role};

/// What a role may do, in the words clients check for. Kept beside the
/// handlers' `require` lists; `api/tests/authz.rs` holds both to the matrix.
pub fn permissions(role: Role) -> &'static [&'static str] {
    // Each role's list extends the one before it.
    const ALL: [&str; 11] = [
        "search",
        "tail",
        "graph",
        "alerts:read",
        "hunts:read",
        "inventory",
        "alerts:write",
        "hunts:write",
        "agents:command",
        "ingest",
        "admin",
    ];
    match role {
        Role::Viewer => &ALL[..6],
        Role::Analyst => &ALL[..9],
        Role::Admin => &ALL,
        Role::Ingest => &["ingest"],
    }
}

/// The calling token: id, name, role and permissions.
#[utoipa::path(get, path = "/api/v1/session", tag = "server",
    responses((status = 200, description = "`id`, `name`, `role`, `permissions`", body = Object),
              (status = 401, description = "No, unknown or revoked token", body = Object)),
    security(("token" = [])))]
pub async fn session(caller: Caller) -> Json<Value> {
    Json(json!({
        "id": caller.token.id,
        "name": caller.token.name,
        "role": Role::NAMES[caller.role as usize],
        "permissions": permissions(caller.role),
    }))
}
