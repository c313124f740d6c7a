//! Scheduled hunts and the alerts they raise.
//!
//! This crate owns:
//! - hunt definitions and their validation ([`HuntSpec`], [`hunt`]): the SRQL
//!   compiles and returns events, the cron schedule parses ([`Schedule`], the
//!   `croner` crate), the group-by fields exist in the entity's registry
//!   ([`vigil_srql::registry`]) and in the result; stored in `hunts`;
//! - the scheduler ([`scheduler`]) with a [`Clock`] so tests control time, and
//!   the runner ([`runner`]): run N covers the events *ingested* in
//!   `(watermark, slot − settle]`; the watermark advances in the transaction
//!   that records the run and its alerts (`runs`: what a run writes), so a
//!   crash repeats a window and never skips one, and missed slots (downtime,
//!   a slow run) collapse into one run covering the whole gap;
//! - alert grouping and suppression ([`runner`], [`alerts`]): matches grouped
//!   by the hunt's keys; a match for a group whose alert was raised within
//!   the suppression window joins that alert (count, links to the events)
//!   instead of raising a new one; an event counts at most once per hunt;
//!   triage (acknowledge, assign, close with a reason);
//! - actions on new alerts ([`actions`]): generic JSON webhooks (HMAC-signed,
//!   only to the allow-list's hosts and ranges, checked on the connected
//!   address) and AWX job template launches (only at `VIGIL_AWX_URL`'s
//!   origin), queued in the run's transaction (`alert_actions`) and delivered
//!   after over rustls without redirects, with retries and exponential
//!   backoff on 5xx and connection errors, every attempt recorded
//!   (`webhook_deliveries`);
//! - correlation hunts ([`correlation`], Sigma correlation rules):
//!   event_count, value_count, temporal and temporal_ordered over event time
//!   per group, a window of `timespan` firing when it holds a match new in
//!   the run and reaches the condition;
//! - Sigma rules stored as hunts ([`sigma_import`]): the hunt specs
//!   `vigil_sigma` converted, validated and created or replacing the hunt of
//!   the same Sigma id or name, with what was refused and why;
//! - its counters ([`metrics`]), registered in the server's metrics registry.
//!
//! Queries run through [`vigil_search::Searcher`] on the SQL path (no BM25
//! index, whose tail lags ingestion). Aggregating queries (`| stats`,
//! `| timechart`, `stats:`/`bucket:`), `SIMILAR_TO`, `| cluster` and
//! `| blast_radius` are refused: a hunt returns events. See docs/hunts.md.

pub mod actions;
pub mod alerts;
mod allow;
mod clock;
pub mod correlation;
mod deliver;
mod error;
pub mod hunt;
pub mod metrics;
mod outbound;
pub mod runner;
mod runs;
mod schedule;
pub mod scheduler;
pub mod sigma_import;

pub use actions::{Action, AllowList, DeliveryConfig};
pub use clock::{Clock, ManualClock, SystemClock};
pub use correlation::Correlation;
pub use error::HuntError;
pub use hunt::{Hunt, HuntSpec};
pub use runner::{RunReport, Runner, Settings};
pub use schedule::Schedule;
