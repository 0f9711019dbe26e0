//! Prometheus metrics of the syncer, with DM's names, types, labels and buckets, so that DM's
//! dashboards and alert rules keep working.
//!
//! ```text
//! event loop  --LoopMetrics (the task's labels bound once)--+
//! workers     --WorkerMetrics (one per worker queue)--------+--> SyncerMetrics (one Registry)
//! run()       --ExitCounters--------------------------------+      --encode()--> /metrics
//! ```
//!
//! Labels: `task` and `source_id` are the subtask's; `worker` is the DM-worker's name
//! ([`SyncerMetrics::for_worker`], empty for a standalone syncer); `queueNo` / `queue_id` name a
//! worker queue `q_N` as DM does (DM folds queues modulo 8, here every queue keeps its number);
//! DDL statements run on the event loop's own connection and are counted under
//! `queueNo="admin queue"`, DM's name for its DDL queue.
//!
//! Recording stays off the hot path's budget: handles are bound to their labels once; the event
//! loop reads the clock a few times per event and never per row, except for a row that waits (a
//! causality conflict, a full queue), where a clock read is nothing next to the wait; a worker
//! reads it once per transaction; `SyncerSettings.metrics = None` records nothing. Histograms and
//! counters with fixed labels exist from the start (an empty histogram is a true statement);
//! per-table counters and the gauges appear with their first measurement.
//!
//! Every syncer metric of DM (`dm/syncer/metrics/metrics.go`), and what it measures here:
//!
//! | metric | type, labels | here |
//! |---|---|---|
//! | `dm_syncer_replication_lag_gauge` | gauge `task, source_id, worker` | seconds between now and the upstream timestamp of the last transaction read while changes are in flight, 0 when none are (DM takes the oldest change in flight); set every second and at every checkpoint |
//! | `dm_syncer_replication_lag` | histogram `task, source_id, worker` | the same value, observed each time the gauge is set (DM's buckets: 0.5 s doubling, 12) |
//! | `dm_syncer_remaining_time` | gauge `task, source_id, worker` | seconds to catch up: binlog bytes left / bytes per second recently consumed |
//! | `dm_syncer_binlog_file` | gauge `node, task, source_id` | binlog file sequence number (`node` = `syncer` or `master`) |
//! | `dm_syncer_binlog_pos` | gauge `node, task, source_id` | binlog offset (`node` = `syncer` or `master`) |
//! | `dm_syncer_read_binlog_duration` | histogram `task, source_id` | seconds to get each event from the stream (network or relay, decoding the event; a following stream waits here for new events, as DM's does) |
//! | `dm_syncer_binlog_event_size` | histogram `task, worker, source_id` | bytes of each event read, header and checksum included (a compressed transaction payload counts once, compressed); events an operator injects are not observed |
//! | `dm_syncer_binlog_event_row` | histogram `worker, task, source_id` | rows in each rows event of a replicated table (counted when decoded; DM also counts the events of filtered tables, which are never decoded here) |
//! | `dm_syncer_binlog_transform_cost` | histogram `stage, task, worker, source_id` | `gen-write-rows` / `gen-update-rows` / `gen-delete-rows`: from a rows event read to its row images decoded with the tracked schema; `gen-query`: from a DDL event read to its plan; `ddl-exec`: from the DDL barrier holding (workers drained) to its last statement executed; `dml-exec`: from the dispatch of a worker transaction's first change to its commit |
//! | `dm_syncer_dispatch_binlog_duration` | histogram `type, task, source_id` | from a rows event decoded to its last change in a worker queue (expression filters, causality routing and its waits, the in-flight byte budget, the queue sends); `type` = `insert` / `update` / `delete` |
//! | `dm_syncer_skip_binlog_duration` | histogram `type, task, source_id` | `rows`: from a rows event read to the decision to skip it (block-allow list, event filter); `query`: for each DDL statement not replicated, from its event read to the decision, which here comes after the DDL barrier drained the workers (DM decides before) |
//! | `dm_syncer_conflict_detect_duration` | histogram `task, source_id` | seconds a row change waited because its keys conflict with changes in flight on another worker, one observation per conflict. DM times the detection of every change; here detection is a hash lookup per row, too cheap to time without slowing the loop, and the wait is what a conflict costs |
//! | `dm_syncer_add_job_duration` | histogram `type, task, queueNo, source_id` | seconds a row change (`type` = `dml`) waited to enter its worker queue, observed for the adds that found the queue full: an add to a queue with room does not wait and is not timed (that would cost the hot path two clock reads per row). No `ddl` type: DDL statements do not go through a queue |
//! | `dm_syncer_added_jobs_total` | counter `type, task, queueNo, source_id, worker, target_schema, target_table` | row changes dispatched to worker queue `q_N` (`type` = `insert` / `update` / `delete`) and DDL statements about to run (`type` = `ddl`), per target table |
//! | `dm_syncer_finished_jobs_total` | counter, the same labels | row changes whose worker transaction committed, and DDL statements executed |
//! | `dm_syncer_finished_transaction_total` | counter `task, worker, source_id` | worker transactions committed downstream (one per batch, as DM counts) |
//! | `dm_syncer_queue_size` | gauge `task, queue_id, source_id` | changes waiting in worker queue `q_N` |
//! | `dm_syncer_txn_duration_time` | histogram `task, worker, source_id` | seconds of each downstream transaction that succeeded: worker batches, global checkpoint writes and DDL statements (as DM times every statement list it executes) |
//! | `dm_syncer_query_duration_time` | histogram `task, worker, source_id` | seconds of each downstream read the running syncer makes: table structures and the `SHOW CREATE` taken before a DDL runs (DM times its reads; its DDLs are in `txn_duration_time`) |
//! | `dm_syncer_stmt_duration_time` | histogram `type, task` | `type` = `stmt`: each DDL statement's execution. Worker batches and checkpoints travel as one multi-statement request, so their statements (and DM's `begin` / `commit` types) have no time of their own: they are in `txn_duration_time` |
//! | `dm_syncer_replication_transaction_batch` | histogram `worker, task, source_id, queueNo, type` | `type` = `rows`: row changes each worker transaction wrote (after compaction). `type` = `statements` is not exported: the sink builds the (multi-row) statements and does not report how many |
//! | `dm_syncer_flush_checkpoints_time_interval` | histogram `worker, task, source_id` | seconds between consecutive global checkpoint writes |
//! | `dm_syncer_ideal_qps` | gauge `task, worker, source_id` | DM: worker count × statements / seconds of the last transaction; here row changes stand for statements (not counted, see above): worker count × changes / seconds of the last worker transaction |
//! | `dm_syncer_exit_with_error_count` | counter `task, source_id, resumable_err` | `run` ending with an error; `resumable_err` = `true` for a transient error, `false` otherwise; both start at 0 when `run` starts, as DM's |
//! | `dm_syncer_unsynced_table_number` | gauge `task, table, source_id` | not exported: comes with shard DDL coordination |
//! | `dm_syncer_shard_lock_resolving` | gauge `task, source_id` | not exported: comes with shard DDL coordination |
//!
//! Not DM's: `dm_syncer_flush_checkpoints_total{task, source_id}` counts the global checkpoints
//! written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use dm_core::{
    ClassifiedError, DdlTarget, ErrorClass, RowChange, RowChangeKind, TableRef, TableSchema,
};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::SyncerStatus;

