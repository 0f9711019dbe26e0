//! Network faults between the syncer and its servers, made in network namespaces that each test
//! creates and removes itself (dm-testkit's `NetworkNamespace`: a veth pair whose ends can
//! drop every packet, or shape the traffic). Root only: skipped outside CI without it.
//!
//! What must survive each fault: nothing lost and nothing applied twice. Every test ends with a
//! table-by-table checksum comparison of upstream and downstream on a table with a primary key
//! and one without any key (where a change applied twice shows as a duplicate row). Each test
//! prints the recovery time it measured (`recovery: heal -> caught up`), which the README's
//! reliability table quotes.
//!
//! | test | fault |
//! |---|---|
//! | `the_upstream_partitioned_mid_transaction_...` | every packet to and from the upstream dropped for 4 s while a 60,000-row transaction streams |
//! | `the_downstream_partitioned_mid_batch_...` | every packet to and from the downstream dropped for 5 s while workers commit batches |
//! | `a_slow_link_that_drops_packets_...` | both servers behind a tbf-shaped link: 2 Mbit/s with a 10 ms queue that drops, then 1 Mbit/s with a 3 s queue that delays |
//! | `half_open_connections_are_detected_...` | a partition that is never healed: the replica stream and the sink each report a transient error within their read timeouts |
//!
//! The kernel of this CI has no netem (`CONFIG_NET_SCH_NETEM` is off), so delay and loss come
//! from tbf: a rate limit whose queue delays, and whose overflow drops, packets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dm_binlog::{EventData, RemoteOptions, RemoteSource, StartPoint};
use dm_core::{ApplyMode, BinlogPosition, ClassifiedError, ErrorClass};
use dm_sink::{MySqlSink, MySqlSinkOptions};
use dm_syncer::{SyncerSettings, SyncerStatus, run};
use dm_testkit::{MariaDb, MariaDbOptions, NetworkNamespace, compare_schemas, or_skip, wait_for};

use super::replication::{first_event, rules, settings};

/// The schema every test writes: one keyed table, one without any key.
const SCHEMA: &str = "CREATE DATABASE net;
CREATE TABLE net.keyed (id INT PRIMARY KEY, v INT, pad VARCHAR(200));
CREATE TABLE net.keyless (a INT, b VARCHAR(200));";

/// The upstream's heartbeat period in these tests; the replica stream's read timeout is three
/// of them plus a second (`RemoteOptions`' default): 2.5 s.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// The sink's read timeout in these tests (the default is 5 minutes).
const SINK_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// A syncer from `upstream` (at its own host, which may be inside a namespace) into `sink`,
/// following the binlog until stopped.
fn syncer_between(
    upstream: &MariaDb,
    sink: MySqlSinkOptions,
    server_id: u32,
    settings: SyncerSettings,
) -> (
    impl std::future::Future<Output = Result<SyncerStatus, dm_syncer::SyncerError>> + Send + 'static,
    tokio::sync::watch::Sender<bool>,
) {
    let mut source = RemoteOptions::new(upstream.host(), upstream.port(), "root", "", server_id);
    source.replica_name = format!("test-{}-{}", settings.task, settings.source_id);
    source.heartbeat_period = HEARTBEAT;
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    (
        run(
            settings,
            source,
            first_event(),
            sink,
            rules(),
            stop,
            progress,
        ),
        stop_sender,
    )
}

/// The downstream sink options of `downstream`, at its own host, with the tests' read timeout.
fn sink_of(downstream: &MariaDb) -> MySqlSinkOptions {
    MySqlSinkOptions {
        read_timeout: Some(SINK_READ_TIMEOUT),
        ..MySqlSinkOptions::new(downstream.host(), downstream.port(), "root", "")
    }
}

/// `SELECT COUNT(*)` of `table`, or `None` while the server cannot answer.
async fn count(server: &MariaDb, table: &str) -> Option<u64> {
    server
        .query(&format!("SELECT COUNT(*) FROM {table}"))
        .await
        .ok()
        .and_then(|rows| rows.first()?.first()?.as_deref()?.parse::<u64>().ok())
}

