//! Where row changes, DDL and checkpoints leave the pipeline: the [`Sink`] traits.
//!
//! ```text
//! binlog --> syncer (filters, routes, tracker, causality) --+--> worker 0: Sink::apply_batch(ChangeBatch + WorkerCheckpoint)
//!                                                            +--> worker n: Sink::apply_batch(...)
//!                     control sink: DdlSink (drained barrier) + CheckpointStore (global checkpoint)
//!                                   + Sink::describe_table (once per table and DDL, shared by every worker)
//! dump --> loader --+--> control: LoadCheckpointStore (status, planned chunks) + LoadSink::create_object
//!                    +--> connection c: LoadSink::load_chunk(chunk statements + ChunkMark)
//! ```
//!
//! | trait | capability | who calls it |
//! |---|---|---|
//! | [`Sink`] | apply a batch of row changes with the worker checkpoint it carries, all or nothing; describe a table | every syncer worker (`apply_batch`), the event loop (`describe_table`) |
//! | [`DdlSink`] | run a DDL statement, and tell after a crash whether a recorded one ran | the syncer's DDL barrier |
//! | [`CheckpointStore`] | load and save the global checkpoint of a task and source, atomically | the event loop |
//! | [`SinkFactory`] | open the sinks of one run: a control sink and one sink per worker | `dm_syncer::run_with` |
//! | [`LoadSink`] | create a full load's databases, tables and views; load one chunk with its "loaded" mark, all or nothing | the loader (its own sink and one per loading connection) |
//! | [`LoadCheckpointStore`] | keep a full load's progress: its status (stage, hand-off location, exit point) and planned chunks | the loader |
//! | [`LoadSinkFactory`] | open the sinks of one load: the loader's own sink and one per loading connection | `dm_dumpload::Loader` |
//!
//! Implementations: `dm-sink`'s `MySqlSink` (TiDB, MySQL, MariaDB; checkpoints and the load's
//! progress in DM's meta tables; `MySqlSinks` and `MySqlLoadSinks` open them), `dm-sink-file`'s
//! `FileSink` (a JSON-lines change feed with its checkpoints in the same file), and `testsuite::RecordingSink` (feature `testsuite`: records everything, fails and
//! waits on request).
//!
//! # Writing a sink
//!
//! The syncer is exactly once because every sink keeps three promises; everything else is up to
//! the sink.
//!
//! 1. **A batch is atomic with its checkpoint.** [`Sink::apply_batch`] returns `Ok` only once the
//!    batch's changes *and* the [`WorkerCheckpoint`] it carries are durable together, and an
//!    `Err` (or a crash, or the future dropped) leaves neither. A database does it with one
//!    transaction; a file with one write followed by an fsync, and a torn tail cut off at the
//!    next start; a queue with a transactional producer. The next [`CheckpointStore::load`]
//!    returns the worker checkpoint of the last batch that returned `Ok` (or a later one that
//!    made it before a crash), never one of a batch whose changes are not there.
//! 2. **The global checkpoint is saved atomically.** [`CheckpointStore::save`] writes the whole
//!    [`GlobalCheckpoint`] (location, safe-mode exit, the tables changed since the last save,
//!    the DDL record) or nothing; `load` returns what the last successful save left, the tables
//!    merged over every save.
//! 3. **A DDL's fate can be told.** [`DdlSink::ddl_before`] is called, and its answer saved in
//!    a [`DdlRecord`](crate::checkpoint::DdlRecord), before [`DdlSink::apply_ddl`] runs a statement. After a crash (or a lost
//!    connection while it ran), [`DdlSink::ddl_ran`] gets the record back and says whether the
//!    statement ran. A sink that cannot run DDL and its record atomically (MySQL: DDL commits
//!    by itself) compares what it reads now with what it read before; a sink that writes the
//!    DDL and a mark of it together (a change feed) answers from its own marks; a sink that
//!    cannot tell says [`DdlCheck::Unknowable`] and the task stops and asks the user.
//!
//! Besides: each worker gets its own sink from the [`SinkFactory`] (its own connection, file
//! handle or producer), and once every worker's sink is open no sink of an earlier run of the
//! same task and source may still commit (MySQL: a named lock per worker connection, held until
//! the connection, and the transaction it may still run, ended). [`Sink::describe_table`] tells
//! what the sink knows of a table: its columns and keys decide which rows a change addresses
//! (the syncer reads it once per table and per DDL, and hands it to every worker inside the
//! batches, [`ChangeBatch::table`]); a sink without tables of its own answers
//! [`SinkTable::Mirrored`]. Errors implement [`ClassifiedError`]: transient ones are retried
//! with backoff, definite ones stop the task with their code and workaround.
//!
//! `dm-sink-file` is the smallest complete example; `testsuite` (feature `testsuite`) holds the
//! conformance checks a new sink should pass.
//!
//! [`ApplyMode::Idempotent`] is DM's *safe mode*: every change is written so that applying it again
//! leaves the same table (INSERT becomes REPLACE, UPDATE becomes DELETE of the old key + REPLACE).
//! The syncer asks for it, per change, while it replays what a dump may already have copied.
//!
//! Cancel safety (every method): not cancel-safe. If a future is dropped, what it was writing
//! may or may not be durable; the caller treats it as unacknowledged, and the checkpoints tell a
//! restart which.
//!
//! # Writing a load sink
//!
//! A full load is exactly once per chunk because of one promise: [`LoadSink::load_chunk`]
//! returns [`ChunkOutcome::Loaded`] only once the chunk's statements *and* its mark are durable
//! together, and leaves neither when the chunk's stream ends early, on an `Err` or a crash; the
//! next [`LoadCheckpointStore::read_load`] reports a chunk loaded exactly when its rows are
//! there (MySQL: the rows and an `UPDATE` of the chunk's row in one transaction). Besides:
//! [`LoadSink::create_object`] keeps a database or table that exists (many upstream tables
//! routed to one target create it once; a resumed load finds its tables) and fails a view whose
//! tables are not there yet (the loader tries it again after the others); the status and the
//! planned chunks ([`LoadCheckpointStore`]) are typed values, stored as the store likes, and
//! planning a chunk again never clears its mark; each loading connection is its own sink from
//! the [`LoadSinkFactory`] (chunks load in parallel and never read each other's rows, so the
//! weakest isolation does: MySQL's sinks load with `READ COMMITTED`, without gap locks).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use crate::checkpoint::{GlobalCheckpoint, SourceCheckpoints, WorkerCheckpoint};
use crate::ddl::{DdlStatement, DdlTarget};
use crate::error::ClassifiedError;
use crate::gtid::Flavor;
use crate::location::Location;
use crate::row::RowChange;
use crate::schema::{TableRef, TableSchema};

