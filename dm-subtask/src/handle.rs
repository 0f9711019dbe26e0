//! The handle a subtask is driven through: [`SubtaskHandle`] sends commands (pause, resume,
//! stop at a transaction end, stop now, `binlog skip | replace | inject`), reads the status, and
//! owns the subtask's task: dropping the handle aborts the task (as a crash would: the
//! checkpoints stay consistent, a new subtask resumes from them).
//!
//! ```text
//! SubtaskHandle --Command (mpsc, 8)--> driver task "subtask <task>/<source>"
//!               <--SubtaskStatus (watch)--
//!               <--reply (oneshot): accepted, or why not
//! ```

use dm_core::BinlogPosition;
use dm_syncer::StopRequest;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::SubtaskError;
use crate::status::SubtaskStatus;

/// What `binlog skip | replace | inject` does with the event at a position (DM's `binlog`
/// commands).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinlogOperation {
    /// Leave the event out.
    Skip,
    /// Run these statements instead (each must name its tables with their database).
    Replace(Vec<String>),
    /// Run these statements before it.
    Inject(Vec<String>),
}

impl BinlogOperation {
    /// `skip`, `replace` or `inject`.
    pub fn name(&self) -> &'static str {
        match self {
            BinlogOperation::Skip => "skip",
            BinlogOperation::Replace(_) => "replace",
            BinlogOperation::Inject(_) => "inject",
        }
    }
}

/// A command to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Pause,
    Resume,
    Stop(StopRequest),
    Binlog {
        operation: BinlogOperation,
        at: Option<BinlogPosition>,
    },
}

/// A command and where to say whether it was accepted.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) command: Command,
    pub(crate) reply: oneshot::Sender<Result<(), SubtaskError>>,
}

/// How many commands may wait for the driver (each a few words, plus the statements of a
/// `binlog replace | inject`; a sender waits while the queue is full).
pub(crate) const COMMAND_QUEUE: usize = 8;

/// A running subtask: commands, status, and its task.
#[derive(Debug)]
pub struct SubtaskHandle {
    pub(crate) name: String,
    pub(crate) commands: mpsc::Sender<Envelope>,
    pub(crate) status: watch::Receiver<SubtaskStatus>,
    pub(crate) task: Option<JoinHandle<SubtaskStatus>>,
}

impl SubtaskHandle {
    /// `task/source`: the subtask's name, and its task's.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The status now.
    pub fn status(&self) -> SubtaskStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every status the subtask publishes.
    pub fn watch(&self) -> watch::Receiver<SubtaskStatus> {
        self.status.clone()
    }

    /// Waits until the status satisfies `condition`, and returns that status; `Ended` when the
    /// subtask ends without it.
    ///
    /// Cancel-safe: it waits on a clone of the status receiver.
    pub async fn wait_for(
        &self,
        mut condition: impl FnMut(&SubtaskStatus) -> bool,
    ) -> Result<SubtaskStatus, SubtaskError> {
        let mut status = self.status.clone();
        status
            .wait_for(|status| condition(status))
            .await
            .map(|status| status.clone())
            .map_err(|_| self.ended())
    }

    /// Pauses the subtask: the running unit stops now (the sync unit as [`Self::stop_now`]
    /// does; a dump or load is cancelled, its chunks in flight roll back) and the stage becomes
    /// Paused until [`Self::resume`]. No automatic resume follows a pause.
    pub async fn pause(&self) -> Result<(), SubtaskError> {
        self.send(Command::Pause).await
    }

    /// Resumes a paused subtask (at once, also while it waits to resume by itself).
    pub async fn resume(&self) -> Result<(), SubtaskError> {
        self.send(Command::Resume).await
    }

    /// Stops the subtask at the next transaction end (right away when the syncer waits at
    /// one): everything read before it is applied and the checkpoints are written. A dump or
    /// load is cancelled (chunks in flight roll back; a new subtask continues the load).
    pub async fn stop(&self) -> Result<(), SubtaskError> {
        self.send(Command::Stop(StopRequest::AtTransactionEnd))
            .await
    }

    /// Stops the subtask now: the syncer stops reading at once, each of its workers finishes
    /// only the batch in flight, and the checkpoints are written where they are consistent; a
    /// dump or load is cancelled.
    pub async fn stop_now(&self) -> Result<(), SubtaskError> {
        self.send(Command::Stop(StopRequest::Now)).await
    }

    /// Registers `operation` for the event at `at` (or, without `at`, the event whose error
    /// paused the subtask) and lets the subtask go on: a paused one resumes, a running sync
    /// unit restarts from its checkpoint with the operator in place. `NoErrorPosition` when no
    /// position is given and none is known.
    pub async fn binlog(
        &self,
        operation: BinlogOperation,
        at: Option<BinlogPosition>,
    ) -> Result<(), SubtaskError> {
        self.send(Command::Binlog { operation, at }).await
    }

    /// Waits until the subtask ends (finished or stopped) and returns its last status.
    pub async fn wait(mut self) -> Result<SubtaskStatus, SubtaskError> {
        let Some(task) = self.task.take() else {
            return Err(self.ended());
        };
        task.await.map_err(|error| SubtaskError::Panicked {
            name: self.name.clone(),
            reason: error.to_string(),
        })
    }

    async fn send(&self, command: Command) -> Result<(), SubtaskError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Envelope { command, reply })
            .await
            .map_err(|_| self.ended())?;
        answer.await.map_err(|_| self.ended())?
    }

    fn ended(&self) -> SubtaskError {
        SubtaskError::Ended {
            name: self.name.clone(),
        }
    }
}

impl Drop for SubtaskHandle {
    /// The subtask does not outlive its handle: its task is aborted (its connections close,
    /// transactions in flight roll back downstream, the checkpoints stay consistent).
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
