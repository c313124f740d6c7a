use chrono::{Duration, Utc};

use crate::{Event, SCHEMA_VERSION};

/// Longest message kept; longer ones are a producer bug, not data.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How far ahead of the receiver's clock an event may claim to be.
pub const MAX_CLOCK_SKEW: Duration = Duration::hours(24);

/// Why an event was refused, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("schema_version {found} is newer than this server understands ({supported})")]
    FutureSchema { found: u16, supported: u16 },
    #[error("field `{field}` must not be empty")]
    Empty { field: &'static str },
    #[error("field `message` is {len} bytes, over the {max}-byte limit")]
    MessageTooLong { len: usize, max: usize },
    #[error("field `time` is {ahead} ahead of the receiver's clock (limit {limit})")]
    TimeInFuture { ahead: String, limit: String },
}

impl Event {
    /// Checks what serde cannot: versions, required text and sane bounds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.schema_version > SCHEMA_VERSION {
            return Err(ValidationError::FutureSchema { found: self.schema_version, supported: SCHEMA_VERSION });
        }
        if self.source.trim().is_empty() {
            return Err(ValidationError::Empty { field: "source" });
        }
        if self.tenant.trim().is_empty() {
            return Err(ValidationError::Empty { field: "tenant" });
        }
        if self.message.len() > MAX_MESSAGE_BYTES {
            return Err(ValidationError::MessageTooLong { len: self.message.len(), max: MAX_MESSAGE_BYTES });
        }
        let ahead = self.time - Utc::now();
        if ahead > MAX_CLOCK_SKEW {
            return Err(ValidationError::TimeInFuture {
                ahead: format!("{}s", ahead.num_seconds()),
                limit: format!("{}s", MAX_CLOCK_SKEW.num_seconds()),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn refuses_future_schema_and_names_the_field() {
        let mut e = Event::new(Kind::Log, "test", Utc::now(), b"x");
        e.schema_version = SCHEMA_VERSION + 1;
        let err = e.validate().unwrap_err();
        assert!(err.to_string().contains("schema_version"), "{err}");
        e.schema_version = SCHEMA_VERSION;
        e.source = " ".into();
        assert_eq!(e.validate().unwrap_err(), ValidationError::Empty { field: "source" });
    }

    #[test]
    fn refuses_events_from_far_future() {
        let e = Event::new(Kind::Log, "test", Utc::now() + Duration::days(3), b"x");
        assert!(matches!(e.validate(), Err(ValidationError::TimeInFuture { .. })));
        let ok = Event::new(Kind::Log, "test", Utc::now(), b"x");
        assert_eq!(ok.validate(), Ok(()));
    }
}
