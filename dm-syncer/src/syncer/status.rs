//! What the syncer reports: [`SyncerStatus`] (DM's query-status sync fields: lag, remaining
//! time, positions, queue lengths), published every second and at every checkpoint, and the
//! Prometheus gauges set from it (lag, remaining time, positions, queue sizes; the other metrics
//! are recorded where they happen: `crate::metrics`).

use std::time::{Duration, Instant};

use dm_core::Location;

use super::{ControlSink, EventLoop};

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
    /// Rows events of held tables (shard DDL) left for their replay.
    pub rows_events_held: u64,
    /// Tables whose DDL a shard coordinator holds now.
    pub tables_held: u64,
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
    /// Where the event that stopped the syncer with an error starts (an unsupported statement,
    /// a DDL the downstream refused, a filter rule with action `Error`, rows that do not
    /// decode): the position `binlog skip | replace | inject` takes to let it go on. Set only
    /// in the status published with the error; `None` when the error came from elsewhere (a
    /// worker's batch, the connection).
    pub stopped_at: Option<dm_core::BinlogPosition>,
}

/// How many warnings [`SyncerStatus`] keeps.
pub const MAX_WARNINGS: usize = 16;

/// Records a warning once (a repeat moves to the end), keeping the most recent ones.
pub(super) fn warn(status: &mut SyncerStatus, warning: String) {
    status.warnings.retain(|known| *known != warning);
    if status.warnings.len() == MAX_WARNINGS {
        status.warnings.remove(0);
    }
    status.warnings.push(warning);
}

impl<Control: ControlSink> EventLoop<Control> {
    /// Brings the status up to date, updates the metrics, and sends it to `progress`.
    pub(super) async fn publish(&mut self) {
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
        if let Some(metrics) = &self.metrics {
            metrics.publish(&self.status);
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
}