/// `dm_syncer_replication_lag_gauge`.
pub const REPLICATION_LAG_GAUGE: &str = "dm_syncer_replication_lag_gauge";
/// `dm_syncer_replication_lag`.
pub const REPLICATION_LAG: &str = "dm_syncer_replication_lag";
/// `dm_syncer_remaining_time`.
pub const REMAINING_TIME: &str = "dm_syncer_remaining_time";
/// `dm_syncer_binlog_file`.
pub const BINLOG_FILE: &str = "dm_syncer_binlog_file";
/// `dm_syncer_binlog_pos`.
pub const BINLOG_POSITION: &str = "dm_syncer_binlog_pos";
/// `dm_syncer_read_binlog_duration`.
pub const READ_BINLOG_DURATION: &str = "dm_syncer_read_binlog_duration";
/// `dm_syncer_binlog_event_size`.
pub const BINLOG_EVENT_SIZE: &str = "dm_syncer_binlog_event_size";
/// `dm_syncer_binlog_event_row`.
pub const BINLOG_EVENT_ROW: &str = "dm_syncer_binlog_event_row";
/// `dm_syncer_binlog_transform_cost`.
pub const BINLOG_TRANSFORM_COST: &str = "dm_syncer_binlog_transform_cost";
/// `dm_syncer_dispatch_binlog_duration`.
pub const DISPATCH_BINLOG_DURATION: &str = "dm_syncer_dispatch_binlog_duration";
/// `dm_syncer_skip_binlog_duration`.
pub const SKIP_BINLOG_DURATION: &str = "dm_syncer_skip_binlog_duration";
/// `dm_syncer_conflict_detect_duration`.
pub const CONFLICT_DETECT_DURATION: &str = "dm_syncer_conflict_detect_duration";
/// `dm_syncer_add_job_duration`.
pub const ADD_JOB_DURATION: &str = "dm_syncer_add_job_duration";
/// `dm_syncer_added_jobs_total`.
pub const ADDED_JOBS_TOTAL: &str = "dm_syncer_added_jobs_total";
/// `dm_syncer_finished_jobs_total`.
pub const FINISHED_JOBS_TOTAL: &str = "dm_syncer_finished_jobs_total";
/// `dm_syncer_finished_transaction_total`.
pub const FINISHED_TRANSACTION_TOTAL: &str = "dm_syncer_finished_transaction_total";
/// `dm_syncer_queue_size`.
pub const QUEUE_SIZE: &str = "dm_syncer_queue_size";
/// `dm_syncer_txn_duration_time`.
pub const TRANSACTION_DURATION: &str = "dm_syncer_txn_duration_time";
/// `dm_syncer_query_duration_time`.
pub const QUERY_DURATION: &str = "dm_syncer_query_duration_time";
/// `dm_syncer_stmt_duration_time`.
pub const STATEMENT_DURATION: &str = "dm_syncer_stmt_duration_time";
/// `dm_syncer_replication_transaction_batch`.
pub const REPLICATION_TRANSACTION_BATCH: &str = "dm_syncer_replication_transaction_batch";
/// `dm_syncer_flush_checkpoints_time_interval`.
pub const FLUSH_CHECKPOINTS_TIME_INTERVAL: &str = "dm_syncer_flush_checkpoints_time_interval";
/// `dm_syncer_ideal_qps`.
pub const IDEAL_QPS: &str = "dm_syncer_ideal_qps";
/// `dm_syncer_exit_with_error_count`.
pub const EXIT_WITH_ERROR_COUNT: &str = "dm_syncer_exit_with_error_count";
/// `dm_syncer_flush_checkpoints_total` (not DM's).
pub const FLUSH_CHECKPOINTS_TOTAL: &str = "dm_syncer_flush_checkpoints_total";

