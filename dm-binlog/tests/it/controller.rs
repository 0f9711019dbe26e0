//! `StreamController` against a live MariaDB: the dump connection killed on the upstream
//! (`KILL`) in the middle of a transaction and the upstream restarted, while rows keep being
//! written: the delivered events are exactly the binlog's events, in order, with no gap and no
//! repeat (every event starts where the previous one ended). Operators skip, replace and inject
//! at a position; GTID mode resumes by GTID set.

use std::time::Duration;

use dm_binlog::{
    BinlogError, EventData, Operator, Origin, ReconnectPolicy, RemoteOptions, StartPoint,
    StreamController, event::Event,
};
use dm_core::{BinlogPosition, Flavor, GtidSet, Location};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::remote::{items_schema, write_workload};

fn controller_for(
    server: &MariaDb,
    server_id: u32,
    start: Location,
) -> StreamController<RemoteOptions> {
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", server_id);
    options.heartbeat_period = Duration::from_millis(500);
    options.annotate_rows = true;
    options.connect_timeout = Duration::from_secs(2);
    let policy = ReconnectPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        give_up_after: Some(Duration::from_secs(60)),
    };
    StreamController::new(options, start, policy)
}

fn file_start(file: &str) -> Location {
    Location::from_position(BinlogPosition::parse(&format!("{file}:4")).expect("position"))
}

/// Every event of every binlog file of the server: `file:start`.
async fn binlog_positions(server: &MariaDb) -> Vec<String> {
    let mut positions = Vec::new();
    for file in server.query("SHOW BINARY LOGS").await.expect("files") {
        let file = file[0].clone().expect("name");
        for row in server
            .query(&format!("SHOW BINLOG EVENTS IN '{file}'"))
            .await
            .expect("events")
        {
            positions.push(format!("{file}:{}", row[1].clone().expect("pos")));
        }
    }
    positions
}