/// How a sink writes row changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplyMode {
    /// Plain INSERT / UPDATE / DELETE: a duplicate key or a missing row is an error.
    Exact,
    /// Safe mode: every change can be applied twice with the same result.
    Idempotent,
}

/// What a sink knows of one of its tables ([`Sink::describe_table`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkTable {
    /// The table as the sink defines it: its primary key (or first not-null unique key)
    /// identifies rows, and the caller may seed its view of the upstream table from it (DM
    /// does the same for tables created before the start).
    Defined(TableSchema),
    /// The sink has no such table (yet).
    Missing,
    /// The sink keeps no definitions of its own and writes what each change carries (a change
    /// feed, a queue): the upstream table's structure stands for it.
    Mirrored,
}

/// A batch of row changes and the worker checkpoint it commits with.
///
/// Built by a syncer worker (a FIFO prefix of its queue, compacted per row) and applied with
/// [`Sink::apply_batch`]. Besides the changes it carries, for each table they write, the sink's
/// definition of it ([`SinkTable::Defined`]), read once by the caller and shared by every
/// worker, so that no worker reads it again.
#[derive(Clone, Debug, Default)]
pub struct ChangeBatch {
    changes: Vec<RowChange>,
    /// Per change: write it idempotently.
    idempotent: Vec<bool>,
    tables: HashMap<TableRef, Arc<TableSchema>>,
    checkpoint: Option<WorkerCheckpoint>,
}

