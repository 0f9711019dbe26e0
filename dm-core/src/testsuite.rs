//! Test support for the sink traits (feature `testsuite`): [`RecordingSinks`], a scriptable
//! in-memory fake of every sink trait, and the conformance checks every sink should pass.
//!
//! ```text
//! test --script--> RecordingSinks (define tables, delay / fail / hang an operation)
//!                      | open_control, open_worker: RecordingSink handles on one shared state
//!                      v
//! syncer --apply_batch / ddl / save--> RecordingSink --records--> events(), applied(), stored()
//! ```
//!
//! The fake keeps the sink promises of [`crate::sink`]: a batch's changes and its worker
//! checkpoint are recorded together when the call returns `Ok`, never when it fails or its
//! future is dropped (a crash); a save replaces the global checkpoint and merges its tables; a
//! DDL is recorded with its statement index, so [`crate::DdlSink::ddl_ran`] answers exactly.
//! Delays use tokio's clock, so a test on paused time controls them; the state's lock is never
//! held across an `.await`.
//!
//! [`ScriptedCoordinator`] is a [`ShardCoordinator`] a test scripts: which tables' DDL it holds,
//! and when it resolves them.
//!
//! The conformance checks ([`batch_commits_with_its_checkpoint`],
//! [`global_checkpoint_round_trips`], [`ddl_is_told_once_it_ran`]) take a factory and panic with
//! a message when a sink breaks a promise; `dm-sink-file` runs them, and the fake runs them on
//! itself.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::checkpoint::{
    DdlRecord, GlobalCheckpoint, HoldStage, ReplayMark, ShardHold, SourceCheckpoints,
    TableCheckpoint, TableSnapshot, UpstreamIdentity, WorkerCheckpoint,
};
use crate::ddl::{DdlKind, DdlStatement, DdlTarget};
use crate::error::{ClassifiedError, ErrorClass, ErrorCode};
use crate::location::Location;
use crate::position::{BinlogFileName, BinlogPosition};
use crate::row::{Row, RowChange, RowChangeKind};
use crate::schema::{
    ColumnDefinition, ColumnType, IntegerWidth, KeyColumn, KeyDefinition, KeyKind,
};
use crate::schema::{TableRef, TableSchema};
use crate::shard::{DdlDecision, ShardCoordinator, ShardDdl, ShardResolution};
use crate::sink::{
    ChangeBatch, CheckpointStore, DdlCheck, DdlJob, DdlSink, Sink, SinkFactory, SinkTable,
};
use crate::value::Value;

/// An operation of the fake that a script can delay, fail or hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Sink::apply_batch`].
    Batch,
    /// [`DdlSink::apply_ddl`].
    Ddl,
    /// [`CheckpointStore::save`].
    Save,
    /// [`Sink::describe_table`].
    Describe,
}

/// A failure the script injects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("scripted failure of {operation:?}: {message}")]
pub struct ScriptedError {
    /// The failed operation.
    pub operation: Operation,
    /// Transient (the caller retries) or definite.
    pub class: ErrorClass,
    /// What the test says.
    pub message: String,
}

impl ClassifiedError for ScriptedError {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(10900)
    }

    fn workaround(&self) -> &'static str {
        "a test injected this failure"
    }
}

/// Who did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The control sink.
    Control,
    /// A worker's sink.
    Worker(usize),
}

/// What the fake saw, in the order it happened.
#[derive(Clone, Debug)]
pub enum Recorded {
    /// A batch call began (before any scripted delay).
    BatchStarted {
        /// Who applies it.
        by: Role,
        /// Its changes' bytes (before and after images, `Row::approximate_size`).
        bytes: u64,
    },
    /// A batch committed with its checkpoint.
    Batch {
        /// Who applied it.
        by: Role,
        /// Its changes, in order.
        changes: Vec<RowChange>,
        /// Their idempotent marks.
        idempotent: Vec<bool>,
        /// The worker checkpoint it carried.
        checkpoint: Option<WorkerCheckpoint>,
        /// Its changes' bytes.
        bytes: u64,
    },
    /// A DDL statement ran.
    Ddl(DdlJob),
    /// A global checkpoint was saved.
    Saved(GlobalCheckpoint),
}

#[derive(Default)]
struct Script {
    delays: HashMap<Operation, Duration>,
    failures: HashMap<Operation, Vec<ScriptedError>>,
    /// Operation -> how many more succeed before every later call hangs for good.
    hang_after: HashMap<Operation, usize>,
}