async fn kill_dump_connections(server: &MariaDb) -> usize {
    let dumps: Vec<String> = server
        .query("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
        .await
        .expect("processlist")
        .into_iter()
        .filter_map(|row| row[0].clone())
        .collect();
    for id in &dumps {
        // The thread may be gone already.
        let _ = server.execute(&format!("KILL {id}")).await;
    }
    dumps.len()
}

/// Checks that each real event starts where the previous one ended.
#[derive(Default)]
struct Continuity {
    delivered: Vec<String>,
    previous_end: Option<BinlogPosition>,
}

impl Continuity {
    /// Reads the next event (there must be one) and checks it.
    async fn next<Source: dm_binlog::BinlogSource>(
        &mut self,
        controller: &mut StreamController<Source>,
    ) {
        let event = controller
            .next_event()
            .await
            .expect("stream")
            .expect("event");
        self.check(&event);
    }

    fn check(&mut self, event: &dm_binlog::ControlledEvent) {
        if event.event.artificial {
            return;
        }
        let start = event.event.position.clone();
        if let Some(end) = &self.previous_end {
            // A file that ends without a ROTATE (STOP at a clean shutdown, nothing after a
            // crash) continues at the start of the next file; the comparison with SHOW BINLOG
            // EVENTS at the end proves nothing was left out there.
            let next_file = end.file.next().expect("next file");
            assert!(
                start == *end || (start.file == next_file && start.offset == 4),
                "event at {start} does not start where the previous ended ({end})"
            );
        }
        self.previous_end = Some(event.event.next_position.clone());
        self.delivered.push(start.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_and_a_restarted_upstream_lose_and_repeat_nothing() {
    let mut server = or_skip!(MariaDb::start_with(MariaDbOptions::named("controller-kill")).await);
    // Transactions of several MiB: more than the socket buffers hold, so the kill lands inside
    // one and the reconnect must re-read its beginning without delivering it twice.
    write_workload(&server, 150_000).await;
    let mut controller = controller_for(&server, 201, file_start("mysql-bin.000001"));

    let mut seen = Continuity::default();
    // Read into the big INSERT transaction, then kill the dump connection.
    let read_until = Duration::from_secs(30);
    tokio::time::timeout(read_until, async {
        while seen.delivered.len() < 40 {
            seen.next(&mut controller).await;
        }
    })
    .await
    .expect("40 events");
    assert!(controller.current().position != controller.transaction_end().position);
    assert_eq!(kill_dump_connections(&server).await, 1);
    // Read on past the kill, then restart the upstream and write more.
    tokio::time::timeout(read_until, async {
        while controller.reconnects() < 1 {
            seen.next(&mut controller).await;
        }
        for _ in 0..20 {
            seen.next(&mut controller).await;
        }
    })
    .await
    .expect("a reconnect after the kill");
    assert!(
        controller.replayed_events() > 0,
        "the kill fell between transactions"
    );
    // Keep reading while the upstream restarts, as a replica does: a replica that stops
    // reading holds the server's dump thread in a blocked write and delays its shutdown.
    let reconnects_before = controller.reconnects();
    let (restarted, ()) = tokio::join!(server.restart(), async {
        tokio::time::timeout(Duration::from_secs(90), async {
            while controller.reconnects() == reconnects_before {
                seen.next(&mut controller).await;
            }
        })
        .await
        .expect("reconnected after the restart");
    });
    restarted.expect("restart");
    server
        .execute(
            "INSERT INTO shop.items SELECT seq + 1000000, 1, 'after restart' FROM shop.seq_1_to_5000;
             UPDATE shop.items SET qty = 0 WHERE id > 1000000;",
        )
        .await
        .expect("write after restart");
    let (file, end) = server.binlog_position().await.expect("position");
    let target = BinlogPosition::parse(&format!("{file}:{end}")).expect("target");
    tokio::time::timeout(Duration::from_secs(60), async {
        while seen.previous_end.as_ref() != Some(&target) {
            seen.next(&mut controller).await;
        }
    })
    .await
    .expect("caught up within 60 s");
    assert!(controller.reconnects() >= 2, "{}", controller.reconnects());

    // Every binlog event, once, in order (the restart's STOP event included).
    let expected = binlog_positions(&server).await;
    let delivered = &seen.delivered;
    let first_difference = delivered
        .iter()
        .zip(&expected)
        .position(|(got, want)| got != want);
    assert_eq!(
        (first_difference, delivered.len()),
        (None, expected.len()),
        "first difference at {:?}",
        first_difference.map(|index| (&delivered[index], &expected[index]))
    );
    let _ = items_schema;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtid_mode_resumes_by_gtid_set_after_a_kill() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("controller-gtid")).await);
    write_workload(&server, 3_000).await;
    let empty = GtidSet::parse(Flavor::MariaDb, "").expect("empty set");
    let mut start = file_start("mysql-bin.000001");
    start.gtid_set = Some(std::sync::Arc::new(empty));
    let mut controller = controller_for(&server, 202, start);
    let mut gtids = Vec::new();
    let mut real = 0;
    while real < 12 {
        let event = controller
            .next_event()
            .await
            .expect("stream")
            .expect("event");
        if !event.event.artificial {
            real += 1;
        }
    }
    kill_dump_connections(&server).await;
    // Written after the kill: only a reconnected stream can deliver these.
    server
        .execute("INSERT INTO shop.items VALUES (-1, 1, 'a'); INSERT INTO shop.items VALUES (-2, 2, 'b')")
        .await
        .expect("write after the kill");
    let (file, end) = server.binlog_position().await.expect("position");
    let target = BinlogPosition::parse(&format!("{file}:{end}")).expect("target");
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = controller
                .next_event()
                .await
                .expect("stream")
                .expect("event");
            if let EventData::MariaDbGtid { gtid, .. } = &event.event.event.data {
                gtids.push(gtid.sequence);
            }
            if event.event.next_position == target {
                break;
            }
        }
    })
    .await
    .expect("caught up");
    assert!(controller.reconnects() >= 1);
    // No GTID delivered twice, none missing after the first one seen.
    let mut sorted = gtids.clone();
    sorted.dedup();
    assert_eq!(sorted, gtids);
    assert!(
        gtids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{gtids:?}"
    );
    let set = controller
        .transaction_end()
        .gtid_set
        .clone()
        .expect("gtid mode");
    let server_pos = server
        .query("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid pos")[0][0]
        .clone()
        .expect("value");
    assert_eq!(set.to_string(), server_pos);
}

