//! What one subtask runs, decided once from the task and source files: [`SubtaskSpec`].
//!
//! ```text
//! task.yaml + source.yaml --TaskConfig/SourceConfig--> SubtaskSpec::new (pure, no I/O)
//!   instance of the source, InstanceRules, task mode
//!   dump/load: DumpLoadConfig (modes all, full, dump, load, load&sync)
//!   sync:      SyncerSettings, RemoteOptions (upstream), MySqlSinkOptions (downstream),
//!              SyncStart (the instance's meta, a location, or a time)
//!   auto-resume policy (DM's), warnings (keys without effect here)
//! at each start of a unit (async): the upstream's flavour (source `flavor`, else SELECT
//! VERSION()), the start location (meta parsed with the flavour, or --start-time searched)
//! ```
//!
//! The fields are public: a caller adjusts what the files do not say (a checkpoint interval,
//! a heartbeat period, metrics, the in-place retry bound) before spawning the subtask.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dm_binlog::RemoteOptions;
use dm_core::{BinlogFileName, BinlogPosition, Flavor, GtidSet, Location};
use dm_dumpload::DumpLoadConfig;
use dm_sink::MySqlSinkOptions;
use dm_syncer::SyncerSettings;
use dm_task::config::{InstanceConfig, TaskMode};
use dm_task::{InstanceRules, SourceConfig, TaskConfig};
use mysql_async::prelude::Queryable;

use crate::backoff::AutoResume;
use crate::error::SubtaskError;

/// Where the sync unit of a mode without dump and load (`incremental`) starts when the
/// downstream holds no checkpoint of the task and source (a stored checkpoint always wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncStart {
    /// The instance's `meta` (binlog-name and binlog-pos; binlog-gtid with `enable-gtid`).
    Meta,
    /// This location.
    Location(Location),
    /// The first transaction at or after this unix time (searched in the upstream's binlog).
    Time(u32),
}

/// One source of one task, ready to run.
#[derive(Clone, Debug)]
pub struct SubtaskSpec {
    /// The task.
    pub task: TaskConfig,
    /// The source.
    pub source: SourceConfig,
    /// The task's `mysql-instances` entry of the source.
    pub instance: InstanceConfig,
    /// The instance's filters and routes.
    pub rules: InstanceRules,
    /// The task mode (the task's `task-mode`).
    pub mode: TaskMode,
    /// The upstream's flavour, when the source file says it; detected at start otherwise.
    pub flavor: Option<Flavor>,
    /// The dump and load options, for the modes that dump or load.
    pub dump_load: Option<DumpLoadConfig>,
    /// How the syncer runs; its `flavor`, `upstream` and `operators` are set at each start.
    /// `retry_transient_for` is [`RETRY_IN_PLACE`]: a longer failure goes to the auto-resume.
    pub syncer: SyncerSettings,
    /// How the syncer reads the upstream's binlog (`stop_at_end` ends the sync unit, and the
    /// subtask finishes, at the end of the binlog).
    pub remote: RemoteOptions,
    /// How the syncer writes to the downstream.
    pub sink: MySqlSinkOptions,
    /// Where an incremental sync starts without a checkpoint.
    pub start: SyncStart,
    /// Resuming by itself after transient errors.
    pub auto_resume: AutoResume,
    /// Keys of the files that have no effect here, each with the reason (shown at start).
    pub warnings: Vec<String>,
    /// The task file's name, for messages.
    pub task_file: String,
    /// The source file's name, for messages.
    pub source_file: String,
}

/// How long the syncer of a subtask retries a transient failure in place before the subtask's
/// auto-resume takes over.
pub const RETRY_IN_PLACE: Duration = Duration::from_secs(10);

fn read(path: &Path) -> Result<String, SubtaskError> {
    std::fs::read_to_string(path).map_err(|error| SubtaskError::File {
        path: path.display().to_string(),
        reason: error.to_string(),
    })
}

impl SubtaskSpec {
    /// Reads the task file and the source file (DM's formats) and builds the spec of the
    /// source in the task.
    pub fn from_files(task: &Path, source: &Path) -> Result<SubtaskSpec, SubtaskError> {
        let task_file = task.display().to_string();
        let source_file = source.display().to_string();
        let task = TaskConfig::from_yaml(&read(task)?, &task_file)?;
        let source = SourceConfig::from_yaml(&read(source)?, &source_file)?;
        SubtaskSpec::new(task, source, &task_file, &source_file)
    }

