//! The syncer: one source's binlog applied to the downstream, exactly once, as
//! `docs/design/checkpoint.md` describes.
//!
//! ```text
//! StreamController --events--> event loop: filters, routes, SchemaTracker, decode_rows
//!    |                              | row changes: CausalityDetector (deterministic) -> worker w
//!    |                              |        worker w: batch (compacted per row, grouped by table
//!    |                              |        and kind when no key repeats) + its checkpoint row,
//!    |                              |        one transaction, sent as one multi-statement packet
//!    |                              |        <- acknowledgement (w, sequence) -> Watermark
//!    |                              | DDL: drain every worker, track, execute once, checkpoint
//!    +-- resumes at the global checkpoint; changes a worker already committed are not sent again
//! ```
//!
//! Invariants: a worker's checkpoint row commits with its batch; a change is dispatched again
//! after a restart only when its worker's checkpoint is before it; the global checkpoint only
//! names transaction ends before which every change is committed; a DDL runs when every worker
//! is idle and the checkpoint is written right after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_binlog::{
    BinlogSource, ControlledEvent, EventData, QueryStatus, ReconnectPolicy, RowsKind,
    StreamController, TableMap, decode_rows,
};
use dm_causality::{BatchPlanner, CausalityDetector, Compactor, PendingChange, Routing, TableKeys};
use dm_core::{
    ApplyMode, ClassifiedError, ErrorClass, Flavor, Location, RowChange, RowChangeKind, TableRef,
    TableSchema,
};
use dm_sink::{
    CheckpointTables, GlobalCheckpoint, MySqlSink, MySqlSinkOptions, SinkError, WorkerCheckpoint,
};
use tokio::sync::{mpsc, watch};

use crate::config::InstanceRules;
use crate::error::SyncerError;
use crate::filter::{DdlEventKind, FilterAction, FilterEvent};
use crate::tracker::{SchemaTracker, TrackOutcome};
use crate::watermark::Watermark;

/// How the syncer runs.
#[derive(Debug, Clone)]
pub struct SyncerSettings {
    /// The task's name (names the checkpoint tables).
    pub task: String,
    /// The source's id.
    pub source_id: String,
    /// The downstream schema of the checkpoint tables.
    pub meta_schema: String,
    /// Parallel DML workers.
    pub workers: usize,
    /// Changes per worker transaction.
    pub batch: usize,
    /// Capacity of each worker's queue.
    pub queue_size: usize,
    /// At most this many bytes of row changes (by `Row::approximate_size`) are dispatched and not
    /// yet committed, whatever the row widths: with the queue sizes, what bounds the syncer's
    /// memory (the event loop waits for commits before dispatching more).
    pub max_in_flight_bytes: usize,
    /// The upstream's flavour (for reading GTID sets back from checkpoints).
    pub flavor: Flavor,
    /// How often the global checkpoint is written.
    pub checkpoint_interval: Duration,
    /// Write every change idempotently (DM's `safe-mode: true`; not needed for exactly once).
    pub safe_mode: bool,
    /// Merge the changes of one row within a worker transaction and group the rest by table and
    /// kind into multi-row statements (DM's `compact`; on unless the task says `compact: false`).
    pub compact: bool,
    /// Whether table names are case-sensitive.
    pub case_sensitive: bool,
    /// Where to export metrics (DM's names), if anywhere.
    pub metrics: Option<crate::metrics::SyncerMetrics>,
    /// The upstream, for the remaining-time estimate and the master position (`SHOW BINARY
    /// LOGS`, every few seconds); `None` leaves them unknown.
    pub upstream: Option<dm_binlog::RemoteOptions>,
    /// Write idempotently (safe mode) until the stream passes this location, when the task has no
    /// checkpoint yet: the safe-mode exit point a dump without a consistent snapshot hands over.
    /// A checkpoint's own exit point wins.
    pub safe_mode_until: Option<Location>,
    /// `binlog skip | replace | inject` operators: the event starting at each position is
    /// skipped, replaced or preceded (DM's answer to a statement that stops the task).
    pub operators: Vec<(dm_core::BinlogPosition, dm_binlog::Operator)>,
}

impl SyncerSettings {
    /// Settings for `task` and `source_id` with DM's defaults (`dm_meta`, 16 workers, batch
    /// 100, checkpoints every 30 s), a MariaDB upstream, case-sensitive names, no safe mode,
    /// metrics or operators; change the fields that differ.
    pub fn new(task: impl Into<String>, source_id: impl Into<String>) -> Self {
        SyncerSettings {
            task: task.into(),
            source_id: source_id.into(),
            meta_schema: "dm_meta".into(),
            workers: 16,
            batch: 100,
            queue_size: 1024,
            max_in_flight_bytes: 64 << 20,
            flavor: Flavor::MariaDb,
            checkpoint_interval: Duration::from_secs(30),
            safe_mode: false,
            compact: true,
            case_sensitive: true,
            metrics: None,
            upstream: None,
            safe_mode_until: None,
            operators: Vec::new(),
        }
    }
}

