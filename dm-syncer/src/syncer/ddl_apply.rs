//! DDL in the event loop: a barrier. Every worker drains, the schema tracker follows the
//! statement, the filters and routes decide, the statement runs downstream once, and the global
//! checkpoint moves past it.

use std::time::Duration;

use dm_binlog::EventLocations;
use dm_core::{ClassifiedError, ErrorClass, TableRef, TableSchema};
use dm_sink::SinkError;
use tokio::sync::mpsc;

use crate::error::SyncerError;
use crate::filter::{DdlEventKind, FilterAction, FilterEvent};
use crate::tracker::TrackOutcome;

use super::{Ack, EventLoop, Work};

/// DDL statements the syncer executes (the rest of the Query events are ignored).
pub(super) fn ddl_kind(sql: &str) -> Option<DdlEventKind> {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(4)
        .map(|word| word.to_ascii_uppercase())
        .collect();
    let word = |index: usize| words.get(index).map_or("", String::as_str);
    let object = |index: usize| match word(index) {
        "TEMPORARY" | "ONLINE" | "OFFLINE" | "IGNORE" => word(index + 1),
        other => other,
    };
    Some(match (word(0), object(1)) {
        ("CREATE", "DATABASE" | "SCHEMA") => DdlEventKind::CreateDatabase,
        ("DROP", "DATABASE" | "SCHEMA") => DdlEventKind::DropDatabase,
        ("ALTER", "DATABASE" | "SCHEMA") => DdlEventKind::AlterDatabase,
        ("CREATE", "TABLE") => DdlEventKind::CreateTable,
        ("DROP", "TABLE") => DdlEventKind::DropTable,
        ("ALTER", "TABLE") => DdlEventKind::AlterTable,
        ("RENAME", "TABLE") => DdlEventKind::RenameTable,
        ("TRUNCATE", _) => DdlEventKind::TruncateTable,
        ("CREATE", "INDEX" | "UNIQUE" | "FULLTEXT" | "SPATIAL") => DdlEventKind::CreateIndex,
        ("DROP", "INDEX") => DdlEventKind::DropIndex,
        _ => return None,
    })
}

/// Errors a replayed DDL may meet that mean it already ran (DM ignores the same ones).
fn already_applied(error: &SinkError) -> bool {
    matches!(
        error,
        SinkError::Statement {
            code: 1007 | 1008 | 1050 | 1051 | 1060 | 1061 | 1091 | 1146 | 1054,
            ..
        }
    )
}

