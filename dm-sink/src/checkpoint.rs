//! Checkpoint tables in the downstream meta schema, and the statements that write them inside a
//! batch's own transaction (the exactly-once design of `docs/design/checkpoint.md`): how
//! `MySqlSink` keeps dm-core's typed checkpoints (`dm_core::checkpoint`) for the syncer.
//!
//! ```text
//! <meta-schema>.<task>_syncer_checkpoint   DM's table: the global point (is_global = 1) with its
//!                                           safe-mode exit point, and per-table rows (is_global = 0)
//!                                           with what the syncer keeps about each table (`table_info`)
//! <meta-schema>.<task>_worker_checkpoint   one row per (source, worker): the location of the last
//!                                           change the worker committed, written in the same
//!                                           transaction as the worker's batch
//! ```
//!
//! Locations are stored as DM stores them (`binlog_name`, `binlog_pos`, `binlog_gtid`), plus the
//! injected-event suffix; offsets are BIGINT so files past 4 GiB fit. What the syncer keeps
//! beside the global point is JSON in DM's `table_info` columns: in the global row the schemas'
//! default character sets and a running DDL statement's record (`{"version":1,
//! "schema_charsets":{..},"ddl":{"position","statement","sql","before"}}`), the upstream server
//! that wrote the location (`"upstream":{"server_id","server_uuid"?}` and the position it was
//! saved with, `"upstream_position"`; absent when unknown and in rows of earlier versions, and
//! ignored once the row's position was changed by hand: both load as `None`), and, for shard DDL,
//! `"earlier_ddls":[..]` and `"holds":[{"table","held_at","reopen_at","stage","until"}]`; in each
//! table row the table's structure (`dm_core::TableSnapshot`); in a worker row's `replay_info`
//! (added to tables of earlier versions at start) its replay progress
//! (`{"held_at","location","row"}`) or NULL. [`CheckpointTables::save_statements`] and
//! [`CheckpointTables::load`] convert the typed values; [`GlobalRow`] and [`TableRow`] are the
//! rows as stored.
//!
//! Invariant: [`CheckpointTables::save_statements`] are the global row and its table rows, run in one
//! transaction, and a worker row is only ever written inside its batch's transaction
//! (`MySqlSink::apply_batch`).

use std::collections::HashMap;
use std::sync::Arc;

use dm_core::{
    BinlogPosition, DdlRecord, Flavor, GlobalCheckpoint, GtidSet, HoldStage, Location, ReplayMark,
    ShardHold, SourceCheckpoints, TableCheckpoint, TableRef, TableSnapshot, UpstreamIdentity,
};
use serde::{Deserialize, Serialize};

use crate::error::SinkError;
use crate::literal::{write_identifier, write_table};

pub use dm_core::WorkerCheckpoint;

/// The global row of a source as DM's table stores it: everything before `location` is
/// committed downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRow {
    /// The source.
    pub source: String,
    /// A transaction end.
    pub location: Location,
    /// Until this location a restart replays in safe mode (DM's exit point), if any.
    pub safe_mode_exit: Option<Location>,
    /// What the syncer keeps with the point (DM's `table_info` column of the global row;
    /// opaque here, `{}` when nothing).
    pub table_info: String,
}

/// A table's row beside the global point (DM's per-table rows) as stored: what the syncer keeps
/// about one upstream table, written in the same transaction as the global point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    /// The source.
    pub source: String,
    /// The upstream table.
    pub table: TableRef,
    /// The global point it was written with.
    pub location: Location,
    /// What the syncer keeps (opaque here).
    pub table_info: String,
}

/// The names of a task's checkpoint tables and the SQL that reads and writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointTables {
    meta_schema: String,
    task: String,
}

fn quote_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    crate::literal::write_value(&mut out, &dm_core::Value::Text(text.to_owned()));
    out
}

impl CheckpointTables {
    /// The tables of `task` in `meta_schema` (DM's default `dm_meta`).
    pub fn new(meta_schema: &str, task: &str) -> Result<Self, SinkError> {
        if meta_schema.is_empty() || task.is_empty() {
            return Err(SinkError::Schema {
                table: format!("{meta_schema}.{task}"),
                reason: "the meta schema and the task name must not be empty".into(),
            });
        }
        Ok(CheckpointTables {
            meta_schema: meta_schema.to_owned(),
            task: task.to_owned(),
        })
    }