impl SyncerSettings {
    /// The settings of `instance` of `task`: its `syncers` section (`worker-count`, `batch`,
    /// `queue-size`, `checkpoint-flush-interval`, `safe-mode`, `compact`), `meta-schema` and
    /// `case-sensitive`; the rest as [`SyncerSettings::new`].
    pub fn from_task(
        task: &crate::config::TaskConfig,
        instance: &crate::config::InstanceConfig,
        flavor: Flavor,
    ) -> Self {
        let syncer = task.syncer_for(instance);
        SyncerSettings {
            meta_schema: task.meta_schema.clone(),
            workers: syncer.worker_count,
            batch: syncer.batch,
            queue_size: syncer.queue_size,
            flavor,
            checkpoint_interval: Duration::from_secs(syncer.checkpoint_flush_interval.max(1)),
            safe_mode: syncer.safe_mode,
            compact: syncer.compact.unwrap_or(true),
            case_sensitive: task.case_sensitive,
            ..SyncerSettings::new(&task.name, &instance.source_id)
        }
    }
}

/// What the syncer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncerStatus {
    /// Events read.
    pub events: u64,
    /// Row changes sent to workers.
    pub rows_dispatched: u64,
    /// Row changes a worker had already committed before a restart (not sent again).
    pub rows_already_applied: u64,
    /// Row changes left out by the block-allow list or the event filter.
    pub rows_filtered: u64,
    /// DDL statements executed downstream.
    pub ddls_executed: u64,
    /// DDL statements tracked but not executed (filtered).
    pub ddls_skipped: u64,
    /// The last global checkpoint written.
    pub checkpoint: Option<Location>,
    /// Seconds between now and the upstream timestamp of the last transaction read while changes
    /// are in flight (DM's replication lag); 0 when nothing is in flight.
    pub lag_seconds: u64,
    /// Upstream transactions read to their end.
    pub transactions: u64,
    /// Row changes dispatched per second since the start.
    pub rows_per_second: u64,
    /// Changes waiting in each worker's queue.
    pub queue_lengths: Vec<usize>,
    /// The most bytes of row changes that were dispatched and not yet committed at once (kept
    /// under `max_in_flight_bytes`, or one change when a single change is larger).
    pub peak_in_flight_bytes: u64,
    /// Where the syncer reads (the end of the last event).
    pub position: Option<dm_core::BinlogPosition>,
    /// The end of the upstream's binlog, when known.
    pub master_position: Option<dm_core::BinlogPosition>,
    /// Seconds to catch up at the recent pace (DM's remaining time), when known.
    pub remaining_seconds: Option<u64>,
    /// Caught up: nothing queued, and the position is the upstream's end.
    pub synced: bool,
    /// Conditions worth a look that do not stop replication (an expression filter that no
    /// longer applies to a table, ...), the most recent last, at most [`MAX_WARNINGS`].
    pub warnings: Vec<String>,
}

/// How many warnings [`SyncerStatus`] keeps.
pub const MAX_WARNINGS: usize = 16;

/// Records a warning once (a repeat moves to the end), keeping the most recent ones.
fn warn(status: &mut SyncerStatus, warning: String) {
    status.warnings.retain(|known| *known != warning);
    if status.warnings.len() == MAX_WARNINGS {
        status.warnings.remove(0);
    }
    status.warnings.push(warning);
}

enum Work {
    Change {
        change: RowChange,
        /// The keys of the change's target table (for compaction and grouping).
        keys: Arc<TableKeys>,
        sequence: u64,
        row: u32,
        /// Write it idempotently (safe mode).
        idempotent: bool,
    },
    /// A DDL changed tables: forget cached downstream structures.
    ForgetTables,
}

enum Ack {
    /// Worker `worker` committed everything up to `sequence`: `bytes` of row changes.
    Done {
        worker: usize,
        sequence: u64,
        bytes: u64,
    },
    Failed {
        error: SinkError,
    },
}

/// Runs a downstream operation on `$sink`, retrying transient failures (the downstream
/// restarting, a lost connection, a lock wait) with backoff until it succeeds or fails
/// definitely.
macro_rules! with_retry {
    ($sink:expr, $name:ident => $operation:expr) => {{
        let mut backoff = Duration::from_millis(100);
        loop {
            let $name = &mut $sink;
            match $operation {
                Ok(value) => break Ok::<_, SyncerError>(value),
                Err(error) if error.class() == ErrorClass::Transient => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => break Err(SyncerError::from(error)),
            }
        }
    }};
}

