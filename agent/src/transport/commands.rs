//! Commands from the server: core NATS request/reply on
//! `vigil.commands.agent.<agent id>`.
//!
//! A request is an order signed by the server (`vigil_control::command`:
//! `{"order", "signature"}` over `{"id", "agent_id", "command", "args",
//! "sent_by", "issued_at", "expires_at"}`), admitted by the [`Gate`]; the reply is
//! `{"id", "ok": true, "result": …}` or `{"id", "ok": false, "error":
//! "<message>", "code": "<code>"}`. Requests are parsed and their arguments
//! validated here ([`parse_request`]), so every [`CommandHandler`] receives a
//! typed [`Action`]. [`AgentCommands`] is the stock handler: it drives a
//! [`Blocklist`] for `block_ip` / `unblock_ip` / `list_blocked` and hands the
//! rest to an optional fallback (e.g. a [`ChannelHandler`] read by the
//! collectors). Every request, refused or executed, is also published as a
//! `log` event with `raw.type = "command"` naming who sent it and the outcome,
//! so the server keeps a record of who ordered what.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use vigil_event::{Event, Kind, Severity};

use super::admit::Gate;
use super::blocklist::Blocklist;
use super::stats::TransportStats;

/// The subject an agent takes commands on.
pub fn command_subject(agent_id: &str) -> String {
    format!("vigil.commands.agent.{agent_id}")
}

/// Command names this agent understands.
pub const COMMANDS: [&str; 5] = ["block_ip", "unblock_ip", "rescan_packages", "snapshot_now", "list_blocked"];

/// A validated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    BlockIp(IpAddr),
    UnblockIp(IpAddr),
    RescanPackages,
    SnapshotNow,
    ListBlocked,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::BlockIp(_) => "block_ip",
            Action::UnblockIp(_) => "unblock_ip",
            Action::RescanPackages => "rescan_packages",
            Action::SnapshotNow => "snapshot_now",
            Action::ListBlocked => "list_blocked",
        }
    }
}

/// One request, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The requester's id for this command, echoed in the reply.
    pub id: String,
    pub action: Action,
    /// The arguments as sent (already validated into `action`; kept for handlers wanting extras).
    pub args: Value,
    /// Who sent it (a user or service name), for the record.
    pub sent_by: String,
}

/// Why a command was refused or failed; `code()` is the machine-readable reply code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(
        "unknown command {0:?} (expected one of block_ip, unblock_ip, rescan_packages, snapshot_now, list_blocked)"
    )]
    UnknownCommand(String),
    #[error("invalid argument `{arg}`: {reason}")]
    InvalidArgument { arg: &'static str, reason: String },
    #[error("command {0} is not supported by this agent")]
    Unsupported(&'static str),
    #[error("command failed: {0}")]
    Failed(String),
    #[error("command did not finish within {0:?}")]
    TimedOut(Duration),
    /// Refused before parsing: unsigned, forged, expired, replayed, addressed elsewhere.
    #[error("refused: {reason}")]
    Refused { code: &'static str, reason: String },
}

impl CommandError {
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::BadRequest(_) => "bad_request",
            CommandError::UnknownCommand(_) => "unknown_command",
            CommandError::InvalidArgument { .. } => "invalid_argument",
            CommandError::Unsupported(_) => "unsupported",
            CommandError::Failed(_) => "failed",
            CommandError::TimedOut(_) => "timed_out",
            CommandError::Refused { code, .. } => code,
        }
    }
}

/// The reply to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Reply {
    pub fn ok(id: impl Into<String>, result: Value) -> Self {
        Reply { id: id.into(), ok: true, result: Some(result), error: None, code: None }
    }

    pub fn err(id: impl Into<String>, e: &CommandError) -> Self {
        Reply { id: id.into(), ok: false, result: None, error: Some(e.to_string()), code: Some(e.code().to_string()) }
    }
}

/// What is known of a request (all of it once parsed, some of it when refused), for its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestInfo {
    pub id: String,
    pub command: String,
    pub sent_by: String,
    pub args: Value,
}

/// A request that could not become a [`Command`], with what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub request: RequestInfo,
    pub error: CommandError,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    command: Option<Value>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    sent_by: Option<Value>,
}

