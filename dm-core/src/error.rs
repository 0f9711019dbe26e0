//! Error classes, stable error codes, and the errors of the vocabulary itself.
//!
//! Every crate of the family has one `thiserror` enum. Each variant knows three things that the
//! caller acts on without parsing a message:
//!
//! - its [`ErrorClass`]: **transient** (retry with backoff, the same input may succeed later),
//!   **definite** (pause the task and tell the user; retrying cannot help), or **bug** (an invariant
//!   of ours broke; stop and report);
//! - its stable [`ErrorCode`], printed as `DM-NNNNN`, which never changes meaning once released
//!   (the ranges per crate are listed on [`ErrorCode`]);
//! - a one-line workaround that tells the user what to do.
//!
//! The [`ClassifiedError`] trait exposes the three; `docs/error-codes.md` lists every code. A
//! stage that drives a trait whose implementation's error it cannot name (the syncer driving
//! any sink) keeps an [`ErrorReport`]: the three and the message, as data.
//! Messages follow the house style: one layer, lowercase, no trailing period.

use std::fmt;

/// What the caller should do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The same operation may succeed later (lost connection, deadlock, lock wait timeout,
    /// an unreachable coordination store): retry with backoff.
    Transient,
    /// Retrying cannot help (bad configuration, a missing privilege, malformed input, a
    /// downstream constraint violation): pause the task and tell the user what to fix.
    Definite,
    /// An invariant of this program broke: stop, keep the evidence, report it.
    Bug,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Definite => "definite",
            ErrorClass::Bug => "bug",
        })
    }
}

/// A stable error code, printed as `DM-NNNNN`.
///
/// Ranges, one per crate, so that a code tells where it came from:
///
/// | range | crate |
/// |---|---|
/// | 10000-10999 | dm-core (10900: the test suite's scripted failures) |
/// | 11000-11999 | dm-binlog |
/// | 12000-12999 | dm-causality |
/// | 13000-13999 | dm-sink; 13100-13199 dm-sink-file |
/// | 14000-14999 | dm-syncer; 14002 and 14006 are dm-task's (the task configuration was part of dm-syncer when they were released) |
/// | 15000-15999 | dm-dumpload |
/// | 16000-16999 | dm-coord |
/// | 17000-17999 | dm-shardddl |
/// | 18000-18999 | dm-cluster |
/// | 19000-19999 | dm-testkit |
/// | 20000-20999 | dm-mysql (created after the others, so out of the layer order) |
/// | 21000-21999 | dm-subtask (likewise) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "DM-{:05}", self.0)
    }
}

/// An error that knows its class, its stable code and what the user can do about it.
pub trait ClassifiedError: std::error::Error + Send + Sync + 'static {
    /// Whether to retry, pause or stop.
    fn class(&self) -> ErrorClass;
    /// The stable code of this kind of error.
    fn code(&self) -> ErrorCode;
    /// One line telling the user what to do.
    fn workaround(&self) -> &'static str;
}

/// Any [`ClassifiedError`] captured as data: its class, code, message and workaround.
///
/// A stage that drives a trait (the syncer drives any [`crate::Sink`]) cannot name the
/// implementation's error type in its own error enum; it keeps the report instead, which
/// prints, classes and explains itself exactly as the original did.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ErrorReport {
    /// The original error's class.
    pub class: ErrorClass,
    /// The original error's code.
    pub code: ErrorCode,
    /// The original error's message (its `Display`).
    pub message: String,
    /// The original error's workaround.
    pub workaround: &'static str,
}

impl ErrorReport {
    /// The report of `error`.
    pub fn of(error: &impl ClassifiedError) -> Self {
        ErrorReport {
            class: error.class(),
            code: error.code(),
            message: error.to_string(),
            workaround: error.workaround(),
        }
    }
}

impl ClassifiedError for ErrorReport {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn code(&self) -> ErrorCode {
        self.code
    }

    fn workaround(&self) -> &'static str {
        self.workaround
    }
}

