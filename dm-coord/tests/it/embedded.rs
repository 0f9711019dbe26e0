//! The embedded store survives a restart: keys, revisions, leases (with a fresh TTL); watches
//! from before the restart say the history is gone; a second opener of a directory is refused.

use std::time::Duration;

use dm_coord::{CoordError, CoordStore, EventKind, RedbCoordStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_revisions_and_leases_survive_a_restart() {
    let directory = tempfile::tempdir().expect("temp dir");
    let (revision, lease) = {
        let store = RedbCoordStore::open(directory.path()).expect("open");
        store.put("/a", b"1".to_vec(), None).await.expect("put");
        store.put("/a", b"2".to_vec(), None).await.expect("put");
        store.put("/gone", b"x".to_vec(), None).await.expect("put");
        store.delete("/gone").await.expect("delete");
        let lease = store
            .grant_lease(Duration::from_secs(2))
            .await
            .expect("grant");
        let revision = store
            .put("/leased", b"l".to_vec(), Some(lease))
            .await
            .expect("put");
        (revision, lease)
    };
    // Give the dropped store's background task a moment to release the file.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let store = RedbCoordStore::open(directory.path()).expect("reopen");
    assert_eq!(store.current_revision().await.expect("revision"), revision);
    let a = store.get("/a").await.expect("get").expect("kept");
    assert_eq!((a.value.as_slice(), a.version), (b"2".as_slice(), 2));
    assert_eq!(store.get("/gone").await.expect("get"), None);
    let leased = store
        .get("/leased")
        .await
        .expect("get")
        .expect("kept under its lease");
    assert_eq!(leased.lease, Some(lease));
    assert!(
        store.put("/b", b"b".to_vec(), None).await.expect("put") > revision,
        "revisions go on"
    );

    // History before the restart is gone, and says so.
    assert!(matches!(
        store.watch("/", 1).await,
        Err(CoordError::Compacted { .. })
    ));
    // The lease got a fresh TTL and, not kept alive, expires with a delete event.
    let mut watcher = store.watch("/leased", 0).await.expect("watch");
    let event = tokio::time::timeout(Duration::from_secs(6), watcher.next())
        .await
        .expect("expired in time")
        .expect("event")
        .expect("no error");
    assert_eq!(event.kind, EventKind::Delete);
    assert!(matches!(
        store.keep_alive(lease).await,
        Err(CoordError::LeaseNotFound { .. })
    ));
}

#[tokio::test]
async fn a_directory_is_opened_by_one_store_at_a_time() {
    let directory = tempfile::tempdir().expect("temp dir");
    let _first = RedbCoordStore::open(directory.path()).expect("open");
    let second = RedbCoordStore::open(directory.path()).expect_err("already open");
    assert!(
        matches!(&second, CoordError::Storage { path, .. } if path.ends_with("coord.redb")),
        "{second}"
    );
}
