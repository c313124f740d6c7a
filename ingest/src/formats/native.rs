//! Vigil's native event JSON (the wire contract in `docs/events.md`).

use vigil_event::Event;

use super::ParseError;

/// Parses and validates one native JSON event.
pub fn parse_line(line: &str, line_no: usize) -> Result<Event, ParseError> {
    let event: Event =
        serde_json::from_str(line).map_err(|e| ParseError::new(line_no, format!("invalid event JSON: {e}")))?;
    event.validate().map_err(|e| ParseError::new(line_no, e.to_string()))?;
    Ok(event)
}
