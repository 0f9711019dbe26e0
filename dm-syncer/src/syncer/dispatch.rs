//! Row changes from a rows event to the workers: the filters, decoding with the tracked
//! schema, causality, the byte budget, and the worker queues.
//!
//! ```text
//! Rows event --maps--> block-allow list, event filter (per kind, decided once per map)
//!   --target--> decode_rows (tracked schema) --> RowChange (routed layout, row index)
//!   --> expression filters --> causality keys --> CausalityDetector::route (a conflict waits
//!       for the workers it names) --> (worker, sequence) --> Watermark::assigned
//!       (a held table's rows after its DDL: not decoded, not sent; HoldKeeper decides)
//!   --> already in the worker's checkpoint (or replayed)? acknowledged at once, not sent again
//!       (HoldKeeper::fate: the worker's checkpoint, or its replay progress for a replay)
//!   --> byte budget (wait for acknowledgements) --> SafeMode::idempotent_at
//!   --> Work::Change on the worker's bounded queue
//! ```
//!
//! Invariants: a change goes to a worker only past that worker's stored checkpoint (after a
//! restart, at the same location only rows after the checkpoint's row); changes that share a
//! key go to one worker, in binlog order; at most `max_in_flight_bytes` of changes are
//! dispatched and not acknowledged (or one change, when a single one is larger); whether a
//! change is written idempotently is decided here, once, by
//! [`SafeMode`](super::safe_mode::SafeMode), and carried with it.

use std::time::Instant;

use dm_binlog::{EventLocations, RowsEvent, RowsKind, decode_rows};
use dm_causality::Routing;
use dm_core::{RowChange, RowChangeKind};
use dm_task::filter::{FilterAction, FilterEvent};
use tokio::sync::mpsc;

use crate::error::SyncerError;
use crate::holds::Fate;
use crate::metrics::JobKind;

use super::worker::change_bytes;
use super::{Ack, ControlSink, EventLoop, StopRequest, Work};

impl<Control: ControlSink> EventLoop<Control> {
    /// Dispatches the row changes of `rows` (its upstream `timestamp`, at `locations`);
    /// `first_row` is the row index of its first row.
    pub(super) async fn rows(
        &mut self,
        rows: &RowsEvent,
        timestamp: u32,
        locations: &EventLocations,
        first_row: u64,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let position = || locations.start.position.to_string();
        let rules = &self.rules;
        let Some(mapped) = self.maps.get_mut(&rows.table_id) else {
            return Err(SyncerError::State(format!(
                "rows of table id {} at {} come without their table map",
                rows.table_id,
                position()
            )));
        };
        if !mapped.allowed {
            if let Some(metrics) = &self.metrics {
                metrics.skipped_rows();
            }
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
                if let Some(metrics) = &self.metrics {
                    metrics.skipped_rows();
                }
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
        // A rewind reads up to its held DDL again: everything before it is applied.
        if self.rewind.is_some() {
            return Ok(());
        }
        // A held table's rows after its DDL wait for the replay; a replay's pass skips what is
        // applied already: decided before decoding (the tracker may not describe them). Holds
        // name tables as the tracker does (folded unless case-sensitive).
        let hold_key = (!self.holds.is_empty()).then(|| self.tracker.key(&upstream));
        if let Some(key) = &hold_key
            && let Some(fate) = self.holds.fate_before_decoding(key, &locations.start)
        {
            if fate == Fate::Dropped {
                self.status.rows_events_held += 1;
            }
            return Ok(());
        }
        let target = self.target(&upstream).await?;
        let layout = target.layout.clone();
        let images =
            decode_rows(rows, &map, &target.tracked).map_err(|source| SyncerError::Event {
                position: position(),
                source: Box::new(source),
            })?;
        let commit_ts = u64::from(timestamp);
        let job_kind = match rows.kind {
            RowsKind::Write => JobKind::Insert,
            RowsKind::Update => JobKind::Update,
            RowsKind::Delete => JobKind::Delete,
        };
        let dispatch_started = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.decoded(job_kind, images.len()));
        for (index, images) in images.into_iter().enumerate() {
            let kind = match images {
                (None, Some(after)) => RowChangeKind::Insert { after },
                (Some(before), Some(after)) => RowChangeKind::Update { before, after },
                (Some(before), None) => RowChangeKind::Delete { before },
                (None, None) => continue,
            };
            let row = first_row + u64::try_from(index).unwrap_or(u64::MAX);
            let change = RowChange::new(layout.clone(), kind, locations.start.clone(), commit_ts)
                .map_err(|error| SyncerError::State(error.to_string()))?
                .with_row(row);
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
            let downstream = target.downstream.clone();
            let (worker, sequence) = loop {
                match self.detector.route(&self.keys) {
                    Routing::Assigned { worker, sequence } => break (worker, sequence),
                    Routing::Conflict(conflict) => {
                        let started = self.metrics.as_ref().map(|_| Instant::now());
                        self.wait_for(&conflict.waits, acks).await?;
                        if let (Some(metrics), Some(started)) = (&self.metrics, started) {
                            metrics.conflict_waited(started);
                        }
                    }
                }
            };
            self.watermark.assigned(worker, sequence);
            let fate = self.holds.fate(
                hold_key.as_ref().unwrap_or(&upstream),
                &locations.start,
                row,
                worker,
                self.applied[worker].as_ref(),
            );
            let Fate::Dispatch { replay } = fate else {
                self.status.rows_already_applied += 1;
                self.detector.acknowledge(worker, sequence);
                self.watermark.acknowledge(worker, sequence);
                self.acknowledged[worker] = self.acknowledged[worker].max(sequence);
                continue;
            };
            if replay.is_none() {
                // Past this worker's checkpoint: everything after it is new.
                self.applied[worker] = None;
            }
            self.status.rows_dispatched += 1;
            if let Some(metrics) = &mut self.metrics {
                metrics.queued(worker);
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
            let idempotent = self.safe_mode.idempotent_at(&locations.start);
            // Only an add to a full queue waits: only those are timed.
            let add_started = match &self.metrics {
                Some(_) if self.queues[worker].capacity() == 0 => Some(Instant::now()),
                _ => None,
            };
            let sent = self.queues[worker]
                .send(Work::Change {
                    change,
                    keys,
                    target: downstream,
                    sequence,
                    row,
                    idempotent,
                    dispatched: dispatch_started,
                    replay,
                })
                .await;
            if sent.is_err() {
                self.interrupted = self.stop.current() == StopRequest::Now;
                // A worker that failed said why before it stopped: that error is the one to
                // report (its acknowledgement is queued before its queue closes).
                self.take_acknowledgements(acks)?;
                return Err(SyncerError::State(format!("worker {worker} stopped")));
            }
            if let (Some(metrics), Some(started)) = (&self.metrics, add_started) {
                metrics.add_waited(worker, started);
            }
        }
        if let (Some(metrics), Some(started)) = (&mut self.metrics, dispatch_started) {
            metrics.dispatched(job_kind, layout.table(), started);
        }
        Ok(())
    }
}
