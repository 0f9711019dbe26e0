//! How `MySqlSink` serves a full load (`dm_core`'s [`LoadSink`], [`LoadCheckpointStore`]) and
//! how [`MySqlLoadSinks`] opens its sinks ([`LoadSinkFactory`]): the loader's meta tables, the
//! objects it creates, and its chunks with their marks.
//!
//! ```text
//! <meta-schema>.<task>_load_status   one row per source: stage (loading | finished), origin,
//!                                     flavour, the first snapshot's location, the exit point
//! <meta-schema>.<task>_load_chunk    one row per chunk: its plan (the loader's JSON), state
//!                                     (planned | loaded), rows and bytes loaded
//!
//! MySqlLoadSinks::open_control  -> MySqlSink: prepare_load (CREATE ... IF NOT EXISTS),
//!                                  read/begin/finish/forget the load, plan_chunks, create_object
//! MySqlLoadSinks::open_worker   -> MySqlSink, READ COMMITTED: load_chunk =
//!                                  BEGIN; INSERT ...; UPDATE <task>_load_chunk SET state = 'loaded'; COMMIT
//! create_object                 -> CREATE DATABASE / TABLE IF NOT EXISTS <routed name> (the dump's
//!                                  statement, renamed), CREATE OR REPLACE VIEW <routed name> AS <select>
//! ```
//!
//! The table names are [`CheckpointTables`]'s (`load_status_table`, `load_chunk_table`, and the
//! mark's `chunk_loaded`); the columns and every other statement are here.
//!
//! Sessions keep the sink's `time_zone = '+00:00'` whatever the options say: the dump writes
//! TIMESTAMP values and definitions as UTC text.
//!
//! Invariants: a chunk's rows and its `loaded` mark commit in one transaction, a chunk whose
//! stream ends early is rolled back; planning a chunk again (`INSERT IGNORE`) keeps its mark;
//! a database or table that exists is kept (`IF NOT EXISTS`).

// The load traits' new items are reached through `dm_core::sink` until `dm_core`'s root
// re-exports them.
use dm_core::sink::{
    LoadCheckpoint, LoadCheckpointStore, LoadSinkFactory, LoadStage, LoadStatus, PlannedChunk,
    SchemaObject, StoredChunk,
};
use dm_core::{
    ChunkMark, ChunkOutcome, ChunkPiece, ChunkReader, Flavor, LoadSink, Location, TableRef,
};

use crate::checkpoint::{CheckpointTables, location_from_row};
use crate::error::SinkError;
use crate::literal::{write_identifier, write_table, write_text};
use crate::mysql::{MySqlSink, MySqlSinkOptions};

/// Where a task and source keep their load's progress downstream: the task's load tables in its
/// meta schema, and the source's id (one status row per source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadScope {
    /// The task's tables in the meta schema.
    pub tables: CheckpointTables,
    /// The source (`source-id`).
    pub source: String,
}

/// Opens the sinks of one task and source's full load on a MySQL-compatible downstream.
#[derive(Clone, Debug)]
pub struct MySqlLoadSinks {
    options: MySqlSinkOptions,
    scope: LoadScope,
}

impl MySqlLoadSinks {
    /// The load sinks of `scope` on the downstream `options` reach. A `time_zone` among the
    /// options' session variables is left out: the sink's `+00:00` must stay, since the dump's
    /// TIMESTAMP values and definitions are UTC text (the task's `target-database` leaves it out
    /// too and names it in a warning).
    pub fn new(options: MySqlSinkOptions, scope: LoadScope) -> Self {
        let mut options = options;
        options
            .session_variables
            .retain(|(name, _)| !name.eq_ignore_ascii_case("time_zone"));
        MySqlLoadSinks { options, scope }
    }

    /// The scope the sinks are opened with.
    pub fn scope(&self) -> &LoadScope {
        &self.scope
    }
}

impl LoadSinkFactory for MySqlLoadSinks {
    type Error = SinkError;
    type Control = MySqlSink;
    type Worker = MySqlSink;

    /// A sink that connects on first use.
    async fn open_control(&self) -> Result<MySqlSink, SinkError> {
        Ok(MySqlSink::new(self.options.clone())?.with_load_scope(self.scope.clone()))
    }

