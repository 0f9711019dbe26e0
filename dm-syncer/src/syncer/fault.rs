//! Pause points in the DDL barrier, for crash tests (DM calls these failpoints): a test asks
//! that the syncer of a task and source stop at one step of its next DDL, waits until it got
//! there, and kills it, so that every step's crash window is tried on purpose.
//!
//! ```text
//! drain --AfterDrain--> checkpoint at the DDL's start --AfterStartCheckpoint-->
//!   run statement 1 --AfterExecute--> run the others --> checkpoint at its end --AfterEndCheckpoint-->
//! ```
//!
//! Built only with the `fault-points` feature (dm-syncer's own tests turn it on); without it
//! `step` does nothing and costs nothing.

#[cfg(feature = "fault-points")]
use std::collections::HashMap;
#[cfg(feature = "fault-points")]
use std::sync::{Arc, Mutex, OnceLock};

#[cfg(feature = "fault-points")]
use tokio::sync::Notify;

/// A step of a DDL's handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DdlStep {
    /// Every worker drained; nothing about the DDL written yet.
    AfterDrain,
    /// The checkpoint at the DDL's start (with the statements' objects as they were) written.
    AfterStartCheckpoint,
    /// The DDL's first statement executed downstream.
    AfterExecute,
    /// The checkpoint past the DDL written.
    AfterEndCheckpoint,
}

#[cfg(feature = "fault-points")]
type Registry = Mutex<HashMap<(String, String), (DdlStep, Arc<Notify>)>>;

#[cfg(feature = "fault-points")]
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Asks the syncer of `task` and `source` to stop for good at `step` of the next DDL it
/// handles; the returned [`Notify`] is notified when it got there (then kill it: drop or abort
/// its future). Once reached, the request is used up.
#[cfg(feature = "fault-points")]
pub fn pause_at(task: &str, source: &str, step: DdlStep) -> Arc<Notify> {
    let reached = Arc::new(Notify::new());
    if let Ok(mut requests) = registry().lock() {
        requests.insert(
            (task.to_owned(), source.to_owned()),
            (step, reached.clone()),
        );
    }
    reached
}

/// Called by the syncer at `step`: never returns when a pause was asked for here.
#[cfg(feature = "fault-points")]
pub(super) async fn step(task: &str, source: &str, step: DdlStep) {
    let reached = registry().lock().ok().and_then(|mut requests| {
        let key = (task.to_owned(), source.to_owned());
        match requests.get(&key) {
            Some((wanted, _)) if *wanted == step => requests.remove(&key).map(|(_, notify)| notify),
            _ => None,
        }
    });
    if let Some(reached) = reached {
        reached.notify_one();
        std::future::pending::<()>().await;
    }
}

/// Without the `fault-points` feature: nothing.
#[cfg(not(feature = "fault-points"))]
pub(super) async fn step(_task: &str, _source: &str, _step: DdlStep) {}
