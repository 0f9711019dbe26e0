//! The loader: creates the downstream schemas and loads chunks in parallel, each exactly once.
//!
//! ```text
//! DumpItem::Header -> control sink (LoadSinkFactory::open_control):
//!                     LoadCheckpointStore: prepare_load, read_load, begin_load (status: stage,
//!                     first snapshot's location, safe-mode exit point) or set_load_exit_point,
//!                     plan_chunks (one per chunk: its plan, not loaded)
//!                     LoadSink::create_object: databases, tables (routed, kept when they
//!                     exist), views (until nothing changes)
//! DumpItem::Chunk  -> one of `pool_size` worker sinks (open_worker), LoadSink::load_chunk(
//!                     ChunkMark, pieces): the statements (routed, REPLACE/INSERT/INSERT IGNORE)
//!                     and the chunk's "loaded" mark, all or nothing
//! the end          -> chunks_left() == 0, then (the caller) finish_load
//! ```
//!
//! [`Loader`] speaks only `dm_core`'s load traits ([`LoadSinkFactory`] and the sinks it opens);
//! the progress it stores is typed ([`LoadStatus`], [`PlannedChunk`]: a chunk's plan travels
//! as the loader's JSON) and the schemas travel as the dump wrote them ([`SchemaObject`]).
//! `dm-sink`'s `MySqlLoadSinks` is the MySQL-compatible implementation (DM's meta tables
//! `<task>_load_status` and `<task>_load_chunk`, `CREATE ... IF NOT EXISTS`, sessions in UTC
//! since the dump writes TIMESTAMP values and definitions as UTC text); [`Loader::new`] builds
//! it from [`LoadOptions`], and [`Loader::with_sinks`] takes any factory.
//!
//! Invariants: a chunk's rows and its `loaded` mark commit together, so a load killed at any
//! point resumes with exactly the chunks not marked, and no chunk is loaded twice; a chunk
//! whose stream ends without `End` (dump failed, file corrupted) is rolled back; many upstream
//! tables routed to one target create it once (an existing table is kept); the load is
//! finished only when every planned chunk is marked.
//!
//! Errors: a sink's error becomes [`DumpError::Downstream`], naming what was loaded and keeping
//! the sink's class, code and workaround ([`ErrorReport`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

// The load traits' new items are reached through `dm_core::sink` until `dm_core`'s root
// re-exports them.
pub use dm_core::sink::LoadStage;
use dm_core::sink::{LoadCheckpointStore, LoadSinkFactory, LoadStatus, PlannedChunk, SchemaObject};
use dm_core::{
    ChunkMark, ChunkOutcome, ChunkPiece, ChunkReader, ClassifiedError, ErrorReport, Flavor,
    LoadSink, Location, TableRef,
};
use dm_mysql::literal::write_table;
use dm_sink::{CheckpointTables, LoadScope, MySqlLoadSinks, MySqlSinkOptions};
use dm_task::filter::TableRouter;
use tokio::sync::{Mutex, mpsc};

use crate::dumper::ResumePlan;
use crate::encode::insert_prefix;
use crate::error::DumpError;
use crate::item::{ChunkMessage, ChunkStream, DumpHeader, DumpItem};
use crate::plan::ChunkPlan;
use crate::progress::Progress;
use crate::tally::Tallies;

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

/// How to load into a MySQL-compatible downstream ([`Loader::new`]).
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

impl LoadOptions {
    /// What the loader needs besides its sinks.
    pub fn settings(&self) -> LoadSettings {
        LoadSettings {
            task: self.task.clone(),
            source_id: self.source_id.clone(),
            pool_size: self.pool_size,
            on_duplicate: self.on_duplicate,
        }
    }
}

