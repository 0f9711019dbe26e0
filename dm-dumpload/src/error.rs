//! The error type of dm-dumpload: every variant names what failed and what to do.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode, ErrorReport, is_transient_server_error};

/// Errors of dm-dumpload.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The upstream refused a statement for lack of a privilege.
    #[error("the upstream user lacks {privilege} (`{statement}` failed: {message}); {advice}")]
    Privilege {
        /// The privilege (`RELOAD`, `REPLICATION CLIENT`...).
        privilege: &'static str,
        /// The statement that needed it.
        statement: String,
        /// The server's message.
        message: String,
        /// What to do.
        advice: &'static str,
    },
    /// The upstream failed a statement.
    #[error("upstream `{statement}` failed: {message} (error {code})")]
    Server {
        /// The statement.
        statement: String,
        /// The server's error number (0 when the connection failed).
        code: u16,
        /// The message.
        message: String,
    },
    /// The upstream answered something this crate cannot use.
    #[error("{0}")]
    Unexpected(String),
    /// Reading or writing a dump file failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The dump directory's file system is full (ENOSPC) or its user's disk quota is used up
    /// (EDQUOT). The chunk file being written was removed, so no file in the directory is
    /// torn; the next attempt removes the incomplete dump's files and dumps again.
    #[error(
        "{what} in the dump directory {directory}: writing {file} failed with {written} bytes of the dump on disk; the dump needs about {needed} bytes, {available} bytes are free"
    )]
    DiskFull {
        /// The dump directory.
        directory: String,
        /// The file being written.
        file: String,
        /// `no space left on the file system` or `the disk quota is used up`.
        what: &'static str,
        /// Bytes of complete chunk files written before the failure.
        written: u64,
        /// About what the whole dump needs: the upstream's estimate of the tables' size, or
        /// what was written plus the write that failed when that is more.
        needed: u64,
        /// Bytes free for this user on the file system after the failed file was removed.
        available: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A dump file does not hold what the dump's metadata says it holds.
    #[error(
        "dump file {path} is corrupted: {reason}; dump again (the loader refuses files that changed since the dump)"
    )]
    Corrupted {
        /// The file.
        path: String,
        /// What does not match.
        reason: String,
    },
    /// The downstream refused a statement or could not be reached.
    #[error("loading {what}: {source}")]
    Downstream {
        /// What was being loaded (`shop.items chunk 3 from <path>`, `the schemas`...).
        what: String,
        /// The sink's error, with its class, code and workaround.
        #[source]
        source: ErrorReport,
    },
    /// The task's dump or load options are wrong (a key or `extra-args` option refused, a
    /// `timezone` or `-B` database the upstream does not know).
    #[error("{0}")]
    Config(String),
    /// The load state stored downstream does not fit this load.
    #[error("{0}")]
    State(String),
    /// TLS to the upstream cannot be set up as its `from.security` asks (a file that cannot be
    /// read, a server without TLS, a certificate the checks refuse: the reason names the CA).
    #[error("TLS to the upstream {address} failed: {reason}")]
    Tls {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The dump ended before it delivered a chunk (its own error is reported separately).
    #[error("the dump stopped before {0} was complete")]
    Interrupted(String),
}

impl ClassifiedError for DumpError {
    fn class(&self) -> ErrorClass {
        match self {
            DumpError::Server { code, .. } if *code == 0 || is_transient_server_error(*code) => {
                ErrorClass::Transient
            }
            DumpError::Downstream { source, .. } => source.class(),
            DumpError::Interrupted(_) => ErrorClass::Transient,
            // Transient so that the subtask dumps again by itself, with its backoff, once space
            // is freed (DM pauses for the user; the directory is consistent either way).
            DumpError::DiskFull { .. } => ErrorClass::Transient,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            DumpError::Privilege { .. } => ErrorCode(15001),
            DumpError::Server { .. } => ErrorCode(15002),
            DumpError::Unexpected(_) => ErrorCode(15003),
            DumpError::File { .. } => ErrorCode(15004),
            DumpError::Corrupted { .. } => ErrorCode(15005),
            DumpError::Downstream { .. } => ErrorCode(15006),
            DumpError::Config(_) => ErrorCode(15007),
            DumpError::State(_) => ErrorCode(15008),
            DumpError::Interrupted(_) => ErrorCode(15009),
            DumpError::DiskFull { .. } => ErrorCode(15010),
            DumpError::Tls { .. } => ErrorCode(15020),
        }
    }

    fn workaround(&self) -> &'static str {
        match self {
            DumpError::Privilege { advice, .. } => advice,
            DumpError::Server { .. } => "check the upstream's address, user and state",
            DumpError::Unexpected(_) => "see the message",
            DumpError::File { .. } => "check the dump directory's path, space and permissions",
            DumpError::Corrupted { .. } => "dump again into an empty directory",
            DumpError::DiskFull { .. } => {
                "free space in the dump directory (loaders dir) or move it to a larger file system; the subtask dumps again with backoff once the space is there (turn on clean-dump-file so that loaded dumps do not stay)"
            }
            DumpError::Downstream { .. } => {
                "check the downstream; a resumed load continues with the chunks not yet loaded"
            }
            DumpError::Config(_) => {
                "fix the task's mydumpers / loaders section (or its timezone) as the message says"
            }
            DumpError::State(_) => {
                "start the task with --remove-meta to forget the earlier load, or load the same dump again"
            }
            DumpError::Interrupted(_) => "see the dump's error; resuming loads the rest",
            DumpError::Tls { .. } => {
                "check the source's from.security (ssl-ca, ssl-cert, ssl-key) against the server's certificate: it must be signed by the CA and name the host connected to; the server needs TLS on"
            }
        }
    }
}

/// An upstream client error as [`DumpError::Server`].
pub(crate) fn server_error(statement: &str, error: mysql_async::Error) -> DumpError {
    match error {
        mysql_async::Error::Server(server) => DumpError::Server {
            statement: statement.to_owned(),
            code: server.code,
            message: server.message,
        },
        other => DumpError::Server {
            statement: statement.to_owned(),
            code: 0,
            message: other.to_string(),
        },
    }
}

/// A failed read of an upstream table's structure: the server's refusal or a broken connection
/// as [`DumpError::Server`], a table this program cannot represent as
/// [`DumpError::Unexpected`] (definite: reading it again cannot help).
pub(crate) fn catalog_error(error: dm_mysql::MySqlError) -> DumpError {
    match error {
        dm_mysql::MySqlError::Client { what, source } => server_error(&what, source),
        unsupported @ dm_mysql::MySqlError::UnsupportedTable { .. } => {
            DumpError::Unexpected(unsupported.to_string())
        }
    }
}
