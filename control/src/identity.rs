//! Who may use which NATS subjects, and the `nats-server` authorization
//! that enforces it.
//!
//! Each identity is an nkey user: the server signs a nonce with its seed,
//! so no password crosses the wire. An [`IdentityDir`] keeps the Vigil
//! server's seed and every enrolled agent's public key, and writes
//! `authorization.conf` for `nats-server` (`include` it, or `vigil up`
//! does). The permissions:
//!
//! | identity | publish | subscribe |
//! |---|---|---|
//! | the Vigil server | everything | everything but `vigil.commands.>` |
//! | agent `<id>` | `vigil.events.*.<id>`, the events stream's info | `vigil.commands.agent.<id>`, `_INBOX_<id>.>` |
//!
//! and an agent may answer a request only once, and only one that was
//! delivered to it (`allow_responses`): no other agent can reply in its
//! place, read the events stream, or publish as another agent.

use std::path::{Path, PathBuf};

use crate::files::{create_private_dir, read_secret, write_public, write_secret};
use crate::ControlError;

/// The prefix of the reply subjects agent `agent_id` listens on.
pub fn agent_inbox_prefix(agent_id: &str) -> String {
    format!("_INBOX_{agent_id}")
}

/// The event subjects agent `agent_id` publishes on (`*` is the kind).
pub fn agent_event_subjects(agent_id: &str) -> String {
    format!("vigil.events.*.{agent_id}")
}

/// A directory of NATS identities: `service.nk` (the server's seed, 0600),
/// `agents/<id>.pub` (enrolled agents' public keys) and the generated
/// `authorization.conf`.
#[derive(Debug, Clone)]
pub struct IdentityDir {
    dir: PathBuf,
    stream: String,
}

impl IdentityDir {
    /// Opens `dir`, creating it and the server's identity when missing.
    /// `stream` is the events stream agents may look up.
    pub fn open(dir: &Path, stream: &str) -> Result<Self, ControlError> {
        create_private_dir(dir)?;
        let ids = IdentityDir { dir: dir.to_path_buf(), stream: stream.to_string() };
        if !ids.service_credentials().exists() {
            let kp = nkeys::KeyPair::new_user();
            let seed = kp.seed().map_err(|e| ControlError::Invalid { what: "nkey", reason: e.to_string() })?;
            write_secret(&ids.service_credentials(), format!("{seed}\n").as_bytes())?;
        }
        ids.write_authorization()?;
        Ok(ids)
    }

    /// The server's credentials file (an nkey seed, 0600).
    pub fn service_credentials(&self) -> PathBuf {
        self.dir.join("service.nk")
    }

    /// The `nats-server` configuration fragment to `include`.
    pub fn authorization_file(&self) -> PathBuf {
        self.dir.join("authorization.conf")
    }

    fn agents_dir(&self) -> PathBuf {
        self.dir.join("agents")
    }

    /// Makes a new identity for agent `agent_id` (replacing an earlier one),
    /// rewrites the authorization and returns the agent's seed: the caller
    /// hands it to the agent, and nothing here keeps it.
    pub fn enroll_agent(&self, agent_id: &str) -> Result<String, ControlError> {
        vigil_event::valid_agent_id(agent_id).map_err(|reason| ControlError::Invalid { what: "agent id", reason })?;
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().map_err(|e| ControlError::Invalid { what: "nkey", reason: e.to_string() })?;
        write_public(&self.agents_dir().join(format!("{agent_id}.pub")), format!("{}\n", kp.public_key()).as_bytes())?;
        self.write_authorization()?;
        Ok(seed)
    }

    /// Removes agent `agent_id`'s identity; it can no longer connect once
    /// the server reloads. Returns whether it was enrolled.
    pub fn revoke_agent(&self, agent_id: &str) -> Result<bool, ControlError> {
        vigil_event::valid_agent_id(agent_id).map_err(|reason| ControlError::Invalid { what: "agent id", reason })?;
        let path = self.agents_dir().join(format!("{agent_id}.pub"));
        let existed = path.exists();
        if existed {
            std::fs::remove_file(&path).map_err(|source| ControlError::Write { path, source })?;
            self.write_authorization()?;
        }
        Ok(existed)
    }

