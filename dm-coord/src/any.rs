//! `AnyCoordStore`: the runtime choice between the stores, as an enum (no `dyn`).

use std::time::Duration;

use crate::error::CoordError;
use crate::memory::MemCoordStore;
use crate::store::{CoordStore, KeyValue, LeaseId, Revision, Txn, TxnResult, Watcher};

/// One of the coordination stores, chosen at run time (for example from a config file).
#[derive(Clone, Debug)]
pub enum AnyCoordStore {
    /// In this process.
    Memory(MemCoordStore),
    /// Persistent, in a local directory.
    Embedded(crate::embedded::RedbCoordStore),
    /// On an etcd cluster (boxed: the client is large, and a store is cloned rarely).
    #[cfg(feature = "etcd")]
    Etcd(Box<crate::etcd::EtcdCoordStore>),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyCoordStore::Memory($store) => $call,
            AnyCoordStore::Embedded($store) => $call,
            #[cfg(feature = "etcd")]
            AnyCoordStore::Etcd($store) => $call,
        }
    };
}

impl CoordStore for AnyCoordStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, CoordError> {
        dispatch!(self, store => store.get(key).await)
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), CoordError> {
        dispatch!(self, store => store.range(prefix).await)
    }

    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, CoordError> {
        dispatch!(self, store => store.put(key, value, lease).await)
    }

    async fn delete(&self, key: &str) -> Result<bool, CoordError> {
        dispatch!(self, store => store.delete(key).await)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, CoordError> {
        dispatch!(self, store => store.txn(txn).await)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, CoordError> {
        dispatch!(self, store => store.grant_lease(ttl).await)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, CoordError> {
        dispatch!(self, store => store.keep_alive(lease).await)
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), CoordError> {
        dispatch!(self, store => store.revoke_lease(lease).await)
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, CoordError> {
        dispatch!(self, store => store.watch(prefix, from).await)
    }

    async fn current_revision(&self) -> Result<Revision, CoordError> {
        dispatch!(self, store => store.current_revision().await)
    }
}