#[derive(Default)]
struct State {
    script: Script,
    events: Vec<Recorded>,
    defined: HashMap<TableRef, TableSchema>,
    mirror_unknown: bool,
    /// Tables a DDL touched: described as mirrored from then on.
    touched: HashSet<TableRef>,
    /// (DDL position, statement index) of every DDL that ran.
    ran: HashSet<(String, u32, usize)>,
    global: Option<GlobalCheckpoint>,
    tables: HashMap<TableRef, TableSnapshot>,
    workers: HashMap<u32, WorkerCheckpoint>,
    in_flight_bytes: u64,
    peak_in_flight_bytes: u64,
    opened_workers: usize,
}

/// The fake's factory and the test's handle on what it recorded; every [`RecordingSink`] it
/// opens shares its state (as the sinks of one downstream would).
#[derive(Clone, Default)]
pub struct RecordingSinks {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for RecordingSinks {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("RecordingSinks")
    }
}

/// One sink of the fake (control or worker).
#[derive(Clone, Debug)]
pub struct RecordingSink {
    sinks: RecordingSinks,
    role: Role,
}

fn change_bytes(change: &RowChange) -> u64 {
    (change.before().map_or(0, Row::approximate_size)
        + change.after().map_or(0, Row::approximate_size)) as u64
}

