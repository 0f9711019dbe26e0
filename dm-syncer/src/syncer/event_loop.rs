//! The event loop: reads the stream, keeps table maps and filter decisions per table id,
//! decodes row images with the tracked schema, routes row changes to workers through the
//! causality detector, records acknowledgements and writes the global checkpoint.
//!
//! ```text
//! event --TableMap--> maps (filters decided once per map)
//!       --Rows------> target: tracked schema, layout (routed), the sink's definition
//!                     (Sink::describe_table once per table and DDL; Mirrored: the layout),
//!                     causality keys --> decode --> detector --> worker queue (byte budget)
//!       --Query-----> ddl_apply
//!       --transaction end--> watermark; CheckpointStore::save every checkpoint interval
//! ```
//!
//! Invariants: a change goes to a worker only past that worker's stored checkpoint; at most
//! `max_in_flight_bytes` of changes are dispatched and not acknowledged (or one change, when a
//! single one is larger); the saved checkpoint is a transaction end the watermark reached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_binlog::{
    BinlogSource, ControlledEvent, Event, EventData, EventLocations, QueryStatus, RowsEvent,
    RowsKind, StreamController, TableMap, decode_rows,
};
use dm_causality::{CausalityDetector, Routing, TableKeys};
use dm_core::{
    ClassifiedError, DdlRecord, GlobalCheckpoint, Location, RowChange, RowChangeKind, SinkTable,
    TableCheckpoint, TableRef, TableSchema,
};
use tokio::sync::{mpsc, watch};

use crate::error::SyncerError;
use crate::metrics::{JobKind, LoopMetrics};
use crate::tracker::SchemaTracker;
use crate::watermark::Watermark;
use dm_task::InstanceRules;
use dm_task::filter::{FilterAction, FilterEvent};

use super::status::warn;
use super::worker::change_bytes;
use super::{Ack, ControlSink, StopRequest, StopSignal, SyncerSettings, SyncerStatus, Work};
use crate::ddl::ServerVersion;

/// A table id's current table map, with the filters' decisions about its table.
pub(super) struct MappedTable {
    pub(super) map: Arc<TableMap>,
    pub(super) upstream: Arc<TableRef>,
    /// The block-allow list lets the table through.
    pub(super) allowed: bool,
    /// The binlog event filter's decision (and rule) per rows kind (insert, update, delete),
    /// decided on first use.
    pub(super) decisions: [Option<(FilterAction, Option<String>)>; 3],
}

/// One target table as the event loop uses it.
pub(super) struct Target {
    pub(super) tracked: Arc<TableSchema>,
    pub(super) layout: Arc<TableSchema>,
    pub(super) keys: Arc<TableKeys>,
    /// The sink's definition of the routed table (the layout when the sink mirrors the
    /// upstream), handed to the workers with each change.
    pub(super) downstream: Arc<TableSchema>,
    /// Indexes of the expression filters about this table, their columns checked.
    pub(super) expression_filters: Vec<usize>,
}

pub(super) struct EventLoop<Control: ControlSink> {
    pub(super) settings: SyncerSettings,
    pub(super) rules: InstanceRules,
    /// Table definitions, DDL and the global checkpoint.
    pub(super) control: Control,
    pub(super) tracker: SchemaTracker,
    pub(super) targets: HashMap<TableRef, Target>,
    /// Table id -> the table map and what the filters decided for its table (they do not
    /// change while the task runs, so each is decided once per table map).
    pub(super) maps: HashMap<u64, MappedTable>,
    pub(super) detector: CausalityDetector,
    pub(super) watermark: Watermark,
    pub(super) acknowledged: Vec<u64>,
    pub(super) applied: Vec<Option<(Location, u64)>>,
    pub(super) queues: Vec<mpsc::Sender<Work>>,
    pub(super) status: SyncerStatus,
    pub(super) last_flush: Instant,
    pub(super) keys: Vec<u64>,
    pub(super) progress: watch::Sender<SyncerStatus>,
    /// Upstream timestamp of the last transaction end read.
    pub(super) last_timestamp: u32,
    /// Safe mode until the stream passes this location (the exit point).
    pub(super) safe_until: Option<Location>,
    pub(super) started: Instant,
    pub(super) last_publish: Instant,
    pub(super) last_upstream_check: Option<Instant>,
    /// (bytes of binlog consumed from the first listed file, when), for the pace.
    pub(super) last_consumed: Option<(u64, Instant)>,
    /// Bytes of row changes dispatched and not yet acknowledged.
    pub(super) in_flight_bytes: u64,
    /// The upstream server that wrote the events (from the last FORMAT_DESCRIPTION), whose
    /// executable comments a statement is read by.
    pub(super) server_version: ServerVersion,
    /// A DDL statement a crash interrupted (from the checkpoint), until its event is met again.
    pub(super) pending_ddl: Option<DdlRecord>,
    /// The metrics recorded as events pass, when `settings.metrics` asks for them.
    pub(super) metrics: Option<LoopMetrics>,
    /// The stop requests of the caller.
    pub(super) stop: StopSignal,
    /// A wait for the workers ended because a stop `Now` let them go: the run ends as stopped.
    pub(super) interrupted: bool,
    /// A worker reported a failure (its batch's error, not the event's being handled).
    pub(super) worker_failed: bool,
}

