//! Agent commands signed by the server and checked by the agent.
//!
//! The server signs the exact bytes of a [`CommandOrder`] — id, addressee,
//! command, arguments, sender, when it was issued and until when it holds —
//! with its command key, an Ed25519 key kept as an nkey seed (0600); agents
//! know its public key (`N…`) from enrolment or configuration. On the wire a
//! request is [`SignedCommand`]: `{"order": "<base64 JSON>", "signature":
//! "<base64>"}`. Signing bytes rather than re-serialized JSON means no
//! canonical form is needed: the agent verifies what it received, then parses it.
//!
//! The agent ([`CommandVerifier`]) refuses an order that is unsigned, whose
//! signature does not verify, that is addressed to another agent, that has
//! expired or is not valid yet, that claims a validity longer than
//! [`MAX_VALIDITY_SECS`], that was issued before the agent started (a replay
//! across a restart), or whose id it has already seen.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::files::{read_secret, write_secret};
use crate::ControlError;

/// The longest validity an order may claim: a captured order is worthless after it.
pub const MAX_VALIDITY_SECS: i64 = 600;
/// Clock difference tolerated between the server and an agent.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// What the server orders one agent to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOrder {
    pub id: String,
    pub agent_id: String,
    pub command: String,
    pub args: Value,
    pub sent_by: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A request on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommand {
    /// The order's JSON bytes, base64.
    pub order: String,
    /// Ed25519 signature of those bytes, base64.
    pub signature: String,
}

/// The server's command key.
#[derive(Debug)]
pub struct CommandSigner {
    key: nkeys::KeyPair,
}

fn nkey_err(what: &'static str) -> impl FnOnce(nkeys::error::Error) -> ControlError {
    move |e| ControlError::Invalid { what, reason: e.to_string() }
}

impl CommandSigner {
    /// Loads the key from `path`, creating it (0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, ControlError> {
        if !path.exists() {
            let key = nkeys::KeyPair::new_server();
            let seed = key.seed().map_err(nkey_err("command key"))?;
            write_secret(path, format!("{seed}\n").as_bytes())?;
        }
        let seed = read_secret(path)?;
        let key = nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| ControlError::BadFile {
            path: path.to_path_buf(),
            what: "command key (an nkey seed)",
            reason: e.to_string(),
        })?;
        Ok(CommandSigner { key })
    }

    /// The public key agents verify with (`N…`).
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// The request body for `order`.
    pub fn sign(&self, order: &CommandOrder) -> Result<Vec<u8>, ControlError> {
        let bytes =
            serde_json::to_vec(order).map_err(|e| ControlError::Invalid { what: "order", reason: e.to_string() })?;
        let signature = self.key.sign(&bytes).map_err(nkey_err("signature"))?;
        let wire = SignedCommand { order: B64.encode(&bytes), signature: B64.encode(signature) };
        serde_json::to_vec(&wire).map_err(|e| ControlError::Invalid { what: "order", reason: e.to_string() })
    }
}

/// An agent's check of the orders it receives.
#[derive(Debug)]
pub struct CommandVerifier {
    key: nkeys::KeyPair,
    agent_id: String,
    started_at: DateTime<Utc>,
    /// Ids executed, with when they expire (pruned after).
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl CommandVerifier {
    /// Checks orders for `agent_id` with the server's public key (`N…`);
    /// orders issued before `started_at` are refused.
    pub fn new(public_key: &str, agent_id: &str, started_at: DateTime<Utc>) -> Result<Self, ControlError> {
        let key = nkeys::KeyPair::from_public_key(public_key.trim()).map_err(nkey_err("command public key"))?;
        Ok(CommandVerifier { key, agent_id: agent_id.to_string(), started_at, seen: Mutex::new(HashMap::new()) })
    }

    /// The order in `payload` if it may be executed now, recording its id.
    pub fn verify(&self, payload: &[u8], now: DateTime<Utc>) -> Result<CommandOrder, ControlError> {
        let order = self.authentic(payload)?;
        self.timely(&order, now)?;
        self.first_time(&order, now)?;
        Ok(order)
    }

    /// What an order claims, without checking it: for the record of a refusal.
    pub fn claimed(payload: &[u8]) -> Option<CommandOrder> {
        let wire: SignedCommand = serde_json::from_slice(payload).ok()?;
        serde_json::from_slice(&B64.decode(wire.order).ok()?).ok()
    }

    fn authentic(&self, payload: &[u8]) -> Result<CommandOrder, ControlError> {
        let wire: SignedCommand = serde_json::from_slice(payload).map_err(|_| ControlError::Unsigned)?;
        let bytes = B64.decode(&wire.order).map_err(|_| ControlError::Unsigned)?;
        let signature = B64.decode(&wire.signature).map_err(|_| ControlError::BadSignature)?;
        self.key.verify(&bytes, &signature).map_err(|_| ControlError::BadSignature)?;
        let order: CommandOrder = serde_json::from_slice(&bytes)
            .map_err(|e| ControlError::Invalid { what: "signed order", reason: e.to_string() })?;
        if order.agent_id != self.agent_id {
            return Err(ControlError::WrongAgent { addressed: order.agent_id, this: self.agent_id.clone() });
        }
        Ok(order)
    }

    fn timely(&self, order: &CommandOrder, now: DateTime<Utc>) -> Result<(), ControlError> {
        let skew = Duration::seconds(CLOCK_SKEW_SECS);
        let validity = (order.expires_at - order.issued_at).num_seconds();
        if validity > MAX_VALIDITY_SECS {
            return Err(ControlError::TooLong { seconds: validity, max: MAX_VALIDITY_SECS });
        }
        if now > order.expires_at {
            return Err(ControlError::Expired { expires_at: order.expires_at });
        }
        if order.issued_at > now + skew {
            return Err(ControlError::NotYetValid { issued_at: order.issued_at });
        }
        if order.issued_at < self.started_at - skew {
            return Err(ControlError::IssuedBeforeStart { issued_at: order.issued_at });
        }
        Ok(())
    }

    fn first_time(&self, order: &CommandOrder, now: DateTime<Utc>) -> Result<(), ControlError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, expires| *expires + Duration::seconds(CLOCK_SKEW_SECS) >= now);
        if seen.contains_key(&order.id) {
            return Err(ControlError::Replayed { id: order.id.clone() });
        }
        seen.insert(order.id.clone(), order.expires_at);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(agent: &str, issued: DateTime<Utc>, valid_secs: i64) -> CommandOrder {
        CommandOrder {
            id: uuid_like(issued),
            agent_id: agent.into(),
            command: "block_ip".into(),
            args: json!({"ip": "203.0.113.9"}),
            sent_by: "alice".into(),
            issued_at: issued,
            expires_at: issued + Duration::seconds(valid_secs),
        }
    }

