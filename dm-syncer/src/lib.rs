//! # dm-syncer: incremental replication of one source, exactly once
//!
//! [`run`] keeps a downstream equal to a live upstream: it reads the binlog through
//! `dm-binlog`'s stream controller, reads each Query event once ([`ddl`]), applies the task's
//! block-allow list, routes and event filter ([`filter`]) and expression filters on row values
//! ([`expression`]), configured from DM's `task.yaml` / `source.yaml` by [`config`], follows every
//! table's structure with the [`tracker`], decodes row images, and hands row changes to parallel
//! workers, each of which commits its batch together with its own checkpoint row; a DDL waits
//! until every worker is idle, runs downstream exactly once, and moves the global checkpoint
//! ([`watermark`]).
//!
//! ```text
//! StreamController --> event loop (filters, routes, SchemaTracker, decode_rows)
//!                        |-- rows (also inside MySQL 8 compressed payloads)
//!                        |       --> CausalityDetector (deterministic) --> worker w --> MySqlSink
//!                        |                 batch + worker checkpoint row, one transaction
//!                        |-- Query --> ddl::plan_query --> DDL: drain --> decide per statement
//!                        |       --> checkpoint with the statement's record --> run once
//!                        |       --> checkpoint past it with the tracker's tables
//!                        '-- acknowledgements --> Watermark --> global checkpoint (DM's table)
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | DM's task and source files, read strictly; every key honoured or refused |
//! | [`ddl`] | a Query event read once: control, DML-as-statement, DDL plan per object, ignored |
//! | [`filter`] | block-allow list, table router, binlog event filter |
//! | [`expression`] | expression filters on row values (MySQL semantics) |
//! | [`tracker`] | the schema tracker: each table's structure at the current position |
//! | [`watermark`] | the global watermark from the workers' acknowledgements |
//! | [`syncer`] | the event loop, the DDL barrier, the workers, status, what is stored with checkpoints, fault points |
//! | [`metrics`] | Prometheus metrics with DM's names |
//! | [`error`] | the crate's errors, classed, with codes |
//!
//! Invariants (`docs/design/checkpoint.md` has the proof sketch):
//! - after any crash, every change is applied exactly once, tables without keys included: a
//!   restart resumes at the global checkpoint and does not send a change again when its worker's
//!   checkpoint is at or past it;
//! - changes to one row are applied in binlog order (deterministic causality);
//! - a DDL runs when every worker is idle, each of its statements at most once across crashes;
//!   the checkpoint moves past it right after, with the tracker's tables;
//! - a change the syncer cannot apply exactly (a row change logged as a statement, a
//!   statement-based LOAD DATA, an INCIDENT) stops the task with its position; nothing is
//!   skipped silently.
//!
//! DDL under a route that renames has its names replaced in place by the routed, fully
//! qualified ones; a statement whose objects cannot be told stops the task with its position.
//!
//! Safe mode runs when configured, and after a fresh start until the exit point a dump recorded
//! ([`SyncerSettings::safe_mode_until`]), kept in the global checkpoint until passed.
//!
//! Not yet: online-DDL tools (the task stops when a ghost table appears), shard DDL coordination
//! (today every shard's DDL runs on the routed table, "already applied" errors ignored there).

pub mod config;
pub mod ddl;
pub mod error;
pub mod expression;
pub mod filter;
pub mod metrics;
pub mod syncer;
pub mod tracker;
pub mod watermark;

pub use error::SyncerError;
pub use metrics::SyncerMetrics;
pub use syncer::{SyncerSettings, SyncerStatus, run};
