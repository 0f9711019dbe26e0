//! What the standalone replicators (`dm-syncer`, `change-feed`) share: one source of a DM task
//! read from its task and source files, where its stream starts, how the syncer runs, Ctrl-C,
//! and the progress lines. Each example includes it with `#[path = "shared/mod.rs"] mod shared;`
//! and only adds where the changes go.
//!
//! ```text
//! --task task.yaml --source source.yaml [--start-time T] [--skip file:pos] [--stop-at-end]
//!   -> TaskConfig + SourceConfig (warnings printed) -> the instance, its rules, the flavour
//!   -> RemoteOptions, the start Location (meta / --start-time), SyncerSettings
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use dm::binlog::{RemoteOptions, find_start_by_time};
use dm::core::{BinlogFileName, BinlogPosition, Flavor, GtidSet, Location};
use dm::syncer::{SyncerSettings, SyncerStatus, remote_options};
use dm::task::{InstanceRules, SourceConfig, TaskConfig};
use mysql_async::prelude::Queryable;

/// The arguments that name the source and where to start.
#[derive(Debug, clap::Args)]
pub struct SourceArguments {
    /// The DM task file.
    #[arg(long)]
    pub task: PathBuf,
    /// The DM source file of the source to replicate.
    #[arg(long)]
    pub source: PathBuf,
    /// Stop once the binlog's end is reached instead of following it.
    #[arg(long)]
    pub stop_at_end: bool,
    /// Start at the first transaction at or after this unix time (overrides `meta`).
    #[arg(long)]
    pub start_time: Option<u32>,
    /// Skip the event that starts at this `file:position` (DM's `binlog skip`), e.g. a statement
    /// the task stopped at; may be given several times.
    #[arg(long)]
    pub skip: Vec<String>,
}

/// One source of a task, ready to replicate.
pub struct Replica {
    /// The task (`--task`).
    pub task: TaskConfig,
    /// The source (`--source`).
    pub source: SourceConfig,
    /// The source's filters and routes.
    pub rules: InstanceRules,
    /// The upstream's flavour.
    pub flavor: Flavor,
    /// How to read the upstream's binlog.
    pub remote: RemoteOptions,
    /// Where to start when no checkpoint is stored.
    pub start: Location,
    /// How the syncer runs (the task's `syncers` section; the binlog operators of `--skip`).
    pub settings: SyncerSettings,
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A connection to the source's upstream.
pub async fn connect_upstream(source: &SourceConfig) -> anyhow::Result<mysql_async::Conn> {
    let from = &source.from;
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(from.host.clone())
        .tcp_port(from.port)
        .user(Some(from.user.clone()))
        .pass(Some(from.password.clone()))
        .prefer_socket(false);
    mysql_async::Conn::new(options)
        .await
        .with_context(|| format!("connecting to the upstream {}:{}", from.host, from.port))
}

impl Replica {
    /// Reads the task and source files and decides where and how to start.
    pub async fn prepare(arguments: &SourceArguments) -> anyhow::Result<Replica> {
        let task_name = arguments.task.display().to_string();
        let source_name = arguments.source.display().to_string();
        let task = TaskConfig::from_yaml(&read(&arguments.task)?, &task_name)?;
        let source = SourceConfig::from_yaml(&read(&arguments.source)?, &source_name)?;
        // Keys accepted with no effect here, each with the reason (docs/dm-config-keys.md).
        for warning in task.warnings() {
            eprintln!("{task_name}: warning: {warning}");
        }
        for warning in source.warnings() {
            eprintln!("{source_name}: warning: {warning}");
        }
        let instance = task
            .mysql_instances
            .iter()
            .find(|instance| instance.source_id == source.source_id)
            .with_context(|| {
                format!(
                    "{task_name}: no mysql-instances entry has source-id `{}` (from {source_name})",
                    source.source_id
                )
            })?
            .clone();
        let rules = task
            .rules_for_source(&instance, &source)
            .with_context(|| format!("{task_name}: rules of source {}", source.source_id))?;

        // The upstream's flavour, from the source file or the server itself.
        let flavor = match source
            .flavor
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("mariadb") => Flavor::MariaDb,
            Some("mysql") => Flavor::MySql,
            _ => {
                let mut connection = connect_upstream(&source).await?;
                let version: Option<String> = connection.query_first("SELECT VERSION()").await?;
                let _ = connection.disconnect().await;
                if version.unwrap_or_default().contains("MariaDB") {
                    Flavor::MariaDb
                } else {
                    Flavor::MySql
                }
            }
        };
        // No server-id in the source file: one that no replica of the upstream uses is chosen
        // at the first connect, and chosen again if another replica takes it.
        let mut remote = remote_options(&source, &task);
        remote.stop_at_end = arguments.stop_at_end;
        remote.heartbeat_period = Duration::from_secs(5);

