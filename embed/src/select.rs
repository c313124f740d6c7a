//! Selective vectorization: which events get a vector, and their text.

use vigil_event::{Event, Kind, Severity};

use crate::EmbedError;

/// Which events get a vector. An event is selected when its kind is listed,
/// or its severity is at least `min_severity`, or (with `auth_failures`) it
/// records a failure (OCSF `status_id` 2) of any kind.
#[derive(Debug, Clone)]
pub struct Selection {
    pub kinds: Vec<Kind>,
    pub min_severity: Severity,
    pub auth_failures: bool,
}

impl Default for Selection {
    /// Alerts, authentication and process events (execs carry the command
    /// lines analysts hunt in), anything of medium severity or worse, and
    /// failures of any kind; metrics, network flows and routine logs are skipped.
    fn default() -> Self {
        Selection {
            kinds: vec![Kind::Alert, Kind::Auth, Kind::Process],
            min_severity: Severity::Medium,
            auth_failures: true,
        }
    }
}

impl Selection {
    pub fn selects(&self, e: &Event) -> bool {
        self.kinds.contains(&e.kind)
            || (e.severity != Severity::Unknown && e.severity >= self.min_severity)
            || (self.auth_failures && e.status_id == Some(2))
    }

    /// Parses `key=value` pairs separated by `;`, e.g.
    /// `kinds=alert,auth,process;min_severity=medium;auth_failures=true`.
    /// Keys left out keep their [`Default`]; `kinds=` selects no kind.
    pub fn parse(spec: &str) -> Result<Self, EmbedError> {
        let mut sel = Selection::default();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = |why: String| EmbedError::Selection(format!("{part:?}: {why}"));
            let (key, value) = part.split_once('=').ok_or_else(|| bad("expected key=value".into()))?;
            let value = value.trim();
            match key.trim() {
                "kinds" => {
                    sel.kinds = value
                        .split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(|k| k.parse::<Kind>().map_err(|e| bad(e.to_string())))
                        .collect::<Result<_, _>>()?;
                }
                "min_severity" => {
                    sel.min_severity = value.parse::<Severity>().map_err(|e| bad(e.to_string()))?;
                }
                "auth_failures" => {
                    sel.auth_failures = match value {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => return Err(bad(format!("expected true or false, got {value:?}"))),
                    }
                }
                other => {
                    return Err(bad(format!("unknown key {other:?} (expected kinds, min_severity or auth_failures)")))
                }
            }
        }
        Ok(sel)
    }
}

/// The text that stands for an event: its message, plus the process command
/// line when the message does not already contain it. When the message only
/// wraps the command line ("process started: cat /etc/shadow"), the command
/// line alone: the wrapper words are the same for every exec and would pull
/// all process events towards each other. `None` when both are empty.
pub fn text_for(e: &Event) -> Option<String> {
    let message = e.message.trim();
    let cmdline = e.process.as_ref().and_then(|p| p.cmdline.as_deref()).map(str::trim).unwrap_or("");
    let text = match (message.is_empty(), cmdline.is_empty()) {
        (true, true) => return None,
        (false, true) => message.to_string(),
        (true, false) => cmdline.to_string(),
        (false, false) if message.contains(cmdline) => cmdline.to_string(),
        (false, false) => format!("{message} {cmdline}"),
    };
    Some(text)
}
