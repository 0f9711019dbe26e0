//! The global checkpoint: written at the watermark (held back to the floor of the shard DDL
//! holds, `crate::holds`), in one transaction with the tables changed at or before it, the DDL
//! statement about to run (or one a crash interrupted, until a checkpoint passes it), the
//! records of earlier DDLs kept while it is held back, the holds, safe mode's exit point, and
//! the upstream server whose binlog the location's file position belongs to.
//!
//! ```text
//! transaction end (every checkpoint interval) | DDL (before and after it runs) | end of run
//!   --> Watermark::reached --> GlobalCheckpoint { location, upstream, safe_mode_exit,
//!                                                schema charsets, ddl, changed tables }
//!   --> CheckpointStore::save (transient failures retried in place) --> status.checkpoint
//! ```
//!
//! Invariants: the saved location is a transaction end before which every change was
//! acknowledged (the watermark), so it never names a change not yet committed and never moves
//! backwards; a write that would store nothing new is skipped; the tables are marked saved only
//! after the save succeeded. The upstream saved is the server the location was read from (the
//! watermark keeps it with each transaction end: after a failover by GTID set, the new primary
//! from the first end read from it on), the start's stored one until the stream yields an
//! end, and `None` when not known (the relay log): never a server that did not write the
//! location, which would let a later start by position pass the identity check. A location
//! held back to a hold's floor, read before the reached end, keeps the last saved upstream
//! while the reading has not changed servers since (and names none once it has).

use std::time::Instant;

use dm_core::{ClassifiedError, DdlRecord, GlobalCheckpoint, TableCheckpoint, TableRef};

use crate::error::SyncerError;

use super::{ControlSink, EventLoop};

impl<Control: ControlSink> EventLoop<Control> {
    /// Writes the global checkpoint at the watermark.
    pub(super) async fn flush(&mut self) -> Result<(), SyncerError> {
        self.write_checkpoint(None).await
    }

    /// Writes the global checkpoint at the watermark (held back to the floor of the shard DDL
    /// holds), in one transaction with the tables changed at or before it, `pending` (the DDL
    /// statement about to run) and the records and holds that go with it.
    pub(super) async fn write_checkpoint(
        &mut self,
        pending: Option<&DdlRecord>,
    ) -> Result<(), SyncerError> {
        self.publish().await;
        let Some(reached) = self.watermark.reached().cloned() else {
            return Ok(());
        };
        // A new record replaces the one kept so far; while the checkpoint is held back, the
        // older one is kept too (its DDL may come again after a restart at the floor).
        if let Some(pending) = pending
            && let Some(older) = self.pending_ddl.replace(pending.clone())
            && older != *pending
            && self.holds.clamped()
        {
            self.holds.keep_record(older);
        }
        let clamped = self.holds.clamped();
        let holds = self.holds.checkpoint(Some(&reached));
        let held_back = holds
            .location
            .as_ref()
            .is_some_and(|floor| *floor != reached);
        let location = holds.location.clone().unwrap_or(reached);
        // A DDL statement recorded before it ran stays recorded until a checkpoint passes
        // the DDL: until then a restart meets the DDL again and must know what ran.
        if let Some(recorded) = &self.pending_ddl
            && recorded.compare_to(&location) == Some(std::cmp::Ordering::Less)
        {
            self.pending_ddl = None;
        }
        let pending = self.pending_ddl.clone();
        // The tables the holds deferred (changed by DDLs now at or before the checkpoint),
        // then what the tracker changed since (newer), unless the checkpoint is held back:
        // then those wait, deferred at the reading.
        let mut tables: Vec<TableCheckpoint> = holds.tables;
        let unsaved = self.tracker.unsaved_tables();
        let saved: Vec<TableRef> = unsaved.iter().map(|(table, _)| table.clone()).collect();
        if clamped && !unsaved.is_empty() {
            // Learnt at the event group being read (a replay's pass reads behind the reading).
            self.holds.defer_tables(
                self.transaction_start.clone(),
                unsaved
                    .into_iter()
                    .map(|(table, snapshot)| TableCheckpoint { table, snapshot })
                    .collect(),
            );
            self.tracker.mark_saved(&saved, true);
        } else {
            for (table, snapshot) in unsaved {
                tables.retain(|saved| saved.table != table);
                tables.push(TableCheckpoint { table, snapshot });
            }
        }
        let nothing_new = self.status.checkpoint.as_ref() == Some(&location)
            && self.safe_mode.exit().is_none()
            && pending.is_none()
            && tables.is_empty()
            && holds.holds.is_empty()
            && holds.earlier_ddls.is_empty()
            && self.tracker.unsaved_schema_charsets().is_none();
        if nothing_new {
            self.last_flush = Instant::now();
            return Ok(());
        }
        self.status.tables_held = holds
            .holds
            .iter()
            .filter(|hold| hold.stage == dm_core::HoldStage::Held)
            .count() as u64;
        let reached_upstream = self.watermark.reached_upstream();
        // While transactions applied in part while reading another server are written again,
        // the workers' checkpoints may still be that server's: the global one keeps naming it,
        // so that a restart meanwhile compares them by transaction again.
        let upstream = if self.safe_mode.replaying_transactions() {
            self.saved_upstream.clone()
        } else if held_back {
            self.saved_upstream
                .clone()
                .filter(|saved| Some(saved) == reached_upstream)
        } else {
            reached_upstream.cloned()
        };
        let checkpoint = GlobalCheckpoint {
            source: self.settings.source_id.clone(),
            location: location.clone(),
            upstream,
            safe_mode_exit: self.safe_mode.exit().cloned(),
            schema_charsets: self.tracker.schema_charsets().clone(),
            ddl: pending,
            earlier_ddls: holds.earlier_ddls,
            holds: holds.holds,
            tables,
        };
        let mut started: Option<Instant>;
        with_retry!(self.settings.retry_transient_for, self.control, sink => {
            started = self.metrics.as_ref().map(|_| Instant::now());
            sink.save(&checkpoint).await
        })?;
        if !clamped {
            self.tracker.mark_saved(&saved, true);
        }
        self.saved_upstream = checkpoint.upstream;
        self.status.checkpoint = Some(location);
        self.last_flush = Instant::now();
        if let (Some(metrics), Some(started)) = (&mut self.metrics, started) {
            metrics.checkpoint_written(started);
        }
        self.publish().await;
        Ok(())
    }
}
