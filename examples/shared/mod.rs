//! What the standalone replicators (`dm-syncer`, `change-feed`) share: one source of a DM task
//! read from its task and source files into a `dm_subtask::SubtaskSpec` (the command line's
//! start and operators applied), Ctrl-C as stop requests, the sync progress line, and the
//! error report. Each example includes it with `#[path = "shared/mod.rs"] mod shared;`.
//!
//! ```text
//! --task task.yaml --source source.yaml [--start-time T] [--skip file:pos] [--stop-at-end]
//!   -> SubtaskSpec::from_files (warnings printed) -> --start-time, --skip, --stop-at-end applied
//! Ctrl-C -> StopRequest::AtTransactionEnd, Ctrl-C again -> StopRequest::Now
//! an error -> one report: what and where (the message), its code and class, what to do
//! ```

use std::path::PathBuf;

use anyhow::Context;
use dm::binlog::Operator;
use dm::core::{BinlogPosition, ClassifiedError};
use dm::subtask::{SubtaskError, SubtaskSpec, SyncStart};
use dm::syncer::{StopRequest, SyncerStatus};

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
    /// Start replicating at the first transaction at or after this time, when the downstream
    /// holds no checkpoint (overrides `meta`): unix seconds, or DM's `'YYYY-MM-DD hh:mm:ss'`
    /// (UTC).
    #[arg(long)]
    pub start_time: Option<String>,
    /// Skip the event that starts at this `file:position` (DM's `binlog skip`), e.g. a statement
    /// the task stopped at; may be given several times.
    #[arg(long)]
    pub skip: Vec<String>,
}

/// The spec of the source in the task, with the command line's start, operators and end.
pub fn spec(arguments: &SourceArguments) -> anyhow::Result<SubtaskSpec> {
    let mut spec = SubtaskSpec::from_files(&arguments.task, &arguments.source)?;
    // Keys accepted with no effect here, each with the reason (docs/dm-config-keys.md).
    for warning in &spec.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(time) = &arguments.start_time {
        let seconds = dm::binlog::parse_start_time(time).with_context(|| {
            format!("--start-time `{time}` is not unix seconds nor 'YYYY-MM-DD hh:mm:ss'")
        })?;
        spec.start = SyncStart::Time(seconds);
    }
    for position in &arguments.skip {
        let position = BinlogPosition::parse(position)
            .with_context(|| format!("--skip {position} is not file:position"))?;
        spec.syncer.operators.push((position, Operator::Skip));
    }
    spec.remote.stop_at_end = arguments.stop_at_end;
    Ok(spec)
}

/// Stop requests from Ctrl-C: the first asks to stop at the next transaction end, the second
/// to stop now.
pub fn stop_on_ctrl_c() -> anyhow::Result<tokio::sync::watch::Receiver<StopRequest>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let (sender, receiver) = tokio::sync::watch::channel(StopRequest::Continue);
    tokio::spawn(async move {
        if interrupts.recv().await.is_some() {
            eprintln!("stopping at the next transaction end (Ctrl-C again to stop now) ...");
            sender.send_replace(StopRequest::AtTransactionEnd);
        }
        if interrupts.recv().await.is_some() {
            eprintln!("stopping now: the batches in flight finish ...");
            sender.send_replace(StopRequest::Now);
        }
    });
    Ok(receiver)
}

/// One progress line of the syncer.
pub fn sync_line(status: &SyncerStatus) -> String {
    format!(
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
        checkpoint_text(status)
    )
}

/// The status's checkpoint as `file:position`, or `-`.
pub fn checkpoint_text(status: &SyncerStatus) -> String {
    status
        .checkpoint
        .as_ref()
        .map_or_else(|| "-".to_owned(), |location| location.position.to_string())
}

/// Prints `error` as one report on stderr: each message of its chain once (a cause the message
/// above already says is left out), then, for this program's classified errors, the code, the
/// class and what to do. No backtrace, whatever `RUST_BACKTRACE` says.
pub fn report(error: &anyhow::Error) {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !said.iter().any(|known| known.contains(&text)) {
            said.push(text);
        }
    }
    eprintln!("error: {}", said.join(": "));
    if let Some(classified) = error.chain().find_map(classified) {
        eprintln!("  code: {} ({})", classified.code(), classified.class());
        eprintln!("  what to do: {}", classified.workaround());
    }
}

/// `cause` as one of this program's classified errors, if it is one.
fn classified<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn ClassifiedError> {
    if let Some(error) = cause.downcast_ref::<SubtaskError>() {
        return Some(error);
    }
    if let Some(error) = cause.downcast_ref::<dm::syncer::SyncerError>() {
        return Some(error);
    }
    if let Some(error) = cause.downcast_ref::<dm::sink_file::FileSinkError>() {
        return Some(error);
    }
    None
}
