//! The test kit's error type.

use std::time::Duration;

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};

/// What went wrong while starting, using or checking a test server.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A server binary is not installed; tests skip (or fail when `CI=true`).
    #[error("`{binary}` is not available: {hint}")]
    MissingBinary {
        /// The binary's name or path.
        binary: String,
        /// What to do about it.
        hint: String,
    },
    /// The shared fixtures (`../shared/fixtures`) are not there; tests skip (or fail in CI).
    #[error("fixture `{path}` is not available: {hint}")]
    MissingFixture {
        /// Where it was looked for.
        path: String,
        /// What to do about it.
        hint: String,
    },
    /// The test needs a privilege this process lacks (mounting a tmpfs needs root); tests skip
    /// (or fail when `CI=true`).
    #[error("not permitted to {what}: {hint}")]
    NotPermitted {
        /// What was tried.
        what: String,
        /// Why it failed and what to do.
        hint: String,
    },
    /// A file or process operation failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A server exited or never answered during start-up.
    #[error("{server} did not start: {reason}\n--- last lines of its log ---\n{log_tail}")]
    ServerDidNotStart {
        /// Which server.
        server: String,
        /// What was observed.
        reason: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A SQL statement failed.
    #[error("SQL failed on {server}: {sql}: {source}")]
    Sql {
        /// Which server.
        server: String,
        /// The statement (shortened).
        sql: String,
        /// The client error.
        #[source]
        source: mysql_async::Error,
    },
    /// A condition did not become true in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
}

impl TestkitError {
    /// Whether this is the "binary not installed" case.
    pub fn is_missing_binary(&self) -> bool {
        matches!(self, TestkitError::MissingBinary { .. })
    }

    /// Whether a prerequisite outside the repository (a server binary, the shared fixtures) is
    /// missing: the case tests skip on outside CI.
    pub fn is_missing_prerequisite(&self) -> bool {
        matches!(
            self,
            TestkitError::MissingBinary { .. }
                | TestkitError::MissingFixture { .. }
                | TestkitError::NotPermitted { .. }
        )
    }
}

impl ClassifiedError for TestkitError {
    fn class(&self) -> ErrorClass {
        match self {
            TestkitError::Timeout { .. } | TestkitError::Sql { .. } => ErrorClass::Transient,
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            TestkitError::MissingBinary { .. } => 19001,
            TestkitError::Io { .. } => 19002,
            TestkitError::ServerDidNotStart { .. } => 19003,
            TestkitError::Sql { .. } => 19004,
            TestkitError::Timeout { .. } => 19005,
            TestkitError::MissingFixture { .. } => 19006,
            TestkitError::NotPermitted { .. } => 19007,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            TestkitError::MissingBinary { .. } => {
                "run `bash scripts/setup.sh` to install mariadb-server and etcd-server"
            }
            TestkitError::MissingFixture { .. } => {
                "check out the shared material beside the repository (../shared) or set DM_SHARED_DIR"
            }
            TestkitError::NotPermitted { .. } => {
                "run the tests as root (the disk-full tests mount a small tmpfs)"
            }
            TestkitError::Io { .. } => {
                "check free disk space and permissions of the temp directory"
            }
            TestkitError::ServerDidNotStart { .. } => "read the server log lines in the message",
            TestkitError::Sql { .. } => "check the statement against the server's error message",
            TestkitError::Timeout { .. } => {
                "the machine may be overloaded; rerun with fewer test threads"
            }
        }
    }
}
