//! An etcd member cut off by a real network partition (issue 18, item 3): a three-member
//! cluster whose third member runs in a network namespace of the test's own, cut off while a
//! `CoordStore` client writes and an election runs.
//!
//! What must survive:
//! - every write the client saw acknowledged is in the store afterwards, on every member, with
//!   the value written; nothing is there that was never written;
//! - writes go on during the cut (the two members left keep a quorum);
//! - the leader whose client reaches only the cut-off member knows it lost before the other
//!   candidate leads, and a write fenced by its leadership is refused;
//! - after the link heals, the cut-off member catches up: it serves the same keys, values and
//!   revisions as the others (compared as a checksum of the whole prefix).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dm_coord::{
    CoordStore, Election, EtcdCoordStore, EtcdOptions, KeyValue, Operation, Txn,
    connect_with_backoff, keys, with_backoff,
};
use dm_testkit::{EtcdCluster, EtcdTiming, NetworkNamespace, or_skip};

const WRITES: &str = "/partition-test/writes/";

async fn store_on(endpoints: Vec<String>) -> EtcdCoordStore {
    let mut options = EtcdOptions::new(endpoints);
    // Short timeouts: a request sent to the cut-off member fails fast and is retried elsewhere;
    // the shortest keepalive etcd allows, and a short answer wait, take the member out of the
    // client's balancing within about 6 s.
    options.connect_timeout = Duration::from_secs(1);
    options.request_timeout = Duration::from_secs(1);
    options.keepalive = EtcdOptions::MIN_KEEPALIVE;
    options.keepalive_timeout = Duration::from_secs(1);
    connect_with_backoff(&options, Duration::from_secs(20))
        .await
        .expect("connect to the test etcd")
}

/// What the writer did: numbers acknowledged, and how many it tried.
#[derive(Default)]
struct WriterLog {
    acknowledged: Mutex<Vec<u64>>,
    attempted: AtomicU64,
    failed: AtomicU64,
}

