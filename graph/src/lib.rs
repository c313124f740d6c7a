//! The connection graph: hosts and processes as nodes, observed connections as
//! edges, kept in memory for a time window and refreshed incrementally, with
//! blast-radius and path queries and running-vs-dormant vulnerability
//! correlation.
//!
//! The graph arrives with the graph issue; the crate exists now so the
//! workspace's data flow (store → graph → api) is in place.
