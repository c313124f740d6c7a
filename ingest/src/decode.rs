//! Bytes → a validated [`Event`], or the reason they are refused. Shared by
//! every channel (NATS, HTTP, files) so a record is judged the same way
//! wherever it arrives.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use vigil_event::{Event, Kind, SCHEMA_VERSION};

/// Largest message accepted (bigger ones are a producer bug, or an attack).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Why an input was refused: a stable code and a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub reason: String,
}

impl Rejection {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Rejection { code, reason: reason.into() }
    }
}

/// The oldest event time a channel accepts. (The newest is bounded for
/// every channel by [`Event::validate`]: a day ahead of the clock.)
///
/// Events older than the longest retention would be deleted by the next
/// retention pass, and each old day would cost a new partition: they are
/// refused at the door, with the reason, unless a file import asks for
/// older history explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Oldest {
    /// No lower bound (some kind is kept forever, or the import said so).
    #[default]
    Any,
    /// Events up to the longest retention before now.
    Retention(TimeDelta),
    /// Events from this time on (an import's explicit bound).
    Since(DateTime<Utc>),
}

impl Oldest {
    /// The bound for a retention policy whose longest event retention is
    /// `longest` (`None`: some kind is kept forever, so no bound).
    pub fn longest_retention(longest: Option<TimeDelta>) -> Oldest {
        longest.map_or(Oldest::Any, Oldest::Retention)
    }

    /// Refuses `event` (code `too_old`) when it is older than this bound at `now`.
    pub fn check(self, event: &Event, now: DateTime<Utc>) -> Result<(), Rejection> {
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let reason = match self {
            Oldest::Any => return Ok(()),
            Oldest::Retention(keep) if event.time < now - keep => format!(
                "field `time` ({}) is older than the longest retention ({} days) keeps: it would be deleted by \
                 the next retention pass (`vigil import --oldest` imports older history on purpose)",
                stamp(event.time),
                keep.num_days()
            ),
            Oldest::Since(since) if event.time < since => {
                format!("field `time` ({}) is before the oldest time accepted ({})", stamp(event.time), stamp(since))
            }
            _ => return Ok(()),
        };
        Err(Rejection::new("too_old", reason))
    }
}

/// Decodes one Vigil JSON event. `subject_kind` is the kind named by the
/// transport (the last token of `vigil.events.<kind>`), if any.
pub fn decode(subject_kind: Option<&str>, payload: &[u8]) -> Result<Event, Rejection> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(Rejection::new(
            "oversize",
            format!("message is {} bytes; the limit is {MAX_MESSAGE_BYTES}", payload.len()),
        ));
    }
    let subject_kind = match subject_kind {
        Some(k) => Some(Kind::from_str(k).map_err(|e| Rejection::new("unknown_kind", e.to_string()))?),
        None => None,
    };
    // Fast path: a well-formed event parses straight into the struct. Only
    // what fails is looked at again to name the problem precisely.
    if !has_nul_escape(payload) {
        if let Ok(event) = serde_json::from_slice::<Event>(payload) {
            if event.schema_version <= SCHEMA_VERSION {
                event.validate().map_err(|e| Rejection::new("invalid_event", e.to_string()))?;
                return check_subject(subject_kind, event);
            }
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| Rejection::new("invalid_json", format!("invalid JSON: {e}")))?;
    // A newer contract may have changed any field: say so rather than report a type error.
    if let Some(v) = value.get("schema_version").and_then(serde_json::Value::as_u64) {
        if v > u64::from(SCHEMA_VERSION) {
            return Err(Rejection::new(
                "future_schema",
                format!("schema_version {v} is newer than this server understands ({SCHEMA_VERSION})"),
            ));
        }
    }
    if let Some(k) = value.get("kind").and_then(serde_json::Value::as_str) {
        if Kind::from_str(k).is_err() {
            return Err(Rejection::new("unknown_kind", format!("unknown event kind {k:?}")));
        }
    }
    if contains_nul(&value) {
        return Err(Rejection::new("nul_character", "text contains a NUL character, which cannot be stored"));
    }
    let event: Event = serde_json::from_value(value)
        .map_err(|e| Rejection::new("invalid_event", format!("not a valid event: {e}")))?;
    event.validate().map_err(|e| Rejection::new("invalid_event", e.to_string()))?;
    check_subject(subject_kind, event)
}