/// Errors of the shared vocabulary: text that does not parse into a position, a GTID set, a
/// value, or a schema that contradicts itself. All of them are definite: the input is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A GTID set string is malformed; `part` is the piece that failed.
    #[error("invalid {flavor} GTID set `{input}`: `{part}` {reason}")]
    InvalidGtidSet {
        /// `MySQL` or `MariaDB`.
        flavor: &'static str,
        /// The whole text that was parsed.
        input: String,
        /// The part of it that is wrong.
        part: String,
        /// Why that part is wrong.
        reason: String,
    },
    /// A single GTID is malformed.
    #[error("invalid {flavor} GTID `{input}`: {reason}")]
    InvalidGtid {
        /// `MySQL` or `MariaDB`.
        flavor: &'static str,
        /// The text that was parsed.
        input: String,
        /// Why it is wrong.
        reason: String,
    },
    /// Two GTID sets (or a set and a GTID) of different flavours were combined.
    #[error("cannot combine a {left} GTID set with a {right} one")]
    GtidFlavorMismatch {
        /// Flavour of the left operand.
        left: &'static str,
        /// Flavour of the right operand.
        right: &'static str,
    },
    /// A binlog file name has no numeric extension.
    #[error("invalid binlog file name `{input}`: {reason}")]
    InvalidBinlogFileName {
        /// The text that was parsed.
        input: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A binlog file sequence number cannot grow any further.
    #[error("binlog file `{name}` has no successor: its sequence number is at the maximum")]
    BinlogSequenceExhausted {
        /// The last file name.
        name: String,
    },
    /// A DECIMAL literal is not a decimal number.
    #[error("invalid decimal `{input}`: {reason}")]
    InvalidDecimal {
        /// The text that was parsed.
        input: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A table schema contradicts itself (duplicate column, key on a missing column, two PKs).
    #[error("invalid schema of table {table}: {reason}")]
    InvalidTableSchema {
        /// The table, quoted.
        table: String,
        /// What is contradictory.
        reason: String,
    },
    /// A column type is not one this project handles.
    #[error("column type `{column_type}`: {reason}")]
    UnsupportedColumnType {
        /// The type as written.
        column_type: String,
        /// Why.
        reason: String,
    },
    /// A row does not have as many values as its table has columns.
    #[error("row of table {table} has {actual} values, the table has {expected} columns")]
    RowWidthMismatch {
        /// The table, quoted.
        table: String,
        /// Number of columns in the schema.
        expected: usize,
        /// Number of values in the row.
        actual: usize,
    },
}

/// Whether a MySQL / MariaDB / TiDB server error number is worth retrying: too many
/// connections, shutdown in progress, network errors the server reports, lock wait timeouts,
/// deadlocks, interrupted or killed connections, lost connections, and TiDB's write conflicts,
/// retryable transactions and unavailable regions. Everything else is definite.
pub fn is_transient_server_error(code: u16) -> bool {
    matches!(
        code,
        1040 | 1053
            | 1152..=1161
            | 1205
            | 1213
            | 1317
            | 1927
            | 2006
            | 2013
            | 8002
            | 8022
            | 8027
            | 8028
            | 9001..=9007
    )
}

impl ClassifiedError for CoreError {
    fn class(&self) -> ErrorClass {
        match self {
            CoreError::RowWidthMismatch { .. } => ErrorClass::Bug,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            CoreError::InvalidGtidSet { .. } => 10001,
            CoreError::InvalidGtid { .. } => 10002,
            CoreError::GtidFlavorMismatch { .. } => 10003,
            CoreError::InvalidBinlogFileName { .. } => 10004,
            CoreError::BinlogSequenceExhausted { .. } => 10005,
            CoreError::InvalidDecimal { .. } => 10006,
            CoreError::InvalidTableSchema { .. } => 10007,
            CoreError::RowWidthMismatch { .. } => 10008,
            CoreError::UnsupportedColumnType { .. } => 10009,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            CoreError::InvalidGtidSet { .. } | CoreError::InvalidGtid { .. } => {
                "write MySQL GTID sets as `uuid:1-5:7,uuid:tag:1-3` and MariaDB ones as `domain-server-sequence,...`; copy them from @@gtid_executed or @@gtid_binlog_pos"
            }
            CoreError::GtidFlavorMismatch { .. } => {
                "check the source's `flavor`: a MySQL source has uuid-based GTIDs, a MariaDB source domain-server-sequence ones"
            }
            CoreError::InvalidBinlogFileName { .. } => {
                "give the binlog file name as SHOW BINARY LOGS prints it, such as `mysql-bin.000042`"
            }
            CoreError::BinlogSequenceExhausted { .. } => {
                "run RESET MASTER upstream only after re-syncing, or start from a GTID set"
            }
            CoreError::InvalidDecimal { .. } => {
                "write decimals as digits with an optional sign and point, such as `-12.50`"
            }
            CoreError::InvalidTableSchema { .. } => {
                "check the CREATE TABLE statement the schema was built from"
            }
            CoreError::RowWidthMismatch { .. } => {
                "report this bug with the table's CREATE TABLE and the binlog position"
            }
            CoreError::UnsupportedColumnType { .. } => {
                "use a MySQL/MariaDB column type the project supports (see the README), or report the type"
            }
        }
    }
}

/// Whether an I/O error says the file system is full (ENOSPC) or the user's disk quota is used
/// up (EDQUOT): what it is, in words, for the disk-full errors of the crates that write files
/// (the relay log, the dump directory); `None` for any other error.
pub fn disk_full(error: &std::io::Error) -> Option<&'static str> {
    match (error.kind(), error.raw_os_error()) {
        (std::io::ErrorKind::QuotaExceeded, _) | (_, Some(122)) => {
            Some("the disk quota is used up")
        }
        (std::io::ErrorKind::StorageFull, _) | (_, Some(28)) => {
            Some("no space left on the file system")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_with_prefix_and_five_digits() {
        assert_eq!(ErrorCode(10001).to_string(), "DM-10001");
        let error = CoreError::GtidFlavorMismatch {
            left: "MySQL",
            right: "MariaDB",
        };
        assert_eq!(error.code(), ErrorCode(10003));
        assert_eq!(error.class(), ErrorClass::Definite);
        assert_eq!(
            error.to_string(),
            "cannot combine a MySQL GTID set with a MariaDB one"
        );
        let report = ErrorReport::of(&error);
        assert_eq!(report.to_string(), error.to_string());
        assert_eq!(
            (report.class(), report.code(), report.workaround()),
            (error.class(), error.code(), error.workaround())
        );
    }
}