/// Every name exported, DM's and ours.
pub const EXPORTED: [&str; 25] = [
    REPLICATION_LAG_GAUGE,
    REPLICATION_LAG,
    REMAINING_TIME,
    BINLOG_FILE,
    BINLOG_POSITION,
    READ_BINLOG_DURATION,
    BINLOG_EVENT_SIZE,
    BINLOG_EVENT_ROW,
    BINLOG_TRANSFORM_COST,
    DISPATCH_BINLOG_DURATION,
    SKIP_BINLOG_DURATION,
    CONFLICT_DETECT_DURATION,
    ADD_JOB_DURATION,
    ADDED_JOBS_TOTAL,
    FINISHED_JOBS_TOTAL,
    FINISHED_TRANSACTION_TOTAL,
    QUEUE_SIZE,
    TRANSACTION_DURATION,
    QUERY_DURATION,
    STATEMENT_DURATION,
    REPLICATION_TRANSACTION_BATCH,
    FLUSH_CHECKPOINTS_TIME_INTERVAL,
    IDEAL_QPS,
    EXIT_WITH_ERROR_COUNT,
    FLUSH_CHECKPOINTS_TOTAL,
];

/// DM's queue name for DDL jobs (`queueNo` of `ddl` jobs).
const ADMIN_QUEUE: &str = "admin queue";

/// The syncer's metrics: one registry, shared by every clone (give each subtask a clone).
#[derive(Clone)]
pub struct SyncerMetrics {
    registry: Registry,
    /// DM's `worker` label: the DM-worker's name.
    worker: String,
    replication_lag_gauge: GaugeVec,
    replication_lag: HistogramVec,
    remaining_time: GaugeVec,
    binlog_file: GaugeVec,
    binlog_position: GaugeVec,
    read_binlog_duration: HistogramVec,
    binlog_event_size: HistogramVec,
    binlog_event_row: HistogramVec,
    binlog_transform_cost: HistogramVec,
    dispatch_binlog_duration: HistogramVec,
    skip_binlog_duration: HistogramVec,
    conflict_detect_duration: HistogramVec,
    add_job_duration: HistogramVec,
    added_jobs: IntCounterVec,
    finished_jobs: IntCounterVec,
    finished_transactions: IntCounterVec,
    queue_size: IntGaugeVec,
    transaction_duration: HistogramVec,
    query_duration: HistogramVec,
    statement_duration: HistogramVec,
    transaction_batch: HistogramVec,
    flush_interval: HistogramVec,
    ideal_qps: GaugeVec,
    exits_with_error: IntCounterVec,
    flushes: IntCounterVec,
}

impl std::fmt::Debug for SyncerMetrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SyncerMetrics")
    }
}

/// Registers `collector` in `registry` and returns it.
fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// DM's buckets for durations: 5 µs doubling, 25 buckets (up to about 84 s).
fn duration_buckets() -> Result<Vec<f64>, prometheus::Error> {
    prometheus::exponential_buckets(0.000_005, 2.0, 25)
}

impl SyncerMetrics {
    /// A fresh registry with every metric registered, for a standalone syncer (`worker`
    /// label empty).
    pub fn new() -> Result<Self, prometheus::Error> {
        Self::for_worker("")
    }

