//! `dm-syncer`: the standalone runner, like DM's `dm-syncer` but for every task mode. It runs
//! one source of a DM task file against your own servers through a `dm_subtask::Subtask`:
//! dump and load with a progress bar (modes `all`, `full`, `dump`, `load`, `load&sync`), then
//! replication exactly once with a progress line per second (`all`, `load&sync`,
//! `incremental`). Ctrl-C stops at the next transaction end with the checkpoints written; a
//! second Ctrl-C stops now (the batches in flight finish). Run it again and it continues from
//! the checkpoints (a finished load is not repeated).
//!
//! ```text
//! cargo run --example dm-syncer -- --task examples/config/task.yaml --source examples/config/source.yaml
//! cargo run --example dm-syncer -- --task task.yaml --source source.yaml --stop-at-end
//! cargo run --example dm-syncer -- --task task.yaml --source source.yaml --start-time '2026-11-24 08:00:00'
//! cargo run --example dm-syncer -- --task task.yaml --source source.yaml --skip mysql-bin.000003:1234
//! ```
//!
//! Both servers are checked first; a server that cannot be reached, or a file that cannot be
//! run, ends it with one report (what, where, what to do) and exit code 1. After the start,
//! transient failures (a server restarting) resume by themselves with backoff; an error that
//! needs you (an event the syncer cannot apply) stops it with the event's position and the
//! `--skip` that lets it go on. An incremental task starts at the task's
//! `mysql-instances[].meta` (or `--start-time`), unless the downstream holds a checkpoint of the
//! task and source, which wins. The source file's `filters` apply after the task's, as in DM.
//! The task and source handling is shared with `change-feed` (`examples/shared`).

#[path = "shared/bar.rs"]
mod bar;
#[path = "shared/logging.rs"]
mod logging;
#[path = "shared/mod.rs"]
mod shared;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use dm::core::ErrorClass;
use dm::subtask::{Stage, Subtask, SubtaskHandle, SubtaskStatus, Unit};
use dm::syncer::{StopRequest, SyncerMetrics};