impl ChangeBatch {
    /// An empty batch.
    pub fn new() -> Self {
        ChangeBatch::default()
    }

    /// A batch of `changes`, each written as `mode` says, without a checkpoint.
    pub fn of(changes: Vec<RowChange>, mode: ApplyMode) -> Self {
        let idempotent = vec![mode == ApplyMode::Idempotent; changes.len()];
        ChangeBatch {
            changes,
            idempotent,
            ..ChangeBatch::default()
        }
    }

    /// Adds a change (after the others); `idempotent`: write it so that applying it twice
    /// changes nothing more (safe mode, or a compactor's merged change).
    pub fn push(&mut self, change: RowChange, idempotent: bool) {
        self.changes.push(change);
        self.idempotent.push(idempotent);
    }

    /// Gives the sink's definition of `table`, a table the changes write (their
    /// [`RowChange::table`]).
    pub fn set_table(&mut self, table: TableRef, definition: Arc<TableSchema>) {
        self.tables.insert(table, definition);
    }

    /// Sets the worker checkpoint that commits with the changes.
    pub fn set_checkpoint(&mut self, checkpoint: WorkerCheckpoint) {
        self.checkpoint = Some(checkpoint);
    }

    /// The changes, in the order they must be applied.
    pub fn changes(&self) -> &[RowChange] {
        &self.changes
    }

    /// Whether change `index` must be written idempotently.
    pub fn is_idempotent(&self, index: usize) -> bool {
        self.idempotent.get(index).copied().unwrap_or(true)
    }

    /// The sink's definition of `table`, when the caller gave one.
    pub fn table(&self, table: &TableRef) -> Option<&Arc<TableSchema>> {
        self.tables.get(table)
    }

    /// The worker checkpoint that commits with the changes.
    pub fn checkpoint(&self) -> Option<&WorkerCheckpoint> {
        self.checkpoint.as_ref()
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// No changes and no checkpoint: nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.checkpoint.is_none()
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.changes.clear();
        self.idempotent.clear();
        self.tables.clear();
        self.checkpoint = None;
    }
}

/// A downstream that applies batches of row changes.
pub trait Sink: Send {
    /// The sink's error; its class tells the caller whether to retry.
    type Error: ClassifiedError;

