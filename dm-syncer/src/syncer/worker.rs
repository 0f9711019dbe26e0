//! The DML workers: [`spawn_workers`] starts one task per worker sink, each with its bounded
//! queue; a worker gathers a batch from its queue (compacted per row, grouped by table and kind
//! when no key repeats), applies it with its own [`WorkerCheckpoint`] through
//! [`Sink::apply_batch`] (all or nothing), and acknowledges `(worker, sequence)` to the event
//! loop.
//!
//! ```text
//! dispatch --Work::Change (bounded queue)--> WorkerBatch: Compactor -> BatchPlanner::group
//!   --> ChangeBatch { changes, the sink's definitions of their tables, WorkerCheckpoint }
//!   --> Sink::apply_batch (transient errors retried with backoff) --> Ack::Done | Ack::Failed
//!   --> acknowledgements (event loop)
//! ```
//!
//! Invariants: the checkpoint a batch carries is the location of the last change *pushed* into
//! it, so a committed batch moves the worker's checkpoint exactly past what it applied; a
//! replayed change (a held table's, shard DDL) moves the checkpoint's replay progress instead,
//! and both are carried from batch to batch (a batch without replayed changes keeps the last
//! progress); safe
//! mode is the `idempotent` flag each change carries, decided once by the event loop
//! (`SafeMode`): the worker passes it on and the compactor obeys it (it only adds idempotence
//! where a merge of its own needs it).
//!
//! Stop `Now` ([`StopSignal`]): a worker finishes the batch in flight (it commits, or fails and
//! rolls back) and takes nothing more from its queue; one waiting to retry a failed batch gives
//! up at once. What it leaves is after its checkpoint, and the next run applies it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use dm_causality::{BatchPlanner, Compactor, PendingChange, TableKeys};
use dm_core::{
    ChangeBatch, ClassifiedError, ErrorReport, Location, ReplayMark, RowChange, Sink, TableRef,
    TableSchema, WorkerCheckpoint,
};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::retry::Retry;
use super::{StopRequest, StopSignal, SyncerSettings};

pub(super) enum Work {
    Change {
        change: RowChange,
        /// The keys of the change's target table (for compaction and grouping).
        keys: Arc<TableKeys>,
        /// The sink's definition of the change's target table, read once by the event loop
        /// (the change's own layout when the sink mirrors the upstream).
        target: Arc<TableSchema>,
        sequence: u64,
        row: u64,
        /// Write it idempotently: safe mode as the event loop decided it for this change
        /// (`SafeMode::idempotent_at`); the worker and the compactor only obey it.
        idempotent: bool,
        /// When its rows event started to be dispatched (`None` without metrics): where DM's
        /// `dml-exec` timing starts.
        dispatched: Option<Instant>,
        /// The hold (its DDL's start) whose replay this change belongs to: it moves the
        /// worker's replay progress, not its own location (shard DDL, `crate::holds`).
        replay: Option<Location>,
    },
}

/// What a worker's checkpoint said when the run started: where its own changes are, and its
/// progress through a replay.
#[derive(Clone, Debug, Default)]
pub(super) struct WorkerStart {
    pub(super) applied: Option<(Location, u64)>,
    pub(super) replayed: Option<ReplayMark>,
}

pub(super) enum Ack {
    /// Worker `worker` committed everything up to `sequence`: `bytes` of row changes.
    Done {
        worker: usize,
        sequence: u64,
        bytes: u64,
    },
    Failed {
        error: ErrorReport,
    },
}

/// What connects a worker to the event loop.
pub(super) struct WorkerLinks {
    /// Its changes, in dispatch order (bounded).
    pub(super) queue: mpsc::Receiver<Work>,
    /// Its acknowledgements.
    pub(super) acks: mpsc::Sender<Ack>,
    /// The caller's stop requests (a worker heeds `Now`).
    pub(super) stop: StopSignal,
}

/// The running workers, as the event loop sees them.
pub(super) struct Workers {
    /// Each worker's queue, in worker order (bounded: see [`spawn_workers`]).
    pub(super) queues: Vec<mpsc::Sender<Work>>,
    /// The acknowledgements of every worker (bounded by `queue_size`, at least 16).
    pub(super) acks: mpsc::Receiver<Ack>,
    /// The tasks, aborted when dropped.
    pub(super) tasks: WorkerTasks,
}

/// Starts one worker task per sink. The queues share `queue_size`, but each holds at least one
/// full batch (and 8 changes): a worker can only gather what its queue holds, and small
/// batches cost the downstream far more. Memory bound per queue: its capacity in changes, and
/// all queues together at most `max_in_flight_bytes` of row images (the event loop's budget).
pub(super) fn spawn_workers<Worker: Sink + 'static>(
    settings: &SyncerSettings,
    sinks: Vec<Worker>,
    starts: Vec<WorkerStart>,
    stop: &StopSignal,
) -> Workers {
    let workers = sinks.len();
    let (ack_sender, acks) = mpsc::channel::<Ack>(settings.queue_size.max(16));
    let mut queues = Vec::with_capacity(workers);
    let mut tasks = WorkerTasks(Vec::with_capacity(workers));
    let mut starts = starts.into_iter();
    for (worker, sink) in sinks.into_iter().enumerate() {
        let start = starts.next().unwrap_or_default();
        let capacity = (settings.queue_size / workers).max(settings.batch).max(8);
        let (sender, receiver) = mpsc::channel::<Work>(capacity);
        queues.push(sender);
        // A named task: its logs carry the syncer's task and source, and its number.
        let span = tracing::info_span!("worker", worker);
        tasks.0.push(tokio::spawn(
            run_worker(
                worker,
                workers,
                settings.clone(),
                sink,
                start,
                WorkerLinks {
                    queue: receiver,
                    acks: ack_sender.clone(),
                    stop: stop.clone(),
                },
            )
            .instrument(span),
        ));
    }
    Workers {
        queues,
        acks,
        tasks,
    }
}

