//! The event model shared by the agent, the ingest pipeline and the store.
//!
//! An [`Event`] is one normalised, OCSF-aligned record: when it happened, where
//! (host, endpoints), who and what (user, process), how bad (severity), a human
//! message, and the original record kept verbatim in [`Event::raw`]. The JSON
//! form of this struct is the wire contract on `vigil.events.<kind>` subjects;
//! [`SCHEMA_VERSION`] names its version.

mod kind;
mod severity;
mod validate;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use kind::Kind;
pub use severity::Severity;
pub use validate::ValidationError;

/// Version of the event contract this build writes and accepts.
pub const SCHEMA_VERSION: u16 = 1;

/// Tenant used when a producer names none.
pub const DEFAULT_TENANT: &str = "default";

/// Namespace for deterministic event ids derived from content, so a record
/// that is re-sent or re-imported gets the same id and is stored once.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_2f4e_9b3d_4c55_8e0f_7d21_a9b8_c3e4);

/// One normalised event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default = "current_schema_version")]
    pub schema_version: u16,
    pub id: Uuid,
    pub time: DateTime<Utc>,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    pub kind: Kind,
    /// Product that produced the record (`vigil-agent`, `zeek`, `sshd`, …).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// OCSF class; defaults to the kind's class when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_uid: Option<i32>,
    /// OCSF activity within the class (e.g. 1 = launch, 2 = terminate for processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<i32>,
    #[serde(default)]
    pub severity: Severity,
    /// OCSF status: 1 success, 2 failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_id: Option<i16>,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Endpoint>,
    /// Transport or application protocol (`tcp`, `udp`, `ssh`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The original record, verbatim where it was JSON, else `{"line": …}`.
    #[serde(default)]
    pub raw: serde_json::Value,
}

/// The process an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Executable path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
}

/// One side of a network conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Event {
    /// A new event of `kind` from `source` at `time`, with an id derived from
    /// `source`, `time` and the identity bytes the caller supplies (typically
    /// the original record), so duplicates of one record collapse to one id.
    pub fn new(kind: Kind, source: impl Into<String>, time: DateTime<Utc>, identity: &[u8]) -> Self {
        let source = source.into();
        let id = derive_id(&source, time, identity);
        Event {
            schema_version: SCHEMA_VERSION,
            id,
            time,
            tenant: DEFAULT_TENANT.to_string(),
            kind,
            source,
            host: None,
            class_uid: None,
            activity_id: None,
            severity: Severity::default(),
            status_id: None,
            message: String::new(),
            user: None,
            process: None,
            src: None,
            dst: None,
            protocol: None,
            raw: serde_json::Value::Null,
        }
    }

    /// The OCSF class: the explicit one, else the kind's.
    pub fn class_uid(&self) -> i32 {
        self.class_uid.unwrap_or_else(|| self.kind.class_uid())
    }

    /// The OCSF category, derived from the class (`class_uid / 1000`).
    pub fn category_uid(&self) -> i32 {
        self.class_uid() / 1000
    }
}

/// Checks an agent id: 1-128 ASCII letters, digits, `-` or `_`. The id is
/// one token of the agent's NATS command subject (`vigil.commands.agent.<id>`),
/// so dots, wildcards and spaces are refused; the agent and the server share
/// this one rule.
pub fn valid_agent_id(id: &str) -> Result<(), String> {
    let ok =
        !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!("agent id {id:?} must be 1-128 letters, digits, '-' or '_' (it is one NATS subject token)"))
    }
}

/// A deterministic event id from where and when a record came from and its
/// bytes: a UUIDv8 whose first 48 bits are the event's Unix time in
/// milliseconds (like UUIDv7) and whose other bits come from a UUIDv5 hash
/// of the source, time and bytes. The same record always gets the same id,
/// and ids grow with time, so the `(event_id, time)` index is appended to
/// rather than written all over.
pub fn derive_id(source: &str, time: DateTime<Utc>, identity: &[u8]) -> Uuid {
    let mut key = Vec::with_capacity(source.len() + identity.len() + 24);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(time.timestamp_micros().to_le_bytes().as_slice());
    key.push(0);
    key.extend_from_slice(identity);
    let mut bytes = *Uuid::new_v5(&EVENT_ID_NAMESPACE, &key).as_bytes();
    let millis = u64::try_from(time.timestamp_millis()).unwrap_or(0);
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    Uuid::new_v8(bytes)
}

fn current_schema_version() -> u16 {
    SCHEMA_VERSION
}

fn default_tenant() -> String {
    DEFAULT_TENANT.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_field() {
        let mut e = Event::new(Kind::Auth, "sshd", Utc::now(), b"line");
        e.host = Some("web-01".into());
        e.severity = Severity::High;
        e.status_id = Some(2);
        e.user = Some("root".into());
        e.src = Some(Endpoint { ip: "10.0.0.5".parse().unwrap(), port: Some(52211) });
        e.process = Some(Process { pid: Some(42), name: Some("sshd".into()), ..Default::default() });
        e.raw = serde_json::json!({"line": "Failed password for root"});
        let text = serde_json::to_string(&e).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn ids_are_version_8_and_grow_with_time() {
        let t = Utc::now();
        let a = derive_id("x", t, b"a");
        let b = derive_id("x", t + chrono::Duration::milliseconds(5), b"a");
        assert_eq!(a.get_version_num(), 8);
        assert!(a < b, "later events sort after earlier ones");
    }

    #[test]
    fn same_record_gets_same_id_and_different_records_do_not() {
        let t = Utc::now();
        assert_eq!(derive_id("zeek", t, b"a"), derive_id("zeek", t, b"a"));
        assert_ne!(derive_id("zeek", t, b"a"), derive_id("zeek", t, b"b"));
        assert_ne!(derive_id("zeek", t, b"a"), derive_id("suricata", t, b"a"));
    }

    #[test]
    fn class_and_category_follow_the_kind_unless_set() {
        let mut e = Event::new(Kind::Process, "agent", Utc::now(), b"");
        assert_eq!((e.class_uid(), e.category_uid()), (1007, 1));
        e.class_uid = Some(4001);
        assert_eq!((e.class_uid(), e.category_uid()), (4001, 4));
    }
}