    /// A fresh registry with every metric registered, for the syncers of the DM-worker named
    /// `worker` (DM's `worker` label).
    pub fn for_worker(worker: impl Into<String>) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, buckets: Vec<f64>, labels: &[&str]| {
            register(
                &registry,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?,
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, GaugeVec::new(Opts::new(name, help), labels)?)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)?,
            )
        };
        let jobs = &[
            "type",
            "task",
            "queueNo",
            "source_id",
            "worker",
            "target_schema",
            "target_table",
        ];
        Ok(SyncerMetrics {
            worker: worker.into(),
            replication_lag_gauge: gauge(
                REPLICATION_LAG_GAUGE,
                "replication lag in seconds between the upstream and the syncer",
                &["task", "source_id", "worker"],
            )?,
            replication_lag: histogram(
                REPLICATION_LAG,
                "replication lag in seconds between the upstream and the syncer",
                prometheus::exponential_buckets(0.5, 2.0, 12)?,
                &["task", "source_id", "worker"],
            )?,
            remaining_time: gauge(
                REMAINING_TIME,
                "seconds left to catch up with the upstream",
                &["task", "source_id", "worker"],
            )?,
            binlog_file: gauge(
                BINLOG_FILE,
                "binlog file sequence number",
                &["node", "task", "source_id"],
            )?,
            binlog_position: gauge(
                BINLOG_POSITION,
                "binlog offset",
                &["node", "task", "source_id"],
            )?,
            read_binlog_duration: histogram(
                READ_BINLOG_DURATION,
                "seconds to read one binlog event from the stream",
                duration_buckets()?,
                &["task", "source_id"],
            )?,
            binlog_event_size: histogram(
                BINLOG_EVENT_SIZE,
                "bytes of a binlog event",
                prometheus::exponential_buckets(16.0, 2.0, 20)?,
                &["task", "worker", "source_id"],
            )?,
            binlog_event_row: histogram(
                BINLOG_EVENT_ROW,
                "rows in a rows event",
                prometheus::linear_buckets(0.0, 100.0, 101)?,
                &["worker", "task", "source_id"],
            )?,
            binlog_transform_cost: histogram(
                BINLOG_TRANSFORM_COST,
                "seconds of a stage of a binlog event's transformation",
                duration_buckets()?,
                &["stage", "task", "worker", "source_id"],
            )?,
            dispatch_binlog_duration: histogram(
                DISPATCH_BINLOG_DURATION,
                "seconds to dispatch the row changes of a rows event to the worker queues",
                duration_buckets()?,
                &["type", "task", "source_id"],
            )?,
            skip_binlog_duration: histogram(
                SKIP_BINLOG_DURATION,
                "seconds from reading an event to deciding to skip it",
                prometheus::exponential_buckets(0.000_000_5, 2.0, 25)?,
                &["type", "task", "source_id"],
            )?,
            conflict_detect_duration: histogram(
                CONFLICT_DETECT_DURATION,
                "seconds a row change waited on a causality conflict",
                duration_buckets()?,
                &["task", "source_id"],
            )?,
            add_job_duration: histogram(
                ADD_JOB_DURATION,
                "seconds a row change waited to enter a full worker queue",
                duration_buckets()?,
                &["type", "task", "queueNo", "source_id"],
            )?,
            added_jobs: counter(
                ADDED_JOBS_TOTAL,
                "row changes dispatched and DDL statements about to run",
                jobs,
            )?,
            finished_jobs: counter(
                FINISHED_JOBS_TOTAL,
                "row changes committed and DDL statements executed",
                jobs,
            )?,
            finished_transactions: counter(
                FINISHED_TRANSACTION_TOTAL,
                "worker transactions committed downstream",
                &["task", "worker", "source_id"],
            )?,
            queue_size: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(QUEUE_SIZE, "changes waiting in a worker queue"),
                    &["task", "queue_id", "source_id"],
                )?,
            )?,
            transaction_duration: histogram(
                TRANSACTION_DURATION,
                "seconds of a downstream transaction",
                duration_buckets()?,
                &["task", "worker", "source_id"],
            )?,
            query_duration: histogram(
                QUERY_DURATION,
                "seconds of a downstream read",
                duration_buckets()?,
                &["task", "worker", "source_id"],
            )?,
            statement_duration: histogram(
                STATEMENT_DURATION,
                "seconds of a statement run on its own",
                duration_buckets()?,
                &["type", "task"],
            )?,
            transaction_batch: histogram(
                REPLICATION_TRANSACTION_BATCH,
                "row changes in a worker transaction",
                prometheus::linear_buckets(1.0, 50.0, 21)?,
                &["worker", "task", "source_id", "queueNo", "type"],
            )?,
            flush_interval: histogram(
                FLUSH_CHECKPOINTS_TIME_INTERVAL,
                "seconds between global checkpoint writes",
                prometheus::linear_buckets(1.0, 50.0, 21)?,
                &["worker", "task", "source_id"],
            )?,
            ideal_qps: gauge(
                IDEAL_QPS,
                "row changes per second the workers reach at the pace of the last transaction",
                &["task", "worker", "source_id"],
            )?,
            exits_with_error: counter(
                EXIT_WITH_ERROR_COUNT,
                "syncer runs ended with an error",
                &["task", "source_id", "resumable_err"],
            )?,
            flushes: counter(
                FLUSH_CHECKPOINTS_TOTAL,
                "global checkpoints written",
                &["task", "source_id"],
            )?,
            registry,
        })
    }

    /// The registry (to merge with an embedding service's own).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// The exit counters of `task` on `source_id`, both series created at 0 (DM's `Add(0)`, so
    /// that a rate over them exists before the first error).
    pub(crate) fn exits(&self, task: &str, source_id: &str) -> ExitCounters {
        ExitCounters {
            resumable: self
                .exits_with_error
                .with_label_values(&[task, source_id, "true"]),
            not_resumable: self
                .exits_with_error
                .with_label_values(&[task, source_id, "false"]),
        }
    }

    /// The event loop's handles for `task` on `source_id` with `queues` worker queues.
    pub(crate) fn event_loop(&self, task: &str, source_id: &str, queues: usize) -> LoopMetrics {
        let worker = self.worker.as_str();
        let task_source = [task, source_id];
        let task_worker_source = [task, worker, source_id];
        let stage = |stage: &str| {
            self.binlog_transform_cost
                .with_label_values(&[stage, task, worker, source_id])
        };
        let dispatch = |kind: &str| {
            self.dispatch_binlog_duration
                .with_label_values(&[kind, task, source_id])
        };
        let queue_names: Vec<String> = (0..queues).map(queue_name).collect();
        let now = Instant::now();
        LoopMetrics {
            read_binlog_duration: self.read_binlog_duration.with_label_values(&task_source),
            binlog_event_size: self
                .binlog_event_size
                .with_label_values(&task_worker_source),
            binlog_event_row: self
                .binlog_event_row
                .with_label_values(&[worker, task, source_id]),
            generate_rows: [
                stage("gen-write-rows"),
                stage("gen-update-rows"),
                stage("gen-delete-rows"),
            ],
            generate_query: stage("gen-query"),
            ddl_execution: stage("ddl-exec"),
            dispatch: [dispatch("insert"), dispatch("update"), dispatch("delete")],
            skip_rows: self
                .skip_binlog_duration
                .with_label_values(&["rows", task, source_id]),
            skip_query: self
                .skip_binlog_duration
                .with_label_values(&["query", task, source_id]),
            conflict_wait: self
                .conflict_detect_duration
                .with_label_values(&task_source),
            add_wait: queue_names
                .iter()
                .map(|queue| {
                    self.add_job_duration
                        .with_label_values(&["dml", task, queue, source_id])
                })
                .collect(),
            query_duration: self.query_duration.with_label_values(&task_worker_source),
            transaction_duration: self
                .transaction_duration
                .with_label_values(&task_worker_source),
            statement_duration: self.statement_duration.with_label_values(&["stmt", task]),
            flush_interval: self
                .flush_interval
                .with_label_values(&[worker, task, source_id]),
            flushes: self.flushes.with_label_values(&task_source),
            replication_lag: self
                .replication_lag
                .with_label_values(&[task, source_id, worker]),
            added: JobCounters::new(self, task, source_id, queue_names.clone(), true),
            finished_ddl: JobCounters::new(self, task, source_id, Vec::new(), false),
            queue_names,
            dispatched: vec![0; queues],
            read_started: now,
            event_read: now,
            last_checkpoint: None,
            metrics: self.clone(),
            task: task.to_owned(),
            source_id: source_id.to_owned(),
        }
    }

    /// The handles of worker queue `queue` (of `queues`) of `task` on `source_id`.
    pub(crate) fn worker(
        &self,
        task: &str,
        source_id: &str,
        queue: usize,
        queues: usize,
    ) -> WorkerMetrics {
        let worker = self.worker.as_str();
        let name = queue_name(queue);
        WorkerMetrics {
            transaction_duration: self
                .transaction_duration
                .with_label_values(&[task, worker, source_id]),
            dml_execution: self
                .binlog_transform_cost
                .with_label_values(&["dml-exec", task, worker, source_id]),
            transaction_rows: self
                .transaction_batch
                .with_label_values(&[worker, task, source_id, &name, "rows"]),
            finished_transactions: self
                .finished_transactions
                .with_label_values(&[task, worker, source_id]),
            ideal_qps: None,
            finished: JobCounters::new(self, task, source_id, vec![name], false),
            queues,
            first_dispatched: None,
            pending: Vec::new(),
            metrics: self.clone(),
            task: task.to_owned(),
            source_id: source_id.to_owned(),
        }
    }
}

