//! The loader: creates the downstream schemas and loads chunks in parallel, each exactly once.
//!
//! ```text
//! DumpItem::Header -> meta tables: <meta>.<task>_load_status (one row per source: stage,
//!                     first snapshot's location, safe-mode exit point)
//!                     <meta>.<task>_load_chunk (one row per chunk: plan, planned|loaded)
//!                  -> CREATE DATABASE / TABLE IF NOT EXISTS (routed), views
//! DumpItem::Chunk  -> one of `pool_size` sinks, LoadSink::load_chunk(ChunkMark, pieces):
//!                     the statements (routed, REPLACE/INSERT/INSERT IGNORE) and the chunk's
//!                     "loaded" mark, all or nothing (MySqlSink: BEGIN; INSERT ...;
//!                     UPDATE load_chunk SET state = 'loaded'; COMMIT)
//! ```
//!
//! The chunks go through `dm_core::LoadSink` ([`Shared::work`] is generic over it); the
//! loader's own bookkeeping (its meta tables, the stored plan and status, the schemas it
//! creates) is MySQL's, on `MySqlSink`, and the meta tables are named by dm-sink's
//! `CheckpointTables`, which also writes the mark.
//!
//! Sessions run with `time_zone = '+00:00'` (the sink's), never the user's `time_zone`: the
//! dump writes TIMESTAMP values and definitions as UTC text.
//!
//! Invariants: a chunk's rows and its `loaded` mark commit in one transaction, so a load killed
//! at any point resumes with exactly the chunks not marked, and no chunk is loaded twice; a
//! chunk whose stream ends without `End` (dump failed, file corrupted) is rolled back; many
//! upstream tables routed to one target create it once (`IF NOT EXISTS`); the load is
//! finished only when every planned chunk is marked.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use dm_core::{
    ChunkMark, ChunkOutcome, ChunkPiece, ChunkReader, Flavor, LoadSink, Location, TableRef,
};
use dm_sink::literal::{write_identifier, write_table, write_text};
use dm_sink::{CheckpointTables, MetaScope, MySqlSink, MySqlSinkOptions, SinkError};
use dm_task::filter::TableRouter;
use tokio::sync::{Mutex, mpsc};

use crate::dumper::ResumePlan;
use crate::encode::insert_prefix;
use crate::error::DumpError;
use crate::item::{ChunkMessage, ChunkStream, DumpHeader, DumpItem, LocationRecord};
use crate::plan::ChunkPlan;
use crate::progress::Progress;

/// What the loader does with a row whose key is already downstream (DM's
/// `on-duplicate-logical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnDuplicate {
    /// `REPLACE INTO` (DM's default).
    #[default]
    Replace,
    /// `INSERT INTO`: the load stops with the downstream's duplicate-key error.
    Error,
    /// `INSERT IGNORE INTO`: the downstream row stays.
    Ignore,
}

impl OnDuplicate {
    /// Reads DM's value.
    pub fn parse(text: &str) -> Result<Self, DumpError> {
        match text {
            "replace" | "" => Ok(OnDuplicate::Replace),
            "error" => Ok(OnDuplicate::Error),
            "ignore" => Ok(OnDuplicate::Ignore),
            other => Err(DumpError::Config(format!(
                "on-duplicate-logical `{other}`: use `replace`, `error` or `ignore`"
            ))),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            OnDuplicate::Replace => "REPLACE INTO ",
            OnDuplicate::Error => "INSERT INTO ",
            OnDuplicate::Ignore => "INSERT IGNORE INTO ",
        }
    }
}

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The downstream.
    pub sink: MySqlSinkOptions,
    /// The task's name (names the meta tables).
    pub task: String,
    /// The source's id (a meta row per source).
    pub source_id: String,
    /// The downstream schema of the meta tables (DM's `meta-schema`).
    pub meta_schema: String,
    /// Connections loading in parallel (DM's `pool-size`, 16).
    pub pool_size: usize,
    /// What to do with duplicate keys.
    pub on_duplicate: OnDuplicate,
}

/// Where a load stands, as stored downstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadStage {
    /// Begun, not every chunk loaded.
    Loading,
    /// Every chunk loaded; the syncer may start.
    Finished,
}