fn made_query(sql: &str) -> Event {
    Event::statement("shop", sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_skip_replace_and_inject_at_a_position() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("controller-ops")).await);
    server
        .execute(
            "CREATE DATABASE shop;
             CREATE TABLE shop.a (id INT PRIMARY KEY);
             CREATE TABLE shop.b (id INT PRIMARY KEY);
             CREATE TABLE shop.c (id INT PRIMARY KEY);",
        )
        .await
        .expect("ddl");
    let shown = server
        .query("SHOW BINLOG EVENTS IN 'mysql-bin.000001'")
        .await
        .expect("events");
    let position_of = |needle: &str| {
        let row = shown
            .iter()
            .find(|row| row[5].as_deref().is_some_and(|info| info.contains(needle)))
            .expect("statement in the binlog");
        BinlogPosition::parse(&format!(
            "mysql-bin.000001:{}",
            row[1].clone().expect("pos")
        ))
        .expect("position")
    };
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", 203);
    options.stop_at_end = true;
    let mut controller = StreamController::new(
        options,
        file_start("mysql-bin.000001"),
        ReconnectPolicy::default(),
    );
    let at_a = position_of("TABLE shop.a");
    controller.set_operator(at_a.clone(), Operator::Skip);
    controller.set_operator(
        position_of("TABLE shop.b"),
        Operator::Replace(vec![made_query(
            "CREATE TABLE shop.b2 (id INT PRIMARY KEY)",
        )]),
    );
    controller.set_operator(
        position_of("TABLE shop.c"),
        Operator::Inject(vec![made_query("SET @x = 1"), made_query("SET @y = 2")]),
    );
    assert_eq!(controller.revert_operator(&at_a), Some(Operator::Skip));
    controller.set_operator(at_a, Operator::Skip);

    let mut statements = Vec::new();
    while let Some(event) = controller.next_event().await.expect("stream") {
        if let EventData::Query { sql, .. } = &event.event.event.data {
            let text = String::from_utf8_lossy(sql).into_owned();
            if text.contains("shop") || text.starts_with("SET") {
                statements.push((text, event.origin, event.locations.start.suffix));
            }
        }
    }
    assert_eq!(
        statements,
        vec![
            ("CREATE DATABASE shop".to_owned(), Origin::Upstream, 0),
            (
                "CREATE TABLE shop.b2 (id INT PRIMARY KEY)".to_owned(),
                Origin::Operator { suffix: 1 },
                1
            ),
            ("SET @x = 1".to_owned(), Origin::Operator { suffix: 1 }, 1),
            ("SET @y = 2".to_owned(), Origin::Operator { suffix: 2 }, 2),
            // After the events injected before it, in the order of locations too.
            (
                "CREATE TABLE shop.c (id INT PRIMARY KEY)".to_owned(),
                Origin::Upstream,
                3
            ),
        ]
    );
    assert_eq!(
        controller.operators().count(),
        0,
        "each operator applied once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_the_relay_to_the_upstream_mid_transaction_loses_and_repeats_nothing() {
    use dm_binlog::{AnyBinlogSource, RelayOptions, RelayWriter, RemoteSource};

    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("controller-switch")).await);
    write_workload(&server, 10_000).await;
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", 204);
    options.stop_at_end = true;
    // Every event, so that the stream is contiguous.
    options.annotate_rows = true;
    let mut remote = RemoteSource::connect(
        &options,
        &dm_binlog::StartPoint::Position(
            BinlogPosition::parse("mysql-bin.000001:4").expect("position"),
        ),
    )
    .await
    .expect("connect");
    let uuid = remote.upstream().server_uuid.clone();
    let mut expected = Vec::new();
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().join("relay");
    let mut writer = RelayWriter::open(&root, &uuid, Flavor::MariaDb).expect("writer");
    while let Some(event) = remote.next_event().await.expect("stream") {
        writer.write(&event).expect("relay write");
        if !event.artificial {
            expected.push(event.position.to_string());
        }
    }
    writer.flush().expect("flush");

    let relay = AnyBinlogSource::Relay(RelayOptions {
        root: root.clone(),
        subdirectory: None,
        follow: false,
    });
    let mut controller = StreamController::new(
        relay,
        file_start("mysql-bin.000001"),
        ReconnectPolicy::default(),
    );
    let mut seen = Continuity::default();
    // Into the INSERT's transaction from the relay, then on from the upstream.
    while seen.delivered.len() < 15 {
        seen.next(&mut controller).await;
    }
    assert!(controller.current().position != controller.transaction_end().position);
    controller.replace_source(AnyBinlogSource::Remote(options));
    while let Some(event) = controller.next_event().await.expect("remote") {
        seen.check(&event);
    }
    assert!(controller.replayed_events() > 0);
    assert_eq!(seen.delivered, expected);
}

