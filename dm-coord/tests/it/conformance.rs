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

// -- the embedded store ----------------------------------------------------------------------

use dm_coord::RedbCoordStore;

fn redb_store() -> (RedbCoordStore, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = RedbCoordStore::open(directory.path()).expect("open the embedded store");
    (store, directory)
}

macro_rules! embedded {
    ($name:ident, $test:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (store, _directory) = redb_store();
            $test(store).await;
        }
    };
}

embedded!(embedded_put_get_delete, testsuite::put_get_delete);
embedded!(embedded_range_by_prefix, testsuite::range_by_prefix);
embedded!(embedded_transactions, testsuite::transactions);
embedded!(embedded_lease_expiry, testsuite::lease_expiry);
embedded!(embedded_lease_revoke, testsuite::lease_revoke);
embedded!(embedded_watch_from_revision, testsuite::watch_from_revision);

#[tokio::test]
async fn embedded_watch_compacted() {
    let (store, _directory) = redb_store();
    testsuite::watch_compacted(store, |store: RedbCoordStore, revision| async move {
        store.compact(revision);
    })
    .await;
}