    /// A connected sink whose session loads with `READ COMMITTED`: chunks never read what
    /// others write, so no gap locks between parallel inserts.
    async fn open_worker(&self, _worker: usize, _workers: usize) -> Result<MySqlSink, SinkError> {
        let mut sink = MySqlSink::new(self.options.clone())?.with_load_scope(self.scope.clone());
        sink.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await?;
        Ok(sink)
    }
}

fn text(value: &str) -> String {
    let mut out = String::new();
    write_text(&mut out, value);
    out
}

fn table_name(table: &TableRef) -> String {
    let mut out = String::new();
    write_table(&mut out, table);
    out
}

/// The SQL of one scope's load tables.
struct LoadTables<'a> {
    scope: &'a LoadScope,
    status: String,
    chunks: String,
}

impl<'a> LoadTables<'a> {
    fn new(scope: &'a LoadScope) -> Self {
        LoadTables {
            status: table_name(&scope.tables.load_status_table()),
            chunks: table_name(&scope.tables.load_chunk_table()),
            scope,
        }
    }

    fn source(&self) -> String {
        text(&self.scope.source)
    }

    /// The meta schema and both tables, if missing.
    fn create_statements(&self) -> [String; 3] {
        let mut schema = String::new();
        write_identifier(&mut schema, self.scope.tables.meta_schema());
        [
            format!("CREATE DATABASE IF NOT EXISTS {schema}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 source_id VARCHAR(32) NOT NULL PRIMARY KEY, stage VARCHAR(16) NOT NULL, \
                 origin VARCHAR(1024) NOT NULL, flavor VARCHAR(16) NOT NULL, \
                 binlog_name VARCHAR(128) NOT NULL, binlog_pos BIGINT UNSIGNED NOT NULL, \
                 binlog_gtid TEXT, exit_safe_binlog_name VARCHAR(128), \
                 exit_safe_binlog_pos BIGINT UNSIGNED, exit_safe_binlog_gtid TEXT, \
                 update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
                self.status
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 source_id VARCHAR(32) NOT NULL, schema_name VARCHAR(64) NOT NULL, \
                 table_name VARCHAR(64) NOT NULL, chunk INT UNSIGNED NOT NULL, plan TEXT NOT NULL, \
                 state VARCHAR(16) NOT NULL, row_count BIGINT UNSIGNED NOT NULL DEFAULT 0, \
                 byte_count BIGINT UNSIGNED NOT NULL DEFAULT 0, \
                 PRIMARY KEY (source_id, schema_name, table_name, chunk)) \
                 DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
                self.chunks
            ),
        ]
    }

    fn status_query(&self) -> String {
        format!(
            "SELECT stage, origin, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_name, \
             exit_safe_binlog_pos, exit_safe_binlog_gtid FROM {} WHERE source_id = {}",
            self.status,
            self.source()
        )
    }

    fn chunks_query(&self) -> String {
        format!(
            "SELECT schema_name, table_name, chunk, plan, state FROM {} WHERE source_id = {} \
             ORDER BY schema_name, table_name, chunk",
            self.chunks,
            self.source()
        )
    }

    /// `name, offset, gtid` of a location as DM stores it (no GTID set: empty text), or NULLs.
    fn location_values(location: Option<&Location>) -> [String; 3] {
        match location {
            Some(location) => [
                text(&location.position.file.to_string()),
                location.position.offset.to_string(),
                text(
                    &location
                        .gtid_set
                        .as_ref()
                        .map(|set| set.to_string())
                        .unwrap_or_default(),
                ),
            ],
            None => ["NULL".into(), "NULL".into(), "NULL".into()],
        }
    }

    fn status_insert(&self, status: &LoadStatus, flavor: Flavor) -> String {
        let [name, offset, gtid] = Self::location_values(Some(&status.location));
        let [exit_name, exit_offset, exit_gtid] = Self::location_values(status.exit_point.as_ref());
        format!(
            "INSERT INTO {} (source_id, stage, origin, flavor, binlog_name, binlog_pos, binlog_gtid, \
             exit_safe_binlog_name, exit_safe_binlog_pos, exit_safe_binlog_gtid) \
             VALUES ({}, {}, {}, {}, {name}, {offset}, {gtid}, {exit_name}, {exit_offset}, {exit_gtid})",
            self.status,
            self.source(),
            stage_text(status.stage),
            text(&status.origin),
            text(&flavor.name().to_ascii_lowercase()),
        )
    }

    fn exit_point_update(&self, exit_point: Option<&Location>) -> String {
        let [name, offset, gtid] = Self::location_values(exit_point);
        format!(
            "UPDATE {} SET exit_safe_binlog_name = {name}, exit_safe_binlog_pos = {offset}, \
             exit_safe_binlog_gtid = {gtid} WHERE source_id = {}",
            self.status,
            self.source()
        )
    }

    fn finish_update(&self) -> String {
        format!(
            "UPDATE {} SET stage = {} WHERE source_id = {}",
            self.status,
            stage_text(LoadStage::Finished),
            self.source()
        )
    }

    fn forget_statements(&self) -> [String; 2] {
        [&self.status, &self.chunks]
            .map(|table| format!("DELETE FROM {table} WHERE source_id = {}", self.source()))
    }

    /// `INSERT IGNORE`s of `chunks`, at most 500 rows each.
    fn plan_inserts(&self, chunks: &[PlannedChunk]) -> Vec<String> {
        let source = self.source();
        let rows: Vec<String> = chunks
            .iter()
            .map(|chunk| {
                format!(
                    "({source}, {}, {}, {}, {}, 'planned')",
                    text(&chunk.table.schema),
                    text(&chunk.table.table),
                    chunk.chunk,
                    text(&chunk.plan)
                )
            })
            .collect();
        rows.chunks(500)
            .map(|batch| {
                format!(
                    "INSERT IGNORE INTO {} (source_id, schema_name, table_name, chunk, plan, state) VALUES {}",
                    self.chunks,
                    batch.join(",")
                )
            })
            .collect()
    }

    fn chunks_left_query(&self) -> String {
        format!(
            "SELECT COUNT(*) FROM {} WHERE source_id = {} AND state <> 'loaded'",
            self.chunks,
            self.source()
        )
    }

    /// The load as stored in `status` (the row of [`LoadTables::status_query`]) and `chunks`
    /// (the rows of [`LoadTables::chunks_query`]).
    fn read(
        &self,
        status: &[Option<String>],
        chunks: Vec<Vec<Option<String>>>,
        flavor: Flavor,
    ) -> Result<LoadCheckpoint, SinkError> {
        let field = |index: usize| status.get(index).cloned().flatten().unwrap_or_default();
        let location = |name: &str, offset: &str, gtid: &str| {
            location_from_row(name, offset.parse().unwrap_or(0), Some(gtid), 0, flavor).map_err(
                |error| match error {
                    SinkError::Schema { reason, .. } => SinkError::Schema {
                        table: self.status.clone(),
                        reason: format!("the stored location: {reason}"),
                    },
                    other => other,
                },
            )
        };
        let stage = match field(0).as_str() {
            "finished" => LoadStage::Finished,
            _ => LoadStage::Loading,
        };
        let exit_point = match field(5) {
            name if name.is_empty() => None,
            name => Some(location(&name, &field(6), &field(7))?),
        };
        let chunks = chunks
            .into_iter()
            .map(|row| {
                let text = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
                StoredChunk {
                    planned: PlannedChunk {
                        table: TableRef::new(text(0), text(1)),
                        chunk: text(2).parse().unwrap_or(0),
                        plan: text(3),
                    },
                    loaded: text(4) == "loaded",
                }
            })
            .collect();
        Ok(LoadCheckpoint {
            status: LoadStatus {
                stage,
                origin: field(1),
                location: location(&field(2), &field(3), &field(4))?,
                exit_point,
            },
            chunks,
        })
    }
}