/// DDL statements the syncer executes (the rest of the Query events are ignored).
fn ddl_kind(sql: &str) -> Option<DdlEventKind> {
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

/// A table id's current table map, with the filters' decisions about its table.
struct MappedTable {
    map: Arc<TableMap>,
    upstream: Arc<TableRef>,
    /// The block-allow list lets the table through.
    allowed: bool,
    /// The binlog event filter's decision (and rule) per rows kind (insert, update, delete),
    /// decided on first use.
    decisions: [Option<(FilterAction, Option<String>)>; 3],
}

/// One target table as the event loop uses it.
struct Target {
    tracked: Arc<TableSchema>,
    layout: Arc<TableSchema>,
    keys: Arc<TableKeys>,
    /// Indexes of the expression filters about this table, their columns checked.
    expression_filters: Vec<usize>,
}

/// Runs the syncer until the source ends (a non-following source) or `stop` turns true (it then
/// stops at the next transaction end). Either way it drains the workers and writes the global
/// checkpoint before returning. `progress` receives the status at every checkpoint.
pub async fn run<Source: BinlogSource>(
    settings: SyncerSettings,
    source: Source,
    start: Location,
    sink_options: MySqlSinkOptions,
    rules: InstanceRules,
    stop: watch::Receiver<bool>,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    let mut control = MySqlSink::new(sink_options.clone())?;
    let tables = CheckpointTables::new(&settings.meta_schema, &settings.task)?;
    tables.create(&mut control).await?;
    // The worker count the stored checkpoints were written with wins until a clean restart.
    let workers = tables
        .load_workers(&mut control, &settings.source_id, settings.flavor)
        .await?
        .first()
        .map_or(settings.workers.max(1), |row| row.workers.max(1) as usize);
    // Each worker's connection holds a named lock. A previous run that crashed may still have a
    // worker transaction executing downstream (sent whole, it runs on without its client); its
    // connection keeps the lock until that transaction has committed or rolled back, so the
    // checkpoints are read only once every lock is ours, and nothing old can change them after.
    let mut sinks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let mut options = sink_options.clone();
        options.lock = Some(worker_lock_name(&settings, worker));
        let mut sink = MySqlSink::new(options)?;
        sink.connect().await?;
        sinks.push(sink);
    }
    let global = tables
        .load_global(&mut control, &settings.source_id, settings.flavor)
        .await?;
    let stored = tables
        .load_workers(&mut control, &settings.source_id, settings.flavor)
        .await?;
    if stored.iter().any(|row| row.workers as usize != workers) {
        return Err(SyncerError::State(format!(
            "the worker checkpoints of source {} disagree on the worker count",
            settings.source_id
        )));
    }
    let mut applied: Vec<Option<(Location, u32)>> = vec![None; workers];
    for row in stored {
        if let Some(slot) = applied.get_mut(row.worker as usize) {
            *slot = Some((row.location, row.row));
        }
    }
    let safe_until = match &global {
        Some(global) => global.safe_mode_exit.clone(),
        None => settings.safe_mode_until.clone(),
    };
    let start = global.map_or(start, |global| global.location);

    let (ack_sender, mut acks) = mpsc::channel::<Ack>(settings.queue_size.max(16));
    let mut queues = Vec::with_capacity(workers);
    let mut handles = WorkerTasks(Vec::with_capacity(workers));
    let mode = if settings.safe_mode {
        ApplyMode::Idempotent
    } else {
        ApplyMode::Exact
    };
    for (worker, sink) in sinks.into_iter().enumerate() {
        // The queues share `queue_size`, but each holds at least one full batch: a worker can
        // only gather what its queue holds, and small batches cost the downstream far more.
        let capacity = (settings.queue_size / workers).max(settings.batch).max(8);
        let (sender, receiver) = mpsc::channel::<Work>(capacity);
        queues.push(sender);
        handles.0.push(tokio::spawn(run_worker(
            worker,
            workers,
            settings.clone(),
            tables.clone(),
            sink,
            mode,
            receiver,
            ack_sender.clone(),
        )));
    }
    drop(ack_sender);

    let case_sensitive = settings.case_sensitive;
    let mut state = EventLoop {
        settings,
        rules,
        tables,
        control,
        tracker: SchemaTracker::new(case_sensitive),
        targets: HashMap::new(),
        maps: HashMap::new(),
        detector: CausalityDetector::deterministic(workers)
            .map_err(|error| SyncerError::State(error.to_string()))?,
        watermark: Watermark::new(workers),
        acknowledged: vec![0; workers],
        applied,
        queues,
        status: SyncerStatus::default(),
        last_flush: Instant::now(),
        keys: Vec::new(),
        progress,
        last_timestamp: 0,
        safe_until,
        started: Instant::now(),
        last_publish: Instant::now(),
        last_upstream_check: None,
        last_consumed: None,
        in_flight_bytes: 0,
    };
    let mut controller = StreamController::new(source, start, ReconnectPolicy::default());
    for (position, operator) in &state.settings.operators {
        controller.set_operator(position.clone(), operator.clone());
    }
    let result = state.run(&mut controller, stop, &mut acks).await;
    // Stop the workers (closing their queues) and wait for them.
    state.queues.clear();
    for handle in std::mem::take(&mut handles.0) {
        let _ = handle.await;
    }
    result.map(|()| state.status)
}