/// Waits until the downstream has the upstream's rows in both tables, then compares them once
/// more in full: nothing lost, nothing applied twice. Returns how long the wait took.
async fn caught_up(
    upstream: &MariaDb,
    downstream: &MariaDb,
    within: Duration,
    syncer: &mut Syncer,
) -> Duration {
    let started = Instant::now();
    let keyed = count(upstream, "net.keyed").await.expect("upstream count");
    let keyless = count(upstream, "net.keyless")
        .await
        .expect("upstream count");
    // Caught up: the same rows on both sides, contents included (equal counts alone can come
    // while updates of the last rows are still on their way).
    let waited = wait_for("the downstream to catch up", within, || {
        let ended = syncer.is_finished();
        async move {
            if ended {
                return true;
            }
            if count(downstream, "net.keyed").await != Some(keyed)
                || count(downstream, "net.keyless").await != Some(keyless)
            {
                return false;
            }
            let (Ok(mut left), Ok(mut right)) =
                (upstream.connect().await, downstream.connect().await)
            else {
                return false;
            };
            matches!(
                compare_schemas(&mut left, &mut right, "net").await,
                Ok(None)
            )
        }
    })
    .await;
    if syncer.is_finished() {
        panic!(
            "the syncer ended instead of catching up: {:?}",
            syncer.await
        );
    }
    waited
    .unwrap_or_else(|error| {
        panic!(
            "{error}: downstream has {:?}/{keyed} keyed and {:?}/{keyless} keyless rows; its sessions: {:?}",
            blocking(count(downstream, "net.keyed")),
            blocking(count(downstream, "net.keyless")),
            blocking(downstream.query(
                "SELECT ID, COMMAND, TIME, STATE, LEFT(INFO, 80) FROM information_schema.PROCESSLIST"
            )),
        )
    });
    let elapsed = started.elapsed();
    let mut left = upstream.connect().await.expect("connect upstream");
    let mut right = downstream.connect().await.expect("connect downstream");
    let difference = compare_schemas(&mut left, &mut right, "net")
        .await
        .expect("compare");
    assert!(difference.is_none(), "after the fault: {difference:?}");
    elapsed
}

/// Runs `work` to its end from synchronous code (a panic message).
fn blocking<T>(work: impl std::future::Future<Output = T>) -> T {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(work))
}

/// A running syncer's task.
type Syncer = tokio::task::JoinHandle<Result<SyncerStatus, dm_syncer::SyncerError>>;

/// Stops the syncer gracefully and checks it ended without an error.
async fn stop_syncer(stop: tokio::sync::watch::Sender<bool>, syncer: Syncer) -> SyncerStatus {
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(30), syncer)
        .await
        .expect("the syncer stops")
        .expect("the syncer task")
        .unwrap_or_else(|error| panic!("the syncer failed: {error}"))
}

