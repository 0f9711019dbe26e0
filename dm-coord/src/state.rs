//! The store's state machine: keys, revisions, leases and the event history, with no I/O.
//!
//! Both local stores run this: [`crate::MemCoordStore`] keeps it in memory; the embedded
//! persistent store will write each transition through to disk. Time is an argument
//! (`tokio::time::Instant`), so tests control it.
//!
//! Invariants:
//! - the revision rises by exactly one per transaction that writes, and never otherwise;
//! - the history holds every event after `compacted` in revision order (several events of one
//!   transaction share its revision), at most `history_limit` of them;
//! - a key under a lease is in that lease's key set, and vanishes with a delete event when the lease
//!   ends.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::CoordError;
use crate::store::{
    Compare, Condition, EventKind, KeyValue, LeaseId, Operation, OperationResult, Revision, Txn,
    TxnResult, WatchEvent,
};

/// A change a persistent store must write, recorded when journaling is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEntry {
    /// A key was put (the full key after the put).
    Put(KeyValue),
    /// A key was deleted.
    Delete(String),
    /// A lease was granted.
    LeaseGranted {
        /// The lease.
        lease: LeaseId,
        /// Its time to live.
        ttl: Duration,
    },
    /// A lease ended (revoked or expired); its keys' deletions are recorded separately.
    LeaseEnded(LeaseId),
}

/// A live lease.
#[derive(Debug, Clone)]
struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<String>,
}

/// The whole state of a local store.
#[derive(Debug)]
pub struct StoreState {
    revision: Revision,
    keys: BTreeMap<String, KeyValue>,
    leases: HashMap<LeaseId, Lease>,
    next_lease: i64,
    /// Events after `compacted`, oldest first.
    history: VecDeque<WatchEvent>,
    /// Sequence number of `history[0]`: event cursors survive trimming.
    history_start: u64,
    /// Every event at or below this revision has been trimmed.
    compacted: Revision,
    history_limit: usize,
    /// Changes not yet taken by a persistent store; `None` when nothing persists them.
    journal: Option<Vec<JournalEntry>>,
}

/// Where a watcher continues: the sequence number of the next event it needs.
pub type EventCursor = u64;

impl StoreState {
    /// An empty store keeping at most `history_limit` events for watches.
    pub fn new(history_limit: usize) -> Self {
        StoreState {
            revision: 0,
            keys: BTreeMap::new(),
            leases: HashMap::new(),
            next_lease: 1,
            history: VecDeque::new(),
            history_start: 0,
            compacted: 0,
            history_limit: history_limit.max(1),
            journal: None,
        }
    }

    /// A store rebuilt from persisted keys and leases, recording its changes from now on. Leases
    /// get their full TTL again (as etcd does after a restart); keys under a lease that no longer
    /// exists are deleted (and journaled). History starts empty: watches from before `revision`
    /// are [`CoordError::Compacted`].
    pub fn restore(
        keys: Vec<KeyValue>,
        leases: Vec<(LeaseId, Duration)>,
        revision: Revision,
        next_lease: i64,
        history_limit: usize,
        now: Instant,
    ) -> Self {
        let mut state = StoreState::new(history_limit);
        state.revision = revision;
        state.compacted = revision;
        state.journal = Some(Vec::new());
        state.next_lease = next_lease.max(1);
        for (lease, ttl) in leases {
            state.next_lease = state.next_lease.max(lease.0 + 1);
            state.leases.insert(
                lease,
                Lease {
                    ttl,
                    deadline: now + ttl,
                    keys: BTreeSet::new(),
                },
            );
        }
        let mut orphans = Vec::new();
        for kv in keys {
            if let Some(lease) = kv.lease {
                match state.leases.get_mut(&lease) {
                    Some(lease) => {
                        lease.keys.insert(kv.key.clone());
                    }
                    None => orphans.push(kv.key.clone()),
                }
            }
            state.keys.insert(kv.key.clone(), kv);
        }
        state.delete_lease_keys(orphans.into_iter().collect());
        state
    }

    /// Starts recording changes for a persistent store.
    pub fn enable_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The changes recorded since the last call (empty when journaling is off).
    pub fn take_journal(&mut self) -> Vec<JournalEntry> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The id the next granted lease gets.
    pub fn next_lease(&self) -> i64 {
        self.next_lease
    }

    fn record(&mut self, entry: impl FnOnce() -> JournalEntry) {
        if let Some(journal) = &mut self.journal {
            journal.push(entry());
        }
    }