fn stage_text(stage: LoadStage) -> &'static str {
    match stage {
        LoadStage::Loading => "'loading'",
        LoadStage::Finished => "'finished'",
    }
}

/// Replaces the first backquoted name after `keyword` (`CREATE TABLE `) in `statement` with
/// `replacement`, adding `IF NOT EXISTS`.
fn rename_created(statement: &str, keyword: &str, replacement: &str) -> Result<String, SinkError> {
    let invalid = || SinkError::Schema {
        table: replacement.to_owned(),
        reason: format!(
            "cannot find the name in `{}`",
            statement.chars().take(80).collect::<String>()
        ),
    };
    let rest = statement.strip_prefix(keyword).ok_or_else(invalid)?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
    let mut characters = rest.char_indices();
    if characters.next().map(|(_, character)| character) != Some('`') {
        return Err(invalid());
    }
    let mut end = None;
    let mut skip = false;
    let bytes = rest.as_bytes();
    for (index, character) in characters {
        if skip {
            skip = false;
            continue;
        }
        if character == '`' {
            if bytes.get(index + 1) == Some(&b'`') {
                skip = true;
            } else {
                end = Some(index + 1);
                break;
            }
        }
    }
    let end = end.ok_or_else(invalid)?;
    Ok(format!(
        "{keyword}IF NOT EXISTS {replacement}{}",
        &rest[end..]
    ))
}

