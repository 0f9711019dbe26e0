//! # dm-syncer: incremental replication of one source, exactly once
//!
//! [`run`] keeps a downstream equal to a live upstream: it reads the binlog through
//! `dm-binlog`'s stream controller, reads each Query event once ([`ddl`]), applies the task's
//! block-allow list, routes, event filter and expression filters on row values (`dm-task`'s
//! [`InstanceRules`](dm_task::InstanceRules), built from DM's `task.yaml` / `source.yaml`),
//! follows every table's structure with the [`tracker`], decodes row images, and hands row
//! changes to parallel workers, each of which commits its batch together with its own
//! checkpoint; a DDL waits until every worker is idle, runs downstream exactly once, and
//! moves the global checkpoint ([`watermark`]). [`SyncerSettings::from_task`],
//! [`remote_options`] and [`sink_options`] take the syncer's slice of a task.
//!
//! The downstream is any set of `dm_core` sinks: [`run_with`] takes a `dm_core::SinkFactory`
//! (a change feed file, the tests' recording fake), [`run`] builds `dm-sink`'s MySQL sinks from
//! `MySqlSinkOptions`. The loop and the workers speak only the traits (`dm_core::sink`).
//!
//! ```text
//! StreamController --> event loop (filters, routes, SchemaTracker, decode_rows)
//!                        |-- rows (also inside MySQL 8 compressed payloads): dispatch
//!                        |       --> CausalityDetector (deterministic), SafeMode (idempotent?)
//!                        |       --> worker w --> Sink::apply_batch
//!                        |                 ChangeBatch + WorkerCheckpoint, all or nothing
//!                        |       (a held table's rows after its DDL: not sent, HoldKeeper)
//!                        |-- Query --> ddl::plan_query --> DDL: drain --> decide per statement
//!                        |       --> ShardCoordinator::decide: Execute | Skip | Hold
//!                        |       --> checkpoint with the statement's DdlRecord --> DdlSink: once
//!                        |       --> checkpoint past it with the tracker's tables
//!                        |-- a resolution (while held) --> rewind to the held DDL, run it as
//!                        |       resolved, replay its table up to where the reading was
//!                        '-- acknowledgements --> Watermark (held back to the holds' floor)
//!                                --> CheckpointStore::save
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`ddl`] | a Query event read once: control, DML-as-statement, DDL plan per object, ignored |
//! | [`tracker`] | the schema tracker: each table's structure at the current position |
//! | [`watermark`] | the global watermark from the workers' acknowledgements |
//! | [`holds`] | held tables and rewinds (shard DDL): what becomes of each change, where the checkpoint may be |
//! | [`syncer`] | one file per concern: resume from the checkpoints, the event loop, table targets, dispatch of row changes, safe mode, acknowledgements, the global checkpoint, the DDL barrier, the workers, settings and connections from a task, status, stop requests, in-place retries, fault points |
//! | [`metrics`] | Prometheus metrics with DM's names |
//! | [`error`] | the crate's errors, classed, with codes |
//! | [`config`], [`filter`], [`expression`] | `dm-task`'s modules, re-exported: the syncer's API takes their types |
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
//! Stopping ([`StopSignal`]): at a transaction end (the next one, or at once when the loop
//! waits at one for the next event, so an idle upstream stops promptly), or now (the loop stops
//! reading at once, each worker finishes only its batch in flight); either way the checkpoints
//! are consistent. Transient failures are retried in place, for ever or for
//! [`SyncerSettings::retry_transient_for`]; the status published with an error names the event
//! that caused it ([`SyncerStatus::stopped_at`]), for `binlog skip` (`dm-subtask` builds
//! pause, resume and auto-resume on these).
//!
//! Safe mode runs when configured, for [`SyncerSettings::safe_mode_duration`] after each start,
//! and after a fresh start until the exit point a dump recorded
//! ([`SyncerSettings::safe_mode_until`]), kept in the global checkpoint until passed; it is
//! decided once per change, by the event loop, and carried with the change to its worker.
//!
//! Shard DDL: [`run_coordinated`] asks a `dm_core::ShardCoordinator` about every DDL it would
//! run (execute these statements, skip, or hold); a held table's rows after its DDL wait while
//! every other table goes on, and once resolved the stream is rewound to the held DDL, which
//! runs, and the table's rows are replayed up to where the reading was, exactly once across
//! crashes ([`holds`]: the pure decisions; `docs/design/checkpoint.md`, "Held tables and
//! rewinds"; a model property test checks them). [`run`] and [`run_with`] use
//! `dm_core::NoSharding` (every DDL runs as it comes). The coordinators themselves (DM's
//! pessimistic and optimistic modes) are `dm-shardddl`'s, not built yet.
//!
//! Not yet: online-DDL tools (the task stops when a ghost table appears).

pub mod ddl;
pub mod error;
pub mod holds;
pub mod metrics;
pub mod syncer;
pub mod tracker;
pub mod watermark;

/// The task configuration lives in `dm-task`, below this crate and dm-dumpload. Its modules are
/// re-exported under their former paths (`dm_syncer::config::TaskConfig`, ...) because the
/// syncer's API takes their types: a caller of [`run`] needs no second dependency.
pub use dm_task::{config, expression, filter};
pub use error::SyncerError;
pub use metrics::SyncerMetrics;
pub use syncer::{
    StopRequest, StopSignal, SyncerSettings, SyncerStatus, remote_options, run, run_coordinated,
    run_with, sink_options,
};
