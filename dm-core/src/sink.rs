//! The [`Sink`] trait: where row changes and DDL leave the pipeline.
//!
//! ```text
//! binlog source -> syncer (filters, routes, causality, batches) -> Sink -> downstream database
//! ```
//!
//! A sink applies one batch at a time. `Ok` is the downstream's acknowledgement: everything in the
//! batch is durable downstream, and only then may the caller advance its checkpoint past it.
//! An `Err` means none of the batch is applied (a batch runs in one downstream transaction), and
//! its [`ClassifiedError::class`] says whether to retry (transient) or pause the task (definite).
//!
//! [`ApplyMode::Idempotent`] is DM's *safe mode*: every change is written so that applying it again
//! leaves the same table (INSERT becomes REPLACE, UPDATE becomes DELETE of the old key + REPLACE).
//! The syncer asks for it while it replays events that may already be downstream.

use std::future::Future;

use crate::ddl::DdlStatement;
use crate::error::ClassifiedError;
use crate::row::RowChange;

/// How a sink writes row changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplyMode {
    /// Plain INSERT / UPDATE / DELETE: a duplicate key or a missing row is an error.
    Exact,
    /// Safe mode: every change can be applied twice with the same result.
    Idempotent,
}

/// A downstream that applies row changes and DDL statements.
pub trait Sink: Send {
    /// The sink's error; its class tells the caller whether to retry.
    type Error: ClassifiedError;

    /// Applies `changes` in order, all or nothing. Returns once the downstream committed them.
    ///
    /// Cancel safety: not cancel-safe; if the future is dropped, the batch may or may not be
    /// committed, so the caller must treat it as unacknowledged and replay it idempotently.
    fn apply_changes(
        &mut self,
        changes: &[RowChange],
        mode: ApplyMode,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Executes one DDL statement. Returns once the downstream finished it.
    ///
    /// Cancel safety: as for [`Sink::apply_changes`].
    fn apply_ddl(
        &mut self,
        statement: &DdlStatement,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
