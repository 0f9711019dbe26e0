//! The global checkpoint: written at the watermark, in one transaction with the tracker's
//! tables changed since the last write, the DDL statement about to run (or one a crash
//! interrupted, until a checkpoint passes it) and safe mode's exit point.
//!
//! ```text
//! transaction end (every checkpoint interval) | DDL (before and after it runs) | end of run
//!   --> Watermark::reached --> GlobalCheckpoint { location, safe_mode_exit, schema charsets,
//!                                                ddl, changed tables }
//!   --> CheckpointStore::save (transient failures retried in place) --> status.checkpoint
//! ```
//!
//! Invariants: the saved location is a transaction end before which every change was
//! acknowledged (the watermark), so it never names a change not yet committed and never moves
//! backwards; a write that would store nothing new is skipped; the tables are marked saved only
//! after the save succeeded.

use std::time::Instant;

use dm_core::{ClassifiedError, DdlRecord, GlobalCheckpoint, TableCheckpoint, TableRef};

use crate::error::SyncerError;

use super::{ControlSink, EventLoop};

impl<Control: ControlSink> EventLoop<Control> {
    /// Writes the global checkpoint at the watermark.
    pub(super) async fn flush(&mut self) -> Result<(), SyncerError> {
        self.write_checkpoint(None).await
    }

    /// Writes the global checkpoint at the watermark, in one transaction with the tracker's
    /// tables changed since the last write and `pending`, the DDL statement about to run.
    pub(super) async fn write_checkpoint(
        &mut self,
        pending: Option<&DdlRecord>,
    ) -> Result<(), SyncerError> {
        self.publish().await;
        let Some(location) = self.watermark.reached().cloned() else {
            return Ok(());
        };
        // A DDL statement recorded before it ran stays recorded until a checkpoint passes
        // the DDL: until then a restart meets the DDL again and must know what ran.
        if let Some(recorded) = &self.pending_ddl
            && recorded.compare_to(&location) == Some(std::cmp::Ordering::Less)
        {
            self.pending_ddl = None;
        }
        let pending = pending.or(self.pending_ddl.as_ref()).cloned();
        let unsaved = self.tracker.unsaved_tables();
        if self.status.checkpoint.as_ref() == Some(&location)
            && self.safe_mode.exit().is_none()
            && pending.is_none()
            && unsaved.is_empty()
            && self.tracker.unsaved_schema_charsets().is_none()
        {
            self.last_flush = Instant::now();
            return Ok(());
        }
        let saved: Vec<TableRef> = unsaved.iter().map(|(table, _)| table.clone()).collect();
        let checkpoint = GlobalCheckpoint {
            source: self.settings.source_id.clone(),
            location: location.clone(),
            safe_mode_exit: self.safe_mode.exit().cloned(),
            schema_charsets: self.tracker.schema_charsets().clone(),
            ddl: pending,
            earlier_ddls: Vec::new(),
            holds: Vec::new(),
            tables: unsaved
                .into_iter()
                .map(|(table, snapshot)| TableCheckpoint { table, snapshot })
                .collect(),
        };
        let mut started: Option<Instant>;
        with_retry!(self.settings.retry_transient_for, self.control, sink => {
            started = self.metrics.as_ref().map(|_| Instant::now());
            sink.save(&checkpoint).await
        })?;
        self.tracker.mark_saved(&saved, true);
        self.status.checkpoint = Some(location);
        self.last_flush = Instant::now();
        if let (Some(metrics), Some(started)) = (&mut self.metrics, started) {
            metrics.checkpoint_written(started);
        }
        self.publish().await;
        Ok(())
    }
}
