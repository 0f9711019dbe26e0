//! `change-feed`: replicates one source of a DM task into a JSON-lines change feed file instead
//! of a database, exactly once: one line per row change (op, table, before, after, binlog
//! position and row, GTID set), one per DDL statement. Killed at any point (kill -9 included)
//! and started again, it goes on where the file's own checkpoints say, and no change is missing
//! or written twice. The sink is `dm-sink-file`'s `FileSinks`; no MySQL code is behind it.
//!
//! ```text
//! cargo run --example change-feed -- --task task.yaml --source source.yaml --feed changes.jsonl
//! cargo run --example change-feed -- --task task.yaml --source source.yaml --feed changes.jsonl --stop-at-end
//! ```
//!
//! The task's `target-database` is not used. The start point is the task's `meta` (or
//! `--start-time`) until the feed holds a checkpoint. Tables that exist upstream at the start
//! are read from the upstream once (their structure seeds the schema tracker, as the
//! downstream's does for `dm-syncer`); compaction is off, so every upstream change gets its own
//! line. Consumers read the `insert`, `update`, `delete` and `ddl` lines and skip the others
//! (`dm_sink_file::line` describes them).

#[path = "shared/logging.rs"]
mod logging;
#[path = "shared/mod.rs"]
mod shared;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dm::core::{TableRef, TableSchema};
use dm::sink_file::{FileSinkOptions, FileSinks};
use dm::syncer::{SyncerSettings, SyncerStatus, run_with};
use dm::task::InstanceRules;
use mysql_async::prelude::Queryable;

/// Replicate one source of a DM task into a change feed file.
#[derive(Debug, Parser)]
#[command(name = "change-feed")]
struct Arguments {
    #[command(flatten)]
    source: shared::SourceArguments,
    /// The feed file (created when missing, appended to otherwise).
    #[arg(long)]
    feed: PathBuf,
}

/// The upstream's tables the task replicates, by their routed names, as they are now.
async fn catalog(
    connection: &mut mysql_async::Conn,
    rules: &InstanceRules,
) -> anyhow::Result<Vec<TableSchema>> {
    let tables: Vec<(String, String)> = connection
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
        )
        .await
        .context("listing the upstream's tables")?;
    let mut catalog = Vec::new();
    for (schema, table) in tables {
        if !rules.block_allow_list.allows_table(&schema, &table) {
            continue;
        }
        let upstream = TableRef::new(schema, table);
        let Some(structure) = dm::sink::load_table_schema(connection, &upstream)
            .await
            .with_context(|| format!("reading the structure of {upstream}"))?
        else {
            continue;
        };
        let routed = rules.router.route(&upstream)?;
        catalog.push(TableSchema::new(
            routed,
            structure.columns().to_vec(),
            structure.keys().to_vec(),
        )?);
    }
    Ok(catalog)
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    logging::init();
    match run(arguments).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            shared::report(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run(arguments: Arguments) -> anyhow::Result<()> {
    let spec = shared::spec(&arguments.source)?;
    let flavor = spec.upstream_flavor().await?;
    let start = spec.start_location(flavor).await?;
    let mut connection = spec.connect_upstream().await?;
    let catalog = catalog(&mut connection, &spec.rules).await?;
    let _ = connection.disconnect().await;
    let sinks = FileSinks::open(FileSinkOptions {
        path: arguments.feed.clone(),
        source: spec.source.source_id.clone(),
        flavor,
        catalog,
    })
    .await
    .with_context(|| format!("opening the feed {}", arguments.feed.display()))?;
    let settings = SyncerSettings {
        flavor,
        upstream: Some(spec.remote.clone()),
        // Every upstream change gets its own line.
        compact: false,
        // A standalone replicator waits for its upstream as long as it takes.
        retry_transient_for: None,
        ..spec.syncer.clone()
    };

    let stop = shared::stop_on_ctrl_c()?;
    let (progress, mut updates) = tokio::sync::watch::channel(SyncerStatus::default());
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let line = shared::sync_line(&updates.borrow_and_update());
            eprintln!("{line}");
        }
    });
    let from = &spec.source.from;
    eprintln!(
        "replicating {} ({}:{}) into {} for task {}",
        spec.source.source_id,
        from.host,
        from.port,
        arguments.feed.display(),
        spec.task.name
    );
    let status = run_with(
        settings,
        spec.remote.clone(),
        start,
        sinks,
        spec.rules.clone(),
        stop,
        progress,
    )
    .await?;
    println!(
        "stopped: {} changes written, {} written before, {} DDL; checkpoint {}",
        status.rows_dispatched,
        status.rows_already_applied,
        status.ddls_executed,
        shared::checkpoint_text(&status)
    );
    Ok(())
}
