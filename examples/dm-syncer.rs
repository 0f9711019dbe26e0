//! `dm-syncer`: a standalone incremental replicator, like DM's `dm-syncer`: it reads a DM task
//! file and source file, replicates the source's binlog to the task's target database exactly
//! once, prints progress and lag, and on Ctrl-C stops at a transaction boundary with its
//! checkpoint written.
//!
//! ```text
//! cargo run --example dm-syncer -- --task task.yaml --source source.yaml
//! cargo run --example dm-syncer -- --task task.yaml --source source.yaml --stop-at-end
//! ```
//!
//! The start point is the task's `mysql-instances[].meta` for this source (binlog-name /
//! binlog-pos, or binlog-gtid with `enable-gtid: true`), unless the downstream already holds a
//! checkpoint of this task and source, which wins. A configuration error names the key and file;
//! a key accepted with no effect here is printed as a warning at start. The source file's
//! `filters` apply after the task's, as in DM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use dm::binlog::find_start_by_time;
use dm::core::{BinlogFileName, BinlogPosition, Flavor, GtidSet, Location};
use dm::syncer::{SyncerSettings, SyncerStatus, remote_options, run, sink_options};
use dm::task::{SourceConfig, TaskConfig};
use mysql_async::prelude::Queryable;

/// Replicate one source of a DM task.
#[derive(Debug, Parser)]
#[command(name = "dm-syncer")]
struct Arguments {
    /// The DM task file.
    #[arg(long)]
    task: PathBuf,
    /// The DM source file of the source to replicate.
    #[arg(long)]
    source: PathBuf,
    /// Stop once the binlog's end is reached instead of following it.
    #[arg(long)]
    stop_at_end: bool,
    /// Start at the first transaction at or after this unix time (overrides `meta`).
    #[arg(long)]
    start_time: Option<u32>,
    /// Skip the event that starts at this `file:position` (DM's `binlog skip`), e.g. a statement
    /// the task stopped at; may be given several times.
    #[arg(long)]
    skip: Vec<String>,
    /// Serve `/metrics` (Prometheus text, DM's metric names) and `/status` on this address,
    /// e.g. `127.0.0.1:8262`.
    #[arg(long)]
    status_address: Option<String>,
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
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
        })?;
    let rules = task
        .rules_for_source(instance, &source)
        .with_context(|| format!("{task_name}: rules of source {}", source.source_id))?;

    // The upstream's flavour, from the source file or the server itself.
    let from = &source.from;
    let flavor = match source
        .flavor
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mariadb") => Flavor::MariaDb,
        Some("mysql") => Flavor::MySql,
        _ => {
            let options = mysql_async::OptsBuilder::default()
                .ip_or_hostname(from.host.clone())
                .tcp_port(from.port)
                .user(Some(from.user.clone()))
                .pass(Some(from.password.clone()))
                .prefer_socket(false);
            let mut connection = mysql_async::Conn::new(options).await.with_context(|| {
                format!("connecting to the upstream {}:{}", from.host, from.port)
            })?;
            let version: Option<String> = connection.query_first("SELECT VERSION()").await?;
            let _ = connection.disconnect().await;
            if version.unwrap_or_default().contains("MariaDB") {
                Flavor::MariaDb
            } else {
                Flavor::MySql
            }
        }
    };
    // No server-id in the source file: one that no replica of the upstream uses is chosen at
    // the first connect, and chosen again if another replica takes it.
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
            let mut location =
                Location::from_position(BinlogPosition::new(file, meta.binlog_pos.unwrap_or(4)));
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

    let target = &task.target_database;
    let sink = sink_options(target);
    let metrics = dm::syncer::SyncerMetrics::new()?;
    let settings = SyncerSettings {
        metrics: Some(metrics.clone()),
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
        ..SyncerSettings::from_task_and_source(&task, instance, &source, flavor)
    };

    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping at the next transaction end ...");
            let _ = stop_sender.send(true);
        }
    });
    let (progress, mut updates) = tokio::sync::watch::channel(SyncerStatus::default());
    if let Some(address) = &arguments.status_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("--status-address {address}"))?;
        tokio::spawn(serve_status(
            listener,
            metrics.clone(),
            progress.subscribe(),
        ));
        eprintln!("metrics on http://{address}/metrics, status on http://{address}/status");
    }
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
                status
                    .checkpoint
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |location| location.position.to_string())
            );
        }
    });
    eprintln!(
        "replicating {} ({}:{}) to {}:{} for task {}",
        source.source_id, from.host, from.port, target.host, target.port, task.name
    );
    let status = run(settings, remote, start, sink, rules, stop, progress).await?;
    println!(
        "stopped: {} rows applied, {} already applied before, {} DDL; checkpoint {}",
        status.rows_dispatched,
        status.rows_already_applied,
        status.ddls_executed,
        status
            .checkpoint
            .as_ref()
            .map_or_else(|| "-".to_owned(), |location| location.position.to_string())
    );
    Ok(())
}

/// A minimal HTTP endpoint: `GET /metrics` and `GET /status`.
async fn serve_status(
    listener: tokio::net::TcpListener,
    metrics: dm::syncer::SyncerMetrics,
    status: tokio::sync::watch::Receiver<SyncerStatus>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut request = [0u8; 1024];
        let read = stream.read(&mut request).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&request[..read]);
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let (code, body) = match path {
            "/metrics" => ("200 OK", metrics.encode()),
            "/status" => ("200 OK", format!("{:#?}\n", *status.borrow())),
            _ => ("404 Not Found", "try /metrics or /status\n".to_owned()),
        };
        let response = format!(
            "HTTP/1.1 {code}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
    }
}
