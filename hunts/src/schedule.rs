//! Cron schedules, evaluated in UTC by the `croner` crate: standard 5-field
//! crontab (`*/5 * * * *`), 6 fields with seconds first, and the `@hourly`
//! style nicknames.

use chrono::{DateTime, Utc};
use croner::Cron;

use crate::HuntError;

/// Most slots counted when collapsing missed slots; beyond it the count says so.
const MAX_COUNTED_SLOTS: u32 = 100_000;

/// A parsed cron schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, HuntError> {
        let t = text.trim();
        let cron: Cron = t.parse().map_err(|e: croner::errors::CronError| HuntError::Invalid {
            field: "schedule",
            code: "bad_schedule",
            message: format!("`{t}` is not a cron schedule like `*/5 * * * *`: {e}"),
        })?;
        let s = Schedule { text: t.to_string(), cron };
        // A pattern that never fires (e.g. 30 February) is an error too.
        s.next_after(Utc::now()).ok_or_else(|| HuntError::Invalid {
            field: "schedule",
            code: "bad_schedule",
            message: format!("`{t}` never fires"),
        })?;
        Ok(s)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The latest slot in `(after, now]` and how many slots that interval
    /// holds (capped at a large number), or `None` when none is due.
    pub fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<(DateTime<Utc>, u32)> {
        let first = self.next_after(after).filter(|s| *s <= now)?;
        let latest = self.cron.find_previous_occurrence(&now, true).ok().filter(|s| *s >= first).unwrap_or(first);
        let mut n = 1u32;
        let mut s = first;
        while s < latest && n < MAX_COUNTED_SLOTS {
            match self.next_after(s) {
                Some(next) if next <= latest => {
                    s = next;
                    n += 1;
                }
                _ => break,
            }
        }
        Some((latest, n))
    }
}