/// A large upstream transaction: `rows` keyed rows and a quarter as many keyless ones, some
/// of them identical (duplicates a double apply would add to).
fn large_transaction(first_id: u64, rows: u64) -> String {
    format!(
        "BEGIN;
         INSERT INTO net.keyed SELECT seq, seq % 100, REPEAT('k', 150) FROM seq_{first_id}_to_{last};
         INSERT INTO net.keyless SELECT seq % 500, REPEAT('x', 100) FROM seq_1_to_{quarter};
         UPDATE net.keyed SET v = v + 1 WHERE id BETWEEN {first_id} AND {first_id} + 999;
         COMMIT;",
        last = first_id + rows - 1,
        quarter = rows / 4,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_partitioned_mid_transaction_resumes_with_nothing_lost_or_doubled() {
    // Declared first: dropped last, after the server inside it.
    let namespace = or_skip!(NetworkNamespace::new());
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("netfault-upstream").in_namespace(&namespace)),
        MariaDb::start_with(MariaDbOptions::named("netfault-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(SCHEMA).await.expect("schema");
    upstream
        .execute("USE net; INSERT INTO keyed SELECT seq, seq, 'first' FROM seq_1_to_100")
        .await
        .expect("first rows");
    let (run, stop) = syncer_between(&upstream, sink_of(&downstream), 611, settings(2));
    let mut syncer = tokio::spawn(run);
    caught_up(&upstream, &downstream, Duration::from_secs(30), &mut syncer).await;

    // One large transaction; the link is cut while the syncer is inside it (some of its rows
    // downstream, not all).
    let total = 60_000;
    upstream
        .execute(&format!("USE net; {}", large_transaction(1000, total)))
        .await
        .expect("large transaction");
    wait_for(
        "the transaction's first rows",
        Duration::from_secs(30),
        || async {
            count(&downstream, "net.keyed")
                .await
                .is_some_and(|rows| rows > 100)
        },
    )
    .await
    .expect("streaming");
    namespace.partition().expect("partition");
    let at_partition = count(&downstream, "net.keyed").await.expect("count");
    assert!(
        at_partition < 100 + total,
        "the transaction was applied before the partition ({at_partition} rows): not mid-transaction"
    );
    // Longer than the stream's read timeout (2.5 s): the half-open stream is given up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !syncer.is_finished(),
        "the syncer gave up during the partition"
    );
    namespace.heal().expect("heal");
    let healed = Instant::now();
    caught_up(&upstream, &downstream, Duration::from_secs(60), &mut syncer).await;
    let recovery = healed.elapsed();
    // Replication goes on after the fault.
    upstream
        .execute("INSERT INTO net.keyed VALUES (999999, 1, 'after'); INSERT INTO net.keyless VALUES (1, 'after')")
        .await
        .expect("write after");
    caught_up(&upstream, &downstream, Duration::from_secs(30), &mut syncer).await;
    let status = stop_syncer(stop, syncer).await;
    eprintln!(
        "upstream partition: {at_partition} of {} keyed rows downstream at the cut; \
         recovery: heal -> caught up {recovery:?}; {status:?}",
        100 + total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downstream_partitioned_mid_batch_resumes_with_nothing_lost_or_doubled() {
    let namespace = or_skip!(NetworkNamespace::new());
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("netfault-up2")),
        MariaDb::start_with(
            MariaDbOptions::named("netfault-down2")
                .downstream()
                .in_namespace(&namespace)
        ),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(SCHEMA).await.expect("schema");
    let (run, stop) = syncer_between(&upstream, sink_of(&downstream), 612, settings(2));
    let mut syncer = tokio::spawn(run);
    // Small transactions go on all along, on both tables.
    let writing = Arc::new(AtomicBool::new(false));
    let writer = dm_testkit::workloads::write_until(upstream.opts(), writing.clone(), |round| {
        format!(
            "INSERT INTO net.keyed VALUES ({id}, 1, 'w'); INSERT INTO net.keyless VALUES ({a}, 'w'), ({a}, 'w'); UPDATE net.keyed SET v = v + 1 WHERE id = {id}",
            id = 500_000 + round,
            a = round % 7,
        )
    });
    upstream
        .execute(&format!("USE net; {}", large_transaction(1, 40_000)))
        .await
        .expect("large transaction");
    wait_for(
        "the first batches downstream",
        Duration::from_secs(30),
        || async {
            count(&downstream, "net.keyed")
                .await
                .is_some_and(|rows| rows > 1000)
        },
    )
    .await
    .expect("applying");
    namespace.partition().expect("partition");
    // Longer than the sink's read timeout (3 s): batches in flight are given up and retried.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !syncer.is_finished(),
        "the syncer gave up during the partition"
    );
    namespace.heal().expect("heal");
    let healed = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    writing.store(true, Ordering::Relaxed);
    let rounds = writer.await.expect("writer");
    caught_up(&upstream, &downstream, Duration::from_secs(60), &mut syncer).await;
    let recovery = healed.elapsed();
    let status = stop_syncer(stop, syncer).await;
    eprintln!(
        "downstream partition: {rounds} small transactions besides the large one; \
         recovery: heal -> caught up {recovery:?}; {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_that_drops_packets_still_replicates_everything_once() {
    // Both servers behind one shaped link (two veth ends, each shaped on egress).
    let namespace = or_skip!(NetworkNamespace::new());
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("netfault-up3").in_namespace(&namespace)),
        MariaDb::start_with(
            MariaDbOptions::named("netfault-down3")
                .downstream()
                .in_namespace(&namespace)
        ),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(SCHEMA).await.expect("schema");
    let (run, stop) = syncer_between(&upstream, sink_of(&downstream), 613, settings(2));
    let mut syncer = tokio::spawn(run);
    caught_up(&upstream, &downstream, Duration::from_secs(30), &mut syncer).await;

    // Phase 1, lossy: 2 Mbit/s with a queue of 10 ms: bursts overflow it and are dropped.
    namespace
        .throttle(2_000, Duration::from_millis(10))
        .expect("throttle");
    let started = Instant::now();
    upstream
        .execute(&format!("USE net; {}", large_transaction(1, 2_000)))
        .await
        .expect("write");
    caught_up(&upstream, &downstream, Duration::from_secs(60), &mut syncer).await;
    let dropped = namespace.dropped_packets().expect("qdisc statistics");
    let lossy = started.elapsed();
    assert!(
        dropped > 0,
        "the shaped link dropped nothing: the test tested no loss"
    );

    // Phase 2, slow: 1 Mbit/s with a queue of 3 s: a bulk transfer waits seconds in it,
    // longer than the stream's read timeout would allow a silent link (heartbeats queue too).
    namespace
        .throttle(1_000, Duration::from_secs(3))
        .expect("throttle");
    let started = Instant::now();
    upstream
        .execute(&format!("USE net; {}", large_transaction(100_000, 2_000)))
        .await
        .expect("write");
    let probe = Instant::now();
    upstream
        .execute("INSERT INTO net.keyed VALUES (999999, 0, 'probe')")
        .await
        .expect("probe");
    wait_for("the probe row", Duration::from_secs(60), || async {
        downstream
            .query("SELECT 1 FROM net.keyed WHERE id = 999999")
            .await
            .is_ok_and(|rows| !rows.is_empty())
    })
    .await
    .expect("probe replicated");
    let probe_lag = probe.elapsed();
    namespace.heal().expect("heal");
    let healed = Instant::now();
    caught_up(&upstream, &downstream, Duration::from_secs(60), &mut syncer).await;
    let recovery = healed.elapsed();
    let slow = started.elapsed();
    let status = stop_syncer(stop, syncer).await;
    eprintln!(
        "shaped link: lossy phase {lossy:?} ({dropped} packets dropped), slow phase {slow:?} \
         (a row written behind 2,500 others arrived after {probe_lag:?}); \
         after the heal, caught up in {recovery:?}; {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_detected_within_the_read_timeouts() {
    let namespace = or_skip!(NetworkNamespace::new());
    let server = or_skip!(
        MariaDb::start_with(MariaDbOptions::named("netfault-halfopen").in_namespace(&namespace))
            .await
    );
    server
        .execute("CREATE DATABASE net; CREATE TABLE net.t (id INT PRIMARY KEY)")
        .await
        .expect("schema");

    // The replica stream: caught up, then the link dies without a FIN or RST.
    let mut options = RemoteOptions::new(server.host(), server.port(), "root", "", 614);
    options.heartbeat_period = HEARTBEAT;
    let start = StartPoint::Position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));
    let mut stream = RemoteSource::connect(&options, &start)
        .await
        .expect("connect the replica stream");
    // Everything written so far, up to the first heartbeat: the stream is idle, caught up.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = stream
                .next_event()
                .await
                .expect("event")
                .expect("a following stream");
            if matches!(event.event.data, EventData::Heartbeat { .. }) {
                break;
            }
        }
    })
    .await
    .expect("a heartbeat within 10 s");
    namespace.partition().expect("partition");
    let cut = Instant::now();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.next_event()).await {
            Err(_) => panic!("the replica stream hangs on a half-open connection"),
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => break error,
        }
    };
    let stream_noticed = cut.elapsed();
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    // Read timeout 2.5 s; events already buffered may come first.
    assert!(
        stream_noticed < Duration::from_secs(5),
        "noticed after {stream_noticed:?}: {error}"
    );
    namespace.heal().expect("heal");

    // The sink: a batch sent into a dead link fails within the read timeout, transiently, and
    // the next one reconnects.
    let mut sink = MySqlSink::new(sink_of(&server)).expect("sink");
    sink.apply_changes_with(
        &[],
        ApplyMode::Exact,
        &["INSERT INTO net.t VALUES (1)".into()],
    )
    .await
    .expect("a batch before the fault");
    namespace.partition().expect("partition");
    let cut = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        sink.apply_changes_with(
            &[],
            ApplyMode::Exact,
            &["INSERT INTO net.t VALUES (2)".into()],
        ),
    )
    .await
    .expect("the sink hangs on a half-open connection");
    let sink_noticed = cut.elapsed();
    let error = outcome.expect_err("a batch through a cut link");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    assert!(
        sink_noticed >= SINK_READ_TIMEOUT && sink_noticed < SINK_READ_TIMEOUT * 2,
        "noticed after {sink_noticed:?}: {error}"
    );
    namespace.heal().expect("heal");
    let healed = Instant::now();
    // Once healed, the sink reconnects; the batch sent into the cut may have committed when
    // its packets got through after the heal, so it is written idempotently here.
    sink.apply_changes_with(
        &[],
        ApplyMode::Exact,
        &["INSERT IGNORE INTO net.t VALUES (2), (3)".into()],
    )
    .await
    .expect("a batch after the heal");
    let reconnect = healed.elapsed();
    let rows = server
        .query("SELECT id FROM net.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            vec![Some("1".to_owned())],
            vec![Some("2".to_owned())],
            vec![Some("3".to_owned())]
        ]
    );
    eprintln!(
        "half-open: replica stream noticed after {stream_noticed:?} (read timeout 2.5 s), \
         sink after {sink_noticed:?} (read timeout {SINK_READ_TIMEOUT:?}); \
         sink reconnected {reconnect:?} after the heal: {error}"
    );
}
