//! The syncer: one source's binlog applied to the downstream, exactly once, as
//! `docs/design/checkpoint.md` describes.
//!
//! ```text
//! SinkFactory: open_control -> control.load() (stored worker count) -> open_worker x N (each
//!              takes its lock) -> control.load() (checkpoints, tracker's tables, DDL record)
//! StreamController --events--> event loop: filters, routes, SchemaTracker, decode_rows
//!    |                              | row changes: CausalityDetector (deterministic) -> worker w
//!    |                              |        worker w: ChangeBatch (compacted per row, grouped by
//!    |                              |        table and kind when no key repeats, with the sink's
//!    |                              |        table definitions) + its WorkerCheckpoint:
//!    |                              |        Sink::apply_batch, all or nothing
//!    |                              |        <- acknowledgement (w, sequence) -> Watermark
//!    |                              | DDL: drain every worker, track, DdlSink: once, checkpoint
//!    |                              | CheckpointStore::save: global checkpoint at the watermark
//!    +-- resumes at the global checkpoint; changes a worker already committed are not sent again
//! ```
//!
//! [`run`] drives `dm-sink`'s MySQL sinks ([`MySqlSinks`]) from `MySqlSinkOptions`; [`run_with`]
//! drives any [`SinkFactory`] (a change feed, the tests' recording fake): the loop only ever
//! speaks the `dm_core` sink traits.
//!
//! Stopping ([`StopSignal`], module `stop`): the loop selects on the signal while it waits for
//! the next event (at a transaction end for a stop there, anywhere for `Now`), then closes the
//! worker queues and records acknowledgements until every worker is gone (all dispatched work
//! applied; after `Now` only the batches in flight), then writes the global checkpoint at the
//! watermark. Transient failures are retried in place (`retry`) for
//! [`SyncerSettings::retry_transient_for`].
//!
//! Invariants: a worker's checkpoint row commits with its batch; a change is dispatched again
//! after a restart only when its worker's checkpoint is before it; the global checkpoint only
//! names transaction ends before which every change is committed; a DDL runs when every worker
//! is idle, each of its statements at most once across crashes (`ddl_apply`), and the checkpoint
//! is written past it right after (inside a transaction, at the transaction's end).

use std::collections::HashMap;
use std::time::Instant;

use dm_binlog::{BinlogSource, ReconnectPolicy, StreamController};
use dm_causality::CausalityDetector;
use dm_core::{
    ApplyMode, CheckpointStore, DdlSink, Location, Sink, SinkFactory, SourceCheckpoints,
};
use dm_sink::{CheckpointTables, MetaScope, MySqlSinkOptions, MySqlSinks};
use tokio::sync::{mpsc, watch};

use crate::ddl::ServerVersion;
use crate::error::SyncerError;
use crate::tracker::SchemaTracker;
use crate::watermark::Watermark;
use dm_task::InstanceRules;

/// Runs a downstream operation on `$sink`, retrying transient failures (the downstream
/// restarting, a lost connection, a lock wait) with backoff until it succeeds, fails
/// definitely, or has failed for longer than `$limit` (`retry::Retry`).
macro_rules! with_retry {
    ($limit:expr, $sink:expr, $name:ident => $operation:expr) => {{
        let mut retry = $crate::syncer::retry::Retry::new($limit);
        loop {
            let $name = &mut $sink;
            match $operation {
                Ok(value) => break Ok::<_, SyncerError>(value),
                Err(error) => {
                    if !retry.again(error.class()).await {
                        break Err(SyncerError::sink(&error));
                    }
                }
            }
        }
    }};
}

mod ddl_apply;
mod event_loop;
pub mod fault;
pub(crate) mod retry;
mod settings;
mod status;
mod stop;
mod worker;

pub use settings::{SyncerSettings, remote_options, sink_options};
pub use status::{MAX_WARNINGS, SyncerStatus};
pub use stop::{StopRequest, StopSignal};