/// The worker tasks: aborted if the syncer is dropped before it stopped them (a crash of the
/// syncer takes its workers with it; their open transactions roll back downstream).
struct WorkerTasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for WorkerTasks {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

struct EventLoop {
    settings: SyncerSettings,
    rules: InstanceRules,
    tables: CheckpointTables,
    control: MySqlSink,
    tracker: SchemaTracker,
    targets: HashMap<TableRef, Target>,
    /// Table id -> the table map and what the filters decided for its table (they do not
    /// change while the task runs, so each is decided once per table map).
    maps: HashMap<u64, MappedTable>,
    detector: CausalityDetector,
    watermark: Watermark,
    acknowledged: Vec<u64>,
    applied: Vec<Option<(Location, u32)>>,
    queues: Vec<mpsc::Sender<Work>>,
    status: SyncerStatus,
    last_flush: Instant,
    keys: Vec<u64>,
    progress: watch::Sender<SyncerStatus>,
    /// Upstream timestamp of the last transaction end read.
    last_timestamp: u32,
    /// Safe mode until the stream passes this location (the exit point).
    safe_until: Option<Location>,
    started: Instant,
    last_publish: Instant,
    last_upstream_check: Option<Instant>,
    /// (bytes of binlog consumed from the first listed file, when), for the pace.
    last_consumed: Option<(u64, Instant)>,
    /// Bytes of row changes dispatched and not yet acknowledged.
    in_flight_bytes: u64,
}

impl EventLoop {
    async fn run<Source: BinlogSource>(
        &mut self,
        controller: &mut StreamController<Source>,
        stop: watch::Receiver<bool>,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        loop {
            self.take_acknowledgements(acks)?;
            let Some(event) = controller.next_event().await? else {
                break;
            };
            self.status.events += 1;
            let at_end = event.locations.at_transaction_end;
            let end = event.locations.end.clone();
            let timestamp = if event.event.artificial {
                0
            } else {
                event.event.event.header.timestamp
            };
            self.handle(event, acks).await?;
            self.status.position = Some(end.position.clone());
            if self.safe_until.as_ref().is_some_and(|exit| {
                end.compare(exit)
                    .is_some_and(|order| order != std::cmp::Ordering::Less)
            }) {
                // Past the exit point: exact writes from here; the checkpoint forgets it.
                self.safe_until = None;
            }
            if at_end {
                self.status.transactions += u64::from(timestamp > 0);
                self.watermark.transaction_end(end);
                if timestamp > 0 {
                    self.last_timestamp = timestamp;
                }
                if self.last_flush.elapsed() >= self.settings.checkpoint_interval {
                    self.flush().await?;
                } else if self.last_publish.elapsed() >= Duration::from_secs(1) {
                    self.publish().await;
                }
                if *stop.borrow() {
                    break;
                }
            }
        }
        self.drain(acks).await?;
        self.flush().await
    }

    fn take_acknowledgements(&mut self, acks: &mut mpsc::Receiver<Ack>) -> Result<(), SyncerError> {
        while let Ok(ack) = acks.try_recv() {
            self.record(ack)?;
        }
        Ok(())
    }

    fn record(&mut self, ack: Ack) -> Result<(), SyncerError> {
        match ack {
            Ack::Done {
                worker,
                sequence,
                bytes,
            } => {
                self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
                self.detector.acknowledge(worker, sequence);
                self.watermark.acknowledge(worker, sequence);
                if let Some(last) = self.acknowledged.get_mut(worker) {
                    *last = (*last).max(sequence);
                }
                Ok(())
            }
            Ack::Failed { error } => Err(error.into()),
        }
    }

    async fn wait_for(
        &mut self,
        waits: &[(usize, u64)],
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        while waits.iter().any(|(worker, sequence)| {
            self.acknowledged
                .get(*worker)
                .is_some_and(|done| done < sequence)
        }) {
            self.record_next(acks).await?;
        }
        Ok(())
    }

    /// Waits for the next acknowledgement and records it.
    async fn record_next(&mut self, acks: &mut mpsc::Receiver<Ack>) -> Result<(), SyncerError> {
        let ack = acks.recv().await.ok_or_else(|| {
            SyncerError::State("the workers stopped while changes were in flight".into())
        })?;
        self.record(ack)
    }

    async fn drain(&mut self, acks: &mut mpsc::Receiver<Ack>) -> Result<(), SyncerError> {
        let waits: Vec<(usize, u64)> = self
            .watermark
            .assigned_sequences()
            .iter()
            .copied()
            .enumerate()
            .collect();
        self.wait_for(&waits, acks).await
    }

    async fn downstream_schema(
        &mut self,
        table: &TableRef,
    ) -> Result<Option<TableSchema>, SyncerError> {
        with_retry!(self.control, sink => sink.table_schema(table).await)
    }

