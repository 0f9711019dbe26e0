//! What the syncer keeps with its global checkpoint, beside the location (DM's `table_info`
//! columns): the schema tracker's tables, one row each, and in the global row the schemas'
//! default character sets and, while a DDL's statement is being executed, that statement.
//!
//! ```text
//! <meta>.<task>_syncer_checkpoint
//!   is_global = 1   location, safe-mode exit, table_info = GlobalInfo { schema_charsets, ddl }
//!   is_global = 0   one row per tracked upstream table, table_info = TableSnapshot (JSON)
//! ```
//!
//! Invariants: the rows are written in the global row's transaction, so after a crash the
//! tracker restarts with the structures in force at the checkpoint's location (the rows read
//! after it decode with the columns they were written with, even when a later DDL already ran
//! downstream); `ddl` is kept in every checkpoint from the one written before a DDL's statement
//! runs until one is written past the DDL, and it holds the statement's objects as the downstream
//! defined them before it ran, which tells a restart whether it ran.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::SyncerError;
use crate::tracker::TableSnapshot;

/// The global row's `table_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct GlobalInfo {
    /// The format's version (1).
    #[serde(default)]
    pub version: u32,
    /// The schemas' default character sets, as the tracker knows them.
    #[serde(default)]
    pub schema_charsets: HashMap<String, String>,
    /// The DDL being executed downstream, when the checkpoint was written at its start.
    #[serde(default)]
    pub ddl: Option<PendingDdl>,
}

/// A DDL statement about to run downstream: the statements of its event before this one ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PendingDdl {
    /// Where its Query event starts (`file:offset`).
    pub position: String,
    /// Which statement of the event's plan.
    pub statement: usize,
    /// The SQL sent downstream.
    pub sql: String,
    /// Each object it changes (downstream name, quoted) with its definition before it ran
    /// (`SHOW CREATE ...`), `None` when it did not exist.
    pub before: Vec<(String, Option<String>)>,
}

impl GlobalInfo {
    /// Reads a global row's `table_info` (`{}` and DM's own empty value read as nothing kept).
    pub fn parse(text: &str) -> Result<GlobalInfo, SyncerError> {
        if text.trim().is_empty() {
            return Ok(GlobalInfo::default());
        }
        serde_json::from_str(text).map_err(|error| {
            SyncerError::State(format!(
                "the global checkpoint's table_info cannot be read ({error}): it was not written by this syncer; remove the task's checkpoint rows to start over"
            ))
        })
    }

    /// The text stored.
    pub fn text(&self) -> Result<String, SyncerError> {
        serde_json::to_string(self).map_err(|error| {
            SyncerError::State(format!(
                "the checkpoint's table_info cannot be written: {error}"
            ))
        })
    }
}

/// Reads a table row's `table_info`.
pub(super) fn parse_table(table: &str, text: &str) -> Result<TableSnapshot, SyncerError> {
    serde_json::from_str(text).map_err(|error| {
        SyncerError::State(format!(
            "the stored structure of table {table} cannot be read ({error}): remove its row from the checkpoint table to read it from the downstream again"
        ))
    })
}

/// The text stored for a table.
pub(super) fn table_text(snapshot: &TableSnapshot) -> String {
    serde_json::to_string(snapshot).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use dm_core::{ColumnDefinition, ColumnType, IntegerWidth, TableRef, TableSchema};

    use super::*;

    #[test]
    fn what_is_kept_reads_back() {
        let info = GlobalInfo {
            version: 1,
            schema_charsets: HashMap::from([("shop".to_owned(), "latin1".to_owned())]),
            ddl: Some(PendingDdl {
                position: "mysql-bin.000002:1234".into(),
                statement: 1,
                sql: "ALTER TABLE `shop`.`t` ADD c INT".into(),
                before: vec![("`shop`.`t`".into(), Some("CREATE TABLE `t` (...)".into()))],
            }),
        };
        assert_eq!(
            GlobalInfo::parse(&info.text().expect("writes")).expect("reads"),
            info
        );
        assert_eq!(
            GlobalInfo::parse("{}").expect("empty"),
            GlobalInfo::default()
        );
        assert!(GlobalInfo::parse("not json").is_err());
        let snapshot = TableSnapshot {
            schema: TableSchema::new(
                TableRef::new("shop", "t"),
                vec![ColumnDefinition::new(
                    "id",
                    ColumnType::Integer {
                        width: IntegerWidth::Int,
                        unsigned: true,
                    },
                    false,
                )],
                Vec::new(),
            )
            .expect("schema"),
            default_charset: Some("utf8mb4".into()),
        };
        assert_eq!(
            parse_table("t", &table_text(&snapshot)).expect("reads"),
            snapshot
        );
        // A stored structure that breaks the schema's rules is refused, not trusted.
        let broken = table_text(&snapshot).replace("\"keys\":[]", "\"keys\":[{\"name\":\"k\",\"kind\":\"Primary\",\"columns\":[{\"column\":5,\"prefix_length\":null}]}]");
        assert!(parse_table("t", &broken).is_err());
    }
}
