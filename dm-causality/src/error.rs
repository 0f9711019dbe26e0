//! The crate's error type. The core is pure: the only failure is a configuration that cannot work.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};

/// Errors of dm-causality.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CausalityError {
    /// `worker-count` must be at least 1.
    #[error("worker count {workers} is invalid: it must be between 1 and 4294967295")]
    InvalidWorkerCount {
        /// The given count.
        workers: usize,
    },
}

impl ClassifiedError for CausalityError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Definite
    }

    fn code(&self) -> ErrorCode {
        match self {
            CausalityError::InvalidWorkerCount { .. } => ErrorCode(12001),
        }
    }

    fn workaround(&self) -> &'static str {
        "set `worker-count` in the task's syncer configuration to a positive number (DM's default is 16)"
    }
}
