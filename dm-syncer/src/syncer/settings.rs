//! How the syncer runs, read from a task file: [`SyncerSettings`] (with DM's defaults), and the
//! options of the two connections it makes, [`remote_options`] (the upstream's binlog) and
//! [`sink_options`] (the downstream).
//!
//! ```text
//! TaskConfig + InstanceConfig (+ SourceConfig)  --SyncerSettings::from_task(_and_source)--> SyncerSettings
//! SourceConfig.from + SourceConfig::replica_settings(task)    --remote_options--> dm_binlog::RemoteOptions
//! TaskConfig.target_database + session_variables()            --sink_options----> dm_sink::MySqlSinkOptions
//! ```

use std::time::Duration;

use dm_binlog::{RemoteOptions, ServerIdChoice};
use dm_core::{Flavor, Location};
use dm_sink::MySqlSinkOptions;
use dm_task::config::{DatabaseConfig, InstanceConfig, SourceConfig, TaskConfig};

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
    /// Write idempotently (safe mode) for this long after each start of the syncer, then as
    /// configured (DM's `safe-mode-duration`). `None`: no time-based safe mode. The task file's
    /// value is taken when it sets one above zero; an absent key gives `None`, not DM's default
    /// of twice `checkpoint-flush-interval`: DM needs it because its checkpoints lag what was
    /// applied, while the checkpoints here are exact (`docs/design/checkpoint.md`). Write
    /// `safe-mode-duration: 60s` for DM's behaviour.
    pub safe_mode_duration: Option<Duration>,
    /// DM's `multiple-rows`: merge the changes of one batch that share table and kind into
    /// multi-row statements (`INSERT ... VALUES (..), (..)`, ...). DM's default is off; ours is
    /// on, as with `compact` (the benchmarks in the README measure why); `multiple-rows: false`
    /// writes one row per statement.
    pub multiple_rows: bool,
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
    /// How long a transient failure (of the downstream, or of the upstream's binlog stream) is
    /// retried in place, with backoff, before the syncer returns it. `None` (the default):
    /// as long as it takes, a standalone syncer waits for its servers. A subtask sets a bound,
    /// so that its auto-resume takes over and the attempts show in its status.
    pub retry_transient_for: Option<Duration>,
    /// Open and reopen the upstream's stream by GTID set where the location carries one (the
    /// source file's `enable-gtid: true`), or always by file and position (`false`, DM's
    /// default, as DM keeps the two apart). A library caller's default is `true`: a location
    /// with a GTID set resumes by it.
    pub resume_by_gtid: bool,
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
            safe_mode_duration: None,
            multiple_rows: true,
            compact: true,
            case_sensitive: true,
            metrics: None,
            upstream: None,
            safe_mode_until: None,
            operators: Vec::new(),
            retry_transient_for: None,
            resume_by_gtid: true,
        }
    }
}

impl SyncerSettings {
    /// The settings of `instance` of `task`: its `syncers` section (`worker-count`, `batch`,
    /// `queue-size`, `checkpoint-flush-interval`, `safe-mode`, `safe-mode-duration`,
    /// `multiple-rows`, `compact`, with DM's zero-means-default rules), `meta-schema` and
    /// `case-sensitive`; the rest as [`SyncerSettings::new`]. The task is expected to come from
    /// `TaskConfig::parse` or `from_yaml`, which refuse a malformed `safe-mode-duration`.
    pub fn from_task(task: &TaskConfig, instance: &InstanceConfig, flavor: Flavor) -> Self {
        let syncer = task.syncer_for(instance);
        SyncerSettings {
            meta_schema: task.meta_schema.clone(),
            workers: syncer.worker_count.max(1),
            batch: syncer.batch.max(1),
            queue_size: syncer.queue_size,
            flavor,
            checkpoint_interval: Duration::from_secs(syncer.checkpoint_flush_interval.max(1)),
            safe_mode: syncer.safe_mode,
            safe_mode_duration: syncer
                .safe_mode_duration()
                .ok()
                .flatten()
                .filter(|duration| !duration.is_zero()),
            multiple_rows: syncer.multiple_rows.unwrap_or(true),
            compact: syncer.compact.unwrap_or(true),
            case_sensitive: task.case_sensitive,
            ..SyncerSettings::new(&task.name, &instance.source_id)
        }
    }

    /// As [`SyncerSettings::from_task`], for the source `source` runs on: names are
    /// case-sensitive when the task or the source file says so (as DM's worker decides; pair it
    /// with `TaskConfig::rules_for_source`), and the stream opens by GTID set only with the
    /// source's `enable-gtid: true` (by file and position otherwise, as in DM).
    pub fn from_task_and_source(
        task: &TaskConfig,
        instance: &InstanceConfig,
        source: &SourceConfig,
        flavor: Flavor,
    ) -> Self {
        SyncerSettings {
            case_sensitive: task.case_sensitive || source.case_sensitive,
            resume_by_gtid: source.enable_gtid,
            ..SyncerSettings::from_task(task, instance, flavor)
        }
    }
}

