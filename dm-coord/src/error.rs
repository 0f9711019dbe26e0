//! The coordination store's error type.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};

use crate::store::{LeaseId, Revision};

/// Errors of dm-coord.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordError {
    /// The store cannot be reached right now (network, leader change, restart): retry with
    /// backoff.
    #[error("coordination store {endpoint} is unavailable: {reason}")]
    Unavailable {
        /// Which store or endpoint.
        endpoint: String,
        /// What was observed.
        reason: String,
    },
    /// The store's address or credentials are wrong: retrying cannot help.
    #[error("coordination store {endpoint} refused the connection: {reason}")]
    Refused {
        /// Which endpoint.
        endpoint: String,
        /// Why (bad address, authentication).
        reason: String,
    },
    /// A watch asked for history the store has compacted away.
    #[error(
        "revision {requested} is compacted (history starts after {compacted}); read the current state and watch from its revision"
    )]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The last compacted revision.
        compacted: Revision,
    },
    /// The lease expired or was revoked.
    #[error("lease {lease:?} not found: it expired or was revoked")]
    LeaseNotFound {
        /// The lease.
        lease: LeaseId,
    },
    /// The embedded store's files failed.
    #[error("embedded coordination store at {path}: {reason}")]
    Storage {
        /// Its directory or file.
        path: String,
        /// The storage error.
        reason: String,
    },
    /// A request the store cannot serve (an invalid TTL, an empty key).
    #[error("invalid coordination request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
}

impl ClassifiedError for CoordError {
    fn class(&self) -> ErrorClass {
        match self {
            CoordError::Unavailable { .. } => ErrorClass::Transient,
            CoordError::Refused { .. }
            | CoordError::Compacted { .. }
            | CoordError::LeaseNotFound { .. }
            | CoordError::Storage { .. }
            | CoordError::InvalidRequest { .. } => ErrorClass::Definite,
        }
    }

    fn code(&self) -> ErrorCode {
        ErrorCode(match self {
            CoordError::Unavailable { .. } => 16001,
            CoordError::Refused { .. } => 16002,
            CoordError::Compacted { .. } => 16003,
            CoordError::LeaseNotFound { .. } => 16004,
            CoordError::Storage { .. } => 16005,
            CoordError::InvalidRequest { .. } => 16006,
        })
    }

    fn workaround(&self) -> &'static str {
        match self {
            CoordError::Unavailable { .. } => {
                "check that the store's members run and are reachable; requests are retried"
            }
            CoordError::Refused { .. } => {
                "check the endpoints and credentials in the master/worker configuration"
            }
            CoordError::Compacted { .. } => {
                "read the current state again and watch from its revision"
            }
            CoordError::LeaseNotFound { .. } => {
                "grant a new lease; keys under the old one are gone"
            }
            CoordError::Storage { .. } => {
                "check the directory's disk space and permissions; restore it from a backup if it is damaged"
            }
            CoordError::InvalidRequest { .. } => "report this bug with the request that was made",
        }
    }
}
