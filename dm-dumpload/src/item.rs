//! What a dump hands to its consumer (a dump directory or the loader): a header with the
//! snapshot's location and every schema and chunk plan, then one stream of statements per
//! chunk.
//!
//! ```text
//! DumpItem::Header(DumpHeader)                  first, exactly once
//! DumpItem::Chunk(ChunkStream) ...              one per chunk to load, in any order
//!     ChunkMessage::Statement(sql, rows) ...    one multi-row INSERT each (one line)
//!     ChunkMessage::End { rows, bytes }         last: the chunk is complete
//! ```
//!
//! Invariant: a chunk whose stream closes without `End` is incomplete and must not be
//! recorded as loaded (its statements are rolled back with its transaction). Every channel is
//! bounded: a slow consumer slows the dump down, memory does not grow.

use std::sync::Arc;

use dm_core::{BinlogPosition, Flavor, GtidSet, Location};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::DumpError;
use crate::plan::ChunkPlan;

/// A database of the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseDump {
    /// Its upstream name.
    pub name: String,
    /// `SHOW CREATE DATABASE`.
    pub create_statement: String,
}

/// A table of the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDump {
    /// Upstream database.
    pub schema: String,
    /// Upstream name.
    pub table: String,
    /// `SHOW CREATE TABLE`.
    pub create_statement: String,
    /// The columns every INSERT names (generated columns left out), in order.
    pub columns: Vec<String>,
    /// The upstream's estimate of its rows (`information_schema.TABLES`).
    pub estimated_rows: u64,
    /// And of its data size in bytes.
    pub estimated_bytes: u64,
    /// Its chunks.
    pub chunks: Vec<ChunkPlan>,
    /// Whether it has a primary key or a NOT NULL unique key (safe mode can replay changes of
    /// such tables idempotently; of the others it cannot).
    #[serde(default = "keyed_default")]
    pub keyed: bool,
}

fn keyed_default() -> bool {
    true
}

/// A view of the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDump {
    /// Upstream database.
    pub schema: String,
    /// Upstream name.
    pub view: String,
    /// Its `SELECT` (`information_schema.VIEWS.VIEW_DEFINITION`; names in it are not routed).
    pub definition: String,
}

/// A binlog location as stored in metadata files and meta tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationRecord {
    /// Binlog file name.
    pub binlog_name: String,
    /// Offset in it.
    pub binlog_pos: u64,
    /// Executed GTID set (empty when unknown).
    pub binlog_gtid: String,
}

impl LocationRecord {
    /// The record of `location`.
    pub fn new(location: &Location) -> Self {
        LocationRecord {
            binlog_name: location.position.file.to_string(),
            binlog_pos: location.position.offset,
            binlog_gtid: location
                .gtid_set
                .as_ref()
                .map(|set| set.to_string())
                .unwrap_or_default(),
        }
    }

    /// The location it records.
    pub fn location(&self, flavor: Flavor) -> Result<Location, DumpError> {
        let position = BinlogPosition::parse(&format!("{}:{}", self.binlog_name, self.binlog_pos))
            .map_err(|error| DumpError::State(format!("stored binlog location: {error}")))?;
        let mut location = Location::from_position(position);
        if !self.binlog_gtid.is_empty() {
            let set = GtidSet::parse(flavor, &self.binlog_gtid)
                .map_err(|error| DumpError::State(format!("stored GTID set: {error}")))?;
            location.gtid_set = Some(Arc::new(set));
        }
        Ok(location)
    }
}

/// Everything about a dump but its rows.
#[derive(Clone, Debug)]
pub struct DumpHeader {
    /// The upstream's flavour.
    pub flavor: Flavor,
    /// Where replication continues: the snapshot's binlog location.
    pub location: Location,
    /// With `consistency: none`: the syncer writes idempotently until here.
    pub exit_point: Option<Location>,
    /// The upstream's global `sql_mode` at the dump.
    pub upstream_sql_mode: String,
    /// Databases, in name order.
    pub databases: Vec<DatabaseDump>,
    /// Base tables, in (database, name) order.
    pub tables: Vec<TableDump>,
    /// Views.
    pub views: Vec<ViewDump>,
}

impl DumpHeader {
    /// How many chunks the dump has.
    pub fn chunk_count(&self) -> u64 {
        self.tables
            .iter()
            .map(|table| table.chunks.len() as u64)
            .sum()
    }
}

/// One message of a chunk's stream.
#[derive(Debug)]
pub enum ChunkMessage {
    /// One multi-row `INSERT` naming the upstream table, and its rows (0 when unknown).
    Statement(String, u64),
    /// The chunk is complete: its rows and statement bytes.
    End {
        /// Rows in the chunk.
        rows: u64,
        /// Bytes of its statements (line breaks not counted).
        bytes: u64,
    },
}

/// The statements of one chunk, as they are produced.
#[derive(Debug)]
pub struct ChunkStream {
    /// Index of its table in [`DumpHeader::tables`].
    pub table: usize,
    /// Its number within the table.
    pub chunk: u32,
    /// Where the statements come from (a file's path, or `the dump stream`), for errors.
    pub origin: String,
    /// The statements; an `Err` or a close before `End` means the chunk is incomplete.
    pub messages: mpsc::Receiver<Result<ChunkMessage, DumpError>>,
}

/// What a dump produces.
#[derive(Debug)]
pub enum DumpItem {
    /// First.
    Header(Arc<DumpHeader>),
    /// Then the chunks.
    Chunk(ChunkStream),
}
