//! Checkpoints as typed values: what a syncer stores so that a restart applies every change
//! exactly once (`docs/design/checkpoint.md`), whatever keeps them.
//!
//! ```text
//! worker w's batch  --commits with-->  WorkerCheckpoint { location, row, workers }      (one per worker)
//! watermark G       --saved as----->   GlobalCheckpoint { location, the upstream that wrote it,
//!                                        safe-mode exit, schemas' charsets, tables changed since
//!                                        the last save, DDL record }
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
//!   passes the DDL;
//! - the [`UpstreamIdentity`] saved with a location is the server whose binlog the location's
//!   file position belongs to, or `None` when that is not known: a file position means
//!   something only on the server that wrote it, and a resume by position on another one is
//!   refused (DM-11014) rather than read from an unrelated event
//!   ([`UpstreamIdentity::same_server`]).

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

/// Which upstream server wrote a binlog position: its `@@server_id`, and its `@@server_uuid`
/// where it has one (MySQL 5.6+; MariaDB has none). After a failover the new primary has the
/// same transactions under its own file names and offsets, and possibly files of the same
/// names: an old position can name an event boundary there by chance, which only the identity
/// tells apart. Shown as `server_id 7` or `server_id 7 (server_uuid 3e11fa47-...)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UpstreamIdentity {
    /// `@@server_id`: unique within a replication group.
    pub server_id: u32,
    /// `@@server_uuid` (MySQL), `None` where the server has none (MariaDB) or did not say.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub server_uuid: Option<String>,
}

impl UpstreamIdentity {
    /// The identity of a server without a `server_uuid` (MariaDB).
    pub fn from_server_id(server_id: u32) -> Self {
        UpstreamIdentity {
            server_id,
            server_uuid: None,
        }
    }

    /// Whether `self` and `other` can be the same server. When both `server_uuid`s are known
    /// they decide: MySQL keeps a server's UUID across restarts and `SET GLOBAL server_id`,
    /// and gives a clone another one even when it kept the `server_id`. Otherwise (MariaDB has
    /// none) the same `server_id`.
    pub fn same_server(&self, other: &UpstreamIdentity) -> bool {
        match (&self.server_uuid, &other.server_uuid) {
            (Some(mine), Some(theirs)) => mine.eq_ignore_ascii_case(theirs),
            _ => self.server_id == other.server_id,
        }
    }
}

impl std::fmt::Display for UpstreamIdentity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "server_id {}", self.server_id)?;
        if let Some(uuid) = &self.server_uuid {
            write!(formatter, " (server_uuid {uuid})")?;
        }
        Ok(())
    }
}

/// The global checkpoint of a source, with what the syncer stores beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalCheckpoint {
    /// The source (`source-id`).
    pub source: String,
    /// A transaction end before which every change is committed downstream.
    pub location: Location,
    /// The upstream server whose binlog `location`'s file position belongs to, when known: a
    /// resume by file position on a server of another identity is refused (DM-11014); a
    /// resume by GTID set does not need it. `None` in checkpoints written before it was kept,
    /// and when the syncer could not tell (it read through the relay log, or read nothing
    /// since a start without one).
    pub upstream: Option<UpstreamIdentity>,
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

impl GlobalCheckpoint {
    /// A checkpoint of `source` at `location` and nothing else: no upstream identity, no safe
    /// mode exit, no DDL record, hold or table (set the fields that apply).
    pub fn new(source: impl Into<String>, location: Location) -> Self {
        GlobalCheckpoint {
            source: source.into(),
            location,
            upstream: None,
            safe_mode_exit: None,
            schema_charsets: HashMap::new(),
            ddl: None,
            earlier_ddls: Vec::new(),
            holds: Vec::new(),
            tables: Vec::new(),
        }
    }
}

/// Everything stored for one task and source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceCheckpoints {
    /// The global checkpoint, with every stored table; `None` before the first save.
    pub global: Option<GlobalCheckpoint>,
    /// The worker checkpoints, one per worker that committed a batch, by worker number.
    pub workers: Vec<WorkerCheckpoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(server_id: u32, uuid: &str) -> UpstreamIdentity {
        UpstreamIdentity {
            server_id,
            server_uuid: Some(uuid.to_owned()),
        }
    }

    #[test]
    fn identities_differ_by_server_id_and_by_known_uuids_only() {
        let first = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let second = "8a94f357-aab4-11df-86ab-c80aa9429562";
        let mariadb = UpstreamIdentity::from_server_id(1);
        assert!(mariadb.same_server(&UpstreamIdentity::from_server_id(1)));
        assert!(!mariadb.same_server(&UpstreamIdentity::from_server_id(2)));
        assert!(mysql(1, first).same_server(&mysql(1, &first.to_uppercase())));
        assert!(
            !mysql(1, first).same_server(&mysql(1, second)),
            "a clone that kept its server_id"
        );
        assert!(
            mysql(1, first).same_server(&mysql(2, first)),
            "SET GLOBAL server_id on the same MySQL server keeps its UUID"
        );
        // One side without a UUID (an old MySQL, or a checkpoint of a server that had none):
        // the server ids decide.
        assert!(mysql(1, first).same_server(&mariadb));
        assert!(mariadb.same_server(&mysql(1, first)));
        assert!(!mariadb.same_server(&mysql(2, first)));
    }

    #[test]
    fn identities_show_what_is_known() {
        assert_eq!(
            UpstreamIdentity::from_server_id(7).to_string(),
            "server_id 7"
        );
        assert_eq!(
            mysql(7, "3e11fa47-71ca-11e1-9e33-c80aa9429562").to_string(),
            "server_id 7 (server_uuid 3e11fa47-71ca-11e1-9e33-c80aa9429562)"
        );
    }
}
