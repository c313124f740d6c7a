//! Time expressions: `last_24h`, `15m`, `today`, `yesterday`, `[a, b]`,
//! `"7 Days"`, and absolute times in RFC 3339 or shorter forms.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `30s`, `15m`, `24h`, `7d`, `2w`, `1y`, `7 days`, `1 hour` …
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let n: i64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim_start_matches([' ', '_']).to_ascii_lowercase();
    let secs = match unit.as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "mo" | "month" | "months" => 30 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return None,
    };
    Duration::try_seconds(n.checked_mul(secs)?)
}

/// An absolute time: RFC 3339, `2026-01-01T00:00Z`, `2026-01-01 10:00`,
/// `2026-01-01` (midnight UTC), `now`, `now-1h`.
pub fn parse_instant(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Some(now);
    }
    if let Some(rest) = s.get(..4).filter(|p| p.eq_ignore_ascii_case("now-")).and_then(|_| s.get(4..)) {
        return parse_duration(rest).map(|d| now - d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M%#z", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let s = s.trim_end_matches('Z');
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)))
}

/// Whether `s` is a bare date (`2026-01-10`), which names a whole day.
pub fn is_date(s: &str) -> bool {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok()
}

/// A relative window name: `last_24h`, `24h`, `today`, `yesterday`, `7 Days`.
pub fn parse_relative(s: &str, now: DateTime<Utc>) -> Option<Window> {
    let lower = s.trim().to_ascii_lowercase();
    let midnight = Utc.from_utc_datetime(&now.date_naive().and_time(NaiveTime::MIN));
    match lower.as_str() {
        "today" => return Some(Window { start: midnight, end: now }),
        "yesterday" => return Some(Window { start: midnight - Duration::days(1), end: midnight }),
        _ => {}
    }
    let rest = lower.strip_prefix("last_").or_else(|| lower.strip_prefix("last ")).unwrap_or(&lower);
    parse_duration(rest).map(|d| Window { start: now - d, end: now })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-15T12:30:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn relative_windows() {
        let w = parse_relative("last_24h", now()).unwrap();
        assert_eq!(w.end - w.start, Duration::hours(24));
        assert_eq!(parse_relative("15m", now()).unwrap().start, now() - Duration::minutes(15));
        assert_eq!(parse_relative("7 Days", now()).unwrap().start, now() - Duration::days(7));
        let y = parse_relative("yesterday", now()).unwrap();
        assert_eq!(y.start.to_rfc3339(), "2026-01-14T00:00:00+00:00");
        assert_eq!(y.end.to_rfc3339(), "2026-01-15T00:00:00+00:00");
        assert!(parse_relative("fortnight", now()).is_none());
    }

    #[test]
    fn instants() {
        assert_eq!(parse_instant("2026-01-01T00:00Z", now()).unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(parse_instant("2026-01-02", now()).unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert_eq!(
            parse_instant("2026-01-02T03:04:05+01:00", now()).unwrap().to_rfc3339(),
            "2026-01-02T02:04:05+00:00"
        );
        assert_eq!(parse_instant("now-1h", now()).unwrap(), now() - Duration::hours(1));
        assert!(parse_instant("tomorrowish", now()).is_none());
    }
}