    /// The spec of `source` in `task` (`task_file` and `source_file` name them in messages).
    pub fn new(
        task: TaskConfig,
        source: SourceConfig,
        task_file: &str,
        source_file: &str,
    ) -> Result<SubtaskSpec, SubtaskError> {
        let instance = task
            .mysql_instances
            .iter()
            .find(|instance| instance.source_id == source.source_id)
            .cloned()
            .ok_or_else(|| SubtaskError::NoInstance {
                task_file: task_file.to_owned(),
                source_id: source.source_id.clone(),
            })?;
        let rules = task
            .rules_for_source(&instance, &source)
            .map_err(dm_task::TaskError::Rule)?;
        let flavor = match source
            .flavor
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("mariadb") => Some(Flavor::MariaDb),
            Some("mysql") => Some(Flavor::MySql),
            _ => None,
        };
        let mode = task.task_mode;
        let mut warnings: Vec<String> = task
            .warnings()
            .iter()
            .map(|warning| format!("{task_file}: {warning}"))
            .chain(
                source
                    .warnings()
                    .iter()
                    .map(|warning| format!("{source_file}: {warning}")),
            )
            .collect();
        let dump_load = if mode == TaskMode::Incremental {
            None
        } else {
            let config = DumpLoadConfig::from_task(&task, &instance)?;
            warnings.extend(
                config
                    .warnings()
                    .iter()
                    .map(|warning| format!("{task_file}: {warning}")),
            );
            Some(config)
        };
        let mut remote = dm_syncer::remote_options(&source, &task);
        remote.heartbeat_period = Duration::from_secs(5);
        let syncer = SyncerSettings {
            retry_transient_for: Some(RETRY_IN_PLACE),
            ..SyncerSettings::from_task_and_source(
                &task,
                &instance,
                &source,
                flavor.unwrap_or(Flavor::MariaDb),
            )
        };
        let spec = SubtaskSpec {
            sink: dm_syncer::sink_options(&task.target_database),
            instance,
            rules,
            mode,
            flavor,
            dump_load,
            syncer,
            remote,
            start: SyncStart::Meta,
            auto_resume: auto_resume(source.checker.as_ref()),
            warnings,
            task_file: task_file.to_owned(),
            source_file: source_file.to_owned(),
            task,
            source,
        };
        // A certificate file that cannot be read is named now: at connect time it would look
        // like a network failure and be retried for ever.
        let tls_files = [
            (source_file, "from.security", spec.remote.tls.as_deref()),
            (
                task_file,
                "target-database.security",
                spec.sink.tls.as_ref(),
            ),
        ];
        for (file, section, tls) in tls_files {
            if let Some(Err((path, reason))) = tls.map(dm_core::TlsConfig::check_files) {
                return Err(SubtaskError::File {
                    path: path.display().to_string(),
                    reason: format!("{reason} (named in {file}: {section})"),
                });
            }
        }
        if mode == TaskMode::Incremental {
            // A meta that cannot be read is named now, not when the subtask starts.
            spec.meta_location(flavor.unwrap_or(Flavor::MariaDb))?;
        }
        Ok(spec)
    }

    /// `task/source`, the subtask's name in messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.task.name, self.source.source_id)
    }

    /// Whether the mode runs the sync unit (`all`, `incremental`, `load&sync`).
    pub fn syncs(&self) -> bool {
        matches!(
            self.mode,
            TaskMode::All | TaskMode::Incremental | TaskMode::LoadAndSync
        )
    }

    /// The instance's `meta` as a location (`None` without one; its GTID set, read with
    /// `flavor`, only with `enable-gtid`).
    fn meta_location(&self, flavor: Flavor) -> Result<Option<Location>, SubtaskError> {
        let Some(meta) = &self.instance.meta else {
            return Ok(None);
        };
        let error = |reason: String| SubtaskError::StartPoint {
            file: self.task_file.clone(),
            reason,
        };
        let name = meta.binlog_name.clone().unwrap_or_default();
        let by_gtid_only = name.is_empty() && self.source.enable_gtid && meta.binlog_gtid.is_some();
        if name.is_empty() && !by_gtid_only {
            return Err(error(format!(
                "mysql-instances `{}`: meta needs binlog-name (and binlog-pos), or binlog-gtid \
                 with `enable-gtid: true` in the source file",
                self.instance.source_id
            )));
        }
        // With only a GTID set the stream opens by it and the server tells the file; the
        // position is a placeholder that is never opened.
        let name = if by_gtid_only {
            "mysql-bin.000001".to_owned()
        } else {
            name
        };
        let file = BinlogFileName::parse(&name).map_err(|failure| {
            error(format!(
                "mysql-instances `{}`: meta.binlog-name `{name}`: {failure}",
                self.instance.source_id
            ))
        })?;
        let mut location =
            Location::from_position(BinlogPosition::new(file, meta.binlog_pos.unwrap_or(4)));
        if self.source.enable_gtid
            && let Some(gtid) = &meta.binlog_gtid
        {
            let set = GtidSet::parse(flavor, gtid).map_err(|failure| {
                error(format!(
                    "mysql-instances `{}`: meta.binlog-gtid: {failure}",
                    self.instance.source_id
                ))
            })?;
            location.gtid_set = Some(Arc::new(set));
        }
        Ok(Some(location))
    }

    /// Where the downstream's global checkpoint of this task and source is, if it holds one
    /// (the syncer then resumes there, whatever the start point says). Only reads: a
    /// downstream without the checkpoint tables is left without them.
    pub async fn stored_checkpoint(
        &self,
        flavor: Flavor,
    ) -> Result<Option<Location>, SubtaskError> {
        let sync_error = |error: dm_sink::SinkError| SubtaskError::Sync(error.into());
        let tables = dm_sink::CheckpointTables::new(&self.syncer.meta_schema, &self.syncer.task)
            .map_err(sync_error)?;
        let mut sink = dm_sink::MySqlSink::new(self.sink.clone()).map_err(sync_error)?;
        // A downstream without the checkpoint tables (1146) or the meta schema (1049) holds
        // none; asking the table itself avoids comparing names that lower_case_table_names or
        // the server may have changed.
        match tables
            .load_global(&mut sink, &self.syncer.source_id, flavor)
            .await
        {
            Ok(global) => Ok(global.map(|row| row.location)),
            Err(dm_sink::SinkError::Statement {
                code: 1146 | 1049, ..
            }) => Ok(None),
            Err(error) => Err(sync_error(error)),
        }
    }

    /// Where an incremental sync starts without a checkpoint ([`SyncStart`]).
    pub async fn start_location(&self, flavor: Flavor) -> Result<Location, SubtaskError> {
        match &self.start {
            SyncStart::Location(location) => Ok(location.clone()),
            SyncStart::Time(time) => {
                let position = dm_binlog::find_start_by_time(&self.remote, *time)
                    .await
                    .map_err(|error| SubtaskError::Sync(error.into()))?
                    .ok_or_else(|| SubtaskError::StartPoint {
                        file: "--start-time".into(),
                        reason: format!(
                            "no transaction in the upstream's binlog is at or after {time}"
                        ),
                    })?;
                Ok(Location::from_position(position))
            }
            SyncStart::Meta => self.meta_location(flavor)?.ok_or_else(|| {
                SubtaskError::StartPoint {
                    file: self.task_file.clone(),
                    reason: format!(
                        "mysql-instances entry `{}` has no meta (binlog-name, binlog-pos) to start task mode `incremental` from, and the downstream holds no checkpoint of the task",
                        self.instance.source_id
                    ),
                }
            }),
        }
    }

    /// A connection to the upstream (the source's `from`); a failure names the address and
    /// the file that gives it.
    pub async fn connect_upstream(&self) -> Result<mysql_async::Conn, SubtaskError> {
        let from = &self.source.from;
        self.connect(
            &from.host,
            from.port,
            &from.user,
            &from.password,
            self.remote.tls.as_deref(),
        )
        .await
        .map_err(|error| self.upstream_error(&error))
    }

    fn upstream_error(&self, error: &mysql_async::Error) -> SubtaskError {
        let from = &self.source.from;
        SubtaskError::connect(
            "upstream",
            format!("{}:{}", from.host, from.port),
            &format!("{}: from", self.source_file),
            error,
        )
    }

    /// The upstream's flavour: the source file's, or asked of the server.
    pub async fn upstream_flavor(&self) -> Result<Flavor, SubtaskError> {
        if let Some(flavor) = self.flavor {
            return Ok(flavor);
        }
        let mut connection = self.connect_upstream().await?;
        let version: Result<Option<String>, _> = connection.query_first("SELECT VERSION()").await;
        let _ = connection.disconnect().await;
        let version = version.map_err(|error| self.upstream_error(&error))?;
        Ok(if version.unwrap_or_default().contains("MariaDB") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        })
    }

    /// Connects to the upstream and the downstream once, as a precheck: a server that cannot
    /// be reached, or refuses the login, is named with the file that gives its address.
    /// Returns the upstream's flavour.
    pub async fn check_connections(&self) -> Result<Flavor, SubtaskError> {
        let flavor = self.upstream_flavor().await?;
        if self.flavor.is_some() {
            // Not connected yet: the flavour came from the file.
            let _ = self.connect_upstream().await?.disconnect().await;
        }
        let target = &self.task.target_database;
        let connection = self
            .connect(
                &target.host,
                target.port,
                &target.user,
                &target.password,
                self.sink.tls.as_ref(),
            )
            .await
            .map_err(|error| {
                SubtaskError::connect(
                    "downstream",
                    format!("{}:{}", target.host, target.port),
                    &format!("{}: target-database", self.task_file),
                    &error,
                )
            })?;
        let _ = connection.disconnect().await;
        Ok(flavor)
    }

    /// One connection as the units open theirs: with the file's TLS when it has a `security`
    /// section (never a plaintext precheck before a TLS task).
    async fn connect(
        &self,
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        tls: Option<&dm_core::TlsConfig>,
    ) -> Result<mysql_async::Conn, mysql_async::Error> {
        let ssl = match tls {
            Some(tls) => Some(
                dm_sink::ssl_options(tls)
                    .map_err(|reason| mysql_async::Error::Other(reason.into()))?,
            ),
            None => None,
        };
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.to_owned())
            .tcp_port(port)
            .user(Some(user.to_owned()))
            .pass(Some(password.to_owned()))
            .prefer_socket(false)
            .ssl_opts(ssl);
        mysql_async::Conn::new(options).await
    }
}

