//! The subtask's errors: its own (files, the task's instance for the source, the start point,
//! connections, commands) with codes DM-21001 to DM-21007, and its units' errors (dm-task,
//! dm-dumpload, dm-syncer) wrapped with their own class, code and workaround.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};
use dm_dumpload::DumpError;
use dm_syncer::SyncerError;
use dm_task::TaskError;
use dm_task::config::ConfigError;

/// Errors of dm-subtask.
#[derive(Debug, thiserror::Error)]
pub enum SubtaskError {
    /// A task or source file could not be read (DM-21001).
    #[error("cannot read {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why (the operating system's words).
        reason: String,
    },
    /// The task or source file cannot be run: dm-task's error, with its code (DM-14006,
    /// DM-14002).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The task names no instance for the source (DM-21002).
    #[error("{task_file}: no mysql-instances entry has source-id `{source_id}` (the source's id)")]
    NoInstance {
        /// The task file's name.
        task_file: String,
        /// The source's id.
        source_id: String,
    },
    /// Where replication starts cannot be told (DM-21003): no `meta` for an incremental task, a
    /// `meta` that does not parse, no transaction at or after `--start-time`.
    #[error("{file}: {reason}")]
    StartPoint {
        /// The task file's name (or the option that gave the start).
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A server cannot be reached or refused the login (DM-21004): lost connections and
    /// servers starting up are transient, a refused login or an unknown host definite.
    #[error("cannot connect to the {role} at {address} ({origin}): {reason}")]
    Connect {
        /// `upstream` or `downstream`.
        role: &'static str,
        /// `host:port`.
        address: String,
        /// Where the address comes from (`source.yaml: from`, `task.yaml: target-database`).
        origin: String,
        /// The innermost cause, once.
        reason: String,
        /// Transient or definite.
        class: ErrorClass,
    },
    /// The dump or the load failed: dm-dumpload's error, with its code (DM-150xx).
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// The syncer failed: dm-syncer's error, with its code (DM-14xxx, or the sink's or the
    /// binlog's).
    #[error(transparent)]
    Sync(#[from] SyncerError),
    /// `binlog skip | replace | inject` without a position while the subtask is not paused at
    /// an event's error (DM-21005).
    #[error(
        "binlog {operation}: no position given, and the subtask is not paused at an event's error"
    )]
    NoErrorPosition {
        /// `skip`, `replace` or `inject`.
        operation: &'static str,
    },
    /// The subtask has ended: its task finished, stopped, or was dropped (DM-21006).
    #[error("subtask {name} has ended")]
    Ended {
        /// The subtask's name (`task/source`).
        name: String,
    },
    /// The subtask's task panicked (DM-21007).
    #[error("subtask {name} stopped unexpectedly: {reason}")]
    Panicked {
        /// The subtask's name.
        name: String,
        /// The panic's message.
        reason: String,
    },
}

impl ClassifiedError for SubtaskError {
    fn class(&self) -> ErrorClass {
        match self {
            SubtaskError::Task(error) => error.class(),
            SubtaskError::Dump(error) => error.class(),
            SubtaskError::Sync(error) => error.class(),
            SubtaskError::Connect { class, .. } => *class,
            SubtaskError::Panicked { .. } => ErrorClass::Bug,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            SubtaskError::File { .. } => ErrorCode(21001),
            SubtaskError::Task(error) => error.code(),
            SubtaskError::NoInstance { .. } => ErrorCode(21002),
            SubtaskError::StartPoint { .. } => ErrorCode(21003),
            SubtaskError::Connect { .. } => ErrorCode(21004),
            SubtaskError::Dump(error) => error.code(),
            SubtaskError::Sync(error) => error.code(),
            SubtaskError::NoErrorPosition { .. } => ErrorCode(21005),
            SubtaskError::Ended { .. } => ErrorCode(21006),
            SubtaskError::Panicked { .. } => ErrorCode(21007),
        }
    }

    fn workaround(&self) -> &'static str {
        match self {
            SubtaskError::File { .. } => "check the path and that the file is readable",
            SubtaskError::Task(error) => error.workaround(),
            SubtaskError::NoInstance { .. } => {
                "add a mysql-instances entry with the source's source-id to the task, or use the task's source file"
            }
            SubtaskError::StartPoint { .. } => {
                "give the instance a meta (binlog-name and binlog-pos, or binlog-gtid with enable-gtid), a start time, or run the task in mode all"
            }
            SubtaskError::Connect { .. } => {
                "check that the server runs and listens at that address, and the user and password in the file"
            }
            SubtaskError::Dump(error) => error.workaround(),
            SubtaskError::Sync(error) => error.workaround(),
            SubtaskError::NoErrorPosition { .. } => {
                "give the position of the event (file:offset, from query-status or the error)"
            }
            SubtaskError::Ended { .. } => "start the subtask again",
            SubtaskError::Panicked { .. } => {
                "report it with the subtask's last status; start the subtask again, it resumes from its checkpoints"
            }
        }
    }
}

impl From<ConfigError> for SubtaskError {
    fn from(error: ConfigError) -> Self {
        SubtaskError::Task(TaskError::Config(error))
    }
}

impl SubtaskError {
    /// A failed connection to the `role` server at `address`: its innermost cause, once, and
    /// its class (a refused login or an unknown database is definite, the rest transient).
    pub(crate) fn connect(
        role: &'static str,
        address: String,
        origin: &str,
        error: &mysql_async::Error,
    ) -> Self {
        let class = match error {
            // 1044/1045: access denied; 1049: unknown database.
            mysql_async::Error::Server(server) if matches!(server.code, 1044 | 1045 | 1049) => {
                ErrorClass::Definite
            }
            mysql_async::Error::Url(_) => ErrorClass::Definite,
            _ => ErrorClass::Transient,
        };
        SubtaskError::Connect {
            role,
            address,
            origin: origin.to_owned(),
            reason: innermost(error),
            class,
        }
    }
}

/// The innermost cause of `error` (the driver wraps an OS error in layers that repeat it).
pub(crate) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

impl From<dm_task::filter::RuleError> for SubtaskError {
    fn from(error: dm_task::filter::RuleError) -> Self {
        SubtaskError::Task(TaskError::Rule(error))
    }
}