fn text(v: &Option<Value>) -> String {
    v.as_ref().and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Parses and validates one request body.
pub fn parse_request(payload: &[u8]) -> Result<Command, Box<Refused>> {
    let wire: Wire = serde_json::from_slice(payload).map_err(|e| {
        Box::new(Refused {
            request: RequestInfo::default(),
            error: CommandError::BadRequest(format!("the request is not a JSON object: {e}")),
        })
    })?;
    let (id, command, sent_by) = (text(&wire.id), text(&wire.command), text(&wire.sent_by));
    let args = wire.args.clone().unwrap_or_else(|| json!({}));
    let refuse = |error| {
        let request =
            RequestInfo { id: id.clone(), command: command.clone(), sent_by: sent_by.clone(), args: args.clone() };
        Box::new(Refused { request, error })
    };
    let bad = |what: &str| refuse(CommandError::BadRequest(what.to_string()));
    match &wire.id {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => return Err(bad("field `id` must be a non-empty string")),
    }
    match &wire.sent_by {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => return Err(bad("field `sent_by` must be a non-empty string naming the sender")),
    }
    if !matches!(&wire.command, Some(Value::String(_))) {
        return Err(bad("field `command` must be a string"));
    }
    if !args.is_object() {
        return Err(bad("field `args` must be an object"));
    }
    let action = match command.as_str() {
        "block_ip" => Action::BlockIp(blockable(ip_arg(&args).map_err(refuse)?).map_err(refuse)?),
        "unblock_ip" => Action::UnblockIp(ip_arg(&args).map_err(refuse)?),
        "rescan_packages" => Action::RescanPackages,
        "snapshot_now" => Action::SnapshotNow,
        "list_blocked" => Action::ListBlocked,
        other => return Err(refuse(CommandError::UnknownCommand(other.to_string()))),
    };
    Ok(Command { id, action, args, sent_by })
}

fn ip_arg(args: &Value) -> Result<IpAddr, CommandError> {
    let invalid = |reason: String| CommandError::InvalidArgument { arg: "ip", reason };
    match args.get("ip") {
        None => Err(invalid("required (an IPv4 or IPv6 address)".into())),
        Some(Value::String(s)) => {
            s.trim().parse().map_err(|_| invalid(format!("{s:?} is not an IPv4 or IPv6 address")))
        }
        Some(other) => Err(invalid(format!("must be a string, got {other}"))),
    }
}

/// Refuses addresses whose blocking would cut the host off from itself or from nothing.
fn blockable(ip: IpAddr) -> Result<IpAddr, CommandError> {
    let reason = if ip.is_unspecified() {
        Some("the unspecified address cannot be blocked")
    } else if ip.is_loopback() {
        Some("loopback addresses cannot be blocked")
    } else if ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        Some("multicast and broadcast addresses cannot be blocked")
    } else {
        None
    };
    match reason {
        Some(r) => Err(CommandError::InvalidArgument { arg: "ip", reason: format!("{ip}: {r}") }),
        None => Ok(ip),
    }
}

/// What a handler returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, CommandError>> + Send + 'a>>;

/// Executes validated commands. Object-safe (a boxed future instead of an
/// `async fn`), so the transport holds an `Arc<dyn CommandHandler>`.
pub trait CommandHandler: Send + Sync {
    fn handle(&self, cmd: Command) -> HandlerFuture<'_>;
}

/// The stock handler: blocklist commands here, the rest to `fallback`.
#[derive(Clone)]
pub struct AgentCommands {
    blocklist: Arc<dyn Blocklist>,
    fallback: Option<Arc<dyn CommandHandler>>,
}

impl fmt::Debug for AgentCommands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCommands")
            .field("blocklist", &self.blocklist.backend())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl AgentCommands {
    pub fn new(blocklist: Arc<dyn Blocklist>) -> Self {
        AgentCommands { blocklist, fallback: None }
    }

    /// Where `rescan_packages` and `snapshot_now` go (without one they answer `unsupported`).
    pub fn with_fallback(mut self, fallback: Arc<dyn CommandHandler>) -> Self {
        self.fallback = Some(fallback);
        self
    }
}

impl CommandHandler for AgentCommands {
    fn handle(&self, cmd: Command) -> HandlerFuture<'_> {
        Box::pin(async move {
            let failed = |e: super::blocklist::BlocklistError| CommandError::Failed(e.to_string());
            let backend = self.blocklist.backend();
            match cmd.action {
                Action::BlockIp(ip) => {
                    let changed = self.blocklist.block(ip).map_err(failed)?;
                    Ok(json!({"ip": ip, "blocked": true, "changed": changed, "backend": backend}))
                }
                Action::UnblockIp(ip) => {
                    let changed = self.blocklist.unblock(ip).map_err(failed)?;
                    Ok(json!({"ip": ip, "blocked": false, "changed": changed, "backend": backend}))
                }
                Action::ListBlocked => {
                    let list = self.blocklist.list().map_err(failed)?;
                    let mut answer = json!({"count": list.len(), "blocked": list, "backend": backend});
                    // Packets dropped per address, where the backend counts them (XDP).
                    if let Some(drops) = self.blocklist.drop_counts().map_err(failed)? {
                        let drops: serde_json::Map<String, Value> =
                            drops.into_iter().map(|(ip, n)| (ip.to_string(), json!(n))).collect();
                        answer["drops"] = Value::Object(drops);
                    }
                    Ok(answer)
                }
                Action::RescanPackages | Action::SnapshotNow => match &self.fallback {
                    Some(f) => f.handle(cmd).await,
                    None => Err(CommandError::Unsupported(cmd.action.name())),
                },
            }
        })
    }
}

