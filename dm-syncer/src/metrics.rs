//! Prometheus metrics of the syncer, with DM's names and labels, so that DM's dashboards and
//! alert rules keep working.
//!
//! ```text
//! event loop --publish()--> SyncerMetrics (prometheus Registry) --encode()--> /metrics text
//! ```
//!
//! | metric | meaning |
//! |---|---|
//! | `dm_syncer_replication_lag_gauge{task,source_id}` | seconds between now and the upstream timestamp of the last transaction read |
//! | `dm_syncer_remaining_time{task,source_id}` | seconds to catch up: binlog bytes left / bytes per second recently consumed |
//! | `dm_syncer_binlog_file{node,task,source_id}` | binlog file sequence number (`node` = `syncer` or `master`) |
//! | `dm_syncer_binlog_pos{node,task,source_id}` | binlog offset (`node` = `syncer` or `master`) |
//! | `dm_syncer_added_jobs_total{type,task,source_id}` | row changes dispatched, by `insert` / `update` / `delete` / `ddl` |
//! | `dm_syncer_finished_transaction_total{task,source_id}` | upstream transactions read to their end |
//! | `dm_syncer_queue_size{task,queue_no,source_id}` | changes waiting in each worker's queue |
//! | `dm_syncer_flush_checkpoints_total{task,source_id}` | global checkpoints written |

use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The syncer's metrics.
#[derive(Clone)]
pub struct SyncerMetrics {
    registry: Registry,
    pub(crate) lag: GaugeVec,
    pub(crate) remaining: GaugeVec,
    pub(crate) binlog_file: GaugeVec,
    pub(crate) binlog_pos: GaugeVec,
    pub(crate) added_jobs: IntCounterVec,
    pub(crate) finished_transactions: IntCounterVec,
    pub(crate) queue_size: IntGaugeVec,
    pub(crate) flushes: IntCounterVec,
}

impl std::fmt::Debug for SyncerMetrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SyncerMetrics")
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl SyncerMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let task_source = &["task", "source_id"];
        let node = &["node", "task", "source_id"];
        let metrics = SyncerMetrics {
            lag: GaugeVec::new(
                opts(
                    "dm_syncer_replication_lag_gauge",
                    "replication lag in seconds",
                ),
                task_source,
            )?,
            remaining: GaugeVec::new(
                opts(
                    "dm_syncer_remaining_time",
                    "seconds left to catch up with the upstream",
                ),
                task_source,
            )?,
            binlog_file: GaugeVec::new(
                opts("dm_syncer_binlog_file", "binlog file sequence number"),
                node,
            )?,
            binlog_pos: GaugeVec::new(opts("dm_syncer_binlog_pos", "binlog offset"), node)?,
            added_jobs: IntCounterVec::new(
                opts(
                    "dm_syncer_added_jobs_total",
                    "row changes and DDL dispatched",
                ),
                &["type", "task", "source_id"],
            )?,
            finished_transactions: IntCounterVec::new(
                opts(
                    "dm_syncer_finished_transaction_total",
                    "upstream transactions read",
                ),
                task_source,
            )?,
            queue_size: IntGaugeVec::new(
                opts("dm_syncer_queue_size", "changes waiting in a worker queue"),
                &["task", "queue_no", "source_id"],
            )?,
            flushes: IntCounterVec::new(
                opts(
                    "dm_syncer_flush_checkpoints_total",
                    "global checkpoints written",
                ),
                task_source,
            )?,
            registry,
        };
        metrics.registry.register(Box::new(metrics.lag.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.remaining.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.binlog_file.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.binlog_pos.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.added_jobs.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.finished_transactions.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.queue_size.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.flushes.clone()))?;
        Ok(metrics)
    }

    /// The registry (to merge with an embedding service's own).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}
