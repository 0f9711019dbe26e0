//! The file sink's error: a write that failed (transient: the block was cut off again and may
//! be retried), a feed that cannot be read back or belongs to another writer (definite), and a
//! writer thread that is gone (a bug).

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};

/// Errors of dm-sink-file.
#[derive(Debug, thiserror::Error)]
pub enum FileSinkError {
    /// Reading, writing or syncing the feed failed; what was being written is not in it.
    #[error("{path}: {reason}")]
    Io {
        /// The feed file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The feed holds something that is not a complete block before its last complete one
    /// (not a torn tail: the file was changed by something else).
    #[error("{path} is damaged at byte {offset}: {reason}")]
    Damaged {
        /// The feed file.
        path: String,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another process writes the feed (it holds the file's lock).
    #[error("{path} is being written by another process")]
    Locked {
        /// The feed file.
        path: String,
    },
    /// The feed's checkpoints belong to another source.
    #[error("{path} holds the checkpoints of source `{stored}`, not of `{expected}`")]
    OtherSource {
        /// The feed file.
        path: String,
        /// The source it holds.
        stored: String,
        /// The source this sink was opened for.
        expected: String,
    },
    /// The feed's writer thread stopped (it panicked, or a write left the file in an unknown
    /// state it could not cut back).
    #[error("the writer of {path} stopped: {reason}")]
    Stopped {
        /// The feed file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl ClassifiedError for FileSinkError {
    fn class(&self) -> ErrorClass {
        match self {
            FileSinkError::Io { .. } => ErrorClass::Transient,
            FileSinkError::Stopped { .. } => ErrorClass::Bug,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            FileSinkError::Io { .. } => 13101,
            FileSinkError::Damaged { .. } => 13102,
            FileSinkError::Locked { .. } => 13103,
            FileSinkError::OtherSource { .. } => 13104,
            FileSinkError::Stopped { .. } => 13105,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            FileSinkError::Io { .. } => {
                "check the disk (space, permissions); the write is retried from the last complete block"
            }
            FileSinkError::Damaged { .. } => {
                "restore the feed from a copy, or cut it at the last complete block before the offset by hand"
            }
            FileSinkError::Locked { .. } => "stop the other process that writes this feed",
            FileSinkError::OtherSource { .. } => "give each source of a task its own feed file",
            FileSinkError::Stopped { .. } => "report this bug with the feed's last lines",
        }
    }
}