    /// The meta schema.
    pub fn meta_schema(&self) -> &str {
        &self.meta_schema
    }

    /// The task.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// `<meta>.<task>_syncer_checkpoint`.
    pub fn syncer_table(&self) -> TableRef {
        TableRef::new(
            &self.meta_schema,
            format!("{}_syncer_checkpoint", self.task),
        )
    }

    /// `<meta>.<task>_worker_checkpoint`.
    pub fn worker_table(&self) -> TableRef {
        TableRef::new(
            &self.meta_schema,
            format!("{}_worker_checkpoint", self.task),
        )
    }

    /// `<meta>.<task>_load_chunk`: the loader's chunks (created by dm-dumpload's loader, one row
    /// per chunk: `source_id, schema_name, table_name, chunk, plan, state, row_count,
    /// byte_count`).
    pub fn load_chunk_table(&self) -> TableRef {
        TableRef::new(&self.meta_schema, format!("{}_load_chunk", self.task))
    }

    /// `<meta>.<task>_load_status`: the loader's state per source (created by the loader).
    pub fn load_status_table(&self) -> TableRef {
        TableRef::new(&self.meta_schema, format!("{}_load_status", self.task))
    }

    /// The statement that marks `chunk` loaded, to run in the transaction of its rows.
    pub fn chunk_loaded(&self, chunk: &dm_core::ChunkMark, rows: u64, bytes: u64) -> String {
        let mut sql = String::from("UPDATE ");
        write_table(&mut sql, &self.load_chunk_table());
        sql.push_str(&format!(
            " SET state = 'loaded', row_count = {rows}, byte_count = {bytes} \
             WHERE source_id = {} AND schema_name = {} AND table_name = {} AND chunk = {}",
            quote_text(&chunk.source),
            quote_text(&chunk.table.schema),
            quote_text(&chunk.table.table),
            chunk.chunk
        ));
        sql
    }

