//! `/api/v1/agents/{id}/commands`: send a command to an agent over NATS
//! (request/reply on `vigil.commands.agent.<id>`) and keep the record of who
//! sent what and what the agent answered (`agent_commands`). Every order is
//! signed with the server's command key (`vigil_control::command`) and names
//! its addressee, sender and a short validity; with NATS identities
//! (`vigil_control::identity`) only the addressed agent can receive it and
//! answer.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_store::StoreError;

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Commands an agent understands.
pub const COMMANDS: [&str; 5] = ["block_ip", "unblock_ip", "list_blocked", "rescan_packages", "snapshot_now"];
/// How long the agent has to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an order holds: past it, an agent refuses it (a captured order cannot be replayed later).
const ORDER_VALIDITY_SECS: i64 = 60;
/// Commands listed per agent.
const HISTORY: i64 = 100;

/// A command for an agent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CommandBody {
    /// `block_ip`, `unblock_ip`, `list_blocked`, `rescan_packages` or `snapshot_now`.
    command: String,
    /// The command's arguments, e.g. `{"ip": "203.0.113.9"}`.
    #[serde(default)]
    args: Value,
}

/// The agent's answer to a command, as recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandReply {
    /// The command's id.
    pub id: Uuid,
    pub agent: String,
    /// The agent's `ok`, when it sent one.
    #[schema(required)]
    pub ok: Option<bool>,
    /// The agent's whole reply (free-form JSON).
    #[schema(required)]
    pub reply: Option<Value>,
    /// The agent's `error`, when it sent one.
    #[schema(required)]
    pub error: Option<String>,
}

/// The latest commands sent to an agent, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandHistory {
    pub agent: String,
    pub commands: Vec<CommandRecord>,
}

/// A command sent to an agent and what it answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandRecord {
    pub id: Uuid,
    pub command: String,
    pub args: Value,
    /// The name of the token that sent it.
    pub sent_by: String,
    pub sent_at: DateTime<Utc>,
    #[schema(required)]
    pub replied_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub ok: Option<bool>,
    #[schema(required)]
    pub reply: Option<Value>,
    #[schema(required)]
    pub error: Option<String>,
}

fn valid_agent_id(id: &str) -> Result<(), ApiError> {
    vigil_event::valid_agent_id(id).map_err(ApiError::bad_request)
}

