//! The event loop: reads the stream, stops where it is asked to, marks transaction ends, and
//! hands each event to the part that handles its kind.
//!
//! ```text
//! StreamController --next_event--> EventLoop::run (select: the stop signal / the next event)
//!   --> handle: TransactionPayload (MySQL 8): each inner event at the payload's location
//!       --> handle_event: TableMap ------------------> targets (maps, filters decided once)
//!                         Rows ----------------------> dispatch (decode, causality, workers)
//!                         Query ---------------------> ddl_apply (the DDL barrier)
//!                         FormatDescription ---------> the server version statements are read by
//!                         XA start, undecoded changes -> an error with the event's position
//!   --> after each event: a replay that reached its end ends (drain, HoldKeeper::passed);
//!       read in order: SafeMode::passed; at a transaction end: Watermark::transaction_end,
//!       the global checkpoint every checkpoint interval (checkpoint), the status every second
//!   --> at a transaction end, while a table is held: the coordinator's resolution (selected
//!       beside the stream, which is reopened where it waited); when HoldKeeper::may_rewind:
//!       drain, reopen the stream at the hold's reopen point (a rewind; ddl_apply runs the
//!       held DDL as resolved and the replay starts)
//!   --> at the end: finish the workers (acknowledgements), write the global checkpoint
//! ```
//!
//! Invariants: the stream is never read again once the stop branch of the select won (an
//! event partly read would be lost; the next run opens the stream anew at the global
//! checkpoint); a stop at a transaction end is honoured only there; an error is returned with
//! the position of the event that caused it, unless a worker's batch failed; a wait for the
//! workers that a stop `Now` cut short ends the run as stopped, not failed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use dm_binlog::{
    BinlogSource, ControlledEvent, Event, EventData, EventLocations, QueryStatus, StreamController,
};
use dm_causality::CausalityDetector;
use dm_core::{DdlRecord, HoldStage, Location, ShardResolution, TableRef, UpstreamIdentity};
use tokio::sync::{mpsc, watch};

use crate::ddl::ServerVersion;
use crate::error::SyncerError;
use crate::holds::HoldKeeper;
use crate::metrics::LoopMetrics;
use crate::tracker::SchemaTracker;
use crate::watermark::Watermark;
use dm_task::InstanceRules;

use super::coordination::Coordination;
use super::safe_mode::SafeMode;
use super::targets::{MappedTable, Target};
use super::{Ack, ControlSink, StopRequest, StopSignal, SyncerSettings, SyncerStatus, Work};

/// The event loop's state: what it knows of the tables, the workers' progress, and what it
/// reports.
pub(super) struct EventLoop<Control: ControlSink> {
    /// How the syncer runs.
    pub(super) settings: SyncerSettings,
    /// The block-allow list, routes, event filter and expression filters of this source.
    pub(super) rules: InstanceRules,
    /// Table definitions, DDL and the global checkpoint.
    pub(super) control: Control,
    /// Each upstream table's structure at the current position.
    pub(super) tracker: SchemaTracker,
    /// Upstream table -> its routed target (`targets`), rebuilt when its tracked schema changes.
    pub(super) targets: HashMap<TableRef, Target>,
    /// Table id -> the table map and what the filters decided for its table (they do not
    /// change while the task runs, so each is decided once per table map).
    pub(super) maps: HashMap<u64, MappedTable>,
    /// Assigns each change a worker and a sequence, so that changes to one row stay in order.
    pub(super) detector: CausalityDetector,
    /// The last transaction end before which every change is acknowledged.
    pub(super) watermark: Watermark,
    /// Per worker, the highest sequence it acknowledged (what waits compare against).
    pub(super) acknowledged: Vec<u64>,
    /// Per worker, its stored checkpoint (location, row) until a change passes it: changes at
    /// or before it were committed by an earlier run and are not sent again.
    pub(super) applied: Vec<Option<(Location, u64)>>,
    /// Each worker's bounded queue; cleared to stop the workers.
    pub(super) queues: Vec<mpsc::Sender<Work>>,
    /// What the syncer did, published to `progress`.
    pub(super) status: SyncerStatus,
    /// When the global checkpoint was last written (or found current).
    pub(super) last_flush: Instant,
    /// The causality keys of the change being dispatched (reused, not reallocated).
    pub(super) keys: Vec<u64>,
    /// Where the status goes.
    pub(super) progress: watch::Sender<SyncerStatus>,
    /// Upstream timestamp of the last transaction end read.
    pub(super) last_timestamp: u32,
    /// Whether each change is written idempotently, and the exit point the checkpoint keeps.
    pub(super) safe_mode: SafeMode,
    /// When this run started (the rows per second).
    pub(super) started: Instant,
    /// When the status was last published (every second).
    pub(super) last_publish: Instant,
    /// When the upstream's binlog files were last listed (every 5 s), for the remaining time.
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
    /// The shard DDL coordinator (`dm_core::NoSharding` without shard merge).
    pub(super) coordinator: Box<dyn Coordination>,
    /// The shard DDL holds and what follows from them (`crate::holds`).
    pub(super) holds: HoldKeeper,
    /// Resolutions received, each waiting until its rewind may start.
    pub(super) resolutions: VecDeque<ShardResolution>,
    /// A rewind under way, until its held DDL is met again: the resolution, and where the
    /// reading was (the replay's end).
    pub(super) rewind: Option<(ShardResolution, Location)>,
    /// The last transaction end read in order (a replay reads behind it).
    pub(super) reading: Location,
    /// The last transaction end read (in order or not): where the event group being read
    /// starts, a held DDL's reopen point.
    pub(super) transaction_start: Location,
    /// The upstream server named by the last global checkpoint saved (or loaded): what a
    /// checkpoint held back to a shard hold's floor keeps naming (`checkpoint`).
    pub(super) saved_upstream: Option<UpstreamIdentity>,
    /// The stream's open (its reconnect count) whose server the workers' stored checkpoints
    /// were last checked against ([`EventLoop::check_marks_server`]).
    pub(super) marks_checked_at: Option<u64>,
}