    /// Creates the schema and both tables if they are missing.
    pub fn create_statements(&self) -> Vec<String> {
        let mut schema = String::from("CREATE DATABASE IF NOT EXISTS ");
        write_identifier(&mut schema, &self.meta_schema);
        let mut syncer = String::from("CREATE TABLE IF NOT EXISTS ");
        write_table(&mut syncer, &self.syncer_table());
        syncer.push_str(
            " (id VARCHAR(32) NOT NULL, \
             cp_schema VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             cp_table VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             binlog_name VARCHAR(128), binlog_pos BIGINT UNSIGNED, binlog_gtid TEXT, \
             exit_safe_binlog_name VARCHAR(128) DEFAULT '', exit_safe_binlog_pos BIGINT UNSIGNED DEFAULT 0, \
             exit_safe_binlog_gtid TEXT, table_info LONGTEXT, is_global BOOLEAN, \
             create_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
             update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
             UNIQUE KEY uk_id_schema_table (id, cp_schema, cp_table))",
        );
        let mut worker = String::from("CREATE TABLE IF NOT EXISTS ");
        write_table(&mut worker, &self.worker_table());
        worker.push_str(
            " (source VARCHAR(32) NOT NULL, worker INT UNSIGNED NOT NULL, workers INT UNSIGNED NOT NULL, \
             binlog_name VARCHAR(128) NOT NULL, binlog_pos BIGINT UNSIGNED NOT NULL, binlog_gtid TEXT, \
             suffix INT UNSIGNED NOT NULL DEFAULT 0, row_index BIGINT UNSIGNED NOT NULL DEFAULT 0, \
             replay_info TEXT, \
             update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
             PRIMARY KEY (source, worker))",
        );
        vec![schema, syncer, worker]
    }

    fn location_values(location: &Location) -> String {
        format!(
            "{}, {}, {}",
            quote_text(&location.position.file.to_string()),
            location.position.offset,
            location
                .gtid_set
                .as_ref()
                .map_or_else(|| "NULL".to_owned(), |set| quote_text(&set.to_string()))
        )
    }

    /// The upsert of a worker's row, to run in the same transaction as its batch.
    pub fn worker_upsert(&self, checkpoint: &WorkerCheckpoint) -> String {
        let mut sql = String::from("INSERT INTO ");
        write_table(&mut sql, &self.worker_table());
        sql.push_str(&format!(
            " (source, worker, workers, binlog_name, binlog_pos, binlog_gtid, suffix, row_index, replay_info) \
             VALUES ({}, {}, {}, {}, {}, {}, {}) \
             ON DUPLICATE KEY UPDATE workers = VALUES(workers), binlog_name = VALUES(binlog_name), \
             binlog_pos = VALUES(binlog_pos), binlog_gtid = VALUES(binlog_gtid), suffix = VALUES(suffix), \
             row_index = VALUES(row_index), replay_info = VALUES(replay_info)",
            quote_text(&checkpoint.source),
            checkpoint.worker,
            checkpoint.workers,
            Self::location_values(&checkpoint.location),
            checkpoint.location.suffix,
            checkpoint.row,
            checkpoint
                .replayed
                .as_ref()
                .map_or_else(|| "NULL".to_owned(), |mark| quote_text(&StoredMark::from(mark).text()))
        ));
        sql
    }

    /// The upsert of the global point (DM's `is_global` row).
    pub fn global_upsert(&self, checkpoint: &GlobalRow) -> String {
        let mut sql = String::from("INSERT INTO ");
        write_table(&mut sql, &self.syncer_table());
        let exit = match &checkpoint.safe_mode_exit {
            Some(exit) => Self::location_values(exit),
            None => "'', 0, NULL".to_owned(),
        };
        sql.push_str(&format!(
            " (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_name, \
             exit_safe_binlog_pos, exit_safe_binlog_gtid, table_info, is_global) \
             VALUES ({}, '', '', {}, {exit}, {}, 1) \
             ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), binlog_pos = VALUES(binlog_pos), \
             binlog_gtid = VALUES(binlog_gtid), exit_safe_binlog_name = VALUES(exit_safe_binlog_name), \
             exit_safe_binlog_pos = VALUES(exit_safe_binlog_pos), exit_safe_binlog_gtid = VALUES(exit_safe_binlog_gtid), \
             table_info = VALUES(table_info)",
            quote_text(&checkpoint.source),
            Self::location_values(&checkpoint.location),
            quote_text(&checkpoint.table_info),
        ));
        sql
    }

    /// The upsert of a table's row (`is_global = 0`), to run in the global point's transaction.
    pub fn table_upsert(&self, checkpoint: &TableRow) -> String {
        let mut sql = String::from("INSERT INTO ");
        write_table(&mut sql, &self.syncer_table());
        sql.push_str(&format!(
            " (id, cp_schema, cp_table, binlog_name, binlog_pos, binlog_gtid, table_info, is_global) \
             VALUES ({}, {}, {}, {}, {}, 0) \
             ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), binlog_pos = VALUES(binlog_pos), \
             binlog_gtid = VALUES(binlog_gtid), table_info = VALUES(table_info)",
            quote_text(&checkpoint.source),
            quote_text(&checkpoint.table.schema),
            quote_text(&checkpoint.table.table),
            Self::location_values(&checkpoint.location),
            quote_text(&checkpoint.table_info),
        ));
        sql
    }

    /// The removal of a table's row (the syncer no longer keeps anything about it).
    pub fn table_delete(&self, source: &str, table: &TableRef) -> String {
        let mut sql = String::from("DELETE FROM ");
        write_table(&mut sql, &self.syncer_table());
        sql.push_str(&format!(
            " WHERE id = {} AND cp_schema = {} AND cp_table = {} AND is_global = 0",
            quote_text(source),
            quote_text(&table.schema),
            quote_text(&table.table),
        ));
        sql
    }

    /// The query of a source's table rows: `cp_schema, cp_table, table_info`.
    pub fn tables_query(&self, source: &str) -> String {
        let mut sql = String::from("SELECT cp_schema, cp_table, table_info FROM ");
        write_table(&mut sql, &self.syncer_table());
        sql.push_str(&format!(
            " WHERE id = {} AND is_global = 0 ORDER BY cp_schema, cp_table",
            quote_text(source)
        ));
        sql
    }

    /// The query of a source's worker rows: `worker, workers, binlog_name, binlog_pos,
    /// binlog_gtid, suffix, row_index, replay_info`.
    pub fn worker_query(&self, source: &str) -> String {
        let mut sql = String::from(
            "SELECT worker, workers, binlog_name, binlog_pos, binlog_gtid, suffix, row_index, replay_info FROM ",
        );
        write_table(&mut sql, &self.worker_table());
        sql.push_str(&format!(
            " WHERE source = {} ORDER BY worker",
            quote_text(source)
        ));
        sql
    }

    /// The query of a source's global row: `binlog_name, binlog_pos, binlog_gtid,
    /// exit_safe_binlog_name, exit_safe_binlog_pos, exit_safe_binlog_gtid, table_info`.
    pub fn global_query(&self, source: &str) -> String {
        let mut sql = String::from(
            "SELECT binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_name, exit_safe_binlog_pos, exit_safe_binlog_gtid, table_info FROM ",
        );
        write_table(&mut sql, &self.syncer_table());
        sql.push_str(&format!(
            " WHERE id = {} AND is_global = 1",
            quote_text(source)
        ));
        sql
    }
}

