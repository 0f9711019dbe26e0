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
//! `filters` apply after the task's, as in DM. The task and source handling is shared with
//! `change-feed` (`examples/shared`).

#[path = "shared/mod.rs"]
mod shared;

use anyhow::Context;
use clap::Parser;
use dm::syncer::{SyncerStatus, run, sink_options};

/// Replicate one source of a DM task.
#[derive(Debug, Parser)]
#[command(name = "dm-syncer")]
struct Arguments {
    #[command(flatten)]
    source: shared::SourceArguments,
    /// Serve `/metrics` (Prometheus text, DM's metric names) and `/status` on this address,
    /// e.g. `127.0.0.1:8262`.
    #[arg(long)]
    status_address: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let replica = shared::Replica::prepare(&arguments.source).await?;
    let target = &replica.task.target_database;
    let sink = sink_options(target);
    let metrics = dm::syncer::SyncerMetrics::new()?;
    let settings = dm::syncer::SyncerSettings {
        metrics: Some(metrics.clone()),
        ..replica.settings
    };

    let stop = shared::stop_on_ctrl_c();
    let (progress, updates) = tokio::sync::watch::channel(SyncerStatus::default());
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
    shared::print_progress(updates);
    let from = &replica.source.from;
    eprintln!(
        "replicating {} ({} at {}:{}) to {}:{} for task {}",
        replica.source.source_id,
        replica.flavor.name(),
        from.host,
        from.port,
        target.host,
        target.port,
        replica.task.name
    );
    let status = run(
        settings,
        replica.remote,
        replica.start,
        sink,
        replica.rules,
        stop,
        progress,
    )
    .await?;
    println!(
        "stopped: {} rows applied, {} already applied before, {} DDL; checkpoint {}",
        status.rows_dispatched,
        status.rows_already_applied,
        status.ddls_executed,
        shared::checkpoint_text(&status)
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
