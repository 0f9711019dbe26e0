//! The sink's error type. A statement error carries the downstream's MySQL error number, and its
//! class follows from it: lock waits, deadlocks, lost connections and TiDB write conflicts are
//! transient (retry the batch); duplicate keys, bad values and missing tables are definite (pause
//! the task and show the message).

use dm_core::{ClassifiedError, ErrorClass, ErrorCode, is_transient_server_error};

/// Errors of dm-sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The downstream could not be reached or the connection broke.
    #[error("connection to the downstream {address} failed: {reason}")]
    Connection {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The downstream refused a statement.
    #[error("the downstream refused {what}: ERROR {code}: {message} (statement: {sql})")]
    Statement {
        /// What was being done (`applying 12 changes to shop.items`, `DDL`...).
        what: String,
        /// The MySQL error number.
        code: u16,
        /// The server's message.
        message: String,
        /// The statement, shortened.
        sql: String,
    },
    /// The downstream table does not fit the changes (missing, or a column the changes write is
    /// not there).
    #[error("downstream table {table}: {reason}")]
    Schema {
        /// `schema.table`.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// A value cannot be written to its column.
    #[error("cannot write a value of {table}.{column}: {reason}")]
    Value {
        /// `schema.table`.
        table: String,
        /// The column.
        column: String,
        /// Why.
        reason: String,
    },
    /// TLS to the downstream cannot be set up as configured: a file that cannot be read, a
    /// server without TLS, or a server certificate the checks refuse (the reason names the CA).
    #[error("TLS to the downstream {address} failed: {reason}")]
    Tls {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// Another session holds the named lock this connection must own (another syncer of the
    /// same task and source, or a crashed one's transaction still running).
    #[error("the downstream lock `{name}` is still held by another session after {seconds} s")]
    Locked {
        /// The lock's name.
        name: String,
        /// How long this session waited.
        seconds: u64,
    },
}

impl ClassifiedError for SinkError {
    fn class(&self) -> ErrorClass {
        match self {
            SinkError::Connection { .. } => ErrorClass::Transient,
            SinkError::Statement { code, .. } if is_transient_server_error(*code) => {
                ErrorClass::Transient
            }
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            SinkError::Connection { .. } => 13001,
            SinkError::Statement { .. } => 13002,
            SinkError::Schema { .. } => 13003,
            SinkError::Value { .. } => 13004,
            SinkError::Locked { .. } => 13005,
            SinkError::Tls { .. } => 13020,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            SinkError::Connection { .. } => {
                "check that the downstream is running and reachable; the batch is retried"
            }
            SinkError::Locked { .. } => {
                "another syncer of this task and source is writing to the downstream: stop it (SHOW PROCESSLIST shows its sessions) and start again"
            }
            SinkError::Statement { code, .. } => match code {
                1062 => {
                    "a row with this key is already downstream: if the task was restarted without its checkpoint, enable safe mode; otherwise compare the table with the upstream"
                }
                1146 | 1049 => {
                    "create the table downstream (or let the task's DDL create it) and check the routes"
                }
                1054 => "the downstream table lacks a column the upstream has: align its schema",
                1366 | 1406 | 1264 | 1292 => {
                    "the downstream rejects the value: check the column type, the character set and sql_mode"
                }
                _ => "see the server's message; transient errors are retried",
            },
            SinkError::Schema { .. } => {
                "create or fix the downstream table so that it has every column the upstream writes"
            }
            SinkError::Value { .. } => "see the reason; report it with the column type",
            SinkError::Tls { .. } => {
                "check target-database.security (ssl-ca, ssl-cert, ssl-key) against the server's certificate: it must be signed by the CA and name the host connected to; the server needs TLS on"
            }
        }
    }
}