/// DM's task checker as the source file's `checker` sets it: `check-enable`, `backoff-max` and
/// `backoff-rollback` are read; DM resets `check-interval`, `backoff-min`, `backoff-jitter` and
/// `backoff-factor` to its defaults whatever the file says, and so does this.
fn auto_resume(checker: Option<&dm_task::config::CheckerConfig>) -> AutoResume {
    let mut resume = AutoResume::default();
    let Some(checker) = checker else {
        return resume;
    };
    let duration = |text: &Option<String>| {
        text.as_deref()
            .and_then(|text| dm_task::config::parse_duration(text).ok())
    };
    if let Some(enabled) = checker.check_enable {
        resume.enabled = enabled;
    }
    if let Some(maximum) = duration(&checker.backoff_max) {
        resume.backoff_max = maximum;
    }
    if let Some(rollback) = duration(&checker.backoff_rollback) {
        resume.rollback = rollback;
    }
    resume
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_files_checker_sets_the_auto_resume() {
        let checker = dm_task::config::CheckerConfig {
            check_enable: Some(false),
            backoff_max: Some("30s".into()),
            backoff_rollback: Some("2m".into()),
            backoff_min: Some("10s".into()),
            ..Default::default()
        };
        let resume = auto_resume(Some(&checker));
        assert!(!resume.enabled);
        assert_eq!(resume.backoff_max, Duration::from_secs(30));
        assert_eq!(resume.rollback, Duration::from_secs(120));
        assert_eq!(
            resume.backoff_min,
            Duration::from_secs(1),
            "DM resets backoff-min"
        );
        assert_eq!(auto_resume(None), AutoResume::default());
    }
}