    fn uuid_like(t: DateTime<Utc>) -> String {
        format!("c-{}", t.timestamp_nanos_opt().unwrap_or_default())
    }

    fn setup() -> (tempfile::TempDir, CommandSigner, CommandVerifier, DateTime<Utc>) {
        let dir = tempfile::tempdir().unwrap();
        let signer = CommandSigner::load_or_create(&dir.path().join("command.nk")).unwrap();
        let start = Utc::now();
        let verifier = CommandVerifier::new(&signer.public_key(), "web-01", start).unwrap();
        (dir, signer, verifier, start)
    }

    #[test]
    fn a_signed_order_for_this_agent_is_accepted_once() {
        let (_d, signer, verifier, start) = setup();
        let o = order("web-01", start, 60);
        let body = signer.sign(&o).unwrap();
        assert_eq!(verifier.verify(&body, start).unwrap(), o);
        assert_eq!(verifier.verify(&body, start).unwrap_err().code(), "replayed");
    }

    #[test]
    fn every_kind_of_bad_order_is_refused_with_its_reason() {
        let (dir, signer, verifier, start) = setup();
        let unsigned = serde_json::to_vec(&json!({"id": "c1", "command": "list_blocked", "sent_by": "x"})).unwrap();
        assert_eq!(verifier.verify(&unsigned, start).unwrap_err().code(), "unsigned");

        let mut wire: SignedCommand =
            serde_json::from_slice(&signer.sign(&order("web-01", start, 60)).unwrap()).unwrap();
        let mut forged = order("web-01", start, 60);
        forged.args = json!({"ip": "198.51.100.1"});
        wire.order = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(verifier.verify(&serde_json::to_vec(&wire).unwrap(), start).unwrap_err().code(), "bad_signature");

        let other = CommandSigner::load_or_create(&dir.path().join("other.nk")).unwrap();
        let e = verifier.verify(&other.sign(&order("web-01", start, 60)).unwrap(), start).unwrap_err();
        assert_eq!(e.code(), "bad_signature", "another server's key");

        let e = verifier.verify(&signer.sign(&order("db-02", start, 60)).unwrap(), start).unwrap_err();
        assert_eq!(e.code(), "wrong_agent");

        let e = verifier
            .verify(&signer.sign(&order("web-01", start, 60)).unwrap(), start + Duration::seconds(61))
            .unwrap_err();
        assert!(matches!(e, ControlError::Expired { .. }), "{e}");

        let e = verifier.verify(&signer.sign(&order("web-01", start, 3600)).unwrap(), start).unwrap_err();
        assert!(matches!(e, ControlError::TooLong { .. }), "{e}");

        let early = start - Duration::seconds(120);
        let e = verifier.verify(&signer.sign(&order("web-01", early, 300)).unwrap(), start).unwrap_err();
        assert!(matches!(e, ControlError::IssuedBeforeStart { .. }), "{e}");

        let future = start + Duration::seconds(300);
        let e = verifier.verify(&signer.sign(&order("web-01", future, 60)).unwrap(), start).unwrap_err();
        assert!(matches!(e, ControlError::NotYetValid { .. }), "{e}");
    }

    #[test]
    fn the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("command.nk");
        let a = CommandSigner::load_or_create(&path).unwrap().public_key();
        assert_eq!(CommandSigner::load_or_create(&path).unwrap().public_key(), a);
        assert!(a.starts_with('N'));
    }
}