/// DM's name of worker queue `queue`.
fn queue_name(queue: usize) -> String {
    format!("q_{queue}")
}

/// What a job is, as DM's `type` label says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    Insert,
    Update,
    Delete,
}

impl JobKind {
    /// The kind of `change`.
    pub(crate) fn of(change: &RowChange) -> JobKind {
        match change.kind() {
            RowChangeKind::Insert { .. } => JobKind::Insert,
            RowChangeKind::Update { .. } => JobKind::Update,
            RowChangeKind::Delete { .. } => JobKind::Delete,
        }
    }

    fn index(self) -> usize {
        match self {
            JobKind::Insert => 0,
            JobKind::Update => 1,
            JobKind::Delete => 2,
        }
    }

    fn label(self) -> &'static str {
        ["insert", "update", "delete"][self.index()]
    }
}

/// `added_jobs_total` or `finished_jobs_total` for one task, with a handle cached per target
/// table, kind and queue (a label lookup happens once per series, not per change).
struct JobCounters {
    counters: IntCounterVec,
    task: String,
    source_id: String,
    worker: String,
    queue_names: Vec<String>,
    /// Target table -> handles by `kind * queues + queue`.
    cache: HashMap<TableRef, Vec<Option<IntCounter>>>,
}

impl JobCounters {
    fn new(
        metrics: &SyncerMetrics,
        task: &str,
        source_id: &str,
        queue_names: Vec<String>,
        added: bool,
    ) -> Self {
        JobCounters {
            counters: if added {
                metrics.added_jobs.clone()
            } else {
                metrics.finished_jobs.clone()
            },
            task: task.to_owned(),
            source_id: source_id.to_owned(),
            worker: metrics.worker.clone(),
            queue_names,
            cache: HashMap::new(),
        }
    }