/// What the loader needs besides its sinks ([`Loader::with_sinks`]).
#[derive(Clone, Debug)]
pub struct LoadSettings {
    /// The task's name (in messages).
    pub task: String,
    /// The source's id (the chunks' marks name it).
    pub source_id: String,
    /// Sinks loading in parallel (DM's `pool-size`, 16).
    pub pool_size: usize,
    /// What to do with duplicate keys.
    pub on_duplicate: OnDuplicate,
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

/// The loader of one task and source, over the sinks `Sinks` opens (MySQL's by default).
#[derive(Debug)]
pub struct Loader<Sinks = MySqlLoadSinks> {
    sinks: Sinks,
    settings: LoadSettings,
    router: TableRouter,
}

/// Turns a sink's error into the loader's, naming `what` was being loaded.
fn downstream<Error: ClassifiedError>(what: impl Into<String>) -> impl FnOnce(Error) -> DumpError {
    let what = what.into();
    move |error| DumpError::Downstream {
        what,
        source: ErrorReport::of(&error),
    }
}

impl Loader<MySqlLoadSinks> {
    /// A loader into the MySQL-compatible downstream `options.sink`, its progress in the
    /// task's meta tables; `router` routes upstream tables to their targets.
    pub fn new(options: LoadOptions, router: TableRouter) -> Result<Self, DumpError> {
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
        let scope = LoadScope {
            tables,
            source: options.source_id.clone(),
        };
        let sinks = MySqlLoadSinks::new(options.sink.clone(), scope);
        Ok(Loader::with_sinks(sinks, options.settings(), router))
    }
}

impl<Sinks: LoadSinkFactory> Loader<Sinks> {
    /// A loader over the sinks `sinks` opens; `router` routes upstream tables to their
    /// targets.
    pub fn with_sinks(sinks: Sinks, settings: LoadSettings, router: TableRouter) -> Self {
        Loader {
            sinks,
            settings,
            router,
        }
    }

    /// Opens the control sink: the load's progress and the objects it creates.
    async fn control(&self) -> Result<Sinks::Control, DumpError> {
        self.sinks
            .open_control()
            .await
            .map_err(downstream("the downstream session"))
    }

    /// What an earlier run of this task and source stored, if anything.
    pub async fn stored(&self, flavor: Flavor) -> Result<Option<StoredLoad>, DumpError> {
        let mut sink = self.control().await?;
        sink.prepare_load()
            .await
            .map_err(downstream("the load meta tables"))?;
        let Some(stored) = sink
            .read_load(flavor)
            .await
            .map_err(downstream("the load status"))?
        else {
            return Ok(None);
        };
        let mut plans: BTreeMap<(String, String), Vec<ChunkPlan>> = BTreeMap::new();
        let mut finished = HashSet::new();
        for stored_chunk in stored.chunks {
            let PlannedChunk { table, chunk, plan } = stored_chunk.planned;
            let plan: ChunkPlan = serde_json::from_str(&plan).map_err(|error| {
                DumpError::State(format!(
                    "the stored plan of {}.{} chunk {chunk} is unreadable: {error}",
                    table.schema, table.table
                ))
            })?;
            let key = (table.schema, table.table);
            if stored_chunk.loaded {
                finished.insert((key.0.clone(), key.1.clone(), chunk));
            }
            plans.entry(key).or_default().push(plan);
        }
        Ok(Some(StoredLoad {
            stage: stored.status.stage,
            origin: stored.status.origin,
            location: stored.status.location,
            exit_point: stored.status.exit_point,
            resume: ResumePlan {
                plans: plans.into_iter().collect(),
                finished,
            },
        }))
    }

    /// Forgets an earlier load of this task and source (DM's `--remove-meta`).
    pub async fn forget(&self) -> Result<(), DumpError> {
        let mut sink = self.control().await?;
        sink.prepare_load()
            .await
            .map_err(downstream("the load meta tables"))?;
        sink.forget_load()
            .await
            .map_err(downstream("forgetting the earlier load"))
    }