/// `POST /api/v1/agents/{id}/commands` `{"command": "block_ip", "args": {"ip": "203.0.113.9"}}`
#[utoipa::path(post, path = "/api/v1/agents/{id}/commands", operation_id = "send_agent_command", tag = "inventory", request_body = CommandBody,
    params(("id" = String, Path, description = "The agent id")),
    responses((status = 200, description = "The agent's reply, recorded", body = CommandReply),
        (status = 400, description = "A bad agent id or an unknown command", body = ErrorBody),
        (status = 502, description = "The agent is not reachable or answered with invalid JSON (`agent_unreachable`)", body = ErrorBody),
        (status = 503, description = "No NATS", body = ErrorBody),
        (status = 504, description = "The agent did not answer in time (`agent_timeout`)", body = ErrorBody)),
    security(("token" = [])))]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent): Path<String>,
    Json(body): Json<CommandBody>,
) -> Result<(StatusCode, Json<CommandReply>), ApiError> {
    caller.require(Permission::AgentsCommand)?;
    valid_agent_id(&agent)?;
    if !COMMANDS.contains(&body.command.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("unknown command {:?}; expected one of {}", body.command, COMMANDS.join(", ")),
        ));
    }
    let link = state.nats.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server has no NATS connection (set NATS_URL)",
        )
    })?;
    let id = Uuid::new_v4();
    let args = if body.args.is_null() { json!({}) } else { body.args };
    let sent_by = caller.token.name.clone();
    let client = state.pool.get().await.map_err(StoreError::from)?;
    client
        .execute(
            "INSERT INTO agent_commands (id, agent_id, command, args, sent_by, token_id) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id, &agent, &body.command, &args, &sent_by, &caller.token.id],
        )
        .await
        .map_err(StoreError::db("recording the command"))?;
    let request = json!({"id": id, "command": body.command, "args": args, "sent_by": sent_by});
    let issued_at = Utc::now();
    let order = vigil_control::CommandOrder {
        id: id.to_string(),
        agent_id: agent.clone(),
        command: body.command.clone(),
        args: args.clone(),
        sent_by: sent_by.clone(),
        issued_at,
        expires_at: issued_at + chrono::Duration::seconds(ORDER_VALIDITY_SECS),
    };
    let signed = link.signer.sign(&order)?;
    let subject = format!("vigil.commands.agent.{agent}");
    let answer = tokio::time::timeout(REPLY_TIMEOUT, link.client.request(subject, signed.into())).await;
    let (status, ok, reply, error) = match answer {
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            None,
            None,
            Some(format!("agent {agent} did not answer within {REPLY_TIMEOUT:?}")),
        ),
        Ok(Err(e)) => (StatusCode::BAD_GATEWAY, None, None, Some(format!("agent {agent} is not reachable: {e}"))),
        Ok(Ok(msg)) => match serde_json::from_slice::<Value>(&msg.payload) {
            Ok(v) => {
                let ok = v.get("ok").and_then(Value::as_bool);
                let err = v.get("error").map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()));
                (StatusCode::OK, ok, Some(v), err)
            }
            Err(e) => {
                (StatusCode::BAD_GATEWAY, None, None, Some(format!("agent {agent} answered with invalid JSON: {e}")))
            }
        },
    };
    client
        .execute(
            "UPDATE agent_commands SET replied_at = now(), ok = $2, reply = $3, error = $4 WHERE id = $1",
            &[&id, &ok, &reply, &error],
        )
        .await
        .map_err(StoreError::db("recording the agent's reply"))?;
    let entry = crate::audit::Entry::new("agent.command")
        .target(&agent)
        .detail(json!({"id": id, "command": request["command"], "args": request["args"]}))
        .outcome(match status {
            StatusCode::OK => "ok",
            StatusCode::GATEWAY_TIMEOUT => "agent_timeout",
            _ => "agent_unreachable",
        });
    crate::audit::record(&state.pool, &caller, entry).await;
    if status != StatusCode::OK {
        let code = if status == StatusCode::GATEWAY_TIMEOUT { "agent_timeout" } else { "agent_unreachable" };
        return Err(ApiError::new(status, code, error.unwrap_or_default()));
    }
    Ok((status, Json(CommandReply { id, agent, ok, reply, error })))
}

/// `GET /api/v1/agents/{id}/commands`: the latest commands sent to an agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}/commands", operation_id = "agent_commands", tag = "inventory",
    params(("id" = String, Path, description = "The agent id")),
    responses((status = 200, description = "Commands sent to the agent: who, what, the reply, when", body = CommandHistory),
        (status = 400, description = "A bad agent id", body = ErrorBody)),
    security(("token" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent): Path<String>,
) -> Result<Json<CommandHistory>, ApiError> {
    caller.require(Permission::Inventory)?;
    valid_agent_id(&agent)?;
    let client = state.pool.get().await.map_err(StoreError::from)?;
    let rows = client
        .query(
            "SELECT id, command, args, sent_by, sent_at, replied_at, ok, reply, error
               FROM agent_commands WHERE agent_id = $1 ORDER BY sent_at DESC LIMIT $2",
            &[&agent, &HISTORY],
        )
        .await
        .map_err(StoreError::db("reading the command history"))?;
    let commands = rows
        .iter()
        .map(|r| CommandRecord {
            id: r.get(0),
            command: r.get(1),
            args: r.get(2),
            sent_by: r.get(3),
            sent_at: r.get(4),
            replied_at: r.get(5),
            ok: r.get(6),
            reply: r.get(7),
            error: r.get(8),
        })
        .collect();
    Ok(Json(CommandHistory { agent, commands }))
}