/// How `task` reads the binlog of `source`: the source's `from` address and login, and its
/// [`SourceConfig::replica_settings`]: the server id (none set: one chosen at the first connect
/// that no replica of the upstream uses, and chosen again if another replica takes it later, as
/// DM does), the binlog checks at connect that the task's `ignore-checking-items` does not skip
/// (`binlog_format`, `binlog_row_image`), and a replica name that stays the same across restarts.
/// Its `upstream_identity` is left unset: the syncer sets the one its checkpoint stores before
/// it opens the stream (`BinlogSource::expect_upstream`).
pub fn remote_options(source: &SourceConfig, task: &TaskConfig) -> RemoteOptions {
    let replica = source.replica_settings(task);
    let from = &source.from;
    RemoteOptions {
        server_id: match replica.server_id {
            Some(id) => ServerIdChoice::Fixed(id),
            None => ServerIdChoice::Automatic(0),
        },
        require_row_format: replica.require_row_format,
        require_full_row_image: replica.require_full_row_image,
        replica_name: replica.replica_name,
        // The source's `from.security`: TLS, verified; a section that cannot be honoured makes
        // every connection fail with its reason, never connect in plain TCP.
        tls: from.tls_settings("from").map(std::sync::Arc::new),
        ..RemoteOptions::new(&from.host, from.port, &from.user, &from.password, 0)
    }
}

/// How the syncer writes to `target` (a task's `target-database`): its address and login, and
/// the session variables it sends ([`DatabaseConfig::session_variables`]: `time_zone` is not).
pub fn sink_options(target: &DatabaseConfig) -> MySqlSinkOptions {
    MySqlSinkOptions {
        session_variables: target.session_variables(),
        // The task's `target-database.security` (as `remote_options`).
        tls: target.tls_settings("target-database"),
        ..MySqlSinkOptions::new(&target.host, target.port, &target.user, &target.password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "name: t\ntask-mode: incremental\ntarget-database: {host: h, port: 1, user: u}\nsyncers:\n  s:\n    worker-count: 4\n    batch: 0\n    safe-mode-duration: 1m30s\n    multiple-rows: true\n    compact: false\nmysql-instances:\n  - source-id: s1\n    syncer-config-name: s\n    syncer-thread: 0\n";

    #[test]
    fn a_task_file_sets_the_syncer() {
        let task = TaskConfig::from_yaml(TASK, "task.yaml").expect("task");
        let settings = SyncerSettings::from_task(&task, &task.mysql_instances[0], Flavor::MySql);
        assert_eq!(settings.workers, 4);
        assert_eq!(settings.batch, 1);
        assert_eq!(settings.safe_mode_duration, Some(Duration::from_secs(90)));
        assert!(settings.multiple_rows);
        assert!(!settings.compact);
        assert!(!settings.case_sensitive);
        let source = SourceConfig::from_yaml(
            "source-id: s1\ncase-sensitive: true\nfrom: {host: h, port: 1, user: u}\n",
            "source.yaml",
        )
        .expect("source");
        let settings = SyncerSettings::from_task_and_source(
            &task,
            &task.mysql_instances[0],
            &source,
            Flavor::MySql,
        );
        assert!(settings.case_sensitive);

        let defaults = TaskConfig::from_yaml(
            "name: t\ntarget-database: {host: h, port: 1, user: u}\nmysql-instances:\n  - source-id: s1\n    syncer-thread: 0\n",
            "task.yaml",
        )
        .expect("task");
        let settings =
            SyncerSettings::from_task(&defaults, &defaults.mysql_instances[0], Flavor::MySql);
        assert_eq!(settings.workers, 16, "syncer-thread 0 is DM's default");
        assert_eq!(settings.safe_mode_duration, None);
        assert!(
            settings.multiple_rows,
            "multi-row statements unless the task says no"
        );
        let zero = TASK.replace("1m30s", "0s");
        let task = TaskConfig::from_yaml(&zero, "task.yaml").expect("task");
        let settings = SyncerSettings::from_task(&task, &task.mysql_instances[0], Flavor::MySql);
        assert_eq!(settings.safe_mode_duration, None);
    }

    #[test]
    fn the_connections_come_from_the_task_and_source_files() {
        let task = TaskConfig::from_yaml(
            "name: t\ntask-mode: incremental\nignore-checking-items: [binlog_format]\ntarget-database: {host: down, port: 4000, user: u, password: p, session: {sql_mode: '', time_zone: '+08:00'}}\nmysql-instances:\n  - source-id: s1\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n",
            "task.yaml",
        )
        .expect("task");
        let source = SourceConfig::from_yaml(
            "source-id: s1\nfrom: {host: up, port: 3306, user: repl, password: secret}\n",
            "source.yaml",
        )
        .expect("source");
        let remote = remote_options(&source, &task);
        assert_eq!(
            (remote.host.as_str(), remote.port, remote.user.as_str()),
            ("up", 3306, "repl")
        );
        assert_eq!(remote.password, "secret");
        assert_eq!(remote.server_id, ServerIdChoice::Automatic(0));
        assert!(!remote.require_row_format);
        assert!(remote.require_full_row_image);
        assert_eq!(remote.replica_name, "dm-syncer-t-s1");
        let fixed = SourceConfig {
            server_id: Some(7),
            ..source
        };
        assert_eq!(
            remote_options(&fixed, &task).server_id,
            ServerIdChoice::Fixed(7)
        );

        let sink = sink_options(&task.target_database);
        assert_eq!((sink.host.as_str(), sink.port), ("down", 4000));
        assert_eq!((sink.user.as_str(), sink.password.as_str()), ("u", "p"));
        assert_eq!(
            sink.session_variables,
            [("sql_mode".to_owned(), "''".to_owned())]
        );
    }
}