impl RecordingSinks {
    /// A fake downstream with no tables and nothing stored.
    pub fn new() -> Self {
        RecordingSinks::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed: go on with the state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Defines a table: [`Sink::describe_table`] answers it until a DDL touches it.
    pub fn define_table(&self, schema: TableSchema) {
        self.state().defined.insert(schema.table().clone(), schema);
    }

    /// Tables neither defined nor touched are described as [`SinkTable::Mirrored`] instead of
    /// [`SinkTable::Missing`].
    pub fn mirror_unknown_tables(&self) {
        self.state().mirror_unknown = true;
    }

    /// Every later call of `operation` waits `delay` first (tokio's clock).
    pub fn delay(&self, operation: Operation, delay: Duration) {
        self.state().script.delays.insert(operation, delay);
    }

    /// The next call of `operation` fails with `class` (once; several calls queue failures).
    pub fn fail_next(&self, operation: Operation, class: ErrorClass, message: &str) {
        self.state()
            .script
            .failures
            .entry(operation)
            .or_default()
            .push(ScriptedError {
                operation,
                class,
                message: message.to_owned(),
            });
    }

    /// After `count` more calls of `operation` succeed, every later one hangs for good without
    /// recording anything: a crash point (the test then drops the syncer).
    pub fn hang_after(&self, operation: Operation, count: usize) {
        self.state().script.hang_after.insert(operation, count);
    }

    /// Lifts every delay, failure and hang.
    pub fn clear_script(&self) {
        self.state().script = Script::default();
    }

    /// Everything recorded, in order.
    pub fn events(&self) -> Vec<Recorded> {
        self.state().events.clone()
    }

    /// The changes of every committed batch, in commit order.
    pub fn applied(&self) -> Vec<RowChange> {
        self.state()
            .events
            .iter()
            .filter_map(|event| match event {
                Recorded::Batch { changes, .. } => Some(changes.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The DDL statements that ran, in order.
    pub fn ddls(&self) -> Vec<DdlJob> {
        self.state()
            .events
            .iter()
            .filter_map(|event| match event {
                Recorded::Ddl(job) => Some(job.clone()),
                _ => None,
            })
            .collect()
    }

    /// What [`CheckpointStore::load`] returns now.
    pub fn stored(&self) -> SourceCheckpoints {
        let state = self.state();
        let mut workers: Vec<WorkerCheckpoint> = state.workers.values().cloned().collect();
        workers.sort_by_key(|checkpoint| checkpoint.worker);
        let global = state.global.clone().map(|mut global| {
            let mut tables: Vec<TableCheckpoint> = state
                .tables
                .iter()
                .map(|(table, snapshot)| TableCheckpoint {
                    table: table.clone(),
                    snapshot: Some(snapshot.clone()),
                })
                .collect();
            tables.sort_by_key(|table| table.table.quoted());
            global.tables = tables;
            global
        });
        SourceCheckpoints { global, workers }
    }

    /// The most bytes of batches that were being applied at once.
    pub fn peak_in_flight_bytes(&self) -> u64 {
        self.state().peak_in_flight_bytes
    }

    /// How many worker sinks were opened.
    pub fn opened_workers(&self) -> usize {
        self.state().opened_workers
    }

    /// Runs the script for one call: its failure, or its delay, or a hang.
    async fn enter(&self, operation: Operation) -> Result<(), ScriptedError> {
        let (failure, delay, hang) = {
            let mut state = self.state();
            let failure = state
                .script
                .failures
                .get_mut(&operation)
                .filter(|queued| !queued.is_empty())
                .map(|queued| queued.remove(0));
            let hang = match state.script.hang_after.get_mut(&operation) {
                Some(0) => true,
                Some(left) => {
                    *left -= 1;
                    false
                }
                None => false,
            };
            (failure, state.script.delays.get(&operation).copied(), hang)
        };
        if let Some(failure) = failure {
            return Err(failure);
        }
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if hang {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// Counts a batch in flight until dropped (the call returned, failed or was dropped).
struct InFlight {
    sinks: RecordingSinks,
    bytes: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.sinks.state();
        state.in_flight_bytes = state.in_flight_bytes.saturating_sub(self.bytes);
    }
}

impl Sink for RecordingSink {
    type Error = ScriptedError;

    async fn apply_batch(&mut self, batch: &ChangeBatch) -> Result<(), ScriptedError> {
        let bytes: u64 = batch.changes().iter().map(change_bytes).sum();
        let _in_flight = {
            let mut state = self.sinks.state();
            state.events.push(Recorded::BatchStarted {
                by: self.role,
                bytes,
            });
            state.in_flight_bytes += bytes;
            state.peak_in_flight_bytes = state.peak_in_flight_bytes.max(state.in_flight_bytes);
            InFlight {
                sinks: self.sinks.clone(),
                bytes,
            }
        };
        self.sinks.enter(Operation::Batch).await?;
        let mut state = self.sinks.state();
        if let Some(checkpoint) = batch.checkpoint() {
            state.workers.insert(checkpoint.worker, checkpoint.clone());
        }
        state.events.push(Recorded::Batch {
            by: self.role,
            changes: batch.changes().to_vec(),
            idempotent: (0..batch.len())
                .map(|index| batch.is_idempotent(index))
                .collect(),
            checkpoint: batch.checkpoint().cloned(),
            bytes,
        });
        Ok(())
    }

    async fn describe_table(&mut self, table: &TableRef) -> Result<SinkTable, ScriptedError> {
        self.sinks.enter(Operation::Describe).await?;
        let state = self.sinks.state();
        Ok(if state.touched.contains(table) {
            SinkTable::Mirrored
        } else if let Some(schema) = state.defined.get(table) {
            SinkTable::Defined(schema.clone())
        } else if state.mirror_unknown {
            SinkTable::Mirrored
        } else {
            SinkTable::Missing
        })
    }
}

impl DdlSink for RecordingSink {
    type Error = ScriptedError;

    async fn ddl_before(
        &mut self,
        _ddl: &DdlJob,
    ) -> Result<Vec<(String, Option<String>)>, ScriptedError> {
        // The fake records each DDL with its statement index: it needs nothing read before.
        Ok(Vec::new())
    }

    async fn apply_ddl(&mut self, ddl: &DdlJob) -> Result<(), ScriptedError> {
        self.sinks.enter(Operation::Ddl).await?;
        let mut state = self.sinks.state();
        state.ran.insert((
            ddl.location.position.to_string(),
            ddl.location.suffix,
            ddl.index,
        ));
        if let DdlTarget::Table(table) = &ddl.statement.target {
            state.touched.insert(table.clone());
        }
        if let DdlKind::RenameTable { to } = &ddl.statement.kind {
            state.touched.insert(to.clone());
        }
        state.events.push(Recorded::Ddl(ddl.clone()));
        Ok(())
    }

    async fn ddl_ran(
        &mut self,
        ddl: &DdlJob,
        _before: &[(String, Option<String>)],
    ) -> Result<DdlCheck, ScriptedError> {
        let state = self.sinks.state();
        Ok(
            if state.ran.contains(&(
                ddl.location.position.to_string(),
                ddl.location.suffix,
                ddl.index,
            )) {
                DdlCheck::Ran
            } else {
                DdlCheck::NotRun
            },
        )
    }
}

impl CheckpointStore for RecordingSink {
    type Error = ScriptedError;

    async fn load(&mut self) -> Result<SourceCheckpoints, ScriptedError> {
        Ok(self.sinks.stored())
    }

    async fn save(&mut self, checkpoint: &GlobalCheckpoint) -> Result<(), ScriptedError> {
        self.sinks.enter(Operation::Save).await?;
        let mut state = self.sinks.state();
        for table in &checkpoint.tables {
            match &table.snapshot {
                Some(snapshot) => state.tables.insert(table.table.clone(), snapshot.clone()),
                None => state.tables.remove(&table.table),
            };
        }
        state.global = Some(GlobalCheckpoint {
            tables: Vec::new(),
            ..checkpoint.clone()
        });
        state.events.push(Recorded::Saved(checkpoint.clone()));
        Ok(())
    }
}

impl SinkFactory for RecordingSinks {
    type Error = ScriptedError;
    type Control = RecordingSink;
    type Worker = RecordingSink;

    async fn open_control(&mut self) -> Result<RecordingSink, ScriptedError> {
        Ok(RecordingSink {
            sinks: self.clone(),
            role: Role::Control,
        })
    }

    async fn open_worker(
        &mut self,
        worker: usize,
        _workers: usize,
    ) -> Result<RecordingSink, ScriptedError> {
        self.state().opened_workers += 1;
        Ok(RecordingSink {
            sinks: self.clone(),
            role: Role::Worker(worker),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Conformance checks.

/// A table of signed `INT` columns named `columns`: the first `NOT NULL` (and the primary
/// key when `keyed`), the others nullable.
pub fn int_table(table: TableRef, columns: &[&str], keyed: bool) -> TableSchema {
    let definitions = columns
        .iter()
        .enumerate()
        .map(|(index, name)| {
            ColumnDefinition::new(
                *name,
                ColumnType::Integer {
                    width: IntegerWidth::Int,
                    unsigned: false,
                },
                index > 0,
            )
        })
        .collect();
    let keys = keyed
        .then(|| KeyDefinition {
            name: "PRIMARY".into(),
            kind: KeyKind::Primary,
            columns: vec![KeyColumn {
                column: 0,
                prefix_length: None,
            }],
        })
        .into_iter()
        .collect();
    TableSchema::new(table, definitions, keys).expect("a valid table")
}

/// The table the conformance checks write: `suite.items (id INT PRIMARY KEY, v INT NULL)`. A
/// sink with tables of its own must have it (empty) before the checks run.
pub fn suite_table() -> Arc<TableSchema> {
    Arc::new(int_table(
        TableRef::new("suite", "items"),
        &["id", "v"],
        true,
    ))
}

/// `mysql-bin.000001:<offset>`, without GTIDs.
pub fn suite_location(offset: u64) -> Location {
    Location::from_position(BinlogPosition::new(
        BinlogFileName::parse("mysql-bin.000001").expect("a valid name"),
        offset,
    ))
}

/// An insert of `(id, id * 10)` into [`suite_table`] at `offset`.
pub fn suite_insert(id: i64, offset: u64) -> RowChange {
    RowChange::new(
        suite_table(),
        RowChangeKind::Insert {
            after: Row(vec![Value::Int(id), Value::Int(id * 10)]),
        },
        suite_location(offset),
        0,
    )
    .expect("the row fits the table")
}

/// A batch's changes and its worker checkpoint are stored together; a later batch moves the
/// worker's checkpoint forward; each worker keeps its own.
pub async fn batch_commits_with_its_checkpoint<F: SinkFactory>(factory: &mut F) {
    let mut worker = factory.open_worker(0, 2).await.expect("open worker 0");
    let mut other = factory.open_worker(1, 2).await.expect("open worker 1");
    let checkpoint = |worker: u32, offset: u64, row: u64| WorkerCheckpoint {
        source: "suite-source".into(),
        worker,
        workers: 2,
        location: suite_location(offset),
        row,
        replayed: None,
    };
    let mut batch = ChangeBatch::new();
    batch.set_table(suite_table().table().clone(), suite_table());
    batch.push(suite_insert(1, 100), false);
    batch.push(suite_insert(2, 100), false);
    batch.set_checkpoint(checkpoint(0, 100, 1));
    worker.apply_batch(&batch).await.expect("first batch");
    let mut batch = ChangeBatch::new();
    batch.set_table(suite_table().table().clone(), suite_table());
    batch.push(suite_insert(3, 200), false);
    batch.set_checkpoint(checkpoint(1, 200, 0));
    other
        .apply_batch(&batch)
        .await
        .expect("other worker's batch");
    let mut batch = ChangeBatch::new();
    batch.set_table(suite_table().table().clone(), suite_table());
    batch.push(suite_insert(4, 300), false);
    batch.set_checkpoint(checkpoint(0, 300, 0));
    worker.apply_batch(&batch).await.expect("second batch");
    // A batch of replayed rows (a held table's, shard DDL) carries its replay progress; the
    // worker's own location stays.
    let replayed = WorkerCheckpoint {
        replayed: Some(ReplayMark {
            held_at: suite_location(120),
            location: suite_location(150),
            row: 3,
        }),
        ..checkpoint(1, 200, 0)
    };
    let mut batch = ChangeBatch::new();
    batch.set_table(suite_table().table().clone(), suite_table());
    batch.push(suite_insert(5, 150), false);
    batch.set_checkpoint(replayed.clone());
    other.apply_batch(&batch).await.expect("replayed batch");
    drop((worker, other));
    let mut control = factory.open_control().await.expect("open control");
    let stored = control.load().await.expect("load");
    assert_eq!(
        stored.workers,
        vec![checkpoint(0, 300, 0), replayed],
        "each worker's checkpoint is the one of its last batch, with its replay progress"
    );
}

/// A saved global checkpoint loads back: location, the upstream that wrote it, safe-mode
/// exit, charsets, DDL record, and its tables merged over every save (a `None` snapshot
/// removes one).
pub async fn global_checkpoint_round_trips<F: SinkFactory>(factory: &mut F) {
    let mut control = factory.open_control().await.expect("open control");
    let snapshot = |table: &str| TableSnapshot {
        schema: TableSchema::new(
            TableRef::new("suite", table),
            suite_table().columns().to_vec(),
            suite_table().keys().to_vec(),
        )
        .expect("schema"),
        default_charset: Some("utf8mb4".into()),
    };
    let first = GlobalCheckpoint {
        source: "suite-source".into(),
        location: suite_location(400),
        upstream: Some(UpstreamIdentity {
            server_id: 1,
            server_uuid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562".into()),
        }),
        safe_mode_exit: Some(suite_location(900)),
        schema_charsets: HashMap::from([("suite".to_owned(), "latin1".to_owned())]),
        ddl: Some(DdlRecord {
            suffix: 2,
            position: suite_location(450).position,
            statement: 1,
            sql: "ALTER TABLE `suite`.`a` ADD `c` INT".into(),
            before: vec![(
                "`suite`.`a`".into(),
                Some("CREATE TABLE `a` (\n  `id` int\n)".into()),
            )],
        }),
        earlier_ddls: vec![DdlRecord {
            suffix: 0,
            position: suite_location(420).position,
            statement: 0,
            sql: "CREATE TABLE `suite`.`d` (`id` INT)".into(),
            before: vec![("`suite`.`d`".into(), None)],
        }],
        holds: vec![
            ShardHold {
                table: TableRef::new("suite", "a"),
                held_at: suite_location(410),
                reopen_at: suite_location(402),
                stage: HoldStage::Held,
            },
            ShardHold {
                table: TableRef::new("suite", "b"),
                held_at: suite_location(405),
                reopen_at: suite_location(401),
                stage: HoldStage::Replaying {
                    until: suite_location(480),
                },
            },
        ],
        tables: ["a", "b"]
            .into_iter()
            .map(|table| TableCheckpoint {
                table: TableRef::new("suite", table),
                snapshot: Some(snapshot(table)),
            })
            .collect(),
    };
    control.save(&first).await.expect("first save");
    let loaded = control.load().await.expect("load");
    assert_eq!(
        loaded.global.as_ref(),
        Some(&first),
        "a save loads back whole"
    );
    let second = GlobalCheckpoint {
        location: suite_location(500),
        // A failover by GTID: the new primary (MariaDB: no server_uuid) wrote the location.
        upstream: Some(UpstreamIdentity::from_server_id(2)),
        safe_mode_exit: None,
        ddl: None,
        earlier_ddls: Vec::new(),
        holds: vec![ShardHold {
            table: TableRef::new("suite", "b"),
            held_at: suite_location(405),
            reopen_at: suite_location(401),
            stage: HoldStage::Replayed {
                until: suite_location(480),
            },
        }],
        tables: vec![
            TableCheckpoint {
                table: TableRef::new("suite", "a"),
                snapshot: None,
            },
            TableCheckpoint {
                table: TableRef::new("suite", "c"),
                snapshot: Some(snapshot("c")),
            },
        ],
        ..first.clone()
    };
    control.save(&second).await.expect("second save");
    let mut reopened = factory.open_control().await.expect("open control again");
    let loaded = reopened
        .load()
        .await
        .expect("load")
        .global
        .expect("a global checkpoint");
    assert_eq!(loaded.location, second.location);
    assert_eq!(
        loaded.upstream, second.upstream,
        "the upstream is replaced with the location"
    );
    assert_eq!(loaded.safe_mode_exit, None, "the exit point is replaced");
    // A save without an identity (the syncer could not tell) forgets the one before: it named
    // the server of another location.
    let third = GlobalCheckpoint {
        location: suite_location(600),
        upstream: None,
        holds: Vec::new(),
        tables: Vec::new(),
        ..second.clone()
    };
    reopened.save(&third).await.expect("third save");
    let loaded_third = factory
        .open_control()
        .await
        .expect("open control again")
        .load()
        .await
        .expect("load")
        .global
        .expect("a global checkpoint");
    assert_eq!(loaded_third.upstream, None, "no identity loads as none");
    assert_eq!(loaded.ddl, None, "the DDL record is replaced");
    assert!(
        loaded.earlier_ddls.is_empty(),
        "earlier records are replaced"
    );
    assert_eq!(loaded.holds, second.holds, "the holds are replaced");
    let tables: Vec<&str> = loaded
        .tables
        .iter()
        .map(|table| table.table.table.as_str())
        .collect();
    assert_eq!(
        tables,
        ["b", "c"],
        "tables merge over saves, a removal removes"
    );
    assert_eq!(loaded.tables[1].snapshot, Some(snapshot("c")));
}

/// A sink that answers [`DdlSink::ddl_ran`] from its own records (not by reading definitions)
/// says `NotRun` before a statement ran and `Ran` after, across a new control sink.
pub async fn ddl_is_told_once_it_ran<F: SinkFactory>(factory: &mut F) {
    let mut control = factory.open_control().await.expect("open control");
    let job = DdlJob {
        location: suite_location(600),
        index: 0,
        statement: DdlStatement {
            kind: DdlKind::CreateTable,
            target: DdlTarget::Table(TableRef::new("suite", "created")),
            sql: "CREATE TABLE `suite`.`created` (`id` INT PRIMARY KEY)".into(),
        },
        objects: vec![DdlTarget::Table(TableRef::new("suite", "created"))],
        effect_visible: true,
        session_schema: None,
        sql_mode: None,
        create_schema: None,
        tolerate_existing: false,
    };
    let before = control.ddl_before(&job).await.expect("before");
    assert_eq!(
        control.ddl_ran(&job, &before).await.expect("check"),
        DdlCheck::NotRun
    );
    control.apply_ddl(&job).await.expect("apply");
    let mut reopened = factory.open_control().await.expect("open control again");
    assert_eq!(
        reopened.ddl_ran(&job, &before).await.expect("check"),
        DdlCheck::Ran
    );
    let next = DdlJob {
        index: 1,
        ..job.clone()
    };
    assert_eq!(
        reopened.ddl_ran(&next, &before).await.expect("check"),
        DdlCheck::NotRun,
        "another statement of the same event did not run"
    );
    let mut made = job.clone();
    made.location.suffix = 1;
    assert_eq!(
        reopened.ddl_ran(&made, &before).await.expect("check"),
        DdlCheck::NotRun,
        "an event a binlog operator made at the same position is another event"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_passes_the_conformance_checks() {
        batch_commits_with_its_checkpoint(&mut RecordingSinks::new()).await;
        global_checkpoint_round_trips(&mut RecordingSinks::new()).await;
        ddl_is_told_once_it_ran(&mut RecordingSinks::new()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn failures_delays_and_hangs_are_scripted() {
        let mut sinks = RecordingSinks::new();
        let mut worker = sinks.open_worker(0, 1).await.expect("open");
        sinks.fail_next(Operation::Batch, ErrorClass::Transient, "lock wait");
        let batch = ChangeBatch::of(vec![suite_insert(1, 100)], crate::ApplyMode::Exact);
        let error = worker.apply_batch(&batch).await.expect_err("scripted");
        assert_eq!(error.class(), ErrorClass::Transient);
        assert!(sinks.applied().is_empty(), "a failed batch records nothing");
        sinks.delay(Operation::Batch, Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        worker.apply_batch(&batch).await.expect("delayed");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        sinks.hang_after(Operation::Batch, 0);
        let hung = tokio::time::timeout(Duration::from_secs(60), worker.apply_batch(&batch)).await;
        assert!(hung.is_err(), "the call hangs");
        assert_eq!(sinks.applied().len(), 1, "a hung batch is not recorded");
        assert_eq!(
            sinks.peak_in_flight_bytes(),
            change_bytes(&suite_insert(1, 100))
        );
    }
}

/// A scripted [`ShardCoordinator`] for tests: it holds the DDL of the tables it is told to
/// hold and executes every other DDL whole; the test resolves holds through its
/// [`CoordinatorScript`]. It records every DDL it was asked about and every restore.
///
/// ```text
/// test --CoordinatorScript::hold(table) / resolve(resolution)--> ScriptedCoordinator
/// syncer --decide(ddl) / restore(holds) / next_resolution--> ScriptedCoordinator --records--> asked(), restored()
/// ```
pub struct ScriptedCoordinator {
    script: CoordinatorScript,
    resolutions: tokio::sync::mpsc::Receiver<ShardResolution>,
}

/// The test's side of a [`ScriptedCoordinator`]; clones share it.
#[derive(Clone)]
pub struct CoordinatorScript {
    state: Arc<Mutex<CoordinatorState>>,
    resolutions: tokio::sync::mpsc::Sender<ShardResolution>,
}

#[derive(Default)]
struct CoordinatorState {
    hold: HashSet<TableRef>,
    asked: Vec<ShardDdl>,
    restored: Vec<Vec<ShardHold>>,
}

impl ScriptedCoordinator {
    /// A coordinator and its script (at most 64 resolutions waiting).
    pub fn new() -> (ScriptedCoordinator, CoordinatorScript) {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let script = CoordinatorScript {
            state: Arc::default(),
            resolutions: sender,
        };
        (
            ScriptedCoordinator {
                script: script.clone(),
                resolutions: receiver,
            },
            script,
        )
    }
}

impl CoordinatorScript {
    fn state(&self) -> MutexGuard<'_, CoordinatorState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// From now on, a DDL of `table` (upstream) is held.
    pub fn hold(&self, table: TableRef) {
        self.state().hold.insert(table);
    }

    /// From now on, a DDL of `table` is executed again.
    pub fn release(&self, table: &TableRef) {
        self.state().hold.remove(table);
    }

    /// Resolves a held DDL (the syncer receives it from `next_resolution`).
    pub async fn resolve(&self, resolution: ShardResolution) {
        self.resolutions
            .send(resolution)
            .await
            .unwrap_or_else(|_| panic!("the coordinator is gone"));
    }

    /// Every DDL the syncer asked about, in order.
    pub fn asked(&self) -> Vec<ShardDdl> {
        self.state().asked.clone()
    }

    /// The holds each restore gave back, in order.
    pub fn restored(&self) -> Vec<Vec<ShardHold>> {
        self.state().restored.clone()
    }
}

impl ShardCoordinator for ScriptedCoordinator {
    type Error = ScriptedError;

    async fn restore(&mut self, holds: &[ShardHold]) -> Result<(), ScriptedError> {
        self.script.state().restored.push(holds.to_vec());
        Ok(())
    }

    async fn decide(&mut self, ddl: &ShardDdl) -> Result<DdlDecision, ScriptedError> {
        let mut state = self.script.state();
        state.asked.push(ddl.clone());
        if ddl.tables.iter().any(|table| state.hold.contains(table)) {
            Ok(DdlDecision::Hold)
        } else {
            Ok(DdlDecision::Execute((0..ddl.statements.len()).collect()))
        }
    }

    async fn next_resolution(&mut self) -> Result<ShardResolution, ScriptedError> {
        match self.resolutions.recv().await {
            Some(resolution) => Ok(resolution),
            // Every script is gone: nothing will ever be resolved.
            None => std::future::pending().await,
        }
    }
}