/// The statement that creates `object` unless it exists (a view: or replaces it).
fn create_statement(object: &SchemaObject) -> Result<String, SinkError> {
    Ok(match object {
        SchemaObject::Database { name, statement } => {
            let mut quoted = String::new();
            write_identifier(&mut quoted, name);
            match statement {
                Some(statement) => rename_created(statement, "CREATE DATABASE ", &quoted)?,
                None => format!("CREATE DATABASE IF NOT EXISTS {quoted}"),
            }
        }
        SchemaObject::Table { table, statement } => {
            rename_created(statement, "CREATE TABLE ", &table_name(table))?
        }
        SchemaObject::View { view, select } => {
            format!("CREATE OR REPLACE VIEW {} AS {select}", table_name(view))
        }
    })
}

impl LoadSink for MySqlSink {
    type Error = SinkError;

    async fn create_object(&mut self, object: &SchemaObject) -> Result<(), SinkError> {
        self.execute(&create_statement(object)?).await
    }

    /// `BEGIN`, each statement, the chunk's row of the loader's chunk table set `loaded`,
    /// `COMMIT`; anything else rolls back.
    async fn load_chunk<Reader: ChunkReader>(
        &mut self,
        chunk: &ChunkMark,
        reader: &mut Reader,
    ) -> Result<ChunkOutcome, SinkError> {
        let tables = self.load_scope()?.tables;
        let result = async {
            self.execute("BEGIN").await?;
            loop {
                match reader.next_piece().await {
                    Some(ChunkPiece::Statement(sql)) => self.execute(&sql).await?,
                    Some(ChunkPiece::End { rows, bytes }) => {
                        self.execute(&tables.chunk_loaded(chunk, rows, bytes))
                            .await?;
                        self.execute("COMMIT").await?;
                        return Ok(ChunkOutcome::Loaded { rows, bytes });
                    }
                    None => {
                        self.execute("ROLLBACK").await?;
                        return Ok(ChunkOutcome::Incomplete);
                    }
                }
            }
        }
        .await;
        if result.is_err() {
            let _ = self.execute("ROLLBACK").await;
        }
        result
    }
}

impl LoadCheckpointStore for MySqlSink {
    type Error = SinkError;

    async fn prepare_load(&mut self) -> Result<(), SinkError> {
        let scope = self.load_scope()?;
        for statement in LoadTables::new(&scope).create_statements() {
            self.execute(&statement).await?;
        }
        Ok(())
    }

    async fn read_load(&mut self, flavor: Flavor) -> Result<Option<LoadCheckpoint>, SinkError> {
        let scope = self.load_scope()?;
        let tables = LoadTables::new(&scope);
        let Some(status) = self.query(&tables.status_query()).await?.into_iter().next() else {
            return Ok(None);
        };
        let chunks = self.query(&tables.chunks_query()).await?;
        tables.read(&status, chunks, flavor).map(Some)
    }

    async fn begin_load(&mut self, status: &LoadStatus, flavor: Flavor) -> Result<(), SinkError> {
        let scope = self.load_scope()?;
        self.execute(&LoadTables::new(&scope).status_insert(status, flavor))
            .await
    }

    async fn set_load_exit_point(
        &mut self,
        exit_point: Option<&Location>,
    ) -> Result<(), SinkError> {
        let scope = self.load_scope()?;
        self.execute(&LoadTables::new(&scope).exit_point_update(exit_point))
            .await
    }

    async fn finish_load(&mut self) -> Result<(), SinkError> {
        let scope = self.load_scope()?;
        self.execute(&LoadTables::new(&scope).finish_update()).await
    }

