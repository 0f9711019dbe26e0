//! The `CoordStore` trait: a revisioned key-value store with transactions, leases and watches.
//!
//! It is the subset of etcd's v3 API that masters and workers agree through:
//!
//! - every write transaction raises the store-wide **revision** by one; a key remembers the
//!   revision that created it and the one that last modified it;
//! - a **transaction** checks conditions on keys (exists, absent, value, revisions) and runs one
//!   list of operations or the other, atomically;
//! - a **lease** has a time to live; keys put under it vanish (with a delete event) when it expires
//!   unless it is kept alive, or when it is revoked;
//! - a **watch** delivers every change under a prefix from a given revision on, in revision order,
//!   none missed; asking for a revision the store has compacted away is [`CoordError::Compacted`].
//!
//! Keys are UTF-8 strings (the layout in [`crate::keys`] hex-encodes user-given parts); values are
//! bytes.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::CoordError;

/// A store-wide revision: 0 before the first write.
pub type Revision = u64;

/// A lease's id, as the store issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

/// A key with its value and history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since it last did not exist).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after the first put).
    pub version: u64,
    /// The lease the key is attached to.
    pub lease: Option<LeaseId>,
}

/// A condition on one key, checked at the start of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The key exists.
    Exists,
    /// The key does not exist.
    Absent,
    /// The key exists with this value.
    ValueEquals(Vec<u8>),
    /// The key exists and was last modified at this revision.
    ModRevisionEquals(Revision),
    /// The key exists and was created at this revision.
    CreateRevisionEquals(Revision),
}

/// A condition on a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// The key.
    pub key: String,
    /// What must hold.
    pub condition: Condition,
}

impl Compare {
    /// `key` exists.
    pub fn exists(key: impl Into<String>) -> Self {
        Compare {
            key: key.into(),
            condition: Condition::Exists,
        }
    }

    /// `key` does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Compare {
            key: key.into(),
            condition: Condition::Absent,
        }
    }

    /// `key` holds `value`.
    pub fn value_equals(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            condition: Condition::ValueEquals(value.into()),
        }
    }

    /// `key` was last modified at `revision`.
    pub fn mod_revision_equals(key: impl Into<String>, revision: Revision) -> Self {
        Compare {
            key: key.into(),
            condition: Condition::ModRevisionEquals(revision),
        }
    }

    /// `key` was created at `revision`.
    pub fn create_revision_equals(key: impl Into<String>, revision: Revision) -> Self {
        Compare {
            key: key.into(),
            condition: Condition::CreateRevisionEquals(revision),
        }
    }
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Set a key, optionally under a lease.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The lease it lives and dies with.
        lease: Option<LeaseId>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Delete every key under a prefix.
    DeletePrefix {
        /// The prefix.
        prefix: String,
    },
    /// Read a key.
    Get {
        /// The key.
        key: String,
    },
    /// Read every key under a prefix.
    Range {
        /// The prefix.
        prefix: String,
    },
}

impl Operation {
    /// A put without a lease.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Operation::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A put under a lease.
    pub fn put_with_lease(
        key: impl Into<String>,
        value: impl Into<Vec<u8>>,
        lease: LeaseId,
    ) -> Self {
        Operation::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }

    /// A delete of one key.
    pub fn delete(key: impl Into<String>) -> Self {
        Operation::Delete { key: key.into() }
    }

    /// A read of one key.
    pub fn get(key: impl Into<String>) -> Self {
        Operation::Get { key: key.into() }
    }

    /// Whether the operation writes.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Operation::Put { .. } | Operation::Delete { .. } | Operation::DeletePrefix { .. }
        )
    }
}

/// A transaction: if every comparison holds, run `success`, else `failure`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions, all of which must hold.
    pub compares: Vec<Compare>,
    /// Operations when they hold.
    pub success: Vec<Operation>,
    /// Operations when one does not.
    pub failure: Vec<Operation>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Txn::default()
    }

    /// Adds conditions.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    /// Adds operations run when the conditions hold.
    pub fn and_then(mut self, operations: impl IntoIterator<Item = Operation>) -> Self {
        self.success.extend(operations);
        self
    }

    /// Adds operations run when a condition does not hold.
    pub fn or_else(mut self, operations: impl IntoIterator<Item = Operation>) -> Self {
        self.failure.extend(operations);
        self
    }
}