impl EventLoop {
    pub(super) async fn ddl(
        &mut self,
        locations: &EventLocations,
        schema: &str,
        sql: &str,
        sql_mode: Option<u64>,
        kind: DdlEventKind,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let position = locations.start.position.to_string();
        // Everything before the DDL is applied first.
        self.drain(acks).await?;
        // Tables created before the start (loaded by a full migration) are learnt from the
        // downstream before a DDL changes them.
        for table in self.tracker.referenced_tables(schema, sql) {
            if self.tracker.get(&table).is_none()
                && self
                    .rules
                    .block_allow_list
                    .allows_table(&table.schema, &table.table)
            {
                self.seed_from_downstream(&table).await?;
            }
        }
        let outcome = self.tracker.apply_ddl(schema, sql)?;
        let tables = match &outcome {
            TrackOutcome::Changed(tables) | TrackOutcome::Reload(tables) => tables.clone(),
            TrackOutcome::Unchanged => Vec::new(),
        };
        let schema_level = matches!(
            kind,
            DdlEventKind::CreateDatabase | DdlEventKind::DropDatabase | DdlEventKind::AlterDatabase
        );
        let allowed = if tables.is_empty() {
            let named = sql
                .split_whitespace()
                .nth(2)
                .filter(|_| schema_level)
                .map(|name| name.trim_matches('`').trim_end_matches(';').to_owned());
            let schema_name = named.unwrap_or_else(|| schema.to_owned());
            !schema_name.is_empty() && self.rules.block_allow_list.allows_schema(&schema_name)
        } else {
            tables.iter().any(|table| {
                self.rules
                    .block_allow_list
                    .allows_table(&table.schema, &table.table)
            })
        };
        let filtered_table = tables.first().map_or("", |table| table.table.as_str());
        let decision = self.rules.event_filter.decide(
            tables.first().map_or(schema, |table| table.schema.as_str()),
            filtered_table,
            Some(FilterEvent::Ddl(kind)),
            Some(sql),
        );
        if let (FilterAction::Error, rule) = decision {
            return Err(SyncerError::Filtered {
                rule: rule.unwrap_or_default().to_owned(),
                position,
                what: sql.to_owned(),
            });
        }
        if allowed && decision.0 == FilterAction::Do {
            let schema_name = sql
                .split_whitespace()
                .nth(2)
                .filter(|_| schema_level)
                .map(|name| name.trim_matches('`').trim_end_matches(';').to_owned());
            let mut renamed = false;
            for table in &tables {
                renamed |= self.rules.router.route(table)? != *table;
            }
            if let Some(name) = &schema_name {
                renamed |= self.rules.router.route_schema(name)? != *name;
            }
            let router = &self.rules.router;
            let statement = if renamed {
                crate::ddl::route_ddl(
                    schema,
                    sql,
                    &|table: &TableRef| router.route(table),
                    &|name: &str| router.route_schema(name),
                )?
                .ok_or_else(|| SyncerError::Unsupported {
                    position: position.clone(),
                    what: format!(
                        "`{sql}` must go to a routed name but cannot be parsed to rewrite it: skip it, or replace it with the binlog operator"
                    ),
                })?
            } else if schema.is_empty() || schema_level {
                sql.to_owned()
            } else {
                // Run with the upstream's current database selected, in one request.
                let mut statement = String::from("USE ");
                dm_sink::literal::write_identifier(&mut statement, schema);
                statement.push_str("; ");
                statement.push_str(sql);
                statement
            };
            if renamed && kind == DdlEventKind::CreateTable {
                // A route may send the table to a database that only exists downstream by
                // name: create it, as the loader does for routed tables.
                for table in &tables {
                    let target = self.rules.router.route(table)?;
                    let mut create = String::from("CREATE DATABASE IF NOT EXISTS ");
                    dm_sink::literal::write_identifier(&mut create, &target.schema);
                    with_retry!(self.control, sink => sink.execute(&create).await)?;
                }
            }
            // The statement parses downstream as it did upstream: under the upstream session's
            // sql_mode (ANSI_QUOTES, IGNORE_SPACE, NO_BACKSLASH_ESCAPES...), restored after.
            let statement = match sql_mode {
                Some(mask) => format!(
                    "SET @dm_sink_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '{}'; {statement}",
                    dm_binlog::sql_mode_text(mask)
                ),
                None => statement,
            };
            let executed = with_retry!(self.control, sink => match sink.execute(&statement).await {
                Err(error) if already_applied(&error) => Ok(()),
                other => other,
            });
            if sql_mode.is_some() {
                with_retry!(self.control, sink => sink
                    .execute("SET SESSION sql_mode = COALESCE(@dm_sink_sql_mode, @@SESSION.sql_mode)")
                    .await)?;
            }
            executed?;
            self.status.ddls_executed += 1;
        } else {
            self.status.ddls_skipped += 1;
        }
        if let TrackOutcome::Reload(reload) = &outcome {
            for table in reload {
                let routed = self.rules.router.route(table)?;
                match self.downstream_schema(&routed).await? {
                    Some(schema) => {
                        let renamed = TableSchema::new(
                            table.clone(),
                            schema.columns().to_vec(),
                            schema.keys().to_vec(),
                        )
                        .map_err(|error| SyncerError::State(error.to_string()))?;
                        self.tracker.set(renamed);
                    }
                    None => self.tracker.remove(table),
                }
            }
        }
        self.targets.clear();
        for queue in &self.queues {
            queue
                .send(Work::ForgetTables)
                .await
                .map_err(|_| SyncerError::State("a worker stopped".into()))?;
        }
        // The DDL is its own transaction: the checkpoint moves past it now.
        self.watermark.transaction_end(locations.end.clone());
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_kinds_come_from_the_leading_words() {
        assert_eq!(
            ddl_kind("CREATE TABLE t (a INT)"),
            Some(DdlEventKind::CreateTable)
        );
        assert_eq!(
            ddl_kind("create temporary table t (a int)"),
            Some(DdlEventKind::CreateTable)
        );
        assert_eq!(
            ddl_kind("ALTER ONLINE TABLE t ADD c INT"),
            Some(DdlEventKind::AlterTable)
        );
        assert_eq!(
            ddl_kind("CREATE UNIQUE INDEX i ON t (a)"),
            Some(DdlEventKind::CreateIndex)
        );
        assert_eq!(
            ddl_kind("DROP DATABASE d"),
            Some(DdlEventKind::DropDatabase)
        );
        assert_eq!(ddl_kind("BEGIN"), None);
        assert_eq!(ddl_kind("GRANT ALL ON *.* TO x"), None);
    }
}