/// Writes `WRITES<n>` = `value-<n>` for n = 0, 1, ... until `stop`; a failed put (its outcome
/// unknown) is not retried under the same number.
async fn write_until(store: EtcdCoordStore, stop: Arc<AtomicBool>, log: Arc<WriterLog>) {
    let mut number = 0u64;
    while !stop.load(Ordering::SeqCst) {
        log.attempted.store(number + 1, Ordering::SeqCst);
        let key = format!("{WRITES}{number:08}");
        let put = store.put(&key, format!("value-{number}").into_bytes(), None);
        match tokio::time::timeout(Duration::from_secs(3), put).await {
            Ok(Ok(_)) => log
                .acknowledged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(number),
            _ => {
                log.failed.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        number += 1;
    }
}

fn acknowledged(log: &WriterLog) -> Vec<u64> {
    log.acknowledged
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Key → (value, mod revision) of the writer's prefix, read through `store`.
async fn contents(store: &EtcdCoordStore) -> BTreeMap<String, (Vec<u8>, u64)> {
    let (values, _) = with_backoff(Duration::from_secs(30), || store.range(WRITES))
        .await
        .expect("read the written keys");
    values
        .into_iter()
        .map(
            |KeyValue {
                 key,
                 value,
                 mod_revision,
                 ..
             }| (key, (value, mod_revision)),
        )
        .collect()
}

fn checksum(contents: &BTreeMap<String, (Vec<u8>, u64)>) -> u64 {
    // FNV-1a over every key, value and revision, in key order.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (key, (value, revision)) in contents {
        for byte in key
            .bytes()
            .chain(value.iter().copied())
            .chain(revision.to_le_bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_during_writes_and_an_election_loses_nothing_and_catches_up() {
    let namespace = or_skip!(NetworkNamespace::new());
    let cluster = or_skip!(
        EtcdCluster::start_cluster_with_member_in(3, EtcdTiming::default(), 2, &namespace).await
    );
    let inside = cluster.endpoint(2).expect("member 2");
    let outside = vec![
        cluster.endpoint(0).expect("member 0"),
        cluster.endpoint(1).expect("member 1"),
    ];

    // The writer balances over all three members.
    let writer_store = store_on(cluster.all_endpoints()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(WriterLog::default());
    let writer = tokio::spawn(write_until(writer_store, stop.clone(), log.clone()));

    // Candidate "inside" reaches only member 2 and leads; "outside" reaches the others and waits.
    // Five times the Raft election timeout: when the cut-off member was the Raft leader, the
    // others elect a new one (about 1 s) while the outside candidate's keep-alives wait, and a
    // TTL much shorter would let its own lease lapse locally (the keeper then gives it up, as
    // it must when it cannot know).
    let ttl = Duration::from_secs(5);
    let inside_store = store_on(vec![inside.clone()]).await;
    let outside_store = store_on(outside.clone()).await;
    let first = Election::new(inside_store.clone(), keys::MASTER_LEADER)
        .campaign(b"inside".to_vec(), ttl)
        .await
        .expect("the inside candidate leads");
    let second = {
        let election = Election::new(outside_store.clone(), keys::MASTER_LEADER);
        tokio::spawn(async move { election.campaign(b"outside".to_vec(), ttl).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.is_leader() && !second.is_finished(), "one leader");
    let before_cut = acknowledged(&log).len();
    assert!(before_cut > 0, "the writer writes before the cut");

    // Cut member 2 off: its peers, the writer and the inside candidate no longer reach it.
    namespace.partition().expect("partition");
    let cut = Instant::now();
    first.lost().await;
    let noticed = cut.elapsed();
    assert!(!first.is_leader());
    if second.is_finished() {
        let outcome = second
            .await
            .expect("task")
            .map(|guard| guard.key().to_owned());
        panic!("the cut-off leader noticed ({noticed:?}) after the other ended: {outcome:?}");
    }
    let second = tokio::time::timeout(ttl * 5, second)
        .await
        .expect("the outside candidate leads within 5 TTLs")
        .expect("task")
        .expect("the outside candidate leads");
    let replaced = cut.elapsed();
    assert!(second.is_leader());
    assert!(
        noticed < replaced,
        "noticed after {noticed:?}, replaced after {replaced:?}"
    );

    // The deposed leader's fenced write is refused; the new leader's goes through.
    let write = |value: &str| Txn::new().and_then([Operation::put("/dm-master/state", value)]);
    let stale = with_backoff(Duration::from_secs(10), || {
        outside_store.txn(first.fence(write("stale")))
    })
    .await
    .expect("txn");
    assert!(!stale.succeeded, "the deposed leader's fenced write");
    let fresh = with_backoff(Duration::from_secs(10), || {
        outside_store.txn(second.fence(write("fresh")))
    })
    .await
    .expect("txn");
    assert!(fresh.succeeded, "the new leader's fenced write");

    // Writes go on while member 2 is cut off (once the keepalive gave it up, at full speed).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during_cut = acknowledged(&log).len() - before_cut;
    assert!(
        during_cut >= 50,
        "only {during_cut} writes acknowledged in {:?} of partition",
        cut.elapsed()
    );

    // Heal: member 2 rejoins and catches up.
    namespace.heal().expect("heal");
    let healed = Instant::now();
    let caught_up = loop {
        if cluster.is_healthy(2).await {
            break healed.elapsed();
        }
        assert!(
            healed.elapsed() < Duration::from_secs(30),
            "member 2 is not healthy 30 s after the link healed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");

    let through_outside = contents(&outside_store).await;
    let through_inside = contents(&store_on(vec![inside]).await).await;
    let acknowledged = acknowledged(&log);
    let attempted = log.attempted.load(Ordering::SeqCst);
    eprintln!(
        "etcd member cut off: leader loss noticed after {noticed:?}, new leader after \
         {replaced:?}; {} writes acknowledged ({during_cut} during the cut), {} failed; member \
         healthy {caught_up:?} after the heal",
        acknowledged.len(),
        log.failed.load(Ordering::SeqCst)
    );
    for number in &acknowledged {
        let key = format!("{WRITES}{number:08}");
        assert_eq!(
            through_outside.get(&key).map(|(value, _)| value.as_slice()),
            Some(format!("value-{number}").as_bytes()),
            "acknowledged write {key} lost"
        );
    }
    for (key, (value, _)) in &through_outside {
        let number: u64 = key
            .strip_prefix(WRITES)
            .and_then(|number| number.parse().ok())
            .expect("a key the writer wrote");
        assert!(number < attempted, "{key} was never written");
        assert_eq!(value, format!("value-{number}").as_bytes(), "{key}");
    }
    assert_eq!(
        checksum(&through_inside),
        checksum(&through_outside),
        "the member that was cut off serves the same keys, values and revisions \
         ({} keys inside, {} outside)",
        through_inside.len(),
        through_outside.len()
    );

    // One leader, the same seen through either side.
    for (side, store) in [("inside", inside_store), ("outside", outside_store)] {
        let election = Election::new(store, keys::MASTER_LEADER);
        let leader = with_backoff(Duration::from_secs(10), || election.leader())
            .await
            .expect("read the leader");
        assert_eq!(
            leader.map(|leader| leader.value),
            Some(b"outside".to_vec()),
            "the leader seen through the {side} member"
        );
    }
}
