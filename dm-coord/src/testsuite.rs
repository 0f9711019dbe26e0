//! The conformance suite every `CoordStore` passes (feature `testsuite`).
//!
//! Each function takes a fresh store and panics with a message when the store breaks the
//! contract of [`crate::CoordStore`]. Revisions are compared relative to each other, never to
//! fixed numbers, so stores that start at different revisions (etcd starts at 1) pass alike.
//! Lease tests use a 2-second TTL, the shortest etcd accepts with its default timing, and real
//! time.

use std::time::Duration;

use crate::store::{
    Compare, CoordStore, EventKind, Operation, OperationResult, Txn, WatchEvent, Watcher,
};

/// The TTL of leases in the suite.
pub const LEASE_TTL: Duration = Duration::from_secs(2);

async fn next_event(watcher: &mut Watcher, what: &str) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(10), watcher.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("{what}: watch failed: {error}"),
        Ok(None) => panic!("{what}: watch ended"),
        Err(_) => panic!("{what}: no event within 10 s"),
    }
}

/// Put, get, overwrite, delete: revisions and versions move as etcd's do.
pub async fn put_get_delete<S: CoordStore>(store: S) {
    let first = store
        .put("/suite/k", b"one".to_vec(), None)
        .await
        .expect("put");
    let kv = store
        .get("/suite/k")
        .await
        .expect("get")
        .expect("key exists");
    assert_eq!(kv.value, b"one");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (first, first, 1)
    );
    let second = store
        .put("/suite/k", b"two".to_vec(), None)
        .await
        .expect("put");
    assert!(second > first, "a write raises the revision");
    let kv = store
        .get("/suite/k")
        .await
        .expect("get")
        .expect("key exists");
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (first, second, 2)
    );
    assert!(store.delete("/suite/k").await.expect("delete"));
    assert_eq!(store.get("/suite/k").await.expect("get"), None);
    let after_delete = store.current_revision().await.expect("revision");
    assert!(after_delete > second);
    assert!(
        !store.delete("/suite/k").await.expect("delete"),
        "nothing left to delete"
    );
    assert_eq!(
        store.current_revision().await.expect("revision"),
        after_delete,
        "deleting a missing key changes nothing, so the revision stays (as in etcd)"
    );
}

/// A range returns exactly the keys under the prefix, in key order.
pub async fn range_by_prefix<S: CoordStore>(store: S) {
    for key in [
        "/suite/r/b",
        "/suite/r/a",
        "/suite/rx",
        "/suite/s",
        "/suite/r/c/d",
    ] {
        store
            .put(key, key.as_bytes().to_vec(), None)
            .await
            .expect("put");
    }
    let (entries, revision) = store.range("/suite/r/").await.expect("range");
    let keys: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
    assert_eq!(keys, ["/suite/r/a", "/suite/r/b", "/suite/r/c/d"]);
    assert!(entries.iter().all(|entry| entry.mod_revision <= revision));
    assert!(
        store
            .range("/suite/none/")
            .await
            .expect("range")
            .0
            .is_empty()
    );
}

/// Transactions check every condition and run one branch atomically.
pub async fn transactions<S: CoordStore>(store: S) {
    let created = store
        .txn(
            Txn::new()
                .when([Compare::absent("/suite/t/lock")])
                .and_then([
                    Operation::put("/suite/t/lock", "me"),
                    Operation::put("/suite/t/owner", "me"),
                ])
                .or_else([Operation::get("/suite/t/lock")]),
        )
        .await
        .expect("txn");
    assert!(created.succeeded);
    assert_eq!(
        created.results,
        [OperationResult::Put, OperationResult::Put]
    );
    let lock = store
        .get("/suite/t/lock")
        .await
        .expect("get")
        .expect("lock");
    let owner = store
        .get("/suite/t/owner")
        .await
        .expect("get")
        .expect("owner");
    assert_eq!(
        lock.mod_revision, owner.mod_revision,
        "one transaction, one revision"
    );

    let contended = store
        .txn(
            Txn::new()
                .when([Compare::absent("/suite/t/lock")])
                .and_then([Operation::put("/suite/t/lock", "you")])
                .or_else([Operation::get("/suite/t/lock")]),
        )
        .await
        .expect("txn");
    assert!(!contended.succeeded);
    match contended.results.as_slice() {
        [OperationResult::Read(found)] => assert_eq!(found[0].value, b"me"),
        other => panic!("expected the failure branch's read, got {other:?}"),
    }
    assert_eq!(
        contended.revision, created.revision,
        "a read-only branch writes nothing"
    );

    let conditions = [
        (Compare::value_equals("/suite/t/lock", "me"), true),
        (Compare::value_equals("/suite/t/lock", "you"), false),
        (Compare::exists("/suite/t/lock"), true),
        (Compare::exists("/suite/t/nothing"), false),
        (
            Compare::mod_revision_equals("/suite/t/lock", lock.mod_revision),
            true,
        ),
        (
            Compare::mod_revision_equals("/suite/t/lock", lock.mod_revision + 1),
            false,
        ),
        (
            Compare::create_revision_equals("/suite/t/owner", owner.create_revision),
            true,
        ),
    ];
    for (compare, expected) in conditions {
        let result = store
            .txn(
                Txn::new()
                    .when([compare.clone()])
                    .and_then([Operation::get("/suite/t/lock")]),
            )
            .await
            .expect("txn");
        assert_eq!(result.succeeded, expected, "{compare:?}");
    }
    let deleted = store
        .txn(Txn::new().and_then([Operation::DeletePrefix {
            prefix: "/suite/t/".into(),
        }]))
        .await
        .expect("txn");
    assert_eq!(deleted.results, [OperationResult::Deleted(2)]);
}

