//! The shard coordinator as the event loop holds it: any `dm_core::ShardCoordinator`, behind
//! one object-safe seam ([`Coordination`]) so that the loop's many files need no second type
//! parameter. DDL events are rare and a resolution is awaited only while a table is held, so
//! the boxed futures cost nothing on the row path.
//!
//! ```text
//! run_coordinated(.., coordinator) --Box<dyn Coordination>--> EventLoop::coordinator
//!   resume:   restore(the holds the checkpoint kept)
//!   ddl_apply: decide(ShardDdl) -> Execute(statements) | Skip | Hold
//!   event loop: next_resolution (selected beside the stream while a table is held; cancel-safe)
//! ```
//!
//! Invariants: errors keep the coordinator's class and code (`SyncerError::Coordinator`); a
//! resolution is never lost by cancelling (the coordinator promises cancel safety).

use std::future::Future;
use std::pin::Pin;

use dm_core::{DdlDecision, ErrorReport, ShardCoordinator, ShardDdl, ShardHold, ShardResolution};

use crate::error::SyncerError;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, SyncerError>> + Send + 'a>>;

/// A `ShardCoordinator`, object-safe.
pub(crate) trait Coordination: Send {
    /// `ShardCoordinator::restore`.
    fn restore<'a>(&'a mut self, holds: &'a [ShardHold]) -> Boxed<'a, ()>;
    /// `ShardCoordinator::decide`.
    fn decide<'a>(&'a mut self, ddl: &'a ShardDdl) -> Boxed<'a, DdlDecision>;
    /// `ShardCoordinator::next_resolution`.
    fn next_resolution(&mut self) -> Boxed<'_, ShardResolution>;
}

fn report<Error: dm_core::ClassifiedError>(error: Error) -> SyncerError {
    SyncerError::Coordinator(ErrorReport::of(&error))
}

impl<Coordinator: ShardCoordinator> Coordination for Coordinator {
    fn restore<'a>(&'a mut self, holds: &'a [ShardHold]) -> Boxed<'a, ()> {
        Box::pin(async move { ShardCoordinator::restore(self, holds).await.map_err(report) })
    }

    fn decide<'a>(&'a mut self, ddl: &'a ShardDdl) -> Boxed<'a, DdlDecision> {
        Box::pin(async move { ShardCoordinator::decide(self, ddl).await.map_err(report) })
    }

    fn next_resolution(&mut self) -> Boxed<'_, ShardResolution> {
        Box::pin(async move {
            ShardCoordinator::next_resolution(self)
                .await
                .map_err(report)
        })
    }
}
