//! The host agent's library: what it knows about its host and the events it
//! emits. See the `vigil-agent` binary.
//!
//! - [`config`]: the agent's settings (file + environment) and its id.
//! - [`collect`]: process, connection, metric and package collectors.
//! - [`state`]: the last known state and the deltas against it.
//! - [`transport`]: publishing to NATS JetStream, the on-disk spool, commands.

pub mod collect;
pub mod config;
pub mod state;
pub mod transport;

use chrono::{DateTime, Utc};
use serde_json::json;
use vigil_event::{Event, Kind, Severity};

/// The host name from the kernel.
pub fn hostname() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")?.trim().to_string())
}

/// A heartbeat: the agent is alive, with its id and version.
pub fn heartbeat(id: Option<&str>, now: DateTime<Utc>) -> std::io::Result<Event> {
    let host = hostname()?;
    let id = id.map(str::to_string).unwrap_or_else(|| host.clone());
    let mut e = Event::new(Kind::Log, "vigil-agent", now, format!("heartbeat:{id}").as_bytes());
    e.host = Some(host);
    e.severity = Severity::Info;
    e.message = format!("agent {id} heartbeat (version {})", env!("CARGO_PKG_VERSION"));
    e.raw = json!({"agent_id": id, "version": env!("CARGO_PKG_VERSION"), "type": "heartbeat"});
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_a_valid_event_naming_the_agent() {
        let e = heartbeat(Some("agent-7"), Utc::now()).unwrap();
        e.validate().unwrap();
        assert_eq!(e.raw["agent_id"], "agent-7");
        assert_eq!(e.host.as_deref(), Some(hostname().unwrap().as_str()));
    }
}