/// A command and where its outcome goes, as a [`ChannelHandler`] delivers it.
pub type CommandRequest = (Command, oneshot::Sender<Result<Value, CommandError>>);

/// A handler that forwards commands over a channel to whoever executes them
/// (e.g. the collectors, for `rescan_packages` and `snapshot_now`).
#[derive(Debug, Clone)]
pub struct ChannelHandler {
    tx: mpsc::Sender<CommandRequest>,
}

impl ChannelHandler {
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<CommandRequest>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (ChannelHandler { tx }, rx)
    }
}

impl CommandHandler for ChannelHandler {
    fn handle(&self, cmd: Command) -> HandlerFuture<'_> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.tx
                .send((cmd, reply))
                .await
                .map_err(|_| CommandError::Failed("nothing executes this command any more".into()))?;
            answer.await.map_err(|_| CommandError::Failed("the command was dropped without an answer".into()))?
        })
    }
}

/// The record of one request, published as a `log` event.
pub fn command_event(
    agent_id: &str,
    host: Option<String>,
    request: &RequestInfo,
    reply: &Reply,
    now: DateTime<Utc>,
) -> Event {
    let identity = format!("command:{agent_id}:{}:{}", reply.id, now.timestamp_nanos_opt().unwrap_or_default());
    let mut e = Event::new(Kind::Log, "vigil-agent", now, identity.as_bytes());
    e.host = host;
    e.severity = if reply.ok { Severity::Info } else { Severity::Low };
    e.status_id = Some(if reply.ok { 1 } else { 2 });
    e.user = (!request.sent_by.is_empty()).then(|| request.sent_by.to_string());
    let command = if request.command.is_empty() { "?" } else { request.command.as_str() };
    let sender = if request.sent_by.is_empty() { "an unnamed sender" } else { request.sent_by.as_str() };
    e.message = match &reply.error {
        None => format!("agent {agent_id} executed {command} from {sender}"),
        Some(err) => format!("agent {agent_id} refused {command} from {sender}: {err}"),
    };
    let args = if request.args.to_string().len() > 4096 { json!({"truncated": true}) } else { request.args.clone() };
    let mut raw = json!({
        "type": "command",
        "agent_id": agent_id,
        "command_id": reply.id,
        "command": request.command,
        "args": args,
        "sent_by": request.sent_by,
        "ok": reply.ok,
    });
    if let Some(obj) = raw.as_object_mut() {
        if let Some(r) = &reply.result {
            obj.insert("result".into(), r.clone());
        }
        if let Some(err) = &reply.error {
            obj.insert("error".into(), json!(err));
            obj.insert("code".into(), json!(reply.code));
        }
    }
    e.raw = raw;
    e
}

/// Admits (through `gate`), executes (within `timeout`) and answers one request body.
pub async fn execute(
    gate: &Gate,
    handler: &dyn CommandHandler,
    payload: &[u8],
    timeout: Duration,
) -> (Reply, RequestInfo) {
    match gate.admit(payload).await {
        Err(refused) => (Reply::err(refused.request.id.clone(), &refused.error), refused.request),
        Ok(cmd) => {
            let record = RequestInfo {
                id: cmd.id.clone(),
                command: cmd.action.name().to_string(),
                sent_by: cmd.sent_by.clone(),
                args: cmd.args.clone(),
            };
            let id = cmd.id.clone();
            let reply = match tokio::time::timeout(timeout, handler.handle(cmd)).await {
                Ok(Ok(v)) => Reply::ok(id, v),
                Ok(Err(e)) => Reply::err(id, &e),
                Err(_) => Reply::err(id, &CommandError::TimedOut(timeout)),
            };
            (reply, record)
        }
    }
}

/// What the command loop needs.
pub(crate) struct CommandLoop {
    pub client: async_nats::Client,
    pub subscriber: async_nats::Subscriber,
    pub handler: Arc<dyn CommandHandler>,
    pub gate: Gate,
    pub events: mpsc::Sender<Event>,
    pub stats: Arc<TransportStats>,
    pub agent_id: String,
    pub timeout: Duration,
    pub stop: watch::Receiver<bool>,
}

