//! # dm-coord: the coordination store
//!
//! Masters and workers agree through a [`CoordStore`]: who leads, which worker is alive, which
//! source runs where, the shard DDL locks. The trait is the part of etcd's v3 API they need:
//! revisioned keys, compare-and-swap transactions, leases and watches from a revision.
//!
//! ```text
//! dm-cluster (master, worker), dm-shardddl
//!        |   Election, MemberKeepalive, keys (DM's layout, hex components)
//!        v
//!   CoordStore ----+--> MemCoordStore      in one process (tests, single-process use)     built
//!                  +--> RedbCoordStore     persistent, single machine, the default        built
//!                  +--> EtcdCoordStore     several machines (feature `etcd`)              built
//!   AnyCoordStore: the runtime choice between them
//! ```
//!
//! Invariants every store keeps (the conformance suite in `testsuite`, feature `testsuite`,
//! checks them):
//! - one revision per writing transaction; a transaction is atomic;
//! - a key under a lease vanishes, with a delete event, when the lease expires or is revoked;
//! - a watch delivers every change under its prefix from its start revision, in order, none
//!   missed; a compacted start revision is [`CoordError::Compacted`];
//! - watch channels are bounded ([`Watcher::CAPACITY`]); a slow reader slows its producer, which
//!   reads from the store's history, so nothing is dropped.
//!
//! Error model: [`CoordError`]; unreachable stores are transient (retry with backoff), wrong
//! endpoints, credentials, compacted revisions and lost leases are definite.

pub mod any;
pub mod election;
pub mod embedded;
pub mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod keepalive;
pub mod keys;
pub mod lease;
pub mod memory;
pub mod state;
pub mod store;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use any::AnyCoordStore;
pub use election::{Election, LeaderGuard, LeaderObserver};
pub use embedded::RedbCoordStore;
pub use error::CoordError;
#[cfg(feature = "etcd")]
pub use etcd::{EtcdCoordStore, EtcdOptions, connect_with_backoff, with_backoff};
pub use keepalive::{MemberKeepalive, alive_members};
pub use lease::LeaseKeeper;
pub use memory::MemCoordStore;
pub use store::{
    Compare, Condition, CoordStore, EventKind, KeyValue, LeaseId, Operation, OperationResult,
    Revision, Txn, TxnResult, WatchEvent, Watcher,
};
