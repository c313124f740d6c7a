//! SRQL, the hunt language: a pest grammar parsed to an AST with byte spans,
//! checked against a field registry, planned, and compiled to parameterized
//! SQL. This crate does no I/O: the store executes what it plans.
//!
//! The language and compiler arrive with the SRQL issue; the crate exists now
//! so the workspace's data flow (srql → store → api) is in place.