    /// Applies the batch's changes in order and its worker checkpoint, all or nothing. Returns
    /// once both are durable (see the module's first promise).
    fn apply_batch(
        &mut self,
        batch: &ChangeBatch,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// What the sink knows of `table` now (not cached by the sink: the caller reads it once per
    /// table and per DDL and shares it). For the same point in the stream it must answer the
    /// same in every run, a restart after a crash included: the syncer assigns a table's changes
    /// to workers by the keys it describes, and exactly-once relies on a change going to the same
    /// worker again (a sink without tables of its own describes them from what it stored, not
    /// from an upstream read anew).
    fn describe_table(
        &mut self,
        table: &TableRef,
    ) -> impl Future<Output = Result<SinkTable, Self::Error>> + Send;

    /// Applies `changes` without a checkpoint (a batch of its own), all or nothing.
    fn apply_changes(
        &mut self,
        changes: &[RowChange],
        mode: ApplyMode,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send
    where
        Self: Sized,
    {
        let batch = ChangeBatch::of(changes.to_vec(), mode);
        async move { self.apply_batch(&batch).await }
    }
}

/// A DDL statement as the syncer runs it downstream: one statement of an upstream DDL event,
/// its names qualified and routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdlJob {
    /// Where the DDL's Query event starts upstream.
    pub location: Location,
    /// Which statement of the event (0-based).
    pub index: usize,
    /// The statement: its kind, its downstream target and the SQL to run (MySQL's dialect, as
    /// the upstream wrote it, names qualified and routed).
    pub statement: DdlStatement,
    /// The downstream objects it changes, which [`DdlSink::ddl_before`] and
    /// [`DdlSink::ddl_ran`] read.
    pub objects: Vec<DdlTarget>,
    /// Whether its effect shows in what a sink reads of its objects: false for a statement
    /// that moves rows between tables of unchanged structure (`EXCHANGE PARTITION`).
    pub effect_visible: bool,
    /// The database the statement's unqualified names (in parts the syncer does not rewrite: a
    /// view's body, a foreign key's parent) resolve against, to select first when it exists.
    pub session_schema: Option<String>,
    /// The upstream session's `sql_mode` (text), under which the statement parses as it did
    /// upstream (ANSI_QUOTES, NO_BACKSLASH_ESCAPES...).
    pub sql_mode: Option<String>,
    /// A database a route sends the statement's table to, to create first when missing.
    pub create_schema: Option<String>,
    /// Errors that mean its effect is already there (a table that exists, a column already
    /// added) are not errors: set for a shard's DDL another shard may have run on the routed
    /// table, a database several sources share, and a replay before the safe-mode exit point.
    pub tolerate_existing: bool,
}

/// Whether a recorded DDL statement ran ([`DdlSink::ddl_ran`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DdlCheck {
    /// It ran: do not run it again.
    Ran,
    /// It did not run: run it.
    NotRun,
    /// The sink cannot tell (its effect does not show): the task stops and asks the user.
    Unknowable,
}

/// A sink that runs DDL exactly once across crashes (the module's third promise).
pub trait DdlSink: Send {
    /// The sink's error.
    type Error: ClassifiedError;

    /// What the sink needs to tell later whether `ddl` ran, read just before it runs; the
    /// syncer saves it in the global checkpoint's [`crate::checkpoint::DdlRecord`] first.
    fn ddl_before(
        &mut self,
        ddl: &DdlJob,
    ) -> impl Future<Output = Result<Vec<(String, Option<String>)>, Self::Error>> + Send;

    /// Runs `ddl`. Returns once it finished downstream.
    fn apply_ddl(&mut self, ddl: &DdlJob) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether `ddl`, recorded with `before` (what [`DdlSink::ddl_before`] answered), ran.
    fn ddl_ran(
        &mut self,
        ddl: &DdlJob,
        before: &[(String, Option<String>)],
    ) -> impl Future<Output = Result<DdlCheck, Self::Error>> + Send;
}

/// Durable checkpoints of one task and source (the store is opened for them).
pub trait CheckpointStore: Send {
    /// The store's error.
    type Error: ClassifiedError;

    /// What is stored: the last saved global checkpoint with every table it keeps, and the
    /// worker checkpoints the batches committed.
    fn load(&mut self) -> impl Future<Output = Result<SourceCheckpoints, Self::Error>> + Send;