fn number<T: std::str::FromStr>(text: Option<&Option<String>>, what: &str) -> Result<T, SinkError> {
    text.and_then(|value| value.as_deref())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| SinkError::Schema {
            table: "checkpoint".into(),
            reason: format!("`{what}` is missing or not a number"),
        })
}

impl CheckpointTables {
    /// Creates the meta schema and tables downstream if missing, and brings tables an earlier
    /// version created up to date: table names compared byte for byte (names that differ only
    /// in case or accents are different tables when the task is case-sensitive), row indexes
    /// past 2^32 (events inside a transaction payload).
    pub async fn create(&self, sink: &mut crate::MySqlSink) -> Result<(), SinkError> {
        for statement in self.create_statements() {
            sink.execute(&statement).await?;
        }
        let mut query = String::from(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ",
        );
        query.push_str(&quote_text(&self.meta_schema));
        query.push_str(" AND COLUMN_NAME IN ('row_index', 'cp_table')");
        for row in sink.query(&query).await? {
            let text = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
            let (table, column) = (text(0), text(1));
            let statement = if table == self.worker_table().table
                && column == "row_index"
                && text(2).eq_ignore_ascii_case("int")
            {
                let mut sql = String::from("ALTER TABLE ");
                write_table(&mut sql, &self.worker_table());
                sql.push_str(" MODIFY row_index BIGINT UNSIGNED NOT NULL DEFAULT 0");
                sql
            } else if table == self.syncer_table().table
                && column == "cp_table"
                && text(3) != "utf8mb4_bin"
            {
                let mut sql = String::from("ALTER TABLE ");
                write_table(&mut sql, &self.syncer_table());
                sql.push_str(
                    " MODIFY cp_schema VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                     MODIFY cp_table VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
                );
                sql
            } else {
                continue;
            };
            sink.execute(&statement).await?;
        }
        // Worker tables of earlier versions have no replay progress (shard DDL holds).
        let mut query =
            String::from("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ");
        query.push_str(&quote_text(&self.meta_schema));
        query.push_str(" AND TABLE_NAME = ");
        query.push_str(&quote_text(&self.worker_table().table));
        query.push_str(" AND COLUMN_NAME = 'replay_info'");
        let present = |rows: Vec<Vec<Option<String>>>| {
            rows.first()
                .and_then(|row| row.first().cloned().flatten())
                .is_some_and(|count| count != "0")
        };
        if !present(sink.query(&query).await?) {
            let mut sql = String::from("ALTER TABLE ");
            write_table(&mut sql, &self.worker_table());
            sql.push_str(" ADD COLUMN replay_info TEXT");
            if let Err(error) = sink.execute(&sql).await {
                // Another source of the task may have added it first (the worker table is
                // the task's): only a column still missing is an error.
                if !present(sink.query(&query).await?) {
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// The worker rows of `source`.
    pub async fn load_workers(
        &self,
        sink: &mut crate::MySqlSink,
        source: &str,
        flavor: Flavor,
    ) -> Result<Vec<WorkerCheckpoint>, SinkError> {
        let rows = sink.query(&self.worker_query(source)).await?;
        rows.iter()
            .map(|row| {
                let name = row.get(2).cloned().flatten().unwrap_or_default();
                Ok(WorkerCheckpoint {
                    source: source.to_owned(),
                    worker: number(row.first(), "worker")?,
                    workers: number(row.get(1), "workers")?,
                    location: location_from_row(
                        &name,
                        number(row.get(3), "binlog_pos")?,
                        row.get(4).and_then(|value| value.as_deref()),
                        number(row.get(5), "suffix")?,
                        flavor,
                    )?,
                    row: number(row.get(6), "row_index")?,
                    replayed: match row.get(7).and_then(|value| value.as_deref()) {
                        Some(text) if !text.is_empty() => {
                            Some(StoredMark::parse(text)?.typed(flavor)?)
                        }
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// The global row of `source`, if one was written.
    pub async fn load_global(
        &self,
        sink: &mut crate::MySqlSink,
        source: &str,
        flavor: Flavor,
    ) -> Result<Option<GlobalRow>, SinkError> {
        let rows = sink.query(&self.global_query(source)).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let name = row.first().cloned().flatten().unwrap_or_default();
        let location = location_from_row(
            &name,
            number(row.get(1), "binlog_pos")?,
            row.get(2).and_then(|value| value.as_deref()),
            0,
            flavor,
        )?;
        let exit_name = row.get(3).cloned().flatten().unwrap_or_default();
        let safe_mode_exit = if exit_name.is_empty() {
            None
        } else {
            Some(location_from_row(
                &exit_name,
                number(row.get(4), "exit_safe_binlog_pos")?,
                row.get(5).and_then(|value| value.as_deref()),
                0,
                flavor,
            )?)
        };
        Ok(Some(GlobalRow {
            source: source.to_owned(),
            location,
            safe_mode_exit,
            table_info: row
                .get(6)
                .cloned()
                .flatten()
                .filter(|text| !text.is_empty())
                .unwrap_or_else(|| "{}".to_owned()),
        }))
    }

    /// The table rows of `source`: each table and what the syncer keeps about it.
    pub async fn load_tables(
        &self,
        sink: &mut crate::MySqlSink,
        source: &str,
    ) -> Result<Vec<(TableRef, String)>, SinkError> {
        let rows = sink.query(&self.tables_query(source)).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let text = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
                (TableRef::new(text(0), text(1)), text(2))
            })
            .collect())
    }
}

/// The global row's `table_info`: what the syncer keeps beside the location.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct GlobalInfo {
    /// The format's version (1).
    #[serde(default)]
    version: u32,
    /// The schemas' default character sets, as the tracker knows them.
    #[serde(default)]
    schema_charsets: HashMap<String, String>,
    /// The DDL statement being executed downstream, when the checkpoint was written at its
    /// start.
    #[serde(default)]
    ddl: Option<DdlRecord>,
    /// Records of earlier DDL events kept while a shard hold held the checkpoint back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    earlier_ddls: Vec<DdlRecord>,
    /// The shard DDL holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    holds: Vec<StoredHold>,
    /// The upstream server that wrote the location, when known (absent in earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<UpstreamIdentity>,
    /// The position (`file:offset`) `upstream` was saved with: a row whose `binlog_name` and
    /// `binlog_pos` no longer say this (a user pointed the checkpoint at the matching position
    /// on a new primary, DM-11014's fix) names no upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream_position: Option<String>,
}

/// A location as `table_info` JSON keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredLocation {
    /// `file:offset`.
    position: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gtid: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    suffix: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl From<&Location> for StoredLocation {
    fn from(location: &Location) -> Self {
        StoredLocation {
            position: location.position.to_string(),
            gtid: location.gtid_set.as_ref().map(|set| set.to_string()),
            suffix: location.suffix,
        }
    }
}

impl StoredLocation {
    fn typed(&self, flavor: Flavor) -> Result<Location, SinkError> {
        let position =
            BinlogPosition::parse(&self.position).map_err(|error| SinkError::Schema {
                table: "checkpoint".into(),
                reason: format!("a stored position `{}`: {error}", self.position),
            })?;
        location_from_row(
            &position.file.to_string(),
            position.offset,
            self.gtid.as_deref(),
            self.suffix,
            flavor,
        )
    }
}

/// A shard hold as the global row's `table_info` keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredHold {
    table: TableRef,
    held_at: StoredLocation,
    reopen_at: StoredLocation,
    /// `held`, `replaying` or `replayed`.
    stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<StoredLocation>,
}

impl From<&ShardHold> for StoredHold {
    fn from(hold: &ShardHold) -> Self {
        let (stage, until) = match &hold.stage {
            HoldStage::Held => ("held", None),
            HoldStage::Replaying { until } => ("replaying", Some(until.into())),
            HoldStage::Replayed { until } => ("replayed", Some(until.into())),
        };
        StoredHold {
            table: hold.table.clone(),
            held_at: (&hold.held_at).into(),
            reopen_at: (&hold.reopen_at).into(),
            stage: stage.to_owned(),
            until,
        }
    }
}

impl StoredHold {
    fn typed(&self, flavor: Flavor) -> Result<ShardHold, SinkError> {
        let until = || -> Result<Location, SinkError> {
            self.until
                .as_ref()
                .ok_or_else(|| SinkError::Schema {
                    table: "checkpoint".into(),
                    reason: format!("the hold of {} has no replay end", self.table),
                })?
                .typed(flavor)
        };
        let stage = match self.stage.as_str() {
            "held" => HoldStage::Held,
            "replaying" => HoldStage::Replaying { until: until()? },
            "replayed" => HoldStage::Replayed { until: until()? },
            other => {
                return Err(SinkError::Schema {
                    table: "checkpoint".into(),
                    reason: format!(
                        "the hold of {} is in an unknown stage `{other}`",
                        self.table
                    ),
                });
            }
        };
        Ok(ShardHold {
            table: self.table.clone(),
            held_at: self.held_at.typed(flavor)?,
            reopen_at: self.reopen_at.typed(flavor)?,
            stage,
        })
    }
}

/// A worker row's `replay_info`: its progress through a replay (shard DDL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredMark {
    held_at: StoredLocation,
    location: StoredLocation,
    row: u64,
}

impl From<&ReplayMark> for StoredMark {
    fn from(mark: &ReplayMark) -> Self {
        StoredMark {
            held_at: (&mark.held_at).into(),
            location: (&mark.location).into(),
            row: mark.row,
        }
    }
}

impl StoredMark {
    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    fn parse(text: &str) -> Result<StoredMark, SinkError> {
        serde_json::from_str(text).map_err(|error| SinkError::Schema {
            table: "checkpoint".into(),
            reason: format!(
                "a worker row's replay_info cannot be read ({error}): it was not written by this syncer, so which replayed rows are applied cannot be told: remove this source's rows from the task's syncer and worker checkpoint tables and migrate its tables again"
            ),
        })
    }

    fn typed(&self, flavor: Flavor) -> Result<ReplayMark, SinkError> {
        Ok(ReplayMark {
            held_at: self.held_at.typed(flavor)?,
            location: self.location.typed(flavor)?,
            row: self.row,
        })
    }
}

impl GlobalInfo {
    /// Reads a global row's `table_info` (`{}` and DM's own empty value read as nothing kept).
    fn parse(text: &str) -> Result<GlobalInfo, SinkError> {
        if text.trim().is_empty() {
            return Ok(GlobalInfo::default());
        }
        serde_json::from_str(text).map_err(|error| SinkError::Schema {
            table: "checkpoint".into(),
            reason: format!(
                "the global checkpoint's table_info cannot be read ({error}): it was not written by this syncer; remove the task's checkpoint rows to start over"
            ),
        })
    }

    /// The upstream that wrote `location`: the stored one, unless it was saved with another
    /// position (the row's position was changed since, by hand).
    fn upstream_of(&self, location: &Location) -> Option<UpstreamIdentity> {
        let saved_with = self.upstream_position.as_deref();
        if saved_with.is_some_and(|position| position != location.position.to_string()) {
            return None;
        }
        self.upstream.clone()
    }

    fn text(&self) -> Result<String, SinkError> {
        serde_json::to_string(self).map_err(|error| SinkError::Schema {
            table: "checkpoint".into(),
            reason: format!("the checkpoint's table_info cannot be written: {error}"),
        })
    }
}

/// Reads a table row's `table_info`.
fn parse_table(table: &TableRef, text: &str) -> Result<TableSnapshot, SinkError> {
    serde_json::from_str(text).map_err(|error| SinkError::Schema {
        table: table.to_string(),
        reason: format!(
            "its stored structure in the checkpoint table cannot be read ({error}): remove its row from the checkpoint table to read it from the downstream again"
        ),
    })
}

/// The text stored for a table.
fn table_text(snapshot: &TableSnapshot) -> String {
    serde_json::to_string(snapshot).unwrap_or_else(|_| "{}".to_owned())
}

impl CheckpointTables {
    /// The statements that save `checkpoint` (its global row, its tables' rows), to run in one
    /// transaction.
    pub fn save_statements(&self, checkpoint: &GlobalCheckpoint) -> Result<Vec<String>, SinkError> {
        let info = GlobalInfo {
            version: 1,
            schema_charsets: checkpoint.schema_charsets.clone(),
            ddl: checkpoint.ddl.clone(),
            earlier_ddls: checkpoint.earlier_ddls.clone(),
            holds: checkpoint.holds.iter().map(StoredHold::from).collect(),
            upstream: checkpoint.upstream.clone(),
            upstream_position: checkpoint
                .upstream
                .as_ref()
                .map(|_| checkpoint.location.position.to_string()),
        };
        let mut statements = Vec::with_capacity(checkpoint.tables.len() + 1);
        statements.push(self.global_upsert(&GlobalRow {
            source: checkpoint.source.clone(),
            location: checkpoint.location.clone(),
            safe_mode_exit: checkpoint.safe_mode_exit.clone(),
            table_info: info.text()?,
        }));
        for table in &checkpoint.tables {
            statements.push(match &table.snapshot {
                Some(snapshot) => self.table_upsert(&TableRow {
                    source: checkpoint.source.clone(),
                    table: table.table.clone(),
                    location: checkpoint.location.clone(),
                    table_info: table_text(snapshot),
                }),
                None => self.table_delete(&checkpoint.source, &table.table),
            });
        }
        Ok(statements)
    }

    /// Everything stored for `source` (creating the tables first when missing).
    pub async fn load(
        &self,
        sink: &mut crate::MySqlSink,
        source: &str,
        flavor: Flavor,
    ) -> Result<SourceCheckpoints, SinkError> {
        self.create(sink).await?;
        let workers = self.load_workers(sink, source, flavor).await?;
        let Some(row) = self.load_global(sink, source, flavor).await? else {
            return Ok(SourceCheckpoints {
                global: None,
                workers,
            });
        };
        let info = GlobalInfo::parse(&row.table_info)?;
        let mut tables = Vec::new();
        for (table, text) in self.load_tables(sink, source).await? {
            let snapshot = parse_table(&table, &text)?;
            tables.push(TableCheckpoint {
                table,
                snapshot: Some(snapshot),
            });
        }
        Ok(SourceCheckpoints {
            global: Some(GlobalCheckpoint {
                source: source.to_owned(),
                upstream: info.upstream_of(&row.location),
                location: row.location,
                safe_mode_exit: row.safe_mode_exit,
                schema_charsets: info.schema_charsets,
                ddl: info.ddl,
                earlier_ddls: info.earlier_ddls,
                holds: info
                    .holds
                    .iter()
                    .map(|hold| hold.typed(flavor))
                    .collect::<Result<_, _>>()?,
                tables,
            }),
            workers,
        })
    }
}

/// A location read back from a checkpoint row.
pub fn location_from_row(
    name: &str,
    offset: u64,
    gtid: Option<&str>,
    suffix: u32,
    flavor: Flavor,
) -> Result<Location, SinkError> {
    let invalid = |reason: String| SinkError::Schema {
        table: "checkpoint".into(),
        reason,
    };
    let file = dm_core::BinlogFileName::parse(name)
        .map_err(|error| invalid(format!("binlog_name `{name}`: {error}")))?;
    let gtid_set = match gtid.filter(|text| !text.is_empty()) {
        Some(text) => {
            Some(Arc::new(GtidSet::parse(flavor, text).map_err(|error| {
                invalid(format!("binlog_gtid `{text}`: {error}"))
            })?))
        }
        None => None,
    };
    Ok(Location {
        position: BinlogPosition::new(file, offset),
        gtid_set,
        suffix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statements_quote_everything() {
        let tables = CheckpointTables::new("dm_meta", "shop`task").expect("tables");
        assert_eq!(tables.worker_table().table, "shop`task_worker_checkpoint");
        let statements = tables.create_statements();
        assert!(statements[2].contains("`dm_meta`.`shop``task_worker_checkpoint`"));
        let location =
            location_from_row("mysql-bin.000003", 1234, Some("0-1-20"), 0, Flavor::MariaDb)
                .expect("location");
        let upsert = tables.worker_upsert(&WorkerCheckpoint {
            source: "it's".into(),
            worker: 3,
            workers: 16,
            location,
            row: 7,
            replayed: None,
        });
        assert!(
            upsert.contains("('it\\'s', 3, 16, 'mysql-bin.000003', 1234, '0-1-20', 0, 7, NULL)"),
            "{upsert}"
        );
        assert!(CheckpointTables::new("", "t").is_err());
        // What the syncer keeps reads back as it was written by earlier versions.
        let info = GlobalInfo::parse(
            r#"{"version":1,"schema_charsets":{"shop":"latin1"},"ddl":{"position":"mysql-bin.000002:1234","statement":1,"sql":"ALTER TABLE `shop`.`t` ADD c INT","before":[["`shop`.`t`","CREATE TABLE `t` (...)"]]}}"#,
        )
        .expect("reads");
        assert_eq!(info.schema_charsets["shop"], "latin1");
        assert_eq!(
            info.upstream, None,
            "rows of earlier versions name no upstream"
        );
        assert_eq!(
            GlobalInfo::parse(&info.text().expect("writes")).expect("reads"),
            info
        );
        // The upstream that wrote the location round-trips; a MariaDB one has no UUID and
        // stores none.
        for upstream in [
            UpstreamIdentity {
                server_id: 7,
                server_uuid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562".into()),
            },
            UpstreamIdentity::from_server_id(2),
        ] {
            let info = GlobalInfo {
                upstream: Some(upstream),
                ..info.clone()
            };
            let text = info.text().expect("writes");
            assert_eq!(GlobalInfo::parse(&text).expect("reads"), info, "{text}");
        }
        assert!(
            !GlobalInfo::default()
                .text()
                .expect("writes")
                .contains("upstream"),
            "nothing is written when the upstream is not known"
        );
        let stored = GlobalInfo::parse(r#"{"version":1,"upstream":{"server_id":2}}"#)
            .expect("reads")
            .upstream;
        assert_eq!(stored, Some(UpstreamIdentity::from_server_id(2)));
        // The identity belongs to the position it was saved with: a row pointed by hand at
        // another position (DM-11014's fix after a failover) names no upstream.
        let saved = GlobalInfo::parse(
            r#"{"version":1,"upstream":{"server_id":2},"upstream_position":"mysql-bin.000003:1234"}"#,
        )
        .expect("reads");
        let at = |position: &str| {
            Location::from_position(dm_core::BinlogPosition::parse(position).expect("position"))
        };
        assert_eq!(
            saved.upstream_of(&at("mysql-bin.000003:1234")),
            Some(UpstreamIdentity::from_server_id(2))
        );
        assert_eq!(saved.upstream_of(&at("mysql-bin.000001:4")), None);
        assert_eq!(
            GlobalInfo::parse("{}").expect("empty"),
            GlobalInfo::default()
        );
        assert!(GlobalInfo::parse("not json").is_err());
        let snapshot = TableSnapshot {
            schema: dm_core::TableSchema::new(
                TableRef::new("shop", "t"),
                vec![dm_core::ColumnDefinition::new(
                    "id",
                    dm_core::ColumnType::Integer {
                        width: dm_core::IntegerWidth::Int,
                        unsigned: true,
                    },
                    false,
                )],
                Vec::new(),
            )
            .expect("schema"),
            default_charset: Some("utf8mb4".into()),
        };
        let table = TableRef::new("shop", "t");
        assert_eq!(
            parse_table(&table, &table_text(&snapshot)).expect("reads"),
            snapshot
        );
        // A stored structure that breaks the schema's rules is refused, not trusted.
        let broken = table_text(&snapshot).replace("\"keys\":[]", "\"keys\":[{\"name\":\"k\",\"kind\":\"Primary\",\"columns\":[{\"column\":5,\"prefix_length\":null}]}]");
        assert!(parse_table(&table, &broken).is_err());
        assert!(location_from_row("nonsense", 4, None, 0, Flavor::MySql).is_err());
    }
}
