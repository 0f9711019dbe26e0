//! The workers' acknowledgements: what each worker committed, fed to the causality detector
//! and the watermark, and the waits of the event loop on them (a causality conflict, the
//! byte budget, the DDL barrier, the end of a run).
//!
//! ```text
//! worker w --Ack::Done { w, sequence, bytes }--> record: in-flight bytes, detector, watermark,
//!                                                 acknowledged[w]
//!          --Ack::Failed { error }-------------> the run fails with the worker's error
//! waits: take_acknowledgements (no wait) | record_next (one) | wait_for ((worker, sequence)s)
//!        | drain (everything assigned) | finish_workers (queues closed, until all are gone)
//! ```
//!
//! Invariants: acknowledgements of a worker come in sequence order and its sequence only
//! grows; a wait that the workers' exit cuts short is an error, marked `interrupted` when a
//! stop `Now` let them go (the run then ends as stopped).

use tokio::sync::mpsc;

use crate::error::SyncerError;

use super::{Ack, ControlSink, EventLoop, StopRequest};

impl<Control: ControlSink> EventLoop<Control> {
    /// Closes the worker queues and records every acknowledgement until the workers are gone:
    /// all that was dispatched is applied, or, after a stop `Now`, each worker's batch in
    /// flight.
    pub(super) async fn finish_workers(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        self.queues.clear();
        while let Some(ack) = acks.recv().await {
            self.record(ack)?;
        }
        Ok(())
    }

    pub(super) fn take_acknowledgements(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        while let Ok(ack) = acks.try_recv() {
            self.record(ack)?;
        }
        Ok(())
    }

    pub(super) fn record(&mut self, ack: Ack) -> Result<(), SyncerError> {
        match ack {
            Ack::Done {
                worker,
                sequence,
                bytes,
            } => {
                self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
                self.detector.acknowledge(worker, sequence);
                self.watermark.acknowledge(worker, sequence);
                if let Some(last) = self.acknowledged.get_mut(worker) {
                    *last = (*last).max(sequence);
                }
                Ok(())
            }
            Ack::Failed { error } => {
                self.worker_failed = true;
                Err(SyncerError::Sink(error))
            }
        }
    }

    pub(super) async fn wait_for(
        &mut self,
        waits: &[(usize, u64)],
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        while waits.iter().any(|(worker, sequence)| {
            self.acknowledged
                .get(*worker)
                .is_some_and(|done| done < sequence)
        }) {
            self.record_next(acks).await?;
        }
        Ok(())
    }

    /// Waits for the next acknowledgement and records it.
    pub(super) async fn record_next(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let Some(ack) = acks.recv().await else {
            // After a stop `Now` the workers leave what they did not start: waiting for it
            // ends here, and the run ends as stopped.
            self.interrupted = self.stop.current() == StopRequest::Now;
            return Err(SyncerError::State(
                "the workers stopped while changes were in flight".into(),
            ));
        };
        self.record(ack)
    }

    pub(super) async fn drain(
        &mut self,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let waits: Vec<(usize, u64)> = self
            .watermark
            .assigned_sequences()
            .iter()
            .copied()
            .enumerate()
            .collect();
        self.wait_for(&waits, acks).await
    }
}
