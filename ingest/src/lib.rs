//! Getting events into Vigil: input formats normalised to the shared event
//! model ([`formats`]), file import through the store's batch writer
//! ([`import`]), a seeded generator of realistic corpora ([`generate`]) and the
//! demo dataset ([`demo`]).
//!
//! The JetStream pipeline ([`nats`]) decodes each message ([`decode`]),
//! writes batches through the store's idempotent writer, acknowledges only
//! after commit, dead-letters what it refuses, and counts every stage
//! ([`metrics`]). Producers publish to it the way [`publish`] does; both sides
//! take the subjects and headers from [`subjects`].

pub mod decode;
pub mod demo;
pub mod formats;
pub mod generate;
pub mod import;
pub mod metrics;
pub mod nats;
pub mod publish;
pub mod shutdown;
pub mod subjects;

pub use formats::{Format, ParseError};