/// Run one source of a DM task, in any task mode.
#[derive(Debug, Parser)]
#[command(name = "dm-syncer")]
struct Arguments {
    #[command(flatten)]
    source: shared::SourceArguments,
    /// Serve `/metrics` (Prometheus text, DM's metric names) and `/status` (DM's query-status
    /// JSON) on this address, e.g. `127.0.0.1:8262`.
    #[arg(long)]
    status_address: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    logging::init();
    match run(arguments).await {
        Ok(code) => code,
        Err(error) => {
            shared::report(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let mut spec = shared::spec(&arguments.source)?;
    let metrics = SyncerMetrics::new().context("creating the metrics")?;
    spec.syncer.metrics = Some(metrics.clone());
    // Both servers, before anything runs: an address or login that is wrong is named now.
    spec.flavor = Some(spec.check_connections().await?);
    let stop = shared::stop_on_ctrl_c()?;
    let (from, target) = (&spec.source.from, &spec.task.target_database);
    eprintln!(
        "running task {} (mode {}) for source {} ({} at {}:{}) into {}:{}",
        spec.task.name,
        spec.mode.name(),
        spec.source.source_id,
        spec.flavor.map_or("?", |flavor| flavor.name()),
        from.host,
        from.port,
        target.host,
        target.port,
    );
    let subtask = Subtask::new(spec).spawn();
    if let Some(address) = &arguments.status_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("--status-address {address}"))?;
        tokio::spawn(serve_status(listener, metrics, subtask.watch()));
        eprintln!("metrics on http://{address}/metrics, status on http://{address}/status");
    }
    let status = follow(&subtask, stop).await;
    if let Some(error) = status.error().filter(|_| status.stage == Stage::Paused) {
        // Paused by an error that needs the user: stop, with the checkpoints written.
        let _ = subtask.stop().await;
        let _ = subtask.wait().await;
        eprintln!("error: {}", error.message);
        eprintln!(
            "  code: {} ({}), in unit {}",
            error.code,
            error.class,
            error.unit.name()
        );
        eprintln!("  what to do: {}", error.workaround);
        if let Some(position) = &error.position {
            eprintln!(
                "  the event starts at {position}: once handled, run again with --skip {position} to go on"
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    let status = subtask.wait().await?;
    summary(&status);
    Ok(ExitCode::SUCCESS)
}

/// Shows the subtask's progress (a bar for dump and load, a line per second for sync, each
/// automatic resume), passes Ctrl-C on as stop requests, and returns the status it ended
/// with, or the one an error paused it with.
async fn follow(
    subtask: &SubtaskHandle,
    mut stop: tokio::sync::watch::Receiver<StopRequest>,
) -> SubtaskStatus {
    let bar = bar::FullProgressBar::new();
    let mut bar_done = false;
    let mut updates = subtask.watch();
    let mut last_line = Instant::now() - Duration::from_secs(1);
    let mut announced_attempts = 0;
    let mut stop_open = true;
    loop {
        let status = updates.borrow_and_update().clone();
        if !bar_done && (status.dump.is_some() || status.load.is_some()) {
            // Ctrl-C works during the dump and the load too (an auto-resume loop included).
            let reached = loop {
                tokio::select! {
                    reached = bar.follow(subtask) => break reached,
                    changed = stop.changed(), if stop_open => {
                        stop_open = changed.is_ok();
                        if forward_stop(subtask, &mut stop).await.is_err() {
                            break subtask.status();
                        }
                    }
                }
            };
            bar_done = true;
            if reached.unit == Some(Unit::Sync) || reached.stage == Stage::Finished {
                bar.finish(&reached);
                if let Some(location) = reached.load.as_ref().and_then(|load| load.handoff.as_ref())
                {
                    eprintln!("replication continues from {location}");
                }
            } else {
                bar.abandon();
            }
            continue;
        }
        match status.stage {
            Stage::Stopped | Stage::Finished => return status,
            Stage::Paused
                if status
                    .error()
                    .is_some_and(|error| error.class != ErrorClass::Transient) =>
            {
                return status;
            }
            Stage::Paused if status.auto_resume.total_attempts > announced_attempts => {
                announced_attempts = status.auto_resume.total_attempts;
                if let Some(line) = bar::auto_resume_line(&status) {
                    eprintln!("{line}");
                }
            }
            _ => {}
        }
        if let Some(sync) = &status.sync
            && last_line.elapsed() >= Duration::from_secs(1)
        {
            eprintln!("{}", shared::sync_line(sync));
            last_line = Instant::now();
        }
        // Cancel safety: both `changed` calls are cancel-safe.
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    return subtask.status();
                }
            }
            changed = stop.changed(), if stop_open => {
                // After the second Ctrl-C no request can come any more.
                stop_open = changed.is_ok();
                if forward_stop(subtask, &mut stop).await.is_err() {
                    return subtask.status();
                }
            }
        }
    }
}

/// Passes the latest Ctrl-C request on to the subtask; `Err` when it has ended.
async fn forward_stop(
    subtask: &SubtaskHandle,
    stop: &mut tokio::sync::watch::Receiver<StopRequest>,
) -> Result<(), ()> {
    let request = *stop.borrow_and_update();
    let sent = match request {
        StopRequest::AtTransactionEnd => subtask.stop().await,
        StopRequest::Now => subtask.stop_now().await,
        StopRequest::Continue => Ok(()),
    };
    sent.map_err(|_| ())
}

/// What the subtask did.
fn summary(status: &SubtaskStatus) {
    match &status.sync {
        Some(sync) => println!(
            "stopped: {} rows applied, {} already applied before, {} DDL; checkpoint {}{}",
            sync.rows_dispatched,
            sync.rows_already_applied,
            sync.ddls_executed,
            shared::checkpoint_text(sync),
            if status.stage == Stage::Finished {
                " (the end of the binlog)"
            } else {
                ""
            }
        ),
        None => {
            let rows = status
                .load
                .as_ref()
                .map(|load| load.progress.rows)
                .or(status.dump.as_ref().map(|dump| dump.rows))
                .unwrap_or(0);
            let how = match status.stage {
                Stage::Finished => "finished",
                _ => "stopped",
            };
            println!("{how}: {rows} rows");
        }
    }
}

/// A minimal HTTP endpoint: `GET /metrics` and `GET /status`.
async fn serve_status(
    listener: tokio::net::TcpListener,
    metrics: SyncerMetrics,
    status: tokio::sync::watch::Receiver<SubtaskStatus>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut request = [0u8; 1024];
        let read = stream.read(&mut request).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&request[..read]);
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let (code, kind, body) = match path {
            "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.encode()),
            "/status" => (
                "200 OK",
                "application/json",
                format!("{:#}\n", status.borrow().to_query_status()),
            ),
            _ => (
                "404 Not Found",
                "text/plain",
                "try /metrics or /status\n".to_owned(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {code}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
    }
}