use event_loop::EventLoop;
use worker::{Ack, Work, WorkerLinks, run_worker};

/// What the event loop needs of its sink: table definitions, DDL and the global checkpoint
/// (a [`SinkFactory`]'s `Control`).
pub(crate) trait ControlSink: Sink + DdlSink + CheckpointStore + 'static {}

impl<Control: Sink + DdlSink + CheckpointStore + 'static> ControlSink for Control {}

/// Runs the syncer until the source ends (a non-following source) or `stop` asks it to stop:
/// a `watch::Receiver<bool>` that turns true, or a `watch::Receiver<StopRequest>` (see
/// [`StopSignal`]). At a transaction end (the next one, or right away when it waits at one for
/// the next event) it applies everything read before it; `Now` it stops reading at once and
/// lets each worker finish only its batch in flight. Either way it writes the global checkpoint
/// before returning. `progress` receives the status every second, at every checkpoint, and
/// once more when it returns an error (with [`SyncerStatus::stopped_at`] when an event caused
/// it).
///
/// The downstream is the MySQL-compatible one `sink_options` reaches, with the checkpoints in
/// the task's meta schema ([`MySqlSinks`]); [`run_with`] takes any sinks.
pub async fn run<Source: BinlogSource>(
    settings: SyncerSettings,
    source: Source,
    start: Location,
    sink_options: MySqlSinkOptions,
    rules: InstanceRules,
    stop: impl Into<StopSignal>,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    let mut options = sink_options;
    if !settings.multiple_rows {
        // DM's `multiple-rows: false`: one row per statement.
        options.max_rows_per_statement = 1;
    }
    let scope = MetaScope {
        tables: CheckpointTables::new(&settings.meta_schema, &settings.task)?,
        source: settings.source_id.clone(),
        flavor: settings.flavor,
    };
    let sinks = MySqlSinks::new(options, scope);
    run_with(settings, source, start, sinks, rules, stop, progress).await
}

/// [`run`] over any sinks: the control sink, one sink per worker and the checkpoints come from
/// `sinks` (see `dm_core::sink` for what a sink promises).
pub async fn run_with<Source: BinlogSource, Sinks: SinkFactory>(
    settings: SyncerSettings,
    source: Source,
    start: Location,
    sinks: Sinks,
    rules: InstanceRules,
    stop: impl Into<StopSignal>,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    let exits = settings
        .metrics
        .as_ref()
        .map(|metrics| metrics.exits(&settings.task, &settings.source_id));
    let result = run_syncer(settings, source, start, sinks, rules, stop.into(), progress).await;
    if let (Some(exits), Err(error)) = (&exits, &result) {
        exits.record(error);
    }
    result
}

/// Loads what `control` stores, retrying transient failures for at most `limit`.
async fn load_checkpoints<Control: ControlSink>(
    control: &mut Control,
    limit: Option<std::time::Duration>,
) -> Result<SourceCheckpoints, SyncerError> {
    use dm_core::ClassifiedError;
    with_retry!(limit, *control, sink => sink.load().await)
}