    async fn plan_chunks(&mut self, chunks: &[PlannedChunk]) -> Result<(), SinkError> {
        let scope = self.load_scope()?;
        for statement in LoadTables::new(&scope).plan_inserts(chunks) {
            self.execute(&statement).await?;
        }
        Ok(())
    }

    async fn chunks_left(&mut self) -> Result<u64, SinkError> {
        let scope = self.load_scope()?;
        let rows = self
            .query(&LoadTables::new(&scope).chunks_left_query())
            .await?;
        Ok(rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|text| text.parse().ok())
            .unwrap_or(0))
    }

    async fn forget_load(&mut self) -> Result<(), SinkError> {
        let scope = self.load_scope()?;
        for statement in LoadTables::new(&scope).forget_statements() {
            self.execute(&statement).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_names_are_replaced_exactly() {
        assert_eq!(
            rename_created(
                "CREATE TABLE `a``b` (\n  `id` int\n)",
                "CREATE TABLE ",
                "`x`.`y`"
            )
            .unwrap(),
            "CREATE TABLE IF NOT EXISTS `x`.`y` (\n  `id` int\n)"
        );
        assert_eq!(
            rename_created(
                "CREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */",
                "CREATE DATABASE ",
                "`store`"
            )
            .unwrap(),
            "CREATE DATABASE IF NOT EXISTS `store` /*!40100 DEFAULT CHARACTER SET utf8mb4 */"
        );
        assert!(rename_created("CREATE VIEW v", "CREATE TABLE ", "`x`").is_err());
        assert!(rename_created("CREATE TABLE `open", "CREATE TABLE ", "`x`").is_err());
    }

    fn scope() -> LoadScope {
        LoadScope {
            tables: CheckpointTables::new("dm_meta", "shop").expect("tables"),
            source: "it's".into(),
        }
    }

    #[test]
    fn objects_are_created_unless_they_exist() {
        let table = SchemaObject::Table {
            table: TableRef::new("store", "items"),
            statement: "CREATE TABLE `items` (`id` int)".into(),
        };
        assert_eq!(
            create_statement(&table).unwrap(),
            "CREATE TABLE IF NOT EXISTS `store`.`items` (`id` int)"
        );
        let database = SchemaObject::Database {
            name: "store".into(),
            statement: None,
        };
        assert_eq!(
            create_statement(&database).unwrap(),
            "CREATE DATABASE IF NOT EXISTS `store`"
        );
        let view = SchemaObject::View {
            view: TableRef::new("store", "v"),
            select: "select 1".into(),
        };
        assert_eq!(
            create_statement(&view).unwrap(),
            "CREATE OR REPLACE VIEW `store`.`v` AS select 1"
        );
    }

    #[test]
    fn status_rows_read_back_what_was_written() {
        let scope = scope();
        let tables = LoadTables::new(&scope);
        let location =
            location_from_row("mysql-bin.000003", 1234, Some("0-1-20"), 0, Flavor::MariaDb)
                .expect("location");
        let status = LoadStatus {
            stage: LoadStage::Loading,
            origin: "/dump".into(),
            location: location.clone(),
            exit_point: None,
        };
        let insert = tables.status_insert(&status, Flavor::MariaDb);
        assert!(
            insert.contains(
                "VALUES ('it\\'s', 'loading', '/dump', 'mariadb', 'mysql-bin.000003', 1234, '0-1-20', NULL, NULL, NULL)"
            ),
            "{insert}"
        );
        let row = |values: &[Option<&str>]| -> Vec<Option<String>> {
            values
                .iter()
                .map(|value| value.map(str::to_owned))
                .collect()
        };
        let read = tables
            .read(
                &row(&[
                    Some("loading"),
                    Some("/dump"),
                    Some("mysql-bin.000003"),
                    Some("1234"),
                    Some("0-1-20"),
                    None,
                    None,
                    None,
                ]),
                vec![row(&[
                    Some("a"),
                    Some("b"),
                    Some("2"),
                    Some("{}"),
                    Some("loaded"),
                ])],
                Flavor::MariaDb,
            )
            .expect("read");
        assert_eq!(read.status, status);
        assert_eq!(
            read.chunks,
            vec![StoredChunk {
                planned: PlannedChunk {
                    table: TableRef::new("a", "b"),
                    chunk: 2,
                    plan: "{}".into(),
                },
                loaded: true,
            }]
        );
        assert!(tables.plan_inserts(&[]).is_empty());
    }
}
