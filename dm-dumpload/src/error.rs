//! The error type of dm-dumpload.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode, is_transient_server_error};

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
}

impl ClassifiedError for DumpError {
    fn class(&self) -> ErrorClass {
        match self {
            DumpError::Server { code, .. } if *code == 0 || is_transient_server_error(*code) => {
                ErrorClass::Transient
            }
            _ => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            DumpError::Privilege { .. } => ErrorCode(15001),
            DumpError::Server { .. } => ErrorCode(15002),
            DumpError::Unexpected(_) => ErrorCode(15003),
        }
    }

    fn workaround(&self) -> &'static str {
        match self {
            DumpError::Privilege { advice, .. } => advice,
            DumpError::Server { .. } => "check the upstream's address, user and state",
            DumpError::Unexpected(_) => "see the message",
        }
    }
}
