//! `MemCoordStore`: the coordination store inside one process.
//!
//! ```text
//! callers --txn/get/lease--> Mutex<StoreState> --notify--> watch feeders --bounded--> Watcher
//!                                   ^
//!                       lease reaper (every 50 ms)
//! ```
//!
//! For tests and for a master and workers living in one process. Clones share one store. The
//! embedded persistent store ([`crate::RedbCoordStore`]) is this engine plus a journal that makes
//! every transition durable before it is visible. The
//! mutex is a plain `std` mutex held only for a state transition, never across an `.await`. The
//! lease reaper and the watch feeders run on the tokio runtime the store was created in; the reaper
//! stops when the last clone of the store is dropped, a feeder when its watcher is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::embedded::RedbJournal;
use crate::error::CoordError;
use crate::state::StoreState;
use crate::store::{CoordStore, KeyValue, LeaseId, Operation, Revision, Txn, TxnResult, Watcher};

/// How often leases are checked for expiry: the longest a dead lease's keys outlive its TTL.
const REAPER_INTERVAL: Duration = Duration::from_millis(50);
/// Events kept for watches that start from a past revision.
const DEFAULT_HISTORY: usize = 100_000;
/// Events a feeder moves per lock.
const FEED_BATCH: usize = 64;

#[derive(Debug)]
struct Shared {
    state: Mutex<StoreState>,
    /// Woken after every change.
    changed: Notify,
    /// Where changes are made durable, for the embedded store; `None` in memory.
    journal: Option<RedbJournal>,
    /// Set when persisting failed: memory and disk may differ, so every later call fails.
    broken: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, StoreState> {
        // A panic while holding the lock leaves a consistent state: every transition validates
        // before it changes anything.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one state transition (at the current time), persists what it changed, then wakes the
    /// watchers. Nothing is visible to anyone before it is durable.
    fn transition<T>(
        &self,
        change: impl FnOnce(&mut StoreState, Instant) -> Result<T, CoordError>,
    ) -> Result<T, CoordError> {
        if let Some(journal) = &self.journal
            && self.broken.load(Ordering::SeqCst)
        {
            return Err(journal.broken_error());
        }
        let mut state = self.state();
        let result = change(&mut state, Instant::now());
        if let Some(journal) = &self.journal {
            let entries = state.take_journal();
            if !entries.is_empty()
                && let Err(error) = journal.persist(&entries, state.revision(), state.next_lease())
            {
                self.broken.store(true, Ordering::SeqCst);
                return Err(error);
            }
        }
        drop(state);
        self.changed.notify_waiters();
        result
    }
}

/// An in-process coordination store.
#[derive(Clone, Debug)]
pub struct MemCoordStore {
    shared: Arc<Shared>,
}

impl MemCoordStore {
    /// A new, empty store. Must be called within a tokio runtime (it starts the lease reaper).
    pub fn new() -> Self {
        MemCoordStore::with_history(DEFAULT_HISTORY)
    }

    /// A store keeping `history` events for watches from past revisions.
    pub fn with_history(history: usize) -> Self {
        MemCoordStore::from_parts(StoreState::new(history), None)
    }

    /// A store on `state`, persisting through `journal` when given (the embedded store).
    pub(crate) fn from_parts(state: StoreState, journal: Option<RedbJournal>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Notify::new(),
            journal,
            broken: AtomicBool::new(false),
        });
        tokio::spawn(tracing::Instrument::instrument(
            reap_leases(Arc::downgrade(&shared)),
            tracing::info_span!("lease_reaper"),
        ));
        MemCoordStore { shared }
    }

    /// Drops history up to `revision`; watches from there on fail with
    /// [`CoordError::Compacted`].
    pub fn compact(&self, revision: Revision) {
        self.shared.state().compact(revision);
    }
}

/// The lease reaper: ends expired leases until the store is gone.
async fn reap_leases(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(REAPER_INTERVAL).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // A failure to persist marks the store broken; its callers see the error.
        let _ = shared.transition(|state, now| Ok(state.expire(now)));
    }
}

/// Feeds one watcher from the history, in order, waiting when it is caught up.
async fn feed_watcher(
    shared: Arc<Shared>,
    prefix: String,
    mut cursor: u64,
    sender: mpsc::Sender<Result<crate::store::WatchEvent, CoordError>>,
) {
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let batch = shared.state().events(&prefix, cursor, FEED_BATCH);
        match batch {
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                return;
            }
            Ok((events, next)) => {
                let caught_up = next == cursor;
                cursor = next;
                for event in events {
                    if sender.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                if caught_up {
                    tokio::select! {
                        () = &mut changed => {}
                        () = sender.closed() => return,
                    }
                }
            }
        }
    }
}

impl Default for MemCoordStore {
    fn default() -> Self {
        MemCoordStore::new()
    }
}

impl CoordStore for MemCoordStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, CoordError> {
        self.shared.transition(|state, now| {
            state.expire(now);
            Ok(state.get(key))
        })
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), CoordError> {
        self.shared.transition(|state, now| {
            state.expire(now);
            Ok((state.range(prefix), state.revision()))
        })
    }

    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, CoordError> {
        let txn = Txn::new().and_then([Operation::Put {
            key: key.to_owned(),
            value,
            lease,
        }]);
        self.txn(txn).await.map(|result| result.revision)
    }

    async fn delete(&self, key: &str) -> Result<bool, CoordError> {
        let result = self
            .txn(Txn::new().and_then([Operation::delete(key)]))
            .await?;
        Ok(matches!(
            result.results.first(),
            Some(crate::store::OperationResult::Deleted(count)) if *count > 0
        ))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, CoordError> {
        self.shared.transition(|state, now| state.txn(&txn, now))
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, CoordError> {
        self.shared
            .transition(|state, now| state.grant_lease(ttl, now))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, CoordError> {
        self.shared
            .transition(|state, now| state.keep_alive(lease, now))
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), CoordError> {
        self.shared.transition(|state, _| state.revoke_lease(lease))
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, CoordError> {
        let cursor = self.shared.state().cursor_from(from)?;
        let shared = self.shared.clone();
        let owned = prefix.to_owned();
        Ok(Watcher::spawn(prefix, move |sender| {
            feed_watcher(shared, owned, cursor, sender)
        }))
    }

    async fn current_revision(&self) -> Result<Revision, CoordError> {
        Ok(self.shared.state().revision())
    }
}