    /// Marks the load finished: the next run goes straight to the syncer.
    pub async fn mark_finished(&self) -> Result<(), DumpError> {
        let mut sink = self.control().await?;
        sink.finish_load()
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
        let mut sink = self.control().await?;
        // `stored` prepares the progress storage; recording the plan does not change what is
        // loaded.
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
        let tallies = Tallies::new(header.tables.iter().map(|table| {
            table
                .chunks
                .iter()
                .filter(|plan| {
                    !finished.contains(&(table.schema.clone(), table.table.clone(), plan.number))
                })
                .count() as u64
        }));
        tracing::info!(
            task = %self.settings.task,
            source = %self.settings.source_id,
            origin,
            tables = header.tables.len(),
            chunks = header.chunk_count(),
            chunks_done_before = finished.len(),
            "load started"
        );
        let targets = header
            .tables
            .iter()
            .map(|table| {
                let target = self
                    .router
                    .route(&TableRef::new(&table.schema, &table.table))
                    .map_err(|error| DumpError::Config(error.to_string()))?;
                let mut prefix = String::from(self.settings.on_duplicate.verb());
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
            task: self.settings.task.clone(),
            source_id: self.settings.source_id.clone(),
            failed: std::sync::atomic::AtomicBool::new(false),
            tallies,
        });
        let workers_count = self.settings.pool_size.max(1);
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..workers_count {
            let shared = shared.clone();
            let sink = self
                .sinks
                .open_worker(worker, workers_count)
                .await
                .map_err(downstream("the load session"))?;
            workers.spawn(async move { shared.work(sink).await });
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
            .chunks_left()
            .await
            .map_err(downstream("the load chunks"))?;
        if left > 0 {
            return Err(DumpError::Interrupted(format!("{left} chunks")));
        }
        let (tables, rows, bytes) = shared.tallies.totals();
        tracing::info!(
            task = %self.settings.task,
            source = %self.settings.source_id,
            tables,
            rows,
            bytes,
            location = %handoff.location,
            "load finished"
        );
        Ok(handoff)
    }

    /// Stores the first snapshot's location, or moves the exit point of a resumed load to the
    /// latest snapshot; returns the hand-off.
    async fn record_status(
        &self,
        sink: &mut Sinks::Control,
        origin: &str,
        header: &DumpHeader,
        stored: Option<StoredLoad>,
    ) -> Result<Handoff, DumpError> {
        let Some(stored) = stored else {
            let status = LoadStatus {
                stage: LoadStage::Loading,
                origin: origin.to_owned(),
                location: header.location.clone(),
                exit_point: header.exit_point.clone(),
            };
            sink.begin_load(&status, header.flavor)
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
                self.settings.source_id, self.settings.task, stored.origin, stored.location
            )));
        }
        if stored.origin != origin && (stored.origin == "stream" || origin == "stream") {
            return Err(DumpError::State(format!(
                "an interrupted load of source {} came from {}, this one from {}: resume it the same way",
                self.settings.source_id, stored.origin, origin
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
        sink.set_load_exit_point(exit_point.as_ref())
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
        sink: &mut Sinks::Control,
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
            let object = SchemaObject::Database {
                name: target.clone(),
                statement: Some(database.create_statement.clone()),
            };
            sink.create_object(&object)
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
            let database = SchemaObject::Database {
                name: target.schema.clone(),
                statement: None,
            };
            sink.create_object(&database)
                .await
                .map_err(downstream(format!("database {}", target.schema)))?;
            let what = format!("table {}", target.quoted());
            let object = SchemaObject::Table {
                table: target,
                statement: table.create_statement.clone(),
            };
            sink.create_object(&object)
                .await
                .map_err(downstream(what))?;
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
                let object = SchemaObject::View {
                    view: target.clone(),
                    select: view.definition.clone(),
                };
                if let Err(error) = sink.create_object(&object).await {
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
        sink: &mut Sinks::Control,
        header: &DumpHeader,
    ) -> Result<(), DumpError> {
        let mut chunks = Vec::new();
        for table in &header.tables {
            for plan in &table.chunks {
                let text = serde_json::to_string(plan).map_err(|error| {
                    DumpError::Unexpected(format!("encoding a chunk plan: {error}"))
                })?;
                chunks.push(PlannedChunk {
                    table: TableRef::new(&table.schema, &table.table),
                    chunk: plan.number,
                    plan: text,
                });
            }
        }
        sink.plan_chunks(&chunks)
            .await
            .map_err(downstream("the load chunks"))
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
    /// The task, for the logs.
    task: String,
    /// The source whose chunks are marked.
    source_id: String,
    failed: std::sync::atomic::AtomicBool,
    /// Per-table counts, for the logs.
    tallies: Tallies,
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
    /// failed).
    async fn work<Sink: LoadSink>(&self, mut sink: Sink) -> Result<(), DumpError> {
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
            let result = self.load_chunk(&mut sink, stream).await;
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
    ) -> Result<(), DumpError> {
        let table_index = stream.table;
        let table = &self.header.tables[table_index];
        let (upstream_prefix, target_prefix) = &self.targets[table_index];
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
        if self.tallies.start(table_index) {
            tracing::debug!(
                task = %self.task,
                source = %self.source_id,
                table = %format_args!("{}.{}", table.schema, table.table),
                "table load started"
            );
        }
        let outcome = sink.load_chunk(&mark, &mut pieces).await;
        let failure = pieces.failure.take();
        match outcome {
            Ok(ChunkOutcome::Loaded { rows, bytes }) => {
                self.progress.chunk_done(rows);
                if let Some((rows, bytes)) = self.tallies.finish(table_index, rows, bytes) {
                    tracing::debug!(
                        task = %self.task,
                        source = %self.source_id,
                        table = %format_args!("{}.{}", table.schema, table.table),
                        rows,
                        bytes,
                        "table loaded"
                    );
                }
                Ok(())
            }
            Ok(ChunkOutcome::Incomplete) => Err(failure.unwrap_or(DumpError::Interrupted(what))),
            Err(error) => Err(downstream(what)(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
