//! Member liveness: the alive view, a dying member's key vanishing within its TTL, a stopping
//! member's at once.

use std::time::Duration;

use dm_coord::{CoordStore, EventKind, MemCoordStore, MemberKeepalive, alive_members, keys};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn members_are_seen_alive_until_they_die_or_stop() {
    let store = MemCoordStore::new();
    let one = MemberKeepalive::start(
        store.clone(),
        keys::WORKER_KEEPALIVE,
        "worker-1",
        b"127.0.0.1:8262".to_vec(),
        TTL,
    )
    .await
    .expect("worker-1");
    let two = MemberKeepalive::start(
        store.clone(),
        keys::WORKER_KEEPALIVE,
        "worker/2",
        b"127.0.0.1:8263".to_vec(),
        TTL,
    )
    .await
    .expect("worker/2");
    assert_eq!(one.key(), keys::worker_keepalive("worker-1"));
    tokio::time::sleep(TTL * 5).await;
    let (alive, revision) = alive_members(&store, keys::WORKER_KEEPALIVE)
        .await
        .expect("alive");
    let names: Vec<&str> = alive.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["worker-1", "worker/2"], "kept alive for five TTLs");
    assert!(one.is_alive() && two.is_alive());

    let mut watcher = store
        .watch(keys::WORKER_KEEPALIVE, revision + 1)
        .await
        .expect("watch");
    let died = Instant::now();
    drop(one);
    let event = watcher.next().await.expect("event").expect("no error");
    assert_eq!(
        (event.kind, event.kv.key.as_str()),
        (
            EventKind::Delete,
            keys::worker_keepalive("worker-1").as_str()
        )
    );
    let took = died.elapsed();
    assert!(
        took <= TTL + Duration::from_secs(1),
        "dead member seen after {took:?}"
    );

    let stopping = Instant::now();
    two.stop().await.expect("stop");
    let event = watcher.next().await.expect("event").expect("no error");
    assert_eq!(event.kind, EventKind::Delete);
    assert!(
        stopping.elapsed() < Duration::from_millis(100),
        "a stop is seen at once"
    );
    assert!(
        alive_members(&store, keys::WORKER_KEEPALIVE)
            .await
            .expect("alive")
            .0
            .is_empty()
    );
}