impl<Control: ControlSink> EventLoop<Control> {
    /// After a stream opened: when the workers' stored checkpoints that are not passed yet
    /// were written while reading another server than `reading` (a failover by GTID set), their
    /// file positions cannot be compared with this server's. Each then covers only the
    /// transactions before its own, and those transactions, applied in part, are written again
    /// idempotently (keyed tables end exact; a table without a key may get a row again, as in
    /// DM's safe mode).
    pub(super) fn check_marks_server(&mut self, reading: Option<&UpstreamIdentity>) {
        let (Some(saved), Some(reading)) = (&self.saved_upstream, reading) else {
            return;
        };
        if saved.same_server(reading) || self.applied.iter().all(Option::is_none) {
            return;
        }
        let mut furthest: Option<std::sync::Arc<dm_core::GtidSet>> = None;
        for (location, _) in self.applied.iter().flatten() {
            if let Some(set) = &location.gtid_set
                && furthest.as_ref().is_none_or(|best| {
                    set.as_ref().partial_cmp(best.as_ref()) == Some(std::cmp::Ordering::Greater)
                })
            {
                furthest = Some(set.clone());
            }
        }
        tracing::warn!(
            written_while_reading = %saved,
            reading = %reading,
            replayed_through = furthest.as_ref().map(ToString::to_string),
            "the workers' checkpoints were written while reading another server: the \
             transactions they applied in part are written again, idempotently"
        );
        self.holds.compare_marks_by_transaction_only();
        if let Some(furthest) = furthest {
            self.safe_mode.replay_transactions_through(furthest);
        }
    }

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
            if at_transaction_end {
                match self.start_rewind(controller, acks).await {
                    Ok(()) => {}
                    // Stopped now while draining for the rewind: not an error.
                    Err(_) if self.interrupted => break,
                    Err(error) => return Err(error),
                }
            }
            if let Some(metrics) = &mut self.metrics {
                metrics.reading();
            }
            // A resolution is awaited only at a transaction end read in order, while a table
            // is held.
            let awaiting_resolution = at_transaction_end
                && self.rewind.is_none()
                && self.holds.live().is_none()
                && self.holds.any_held();
            // Cancel safety: `StopSignal::requested` and the coordinator's `next_resolution`
            // are cancel-safe. `next_event` is not (an event partly read from the connection
            // would be lost): once the stop branch wins the controller is never read again
            // (this run ends, and the next one opens the stream anew at the global
            // checkpoint), and once a resolution wins the stream is reopened at the
            // transaction end it waited at.
            let next = tokio::select! {
                biased;
                _ = stop.requested(at_transaction_end) => break,
                // An async block: the coordinator's future is only made when awaited.
                resolution = async { self.coordinator.next_resolution().await },
                    if awaiting_resolution =>
                {
                    let here = controller.transaction_end().clone();
                    self.reopen(controller, here);
                    self.resolutions.push_back(resolution?);
                    continue;
                }
                next = controller.next_event() => next?,
            };
            let Some(event) = next else {
                break;
            };
            // The transaction ends from here are the binlog positions of the server the
            // stream opened on (after a reopen by GTID set, possibly another one).
            self.watermark
                .reading_from(controller.source().upstream_identity());
            if self.marks_checked_at != Some(controller.reconnects()) {
                self.marks_checked_at = Some(controller.reconnects());
                self.check_marks_server(controller.source().upstream_identity());
            }
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
            // A replay reads behind the reading: the watermark and the position stay.
            let in_order = self.rewind.is_none() && self.holds.live().is_none();
            if let Some((resolution, _)) = &self.rewind
                && event.locations.start.compare(&resolution.held_at)
                    == Some(std::cmp::Ordering::Greater)
            {
                return Err(SyncerError::State(format!(
                    "the stream reopened for the resolution of {} did not meet its held DDL at {} again (it reached {}): restart the task; if this repeats, report it with the binlog operators set near that position",
                    resolution.table, resolution.held_at, event.locations.start
                )));
            }
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
            at_transaction_end = at_end;
            if at_end {
                self.transaction_start = end.clone();
            }
            if self.holds.replay_ends(&end) {
                // The replayed rows are committed before their table stops holding the
                // checkpoint back.
                match self.drain(acks).await {
                    Ok(()) => {}
                    Err(_) if self.interrupted => break,
                    Err(error) => return Err(error),
                }
                self.holds.passed(&end);
                tracing::info!(position = %end, "a replay of a held table ended");
                self.flush().await?;
            }
            if !in_order {
                if at_end && stop.current() != StopRequest::Continue {
                    break;
                }
                continue;
            }
            self.status.position = Some(end.position.clone());
            // Past the exit point: exact writes from here; the checkpoint forgets it.
            self.safe_mode.passed(&end);
            if at_end {
                self.status.transactions += u64::from(timestamp > 0);
                self.reading = end.clone();
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

    /// Starts the rewind of a resolution that may start now (at a transaction end read in
    /// order): drains the workers and reopens the stream at the hold's reopen point; the held
    /// DDL, met again, runs as resolved (`ddl_apply`), and its table's rows are replayed up to
    /// where the reading was. A resolution of a hold no longer held is dropped.
    async fn start_rewind<Source: BinlogSource>(
        &mut self,
        controller: &mut StreamController<Source>,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        if self.rewind.is_some() || self.holds.live().is_some() {
            return Ok(());
        }
        while let Some(resolution) = self.resolutions.front() {
            let table = self.tracker.key(&resolution.table);
            let reopen = match self.holds.hold_at(&table, &resolution.held_at) {
                Some(hold) if hold.stage == HoldStage::Held => hold.reopen_at.clone(),
                _ => {
                    let reason = format!(
                        "the shard coordinator resolved {} at {}, which is not held here (resolved before, or named differently): ignored",
                        resolution.table, resolution.held_at
                    );
                    tracing::warn!("{reason}");
                    super::status::warn(&mut self.status, reason);
                    self.resolutions.pop_front();
                    continue;
                }
            };
            if !self.holds.may_rewind(
                &resolution.held_at,
                &self.reading,
                &self.applied,
                self.pending_ddl.as_ref(),
            ) {
                return Ok(());
            }
            let Some(resolution) = self.resolutions.pop_front() else {
                return Ok(());
            };
            self.drain(acks).await?;
            tracing::info!(
                table = %resolution.table,
                reopen = %reopen,
                until = %self.reading,
                "rewinding the stream for a resolved hold"
            );
            self.reopen(controller, reopen);
            self.rewind = Some((resolution, self.reading.clone()));
            return Ok(());
        }
        Ok(())
    }

    /// Where the stream opens for `location`: by its GTID set, or by file and position only
    /// when the source asks for positions (`SyncerSettings::resume_by_gtid`).
    pub(super) fn opening(&self, location: Location) -> Location {
        if self.settings.resume_by_gtid {
            location
        } else {
            Location {
                gtid_set: None,
                ..location
            }
        }
    }

    /// Reopens the stream at `start`, with the task's binlog operators set again (an operator
    /// is used up when applied; a rewind meets its events again and must treat them alike).
    fn reopen<Source: BinlogSource>(
        &self,
        controller: &mut StreamController<Source>,
        start: Location,
    ) {
        controller.reset(self.opening(start));
        for (position, operator) in &self.settings.operators {
            controller.set_operator(position.clone(), operator.clone());
        }
    }

    /// Handles one event as read from the stream (a compressed payload: each event inside it).
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
            EventData::TableMap(map) => self.map_table(map, locations)?,
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
