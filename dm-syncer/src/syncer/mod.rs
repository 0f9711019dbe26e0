//! The syncer: one source's binlog applied to the downstream, exactly once, as
//! `docs/design/checkpoint.md` describes.
//!
//! ```text
//! resume:  SinkFactory: open_control -> control.load() (stored worker count) -> open_worker x N
//!          (each takes its lock) -> control.load() (checkpoints, tracker's tables, DDL record)
//! worker:  spawn_workers: one task and one bounded queue per worker sink
//! StreamController --events--> event_loop: stop, transaction ends, dispatch by event kind
//!    |     TableMap --> targets: filters per table map; routed target, tracked schema, the
//!    |                  sink's definition per table
//!    |     Rows -----> dispatch: filters, decode_rows, CausalityDetector (deterministic),
//!    |                  byte budget, SafeMode::idempotent_at --> worker w
//!    |                  worker w: ChangeBatch (compacted per row, grouped by table and kind when
//!    |                  no key repeats, with the sink's table definitions) + its
//!    |                  WorkerCheckpoint: Sink::apply_batch, all or nothing
//!    |                  <- acknowledgements (w, sequence) -> Watermark
//!    |     Query ----> ddl_apply: drain every worker, ShardCoordinator::decide (coordination),
//!    |                  track, DdlSink: once, checkpoint (a hold: saved, the table waits)
//!    |     transaction end --> checkpoint: CheckpointStore::save at the watermark (held back
//!    |                  to the holds' floor, crate::holds)
//!    |     resolution (selected while a table is held) --> rewind: reopen at the hold, run the
//!    |                  DDL as resolved, replay its table's rows, go on where the reading was
//!    +-- resumes at the global checkpoint; changes a worker already committed are not sent again
//! ```
//!
//! | module | concern |
//! |---|---|
//! | this one | the entry points ([`run`], [`run_with`], [`run_coordinated`]) and the wiring: resume, restore the coordinator's holds, spawn the workers, build and run the loop, join the workers |
//! | `coordination` | the shard coordinator behind one object-safe seam |
//! | `resume` | opening the sinks in the order that shuts out an earlier run; the stored checkpoints turned into a start (location, worker checkpoints and replay progress, holds, tracker, pending DDL, safe-mode exit) |
//! | `event_loop` | the loop: read, stop, transaction ends, dispatch of each event by its kind |
//! | `targets` | table maps with the filters' decisions; each table's routed target and the sink's definition of it |
//! | `dispatch` | a rows event's changes to the workers: filters, decoding, causality, byte budget, queues |
//! | `safe_mode` | whether a change is written idempotently (and whether a DDL replays a dump), decided in one place |
//! | `acknowledgements` | the workers' acknowledgements and the loop's waits on them |
//! | `checkpoint` | the global checkpoint at the watermark |
//! | `ddl_apply` | Query events: the DDL barrier and its exactly-once execution |
//! | `worker` | the DML workers: batches, compaction, the worker checkpoint, retries |
//! | `settings` | [`SyncerSettings`] and the connections' options from a task |
//! | `status` | [`SyncerStatus`] and the gauges set from it |
//! | `stop` | [`StopRequest`] and [`StopSignal`] |
//! | `retry` | transient failures retried in place |
//! | [`fault`] | pause points in the DDL barrier for crash tests |
//!
//! Metrics are recorded where things happen, through `crate::metrics`.
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
//! is written past it right after (inside a transaction, at the transaction's end); safe mode
//! is decided once per change (`safe_mode`) and travels with it.

use std::collections::HashMap;
use std::time::Instant;

use dm_binlog::{BinlogSource, ReconnectPolicy, StreamController};
use dm_causality::CausalityDetector;
use dm_core::{CheckpointStore, DdlSink, Location, ShardCoordinator, ShardHold, Sink, SinkFactory};
use dm_sink::{CheckpointTables, MetaScope, MySqlSinkOptions, MySqlSinks};
use tokio::sync::watch;
use tracing::Instrument;

use crate::ddl::ServerVersion;
use crate::error::SyncerError;
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
                    tracing::warn!(%error, code = %error.code(), "a downstream operation failed; retrying");
                }
            }
        }
    }};
}

mod acknowledgements;
mod checkpoint;
mod coordination;
mod ddl_apply;
mod dispatch;
mod event_loop;
pub mod fault;
mod resume;
pub(crate) mod retry;
mod safe_mode;
mod settings;
mod status;
mod stop;
mod targets;
mod worker;

pub use settings::{SyncerSettings, remote_options, sink_options};
pub use status::{MAX_WARNINGS, SyncerStatus};
pub use stop::{StopRequest, StopSignal};

