//! The conformance suite against `MemCoordStore`.

use dm_coord::MemCoordStore;
use dm_coord::testsuite;

#[tokio::test]
async fn memory_put_get_delete() {
    testsuite::put_get_delete(MemCoordStore::new()).await;
}

#[tokio::test]
async fn memory_range_by_prefix() {
    testsuite::range_by_prefix(MemCoordStore::new()).await;
}

#[tokio::test]
async fn memory_transactions() {
    testsuite::transactions(MemCoordStore::new()).await;
}

#[tokio::test]
async fn memory_lease_expiry() {
    testsuite::lease_expiry(MemCoordStore::new()).await;
}

#[tokio::test]
async fn memory_lease_revoke() {
    testsuite::lease_revoke(MemCoordStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_watch_from_revision() {
    testsuite::watch_from_revision(MemCoordStore::new()).await;
}

#[tokio::test]
async fn memory_watch_compacted() {
    testsuite::watch_compacted(
        MemCoordStore::new(),
        |store: MemCoordStore, revision| async move {
            store.compact(revision);
        },
    )
    .await;
}
