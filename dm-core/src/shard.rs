//! Shard DDL coordination: the [`ShardCoordinator`] seam the syncer asks about every DDL.
//!
//! When many upstream shard tables merge into one downstream table, a DDL of one shard must not
//! simply run downstream: the other shards' rows still have the old structure. A coordinator
//! (DM's pessimistic or optimistic shard DDL, built on this seam by `dm-shardddl`) decides:
//!
//! ```text
//! syncer: DDL event, planned and routed (ShardDdl)
//!    --decide--> Execute(statements)  run these of the event's statements now
//!                Skip                 run none of them (the tracker still follows the DDL)
//!                Hold                 run none yet: the tables' rows after the DDL are held
//!                                     (not applied), every other table goes on
//!    <--next_resolution-- ShardResolution { table, held_at, Execute(..) | Skip }
//!         the syncer drains, rewinds the stream to the held DDL, runs it as resolved, and
//!         replays the held table's rows up to where it was reading; then goes on
//! ```
//!
//! [`NoSharding`] executes every statement at once and never holds: one source, no merge.
//!
//! Invariants the syncer keeps (`docs/design/checkpoint.md`, "Held tables and rewinds"): a
//! hold is durable ([`ShardHold`] in the global checkpoint) before anything after it is
//! applied; while a table is held the global checkpoint stays at or before the held DDL (the
//! floor), so a restart reads the held rows again; a replayed row commits with its progress
//! ([`ReplayMark`] in its worker's checkpoint); the DDL of a hold runs at most once.
//!
//! A coordinator promises: [`ShardCoordinator::next_resolution`] is cancel-safe (the syncer
//! selects on it beside the stream) and pending while nothing is resolved; a resolution names a
//! hold the syncer asked for (or one [`ShardCoordinator::restore`] gave back after a restart).

use std::future::Future;

use crate::ddl::DdlStatement;
use crate::error::{ClassifiedError, ErrorClass, ErrorCode};
use crate::location::Location;
use crate::schema::TableRef;

/// A DDL event of one source as the syncer would run it, handed to [`ShardCoordinator::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardDdl {
    /// The source (`source-id`).
    pub source: String,
    /// Where the DDL's event starts (a transaction end: the stream can be reopened there).
    pub location: Location,
    /// The upstream tables its statements change (a hold holds all of them).
    pub tables: Vec<TableRef>,
    /// The routed downstream tables, in the order of `tables`.
    pub targets: Vec<TableRef>,
    /// The statements the syncer would run, names qualified and routed, in order. A decision
    /// names them by index.
    pub statements: Vec<DdlStatement>,
}

/// What to do with a DDL now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DdlDecision {
    /// Run these statements (indexes into [`ShardDdl::statements`], in order); the others are
    /// not run. The tracker follows all of them.
    Execute(Vec<usize>),
    /// Run none of them; the tracker follows the DDL.
    Skip,
    /// Run none yet: hold the DDL's tables until a [`ShardResolution`] comes.
    Hold,
}

/// How a held DDL is to be run once resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Run these of its statements (indexes into the held [`ShardDdl::statements`]).
    Execute(Vec<usize>),
    /// Run none of them (another shard's DDL changed the downstream table already).
    Skip,
}

/// A held DDL, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardResolution {
    /// One of the held DDL's upstream tables.
    pub table: TableRef,
    /// The held DDL's start ([`ShardDdl::location`]).
    pub held_at: Location,
    /// What to run.
    pub resolved: Resolved,
}

/// Where a hold is: what the global checkpoint stores of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldStage {
    /// The DDL waits for its resolution; the table's rows after it are not applied.
    Held,
    /// Resolved: the DDL ran (or was skipped) and the table's rows from the DDL up to `until`
    /// (where the syncer was reading when the resolution came) are being replayed.
    Replaying {
        /// The end of the replay.
        until: Location,
    },
    /// The replay reached `until`: every row of the table from the DDL up to it is applied.
    /// Forgotten once the global checkpoint passes `until`.
    Replayed {
        /// The end of the replay.
        until: Location,
    },
}

/// A table whose DDL a coordinator held, kept in the global checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardHold {
    /// The upstream table.
    pub table: TableRef,
    /// Where its held DDL's event starts.
    pub held_at: Location,
    /// The transaction end just before the held DDL (the start of its event group): the
    /// stream reopens there for the replay, and the global checkpoint stays at or before it
    /// while the hold is held or replaying.
    pub reopen_at: Location,
    /// Where the hold is.
    pub stage: HoldStage,
}

/// A worker's progress through a replay, committed with the batch that replayed the rows
/// (`WorkerCheckpoint::replayed`): the last replayed change of that worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayMark {
    /// The hold being replayed ([`ShardHold::held_at`]).
    pub held_at: Location,
    /// The rows event of the last replayed change the worker committed.
    pub location: Location,
    /// That change's row index (as `WorkerCheckpoint::row`).
    pub row: u64,
}

/// Decides what happens to a source's DDL when its tables merge with other sources' tables.
pub trait ShardCoordinator: Send {
    /// The coordinator's error (a lost connection to the master is transient).
    type Error: ClassifiedError;

    /// After a restart: the holds the global checkpoint kept (held or replaying), before any
    /// event is read. A coordinator re-registers them and resolves them again if it already
    /// did.
    fn restore(
        &mut self,
        holds: &[ShardHold],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// What to do with `ddl` now. Called once per DDL event the syncer would run (again for
    /// an event met again after a restart, unless a hold or a record says it ran).
    fn decide(
        &mut self,
        ddl: &ShardDdl,
    ) -> impl Future<Output = Result<DdlDecision, Self::Error>> + Send;

    /// The next resolution of a held DDL; pending while there is none. Cancel-safe.
    fn next_resolution(
        &mut self,
    ) -> impl Future<Output = Result<ShardResolution, Self::Error>> + Send;
}

/// No shard merge: every statement runs at once, nothing is ever held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoSharding;

/// [`NoSharding`] restarted on a checkpoint that keeps held shard DDL (DM-10010).
#[derive(Debug, thiserror::Error)]
#[error(
    "the checkpoint keeps {holds} shard DDL hold(s) (first: {first}), but the task runs without shard DDL coordination"
)]
pub struct NoShardingError {
    /// How many holds the checkpoint keeps.
    pub holds: usize,
    /// The first of them: table and location.
    pub first: String,
}

impl ClassifiedError for NoShardingError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Definite
    }
    fn code(&self) -> ErrorCode {
        ErrorCode(10010)
    }
    fn workaround(&self) -> &'static str {
        "run the task with its shard-mode again (the held DDL waits for the other shards), or remove its checkpoints and migrate the table again"
    }
}

impl ShardCoordinator for NoSharding {
    type Error = NoShardingError;

    async fn restore(&mut self, holds: &[ShardHold]) -> Result<(), NoShardingError> {
        // Holds come only from a coordinator that held: a task that merged shards before
        // must not be resumed without one.
        match holds.first() {
            None => Ok(()),
            Some(first) => Err(NoShardingError {
                holds: holds.len(),
                first: format!("{} at {}", first.table, first.held_at),
            }),
        }
    }

    async fn decide(&mut self, ddl: &ShardDdl) -> Result<DdlDecision, NoShardingError> {
        Ok(DdlDecision::Execute((0..ddl.statements.len()).collect()))
    }

    async fn next_resolution(&mut self) -> Result<ShardResolution, NoShardingError> {
        std::future::pending().await
    }
}
