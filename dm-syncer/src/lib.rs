//! # dm-syncer: incremental replication of one subtask (being built)
//!
//! **Status: the filters, the task/source files and the schema tracker are built** ([`filter`]:
//! table patterns, block-allow list, routes, binlog event filter; [`config`]: DM's `task.yaml`
//! and `source.yaml`, read strictly; [`tracker`]: table structures replayed DDL by DDL with
//! sqlparser, reloading from the downstream what it cannot parse). The rest is planned; it will keep a downstream equal to a live upstream:
//!
//! ```text
//! EventStream --> event loop (filters, routes, schema tracker) --+--> DML: causality --> workers --> Sink
//!                                                                +--> DDL worker (drain, execute once)
//!                         checkpoints advance only after the Sink acknowledged
//! ```
//!
//! - the `CheckpointStore` and `SchemaTracker` traits and their downstream-backed implementations;
//! - filters (block-allow list, routes, event filters, expression filters), safe mode,
//!   pause/resume/stop at transaction boundaries, retry of transient errors;
//! - exactly-once apply across crashes, including tables without keys: the design and its proof
//!   sketch are in `docs/design/checkpoint.md` (per-worker checkpoint rows committed in each
//!   batch's own transaction, deterministic worker assignment, replay that drops what a worker
//!   already committed).

pub mod config;
pub mod error;
pub mod filter;
pub mod syncer;
pub mod tracker;
pub mod watermark;

pub use error::SyncerError;
pub use syncer::{SyncerSettings, SyncerStatus, run};