    /// Saves `checkpoint` atomically: its location, safe-mode exit and DDL record replace the
    /// stored ones, its tables are merged into the stored ones (`None` snapshots removed).
    fn save(
        &mut self,
        checkpoint: &GlobalCheckpoint,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Opens the sinks of one run of a task and source.
///
/// The syncer opens the control sink, reads the stored worker count, opens one worker sink per
/// worker, and only then loads the checkpoints: once every worker sink is open, nothing of an
/// earlier run may change what is stored. Every sink it opens can write at once (the factory
/// prepares what it stores into, in any order of opening).
pub trait SinkFactory: Send {
    /// The factory's error.
    type Error: ClassifiedError;
    /// The event loop's sink: table definitions, DDL and the global checkpoint.
    type Control: Sink + DdlSink + CheckpointStore + 'static;
    /// A worker's sink.
    type Worker: Sink + 'static;

    /// Opens the control sink.
    fn open_control(&mut self) -> impl Future<Output = Result<Self::Control, Self::Error>> + Send;

    /// Opens worker `worker`'s sink (of `workers`): its own connection or handle.
    fn open_worker(
        &mut self,
        worker: usize,
        workers: usize,
    ) -> impl Future<Output = Result<Self::Worker, Self::Error>> + Send;
}

/// Which chunk of a full load a [`LoadSink`] marks as loaded with its rows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkMark {
    /// The source (`source-id`).
    pub source: String,
    /// The upstream table the chunk was dumped from.
    pub table: TableRef,
    /// The chunk's number in the table's plan.
    pub chunk: u32,
}

/// One piece of a chunk, as the dump delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkPiece {
    /// One multi-row INSERT (MySQL's dialect, the table routed, `REPLACE` / `INSERT` /
    /// `INSERT IGNORE` as the task's duplicate handling says).
    Statement(String),
    /// The chunk is complete: `rows` rows, `bytes` bytes of statements.
    End {
        /// Rows in the chunk.
        rows: u64,
        /// Bytes of its statements.
        bytes: u64,
    },
}

/// The pieces of one chunk, read while the sink loads them (a chunk may be larger than memory).
pub trait ChunkReader: Send {
    /// The next piece; `None` when the chunk's stream ended without [`ChunkPiece::End`] (the
    /// dump failed: the chunk is incomplete).
    fn next_piece(&mut self) -> impl Future<Output = Option<ChunkPiece>> + Send;
}

/// How [`LoadSink::load_chunk`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The rows and the mark are durable.
    Loaded {
        /// Rows loaded.
        rows: u64,
        /// Bytes of statements loaded.
        bytes: u64,
    },
    /// The chunk's stream ended early: nothing of it is kept.
    Incomplete,
}

/// A downstream object a full load creates before its rows ([`LoadSink::create_object`]), as
/// the dump describes it. Names are the downstream's (routed); the statements are the dump's,
/// in MySQL's dialect, and name the upstream object (the sink creates it under the routed name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaObject {
    /// A database.
    Database {
        /// Its downstream name.
        name: String,
        /// The dump's `CREATE DATABASE` (`SHOW CREATE DATABASE`: its character set and
        /// collation), or `None` for one created with the sink's defaults (the database of a
        /// routed table).
        statement: Option<String>,
    },
    /// A base table.
    Table {
        /// Its downstream name.
        table: TableRef,
        /// The dump's `CREATE TABLE` (`SHOW CREATE TABLE` of the upstream table).
        statement: String,
    },
    /// A view.
    View {
        /// Its downstream name.
        view: TableRef,
        /// Its `SELECT` (names in it are not routed).
        select: String,
    },
}

/// A downstream that loads a full load: creates its databases, tables and views, and loads its
/// chunks, each exactly once across restarts (the module's "Writing a load sink").
pub trait LoadSink: Send {
    /// The sink's error.
    type Error: ClassifiedError;

    /// Creates `object` unless one of its name exists: an existing database or table is kept
    /// as it is (DM's `IF NOT EXISTS`), a view is created or replaced. A view of a table or
    /// view not created yet fails; the caller tries it again once the others are created.
    fn create_object(
        &mut self,
        object: &SchemaObject,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Loads every piece `reader` delivers and marks `chunk` loaded, all or nothing.
    fn load_chunk<Reader: ChunkReader>(
        &mut self,
        chunk: &ChunkMark,
        reader: &mut Reader,
    ) -> impl Future<Output = Result<ChunkOutcome, Self::Error>> + Send;
}

/// Where a source's full load stands ([`LoadStatus::stage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadStage {
    /// Begun, not every chunk loaded.
    Loading,
    /// Every chunk loaded; the syncer may start.
    Finished,
}

