//! # dm-subtask: one source of one task, as one unit
//!
//! A [`Subtask`] runs what DM's dm-worker runs for one source of a task: the units of the
//! task mode in order (dump → load → sync for `all`), as one owned task that is driven through
//! a [`SubtaskHandle`] (pause, resume, stop at a transaction end, stop now, `binlog skip |
//! replace | inject`) and reports a [`SubtaskStatus`] in the shape of DM's `query-status`.
//! Transient errors resume by themselves with DM's backoff; a definite one pauses the subtask
//! with the error (class, code, message, workaround, and the event's position) in the status.
//!
//! ```text
//!  task.yaml + source.yaml --SubtaskSpec::from_files / new--> SubtaskSpec (pure; public fields)
//!      --Subtask::new(spec).spawn()--> task "subtask <task>/<source>"  <--commands-- SubtaskHandle
//!                                                                      --status (watch)-->
//!  mode        units                 how they chain
//!  all         Dump -> Load -> Sync  FullStages::run(all) -> Handoff -> dm_syncer::run from it
//!  full        Dump -> Load          FullStages::run(full), then Finished
//!  dump        Dump                  FullStages::run(dump), then Finished
//!  load        Load                  FullStages::run(load), then Finished
//!  load&sync   Load -> Sync          FullStages::run(load&sync) -> Handoff -> dm_syncer::run
//!  incremental Sync                  dm_syncer::run from the checkpoint, else meta / a location / a time
//!
//!  stage: New -> Running -> (Paused <-> Running)* -> Stopped | Finished
//!         Running --transient error--> Paused --backoff 1 s, 2 s, ... 5 min--> Running
//!         Running --definite error or pause--> Paused --resume | binlog op--> Running
//! ```
//!
//! Crate layer: above dm-syncer and dm-dumpload (it is where both halves of a migration are
//! visible; they do not depend on each other), below the cluster (dm-cluster's worker will
//! run one per bound source) and the facade's examples (`quickstart`, `dm-syncer`).
//!
//! ## Stopping
//!
//! - **Stop** ([`SubtaskHandle::stop`]): the syncer stops at the next transaction end,
//!   applies everything read before it and writes its checkpoint. It selects on the stop signal
//!   while it waits for the next event, so on an idle upstream it stops at once, not after a
//!   heartbeat period.
//! - **Stop now** ([`SubtaskHandle::stop_now`]): the syncer stops reading at once, even inside
//!   an upstream transaction; each worker finishes the batch in flight (it commits with its
//!   worker checkpoint, or fails and rolls back) and applies nothing more; the global
//!   checkpoint is written at the last transaction end before which everything was applied.
//!   What was read and not applied is read again by the next run, which skips per worker what
//!   that worker already committed: nothing lost, nothing repeated.
//! - **Pause** stops the sync unit as stop-now does. Pausing or stopping a dump or load cancels
//!   it: chunks in flight roll back, and the next run loads the chunks not marked loaded.
//!
//! ## Status and DM's `query-status` fields
//!
//! [`SubtaskStatus::to_query_status`] prints the status as DM's `QueryStatusResponse` JSON.
//!
//! | DM field (`SubTaskStatus`) | here |
//! |---|---|
//! | `name` | [`SubtaskStatus::name`] (the task's name) |
//! | `stage` (New, Running, Paused, Stopped, Finished) | [`Stage`]; DM's transient Pausing / Resuming / Stopping are not shown: a command takes effect before the next status |
//! | `unit` (Dump, Load, Sync) | [`Unit`]; `InvalidUnit` before the first |
//! | `result.isCanceled` | [`ProcessResult::is_canceled`]: paused by a command |
//! | `result.errors[].ErrCode` | [`ProcessError::code`] (`DM-NNNNN` as a number, `docs/error-codes.md`) |
//! | `result.errors[].ErrClass` | [`ProcessError::class`]: `transient`, `definite` or `bug` (DM names a subsystem here; the code's range tells it) |
//! | `result.errors[].ErrScope` | [`ProcessError::scope`]: `upstream`, `downstream`, `internal`, from the code's crate |
//! | `result.errors[].ErrLevel` | [`ProcessError::level`]: `low` (transient: resumes by itself) or `high` |
//! | `result.errors[].Message` | [`ProcessError::message`], with the event's position as DM writes it, `(mysql-bin.000001, 2388)`, when an event caused it ([`ProcessError::position`]) |
//! | `result.errors[].RawCause` | [`ProcessError::raw_cause`]: the innermost cause when the message does not already say it |
//! | `result.errors[].Workaround` | [`ProcessError::workaround`] |
//! | `unresolvedDDLLockID` | [`SubtaskStatus::unresolved_ddl_lock_id`], empty until shard DDL coordination exists |
//! | `dump` {totalTables, completedTables, finishedBytes, finishedRows, bps, progress} | [`SubtaskStatus::dump`], dm-dumpload's `ProgressStatus`: chunks (not tables) total and done, bytes, rows, bytes per second, percent |
//! | `load` {finishedBytes, totalBytes, progress, metaBinlog, metaBinlogGTID, bps} | [`SubtaskStatus::load`]: `ProgressStatus` and the hand-off location |
//! | `sync` {totalEvents, totalTps, masterBinlog, syncerBinlog, syncerBinlogGtid, synced, secondsBehindMaster, totalRows, totalRps} | [`SubtaskStatus::sync`], dm-syncer's `SyncerStatus`: events, transactions, master position, checkpoint, synced, lag, rows dispatched, rows per second |
//! | `synced` | [`SubtaskStatus::synced`] |
//! | (none) | [`SubtaskStatus::auto_resume`]: attempts since the backoff was reset, all attempts, the last transient error, the pending backoff; [`SubtaskStatus::operators`]: registered `binlog` operators (DM's `binlog list`) |
//!
//! ## Errors
//!
//! [`SubtaskError`]: its own codes DM-21001 to DM-21007 (a file that cannot be read, no
//! instance for the source, no start point, a server that cannot be reached, a binlog
//! operation without a position, a subtask that ended or panicked), and the units' errors with
//! their own codes. A transient error of a unit is retried in place for a while (the syncer's
//! `retry_transient_for`, 10 s here; the load's own 5 attempts), then pauses the subtask, which
//! resumes by itself ([`AutoResume`]: 1 s doubling up to 5 min, with jitter, reset after 5 min
//! without an error); the attempts show in [`SubtaskStatus::auto_resume`]. A definite error or a
//! bug pauses it until resumed; `binlog skip | replace | inject` at the event's position (the
//! error's, when none is given) lets it go on.

mod backoff;
pub mod error;
mod handle;
mod spec;
pub mod status;
mod subtask;

pub use backoff::AutoResume;
pub use error::SubtaskError;
pub use handle::{BinlogOperation, SubtaskHandle};
pub use spec::{RETRY_IN_PLACE, SubtaskSpec, SyncStart};
pub use status::{
    AutoResumeStatus, ErrorLevel, ErrorScope, LoadStatus, ProcessError, ProcessResult, Stage,
    SubtaskStatus, Unit,
};
pub use subtask::Subtask;

/// The README's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