use coordination::Coordination;
use event_loop::EventLoop;
use resume::{Resumed, resume};
use safe_mode::SafeMode;
use worker::{Ack, Work, Workers, spawn_workers};

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
/// `sinks` (see `dm_core::sink` for what a sink promises). Every DDL runs as it comes
/// (`dm_core::NoSharding`); [`run_coordinated`] asks a shard coordinator.
pub async fn run_with<Source: BinlogSource, Sinks: SinkFactory>(
    settings: SyncerSettings,
    source: Source,
    start: Location,
    sinks: Sinks,
    rules: InstanceRules,
    stop: impl Into<StopSignal>,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    run_coordinated(
        settings,
        source,
        start,
        sinks,
        rules,
        dm_core::NoSharding,
        stop,
        progress,
    )
    .await
}

/// [`run_with`], asking `coordinator` about every DDL it would run (shard merge): execute it,
/// skip it, or hold its tables until the coordinator resolves it, then replay their rows
/// (`crate::holds`, `docs/design/checkpoint.md`, "Held tables and rewinds").
#[allow(clippy::too_many_arguments)]
pub async fn run_coordinated<
    Source: BinlogSource,
    Sinks: SinkFactory,
    Coordinator: ShardCoordinator + 'static,
>(
    settings: SyncerSettings,
    source: Source,
    start: Location,
    sinks: Sinks,
    rules: InstanceRules,
    coordinator: Coordinator,
    stop: impl Into<StopSignal>,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    let exits = settings
        .metrics
        .as_ref()
        .map(|metrics| metrics.exits(&settings.task, &settings.source_id));
    let span = tracing::info_span!(
        "syncer",
        task = %settings.task,
        source = %settings.source_id
    );
    let result = run_syncer(
        settings,
        source,
        start,
        sinks,
        rules,
        Box::new(coordinator),
        stop.into(),
        progress,
    )
    .instrument(span)
    .await;
    if let (Some(exits), Err(error)) = (&exits, &result) {
        exits.record(error);
    }
    result
}

/// [`run_coordinated`], without the exit metric.
#[allow(clippy::too_many_arguments)]
async fn run_syncer<Source: BinlogSource, Sinks: SinkFactory>(
    settings: SyncerSettings,
    mut source: Source,
    start: Location,
    mut sinks: Sinks,
    rules: InstanceRules,
    mut coordinator: Box<dyn Coordination>,
    stop: StopSignal,
    progress: watch::Sender<SyncerStatus>,
) -> Result<SyncerStatus, SyncerError> {
    let Resumed {
        control,
        worker_sinks,
        start,
        upstream,
        applied,
        worker_starts,
        holds,
        tracker,
        pending_ddl,
        safe_mode_exit,
    } = resume(&mut sinks, &settings, start).await?;
    // The stream opens expecting the server that wrote the checkpoint's file position (a
    // start by position on another one is DM-11014; by GTID set it is not checked).
    source.expect_upstream(upstream.clone());
    // The coordinator learns the holds the checkpoint kept before anything is read.
    let kept: Vec<ShardHold> = holds
        .holds()
        .iter()
        .filter(|hold| !matches!(hold.stage, dm_core::HoldStage::Replayed { .. }))
        .cloned()
        .collect();
    coordinator.restore(&kept).await?;
    let workers = worker_sinks.len();
    let Workers {
        queues,
        mut acks,
        tasks,
    } = spawn_workers(&settings, worker_sinks, worker_starts, &stop);

    let flavor = settings.flavor;
    let started = Instant::now();
    let safe_mode = SafeMode::new(
        settings.safe_mode,
        settings.safe_mode_duration,
        started,
        safe_mode_exit,
    );
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
        safe_mode,
        started,
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
        coordinator,
        holds,
        resolutions: std::collections::VecDeque::new(),
        rewind: None,
        reading: start.clone(),
        transaction_start: start.clone(),
        saved_upstream: upstream.clone(),
        marks_checked_at: None,
    };
    // The start is a transaction end: a checkpoint taken before the first one is the start,
    // still the position of the server that wrote it.
    state.watermark.reading_from(upstream.as_ref());
    state.watermark.transaction_end(start.clone());
    let policy = ReconnectPolicy {
        give_up_after: state.settings.retry_transient_for,
        ..ReconnectPolicy::default()
    };
    tracing::info!(
        start = %start,
        workers,
        holds = state.holds.holds().len(),
        "syncer started"
    );
    let mut controller = StreamController::new(source, state.opening(start), policy);
    for (position, operator) in &state.settings.operators {
        controller.set_operator(position.clone(), operator.clone());
    }
    let result = state.run(&mut controller, &mut acks).await;
    // Stop the workers (closing their queues) and wait for them.
    state.queues.clear();
    tasks.join().await;
    tracing::info!(
        checkpoint = ?state.status.checkpoint.as_ref().map(ToString::to_string),
        rows = state.status.rows_dispatched,
        ddls = state.status.ddls_executed,
        "syncer ended"
    );
    match result {
        Ok(()) => Ok(state.status),
        Err(error) => {
            // The caller keeps the last status, with where the error stopped the syncer.
            state.progress.send_replace(state.status.clone());
            Err(error)
        }
    }
}
