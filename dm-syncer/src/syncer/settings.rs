//! How the syncer runs: [`SyncerSettings`], with DM's defaults and read from a task file.

use std::time::Duration;

use dm_core::{Flavor, Location};

/// How the syncer runs.
#[derive(Debug, Clone)]
pub struct SyncerSettings {
    /// The task's name (names the checkpoint tables).
    pub task: String,
    /// The source's id.
    pub source_id: String,
    /// The downstream schema of the checkpoint tables.
    pub meta_schema: String,
    /// Parallel DML workers.
    pub workers: usize,
    /// Changes per worker transaction.
    pub batch: usize,
    /// Capacity of each worker's queue.
    pub queue_size: usize,
    /// At most this many bytes of row changes (by `Row::approximate_size`) are dispatched and not
    /// yet committed, whatever the row widths: with the queue sizes, what bounds the syncer's
    /// memory (the event loop waits for commits before dispatching more).
    pub max_in_flight_bytes: usize,
    /// The upstream's flavour (for reading GTID sets back from checkpoints).
    pub flavor: Flavor,
    /// How often the global checkpoint is written.
    pub checkpoint_interval: Duration,
    /// Write every change idempotently (DM's `safe-mode: true`; not needed for exactly once).
    pub safe_mode: bool,
    /// Merge the changes of one row within a worker transaction and group the rest by table and
    /// kind into multi-row statements (DM's `compact`; on unless the task says `compact: false`).
    pub compact: bool,
    /// Whether table names are case-sensitive.
    pub case_sensitive: bool,
    /// Where to export metrics (DM's names), if anywhere.
    pub metrics: Option<crate::metrics::SyncerMetrics>,
    /// The upstream, for the remaining-time estimate and the master position (`SHOW BINARY
    /// LOGS`, every few seconds); `None` leaves them unknown.
    pub upstream: Option<dm_binlog::RemoteOptions>,
    /// Write idempotently (safe mode) until the stream passes this location, when the task has no
    /// checkpoint yet: the safe-mode exit point a dump without a consistent snapshot hands over.
    /// A checkpoint's own exit point wins.
    pub safe_mode_until: Option<Location>,
    /// `binlog skip | replace | inject` operators: the event starting at each position is
    /// skipped, replaced or preceded (DM's answer to a statement that stops the task).
    pub operators: Vec<(dm_core::BinlogPosition, dm_binlog::Operator)>,
}

impl SyncerSettings {
    /// Settings for `task` and `source_id` with DM's defaults (`dm_meta`, 16 workers, batch
    /// 100, checkpoints every 30 s), a MariaDB upstream, case-sensitive names, no safe mode,
    /// metrics or operators; change the fields that differ.
    pub fn new(task: impl Into<String>, source_id: impl Into<String>) -> Self {
        SyncerSettings {
            task: task.into(),
            source_id: source_id.into(),
            meta_schema: "dm_meta".into(),
            workers: 16,
            batch: 100,
            queue_size: 1024,
            max_in_flight_bytes: 64 << 20,
            flavor: Flavor::MariaDb,
            checkpoint_interval: Duration::from_secs(30),
            safe_mode: false,
            compact: true,
            case_sensitive: true,
            metrics: None,
            upstream: None,
            safe_mode_until: None,
            operators: Vec::new(),
        }
    }
}

impl SyncerSettings {
    /// The settings of `instance` of `task`: its `syncers` section (`worker-count`, `batch`,
    /// `queue-size`, `checkpoint-flush-interval`, `safe-mode`, `compact`), `meta-schema` and
    /// `case-sensitive`; the rest as [`SyncerSettings::new`].
    pub fn from_task(
        task: &crate::config::TaskConfig,
        instance: &crate::config::InstanceConfig,
        flavor: Flavor,
    ) -> Self {
        let syncer = task.syncer_for(instance);
        SyncerSettings {
            meta_schema: task.meta_schema.clone(),
            workers: syncer.worker_count,
            batch: syncer.batch,
            queue_size: syncer.queue_size,
            flavor,
            checkpoint_interval: Duration::from_secs(syncer.checkpoint_flush_interval.max(1)),
            safe_mode: syncer.safe_mode,
            compact: syncer.compact.unwrap_or(true),
            case_sensitive: task.case_sensitive,
            ..SyncerSettings::new(&task.name, &instance.source_id)
        }
    }
}