/// Keys under a lease live while it is kept alive and vanish, with a delete event, when it
/// expires.
pub async fn lease_expiry<S: CoordStore>(store: S) {
    let lease = store.grant_lease(LEASE_TTL).await.expect("grant");
    let revision = store
        .put("/suite/l/member", b"alive".to_vec(), Some(lease))
        .await
        .expect("put");
    let mut watcher = store.watch("/suite/l/", revision + 1).await.expect("watch");
    for _ in 0..3 {
        tokio::time::sleep(LEASE_TTL / 2).await;
        assert_eq!(
            store.keep_alive(lease).await.expect("keep alive"),
            LEASE_TTL
        );
    }
    assert!(
        store.get("/suite/l/member").await.expect("get").is_some(),
        "kept alive past its TTL"
    );
    let stopped = tokio::time::Instant::now();
    let event = next_event(&mut watcher, "lease expiry").await;
    assert_eq!(event.kind, EventKind::Delete);
    assert_eq!(event.kv.key, "/suite/l/member");
    let waited = stopped.elapsed();
    assert!(
        waited <= LEASE_TTL + Duration::from_secs(2),
        "expired {waited:?} after the last keep-alive (TTL {LEASE_TTL:?})"
    );
    let after = store.keep_alive(lease).await;
    assert!(
        matches!(after, Err(crate::CoordError::LeaseNotFound { .. })),
        "keep-alive of an expired lease: {after:?}"
    );
}

/// Revoking a lease deletes its keys at once; the lease is then unusable.
pub async fn lease_revoke<S: CoordStore>(store: S) {
    let lease = store.grant_lease(LEASE_TTL).await.expect("grant");
    store
        .put("/suite/v/a", b"1".to_vec(), Some(lease))
        .await
        .expect("put");
    store
        .put("/suite/v/b", b"2".to_vec(), Some(lease))
        .await
        .expect("put");
    store
        .put("/suite/v/kept", b"3".to_vec(), None)
        .await
        .expect("put");
    store.revoke_lease(lease).await.expect("revoke");
    let (left, _) = store.range("/suite/v/").await.expect("range");
    let keys: Vec<&str> = left.iter().map(|entry| entry.key.as_str()).collect();
    assert_eq!(keys, ["/suite/v/kept"]);
    assert!(matches!(
        store.keep_alive(lease).await,
        Err(crate::CoordError::LeaseNotFound { .. })
    ));
    assert!(matches!(
        store.put("/suite/v/c", b"4".to_vec(), Some(lease)).await,
        Err(crate::CoordError::LeaseNotFound { .. })
    ));
}

/// A watch from a past revision replays history in order, then follows live changes, none
/// missed, even when the reader is slow.
pub async fn watch_from_revision<S: CoordStore>(store: S) {
    let start = store
        .put("/suite/w/0", b"0".to_vec(), None)
        .await
        .expect("put");
    for index in 1..5 {
        store
            .put(
                &format!("/suite/w/{index}"),
                index.to_string().into_bytes(),
                None,
            )
            .await
            .expect("put");
    }
    store.delete("/suite/w/0").await.expect("delete");
    store
        .put("/suite/other", b"x".to_vec(), None)
        .await
        .expect("put");
    let mut watcher = store.watch("/suite/w/", start).await.expect("watch");
    let mut seen = Vec::new();
    for _ in 0..6 {
        let event = next_event(&mut watcher, "history").await;
        seen.push((event.kind.clone(), event.kv.key.clone(), event.revision()));
    }
    let kinds: Vec<(EventKind, &str)> = seen
        .iter()
        .map(|(kind, key, _)| (kind.clone(), key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Put, "/suite/w/0"),
            (EventKind::Put, "/suite/w/1"),
            (EventKind::Put, "/suite/w/2"),
            (EventKind::Put, "/suite/w/3"),
            (EventKind::Put, "/suite/w/4"),
            (EventKind::Delete, "/suite/w/0"),
        ]
    );
    assert!(
        seen.windows(2).all(|pair| pair[0].2 < pair[1].2),
        "revisions increase: {seen:?}"
    );
    assert_eq!(seen[5].2, seen[4].2 + 1, "the delete is the next revision");

    // Live, many, read slowly: every event arrives once, in order.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for index in 0..(Watcher::CAPACITY * 3) {
                store
                    .put("/suite/w/live", index.to_string().into_bytes(), None)
                    .await
                    .expect("put");
            }
        })
    };
    for index in 0..(Watcher::CAPACITY * 3) {
        if index % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let event = next_event(&mut watcher, "live").await;
        assert_eq!(
            event.kv.value,
            index.to_string().into_bytes(),
            "event {index} in order"
        );
    }
    writer.await.expect("writer");
}

/// A watch from a revision the store compacted away fails with `Compacted`. `compact` compacts
/// the store up to the given revision.
pub async fn watch_compacted<S, C, F>(store: S, compact: C)
where
    S: CoordStore,
    C: FnOnce(S, crate::Revision) -> F,
    F: std::future::Future<Output = ()>,
{
    let first = store
        .put("/suite/c/k", b"1".to_vec(), None)
        .await
        .expect("put");
    let last = store
        .put("/suite/c/k", b"2".to_vec(), None)
        .await
        .expect("put");
    compact(store.clone(), last).await;
    let result: Result<(), crate::CoordError> = match store.watch("/suite/c/", first).await {
        Err(error) => Err(error),
        Ok(mut watcher) => {
            match tokio::time::timeout(Duration::from_secs(10), watcher.next()).await {
                Ok(Some(Err(error))) => Err(error),
                other => panic!("expected a compaction error, got {other:?}"),
            }
        }
    };
    assert!(
        matches!(result, Err(crate::CoordError::Compacted { .. })),
        "{result:?}"
    );
}