/// A load stored downstream by an earlier run of the task.
#[derive(Clone, Debug)]
pub struct StoredLoad {
    /// Its stage.
    pub stage: LoadStage,
    /// Where the rows came from: a dump directory's path, or `stream`.
    pub origin: String,
    /// Where replication continues: the first snapshot the load took rows from.
    pub location: Location,
    /// Until where the syncer writes idempotently (the latest snapshot a resumed load took
    /// rows from, or a `consistency: none` exit point).
    pub exit_point: Option<Location>,
    /// Stored chunk plans and finished chunks.
    pub resume: ResumePlan,
}

/// Where replication continues after a load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// The syncer's start.
    pub location: Location,
    /// The syncer's `safe_mode_until`.
    pub safe_mode_until: Option<Location>,
    /// What the user should know (tables whose rows safe mode may duplicate).
    pub warnings: Vec<String>,
}

impl Handoff {
    /// A hand-off without warnings.
    pub fn new(location: Location, safe_mode_until: Option<Location>) -> Self {
        Handoff {
            location,
            safe_mode_until,
            warnings: Vec::new(),
        }
    }
}

/// The warning for tables without a key when the syncer starts in safe mode.
fn keyless_warning(header: &DumpHeader) -> Option<String> {
    let keyless: Vec<String> = header
        .tables
        .iter()
        .filter(|table| !table.keyed)
        .map(|table| TableRef::new(&table.schema, &table.table).quoted())
        .collect();
    (!keyless.is_empty()).then(|| {
        format!(
            "{} without a primary key or NOT NULL unique key ({}): the syncer replays the changes \
             made during the dump in safe mode, which cannot make their changes idempotent, so \
             rows changed in them during the dump may be duplicated downstream; dump them with \
             `consistency: flush` in one uninterrupted run, or give them a key",
            if keyless.len() == 1 {
                "1 table".to_owned()
            } else {
                format!("{} tables", keyless.len())
            },
            keyless.join(", ")
        )
    })
}

/// The loader of one task and source.
#[derive(Debug)]
pub struct Loader {
    options: LoadOptions,
    router: TableRouter,
    /// The task's meta tables (the chunk table's mark is written by the sink).
    tables: CheckpointTables,
    status_table: String,
    chunk_table: String,
}

fn sql_string(text: &str) -> String {
    let mut out = String::new();
    write_text(&mut out, text);
    out
}

fn downstream(what: impl Into<String>) -> impl FnOnce(SinkError) -> DumpError {
    let what = what.into();
    move |source| DumpError::Downstream { what, source }
}

