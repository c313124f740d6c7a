use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an event is about; also the last token of its NATS subject.
///
/// `Package` is an installed-package inventory record (OCSF Software
/// Inventory Info, class 5020, category 5 Discovery, OCSF 1.1+): a host's
/// package manager reporting a package `installed`, `upgraded` or `removed`,
/// with its version and the files it owns (see `docs/events.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Process,
    Network,
    Auth,
    Alert,
    Metric,
    Vuln,
    Log,
    Package,
}

impl Kind {
    pub const ALL: [Kind; 8] =
        [Kind::Process, Kind::Network, Kind::Auth, Kind::Alert, Kind::Metric, Kind::Vuln, Kind::Log, Kind::Package];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Network => "network",
            Kind::Auth => "auth",
            Kind::Alert => "alert",
            Kind::Metric => "metric",
            Kind::Vuln => "vuln",
            Kind::Log => "log",
            Kind::Package => "package",
        }
    }

    /// The OCSF class this kind maps to by default.
    pub fn class_uid(self) -> i32 {
        match self {
            Kind::Process => 1007, // Process Activity
            Kind::Network => 4001, // Network Activity
            Kind::Auth => 3002,    // Authentication
            Kind::Alert => 2004,   // Detection Finding
            Kind::Vuln => 2002,    // Vulnerability Finding
            Kind::Metric => 0,     // Base Event: OCSF has no metric class
            Kind::Log => 0,        // Base Event
            Kind::Package => 5020, // Software Inventory Info (Discovery)
        }
    }

    /// Security-relevant kinds go through the fast ingest lane.
    pub fn is_security(self) -> bool {
        matches!(self, Kind::Alert | Kind::Auth)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a kind name that is not one of [`Kind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?} (expected one of process, network, auth, alert, metric, vuln, log, package)")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name_and_json() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
            assert_eq!(k.as_str().to_uppercase().parse::<Kind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
            assert!(UnknownKind(String::new()).to_string().contains(k.as_str()), "{k} missing from the error text");
        }
        assert!("packages".parse::<Kind>().is_err());
    }

    #[test]
    fn package_is_ocsf_software_inventory_info() {
        let k: Kind = serde_json::from_str("\"package\"").unwrap();
        assert_eq!(k, Kind::Package);
        assert_eq!((k.class_uid(), k.class_uid() / 1000), (5020, 5));
        assert!(!k.is_security());
    }
}
