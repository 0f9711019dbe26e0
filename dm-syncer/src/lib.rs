//! # dm-syncer: incremental replication of one source, exactly once
//!
//! [`run`] keeps a downstream equal to a live upstream: it reads the binlog through
//! `dm-binlog`'s stream controller, applies the task's block-allow list, routes, event filter
//! ([`filter`]) and expression filters on row values ([`expression`]), configured from DM's
//! `task.yaml` by [`config`], follows every table's structure
//! with the [`tracker`], decodes row images, and hands row changes to parallel workers, each of
//! which commits its batch together with its own checkpoint row; DDL waits until every worker is
//! idle, runs once, and moves the global checkpoint ([`watermark`]).
//!
//! ```text
//! StreamController --> event loop (filters, routes, SchemaTracker, decode_rows)
//!                        |-- DML --> CausalityDetector (deterministic) --> worker w --> MySqlSink
//!                        |                 batch + worker checkpoint row, one transaction
//!                        |-- DDL --> drain all workers --> track --> execute once --> checkpoint
//!                        '-- acknowledgements --> Watermark --> global checkpoint (DM's table)
//! ```
//!
//! Invariants (`docs/design/checkpoint.md` has the proof sketch):
//! - after any crash, every change is applied exactly once, tables without keys included: a
//!   restart resumes at the global checkpoint and does not send a change again when its worker's
//!   checkpoint is at or past it;
//! - changes to one row are applied in binlog order (deterministic causality);
//! - a DDL runs when every worker is idle; the checkpoint moves past it right after.
//!
//! Status and [`metrics`] (DM's names): lag, remaining time, positions, queue lengths, rows per
//! second, the synced flag.
//!
//! DDL under a route that renames is rewritten with fully qualified target names ([`ddl`]); a
//! statement sqlparser cannot parse is refused there with a message naming it and its position.
//!
//! Safe mode runs when configured, and after a fresh start until the exit point a dump recorded
//! ([`SyncerSettings::safe_mode_until`]), kept in the global checkpoint until passed.
//!
//! Not yet: online-DDL tools, shard DDL coordination (issue dm-shardddl: today every shard's
//! DDL runs, repeats ignored as already applied).

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