/// The worker tasks: aborted if the syncer is dropped before it stopped them (a crash of the
/// syncer takes its workers with it; their open transactions roll back downstream).
pub(super) struct WorkerTasks(Vec<tokio::task::JoinHandle<()>>);

impl WorkerTasks {
    /// Waits for every worker to end (their queues closed first).
    pub(super) async fn join(mut self) {
        for handle in std::mem::take(&mut self.0) {
            let _ = handle.await;
        }
    }
}

impl Drop for WorkerTasks {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

async fn run_worker<Worker: Sink>(
    worker: usize,
    workers: usize,
    settings: SyncerSettings,
    mut sink: Worker,
    start: WorkerStart,
    links: WorkerLinks,
) {
    let WorkerLinks {
        mut queue,
        acks,
        mut stop,
    } = links;
    let batch_size = settings.batch.max(1);
    let mut batch = WorkerBatch::new(batch_size, settings.compact);
    let mut metrics = settings
        .metrics
        .as_ref()
        .map(|metrics| metrics.worker(&settings.task, &settings.source_id, worker, workers));
    // What the worker's checkpoint says, carried from batch to batch: its own last change
    // (replayed changes do not move it) and its last replayed one.
    let mut own = start.applied;
    let mut replayed = start.replayed;
    while let Some(first) = queue.recv().await {
        if stop.current() == StopRequest::Now {
            return;
        }
        let mut last_sequence: Option<u64> = None;
        let mut next = Some(first);
        while let Some(work) = next.take() {
            match work {
                Work::Change {
                    change,
                    keys,
                    target,
                    sequence,
                    row,
                    idempotent,
                    dispatched,
                    replay,
                } => {
                    if let Some(metrics) = &mut metrics {
                        metrics.pushed(&change, dispatched);
                    }
                    last_sequence = Some(sequence);
                    match replay {
                        None => own = Some((change.location().clone(), row)),
                        Some(held_at) => {
                            // Everything before the hold was committed when it was held.
                            if own.is_none() {
                                own = Some((held_at.clone(), 0));
                            }
                            replayed = Some(ReplayMark {
                                held_at,
                                location: change.location().clone(),
                                row,
                            });
                        }
                    }
                    batch.push(change, keys, target, idempotent);
                    if batch.is_full() {
                        break;
                    }
                }
            }
            next = queue.try_recv().ok();
        }
        if let (Some(sequence), Some((location, row))) = (last_sequence, own.clone()) {
            batch.finish(WorkerCheckpoint {
                source: settings.source_id.clone(),
                worker: worker as u32,
                workers: workers as u32,
                location,
                row,
                replayed: replayed.clone(),
            });
            let mut retry = Retry::new(settings.retry_transient_for);
            loop {
                let started = metrics.as_ref().map(|_| Instant::now());
                let error = match sink.apply_batch(&batch.ready).await {
                    Ok(()) => {
                        if let (Some(metrics), Some(started)) = (&mut metrics, started) {
                            metrics.committed(started, batch.ready.len());
                        }
                        break;
                    }
                    Err(error) => error,
                };
                // Cancel safety: `Retry::again` and `StopSignal::now` are cancel-safe; a stop
                // `Now` during the wait leaves the batch unapplied (rolled back by the sink).
                let again = tokio::select! {
                    again = retry.again(error.class()) => again,
                    _ = stop.now() => return,
                };
                if again {
                    tracing::warn!(%error, code = %error.code(), "a batch failed; retrying");
                } else {
                    let _ = acks
                        .send(Ack::Failed {
                            error: ErrorReport::of(&error),
                        })
                        .await;
                    return;
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
    }
}

/// What a change weighs against `max_in_flight_bytes`.
pub(super) fn change_bytes(change: &RowChange) -> u64 {
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
    /// The sink's definition of each table the batch writes.
    targets: HashMap<TableRef, Arc<TableSchema>>,
    pending: Vec<PendingChange>,
    /// What the sink applies, after [`WorkerBatch::finish`].
    ready: ChangeBatch,
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
            targets: HashMap::new(),
            pending: Vec::with_capacity(capacity),
            ready: ChangeBatch::new(),
        }
    }

    fn is_full(&self) -> bool {
        self.pushed >= self.capacity
    }

    fn push(
        &mut self,
        change: RowChange,
        keys: Arc<TableKeys>,
        target: Arc<TableSchema>,
        idempotent: bool,
    ) {
        self.pushed += 1;
        self.bytes += change_bytes(&change);
        // A table's definition does not change within a batch: a DDL drains every worker first.
        if !self.targets.contains_key(change.table()) {
            self.targets.insert(change.table().clone(), target);
        }
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

    /// Compacts and groups what was pushed into the batch the sink applies, with `checkpoint`.
    fn finish(&mut self, checkpoint: WorkerCheckpoint) {
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
        self.ready.clear();
        for pending in self.pending.drain(..) {
            self.ready.push(pending.change, pending.idempotent);
        }
        for (table, target) in &self.targets {
            self.ready.set_table(table.clone(), target.clone());
        }
        self.ready.set_checkpoint(checkpoint);
    }

    fn clear(&mut self) {
        self.pushed = 0;
        self.bytes = 0;
        self.keys.clear();
        self.targets.clear();
        self.pending.clear();
        self.ready.clear();
    }
}
