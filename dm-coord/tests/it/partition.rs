//! A store wrapper that can be cut off from its caller, as a network partition would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dm_coord::{CoordError, CoordStore, KeyValue, LeaseId, Revision, Txn, TxnResult, Watcher};

/// Forwards to `inner` unless cut, then every call is `Unavailable`.
#[derive(Clone, Debug)]
pub struct Partitionable<S> {
    inner: S,
    cut: Arc<AtomicBool>,
}

impl<S: CoordStore> Partitionable<S> {
    pub fn new(inner: S) -> Self {
        Partitionable {
            inner,
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), CoordError> {
        if self.cut.load(Ordering::SeqCst) {
            Err(CoordError::Unavailable {
                endpoint: "partitioned".into(),
                reason: "cut off by the test".into(),
            })
        } else {
            Ok(())
        }
    }
}

impl<S: CoordStore> CoordStore for Partitionable<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, CoordError> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), CoordError> {
        self.check()?;
        self.inner.range(prefix).await
    }
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, CoordError> {
        self.check()?;
        self.inner.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<bool, CoordError> {
        self.check()?;
        self.inner.delete(key).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult, CoordError> {
        self.check()?;
        self.inner.txn(txn).await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, CoordError> {
        self.check()?;
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, CoordError> {
        self.check()?;
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), CoordError> {
        self.check()?;
        self.inner.revoke_lease(lease).await
    }
    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, CoordError> {
        self.check()?;
        self.inner.watch(prefix, from).await
    }
    async fn current_revision(&self) -> Result<Revision, CoordError> {
        self.check()?;
        self.inner.current_revision().await
    }
}
