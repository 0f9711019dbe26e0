//! The syncer's error type: what stopped replication, and whether retrying can help. The
//! sink's errors arrive as [`ErrorReport`]s (the syncer drives any `dm_core::Sink`), which keep
//! their class, code, message and workaround.

use dm_binlog::BinlogError;
use dm_core::{ClassifiedError, ErrorClass, ErrorCode, ErrorReport};
use dm_sink::SinkError;
use dm_task::TaskError;
use dm_task::config::ConfigError;
use dm_task::filter::RuleError;

use crate::tracker::TrackerError;

/// Errors of dm-syncer.
#[derive(Debug, thiserror::Error)]
pub enum SyncerError {
    /// Reading the upstream binlog failed.
    #[error(transparent)]
    Binlog(#[from] BinlogError),
    /// An event could not be decoded (its rows do not fit the tracked structure...).
    #[error("at {position}: {source}")]
    Event {
        /// Where.
        position: String,
        /// What.
        source: Box<BinlogError>,
    },
    /// The downstream failed (the sink's error, reported with its own class, code and
    /// workaround).
    #[error(transparent)]
    Sink(ErrorReport),
    /// The shard DDL coordinator failed (its own class and code).
    #[error("shard DDL coordination: {0}")]
    Coordinator(ErrorReport),
    /// A DDL could not be followed.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    /// A task or source file cannot be run (DM-14006), or a filter or route rule failed
    /// (DM-14002): dm-task's error, with its code.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A binlog event filter rule with action `Error` matched.
    #[error("filter rule `{rule}` stops the task at {position}: {what}")]
    Filtered {
        /// The rule.
        rule: String,
        /// Where.
        position: String,
        /// The event.
        what: String,
    },
    /// Something this syncer does not do yet, at a position.
    #[error("at {position}: {what}")]
    Unsupported {
        /// Where.
        position: String,
        /// What.
        what: String,
    },
    /// The task's state is inconsistent (a checkpoint that cannot be used).
    #[error("{0}")]
    State(String),
    /// A table of an online schema change tool (gh-ost, pt-osc) appeared while `online-ddl` is
    /// true (`InstanceRules::online_ddl_stop` gives the reason).
    #[error("at {position}: {reason}")]
    OnlineDdlTable {
        /// Where.
        position: String,
        /// The table, the rule it matched and what to do.
        reason: String,
    },
    /// A table has rows in the binlog but no table to receive them downstream.
    #[error(
        "table {table} has rows in the binlog but {downstream} does not exist downstream{detail}"
    )]
    MissingTable {
        /// The upstream table.
        table: String,
        /// Where its rows go.
        downstream: String,
        /// What else is known (no CREATE TABLE replayed, ...).
        detail: String,
    },
}

impl ClassifiedError for SyncerError {
    fn class(&self) -> ErrorClass {
        match self {
            SyncerError::Binlog(error) => error.class(),
            SyncerError::Event { source, .. } => source.class(),
            SyncerError::Sink(error) | SyncerError::Coordinator(error) => error.class(),
            SyncerError::Task(error) => error.class(),
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            SyncerError::Binlog(error) => error.code(),
            SyncerError::Event { source, .. } => source.code(),
            SyncerError::Sink(error) | SyncerError::Coordinator(error) => error.code(),
            SyncerError::Tracker(_) => ErrorCode(14001),
            SyncerError::Task(error) => error.code(),
            SyncerError::Filtered { .. } => ErrorCode(14003),
            SyncerError::Unsupported { .. } => ErrorCode(14004),
            SyncerError::State(_) => ErrorCode(14005),
            SyncerError::OnlineDdlTable { .. } => ErrorCode(14007),
            SyncerError::MissingTable { .. } => ErrorCode(14008),
        }
    }

    fn workaround(&self) -> &'static str {
        match self {
            SyncerError::Binlog(error) => error.workaround(),
            SyncerError::Event { source, .. } => source.workaround(),
            SyncerError::Sink(error) | SyncerError::Coordinator(error) => error.workaround(),
            SyncerError::Tracker(_) => {
                "check the table's structure downstream; skip or replace the DDL with the binlog operator"
            }
            SyncerError::Task(error) => error.workaround(),
            SyncerError::Filtered { .. } => {
                "the task's filter says to stop here: skip the event with the binlog operator, or change the rule"
            }
            SyncerError::Unsupported { .. } => "see the message; skip or replace the event",
            SyncerError::State(_) => "see the message",
            SyncerError::OnlineDdlTable { .. } => {
                "set `online-ddl: false` to replicate the tool's tables as plain tables, or skip the tool's events with the binlog operator"
            }
            SyncerError::MissingTable { .. } => {
                "create the table downstream (or run the task in mode all, which creates and fills it), then resume"
            }
        }
    }
}

impl SyncerError {
    /// A sink's error.
    pub fn sink(error: &impl ClassifiedError) -> Self {
        SyncerError::Sink(ErrorReport::of(error))
    }
}

impl From<SinkError> for SyncerError {
    fn from(error: SinkError) -> Self {
        SyncerError::sink(&error)
    }
}

impl From<ConfigError> for SyncerError {
    fn from(error: ConfigError) -> Self {
        SyncerError::Task(TaskError::Config(error))
    }
}

impl From<RuleError> for SyncerError {
    fn from(error: RuleError) -> Self {
        SyncerError::Task(TaskError::Rule(error))
    }
}
