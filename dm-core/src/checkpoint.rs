//! Checkpoints as typed values: what a syncer stores so that a restart applies every change
//! exactly once (`docs/design/checkpoint.md`), whatever keeps them.
//!
//! ```text
//! worker w's batch  --commits with-->  WorkerCheckpoint { location, row, workers }      (one per worker)
//! watermark G       --saved as----->   GlobalCheckpoint { location, safe-mode exit, schemas'
//!                                        charsets, tables changed since the last save, DDL record }
//! restart           <--loaded as----   SourceCheckpoints { global (every stored table), workers }
//! ```
//!
//! A [`crate::Sink`] writes the worker checkpoint a [`crate::ChangeBatch`] carries in the
//! batch's own transaction (or write, or block); a [`crate::CheckpointStore`] saves and loads
//! the rest. How they are stored is each implementation's business: `dm-sink` keeps DM's
//! `<task>_syncer_checkpoint` table and JSON in its `table_info` column, a change feed keeps
//! them as lines of its own file. These types say what is stored, never how.
//!
//! Invariants the syncer keeps (and a store must not break):
//! - a worker checkpoint only ever moves forward, and only with the batch it ends;
//! - the tables saved with a global checkpoint are the upstream structures of the rows after
//!   its location (the tracker only changes at a DDL, which is followed by a save);
//! - a [`DdlRecord`] is kept in every save from the one before its statement runs until one
//!   passes the DDL.

use std::collections::HashMap;

use crate::location::Location;
use crate::position::BinlogPosition;
use crate::schema::{TableRef, TableSchema};
pub use crate::shard::{HoldStage, ReplayMark, ShardHold};

/// One worker's committed point: written with every batch the worker commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCheckpoint {
    /// The source (`source-id`).
    pub source: String,
    /// The worker's number, 0-based.
    pub worker: u32,
    /// How many workers the task ran with when this was written (a restart keeps that count
    /// until the stored state is clean: the assignment of changes depends on it).
    pub workers: u32,
    /// The location of the rows event of the last change the worker committed.
    pub location: Location,
    /// That change's index among its event's rows; for an event inside a MySQL transaction
    /// payload, the event's index in the payload times 2^32 plus the row's index.
    pub row: u64,
    /// The worker's progress through the replay of a held table (shard DDL), when its batches
    /// replayed rows (`docs/design/checkpoint.md`, "Held tables and rewinds", rule 4): it
    /// commits with the replayed rows, and `location` does not move for them.
    pub replayed: Option<ReplayMark>,
}

/// What the syncer keeps about one upstream table: its structure in force at the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TableSnapshot {
    /// Its structure.
    pub schema: TableSchema,
    /// The default character set a text column added later without its own gets, when known.
    pub default_charset: Option<String>,
}

/// A table saved with a global checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCheckpoint {
    /// The upstream table.
    pub table: TableRef,
    /// Its structure, or `None`: the syncer no longer keeps anything about it (it was dropped
    /// or renamed away), and the store forgets it.
    pub snapshot: Option<TableSnapshot>,
}

/// A DDL statement about to run downstream, recorded in the global checkpoint just before it
/// runs, so that a restart knows whether it ran (`docs/design/checkpoint.md`, item 5). Its
/// serde form (feature `serde`) is the one DM-table checkpoints have always stored:
/// `{"position": "file:offset", "statement", "sql", "before": [[name, definition]]}`, plus the
/// event's `suffix` (0 when absent: what earlier versions stored).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DdlRecord {
    /// Where its Query event starts.
    pub position: BinlogPosition,
    /// The event's suffix: DDL events a `binlog replace` or `inject` made share one position
    /// and are told apart by it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub suffix: u32,
    /// Which statement of the event's plan; the plan's length means that every statement ran
    /// (a DDL inside a transaction, until a checkpoint passes the transaction's end).
    pub statement: usize,
    /// The SQL sent downstream (empty when `statement` is past the last).
    pub sql: String,
    /// What the sink read of each object the statement changes just before it ran (its name,
    /// and what the sink reads of it: MySQL's `SHOW CREATE` without the `AUTO_INCREMENT`
    /// counter, `None` when it did not exist), given back to
    /// [`crate::DdlSink::ddl_ran`] after a crash. Empty for a sink that answers from its own
    /// records.
    pub before: Vec<(String, Option<String>)>,
}

impl DdlRecord {
    /// Where the recorded DDL event is against the event at `location`: `Greater` when the
    /// record is of a later event (so the one at `location`, met again after a restart, ran
    /// before the crash), `Equal` for the same event; `None` when the positions do not compare
    /// (files of different base names).
    pub fn compare_to(&self, location: &crate::Location) -> Option<std::cmp::Ordering> {
        Some(
            self.position
                .partial_cmp(&location.position)?
                .then(self.suffix.cmp(&location.suffix)),
        )
    }
}

/// The global checkpoint of a source, with what the syncer stores beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalCheckpoint {
    /// The source (`source-id`).
    pub source: String,
    /// A transaction end before which every change is committed downstream.
    pub location: Location,
    /// Until this location the syncer writes idempotently (safe mode; DM's exit point), if any.
    pub safe_mode_exit: Option<Location>,
    /// The schemas' default character sets, as the tracker knows them (all of them).
    pub schema_charsets: HashMap<String, String>,
    /// A DDL statement that is running or may have run, kept until a checkpoint passes its DDL.
    pub ddl: Option<DdlRecord>,
    /// Records of earlier DDL events that ran while the checkpoint was held back by a shard
    /// hold (the floor), each kept until a checkpoint passes its DDL; empty otherwise.
    pub earlier_ddls: Vec<DdlRecord>,
    /// The tables whose DDL a shard coordinator held, with where each is.
    pub holds: Vec<ShardHold>,
    /// Saved: the tables changed since the previous save (the store keeps the others as they
    /// were). Loaded: every table the store keeps.
    pub tables: Vec<TableCheckpoint>,
}

/// Everything stored for one task and source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceCheckpoints {
    /// The global checkpoint, with every stored table; `None` before the first save.
    pub global: Option<GlobalCheckpoint>,
    /// The worker checkpoints, one per worker that committed a batch, by worker number.
    pub workers: Vec<WorkerCheckpoint>,
}
