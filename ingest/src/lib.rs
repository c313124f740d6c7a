//! Getting events into Vigil: input formats normalised to the shared event
//! model ([`formats`]), file import through the store's batch writer
//! ([`import`]), a seeded generator of realistic corpora ([`generate`]) and the
//! demo dataset ([`demo`]).
//!
//! The NATS JetStream consumers, dead-letter path and lanes arrive with the
//! ingest issue and feed the same [`formats`] and writer.

pub mod demo;
pub mod formats;
pub mod generate;
pub mod import;

pub use formats::{Format, ParseError};
