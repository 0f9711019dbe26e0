//! The MySQL flavour of `RemoteSource` and `StreamController`, against dm-testkit's scripted
//! MySQL 8 source (no MySQL server can run here). The bytes streamed are real MySQL binlogs from
//! the shared fixtures: `my80_31-payload-json-gtid.binlog` (MySQL 8.0.31: GTIDs, PREVIOUS_GTIDS,
//! compressed TRANSACTION_PAYLOADs with JSON rows) and `my96_0-gtid-tagged.binlog` (MySQL 9.6:
//! tagged GTID events). Checked: the caching_sha2_password login, the queries and the
//! `COM_BINLOG_DUMP_GTID` request a MySQL replica must send (the GTID set encoded as MySQL reads
//! it), the positions and GTIDs of the streamed events, the GTID set after them, and the errors
//! for a wrong password (fast and full authentication). TLS and full authentication: `tls.rs`.

use dm_binlog::{BinlogError, EventData, LocationTracker, RemoteOptions, RemoteSource, StartPoint};
use dm_core::{
    BinlogPosition, ClassifiedError, ErrorClass, Flavor, GtidSet, Location, MySqlGtidSet,
};
use dm_testkit::{FakeMySqlScript, FakeMySqlSource, or_skip, shared_fixture};

async fn fake_source(
    directory: &std::path::Path,
    fixture: &str,
    password: &str,
) -> FakeMySqlSource {
    let bytes = std::fs::read(directory.join(fixture)).expect("fixture");
    let script = FakeMySqlScript::from_binlog_file("binlog.000057", &bytes, password);
    FakeMySqlSource::start(script).await.expect("fake source")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_gtid_stream_is_requested_and_read_as_a_mysql_replica_does() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let source = fake_source(&directory, "my80_31-payload-json-gtid.binlog", "s3cret").await;
    let mut options = RemoteOptions::new("127.0.0.1", source.port(), "repl", "s3cret", 9);
    options.stop_at_end = true;
    let requested = MySqlGtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7").expect("set");
    let start = StartPoint::Gtid(GtidSet::MySql(requested.clone()));
    let mut stream = RemoteSource::connect(&options, &start)
        .await
        .expect("connect");
    assert_eq!(stream.upstream().flavor, Flavor::MySql);
    assert_eq!(stream.upstream().server_id, 77);
    assert_eq!(
        stream.upstream().server_uuid,
        "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    );
    let mut events = Vec::new();
    while let Some(event) = stream.next_event().await.expect("stream") {
        events.push(event);
    }

    // What a MySQL replica sends.
    let queries = source.queries();
    assert!(
        queries
            .iter()
            .any(|query| query == "SET @master_binlog_checksum = @@global.binlog_checksum")
    );
    assert!(
        queries
            .iter()
            .any(|query| query.starts_with("SET @master_heartbeat_period = "))
    );
    assert!(queries.iter().any(|query| query.contains("@replica_uuid")));
    assert!(
        !queries.iter().any(|query| query.contains("mariadb")),
        "{queries:?}"
    );
    let commands = source.commands();
    assert!(
        commands.iter().any(|command| command[0] == 0x15),
        "COM_REGISTER_SLAVE"
    );
    let dump = commands
        .iter()
        .find(|command| command[0] == 0x1e)
        .expect("COM_BINLOG_DUMP_GTID");
    // flags(2) server_id(4) name_length(4) name position(8) data_size(4) data
    let flags = u16::from_le_bytes([dump[1], dump[2]]);
    assert_eq!(flags & 0x04, 0x04, "BINLOG_THROUGH_GTID");
    assert_eq!(flags & 0x01, 0x01, "non-blocking");
    assert_eq!(u32::from_le_bytes([dump[3], dump[4], dump[5], dump[6]]), 9);
    let data = &dump[7 + 4 + 8 + 4..];
    assert_eq!(&data[..8], &1u64.to_le_bytes(), "one source");
    assert_eq!(&data[24..32], &2u64.to_le_bytes(), "two intervals");
    assert_eq!(
        &data[32..48],
        [1u64.to_le_bytes(), 6u64.to_le_bytes()].concat().as_slice()
    );
    assert_eq!(
        &data[48..64],
        [7u64.to_le_bytes(), 8u64.to_le_bytes()].concat().as_slice()
    );

    // The stream: the fake rotate names the file cleanly, positions are the file's offsets.
    assert!(events[0].artificial);
    match &events[0].event.data {
        EventData::Rotate { next_file, .. } => assert_eq!(next_file, "binlog.000057"),
        other => panic!("{other:?}"),
    }
    let real: Vec<_> = events.iter().filter(|event| !event.artificial).collect();
    assert_eq!(real[0].position.to_string(), "binlog.000057:4");
    for pair in real.windows(2) {
        assert_eq!(pair[0].next_position, pair[1].position);
    }
    let gtids: Vec<String> = real
        .iter()
        .filter_map(|event| match &event.event.data {
            EventData::MySqlGtid { gtid, .. } => Some(gtid.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(gtids.len(), 3);
    assert!(
        real.iter()
            .any(|event| matches!(event.event.data, EventData::TransactionPayload { .. }))
    );

    // The GTID set after the stream: the file's PREVIOUS_GTIDS plus its three transactions.
    let mut tracker = LocationTracker::new(Location::from_position(
        BinlogPosition::parse("binlog.000057:4").expect("position"),
    ));
    for event in &events {
        tracker.observe(event);
    }
    let set = tracker
        .transaction_end()
        .gtid_set
        .clone()
        .expect("learned from PREVIOUS_GTIDS");
    for gtid in &gtids {
        let gtid = dm_core::Gtid::parse(Flavor::MySql, gtid).expect("gtid");
        assert!(
            set.contains_gtid(&gtid).expect("same flavour"),
            "{gtid} in {set}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_gtids_stream_from_a_position_and_a_tagged_start_set_is_refused_clearly() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let source = fake_source(&directory, "my96_0-gtid-tagged.binlog", "pw").await;
    let mut options = RemoteOptions::new("127.0.0.1", source.port(), "repl", "pw", 9);
    options.stop_at_end = true;
    let start = StartPoint::Position(BinlogPosition::parse("binlog.000057:4").expect("position"));
    let mut stream = RemoteSource::connect(&options, &start)
        .await
        .expect("connect");
    let mut tagged = Vec::new();
    while let Some(event) = stream.next_event().await.expect("stream") {
        if let EventData::MySqlGtid { gtid, .. } = &event.event.data {
            tagged.push(gtid.to_string());
        }
    }
    assert_eq!(tagged.len(), 1);
    assert!(tagged[0].contains(":mytag:"), "{tagged:?}");
    let dump = source
        .commands()
        .into_iter()
        .find(|command| command[0] == 0x12)
        .expect("COM_BINLOG_DUMP for a position start");
    assert_eq!(&dump[1..5], &4u32.to_le_bytes());
    assert_eq!(&dump[11..], b"binlog.000057");

    let set = MySqlGtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:mytag:1-2").expect("set");
    let error = RemoteSource::connect(&options, &StartPoint::Gtid(GtidSet::MySql(set)))
        .await
        .expect_err("tagged start");
    assert!(
        error.to_string().contains("start from a file position"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_login_failures_say_what_to_do() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let source = fake_source(&directory, "my80_40-prev-gtids-untagged.binlog", "right").await;
    let start = StartPoint::Position(BinlogPosition::parse("binlog.000057:4").expect("position"));
    let wrong = RemoteOptions::new("127.0.0.1", source.port(), "repl", "wrong", 9);
    let error = RemoteSource::connect(&wrong, &start)
        .await
        .expect_err("wrong password");
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Definite);

    // Full authentication (the server's cache misses) with a wrong password is refused too.
    let bytes = std::fs::read(directory.join("my80_40-prev-gtids-untagged.binlog")).expect("read");
    let mut script = FakeMySqlScript::from_binlog_file("binlog.000001", &bytes, "right");
    script.authentication = dm_testkit::fake_mysql::FakeAuthentication::Sha256;
    let strict = FakeMySqlSource::start(script).await.expect("fake");
    let options = RemoteOptions::new("127.0.0.1", strict.port(), "repl", "wrong", 9);
    let error = RemoteSource::connect(&options, &start)
        .await
        .expect_err("wrong password");
    assert!(
        matches!(&error, BinlogError::Server { error, .. } if error.code == 1045),
        "{error}"
    );
    assert_eq!(
        strict.logins(),
        ["refused: sha256_password with a wrong RSA-encrypted password"]
    );
}