    /// Counts `count` jobs of `kind` on `table` in queue `queue`.
    fn add(&mut self, table: &TableRef, kind: JobKind, queue: usize, count: u64) {
        let index = kind.index() * self.queue_names.len() + queue;
        if let Some(Some(counter)) = self.cache.get(table).and_then(|slots| slots.get(index)) {
            counter.inc_by(count);
            return;
        }
        let Some(queue_name) = self.queue_names.get(queue) else {
            return;
        };
        let counter = self.counters.with_label_values(&[
            kind.label(),
            &self.task,
            queue_name,
            &self.source_id,
            &self.worker,
            &table.schema,
            &table.table,
        ]);
        counter.inc_by(count);
        let slots = self
            .cache
            .entry(table.clone())
            .or_insert_with(|| vec![None; 3 * self.queue_names.len()]);
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(counter);
        }
    }

    /// Counts one DDL statement on `target` (not cached: DDL is rare).
    fn add_ddl(&self, target: &DdlTarget) {
        let (schema, table) = match target {
            DdlTarget::Schema(schema) => (schema.as_str(), ""),
            DdlTarget::Table(table) => (table.schema.as_str(), table.table.as_str()),
        };
        self.counters
            .with_label_values(&[
                "ddl",
                &self.task,
                ADMIN_QUEUE,
                &self.source_id,
                &self.worker,
                schema,
                table,
            ])
            .inc();
    }
}

/// `dm_syncer_exit_with_error_count` of one task.
pub(crate) struct ExitCounters {
    resumable: IntCounter,
    not_resumable: IntCounter,
}

impl ExitCounters {
    /// The syncer ended with `error`: resumable when its class is transient.
    pub(crate) fn record(&self, error: &impl ClassifiedError) {
        match error.class() {
            ErrorClass::Transient => self.resumable.inc(),
            ErrorClass::Definite | ErrorClass::Bug => self.not_resumable.inc(),
        }
    }
}

/// The event loop's metrics: handles bound to the task's labels, and the instants the timings
/// start from.
pub(crate) struct LoopMetrics {
    metrics: SyncerMetrics,
    task: String,
    source_id: String,
    queue_names: Vec<String>,
    read_binlog_duration: Histogram,
    binlog_event_size: Histogram,
    binlog_event_row: Histogram,
    /// `binlog_transform_cost{stage=gen-write-rows|gen-update-rows|gen-delete-rows}`.
    generate_rows: [Histogram; 3],
    generate_query: Histogram,
    ddl_execution: Histogram,
    /// `dispatch_binlog_duration{type=insert|update|delete}`.
    dispatch: [Histogram; 3],
    skip_rows: Histogram,
    skip_query: Histogram,
    conflict_wait: Histogram,
    /// `add_job_duration{type=dml}` per queue.
    add_wait: Vec<Histogram>,
    query_duration: Histogram,
    transaction_duration: Histogram,
    statement_duration: Histogram,
    flush_interval: Histogram,
    flushes: IntCounter,
    replication_lag: Histogram,
    added: JobCounters,
    /// `finished_jobs_total` of DDL statements.
    finished_ddl: JobCounters,
    /// Changes of the rows event being dispatched, per queue (counted once per event).
    dispatched: Vec<u64>,
    /// When the current read from the stream began.
    read_started: Instant,
    /// When the event being handled was read: where DM's transform and skip timings start.
    event_read: Instant,
    /// When the last global checkpoint was written.
    last_checkpoint: Option<Instant>,
}

impl LoopMetrics {
    /// A read from the stream begins.
    pub(crate) fn reading(&mut self) {
        self.read_started = Instant::now();
    }

    /// An event of `size` bytes was read (`injected`: by an operator, not from the binlog).
    pub(crate) fn read(&mut self, size: u32, injected: bool) {
        let now = Instant::now();
        self.read_binlog_duration
            .observe(now.duration_since(self.read_started).as_secs_f64());
        if !injected {
            self.binlog_event_size.observe(f64::from(size));
        }
        self.event_read = now;
    }

    /// The rows event being handled is skipped (block-allow list, event filter).
    pub(crate) fn skipped_rows(&self) {
        self.skip_rows
            .observe(self.event_read.elapsed().as_secs_f64());
    }

    /// A DDL statement of the event being handled is not replicated.
    pub(crate) fn skipped_query(&self) {
        self.skip_query
            .observe(self.event_read.elapsed().as_secs_f64());
    }

    /// The `rows` row images of the rows event being handled (changes of `kind`) are decoded;
    /// returns the instant their dispatch starts.
    pub(crate) fn decoded(&self, kind: JobKind, rows: usize) -> Instant {
        let now = Instant::now();
        self.binlog_event_row.observe(rows as f64);
        self.generate_rows[kind.index()].observe(now.duration_since(self.event_read).as_secs_f64());
        now
    }

    /// A change of the event being dispatched goes to queue `queue`.
    pub(crate) fn queued(&mut self, queue: usize) {
        if let Some(count) = self.dispatched.get_mut(queue) {
            *count += 1;
        }
    }

    /// The changes of the rows event (of `kind`, into `table`) whose dispatch started at
    /// `started` are all in their queues.
    pub(crate) fn dispatched(&mut self, kind: JobKind, table: &TableRef, started: Instant) {
        self.dispatch[kind.index()].observe(started.elapsed().as_secs_f64());
        for (queue, count) in self.dispatched.iter_mut().enumerate() {
            if *count > 0 {
                self.added.add(table, kind, queue, *count);
                *count = 0;
            }
        }
    }