impl<Control: ControlSink> EventLoop<Control> {
    /// Reads and handles events until the source ends or a stop is requested (`stop`), then
    /// lets the workers finish (everything dispatched, or after `Now` only their batches in
    /// flight) and writes the global checkpoint.
    pub(super) async fn run<Source: BinlogSource>(
        &mut self,
        controller: &mut StreamController<Source>,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        // The start is a transaction end.
        let mut at_transaction_end = true;
        let mut stop = self.stop.clone();
        loop {
            self.take_acknowledgements(acks)?;
            if stop.current() == StopRequest::Now {
                break;
            }
            if let Some(metrics) = &mut self.metrics {
                metrics.reading();
            }
            // Cancel safety: `StopSignal::requested` is cancel-safe. `next_event` is not (an
            // event partly read from the connection would be lost), so once the stop branch
            // wins the controller is never read again: this run ends, and the next one opens
            // the stream anew at the global checkpoint.
            let next = tokio::select! {
                biased;
                _ = stop.requested(at_transaction_end) => break,
                next = controller.next_event() => next?,
            };
            let Some(event) = next else {
                break;
            };
            if let Some(metrics) = &mut self.metrics {
                metrics.read(event.event.event.header.event_size, event.event.artificial);
            }
            self.status.events += 1;
            let at_end = event.locations.at_transaction_end;
            let end = event.locations.end.clone();
            let start = event.locations.start.position.clone();
            let timestamp = if event.event.artificial {
                0
            } else {
                event.event.event.header.timestamp
            };
            match self.handle(event, acks).await {
                Ok(()) => {}
                // Stopped now while waiting for the workers: not an error.
                Err(_) if self.interrupted => break,
                Err(error) => {
                    if !self.worker_failed {
                        self.status.stopped_at = Some(start);
                    }
                    return Err(error);
                }
            }
            self.status.position = Some(end.position.clone());
            at_transaction_end = at_end;
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
                if stop.current() != StopRequest::Continue {
                    break;
                }
            }
        }
        self.finish_workers(acks).await?;
        self.flush().await
    }

    /// Closes the worker queues and records every acknowledgement until the workers are gone:
    /// all that was dispatched is applied, or, after a stop `Now`, each worker's batch in
    /// flight.
    async fn finish_workers(&mut self, acks: &mut mpsc::Receiver<Ack>) -> Result<(), SyncerError> {
        self.queues.clear();
        while let Some(ack) = acks.recv().await {
            self.record(ack)?;
        }
        Ok(())
    }

    pub(super) fn take_acknowledgements(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        while let Ok(ack) = acks.try_recv() {
            self.record(ack)?;
        }
        Ok(())
    }

    pub(super) fn record(&mut self, ack: Ack) -> Result<(), SyncerError> {
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
            Ack::Failed { error } => {
                self.worker_failed = true;
                Err(SyncerError::Sink(error))
            }
        }
    }

    pub(super) async fn wait_for(
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
    pub(super) async fn record_next(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let Some(ack) = acks.recv().await else {
            // After a stop `Now` the workers leave what they did not start: waiting for it
            // ends here, and the run ends as stopped.
            self.interrupted = self.stop.current() == StopRequest::Now;
            return Err(SyncerError::State(
                "the workers stopped while changes were in flight".into(),
            ));
        };
        self.record(ack)
    }

    pub(super) async fn drain(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let waits: Vec<(usize, u64)> = self
            .watermark
            .assigned_sequences()
            .iter()
            .copied()
            .enumerate()
            .collect();
        self.wait_for(&waits, acks).await
    }

    /// What the sink knows of `table` now.
    pub(super) async fn downstream_schema(
        &mut self,
        table: &TableRef,
    ) -> Result<SinkTable, SyncerError> {
        with_retry!(self.settings.retry_transient_for, self.control, sink => {
            let started = self.metrics.as_ref().map(|_| Instant::now());
            let schema = sink.describe_table(table).await;
            if let (Some(metrics), Some(started), Ok(_)) = (&self.metrics, started, &schema) {
                metrics.queried(started);
            }
            schema
        })
    }

    pub(super) async fn flush(&mut self) -> Result<(), SyncerError> {
        self.write_checkpoint(None).await
    }

    /// Writes the global checkpoint at the watermark, in one transaction with the tracker's
    /// tables changed since the last write and `pending`, the DDL statement about to run.
    pub(super) async fn write_checkpoint(
        &mut self,
        pending: Option<&DdlRecord>,
    ) -> Result<(), SyncerError> {
        self.publish().await;
        let Some(location) = self.watermark.reached().cloned() else {
            return Ok(());
        };
        // A DDL statement recorded before it ran stays recorded until a checkpoint passes
        // the DDL: until then a restart meets the DDL again and must know what ran.
        if let Some(recorded) = &self.pending_ddl
            && recorded.compare_to(&location) == Some(std::cmp::Ordering::Less)
        {
            self.pending_ddl = None;
        }
        let pending = pending.or(self.pending_ddl.as_ref()).cloned();
        let unsaved = self.tracker.unsaved_tables();
        if self.status.checkpoint.as_ref() == Some(&location)
            && self.safe_until.is_none()
            && pending.is_none()
            && unsaved.is_empty()
            && self.tracker.unsaved_schema_charsets().is_none()
        {
            self.last_flush = Instant::now();
            return Ok(());
        }
        let saved: Vec<TableRef> = unsaved.iter().map(|(table, _)| table.clone()).collect();
        let checkpoint = GlobalCheckpoint {
            source: self.settings.source_id.clone(),
            location: location.clone(),
            safe_mode_exit: self.safe_until.clone(),
            schema_charsets: self.tracker.schema_charsets().clone(),
            ddl: pending,
            tables: unsaved
                .into_iter()
                .map(|(table, snapshot)| TableCheckpoint { table, snapshot })
                .collect(),
        };
        let mut started: Option<Instant>;
        with_retry!(self.settings.retry_transient_for, self.control, sink => {
            started = self.metrics.as_ref().map(|_| Instant::now());
            sink.save(&checkpoint).await
        })?;
        self.tracker.mark_saved(&saved, true);
        self.status.checkpoint = Some(location);
        self.last_flush = Instant::now();
        if let (Some(metrics), Some(started)) = (&mut self.metrics, started) {
            metrics.checkpoint_written(started);
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
            // A MySQL 8 compressed transaction: its events are applied one by one, all at the
            // payload's location; a change's row index carries the event's index in the payload
            // so that a worker checkpoint inside the payload stays exact.
            EventData::TransactionPayload { events, .. } => {
                for (index, inner) in events.iter().enumerate() {
                    let ordinal = u64::try_from(index).unwrap_or(u64::MAX);
                    self.handle_event(inner, &event.locations, ordinal << 32, true, acks)
                        .await?;
                }
                Ok(())
            }
            _ => {
                self.handle_event(&event.event.event, &event.locations, 0, false, acks)
                    .await
            }
        }
    }

    /// Handles one event at `locations`; `first_row` is the row index of its first row
    /// (non-zero inside a transaction payload).
    async fn handle_event(
        &mut self,
        event: &Event,
        locations: &EventLocations,
        first_row: u64,
        in_payload: bool,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        match &event.data {
            // MariaDB and MySQL repeat the map before every rows event: keep the entry (and its
            // decisions) while the map is the same.
            EventData::TableMap(map)
                if self
                    .maps
                    .get(&map.table_id)
                    .is_none_or(|known| *known.map != *map) =>
            {
                let upstream = Arc::new(TableRef::new(map.schema.clone(), map.table.clone()));
                // An online schema change tool's table: not replicated as one (yet).
                if let Some(reason) = self.rules.online_ddl_stop(&upstream) {
                    return Err(SyncerError::OnlineDdlTable {
                        position: locations.start.position.to_string(),
                        reason,
                    });
                }
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
            EventData::Rows(rows) => {
                self.rows(rows, event.header.timestamp, locations, first_row, acks)
                    .await?
            }
            EventData::FormatDescription(format) => {
                self.server_version =
                    ServerVersion::parse(self.settings.flavor, &format.server_version);
            }
            EventData::Query {
                schema,
                sql,
                status_variables,
                ..
            } => {
                let text = String::from_utf8_lossy(sql);
                let sql_mode = QueryStatus::parse(status_variables).sql_mode;
                self.query(locations, schema, &text, sql_mode, in_payload, acks)
                    .await?;
            }
            // MariaDB writes an XA transaction's start in its GTID event (flag FL_PREPARED_XA,
            // 64); MySQL writes an `XA START` query (read in `query`).
            EventData::MariaDbGtid { flags, .. } if flags & 64 != 0 => {
                return Err(SyncerError::Unsupported {
                    position: locations.start.position.to_string(),
                    what: "an XA transaction starts here: its rows arrive before its XA COMMIT or XA ROLLBACK (a later event group), and replicating XA transactions is not supported yet; copy the tables it changes again once it ended upstream, then skip this event group with the binlog operator".into(),
                });
            }
            EventData::Undecoded if carries_changes(event.header.event_type) => {
                return Err(SyncerError::Unsupported {
                    position: locations.start.position.to_string(),
                    what: format!(
                        "a {} event carries changes that cannot be applied exactly (statement-based LOAD DATA, pre-GA rows, an incident the upstream logged, or the prepare of an XA transaction): re-copy the affected tables, then skip the event with the binlog operator",
                        dm_binlog::event_type_name(event.header.event_type)
                    ),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Seeds the tracker with `upstream`'s structure from its routed downstream table (DM
    /// does the same for tables created before the start, as after a full load); `Ok(false)`
    /// when the downstream table does not exist.
    pub(super) async fn seed_from_downstream(
        &mut self,
        upstream: &TableRef,
    ) -> Result<bool, SyncerError> {
        let routed = self.rules.router.route(upstream)?;
        let SinkTable::Defined(schema) = self.downstream_schema(&routed).await? else {
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
                    return Err(SyncerError::MissingTable {
                        table: upstream.to_string(),
                        downstream: routed.to_string(),
                        detail: " (or the sink keeps no structure of it), and no CREATE TABLE for it was replayed".into(),
                    });
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
            let layout = Arc::new(
                TableSchema::new(
                    routed.clone(),
                    tracked.columns().to_vec(),
                    tracked.keys().to_vec(),
                )
                .map_err(|error| SyncerError::State(error.to_string()))?,
            );
            let downstream = match self.downstream_schema(&routed).await? {
                SinkTable::Defined(schema) => Arc::new(schema),
                SinkTable::Mirrored => layout.clone(),
                SinkTable::Missing => {
                    return Err(SyncerError::MissingTable {
                        table: upstream.to_string(),
                        downstream: routed.to_string(),
                        detail: String::new(),
                    });
                }
            };
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
                    downstream,
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
            let committed = self.applied[worker]
                .as_ref()
                .is_some_and(
                    |(location, last_row)| match locations.start.compare(location) {
                        Some(std::cmp::Ordering::Less) => true,
                        Some(std::cmp::Ordering::Equal) => row <= *last_row,
                        _ => false,
                    },
                );
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
            let idempotent = self.settings.safe_mode
                || self
                    .settings
                    .safe_mode_duration
                    .is_some_and(|duration| self.started.elapsed() < duration)
                || self.safe_until.as_ref().is_some_and(|exit| {
                    locations.start.compare(exit) == Some(std::cmp::Ordering::Less)
                });
            // Only an add to a full queue waits: only those are timed.
            let add_started = match &self.metrics {
                Some(_) if self.queues[worker].capacity() == 0 => Some(Instant::now()),
                _ => None,
            };
            self.queues[worker]
                .send(Work::Change {
                    change,
                    keys,
                    target: downstream,
                    sequence,
                    row,
                    idempotent,
                    dispatched: dispatch_started,
                })
                .await
                .map_err(|_| {
                    self.interrupted = self.stop.current() == StopRequest::Now;
                    SyncerError::State(format!("worker {worker} stopped"))
                })?;
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

/// Event types the decoder keeps undecoded that nevertheless change data (or say that changes
/// are missing): meeting one is an error, never a skip.
fn carries_changes(event_type: u8) -> bool {
    matches!(
        event_type,
        // LOAD, SLAVE, CREATE_FILE, APPEND_BLOCK, EXEC_LOAD, DELETE_FILE, NEW_LOAD: statement LOAD DATA
        6..=12
            // BEGIN_LOAD_QUERY, EXECUTE_LOAD_QUERY: statement LOAD DATA (5.0.3+)
            | 17
            | 18
            // PRE_GA_WRITE/UPDATE/DELETE_ROWS (5.1.0-5.1.15)
            | 20..=22
            // INCIDENT: the upstream lost changes here
            | 26
            // XA_PREPARE: the end of an XA transaction's rows, whose outcome comes later
            | 38
    )
}
