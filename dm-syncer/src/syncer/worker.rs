//! A DML worker: gathers a batch from its queue (compacted per row, grouped by table and kind
//! when no key repeats), commits it with its own checkpoint row in one downstream transaction,
//! and acknowledges `(worker, sequence)` to the event loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_causality::{BatchPlanner, Compactor, PendingChange, TableKeys};
use dm_core::{ApplyMode, ClassifiedError, ErrorClass, Location, RowChange, TableRef};
use dm_sink::{CheckpointTables, MySqlSink, SinkError, WorkerCheckpoint};
use tokio::sync::mpsc;

use super::SyncerSettings;

pub(super) enum Work {
    Change {
        change: RowChange,
        /// The keys of the change's target table (for compaction and grouping).
        keys: Arc<TableKeys>,
        sequence: u64,
        row: u64,
        /// Write it idempotently (safe mode).
        idempotent: bool,
        /// When its rows event started to be dispatched (`None` without metrics): where DM's
        /// `dml-exec` timing starts.
        dispatched: Option<Instant>,
    },
    /// A DDL changed tables: forget cached downstream structures.
    ForgetTables,
}

pub(super) enum Ack {
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

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_worker(
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
    let mut metrics = settings
        .metrics
        .as_ref()
        .map(|metrics| metrics.worker(&settings.task, &settings.source_id, worker, workers));
    while let Some(first) = queue.recv().await {
        let mut last: Option<(u64, Location, u64)> = None;
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
                    dispatched,
                } => {
                    if let Some(metrics) = &mut metrics {
                        metrics.pushed(&change, dispatched);
                    }
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
                let started = metrics.as_ref().map(|_| Instant::now());
                match sink
                    .apply_marked_changes_with(
                        &batch.changes,
                        &batch.idempotent,
                        std::slice::from_ref(&checkpoint),
                    )
                    .await
                {
                    Ok(()) => {
                        if let (Some(metrics), Some(started)) = (&mut metrics, started) {
                            metrics.committed(started, batch.changes.len());
                        }
                        break;
                    }
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