/// Replaces the first backquoted name after `keyword` (`CREATE TABLE `) in `statement` with
/// `replacement`, adding `IF NOT EXISTS`.
fn rename_created(statement: &str, keyword: &str, replacement: &str) -> Result<String, DumpError> {
    let invalid = || {
        DumpError::Unexpected(format!(
            "cannot find the name in `{}`",
            statement.chars().take(80).collect::<String>()
        ))
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

impl Loader {
    /// A loader; `router` routes upstream tables to their targets.
    pub fn new(options: LoadOptions, router: TableRouter) -> Result<Self, DumpError> {
        let mut options = options;
        // The dump's TIMESTAMP values and definitions are UTC text: the sink's `+00:00` must
        // stay, whatever session variables the options carry (the task's `target-database`
        // leaves `time_zone` out and names it in a warning).
        options
            .sink
            .session_variables
            .retain(|(name, _)| !name.eq_ignore_ascii_case("time_zone"));
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !valid(&options.task) || !valid(&options.meta_schema) {
            return Err(DumpError::Config(format!(
                "task name `{}` and meta-schema `{}` must be letters, digits, `_` or `-`",
                options.task, options.meta_schema
            )));
        }
        let tables = CheckpointTables::new(&options.meta_schema, &options.task)
            .map_err(|error| DumpError::Config(error.to_string()))?;
        let table = |table: TableRef| {
            let mut text = String::new();
            write_table(&mut text, &table);
            text
        };
        Ok(Loader {
            status_table: table(tables.load_status_table()),
            chunk_table: table(tables.load_chunk_table()),
            tables,
            options,
            router,
        })
    }

    fn sink(&self) -> Result<MySqlSink, DumpError> {
        MySqlSink::new(self.options.sink.clone()).map_err(downstream("the downstream session"))
    }

    async fn create_meta_tables(&self, sink: &mut MySqlSink) -> Result<(), DumpError> {
        let mut schema = String::new();
        write_identifier(&mut schema, &self.options.meta_schema);
        for statement in [
            format!("CREATE DATABASE IF NOT EXISTS {schema}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 source_id VARCHAR(32) NOT NULL PRIMARY KEY, stage VARCHAR(16) NOT NULL, \
                 origin VARCHAR(1024) NOT NULL, flavor VARCHAR(16) NOT NULL, \
                 binlog_name VARCHAR(128) NOT NULL, binlog_pos BIGINT UNSIGNED NOT NULL, \
                 binlog_gtid TEXT, exit_safe_binlog_name VARCHAR(128), \
                 exit_safe_binlog_pos BIGINT UNSIGNED, exit_safe_binlog_gtid TEXT, \
                 update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
                self.status_table
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 source_id VARCHAR(32) NOT NULL, schema_name VARCHAR(64) NOT NULL, \
                 table_name VARCHAR(64) NOT NULL, chunk INT UNSIGNED NOT NULL, plan TEXT NOT NULL, \
                 state VARCHAR(16) NOT NULL, row_count BIGINT UNSIGNED NOT NULL DEFAULT 0, \
                 byte_count BIGINT UNSIGNED NOT NULL DEFAULT 0, \
                 PRIMARY KEY (source_id, schema_name, table_name, chunk)) \
                 DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
                self.chunk_table
            ),
        ] {
            sink.execute(&statement)
                .await
                .map_err(downstream("the load meta tables"))?;
        }
        Ok(())
    }

    /// What an earlier run of this task and source stored, if anything.
    pub async fn stored(&self, flavor: Flavor) -> Result<Option<StoredLoad>, DumpError> {
        let mut sink = self.sink()?;
        self.create_meta_tables(&mut sink).await?;
        let source = sql_string(&self.options.source_id);
        let rows = sink
            .query(&format!(
                "SELECT stage, origin, binlog_name, binlog_pos, binlog_gtid, exit_safe_binlog_name, \
                 exit_safe_binlog_pos, exit_safe_binlog_gtid FROM {} WHERE source_id = {source}",
                self.status_table
            ))
            .await
            .map_err(downstream("the load status"))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let field = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
        let stage = match field(0).as_str() {
            "finished" => LoadStage::Finished,
            _ => LoadStage::Loading,
        };
        let location = LocationRecord {
            binlog_name: field(2),
            binlog_pos: field(3).parse().unwrap_or(0),
            binlog_gtid: field(4),
        }
        .location(flavor)?;
        let exit_point = match row.get(5).cloned().flatten() {
            Some(name) if !name.is_empty() => Some(
                LocationRecord {
                    binlog_name: name,
                    binlog_pos: field(6).parse().unwrap_or(0),
                    binlog_gtid: field(7),
                }
                .location(flavor)?,
            ),
            _ => None,
        };
        let chunks = sink
            .query(&format!(
                "SELECT schema_name, table_name, chunk, plan, state FROM {} WHERE source_id = {source} \
                 ORDER BY schema_name, table_name, chunk",
                self.chunk_table
            ))
            .await
            .map_err(downstream("the load chunks"))?;
        let mut plans: BTreeMap<(String, String), Vec<ChunkPlan>> = BTreeMap::new();
        let mut finished = HashSet::new();
        for row in chunks {
            let text = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
            let (schema, table) = (text(0), text(1));
            let number: u32 = text(2).parse().unwrap_or(0);
            let plan: ChunkPlan = serde_json::from_str(&text(3)).map_err(|error| {
                DumpError::State(format!(
                    "{}: the plan of {schema}.{table} chunk {number} is unreadable: {error}",
                    self.chunk_table
                ))
            })?;
            if text(4) == "loaded" {
                finished.insert((schema.clone(), table.clone(), number));
            }
            plans.entry((schema, table)).or_default().push(plan);
        }
        Ok(Some(StoredLoad {
            stage,
            origin: field(1),
            location,
            exit_point,
            resume: ResumePlan {
                plans: plans.into_iter().collect(),
                finished,
            },
        }))
    }

    /// Forgets an earlier load of this task and source (DM's `--remove-meta`).
    pub async fn forget(&self) -> Result<(), DumpError> {
        let mut sink = self.sink()?;
        self.create_meta_tables(&mut sink).await?;
        let source = sql_string(&self.options.source_id);
        for table in [&self.status_table, &self.chunk_table] {
            sink.execute(&format!("DELETE FROM {table} WHERE source_id = {source}"))
                .await
                .map_err(downstream("forgetting the earlier load"))?;
        }
        Ok(())
    }

    /// Marks the load finished: the next run goes straight to the syncer.
    pub async fn mark_finished(&self) -> Result<(), DumpError> {
        let mut sink = self.sink()?;
        sink.execute(&format!(
            "UPDATE {} SET stage = 'finished' WHERE source_id = {}",
            self.status_table,
            sql_string(&self.options.source_id)
        ))
        .await
        .map_err(downstream("the load status"))
    }

    /// Loads what `input` delivers (from `origin`: a directory's path or `stream`). Returns
    /// where replication continues once every chunk is loaded.
    pub async fn load(
        &self,
        origin: &str,
        input: mpsc::Receiver<DumpItem>,
        progress: Arc<Progress>,
    ) -> Result<Handoff, DumpError> {
        let mut input = input;
        let Some(DumpItem::Header(header)) = input.recv().await else {
            return Err(DumpError::Interrupted("the dump header".into()));
        };
        let mut sink = self.sink()?;
        // `stored` creates the meta tables; recording the plan does not change what is loaded.
        let stored = self.stored(header.flavor).await?;
        let finished = stored
            .as_ref()
            .map(|stored| stored.resume.finished.clone())
            .unwrap_or_default();
        let handoff = self
            .record_status(&mut sink, origin, &header, stored)
            .await?;
        self.create_schemas(&mut sink, &header).await?;
        self.record_plan(&mut sink, &header).await?;
        let total_bytes = header
            .tables
            .iter()
            .map(|table| table.estimated_bytes)
            .sum();
        progress.begin(header.chunk_count(), finished.len() as u64, total_bytes);
        let targets = header
            .tables
            .iter()
            .map(|table| {
                let target = self
                    .router
                    .route(&TableRef::new(&table.schema, &table.table))
                    .map_err(|error| DumpError::Config(error.to_string()))?;
                let mut prefix = String::from(self.options.on_duplicate.verb());
                write_table(&mut prefix, &target);
                let upstream = insert_prefix(&table.table, &table.columns);
                // Both prefixes end with the same ` (`columns`) VALUES `.
                let columns_at = upstream.find(" (").unwrap_or(upstream.len());
                prefix.push_str(&upstream[columns_at..]);
                Ok((upstream, prefix))
            })
            .collect::<Result<Vec<_>, DumpError>>()?;
        let shared = Arc::new(Shared {
            header: header.clone(),
            targets,
            finished,
            input: Mutex::new(input),
            progress,
            source_id: self.options.source_id.clone(),
            failed: std::sync::atomic::AtomicBool::new(false),
        });
        let scope = MetaScope {
            tables: self.tables.clone(),
            source: self.options.source_id.clone(),
            flavor: header.flavor,
        };
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.options.pool_size.max(1) {
            let shared = shared.clone();
            let mut sink = self.sink()?.with_scope(scope.clone());
            // Chunks never read what others write: no gap locks between parallel inserts.
            sink.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .await
                .map_err(downstream("the load session"))?;
            workers.spawn(async move {
                shared
                    .work(sink, |what, source: SinkError| DumpError::Downstream {
                        what,
                        source,
                    })
                    .await
            });
        }
        let mut first_error = None;
        while let Some(joined) = workers.join_next().await {
            let result = joined.unwrap_or_else(|panic| {
                Err(DumpError::Unexpected(format!(
                    "a load worker panicked: {panic}"
                )))
            });
            if let Err(error) = result {
                // Stop the others: no more chunks are taken.
                shared
                    .failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                shared.input.lock().await.close();
                first_error.get_or_insert(error);
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        let left = sink
            .query(&format!(
                "SELECT COUNT(*) FROM {} WHERE source_id = {} AND state <> 'loaded'",
                self.chunk_table,
                sql_string(&self.options.source_id)
            ))
            .await
            .map_err(downstream("the load chunks"))?;
        let left: u64 = left
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        if left > 0 {
            return Err(DumpError::Interrupted(format!("{left} chunks")));
        }
        Ok(handoff)
    }

    /// Stores the first snapshot's location, or moves the exit point of a resumed load to the
    /// latest snapshot; returns the hand-off.
    async fn record_status(
        &self,
        sink: &mut MySqlSink,
        origin: &str,
        header: &DumpHeader,
        stored: Option<StoredLoad>,
    ) -> Result<Handoff, DumpError> {
        let record = |location: &Option<Location>| match location {
            Some(location) => {
                let record = LocationRecord::new(location);
                format!(
                    "{}, {}, {}",
                    sql_string(&record.binlog_name),
                    record.binlog_pos,
                    sql_string(&record.binlog_gtid)
                )
            }
            None => "NULL, NULL, NULL".into(),
        };
        let Some(stored) = stored else {
            let location = LocationRecord::new(&header.location);
            sink.execute(&format!(
                "INSERT INTO {} (source_id, stage, origin, flavor, binlog_name, binlog_pos, binlog_gtid, \
                 exit_safe_binlog_name, exit_safe_binlog_pos, exit_safe_binlog_gtid) \
                 VALUES ({}, 'loading', {}, {}, {}, {}, {}, {})",
                self.status_table,
                sql_string(&self.options.source_id),
                sql_string(origin),
                sql_string(&header.flavor.name().to_ascii_lowercase()),
                sql_string(&location.binlog_name),
                location.binlog_pos,
                sql_string(&location.binlog_gtid),
                record(&header.exit_point)
            ))
            .await
            .map_err(downstream("the load status"))?;
            let mut handoff = Handoff::new(header.location.clone(), header.exit_point.clone());
            if handoff.safe_mode_until.is_some() {
                handoff.warnings.extend(keyless_warning(header));
            }
            return Ok(handoff);
        };
        if stored.stage == LoadStage::Finished {
            return Err(DumpError::State(format!(
                "source {} of task {} was already loaded (from {}); its syncer continues from {}",
                self.options.source_id, self.options.task, stored.origin, stored.location
            )));
        }
        if stored.origin != origin && (stored.origin == "stream" || origin == "stream") {
            return Err(DumpError::State(format!(
                "an interrupted load of source {} came from {}, this one from {}: resume it the same way",
                self.options.source_id, stored.origin, origin
            )));
        }
        // Rows of this snapshot are newer than the first one's: replay from the first location
        // idempotently until this snapshot (or its own exit point).
        let this_snapshot_end = header
            .exit_point
            .clone()
            .unwrap_or_else(|| header.location.clone());
        let exit_point = match (&stored.exit_point, stored.location == header.location) {
            (previous, true) => previous.clone(),
            (Some(previous), false) => Some(match previous.compare(&this_snapshot_end) {
                Some(std::cmp::Ordering::Greater) => previous.clone(),
                _ => this_snapshot_end,
            }),
            (None, false) => Some(this_snapshot_end),
        };
        sink.execute(&format!(
            "UPDATE {} SET exit_safe_binlog_name = {n}, exit_safe_binlog_pos = {p}, \
             exit_safe_binlog_gtid = {g} WHERE source_id = {}",
            self.status_table,
            sql_string(&self.options.source_id),
            n = exit_point.as_ref().map_or("NULL".into(), |l| sql_string(
                &LocationRecord::new(l).binlog_name
            )),
            p = exit_point
                .as_ref()
                .map_or("NULL".into(), |l| LocationRecord::new(l)
                    .binlog_pos
                    .to_string()),
            g = exit_point.as_ref().map_or("NULL".into(), |l| sql_string(
                &LocationRecord::new(l).binlog_gtid
            )),
        ))
        .await
        .map_err(downstream("the load status"))?;
        let mut handoff = Handoff::new(stored.location, exit_point);
        if handoff.safe_mode_until.is_some() {
            handoff.warnings.extend(keyless_warning(header));
        }
        Ok(handoff)
    }

    async fn create_schemas(
        &self,
        sink: &mut MySqlSink,
        header: &DumpHeader,
    ) -> Result<(), DumpError> {
        let route_error = |error: dm_task::filter::RuleError| DumpError::Config(error.to_string());
        let mut created = HashSet::new();
        for database in &header.databases {
            let target = self
                .router
                .route_schema(&database.name)
                .map_err(route_error)?;
            if !created.insert(target.clone()) {
                continue;
            }
            let mut name = String::new();
            write_identifier(&mut name, &target);
            let statement = rename_created(&database.create_statement, "CREATE DATABASE ", &name)?;
            sink.execute(&statement)
                .await
                .map_err(downstream(format!("database {target}")))?;
        }
        let mut created = HashSet::new();
        for table in &header.tables {
            let target = self
                .router
                .route(&TableRef::new(&table.schema, &table.table))
                .map_err(route_error)?;
            if !created.insert(target.clone()) {
                continue;
            }
            let mut database = String::new();
            write_identifier(&mut database, &target.schema);
            sink.execute(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
                .await
                .map_err(downstream(format!("database {}", target.schema)))?;
            let mut name = String::new();
            write_table(&mut name, &target);
            let statement = rename_created(&table.create_statement, "CREATE TABLE ", &name)?;
            sink.execute(&statement)
                .await
                .map_err(downstream(format!("table {}", target.quoted())))?;
        }
        // Views may select from views: create what can be created until nothing changes.
        let mut pending: Vec<_> = header.views.iter().collect();
        while !pending.is_empty() {
            let mut failed = Vec::new();
            let mut last_error = None;
            for view in &pending {
                let target = self
                    .router
                    .route(&TableRef::new(&view.schema, &view.view))
                    .map_err(route_error)?;
                let mut name = String::new();
                write_table(&mut name, &target);
                let statement = format!("CREATE OR REPLACE VIEW {name} AS {}", view.definition);
                if let Err(error) = sink.execute(&statement).await {
                    failed.push(*view);
                    last_error = Some((target, error));
                }
            }
            if failed.len() == pending.len()
                && let Some((target, error)) = last_error
            {
                return Err(downstream(format!("view {}", target.quoted()))(error));
            }
            pending = failed;
        }
        Ok(())
    }

    async fn record_plan(
        &self,
        sink: &mut MySqlSink,
        header: &DumpHeader,
    ) -> Result<(), DumpError> {
        let source = sql_string(&self.options.source_id);
        let mut rows = Vec::new();
        for table in &header.tables {
            for plan in &table.chunks {
                let text = serde_json::to_string(plan).map_err(|error| {
                    DumpError::Unexpected(format!("encoding a chunk plan: {error}"))
                })?;
                rows.push(format!(
                    "({source}, {}, {}, {}, {}, 'planned')",
                    sql_string(&table.schema),
                    sql_string(&table.table),
                    plan.number,
                    sql_string(&text)
                ));
            }
        }
        for batch in rows.chunks(500) {
            sink.execute(&format!(
                "INSERT IGNORE INTO {} (source_id, schema_name, table_name, chunk, plan, state) VALUES {}",
                self.chunk_table,
                batch.join(",")
            ))
            .await
            .map_err(downstream("the load chunks"))?;
        }
        Ok(())
    }
}

/// What the load workers share.
struct Shared {
    header: Arc<DumpHeader>,
    /// Per table: the upstream INSERT prefix of its statements and the routed one to run.
    targets: Vec<(String, String)>,
    finished: HashSet<(String, String, u32)>,
    input: Mutex<mpsc::Receiver<DumpItem>>,
    progress: Arc<Progress>,
    /// The source whose chunks are marked.
    source_id: String,
    failed: std::sync::atomic::AtomicBool,
}

/// The pieces of one chunk as the sink reads them: each statement routed, its bytes counted
/// once the sink asks for the next one (it ran).
struct Pieces<'a> {
    stream: &'a mut ChunkStream,
    upstream_prefix: &'a str,
    target_prefix: &'a str,
    progress: &'a Progress,
    line_number: u64,
    /// Bytes of the statement handed out last.
    last_bytes: u64,
    /// Why the chunk ended early (a corrupted line, the dump's error), if it did.
    failure: Option<DumpError>,
}

impl ChunkReader for Pieces<'_> {
    async fn next_piece(&mut self) -> Option<ChunkPiece> {
        self.progress
            .add_bytes(std::mem::take(&mut self.last_bytes));
        match self.stream.messages.recv().await {
            Some(Ok(ChunkMessage::Statement(line, _))) => {
                self.line_number += 1;
                let Some(values) = line.strip_prefix(self.upstream_prefix) else {
                    self.failure = Some(DumpError::Corrupted {
                        path: self.stream.origin.clone(),
                        reason: format!(
                            "line {} does not start with `{}`",
                            self.line_number, self.upstream_prefix
                        ),
                    });
                    return None;
                };
                let mut statement = String::with_capacity(self.target_prefix.len() + values.len());
                statement.push_str(self.target_prefix);
                statement.push_str(values);
                self.last_bytes = line.len() as u64;
                Some(ChunkPiece::Statement(statement))
            }
            Some(Ok(ChunkMessage::End { rows, bytes })) => Some(ChunkPiece::End { rows, bytes }),
            Some(Err(error)) => {
                self.failure = Some(error);
                None
            }
            None => None,
        }
    }
}

impl Shared {
    /// Loads chunks from the shared input with `sink` until it ends (or another worker
    /// failed); `downstream` turns the sink's error into the loader's, naming the chunk.
    async fn work<Sink: LoadSink>(
        &self,
        mut sink: Sink,
        downstream: impl Fn(String, Sink::Error) -> DumpError,
    ) -> Result<(), DumpError> {
        loop {
            if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            let item = self.input.lock().await.recv().await;
            let stream = match item {
                None => return Ok(()),
                Some(DumpItem::Header(_)) => {
                    return Err(DumpError::Unexpected("a second dump header".into()));
                }
                Some(DumpItem::Chunk(stream)) => stream,
            };
            let Some(table) = self.header.tables.get(stream.table) else {
                return Err(DumpError::Unexpected(format!(
                    "chunk of unknown table {}",
                    stream.table
                )));
            };
            if self
                .finished
                .contains(&(table.schema.clone(), table.table.clone(), stream.chunk))
            {
                continue;
            }
            let result = self.load_chunk(&mut sink, stream, &downstream).await;
            if result.is_err() {
                self.failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            result?;
        }
    }

    async fn load_chunk<Sink: LoadSink>(
        &self,
        sink: &mut Sink,
        mut stream: ChunkStream,
        downstream: &impl Fn(String, Sink::Error) -> DumpError,
    ) -> Result<(), DumpError> {
        let table = &self.header.tables[stream.table];
        let (upstream_prefix, target_prefix) = &self.targets[stream.table];
        let what = format!(
            "{}.{} chunk {} from {}",
            table.schema, table.table, stream.chunk, stream.origin
        );
        let mark = ChunkMark {
            source: self.source_id.clone(),
            table: TableRef::new(&table.schema, &table.table),
            chunk: stream.chunk,
        };
        let mut pieces = Pieces {
            stream: &mut stream,
            upstream_prefix,
            target_prefix,
            progress: &self.progress,
            line_number: 0,
            last_bytes: 0,
            failure: None,
        };
        let outcome = sink.load_chunk(&mark, &mut pieces).await;
        let failure = pieces.failure.take();
        match outcome {
            Ok(ChunkOutcome::Loaded { rows, .. }) => {
                self.progress.chunk_done(rows);
                Ok(())
            }
            Ok(ChunkOutcome::Incomplete) => Err(failure.unwrap_or(DumpError::Interrupted(what))),
            Err(error) => Err(downstream(what, error)),
        }
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

    #[test]
    fn duplicate_handling_reads_dm_values() {
        assert_eq!(
            OnDuplicate::parse("replace").unwrap().verb(),
            "REPLACE INTO "
        );
        assert_eq!(
            OnDuplicate::parse("ignore").unwrap().verb(),
            "INSERT IGNORE INTO "
        );
        assert!(
            OnDuplicate::parse("overwrite")
                .unwrap_err()
                .to_string()
                .contains("replace")
        );
    }
}
