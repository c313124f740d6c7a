use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// OCSF severity (`severity_id`): 0 unknown … 6 fatal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    #[default]
    Unknown,
    Info,
    Low,
    Medium,
    High,
    Critical,
    Fatal,
}

impl Severity {
    pub const ALL: [Severity; 7] = [
        Severity::Unknown,
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
        Severity::Fatal,
    ];

    pub fn id(self) -> i16 {
        self as i16
    }

    pub fn from_id(id: i16) -> Option<Self> {
        Severity::ALL.get(usize::try_from(id).ok()?).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
            Severity::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a severity that is neither a known name nor an id 0–6.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected unknown, info, low, medium, high, critical, fatal or 0-6)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    /// Accepts OCSF names, the syslog-ish words producers use, and ids.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let sev = match lower.as_str() {
            "unknown" | "0" => Severity::Unknown,
            "info" | "informational" | "notice" | "debug" | "1" => Severity::Info,
            "low" | "2" => Severity::Low,
            "medium" | "warning" | "warn" | "moderate" | "3" => Severity::Medium,
            "high" | "error" | "err" | "4" => Severity::High,
            "critical" | "crit" | "alert" | "emergency" | "5" => Severity::Critical,
            "fatal" | "6" => Severity::Fatal,
            _ => return Err(UnknownSeverity(s.to_string())),
        };
        Ok(sev)
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Id(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Name(n) => n.parse().map_err(serde::de::Error::custom),
            Raw::Id(i) => i16::try_from(i)
                .ok()
                .and_then(Severity::from_id)
                .ok_or_else(|| serde::de::Error::custom(UnknownSeverity(i.to_string()))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_ids_parse() {
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert_eq!("warning".parse::<Severity>().unwrap(), Severity::Medium);
        assert_eq!(serde_json::from_str::<Severity>("5").unwrap(), Severity::Critical);
        assert!(serde_json::from_str::<Severity>("9").is_err());
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn ids_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_id(s.id()), Some(s));
        }
    }
}