    /// Enrolled agents and their public keys, sorted by id.
    pub fn agents(&self) -> Result<Vec<(String, String)>, ControlError> {
        let dir = self.agents_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ControlError::Read { path: dir, source }),
        };
        let mut agents = Vec::new();
        for entry in entries {
            let path = entry.map_err(|source| ControlError::Read { path: dir.clone(), source })?.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".pub")) else {
                continue;
            };
            let key =
                std::fs::read_to_string(&path).map_err(|source| ControlError::Read { path: path.clone(), source })?;
            agents.push((id.to_string(), key.trim().to_string()));
        }
        agents.sort();
        Ok(agents)
    }

    fn service_public_key(&self) -> Result<String, ControlError> {
        let path = self.service_credentials();
        let seed = read_secret(&path)?;
        let kp = nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| ControlError::BadFile {
            path,
            what: "nkey seed file",
            reason: e.to_string(),
        })?;
        Ok(kp.public_key())
    }

    fn write_authorization(&self) -> Result<(), ControlError> {
        let text = authorization(&self.service_public_key()?, &self.agents()?, &self.stream);
        write_public(&self.authorization_file(), text.as_bytes())
    }
}

/// The `authorization { users = [...] }` block for the server and `agents`.
pub fn authorization(service_key: &str, agents: &[(String, String)], stream: &str) -> String {
    let mut out = String::from("# Written by Vigil (vigil up, vigil agent enroll); rewritten on every enrolment.\n");
    out.push_str("authorization {\n  users = [\n");
    out.push_str("    # the Vigil server: API, ingester, hunts\n");
    out.push_str(&format!(
        "    {{ nkey: \"{service_key}\", permissions: {{ publish: {{ allow: [\">\"] }}, subscribe: {{ allow: [\">\"], deny: [\"vigil.commands.>\"] }} }} }}\n"
    ));
    for (id, key) in agents {
        out.push_str(&format!("    # agent {id}\n"));
        out.push_str(&format!(
            "    {{ nkey: \"{key}\", permissions: {{ publish: {{ allow: [\"{events}\", \"$JS.API.STREAM.INFO.{stream}\"] }}, subscribe: {{ allow: [\"vigil.commands.agent.{id}\", \"{inbox}.>\"] }}, allow_responses: {{ max: 1, expires: \"2m\" }} }} }}\n",
            events = agent_event_subjects(id),
            inbox = agent_inbox_prefix(id),
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_adds_an_agent_and_revocation_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let ids = IdentityDir::open(&dir.path().join("nats-auth"), "VIGIL_EVENTS").unwrap();
        let seed = ids.enroll_agent("web-01").unwrap();
        let public = nkeys::KeyPair::from_seed(&seed).unwrap().public_key();
        let conf = std::fs::read_to_string(ids.authorization_file()).unwrap();
        assert!(conf.contains(&public), "{conf}");
        assert!(conf.contains("vigil.events.*.web-01"));
        assert!(conf.contains("vigil.commands.agent.web-01"));
        assert!(!conf.contains(&seed), "a seed never goes into the configuration");
        assert!(ids.enroll_agent("../etc").is_err(), "an id is one subject token and one file name");
        assert!(ids.revoke_agent("web-01").unwrap());
        assert!(!std::fs::read_to_string(ids.authorization_file()).unwrap().contains(&public));
        // Re-opening keeps the server's identity.
        let before = std::fs::read_to_string(ids.service_credentials()).unwrap();
        let again = IdentityDir::open(&dir.path().join("nats-auth"), "VIGIL_EVENTS").unwrap();
        assert_eq!(std::fs::read_to_string(again.service_credentials()).unwrap(), before);
    }
}
