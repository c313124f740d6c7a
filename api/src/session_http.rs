//! `GET /api/v1/session`: who the token belongs to and what its role may do,
//! so a client (the web UI) offers only what will be allowed. The server still
//! checks every request; this only saves a user from buttons that answer 403.

use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;

/// The calling token: id, name, role and permissions.
#[utoipa::path(get, path = "/api/v1/session", tag = "server",
    responses((status = 200, description = "`id`, `name`, `role`, `permissions`", body = Object),
              (status = 401, description = "No, unknown or revoked token", body = Object)),
    security(("token" = [])))]
pub async fn session(caller: Caller) -> Json<Value> {
    Json(json!({
        "id": caller.token.id,
        "name": caller.token.name,
        "role": caller.role.name(),
        "permissions": caller.permissions().map(|p| p.name()).collect::<Vec<_>>(),
    }))
}
