//! The conformance suite on a real etcd (one node, and a three-node cluster), election failover on
//! etcd, a watch that survives the member restarting, and the error classes of a bad endpoint, an
//! unreachable cluster and rejected credentials.

use std::time::{Duration, Instant};

use dm_coord::testsuite;
use dm_coord::{
    CoordError, CoordStore, Election, EtcdCoordStore, EtcdOptions, EventKind, connect_with_backoff,
    keys, with_backoff,
};
use dm_core::{ClassifiedError, ErrorClass};
use dm_testkit::{EtcdCluster, EtcdTiming, or_skip};

async fn compact(store: EtcdCoordStore, revision: dm_coord::Revision) {
    store.compact(revision).await.expect("compact");
}

async fn store_for(cluster: &EtcdCluster) -> EtcdCoordStore {
    connect_with_backoff(
        &EtcdOptions::new(cluster.endpoints()),
        Duration::from_secs(20),
    )
    .await
    .expect("connect to the test etcd")
}

macro_rules! conformance {
    ($name:ident, $size:expr, $test:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let cluster = or_skip!(EtcdCluster::start_cluster($size, EtcdTiming::default()).await);
            $test(store_for(&cluster).await).await;
        }
    };
}

conformance!(etcd_put_get_delete, 1, testsuite::put_get_delete);
conformance!(etcd_range_by_prefix, 1, testsuite::range_by_prefix);
conformance!(etcd_transactions, 1, testsuite::transactions);
conformance!(etcd_lease_expiry, 1, testsuite::lease_expiry);
conformance!(etcd_lease_revoke, 1, testsuite::lease_revoke);
conformance!(etcd_watch_from_revision, 1, testsuite::watch_from_revision);
conformance!(etcd_cluster_put_get_delete, 3, testsuite::put_get_delete);
conformance!(etcd_cluster_transactions, 3, testsuite::transactions);
conformance!(etcd_cluster_lease_expiry, 3, testsuite::lease_expiry);
conformance!(
    etcd_cluster_watch_from_revision,
    3,
    testsuite::watch_from_revision
);
conformance!(etcd_cluster_range_by_prefix, 3, testsuite::range_by_prefix);
conformance!(etcd_cluster_lease_revoke, 3, testsuite::lease_revoke);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_cluster_watch_compacted() {
    let cluster = or_skip!(EtcdCluster::start_cluster(3, EtcdTiming::default()).await);
    testsuite::watch_compacted(store_for(&cluster).await, compact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_knows_before_another_can_lead_on_etcd() {
    let cluster = or_skip!(EtcdCluster::start().await);
    let (noticed, replaced) =
        crate::election::deposed_leader_scenario(store_for(&cluster).await, Duration::from_secs(3))
            .await;
    eprintln!("etcd: deposed leader noticed after {noticed:?}, replaced after {replaced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_compacted() {
    let cluster = or_skip!(EtcdCluster::start().await);
    testsuite::watch_compacted(store_for(&cluster).await, compact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_keeps_serving_with_one_member_killed() {
    let mut cluster = or_skip!(EtcdCluster::start_cluster(3, EtcdTiming::default()).await);
    let store = store_for(&cluster).await;
    store
        .put("/k", b"before".to_vec(), None)
        .await
        .expect("put");
    cluster.kill_member(0).expect("kill member 0");
    // The client balances over all three endpoints; the two left keep a quorum.
    let revision = with_backoff(Duration::from_secs(20), || {
        store.put("/k", b"after".to_vec(), None)
    })
    .await
    .expect("writes go on with one member down");
    let read = with_backoff(Duration::from_secs(20), || store.get("/k"))
        .await
        .expect("read");
    assert_eq!(
        read.map(|kv| (kv.value, kv.mod_revision)),
        Some((b"after".to_vec(), revision))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_is_elected_on_etcd_within_ttl_plus_one_second() {
    let cluster = or_skip!(EtcdCluster::start().await);
    let store = store_for(&cluster).await;
    let ttl = Duration::from_secs(2);
    let election = Election::new(store.clone(), keys::MASTER_LEADER);
    let first = election
        .campaign(b"master-1".to_vec(), ttl)
        .await
        .expect("first");
    let second = {
        let election = election.clone();
        tokio::spawn(async move { election.campaign(b"master-2".to_vec(), ttl).await })
    };
    tokio::time::sleep(ttl * 2).await;
    assert!(!second.is_finished(), "one leader at a time");
    let died = Instant::now();
    drop(first);
    let second = second.await.expect("task").expect("second leads");
    let took = died.elapsed();
    eprintln!("etcd: new leader {took:?} after the leader died (TTL {ttl:?})");
    assert!(second.is_leader());
    assert!(
        took <= ttl + Duration::from_secs(1),
        "new leader after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_delivers_every_event_in_order_across_a_member_restart() {
    let mut cluster = or_skip!(EtcdCluster::start().await);
    let store = store_for(&cluster).await;
    let start = store.put("/w/0", b"0".to_vec(), None).await.expect("put");
    let mut watcher = store.watch("/w/", start).await.expect("watch");
    for index in 1..50 {
        store
            .put(&format!("/w/{index}"), b"x".to_vec(), None)
            .await
            .expect("put");
    }
    for index in 0..25 {
        let event = watcher.next().await.expect("event").expect("no error");
        assert_eq!(event.kv.key, format!("/w/{index}"));
    }
    // The member dies and comes back (same data, same port); the watch stream breaks.
    cluster.kill_member(0).expect("kill");
    cluster.restart_member(0).await.expect("restart");
    for index in 50..80 {
        let key = format!("/w/{index}");
        with_backoff(Duration::from_secs(20), || {
            store.put(&key, b"x".to_vec(), None)
        })
        .await
        .expect("put after restart");
    }
    for index in 25..80 {
        let event = tokio::time::timeout(Duration::from_secs(20), watcher.next())
            .await
            .expect("event in time")
            .expect("event")
            .expect("no error");
        assert_eq!(
            (event.kind, event.kv.key),
            (EventKind::Put, format!("/w/{index}")),
            "in order, none missed or repeated"
        );
    }
}

#[tokio::test]
async fn a_malformed_endpoint_is_refused_naming_it() {
    let error = EtcdCoordStore::connect(&EtcdOptions::new(["127.0.0.1"]))
        .await
        .expect_err("no port");
    assert_eq!(error.class(), ErrorClass::Definite);
    assert!(
        matches!(&error, CoordError::Refused { endpoint, .. } if endpoint == "127.0.0.1"),
        "{error}"
    );
}

#[tokio::test]
async fn a_keepalive_etcd_would_refuse_is_refused_naming_etcds_minimum() {
    let options = EtcdOptions {
        keepalive: Duration::from_secs(1),
        ..EtcdOptions::new(["127.0.0.1:2379"])
    };
    let error = EtcdCoordStore::connect(&options)
        .await
        .expect_err("pings every second");
    assert_eq!(error.class(), ErrorClass::Definite);
    let message = error.to_string();
    assert!(
        message.contains("--grpc-keepalive-min-time") && message.contains("5s"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_cluster_is_transient_and_retried_with_backoff() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mut options = EtcdOptions::new([format!("127.0.0.1:{port}")]);
    options.connect_timeout = Duration::from_millis(200);
    options.request_timeout = Duration::from_millis(500);
    let error = EtcdCoordStore::connect(&options)
        .await
        .expect_err("nothing there");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    let started = Instant::now();
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let error = with_backoff(Duration::from_secs(1), || {
        attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        EtcdCoordStore::connect(&options)
    })
    .await
    .expect_err("still nothing there");
    assert!(matches!(error, CoordError::Unavailable { .. }), "{error}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried until the deadline"
    );
    assert!(
        attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "retried several times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_naming_the_endpoint() {
    let cluster = or_skip!(EtcdCluster::start().await);
    let endpoints = cluster.endpoints();
    // Turn authentication on: a root user with a password.
    let mut client = etcd_client_for(&endpoints).await;
    client
        .user_add("root", "secret", None)
        .await
        .expect("add root");
    client
        .user_grant_role("root", "root")
        .await
        .expect("grant root");
    client.auth_enable().await.expect("enable auth");

    let mut options = EtcdOptions::new(endpoints.clone());
    options.user = Some(("root".into(), "wrong".into()));
    let error = EtcdCoordStore::connect(&options)
        .await
        .expect_err("wrong password");
    assert_eq!(error.class(), ErrorClass::Definite, "{error}");
    assert!(
        matches!(&error, CoordError::Refused { endpoint, .. } if endpoint == &endpoints.join(",")),
        "{error}"
    );

    options.user = Some(("root".into(), "secret".into()));
    let store = EtcdCoordStore::connect(&options)
        .await
        .expect("right password");
    store
        .put("/auth", b"ok".to_vec(), None)
        .await
        .expect("authenticated put");
}

async fn etcd_client_for(endpoints: &[String]) -> etcd_client::Client {
    etcd_client::Client::connect(endpoints, None)
        .await
        .expect("raw client")
}