/// The result of one operation, in the order of the branch that ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationResult {
    /// A put.
    Put,
    /// A delete: how many keys it removed.
    Deleted(u64),
    /// A read: the keys found, ordered by key.
    Read(Vec<KeyValue>),
}

/// The result of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the conditions held (`success` ran).
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: Revision,
    /// One result per operation of the branch that ran.
    pub results: Vec<OperationResult>,
}

/// What happened to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Put (created or modified).
    Put,
    /// Deleted (explicitly, or its lease ended).
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after a put; for a delete, only the key and `mod_revision` (the deleting
    /// revision), everything else empty or zero, as etcd reports it.
    pub kv: KeyValue,
}

impl WatchEvent {
    /// The revision of the write that caused the event.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// The receiving end of a watch: events in revision order. Dropping it cancels the watch.
///
/// The channel is bounded: a watcher that does not read holds its producer back (the producer
/// reads from the store's history, so nothing is dropped); memory is bounded by the channel size
/// times the event size.
#[derive(Debug)]
pub struct Watcher {
    receiver: mpsc::Receiver<Result<WatchEvent, CoordError>>,
    /// The task feeding the channel, stopped when the watcher drops.
    feeder: Option<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    /// Events a watcher may have buffered before its producer waits.
    pub const CAPACITY: usize = 256;

    /// A watcher fed by `feeder` through `receiver`.
    pub fn new(
        receiver: mpsc::Receiver<Result<WatchEvent, CoordError>>,
        feeder: Option<tokio::task::JoinHandle<()>>,
    ) -> Self {
        Watcher { receiver, feeder }
    }

    /// A watcher fed by the task `feed` builds from the sending end of its bounded channel: the
    /// one way stores make watchers, so every watch has the same bound. The task runs in the
    /// span `watch{prefix}` (under the caller's span).
    pub fn spawn<Feed, Feeding>(prefix: &str, feed: Feed) -> Self
    where
        Feed: FnOnce(mpsc::Sender<Result<WatchEvent, CoordError>>) -> Feeding,
        Feeding: std::future::Future<Output = ()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(Watcher::CAPACITY);
        let span = tracing::info_span!("watch", prefix);
        let feeder = tokio::spawn(tracing::Instrument::instrument(feed(sender), span));
        Watcher::new(receiver, Some(feeder))
    }

    /// The next event; `None` once the store closed the watch. An `Err` ends the watch (for
    /// example [`CoordError::Compacted`]).
    ///
    /// Cancel safety: cancel-safe; an event is only taken when this returns.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, CoordError>> {
        self.receiver.recv().await
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(feeder) = self.feeder.take() {
            feeder.abort();
        }
    }
}

/// The coordination store.
pub trait CoordStore: Clone + Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<KeyValue>, CoordError>> + Send;

    /// Reads every key under `prefix`, ordered by key, with the revision they were read at.
    fn range(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<(Vec<KeyValue>, Revision), CoordError>> + Send;

    /// Sets a key (under a lease if given); returns the new revision.
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> impl Future<Output = Result<Revision, CoordError>> + Send;

    /// Deletes a key; returns whether it existed.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool, CoordError>> + Send;

    /// Runs a transaction atomically.
    fn txn(&self, txn: Txn) -> impl Future<Output = Result<TxnResult, CoordError>> + Send;

    /// Grants a lease that expires after `ttl` unless kept alive.
    fn grant_lease(
        &self,
        ttl: Duration,
    ) -> impl Future<Output = Result<LeaseId, CoordError>> + Send;

    /// Refreshes a lease to its full time to live; returns that TTL.
    /// [`CoordError::LeaseNotFound`] when it already expired or was revoked.
    fn keep_alive(
        &self,
        lease: LeaseId,
    ) -> impl Future<Output = Result<Duration, CoordError>> + Send;

    /// Ends a lease now, deleting its keys.
    fn revoke_lease(&self, lease: LeaseId) -> impl Future<Output = Result<(), CoordError>> + Send;

    /// Watches every change under `prefix` from revision `from` on (0: from the next change).
    fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> impl Future<Output = Result<Watcher, CoordError>> + Send;

    /// The store's current revision.
    fn current_revision(&self) -> impl Future<Output = Result<Revision, CoordError>> + Send;
}
