//! Which requests become commands. A request must carry an order signed
//! with the server's command key, addressed to this agent, still valid and
//! not seen before ([`vigil_control::CommandVerifier`]); its arguments must
//! be valid ([`parse_request`]); and a `block_ip` must not name an address
//! the [`NeverBlock`] set protects. Anything else is refused with a reason
//! (and recorded), and changes nothing.

use chrono::Utc;
use serde_json::json;
use vigil_control::{CommandOrder, CommandVerifier};

use super::commands::{parse_request, Action, Command, CommandError, Refused, RequestInfo};
use super::never_block::NeverBlock;

/// The checks between a request and its handler.
#[derive(Debug)]
pub struct Gate {
    verifier: Option<CommandVerifier>,
    never_block: NeverBlock,
}

impl Gate {
    /// `verifier` is `None` when the agent knows no command key: it then refuses every command.
    pub fn new(verifier: Option<CommandVerifier>, never_block: NeverBlock) -> Self {
        Gate { verifier, never_block }
    }

    /// The command in `payload`, or why it is refused.
    pub async fn admit(&self, payload: &[u8]) -> Result<Command, Box<Refused>> {
        let Some(verifier) = &self.verifier else {
            return Err(refused(payload, CommandError::Refused {
                code: "no_command_key",
                reason: "this agent has no command_key (the server's command public key) configured, so it takes no commands".into(),
            }));
        };
        let order = verifier
            .verify(payload, Utc::now())
            .map_err(|e| refused(payload, CommandError::Refused { code: e.code(), reason: e.to_string() }))?;
        let cmd = parse_request(&order_request(&order))?;
        if let Action::BlockIp(ip) = cmd.action {
            if let Some(reason) = self.never_block.refusal(ip).await {
                let request = info(&cmd);
                return Err(Box::new(Refused { request, error: CommandError::InvalidArgument { arg: "ip", reason } }));
            }
        }
        Ok(cmd)
    }
}

fn order_request(order: &CommandOrder) -> Vec<u8> {
    json!({"id": order.id, "command": order.command, "args": order.args, "sent_by": order.sent_by})
        .to_string()
        .into_bytes()
}

fn info(cmd: &Command) -> RequestInfo {
    RequestInfo {
        id: cmd.id.clone(),
        command: cmd.action.name().to_string(),
        sent_by: cmd.sent_by.clone(),
        args: cmd.args.clone(),
    }
}

/// A refusal recording what the request claimed (unverified: for the record only).
fn refused(payload: &[u8], error: CommandError) -> Box<Refused> {
    let request = match CommandVerifier::claimed(payload) {
        Some(o) => RequestInfo { id: o.id, command: o.command, sent_by: o.sent_by, args: o.args },
        // Unsigned: what the plain request names, read as any request is.
        None => match parse_request(payload) {
            Ok(cmd) => info(&cmd),
            Err(refused) => refused.request,
        },
    };
    Box::new(Refused { request, error })
}