/// [`run_with`], without the exit metric.
async fn run_syncer<Source: BinlogSource, Sinks: SinkFactory>(
    settings: SyncerSettings,
    source: Source,
    start: Location,
    mut sinks: Sinks,
    rules: InstanceRules,
    stop: StopSignal,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    let mut control = sinks
        .open_control()
        .await
        .map_err(|error| SyncerError::sink(&error))?;
    // The worker count the stored checkpoints were written with wins until a clean restart.
    let workers = load_checkpoints(&mut control, settings.retry_transient_for)
        .await?
        .workers
        .first()
        .map_or(settings.workers.max(1), |row| row.workers.max(1) as usize);
    // Each worker's sink shuts out the sinks of an earlier run (MySQL: a named lock per worker
    // connection). A previous run that crashed may still have a worker transaction executing
    // downstream (sent whole, it runs on without its client); the checkpoints are read only
    // once every worker's sink is open, so nothing old can change them after.
    let mut worker_sinks = Vec::with_capacity(workers);
    for worker in 0..workers {
        worker_sinks.push(
            sinks
                .open_worker(worker, workers)
                .await
                .map_err(|error| SyncerError::sink(&error))?,
        );
    }
    let stored = load_checkpoints(&mut control, settings.retry_transient_for).await?;
    if stored
        .workers
        .iter()
        .any(|row| row.workers as usize != workers)
    {
        return Err(SyncerError::State(format!(
            "the worker checkpoints of source {} disagree on the worker count",
            settings.source_id
        )));
    }
    let mut applied: Vec<Option<(Location, u64)>> = vec![None; workers];
    for row in stored.workers {
        if let Some(slot) = applied.get_mut(row.worker as usize) {
            *slot = Some((row.location, row.row));
        }
    }
    let global = stored.global;
    let safe_until = match &global {
        Some(global) => global.safe_mode_exit.clone(),
        None => settings.safe_mode_until.clone(),
    };
    // The tracker resumes with the structures in force at the checkpoint, stored with it; a
    // DDL statement the previous run was executing is checked when its event comes again.
    let mut tracker = SchemaTracker::new(settings.case_sensitive);
    let mut pending_ddl = None;
    let start = match global {
        Some(global) => {
            tracker.restore_schema_charsets(global.schema_charsets);
            pending_ddl = global.ddl;
            for table in global.tables {
                if let Some(snapshot) = table.snapshot {
                    tracker.restore(snapshot);
                }
            }
            global.location
        }
        None => start,
    };

    let (ack_sender, mut acks) = mpsc::channel::<Ack>(settings.queue_size.max(16));
    let mut queues = Vec::with_capacity(workers);
    let mut handles = WorkerTasks(Vec::with_capacity(workers));
    let mode = if settings.safe_mode {
        ApplyMode::Idempotent
    } else {
        ApplyMode::Exact
    };
    for (worker, sink) in worker_sinks.into_iter().enumerate() {
        // The queues share `queue_size`, but each holds at least one full batch: a worker can
        // only gather what its queue holds, and small batches cost the downstream far more.
        let capacity = (settings.queue_size / workers).max(settings.batch).max(8);
        let (sender, receiver) = mpsc::channel::<Work>(capacity);
        queues.push(sender);
        handles.0.push(tokio::spawn(run_worker(
            worker,
            workers,
            settings.clone(),
            sink,
            mode,
            WorkerLinks {
                queue: receiver,
                acks: ack_sender.clone(),
                stop: stop.clone(),
            },
        )));
    }
    drop(ack_sender);

    let flavor = settings.flavor;
    let metrics = settings
        .metrics
        .as_ref()
        .map(|metrics| metrics.event_loop(&settings.task, &settings.source_id, workers));
    let mut state = EventLoop {
        settings,
        rules,
        control,
        tracker,
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
        server_version: ServerVersion::unknown(flavor),
        pending_ddl,
        metrics,
        stop,
        interrupted: false,
        worker_failed: false,
    };
    // The start is a transaction end: a checkpoint taken before the first one is the start.
    state.watermark.transaction_end(start.clone());
    let policy = ReconnectPolicy {
        give_up_after: state.settings.retry_transient_for,
        ..ReconnectPolicy::default()
    };
    let mut controller = StreamController::new(source, start, policy);
    for (position, operator) in &state.settings.operators {
        controller.set_operator(position.clone(), operator.clone());
    }
    let result = state.run(&mut controller, &mut acks).await;
    // Stop the workers (closing their queues) and wait for them.
    state.queues.clear();
    for handle in std::mem::take(&mut handles.0) {
        let _ = handle.await;
    }
    match result {
        Ok(()) => Ok(state.status),
        Err(error) => {
            // The caller keeps the last status, with where the error stopped the syncer.
            state.progress.send_replace(state.status.clone());
            Err(error)
        }
    }
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