    /// A change waited from `started` on a causality conflict.
    pub(crate) fn conflict_waited(&self, started: Instant) {
        self.conflict_wait.observe(started.elapsed().as_secs_f64());
    }

    /// A change waited from `started` to enter the full queue `queue`.
    pub(crate) fn add_waited(&self, queue: usize, started: Instant) {
        if let Some(histogram) = self.add_wait.get(queue) {
            histogram.observe(started.elapsed().as_secs_f64());
        }
    }

    /// The DDL event being handled is planned.
    pub(crate) fn planned_query(&self) {
        self.generate_query
            .observe(self.event_read.elapsed().as_secs_f64());
    }

    /// A DDL statement on `target` (downstream) is about to run.
    pub(crate) fn ddl_added(&self, target: &DdlTarget) {
        self.added.add_ddl(target);
    }

    /// A DDL statement's request, started at `started`, succeeded.
    pub(crate) fn ddl_statement_ran(&self, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.statement_duration.observe(seconds);
        self.transaction_duration.observe(seconds);
    }

    /// A DDL statement on `target` (downstream) was executed.
    pub(crate) fn ddl_finished(&self, target: &DdlTarget) {
        self.finished_ddl.add_ddl(target);
    }

    /// The DDL barrier that held from `started` ran its last statement.
    pub(crate) fn ddl_barrier_done(&self, started: Instant) {
        self.ddl_execution.observe(started.elapsed().as_secs_f64());
    }

    /// A downstream read started at `started` answered.
    pub(crate) fn queried(&self, started: Instant) {
        self.query_duration.observe(started.elapsed().as_secs_f64());
    }

    /// The global checkpoint's transaction, started at `started`, committed.
    pub(crate) fn checkpoint_written(&mut self, started: Instant) {
        let now = Instant::now();
        self.transaction_duration
            .observe(now.duration_since(started).as_secs_f64());
        self.flushes.inc();
        if let Some(last) = self.last_checkpoint {
            self.flush_interval
                .observe(now.duration_since(last).as_secs_f64());
        }
        self.last_checkpoint = Some(now);
    }

    /// Sets the gauges from `status`: lag, remaining time, positions, queue lengths.
    pub(crate) fn publish(&self, status: &SyncerStatus) {
        let metrics = &self.metrics;
        let (task, source_id, worker) = (
            self.task.as_str(),
            self.source_id.as_str(),
            metrics.worker.as_str(),
        );
        let lag = status.lag_seconds as f64;
        metrics
            .replication_lag_gauge
            .with_label_values(&[task, source_id, worker])
            .set(lag);
        self.replication_lag.observe(lag);
        if let Some(remaining) = status.remaining_seconds {
            metrics
                .remaining_time
                .with_label_values(&[task, source_id, worker])
                .set(remaining as f64);
        }
        for (node, position) in [
            ("syncer", &status.position),
            ("master", &status.master_position),
        ] {
            if let Some(position) = position {
                let labels = [node, task, source_id];
                metrics
                    .binlog_file
                    .with_label_values(&labels)
                    .set(position.file.sequence() as f64);
                metrics
                    .binlog_position
                    .with_label_values(&labels)
                    .set(position.offset as f64);
            }
        }
        for (queue, length) in self.queue_names.iter().zip(&status.queue_lengths) {
            metrics
                .queue_size
                .with_label_values(&[task, queue, source_id])
                .set(i64::try_from(*length).unwrap_or(i64::MAX));
        }
    }
}

/// One worker's metrics: handles bound to its labels, and the batch being gathered.
pub(crate) struct WorkerMetrics {
    metrics: SyncerMetrics,
    task: String,
    source_id: String,
    transaction_duration: Histogram,
    /// `binlog_transform_cost{stage=dml-exec}`.
    dml_execution: Histogram,
    /// `replication_transaction_batch{type=rows}`.
    transaction_rows: Histogram,
    finished_transactions: IntCounter,
    /// Created at the first transaction (a gauge without a measurement would say 0).
    ideal_qps: Option<Gauge>,
    finished: JobCounters,
    /// How many worker queues the syncer runs (DM's worker count in the ideal QPS).
    queues: usize,
    /// When the batch's first change was dispatched.
    first_dispatched: Option<Instant>,
    /// The batch's changes by target table and kind, in the order first met.
    pending: Vec<(Arc<TableSchema>, JobKind, u64)>,
}

impl WorkerMetrics {
    /// `change`, dispatched at `dispatched`, joins the batch.
    pub(crate) fn pushed(&mut self, change: &RowChange, dispatched: Option<Instant>) {
        if self.first_dispatched.is_none() {
            self.first_dispatched = dispatched;
        }
        let kind = JobKind::of(change);
        match self
            .pending
            .iter_mut()
            .rev()
            .find(|(schema, known, _)| *known == kind && Arc::ptr_eq(schema, change.schema()))
        {
            Some((_, _, count)) => *count += 1,
            None => self.pending.push((change.schema().clone(), kind, 1)),
        }
    }

