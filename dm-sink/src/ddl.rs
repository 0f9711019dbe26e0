//! DDL on a MySQL-compatible downstream, exactly once across crashes: how `MySqlSink`
//! implements `dm_core::DdlSink`.
//!
//! ```text
//! ddl_before(job)  -> SHOW CREATE TABLE / DATABASE of each object it changes (without the
//!                     AUTO_INCREMENT counter, which inserts move), None when missing
//!                     (the syncer saves this in the checkpoint before the statement runs)
//! apply_ddl(job)   -> [CREATE DATABASE IF NOT EXISTS <route's database>]
//!                     [USE <session database>, when the downstream has it;]
//!                     [SET sql_mode = <upstream session's>;] <statement> [; sql_mode restored]
//!                     "already there" errors (1007, 1050, 1060, ...) are Ok when tolerated
//! ddl_ran(job, before) -> the objects read again: changed since `before` = it ran;
//!                     a statement whose effect does not show (EXCHANGE PARTITION): Unknowable
//! ```
//!
//! MySQL commits each DDL statement by itself, so a statement and its record cannot commit
//! together: the record holds the definitions read just before it ran, and nothing else writes
//! them while the syncer's barrier holds (`docs/design/checkpoint.md`, item 5).

use dm_core::{DdlCheck, DdlJob, DdlSink, DdlTarget, quote_identifier};

use crate::error::SinkError;
use crate::literal::{write_identifier, write_table};
use crate::mysql::MySqlSink;

/// Errors a statement may meet downstream that mean its effect is already there: a shard's DDL
/// another shard of the same routed table already ran, a database another source created or
/// dropped, or a replay before the safe-mode exit point of what a dump already copied (DM
/// ignores the same ones, everywhere).
pub fn already_applied(error: &SinkError) -> bool {
    matches!(
        error,
        SinkError::Statement {
            code: 1007 | 1008 | 1050 | 1051 | 1060 | 1061 | 1091 | 1146 | 1054,
            ..
        }
    )
}

/// A table's definition without its `AUTO_INCREMENT=n` option: the counter moves with inserts
/// (another source's, into a table routes share), not with DDL.
pub fn without_auto_increment(definition: &str) -> String {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(at) = rest.find(" AUTO_INCREMENT=") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " AUTO_INCREMENT=".len()..];
        rest = after.trim_start_matches(|character: char| character.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// `` `schema` `` or `` `schema`.`table` ``: how a record names an object.
fn object_name(object: &DdlTarget) -> String {
    match object {
        DdlTarget::Schema(schema) => quote_identifier(schema),
        DdlTarget::Table(table) => table.quoted(),
    }
}

impl MySqlSink {
    /// How the downstream defines `object` now (`SHOW CREATE ...`, without the auto-increment
    /// counter), `None` when it does not exist.
    pub async fn definition(&mut self, object: &DdlTarget) -> Result<Option<String>, SinkError> {
        let (sql, missing) = match object {
            DdlTarget::Schema(schema) => {
                let mut sql = String::from("SHOW CREATE DATABASE ");
                write_identifier(&mut sql, schema);
                (sql, 1049)
            }
            DdlTarget::Table(table) => {
                let mut sql = String::from("SHOW CREATE TABLE ");
                write_table(&mut sql, table);
                (sql, 1146)
            }
        };
        let rows = match self.query(&sql).await {
            Err(SinkError::Statement { code, .. }) if code == missing => return Ok(None),
            other => other?,
        };
        Ok(rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().nth(1).flatten())
            .map(|definition| without_auto_increment(&definition)))
    }

    /// Each of `objects` with its definition now.
    async fn definitions(
        &mut self,
        objects: &[DdlTarget],
    ) -> Result<Vec<(String, Option<String>)>, SinkError> {
        let mut definitions = Vec::with_capacity(objects.len());
        for object in objects {
            definitions.push((object_name(object), self.definition(object).await?));
        }
        Ok(definitions)
    }
}

impl DdlSink for MySqlSink {
    type Error = SinkError;

    async fn ddl_before(
        &mut self,
        ddl: &DdlJob,
    ) -> Result<Vec<(String, Option<String>)>, SinkError> {
        self.definitions(&ddl.objects).await
    }

    async fn apply_ddl(&mut self, ddl: &DdlJob) -> Result<(), SinkError> {
        if let Some(schema) = &ddl.create_schema {
            // A route may send the table to a database that only exists downstream by name:
            // create it, as the loader does for routed tables.
            let mut create = String::from("CREATE DATABASE IF NOT EXISTS ");
            write_identifier(&mut create, schema);
            self.execute(&create).await?;
        }
        let mut statement = String::new();
        if let Some(schema) = &ddl.session_schema
            && self
                .definition(&DdlTarget::Schema(schema.clone()))
                .await?
                .is_some()
        {
            // Names the syncer does not rewrite resolve against the session's database, when
            // the downstream has it.
            statement.push_str("USE ");
            write_identifier(&mut statement, schema);
            statement.push_str("; ");
        }
        if let Some(mode) = &ddl.sql_mode {
            // Parsed as upstream (ANSI_QUOTES, NO_BACKSLASH_ESCAPES...); restored below.
            statement.push_str("SET @dm_sink_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = ");
            crate::literal::write_text(&mut statement, mode);
            statement.push_str("; ");
        }
        statement.push_str(&ddl.statement.sql);
        let result = match self.execute(&statement).await {
            Err(error) if ddl.tolerate_existing && already_applied(&error) => Ok(()),
            other => other,
        };
        self.forget_tables();
        if ddl.sql_mode.is_some() {
            // On a new connection (the old one broke) the variable is NULL: nothing to restore.
            let restored = self
                .execute("SET SESSION sql_mode = COALESCE(@dm_sink_sql_mode, @@SESSION.sql_mode)")
                .await;
            return match (result, restored) {
                // The session the mode was set in is gone with its connection: the next one
                // starts with the sink's own.
                (Ok(()), Err(error)) if crate::mysql::is_connection_error(&error) => Ok(()),
                (result, restored) => result.and(restored),
            };
        }
        result
    }

    async fn ddl_ran(
        &mut self,
        ddl: &DdlJob,
        before: &[(String, Option<String>)],
    ) -> Result<DdlCheck, SinkError> {
        if !ddl.effect_visible {
            return Ok(DdlCheck::Unknowable);
        }
        Ok(if self.definitions(&ddl.objects).await? != before {
            // Its objects changed since the record: it ran.
            DdlCheck::Ran
        } else {
            DdlCheck::NotRun
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auto_increment_counter_is_not_part_of_a_definition() {
        assert_eq!(
            without_auto_increment(
                "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4"
            ),
            "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        assert!(already_applied(&SinkError::Statement {
            what: "DDL".into(),
            code: 1060,
            message: "Duplicate column name".into(),
            sql: String::new(),
        }));
    }
}
