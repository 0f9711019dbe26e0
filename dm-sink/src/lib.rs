//! # dm-sink: the MySQL-compatible downstream (not built yet)
//!
//! **Status: planned.** No code yet. Will provide `MySqlSink`, the implementation of
//! [`dm_core::Sink`] for TiDB, MySQL and MariaDB downstreams:
//!
//! ```text
//! dm-syncer / dm-dumpload --(batches of RowChange, DDL)--> MySqlSink --(one txn per batch)--> downstream
//! ```
//!
//! - SQL builders for every change kind and the multi-row forms, every value rendered exactly and
//!   every identifier quoted;
//! - batched apply in one transaction, downstream session settings, MySQL error numbers classed
//!   transient (retry, reconnect) or definite (pause with the reason);
//! - the meta tables (checkpoints) in the downstream.
