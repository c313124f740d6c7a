//! Heartbeats: every interval the transport emits a `log` event saying the
//! agent is alive, its id and version (from [`crate::heartbeat`]) and its
//! [`Capabilities`] (`raw.capabilities`), so the server knows which agents
//! can block traffic or trace processes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use vigil_event::{Event, Kind, Severity};

use super::stats::TransportStats;

/// What this agent can do, as the caller (which probed the host) knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Where process events come from (e.g. `procfs`, `ebpf`, `none`).
    pub process_source: String,
    /// Where connection events come from (`ebpf`: the TCP state tracepoint
    /// with the /proc/net poll behind it; `procfs`: the poll alone).
    #[serde(default)]
    pub connection_source: String,
    /// eBPF programs can be loaded.
    pub ebpf: bool,
    /// XDP can be attached (IP blocking in the kernel).
    pub xdp: bool,
}

/// A heartbeat event for `agent_id` with `caps` in `raw.capabilities`.
pub fn heartbeat_event(agent_id: &str, caps: &Capabilities, now: DateTime<Utc>) -> Event {
    let mut e = match crate::heartbeat(Some(agent_id), now) {
        Ok(e) => e,
        Err(err) => {
            // No host name (no /proc): the same event without `host`.
            tracing::debug!("heartbeat without a host name: {err}");
            let mut e = Event::new(Kind::Log, "vigil-agent", now, format!("heartbeat:{agent_id}").as_bytes());
            e.severity = Severity::Info;
            e.message = format!("agent {agent_id} heartbeat (version {})", env!("CARGO_PKG_VERSION"));
            e.raw = json!({"agent_id": agent_id, "version": env!("CARGO_PKG_VERSION"), "type": "heartbeat"});
            e
        }
    };
    if let Some(raw) = e.raw.as_object_mut() {
        raw.insert("capabilities".into(), json!(caps));
    }
    e.message.push_str(&format!(
        "; process source {}, connection source {}, ebpf {}, xdp {}",
        if caps.process_source.is_empty() { "unknown" } else { &caps.process_source },
        if caps.connection_source.is_empty() { "unknown" } else { &caps.connection_source },
        if caps.ebpf { "yes" } else { "no" },
        if caps.xdp { "yes" } else { "no" },
    ));
    e
}

/// Emits a heartbeat at once and then every `interval` until told to stop.
pub(crate) async fn run(
    events: mpsc::Sender<Event>,
    agent_id: String,
    caps: Capabilities,
    interval: Duration,
    stats: Arc<TransportStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if events.send(heartbeat_event(&agent_id, &caps, Utc::now())).await.is_err() {
                    break;
                }
                stats.heartbeat();
            }
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_carries_capabilities() {
        let caps = Capabilities {
            process_source: "procfs".into(),
            connection_source: "procfs".into(),
            ebpf: false,
            xdp: true,
        };
        let e = heartbeat_event("agent-9", &caps, Utc::now());
        e.validate().unwrap();
        assert_eq!(e.kind, Kind::Log);
        assert_eq!(e.raw["type"], "heartbeat");
        assert_eq!(e.raw["agent_id"], "agent-9");
        assert_eq!(
            e.raw["capabilities"],
            json!({"process_source": "procfs", "connection_source": "procfs", "ebpf": false, "xdp": true})
        );
    }
}