/// The status of a source's full load, one per source ([`LoadCheckpointStore`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadStatus {
    /// Its stage.
    pub stage: LoadStage,
    /// Where the rows come from: a dump directory's path, or `stream`; a resumed load must
    /// come the same way.
    pub origin: String,
    /// Where replication continues: the first snapshot the load took rows from.
    pub location: Location,
    /// Until where the syncer writes idempotently (the latest snapshot a resumed load took
    /// rows from, or a `consistency: none` exit point), if anywhere.
    pub exit_point: Option<Location>,
}

/// A chunk of a full load as the loader planned it ([`LoadCheckpointStore::plan_chunks`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedChunk {
    /// The upstream table the chunk is dumped from.
    pub table: TableRef,
    /// The chunk's number in the table's plan.
    pub chunk: u32,
    /// Which rows it holds, in the loader's words (opaque to the store): a resumed load dumps
    /// the same rows again from it.
    pub plan: String,
}

/// A planned chunk as stored, with its mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChunk {
    /// The chunk as planned.
    pub planned: PlannedChunk,
    /// Its "loaded" mark, committed with its rows ([`LoadSink::load_chunk`]).
    pub loaded: bool,
}

/// What a [`LoadCheckpointStore`] keeps of a source's full load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadCheckpoint {
    /// The load's status.
    pub status: LoadStatus,
    /// Every planned chunk, in (table, chunk) order.
    pub chunks: Vec<StoredChunk>,
}

/// The progress of one task and source's full load (the store is opened for them): its status
/// and its planned chunks. The chunks' marks are written by [`LoadSink::load_chunk`], with
/// their rows.
pub trait LoadCheckpointStore: Send {
    /// The store's error.
    type Error: ClassifiedError;

    /// Creates what the progress is kept in, when missing (MySQL: the meta schema and tables);
    /// called before the other methods, and again at will.
    fn prepare_load(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// What is stored of the load, `None` when none began (or it was forgotten). GTID sets are
    /// read back as `flavor`'s (the upstream's).
    fn read_load(
        &mut self,
        flavor: Flavor,
    ) -> impl Future<Output = Result<Option<LoadCheckpoint>, Self::Error>> + Send;

    /// Stores `status` for a load with none stored; `flavor` is the upstream's.
    fn begin_load(
        &mut self,
        status: &LoadStatus,
        flavor: Flavor,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Replaces the stored load's exit point.
    fn set_load_exit_point(
        &mut self,
        exit_point: Option<&Location>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Stores the load's stage as [`LoadStage::Finished`].
    fn finish_load(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Records `chunks` as planned, not loaded; a chunk recorded before keeps its plan and mark.
    fn plan_chunks(
        &mut self,
        chunks: &[PlannedChunk],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// How many recorded chunks are not marked loaded.
    fn chunks_left(&mut self) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Forgets the load: its status, planned chunks and marks (DM's `--remove-meta`).
    fn forget_load(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Opens the sinks of one task and source's full load.
///
/// Unlike [`SinkFactory`] it opens from a shared reference: the loader's methods (read the
/// stored load, load, mark it finished) each open what they need, and may run side by side.
pub trait LoadSinkFactory: Send + Sync {
    /// The factory's error.
    type Error: ClassifiedError;
    /// The loader's own sink: the objects it creates and the load's progress.
    type Control: LoadSink + LoadCheckpointStore + 'static;
    /// A loading connection's sink.
    type Worker: LoadSink + 'static;

    /// Opens a control sink.
    fn open_control(&self) -> impl Future<Output = Result<Self::Control, Self::Error>> + Send;

    /// Opens loading connection `worker`'s sink (of `workers`).
    fn open_worker(
        &self,
        worker: usize,
        workers: usize,
    ) -> impl Future<Output = Result<Self::Worker, Self::Error>> + Send;
}