    /// The batch's transaction, started at `started`, committed `changes` row changes.
    pub(crate) fn committed(&mut self, started: Instant, changes: usize) {
        let now = Instant::now();
        let seconds = now.duration_since(started).as_secs_f64();
        self.transaction_duration.observe(seconds);
        self.transaction_rows.observe(changes as f64);
        self.finished_transactions.inc();
        if let Some(first) = self.first_dispatched.take() {
            self.dml_execution
                .observe(now.duration_since(first).as_secs_f64());
        }
        if changes > 0 && seconds > 0.0 {
            let (task, source_id, worker) = (
                self.task.as_str(),
                self.source_id.as_str(),
                self.metrics.worker.as_str(),
            );
            self.ideal_qps
                .get_or_insert_with(|| {
                    self.metrics
                        .ideal_qps
                        .with_label_values(&[task, worker, source_id])
                })
                .set(self.queues as f64 * changes as f64 / seconds);
        }
        for (schema, kind, count) in self.pending.drain(..) {
            self.finished.add(schema.table(), kind, 0, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{ColumnDefinition, ColumnType, Location, Row, Value};

    /// Every recording path runs (a label count that does not match its vector would panic),
    /// and every exported name is then in the text.
    #[test]
    fn every_name_is_exported_with_its_labels() {
        let metrics = SyncerMetrics::for_worker("worker-1").expect("metrics");
        let exits = metrics.exits("task", "source");
        exits.record(&crate::SyncerError::State("a test".into()));
        let mut event_loop = metrics.event_loop("task", "source", 2);
        event_loop.reading();
        event_loop.read(120, false);
        event_loop.skipped_rows();
        event_loop.skipped_query();
        let started = event_loop.decoded(JobKind::Insert, 3);
        let table = TableRef::new("db", "t");
        event_loop.queued(0);
        event_loop.queued(1);
        event_loop.queued(1);
        event_loop.conflict_waited(started);
        event_loop.add_waited(1, started);
        event_loop.dispatched(JobKind::Insert, &table, started);
        event_loop.queued(1);
        event_loop.dispatched(JobKind::Insert, &table, started);
        event_loop.planned_query();
        let target = DdlTarget::Table(table.clone());
        event_loop.ddl_added(&target);
        event_loop.ddl_statement_ran(started);
        event_loop.ddl_finished(&target);
        event_loop.ddl_barrier_done(started);
        event_loop.queried(started);
        event_loop.checkpoint_written(started);
        event_loop.checkpoint_written(started);
        let position = dm_core::BinlogPosition::parse("mysql-bin.000002:120").expect("position");
        event_loop.publish(&SyncerStatus {
            position: Some(position.clone()),
            master_position: Some(position),
            remaining_seconds: Some(3),
            queue_lengths: vec![1, 0],
            ..SyncerStatus::default()
        });
        let schema = Arc::new(
            TableSchema::new(
                table.clone(),
                vec![ColumnDefinition::new("a", ColumnType::Json, false)],
                Vec::new(),
            )
            .expect("schema"),
        );
        let change = RowChange::new(
            schema,
            RowChangeKind::Insert {
                after: Row::from(vec![Value::Int(1)]),
            },
            Location::from_position(
                dm_core::BinlogPosition::parse("mysql-bin.000001:4").expect("position"),
            ),
            0,
        )
        .expect("change");
        let mut worker = metrics.worker("task", "source", 1, 2);
        worker.pushed(&change, Some(started));
        worker.pushed(&change, Some(Instant::now()));
        worker.committed(started, 2);

        let text = metrics.encode();
        for name in EXPORTED {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        for sample in [
            "dm_syncer_added_jobs_total{queueNo=\"q_1\",source_id=\"source\",target_schema=\"db\",target_table=\"t\",task=\"task\",type=\"insert\",worker=\"worker-1\"} 3",
            "dm_syncer_added_jobs_total{queueNo=\"q_0\",source_id=\"source\",target_schema=\"db\",target_table=\"t\",task=\"task\",type=\"insert\",worker=\"worker-1\"} 1",
            "dm_syncer_finished_jobs_total{queueNo=\"q_1\",source_id=\"source\",target_schema=\"db\",target_table=\"t\",task=\"task\",type=\"insert\",worker=\"worker-1\"} 2",
            "dm_syncer_finished_jobs_total{queueNo=\"admin queue\",source_id=\"source\",target_schema=\"db\",target_table=\"t\",task=\"task\",type=\"ddl\",worker=\"worker-1\"} 1",
            "dm_syncer_exit_with_error_count{resumable_err=\"false\",source_id=\"source\",task=\"task\"} 1",
            "dm_syncer_exit_with_error_count{resumable_err=\"true\",source_id=\"source\",task=\"task\"} 0",
            "dm_syncer_flush_checkpoints_time_interval_count{source_id=\"source\",task=\"task\",worker=\"worker-1\"} 1",
            "dm_syncer_queue_size{queue_id=\"q_0\",source_id=\"source\",task=\"task\"} 1",
            "dm_syncer_replication_transaction_batch_count{queueNo=\"q_1\",source_id=\"source\",task=\"task\",type=\"rows\",worker=\"worker-1\"} 1",
            "dm_syncer_binlog_file{node=\"master\",source_id=\"source\",task=\"task\"} 2",
        ] {
            assert!(text.contains(sample), "{sample} missing:\n{text}");
        }
    }
}
