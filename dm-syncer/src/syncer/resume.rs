//! Resuming: the sinks opened in the order that shuts out an earlier run, and what the stored
//! checkpoints say turned into the state the event loop starts from.
//!
//! ```text
//! SinkFactory::open_control --> CheckpointStore::load (the stored worker count)
//!   --> open_worker x N (each takes its lock: an earlier run's workers are gone)
//!   --> CheckpointStore::load again --> Resumed {
//!         start: the global checkpoint's location (or the caller's start, on a fresh start),
//!         upstream: the server that wrote its file position, when stored (the stream is
//!                   opened expecting it: a position start on another server is DM-11014),
//!         applied: each worker's checkpoint (location, row),
//!         tracker: the tables' structures stored with the global checkpoint,
//!         pending_ddl: the DDL statement a crash interrupted,
//!         holds: the shard DDL holds, the workers' replay progress and the earlier DDL
//!                records kept with them (a HoldKeeper),
//!         safe_mode_exit: the stored exit point (or the settings' one, on a fresh start) }
//! ```
//!
//! Invariants: the checkpoints the loop starts from are read only once every worker's sink is
//! open, so nothing of a previous run can change them after (a crashed run's worker
//! transaction may still be executing downstream until its lock is free); the worker count the
//! stored checkpoints were written with wins over the settings until a clean restart, and
//! worker checkpoints that disagree on it stop the run. Transient failures of the loads are
//! retried in place (`retry`); the errors are returned, not logged.

use dm_core::{DdlRecord, Location, SinkFactory, SourceCheckpoints, UpstreamIdentity};

use crate::error::SyncerError;
use crate::holds::HoldKeeper;
use crate::tracker::SchemaTracker;

use super::worker::WorkerStart;
use super::{ControlSink, SyncerSettings};

/// What the event loop starts from, with the sinks it drives.
pub(super) struct Resumed<Control, Worker> {
    /// The control sink (table definitions, DDL, the global checkpoint).
    pub(super) control: Control,
    /// One sink per worker, each holding its lock.
    pub(super) worker_sinks: Vec<Worker>,
    /// Where the stream opens: the global checkpoint, or the caller's start without one.
    pub(super) start: Location,
    /// The upstream server that wrote `start`'s file position, when the checkpoint names it.
    pub(super) upstream: Option<UpstreamIdentity>,
    /// Per worker, where its checkpoint stands: changes at or before it are not sent again.
    pub(super) applied: Vec<Option<(Location, u64)>>,
    /// Per worker, its checkpoint as the worker carries it on (with its replay progress).
    pub(super) worker_starts: Vec<WorkerStart>,
    /// The shard DDL holds and what goes with them.
    pub(super) holds: HoldKeeper,
    /// The tables' structures in force at `start`.
    pub(super) tracker: SchemaTracker,
    /// A DDL statement a crash interrupted, checked when its event comes again.
    pub(super) pending_ddl: Option<DdlRecord>,
    /// Where safe mode for a dump's rows ends (`SafeMode`'s exit point).
    pub(super) safe_mode_exit: Option<Location>,
}

/// Opens the sinks and reads the stored checkpoints (see the module documentation); `start` is
/// where a fresh task begins.
pub(super) async fn resume<Sinks: SinkFactory>(
    sinks: &mut Sinks,
    settings: &SyncerSettings,
    start: Location,
) -> Result<Resumed<Sinks::Control, Sinks::Worker>, SyncerError> {
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
    let mut marks = vec![None; workers];
    for row in stored.workers {
        if let Some(slot) = applied.get_mut(row.worker as usize) {
            *slot = Some((row.location, row.row));
        }
        if let Some(slot) = marks.get_mut(row.worker as usize) {
            *slot = row.replayed;
        }
    }
    let worker_starts = applied
        .iter()
        .zip(&marks)
        .map(|(applied, replayed)| WorkerStart {
            applied: applied.clone(),
            replayed: replayed.clone(),
        })
        .collect();
    let global = stored.global;
    let safe_mode_exit = match &global {
        Some(global) => global.safe_mode_exit.clone(),
        None => settings.safe_mode_until.clone(),
    };
    // The tracker resumes with the structures in force at the checkpoint, stored with it; a
    // DDL statement the previous run was executing is checked when its event comes again.
    let mut tracker = SchemaTracker::new(settings.case_sensitive);
    let mut pending_ddl = None;
    let mut holds = HoldKeeper::default();
    let upstream = global.as_ref().and_then(|global| global.upstream.clone());
    let start = match global {
        Some(global) => {
            tracker.restore_schema_charsets(global.schema_charsets);
            pending_ddl = global.ddl;
            holds = HoldKeeper::restore(global.holds, marks, global.earlier_ddls);
            for table in global.tables {
                if let Some(snapshot) = table.snapshot {
                    tracker.restore(snapshot);
                }
            }
            global.location
        }
        None => start,
    };
    Ok(Resumed {
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
    })
}

/// Loads what `control` stores, retrying transient failures for at most `limit`.
async fn load_checkpoints<Control: ControlSink>(
    control: &mut Control,
    limit: Option<std::time::Duration>,
) -> Result<SourceCheckpoints, SyncerError> {
    use dm_core::ClassifiedError;
    with_retry!(limit, *control, sink => sink.load().await)
}
