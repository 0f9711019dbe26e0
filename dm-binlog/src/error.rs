//! The binlog crate's error type. Every decoding failure names the position of the event.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};

/// Errors of dm-binlog.
#[derive(Debug, thiserror::Error)]
pub enum BinlogError {
    /// A file does not start with the binlog magic number.
    #[error("{path} is not a binlog file: it does not start with the magic bytes fe 62 69 6e")]
    NotABinlog {
        /// The file.
        path: String,
    },
    /// An event's CRC32 does not match its bytes.
    #[error(
        "event at {position} ({event_type}) fails its checksum: stored {stored:08x}, computed {computed:08x}"
    )]
    ChecksumMismatch {
        /// Where the event starts (`file:offset`).
        position: String,
        /// The event type's name.
        event_type: String,
        /// The checksum in the event.
        stored: u32,
        /// The checksum of its bytes.
        computed: u32,
    },
    /// An event's bytes do not follow its format.
    #[error("malformed {event_type} event at {position}: {reason}")]
    Malformed {
        /// Where the event starts (`file:offset`).
        position: String,
        /// The event type's name.
        event_type: String,
        /// What is wrong.
        reason: String,
    },
    /// A row image cannot be decoded with the table's map and tracked schema.
    #[error("cannot decode a row of {table}: {reason}")]
    UndecodableRow {
        /// The table, `schema.table`.
        table: String,
        /// What failed (names the column).
        reason: String,
    },
    /// Reading a file failed.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ClassifiedError for BinlogError {
    fn class(&self) -> ErrorClass {
        match self {
            BinlogError::Io { .. } => ErrorClass::Transient,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            BinlogError::NotABinlog { .. } => 11001,
            BinlogError::ChecksumMismatch { .. } => 11002,
            BinlogError::Malformed { .. } => 11003,
            BinlogError::Io { .. } => 11004,
            BinlogError::UndecodableRow { .. } => 11005,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            BinlogError::NotABinlog { .. } => "point the reader at a binlog or relay log file",
            BinlogError::ChecksumMismatch { .. } => {
                "the binlog is damaged at this position: re-fetch it from the upstream (purge the relay log from here) or skip the event with the binlog operator"
            }
            BinlogError::Malformed { .. } => {
                "report the event bytes (mysqlbinlog --hexdump at this position) with the server version"
            }
            BinlogError::Io { .. } => {
                "check that the file exists and is readable; reads are retried"
            }
            BinlogError::UndecodableRow { .. } => {
                "check that the tracked schema matches the upstream table and binlog_row_image=FULL; report types not decoded yet"
            }
        }
    }
}