    /// The current revision.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// One key.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.keys.get(key).cloned()
    }

    /// Every key under `prefix`, by key.
    pub fn range(&self, prefix: &str) -> Vec<KeyValue> {
        self.keys
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, value)| value.clone())
            .collect()
    }

    fn holds(&self, compare: &Compare) -> bool {
        let current = self.keys.get(&compare.key);
        match &compare.condition {
            Condition::Exists => current.is_some(),
            Condition::Absent => current.is_none(),
            Condition::ValueEquals(value) => current.is_some_and(|kv| &kv.value == value),
            Condition::ModRevisionEquals(revision) => {
                current.is_some_and(|kv| kv.mod_revision == *revision)
            }
            Condition::CreateRevisionEquals(revision) => {
                current.is_some_and(|kv| kv.create_revision == *revision)
            }
        }
    }

    /// Runs a transaction at `now` (for lease checks).
    pub fn txn(&mut self, txn: &Txn, now: Instant) -> Result<TxnResult, CoordError> {
        self.expire(now);
        let succeeded = txn.compares.iter().all(|compare| self.holds(compare));
        let operations = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        // Validate before changing anything, so a failing transaction changes nothing.
        for operation in operations {
            match operation {
                Operation::Put { key, lease, .. } => {
                    if key.is_empty() {
                        return Err(CoordError::InvalidRequest {
                            reason: "a key must not be empty".into(),
                        });
                    }
                    if let Some(lease) = lease
                        && !self.leases.contains_key(lease)
                    {
                        return Err(CoordError::LeaseNotFound { lease: *lease });
                    }
                }
                Operation::Delete { .. }
                | Operation::DeletePrefix { .. }
                | Operation::Get { .. }
                | Operation::Range { .. } => {}
            }
        }
        // The revision the writes get; it becomes the store's only if something changed (as in
        // etcd, deleting a missing key is no change).
        let revision = self.revision + 1;
        let history_before = self.history.len();
        let mut results = Vec::with_capacity(operations.len());
        for operation in operations {
            results.push(match operation {
                Operation::Put { key, value, lease } => {
                    self.put_at(key, value.clone(), *lease, revision);
                    OperationResult::Put
                }
                Operation::Delete { key } => {
                    OperationResult::Deleted(u64::from(self.delete_at(key, revision)))
                }
                Operation::DeletePrefix { prefix } => {
                    let keys: Vec<String> =
                        self.range(prefix).into_iter().map(|kv| kv.key).collect();
                    let mut deleted = 0;
                    for key in keys {
                        deleted += u64::from(self.delete_at(&key, revision));
                    }
                    OperationResult::Deleted(deleted)
                }
                Operation::Get { key } => {
                    OperationResult::Read(self.get(key).into_iter().collect())
                }
                Operation::Range { prefix } => OperationResult::Read(self.range(prefix)),
            });
        }
        if self.history.len() > history_before {
            self.revision = revision;
        }
        self.trim();
        Ok(TxnResult {
            succeeded,
            revision: self.revision,
            results,
        })
    }

    fn put_at(&mut self, key: &str, value: Vec<u8>, lease: Option<LeaseId>, revision: Revision) {
        let previous = self.keys.get(key);
        let (create_revision, version, old_lease) = match previous {
            Some(kv) => (kv.create_revision, kv.version + 1, kv.lease),
            None => (revision, 1, None),
        };
        if let Some(old) = old_lease
            && old_lease != lease
            && let Some(old) = self.leases.get_mut(&old)
        {
            old.keys.remove(key);
        }
        if let Some(lease) = lease
            && let Some(lease) = self.leases.get_mut(&lease)
        {
            lease.keys.insert(key.to_owned());
        }
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
            version,
            lease,
        };
        self.history.push_back(WatchEvent {
            kind: EventKind::Put,
            kv: kv.clone(),
        });
        self.record(|| JournalEntry::Put(kv.clone()));
        self.keys.insert(key.to_owned(), kv);
    }

    fn delete_at(&mut self, key: &str, revision: Revision) -> bool {
        let Some(previous) = self.keys.remove(key) else {
            return false;
        };
        if let Some(lease) = previous.lease
            && let Some(lease) = self.leases.get_mut(&lease)
        {
            lease.keys.remove(key);
        }
        self.history.push_back(WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_owned(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
                lease: None,
            },
        });
        self.record(|| JournalEntry::Delete(key.to_owned()));
        true
    }

    /// Grants a lease expiring `ttl` after `now`.
    pub fn grant_lease(&mut self, ttl: Duration, now: Instant) -> Result<LeaseId, CoordError> {
        if ttl.is_zero() {
            return Err(CoordError::InvalidRequest {
                reason: "a lease needs a positive time to live".into(),
            });
        }
        let lease = LeaseId(self.next_lease);
        self.next_lease += 1;
        self.leases.insert(
            lease,
            Lease {
                ttl,
                deadline: now + ttl,
                keys: BTreeSet::new(),
            },
        );
        self.record(|| JournalEntry::LeaseGranted { lease, ttl });
        Ok(lease)
    }

    /// Refreshes a lease to its full TTL from `now`.
    pub fn keep_alive(&mut self, lease: LeaseId, now: Instant) -> Result<Duration, CoordError> {
        self.expire(now);
        let state = self
            .leases
            .get_mut(&lease)
            .ok_or(CoordError::LeaseNotFound { lease })?;
        state.deadline = now + state.ttl;
        Ok(state.ttl)
    }

    /// Ends a lease and deletes its keys, in one revision.
    pub fn revoke_lease(&mut self, lease: LeaseId) -> Result<(), CoordError> {
        let state = self
            .leases
            .remove(&lease)
            .ok_or(CoordError::LeaseNotFound { lease })?;
        self.record(|| JournalEntry::LeaseEnded(lease));
        self.delete_lease_keys(state.keys);
        Ok(())
    }

    fn delete_lease_keys(&mut self, keys: BTreeSet<String>) {
        if keys.is_empty() {
            return;
        }
        let revision = self.revision + 1;
        for key in keys {
            self.delete_at(&key, revision);
        }
        self.revision = revision;
        self.trim();
    }

    /// Ends every lease whose deadline passed; returns how many ended.
    pub fn expire(&mut self, now: Instant) -> usize {
        let expired: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for lease in &expired {
            if let Some(state) = self.leases.remove(lease) {
                self.record(|| JournalEntry::LeaseEnded(*lease));
                self.delete_lease_keys(state.keys);
            }
        }
        expired.len()
    }

    /// The earliest lease deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.leases.values().map(|lease| lease.deadline).min()
    }

    fn trim(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(event) = self.history.pop_front() {
                self.history_start += 1;
                self.compacted = self.compacted.max(event.revision());
            }
        }
        // Never leave half of a revision: drop the rest of a revision that was cut.
        while self
            .history
            .front()
            .is_some_and(|event| event.revision() <= self.compacted)
        {
            self.history.pop_front();
            self.history_start += 1;
        }
    }

    /// Drops history up to and including `revision` (as etcd's compaction does).
    pub fn compact(&mut self, revision: Revision) {
        self.compacted = self.compacted.max(revision.min(self.revision));
        self.trim();
    }

    /// The cursor of the first event at or after revision `from` (0: the next event to come).
    pub fn cursor_from(&self, from: Revision) -> Result<EventCursor, CoordError> {
        if from == 0 || from > self.revision {
            return Ok(self.history_start + self.history.len() as u64);
        }
        if from <= self.compacted {
            return Err(CoordError::Compacted {
                requested: from,
                compacted: self.compacted,
            });
        }
        let index = self
            .history
            .partition_point(|event| event.revision() < from);
        Ok(self.history_start + index as u64)
    }

    /// Up to `limit` events under `prefix` from `cursor` on, and the cursor after them.
    pub fn events(
        &self,
        prefix: &str,
        cursor: EventCursor,
        limit: usize,
    ) -> Result<(Vec<WatchEvent>, EventCursor), CoordError> {
        if cursor < self.history_start {
            return Err(CoordError::Compacted {
                requested: self
                    .history
                    .front()
                    .map_or(self.revision, |event| event.revision()),
                compacted: self.compacted,
            });
        }
        let start = (cursor - self.history_start) as usize;
        let mut events = Vec::new();
        let mut next = cursor;
        for event in self.history.iter().skip(start) {
            next += 1;
            if event.kv.key.starts_with(prefix) {
                events.push(event.clone());
                if events.len() >= limit {
                    break;
                }
            }
        }
        Ok((events, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_transaction_changes_nothing() {
        let now = Instant::now();
        let mut state = StoreState::new(100);
        let txn = Txn::new().and_then([
            Operation::put("a", "1"),
            Operation::put_with_lease("b", "2", LeaseId(99)),
        ]);
        assert_eq!(
            state.txn(&txn, now),
            Err(CoordError::LeaseNotFound { lease: LeaseId(99) })
        );
        assert_eq!(state.revision(), 0);
        assert!(state.get("a").is_none());
    }

    #[test]
    fn trimming_history_compacts_whole_revisions() {
        let now = Instant::now();
        let mut state = StoreState::new(3);
        state
            .txn(
                &Txn::new().and_then([Operation::put("a", "1"), Operation::put("b", "1")]),
                now,
            )
            .unwrap();
        state
            .txn(&Txn::new().and_then([Operation::put("a", "2")]), now)
            .unwrap();
        state
            .txn(
                &Txn::new().and_then([Operation::put("a", "3"), Operation::put("b", "3")]),
                now,
            )
            .unwrap();
        // 5 events, limit 3: revision 1 (two events) is trimmed; revisions 2 and 3 remain.
        assert!(matches!(
            state.cursor_from(1),
            Err(CoordError::Compacted { .. })
        ));
        let cursor = state.cursor_from(3).unwrap();
        let (events, _) = state.events("", cursor, 10).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|event| event.revision() == 3));
    }
}