fn check_subject(subject_kind: Option<Kind>, event: Event) -> Result<Event, Rejection> {
    if let Some(k) = subject_kind {
        if k != event.kind {
            return Err(Rejection::new(
                "kind_mismatch",
                format!("event of kind {} was published on the {k} subject", event.kind),
            ));
        }
    }
    Ok(event)
}

/// A NUL can only reach a JSON string as the `\u0000` escape (raw control
/// bytes are invalid JSON); such payloads take the slow, checking path.
fn has_nul_escape(payload: &[u8]) -> bool {
    payload.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

fn contains_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(contains_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn good() -> Vec<u8> {
        let mut e = Event::new(Kind::Auth, "sshd", Utc::now(), b"x");
        e.message = "Failed password".into();
        serde_json::to_vec(&e).unwrap()
    }

    #[test]
    fn good_events_pass() {
        assert_eq!(decode(Some("auth"), &good()).unwrap().kind, Kind::Auth);
        assert!(decode(None, &good()).is_ok());
    }

    #[test]
    fn each_kind_of_bad_input_has_its_own_reason() {
        let code = |subject: Option<&str>, p: &[u8]| decode(subject, p).unwrap_err().code;
        assert_eq!(code(None, b"{not json"), "invalid_json");
        assert_eq!(code(Some("frobs"), &good()), "unknown_kind");
        assert_eq!(code(Some("process"), &good()), "kind_mismatch");
        assert_eq!(code(None, &vec![b' '; MAX_MESSAGE_BYTES + 1]), "oversize");
        let mut v: serde_json::Value = serde_json::from_slice(&good()).unwrap();
        v["schema_version"] = 99.into();
        assert_eq!(code(None, &serde_json::to_vec(&v).unwrap()), "future_schema");
        let mut v: serde_json::Value = serde_json::from_slice(&good()).unwrap();
        v["time"] = 12.into();
        let err = decode(None, &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(err.code, "invalid_event");
        assert!(err.reason.contains("time") || err.reason.contains("invalid type"), "{}", err.reason);
        let mut v: serde_json::Value = serde_json::from_slice(&good()).unwrap();
        v["kind"] = "frobs".into();
        assert_eq!(code(None, &serde_json::to_vec(&v).unwrap()), "unknown_kind");
        let mut v: serde_json::Value = serde_json::from_slice(&good()).unwrap();
        v["message"] = "a\u{0}b".into();
        assert_eq!(code(None, &serde_json::to_vec(&v).unwrap()), "nul_character");
    }

    #[test]
    fn events_older_than_the_bound_are_refused_with_their_time() {
        let now = Utc::now();
        let old = Event::new(Kind::Auth, "sshd", now - TimeDelta::days(400), b"x");
        let recent = Event::new(Kind::Auth, "sshd", now - TimeDelta::days(10), b"y");
        let year = Oldest::Retention(TimeDelta::days(365));
        let err = year.check(&old, now).unwrap_err();
        assert_eq!(err.code, "too_old");
        assert!(err.reason.contains("365 days") && err.reason.contains("field `time`"), "{}", err.reason);
        assert!(year.check(&recent, now).is_ok());
        assert!(Oldest::Any.check(&old, now).is_ok());
        let since = Oldest::Since(now - TimeDelta::days(500));
        assert!(since.check(&old, now).is_ok());
        assert_eq!(Oldest::Since(now - TimeDelta::days(5)).check(&recent, now).unwrap_err().code, "too_old");
    }
}
