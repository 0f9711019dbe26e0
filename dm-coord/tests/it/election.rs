//! Election: one leader at a time, a new one within TTL + 1 s of the old one dying, and a
//! deposed leader that knows it before anyone else can lead. Time is tokio's paused clock, so
//! the measured durations are exact.

use std::time::Duration;

use dm_coord::{CoordStore, Election, MemCoordStore, Operation, Txn, keys};
use tokio::time::Instant;

use crate::partition::Partitionable;

const TTL: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn a_new_leader_is_elected_within_ttl_plus_one_second_after_the_leader_dies() {
    let store = MemCoordStore::new();
    let election = Election::new(store.clone(), keys::MASTER_LEADER);
    let first = election
        .campaign(b"master-1".to_vec(), TTL)
        .await
        .expect("first leads");
    assert!(first.is_leader());

    let second = {
        let election = election.clone();
        tokio::spawn(async move { election.campaign(b"master-2".to_vec(), TTL).await })
    };
    // The second candidate waits while the first is alive, however long.
    tokio::time::sleep(TTL * 3).await;
    assert!(
        !second.is_finished(),
        "no second leader while the first lives"
    );
    assert_eq!(
        election
            .leader()
            .await
            .expect("leader")
            .map(|leader| leader.value),
        Some(b"master-1".to_vec())
    );

    // The first leader's process dies: its keep-alives stop, nothing is revoked.
    let died = Instant::now();
    drop(first);
    let second = second.await.expect("task").expect("second leads");
    let took = died.elapsed();
    assert!(second.is_leader());
    assert!(
        took <= TTL + Duration::from_secs(1),
        "new leader after {took:?}"
    );
    eprintln!("new leader {took:?} after the leader died (TTL {TTL:?})");
}

#[tokio::test(start_paused = true)]
async fn a_resigning_leader_hands_over_at_once() {
    let store = MemCoordStore::new();
    let election = Election::new(store.clone(), keys::MASTER_LEADER);
    let first = election.campaign(b"a".to_vec(), TTL).await.expect("first");
    let second = {
        let election = election.clone();
        tokio::spawn(async move { election.campaign(b"b".to_vec(), TTL).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resigned = Instant::now();
    first.resign().await.expect("resign");
    let second = second.await.expect("task").expect("second");
    assert!(resigned.elapsed() < Duration::from_millis(100));
    assert!(second.is_leader());
}

/// The scenario both stores run: a leader is cut off from the store; it must notice before a
/// successor can lead, and its fenced writes must fail. Returns (noticed, replaced) after the cut.
pub async fn deposed_leader_scenario<S: CoordStore>(
    store: S,
    ttl: Duration,
) -> (Duration, Duration) {
    let cut_off = Partitionable::new(store.clone());
    let old = Election::new(cut_off.clone(), keys::MASTER_LEADER)
        .campaign(b"old".to_vec(), ttl)
        .await
        .expect("old leads");
    let next = {
        let election = Election::new(store.clone(), keys::MASTER_LEADER);
        tokio::spawn(async move { election.campaign(b"next".to_vec(), ttl).await })
    };
    tokio::time::sleep(ttl).await;
    assert!(old.is_leader() && !next.is_finished());

    // The old leader is partitioned away: its keep-alives fail from now on.
    cut_off.cut();
    let partitioned = Instant::now();
    old.lost().await;
    let noticed = partitioned.elapsed();
    assert!(!old.is_leader());
    assert!(
        !next.is_finished(),
        "the old leader noticed before anyone else could lead"
    );
    let next = next.await.expect("task").expect("next leads");
    let replaced = partitioned.elapsed();
    assert!(
        noticed < replaced,
        "noticed after {noticed:?}, replaced after {replaced:?}"
    );
    assert!(next.is_leader());

    // A write fenced by the old leadership fails; one fenced by the new succeeds.
    let write = |value: &str| Txn::new().and_then([Operation::put("/dm-master/state", value)]);
    let stale = store.txn(old.fence(write("stale"))).await.expect("txn");
    assert!(
        !stale.succeeded,
        "the deposed leader's fenced write is refused"
    );
    let fresh = store.txn(next.fence(write("fresh"))).await.expect("txn");
    assert!(fresh.succeeded);
    (noticed, replaced)
}

#[tokio::test(start_paused = true)]
async fn a_deposed_leader_knows_before_another_can_lead_and_cannot_write() {
    deposed_leader_scenario(MemCoordStore::new(), TTL).await;
}

#[tokio::test(start_paused = true)]
async fn observers_see_every_change_of_leader() {
    let store = MemCoordStore::new();
    let election = Election::new(store.clone(), keys::MASTER_LEADER);
    let mut observer = election.observe().await.expect("observe");
    assert_eq!(
        observer.next().await.expect("now"),
        None,
        "nobody leads yet"
    );
    let first = election.campaign(b"a".to_vec(), TTL).await.expect("a");
    let leader = observer.next().await.expect("change").expect("a leads");
    assert_eq!(leader.value, b"a");
    let second = {
        let election = election.clone();
        tokio::spawn(async move { election.campaign(b"b".to_vec(), TTL).await })
    };
    first.resign().await.expect("resign");
    let leader = observer.next().await.expect("change").expect("b leads");
    assert_eq!(
        leader.value, b"b",
        "a queued candidate is not reported until it leads"
    );
    second
        .await
        .expect("task")
        .expect("b")
        .resign()
        .await
        .expect("resign");
    assert_eq!(observer.next().await.expect("change"), None);
}