impl CommandLoop {
    /// Answers requests one at a time until told to stop.
    pub(crate) async fn run(mut self) {
        let host = crate::hostname().ok();
        loop {
            let msg = tokio::select! {
                m = self.subscriber.next() => m,
                _ = self.stop.changed() => break,
            };
            let Some(msg) = msg else { break };
            let (reply, record) = execute(&self.gate, self.handler.as_ref(), &msg.payload, self.timeout).await;
            self.stats.command(reply.ok);
            match &reply.error {
                None => {
                    tracing::info!(command = %record.command, id = %reply.id, sent_by = %record.sent_by, "command executed")
                }
                Some(e) => {
                    tracing::warn!(command = %record.command, id = %reply.id, sent_by = %record.sent_by, "command refused: {e}")
                }
            }
            if let Some(to) = msg.reply {
                match serde_json::to_vec(&reply) {
                    Ok(body) => {
                        if let Err(e) = self.client.publish(to, body.into()).await {
                            tracing::warn!("cannot send a command reply: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("cannot encode a command reply: {e}"),
                }
            }
            let event = command_event(&self.agent_id, host.clone(), &record, &reply, Utc::now());
            if self.events.send(event).await.is_err() {
                tracing::warn!("transport closed: the record of command {} is lost", reply.id);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn req(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn parses_and_validates() {
        let c = parse_request(&req(
            json!({"id": "c1", "command": "block_ip", "args": {"ip": "203.0.113.9"}, "sent_by": "alice"}),
        ))
        .unwrap();
        assert_eq!(c.action, Action::BlockIp("203.0.113.9".parse().unwrap()));
        let c = parse_request(&req(json!({"id": "c2", "command": "list_blocked", "sent_by": "bob"}))).unwrap();
        assert_eq!(c.action, Action::ListBlocked);

        let e = parse_request(&req(
            json!({"id": "c3", "command": "block_ip", "args": {"ip": "999.1.1.1"}, "sent_by": "a"}),
        ))
        .unwrap_err();
        assert_eq!(e.error.code(), "invalid_argument");
        assert_eq!(e.request.id, "c3");
        let e = parse_request(&req(
            json!({"id": "c4", "command": "block_ip", "args": {"ip": "127.0.0.1"}, "sent_by": "a"}),
        ))
        .unwrap_err();
        assert!(e.error.to_string().contains("loopback"), "{}", e.error);
        let e =
            parse_request(&req(json!({"id": "c5", "command": "block_ip", "args": {}, "sent_by": "a"}))).unwrap_err();
        assert!(e.error.to_string().contains("required"));
        let e = parse_request(&req(json!({"id": "c6", "command": "reboot", "sent_by": "a"}))).unwrap_err();
        assert_eq!(e.error, CommandError::UnknownCommand("reboot".into()));
        let e = parse_request(&req(json!({"command": "list_blocked", "sent_by": "a"}))).unwrap_err();
        assert_eq!(e.error.code(), "bad_request");
        let e = parse_request(&req(json!({"id": "c7", "command": "list_blocked"}))).unwrap_err();
        assert!(e.error.to_string().contains("sent_by"));
        let e = parse_request(b"not json").unwrap_err();
        assert_eq!(e.error.code(), "bad_request");
    }

    #[test]
    fn replies_have_the_documented_shape() {
        let ok = serde_json::to_value(Reply::ok("c1", json!({"x": 1}))).unwrap();
        assert_eq!(ok, json!({"id": "c1", "ok": true, "result": {"x": 1}}));
        let err = serde_json::to_value(Reply::err("c2", &CommandError::UnknownCommand("x".into()))).unwrap();
        assert_eq!(err["ok"], false);
        assert_eq!(err["code"], "unknown_command");
        assert!(err["error"].as_str().unwrap().contains("unknown command"));
    }

    #[test]
    fn command_events_name_the_sender_and_outcome() {
        let rec = RequestInfo {
            id: "c1".into(),
            command: "block_ip".into(),
            sent_by: "alice".into(),
            args: json!({"ip": "203.0.113.9"}),
        };
        let e = command_event("a1", None, &rec, &Reply::ok("c1", json!({"changed": true})), Utc::now());
        e.validate().unwrap();
        assert_eq!(e.kind, Kind::Log);
        assert_eq!(e.raw["type"], "command");
        assert_eq!(e.raw["sent_by"], "alice");
        assert_eq!(e.raw["result"]["changed"], true);
        assert_eq!(e.user.as_deref(), Some("alice"));
    }
}