/// Plays a script (a [`ScriptedSource`](dm_binlog::testsuite::ScriptedSource)) as server A
/// until `break_after` events, then breaks (a transient network error); every later open plays
/// it as server B (a failover behind the same address, reopened by GTID set: no identity check
/// refuses it).
struct FailoverMidTransaction {
    script: dm_binlog::testsuite::ScriptedSource,
    break_after: usize,
    opens: usize,
    serving: Option<dm_core::UpstreamIdentity>,
}

/// A scripted stream that breaks after `left` events, when given.
struct BreakingStream {
    inner: dm_binlog::testsuite::ScriptedStream,
    left: Option<usize>,
}

impl dm_binlog::EventStream for BreakingStream {
    async fn next_event(&mut self) -> Result<Option<dm_binlog::StreamEvent>, BinlogError> {
        match &mut self.left {
            Some(0) => Err(BinlogError::Network {
                address: "script".into(),
                reason: "connection reset".into(),
            }),
            Some(left) => {
                *left -= 1;
                self.inner.next_event().await
            }
            None => self.inner.next_event().await,
        }
    }
}

impl dm_binlog::BinlogSource for FailoverMidTransaction {
    type Stream = BreakingStream;

    async fn open(&mut self, start: &StartPoint) -> Result<BreakingStream, BinlogError> {
        self.opens += 1;
        let first = self.opens == 1;
        self.serving = Some(dm_core::UpstreamIdentity::from_server_id(if first {
            1
        } else {
            2
        }));
        Ok(BreakingStream {
            inner: self.script.open(start).await?,
            left: first.then_some(self.break_after),
        })
    }

    fn expect_upstream(&mut self, upstream: Option<dm_core::UpstreamIdentity>) {
        self.serving = upstream;
    }

    fn upstream_identity(&self) -> Option<&dm_core::UpstreamIdentity> {
        self.serving.as_ref()
    }
}

#[tokio::test]
async fn a_reopen_on_another_server_inside_a_transaction_restarts_instead_of_matching_positions() {
    use dm_binlog::testsuite::{BinlogScript, ScriptRow};
    use dm_core::ClassifiedError;

    let mut script = BinlogScript::new();
    let table = script.table("shop", "t", &[false]);
    let rows: Vec<ScriptRow> = (0..6)
        .map(|id| ScriptRow::Insert(table.clone(), vec![Some(id)]))
        .collect();
    script.transaction(&rows);
    // Break after the transaction's first events: inside it, past its start.
    let break_after = script.events().len() - 2;
    let source = FailoverMidTransaction {
        script: script.source(),
        break_after,
        opens: 0,
        serving: Some(dm_core::UpstreamIdentity::from_server_id(1)),
    };
    let start = Location::from_position(script.events()[0].position.clone());
    let mut controller = dm_binlog::StreamController::new(source, start, Default::default());
    let mut delivered = 0;
    let error = loop {
        match controller.next_event().await {
            Ok(Some(_)) => delivered += 1,
            Ok(None) => panic!("the stream ended after {delivered} events without an error"),
            Err(error) => break error,
        }
    };
    assert_eq!(delivered, break_after, "every event before the break, once");
    assert!(
        matches!(error, BinlogError::UpstreamChangedMidTransaction { .. }),
        "{error}"
    );
    assert_eq!(error.code().to_string(), "DM-11016");
    assert_eq!(error.class(), dm_core::ErrorClass::Transient);
    let message = error.to_string();
    assert!(
        message.contains("server_id 1") && message.contains("server_id 2"),
        "{message}"
    );
}