    /// Brings the status up to date, updates the metrics, and sends it to `progress`.
    async fn publish(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        // DM's lag: how old the oldest change still in flight is; nothing in flight, no lag.
        self.status.lag_seconds = if self.last_timestamp == 0 || self.watermark.drained() {
            0
        } else {
            now.saturating_sub(u64::from(self.last_timestamp))
        };
        let elapsed = self.started.elapsed().as_secs().max(1);
        self.status.rows_per_second = self.status.rows_dispatched / elapsed;
        self.status.queue_lengths = self
            .queues
            .iter()
            .map(|queue| queue.max_capacity() - queue.capacity())
            .collect();
        let due = self
            .last_upstream_check
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(5));
        if due && let Some(upstream) = self.settings.upstream.clone() {
            self.last_upstream_check = Some(Instant::now());
            if let Ok(files) = dm_binlog::list_binary_logs(&upstream).await {
                self.estimate(&files);
            }
        }
        self.status.synced = self.status.queue_lengths.iter().all(|length| *length == 0)
            && self.watermark.drained()
            && self.status.master_position.is_some()
            && self.status.master_position == self.status.position;
        if let Some(metrics) = &self.settings.metrics {
            let labels = [
                self.settings.task.as_str(),
                self.settings.source_id.as_str(),
            ];
            metrics
                .lag
                .with_label_values(&labels)
                .set(self.status.lag_seconds as f64);
            if let Some(remaining) = self.status.remaining_seconds {
                metrics
                    .remaining
                    .with_label_values(&labels)
                    .set(remaining as f64);
            }
            for (node, position) in [
                ("syncer", &self.status.position),
                ("master", &self.status.master_position),
            ] {
                if let Some(position) = position {
                    let labels = [node, labels[0], labels[1]];
                    metrics
                        .binlog_file
                        .with_label_values(&labels)
                        .set(position.file.sequence() as f64);
                    metrics
                        .binlog_pos
                        .with_label_values(&labels)
                        .set(position.offset as f64);
                }
            }
            metrics
                .finished_transactions
                .with_label_values(&labels)
                .reset();
            metrics
                .finished_transactions
                .with_label_values(&labels)
                .inc_by(self.status.transactions);
            for (queue, length) in self.status.queue_lengths.iter().enumerate() {
                metrics
                    .queue_size
                    .with_label_values(&[labels[0], &queue.to_string(), labels[1]])
                    .set(*length as i64);
            }
        }
        self.progress.send_replace(self.status.clone());
        self.last_publish = Instant::now();
    }

    /// DM's remaining time: binlog bytes after the syncer's position over the bytes per second
    /// consumed since the previous estimate.
    fn estimate(&mut self, files: &[(String, u64)]) {
        let Some(last) = files.last() else {
            return;
        };
        self.status.master_position = dm_core::BinlogFileName::parse(&last.0)
            .ok()
            .map(|file| dm_core::BinlogPosition::new(file, last.1));
        let Some(position) = &self.status.position else {
            return;
        };
        let mut consumed = 0u64;
        let mut total = 0u64;
        let mut found = false;
        for (name, size) in files {
            if *name == position.file.to_string() {
                consumed = total + position.offset.min(*size);
                found = true;
            }
            total += size;
        }
        if !found {
            return;
        }
        let behind = total.saturating_sub(consumed);
        let now = Instant::now();
        if let Some((previous, at)) = self.last_consumed {
            let seconds = now.duration_since(at).as_secs_f64();
            let pace = consumed.saturating_sub(previous) as f64 / seconds.max(0.001);
            self.status.remaining_seconds = if behind == 0 {
                Some(0)
            } else if pace > 0.0 {
                Some((behind as f64 / pace).ceil() as u64)
            } else {
                None
            };
        }
        self.last_consumed = Some((consumed, now));
    }

    async fn flush(&mut self) -> Result<(), SyncerError> {
        self.publish().await;
        let Some(location) = self.watermark.reached().cloned() else {
            return Ok(());
        };
        if self.status.checkpoint.as_ref() == Some(&location) && self.safe_until.is_none() {
            self.last_flush = Instant::now();
            return Ok(());
        }
        let sql = self.tables.global_upsert(&GlobalCheckpoint {
            source: self.settings.source_id.clone(),
            location: location.clone(),
            safe_mode_exit: self.safe_until.clone(),
        });
        with_retry!(self.control, sink => {
            sink.apply_changes_with(&[], ApplyMode::Exact, std::slice::from_ref(&sql))
                .await
        })?;
        self.status.checkpoint = Some(location);
        self.last_flush = Instant::now();
        if let Some(metrics) = &self.settings.metrics {
            metrics
                .flushes
                .with_label_values(&[
                    self.settings.task.as_str(),
                    self.settings.source_id.as_str(),
                ])
                .inc();
        }
        self.publish().await;
        Ok(())
    }