        let start = match (arguments.start_time, instance.meta.as_ref()) {
            (Some(time), _) => {
                let position = find_start_by_time(&remote, time)
                    .await?
                    .with_context(|| format!("no transaction at or after {time}"))?;
                Location::from_position(position)
            }
            (None, Some(meta)) => {
                let name = meta.binlog_name.clone().unwrap_or_default();
                let file = BinlogFileName::parse(&name)
                    .with_context(|| format!("{task_name}: meta.binlog-name `{name}`"))?;
                let mut location = Location::from_position(BinlogPosition::new(
                    file,
                    meta.binlog_pos.unwrap_or(4),
                ));
                if source.enable_gtid
                    && let Some(gtid) = &meta.binlog_gtid
                {
                    let set = GtidSet::parse(flavor, gtid)
                        .with_context(|| format!("{task_name}: meta.binlog-gtid"))?;
                    location.gtid_set = Some(Arc::new(set));
                }
                location
            }
            (None, None) => bail!(
                "{task_name}: mysql-instances entry `{}` has no meta (binlog-name, binlog-pos): give the start point, or --start-time",
                source.source_id
            ),
        };
        let settings = SyncerSettings {
            upstream: Some(remote.clone()),
            operators: arguments
                .skip
                .iter()
                .map(|position| {
                    BinlogPosition::parse(position)
                        .map(|position| (position, dm::binlog::Operator::Skip))
                        .with_context(|| format!("--skip {position} is not file:position"))
                })
                .collect::<anyhow::Result<_>>()?,
            ..SyncerSettings::from_task_and_source(&task, &instance, &source, flavor)
        };
        Ok(Replica {
            task,
            source,
            rules,
            flavor,
            remote,
            start,
            settings,
        })
    }
}

/// A stop signal that turns true at the first Ctrl-C (the syncer then stops at the next
/// transaction end).
pub fn stop_on_ctrl_c() -> tokio::sync::watch::Receiver<bool> {
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping at the next transaction end ...");
            let _ = stop_sender.send(true);
        }
    });
    stop
}

/// Prints a progress line for every status the syncer publishes.
pub fn print_progress(mut updates: tokio::sync::watch::Receiver<SyncerStatus>) {
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let status = updates.borrow_and_update().clone();
            eprintln!(
                "rows {} ({}/s; skipped as already applied {}), DDL {}, lag {} s, remaining {}, synced {}, checkpoint {}",
                status.rows_dispatched,
                status.rows_per_second,
                status.rows_already_applied,
                status.ddls_executed,
                status.lag_seconds,
                status
                    .remaining_seconds
                    .map_or_else(|| "?".to_owned(), |seconds| format!("{seconds} s")),
                status.synced,
                checkpoint_text(&status)
            );
        }
    });
}

/// The status's checkpoint as `file:position`, or `-`.
pub fn checkpoint_text(status: &SyncerStatus) -> String {
    status
        .checkpoint
        .as_ref()
        .map_or_else(|| "-".to_owned(), |location| location.position.to_string())
}