    async fn handle(
        &mut self,
        event: ControlledEvent,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        match &event.event.event.data {
            // MariaDB and MySQL repeat the map before every rows event: keep the entry (and its
            // decisions) while the map is the same.
            EventData::TableMap(map)
                if self
                    .maps
                    .get(&map.table_id)
                    .is_none_or(|known| *known.map != *map) =>
            {
                let upstream = Arc::new(TableRef::new(map.schema.clone(), map.table.clone()));
                let allowed = self
                    .rules
                    .block_allow_list
                    .allows_table(&upstream.schema, &upstream.table);
                self.maps.insert(
                    map.table_id,
                    MappedTable {
                        map: Arc::new(map.clone()),
                        upstream,
                        allowed,
                        decisions: [None, None, None],
                    },
                );
            }
            EventData::TableMap(_) => {}
            EventData::Rows(_) => self.rows(&event, acks).await?,
            EventData::Query {
                schema,
                sql,
                status_variables,
                ..
            } => {
                let text = String::from_utf8_lossy(sql);
                let statement = crate::ddl::skip_leading_comments(&text);
                if let Some(kind) = ddl_kind(statement) {
                    let statement = statement.to_owned();
                    let sql_mode = QueryStatus::parse(status_variables).sql_mode;
                    self.ddl(&event, schema, &statement, sql_mode, kind, acks)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Seeds the tracker with `upstream`'s structure from its routed downstream table (DM
    /// does the same for tables created before the start, as after a full load); `Ok(false)`
    /// when the downstream table does not exist.
    async fn seed_from_downstream(&mut self, upstream: &TableRef) -> Result<bool, SyncerError> {
        let routed = self.rules.router.route(upstream)?;
        let Some(schema) = self.downstream_schema(&routed).await? else {
            return Ok(false);
        };
        let renamed = TableSchema::new(
            upstream.clone(),
            schema.columns().to_vec(),
            schema.keys().to_vec(),
        )
        .map_err(|error| SyncerError::State(error.to_string()))?;
        self.tracker.set(renamed);
        Ok(true)
    }

    /// The routed target of `upstream`, with its tracked schema (seeded from the downstream).
    async fn target(&mut self, upstream: &TableRef) -> Result<&Target, SyncerError> {
        let tracked = match self.tracker.get(upstream) {
            Some(schema) => schema,
            None => {
                if !self.seed_from_downstream(upstream).await? {
                    let routed = self.rules.router.route(upstream)?;
                    return Err(SyncerError::State(format!(
                        "table {upstream} has rows in the binlog but {routed} does not exist downstream and no CREATE TABLE was replayed: create it downstream (or run the task in mode all)"
                    )));
                }
                self.tracker.get(upstream).ok_or_else(|| {
                    SyncerError::State(format!("table {upstream} could not be tracked"))
                })?
            }
        };
        let stale = self
            .targets
            .get(upstream)
            .is_none_or(|target| !Arc::ptr_eq(&target.tracked, &tracked));
        if stale {
            let routed = self.rules.router.route(upstream)?;
            let downstream = self.downstream_schema(&routed).await?.ok_or_else(|| {
                SyncerError::Sink(SinkError::Schema {
                    table: routed.to_string(),
                    reason: "the table does not exist downstream".into(),
                })
            })?;
            let layout = Arc::new(
                TableSchema::new(
                    routed.clone(),
                    tracked.columns().to_vec(),
                    tracked.keys().to_vec(),
                )
                .map_err(|error| SyncerError::State(error.to_string()))?,
            );
            let keys = Arc::new(TableKeys::new(&routed, &tracked, &downstream));
            let mut expression_filters = Vec::new();
            for (index, filter) in self.rules.expression_filters.iter().enumerate() {
                if filter.applies_to(upstream) {
                    match filter.unusable_with(&tracked) {
                        None => expression_filters.push(index),
                        Some(reason) => warn(&mut self.status, reason),
                    }
                }
            }
            self.targets.insert(
                upstream.clone(),
                Target {
                    tracked,
                    layout,
                    keys,
                    expression_filters,
                },
            );
        }
        self.targets
            .get(upstream)
            .ok_or_else(|| SyncerError::State(format!("table {upstream} has no target")))
    }

    async fn rows(
        &mut self,
        event: &ControlledEvent,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let EventData::Rows(rows) = &event.event.event.data else {
            return Ok(());
        };
        let position = || event.locations.start.position.to_string();
        let rules = &self.rules;
        let Some(mapped) = self.maps.get_mut(&rows.table_id) else {
            return Err(SyncerError::State(format!(
                "rows of table id {} at {} come without their table map",
                rows.table_id,
                position()
            )));
        };
        if !mapped.allowed {
            return Ok(());
        }
        let (filter_event, kind_index) = match rows.kind {
            RowsKind::Write => (FilterEvent::Insert, 0),
            RowsKind::Update => (FilterEvent::Update, 1),
            RowsKind::Delete => (FilterEvent::Delete, 2),
        };
        let upstream = mapped.upstream.clone();
        let map = mapped.map.clone();
        let decision = mapped.decisions[kind_index]
            .get_or_insert_with(|| {
                let (action, rule) = rules.event_filter.decide(
                    &upstream.schema,
                    &upstream.table,
                    Some(filter_event),
                    None,
                );
                (action, rule.map(str::to_owned))
            })
            .clone();
        match decision {
            (FilterAction::Do, _) => {}
            (FilterAction::Ignore, _) => {
                self.status.rows_filtered += 1;
                return Ok(());
            }
            (FilterAction::Error, rule) => {
                return Err(SyncerError::Filtered {
                    rule: rule.unwrap_or_default(),
                    position: position(),
                    what: format!("{filter_event:?} on {upstream}"),
                });
            }
        }
        let target = self.target(&upstream).await?;
        let layout = target.layout.clone();
        let images =
            decode_rows(rows, &map, &target.tracked).map_err(|source| SyncerError::Event {
                position: position(),
                source: Box::new(source),
            })?;
        let commit_ts = u64::from(event.event.event.header.timestamp);
        for (index, images) in images.into_iter().enumerate() {
            let kind = match images {
                (None, Some(after)) => RowChangeKind::Insert { after },
                (Some(before), Some(after)) => RowChangeKind::Update { before, after },
                (Some(before), None) => RowChangeKind::Delete { before },
                (None, None) => continue,
            };
            let change = RowChange::new(
                layout.clone(),
                kind,
                event.locations.start.clone(),
                commit_ts,
            )
            .map_err(|error| SyncerError::State(error.to_string()))?;
            let Some(target) = self.targets.get(&upstream) else {
                return Err(SyncerError::State(format!(
                    "table {upstream} has no target"
                )));
            };
            let expression_filtered = target
                .expression_filters
                .iter()
                .filter_map(|index| self.rules.expression_filters.get(*index))
                .any(|filter| filter.drops(&change, &target.tracked));
            if expression_filtered {
                self.status.rows_filtered += 1;
                continue;
            }
            target.keys.causality_keys(&change, &mut self.keys);
            let keys = target.keys.clone();
            let (worker, sequence) = loop {
                match self.detector.route(&self.keys) {
                    Routing::Assigned { worker, sequence } => break (worker, sequence),
                    Routing::Conflict(conflict) => self.wait_for(&conflict.waits, acks).await?,
                }
            };
            self.watermark.assigned(worker, sequence);
            let row = index as u32;
            let committed = self.applied[worker]
                .as_ref()
                .is_some_and(|(location, last_row)| {
                    match event.locations.start.compare(location) {
                        Some(std::cmp::Ordering::Less) => true,
                        Some(std::cmp::Ordering::Equal) => row <= *last_row,
                        _ => false,
                    }
                });
            if committed {
                self.status.rows_already_applied += 1;
                self.detector.acknowledge(worker, sequence);
                self.watermark.acknowledge(worker, sequence);
                self.acknowledged[worker] = self.acknowledged[worker].max(sequence);
                continue;
            }
            // Past this worker's checkpoint: everything after it is new.
            self.applied[worker] = None;
            self.status.rows_dispatched += 1;
            if let Some(metrics) = &self.settings.metrics {
                let kind = match rows.kind {
                    RowsKind::Write => "insert",
                    RowsKind::Update => "update",
                    RowsKind::Delete => "delete",
                };
                metrics
                    .added_jobs
                    .with_label_values(&[
                        kind,
                        self.settings.task.as_str(),
                        self.settings.source_id.as_str(),
                    ])
                    .inc();
            }
            // Keep the changes in flight under the byte budget: wait for commits first.
            let bytes = change_bytes(&change);
            while self.in_flight_bytes > 0
                && self.in_flight_bytes + bytes > self.settings.max_in_flight_bytes as u64
            {
                self.record_next(acks).await?;
            }
            self.in_flight_bytes += bytes;
            self.status.peak_in_flight_bytes =
                self.status.peak_in_flight_bytes.max(self.in_flight_bytes);
            let idempotent = self.settings.safe_mode
                || self.safe_until.as_ref().is_some_and(|exit| {
                    event.locations.start.compare(exit) == Some(std::cmp::Ordering::Less)
                });
            self.queues[worker]
                .send(Work::Change {
                    change,
                    keys,
                    sequence,
                    row,
                    idempotent,
                })
                .await
                .map_err(|_| SyncerError::State(format!("worker {worker} stopped")))?;
        }
        Ok(())
    }

    async fn ddl(
        &mut self,
        event: &ControlledEvent,
        schema: &str,
        sql: &str,
        sql_mode: Option<u64>,
        kind: DdlEventKind,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let position = event.locations.start.position.to_string();
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
        self.watermark.transaction_end(event.locations.end.clone());
        self.flush().await
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_worker(
    worker: usize,
    workers: usize,
    settings: SyncerSettings,
    tables: CheckpointTables,
    mut sink: MySqlSink,
    mode: ApplyMode,
    mut queue: mpsc::Receiver<Work>,
    acks: mpsc::Sender<Ack>,
) {
    let batch_size = settings.batch.max(1);
    let mut batch = WorkerBatch::new(batch_size, settings.compact);
    while let Some(first) = queue.recv().await {
        let mut last: Option<(u64, Location, u32)> = None;
        let mut forget_after = false;
        let mut next = Some(first);
        while let Some(work) = next.take() {
            match work {
                Work::ForgetTables if batch.is_empty() => sink.forget_tables(),
                Work::ForgetTables => {
                    forget_after = true;
                    break;
                }
                Work::Change {
                    change,
                    keys,
                    sequence,
                    row,
                    idempotent,
                } => {
                    last = Some((sequence, change.location().clone(), row));
                    batch.push(change, keys, idempotent || mode == ApplyMode::Idempotent);
                    if batch.is_full() {
                        break;
                    }
                }
            }
            next = queue.try_recv().ok();
        }
        if let Some((sequence, location, row)) = last {
            let checkpoint = tables.worker_upsert(&WorkerCheckpoint {
                source: settings.source_id.clone(),
                worker: worker as u32,
                workers: workers as u32,
                location,
                row,
            });
            batch.finish();
            let mut backoff = Duration::from_millis(100);
            loop {
                match sink
                    .apply_marked_changes_with(
                        &batch.changes,
                        &batch.idempotent,
                        std::slice::from_ref(&checkpoint),
                    )
                    .await
                {
                    Ok(()) => break,
                    Err(error) if error.class() == ErrorClass::Transient => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    Err(error) => {
                        let _ = acks.send(Ack::Failed { error }).await;
                        return;
                    }
                }
            }
            let bytes = batch.bytes;
            batch.clear();
            if acks
                .send(Ack::Done {
                    worker,
                    sequence,
                    bytes,
                })
                .await
                .is_err()
            {
                return;
            }
        }
        if forget_after {
            sink.forget_tables();
        }
    }
}

/// The name of worker `worker`'s downstream lock: one per task, source and worker, the same in
/// every run (FNV-1a of the names, to stay within the 64 characters a lock name may have).
fn worker_lock_name(settings: &SyncerSettings, worker: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [&settings.meta_schema, &settings.task, &settings.source_id] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("dm-syncer-{hash:016x}-{worker}")
}

/// What a change weighs against `max_in_flight_bytes`.
fn change_bytes(change: &RowChange) -> u64 {
    let size = change.before().map_or(0, dm_core::Row::approximate_size)
        + change.after().map_or(0, dm_core::Row::approximate_size);
    size as u64
}

/// One worker transaction being gathered: the changes in binlog order, or (compacting) merged
/// per row and then grouped by table and kind when no two share a key.
struct WorkerBatch {
    compact: bool,
    capacity: usize,
    pushed: usize,
    /// Bytes of the changes pushed (as the event loop counted them).
    bytes: u64,
    compactor: Compactor,
    planner: BatchPlanner,
    keys: HashMap<TableRef, Arc<TableKeys>>,
    pending: Vec<PendingChange>,
    /// What the sink applies, after [`WorkerBatch::finish`].
    changes: Vec<RowChange>,
    idempotent: Vec<bool>,
}

impl WorkerBatch {
    fn new(capacity: usize, compact: bool) -> Self {
        WorkerBatch {
            compact,
            capacity,
            pushed: 0,
            bytes: 0,
            compactor: Compactor::new(capacity),
            planner: BatchPlanner::new(capacity),
            keys: HashMap::new(),
            pending: Vec::with_capacity(capacity),
            changes: Vec::with_capacity(capacity),
            idempotent: Vec::with_capacity(capacity),
        }
    }

    fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    fn is_full(&self) -> bool {
        self.pushed >= self.capacity
    }

    fn push(&mut self, change: RowChange, keys: Arc<TableKeys>, idempotent: bool) {
        self.pushed += 1;
        self.bytes += change_bytes(&change);
        if !self.compact {
            self.pending.push(PendingChange { change, idempotent });
            return;
        }
        // A table's keys do not change within a batch: a DDL ends the batch first.
        if !self.keys.contains_key(change.table()) {
            self.keys.insert(change.table().clone(), keys.clone());
        }
        self.compactor.push(change, idempotent, &keys);
    }

    /// Compacts and groups what was pushed into `changes` and `idempotent`.
    fn finish(&mut self) {
        if self.compact {
            self.compactor.drain_into(&mut self.pending);
            let keys = &self.keys;
            if self
                .pending
                .iter()
                .all(|pending| keys.contains_key(pending.change.table()))
            {
                self.planner
                    .group(&mut self.pending, |change| &keys[change.table()]);
            }
        }
        self.changes.clear();
        self.idempotent.clear();
        for pending in self.pending.drain(..) {
            self.changes.push(pending.change);
            self.idempotent.push(pending.idempotent);
        }
    }

    fn clear(&mut self) {
        self.pushed = 0;
        self.bytes = 0;
        self.keys.clear();
        self.pending.clear();
        self.changes.clear();
        self.idempotent.clear();
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
