//! `RemoteSource` against a live MariaDB 10.11 (bytes from the server over the replica
//! protocol): 100k+ row changes across several binlog files agree event by event with
//! `SHOW BINLOG EVENTS`; a GTID start begins right after the set; purged binlogs, server-id
//! collisions, bad passwords and unreachable servers give the errors a user can act on;
//! heartbeats arrive when the upstream is idle.

use std::collections::BTreeMap;
use std::time::Duration;

use dm_binlog::{
    BinlogError, EventData, RemoteOptions, RemoteSource, StartPoint, StreamEvent, decode_rows,
    event::event_type,
};
use dm_core::{
    BinlogPosition, ClassifiedError, ColumnDefinition, ColumnType, ErrorClass, Flavor, GtidSet,
    IntegerWidth, KeyColumn, KeyDefinition, KeyKind, TableRef, TableSchema,
};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

pub(crate) fn options_for(server: &MariaDb, server_id: u32) -> RemoteOptions {
    let mut options = RemoteOptions::new("127.0.0.1", server.port(), "root", "", server_id);
    options.stop_at_end = true;
    options
}

pub(crate) fn start_of(file: &str) -> StartPoint {
    StartPoint::Position(BinlogPosition::parse(&format!("{file}:4")).expect("position"))
}

/// `shop.items (id INT PRIMARY KEY, qty INT, note VARCHAR(40))` as the schema tracker knows it.
pub(crate) fn items_schema() -> TableSchema {
    let integer = |name: &str, nullable| {
        ColumnDefinition::new(
            name,
            ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: false,
            },
            nullable,
        )
    };
    let mut note = ColumnDefinition::new("note", ColumnType::VarChar { length: 40 }, true);
    note.charset = Some("utf8mb4".into());
    TableSchema::new(
        TableRef::new("shop", "items"),
        vec![integer("id", false), integer("qty", true), note],
        vec![KeyDefinition {
            name: "PRIMARY".into(),
            kind: KeyKind::Primary,
            columns: vec![KeyColumn {
                column: 0,
                prefix_length: None,
            }],
        }],
    )
    .expect("valid schema")
}

/// Writes `rows` inserts, as many updates and a third as many deletes, with a binlog rotation
/// in the middle; returns the number of row changes.
pub(crate) async fn write_workload(server: &MariaDb, rows: u64) -> u64 {
    server
        .execute(&format!(
            "CREATE DATABASE shop;
             CREATE TABLE shop.items (id INT PRIMARY KEY, qty INT, note VARCHAR(40));
             INSERT INTO shop.items SELECT seq, seq % 7, CONCAT('n-', seq) FROM shop.seq_1_to_{rows};
             FLUSH BINARY LOGS;
             UPDATE shop.items SET qty = qty + 1, note = CONCAT(note, 'é');
             DELETE FROM shop.items WHERE id % 3 = 0;"
        ))
        .await
        .expect("workload");
    rows * 2 + rows / 3
}

/// Reads until the end of the binlog (the options stop there).
pub(crate) async fn read_all(source: &mut RemoteSource) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while let Some(event) = source.next_event().await.expect("stream") {
        events.push(event);
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_events_match_show_binlog_events_over_100k_row_changes() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("remote-source")).await);
    let expected_changes = write_workload(&server, 60_000).await;
    // A replication user with a password: the login scrambles it.
    server
        .execute(
            "CREATE USER repl@'127.0.0.1' IDENTIFIED BY 's3cret!';
             GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.* TO repl@'127.0.0.1';",
        )
        .await
        .expect("user");

    let mut options = options_for(&server, 101);
    options.user = "repl".into();
    options.password = "s3cret!".into();
    // Without it the server leaves ANNOTATE_ROWS events out of the stream.
    options.annotate_rows = true;
    let mut source = RemoteSource::connect(&options, &start_of("mysql-bin.000001"))
        .await
        .expect("connect");
    assert_eq!(source.upstream().flavor, Flavor::MariaDb);
    assert_eq!(source.upstream().server_id, server.server_id());
    assert!(source.upstream().checksum);
    let events = read_all(&mut source).await;
    source.close().await;

    // The first event is the server's fake rotate, with a clean file name.
    let first = &events[0];
    assert!(first.artificial);
    match &first.event.data {
        EventData::Rotate { next_file, .. } => assert_eq!(next_file, "mysql-bin.000001"),
        other => panic!("first event {other:?}"),
    }

    // Every event in the files, in order, with positions, types, server ids and GTIDs.
    let mut shown = Vec::new();
    for file in server.query("SHOW BINARY LOGS").await.expect("binary logs") {
        let file = file[0].clone().expect("name");
        for row in server
            .query(&format!("SHOW BINLOG EVENTS IN '{file}'"))
            .await
            .expect("events")
        {
            shown.push(row);
        }
    }
    // MariaDB writes its Binlog_checkpoint events when InnoDB's flush completes, after the
    // commit: on a loaded machine one may land after the stream ended. Only those may follow
    // the last streamed event.
    let streamed = events.iter().filter(|event| !event.artificial).count();
    while shown.len() > streamed
        && shown.last().is_some_and(|row| {
            row.get(2).cloned().flatten().as_deref() == Some("Binlog_checkpoint")
        })
    {
        shown.pop();
    }
    let real: Vec<&StreamEvent> = events.iter().filter(|event| !event.artificial).collect();
    let streamed_positions: Vec<String> = real
        .iter()
        .map(|event| event.position.to_string())
        .collect();
    let shown_positions: Vec<String> = shown
        .iter()
        .map(|row| {
            format!(
                "{}:{}",
                row[0].clone().unwrap_or_default(),
                row[1].clone().unwrap_or_default()
            )
        })
        .collect();
    let first_difference = streamed_positions
        .iter()
        .zip(&shown_positions)
        .position(|(streamed, shown)| streamed != shown);
    assert_eq!(
        (first_difference, streamed_positions.len()),
        (None, shown_positions.len()),
        "one streamed event per binlog event; first difference at {:?}",
        first_difference.map(|index| (&streamed_positions[index], &shown_positions[index]))
    );
    let schema = items_schema();
    let mut table_maps = BTreeMap::new();
    let mut changes = 0u64;
    let mut gtids = 0;
    for (event, row) in real.iter().zip(&shown) {
        let field = |index: usize| row[index].clone().unwrap_or_default();
        let at = format!("{} ({row:?})", event.position);
        assert_eq!(event.position.file.to_string(), field(0), "{at}: file");
        assert_eq!(event.position.offset.to_string(), field(1), "{at}: start");
        assert_eq!(
            event.event.header.log_position.to_string(),
            field(4),
            "{at}: end"
        );
        assert_eq!(event.event.header.server_id.to_string(), field(3), "{at}");
        assert_eq!(event.raw.len() as u32, event.event.header.event_size);
        if event.event.header.event_type != event_type::ROTATE {
            assert_eq!(
                event.next_position.offset, event.event.header.log_position as u64,
                "{at}: next position"
            );
        }
        match &event.event.data {
            EventData::MariaDbGtid { gtid, .. } => {
                assert!(field(5).ends_with(&format!("GTID {gtid}")), "{at}");
                gtids += 1;
            }
            EventData::TableMap(map) => {
                table_maps.insert(map.table_id, map.clone());
            }
            EventData::Rows(rows) => {
                let map = &table_maps[&rows.table_id];
                changes += decode_rows(rows, map, &schema).expect("rows").len() as u64;
            }
            _ => {}
        }
    }
    assert_eq!(changes, expected_changes, "every row change streamed");
    assert!(changes >= 100_000);
    assert_eq!(
        gtids, 7,
        "CREATE DATABASE, CREATE TABLE, INSERT, UPDATE, DELETE, CREATE USER, GRANT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtid_start_begins_with_the_next_transaction() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("remote-gtid")).await);
    write_workload(&server, 300).await;
    let shown: Vec<Vec<Option<String>>> = server
        .query("SHOW BINLOG EVENTS IN 'mysql-bin.000002'")
        .await
        .expect("events");
    // The UPDATE's GTID (the first transaction of the second file) and the one before it.
    let update = shown
        .iter()
        .find(|row| row[2].as_deref() == Some("Gtid"))
        .expect("a GTID in the second file");
    let info = update[5].clone().expect("info");
    let update_gtid = info.rsplit(' ').next().expect("gtid").to_owned();
    let sequence: u64 = update_gtid
        .rsplit('-')
        .next()
        .expect("seq")
        .parse()
        .expect("number");
    let before = format!("0-{}-{}", server.server_id(), sequence - 1);

    let start = StartPoint::Gtid(GtidSet::parse(Flavor::MariaDb, &before).expect("set"));
    let mut source = RemoteSource::connect(&options_for(&server, 102), &start)
        .await
        .expect("connect");
    let events = read_all(&mut source).await;
    let first_gtid = events
        .iter()
        .find_map(|event| match &event.event.data {
            EventData::MariaDbGtid { gtid, .. } if !event.artificial => {
                Some((gtid.to_string(), event.position.to_string()))
            }
            _ => None,
        })
        .expect("a GTID event");
    assert_eq!(first_gtid.0, update_gtid);
    assert_eq!(
        first_gtid.1,
        format!("mysql-bin.000002:{}", update[1].clone().expect("pos"))
    );
    // Nothing of the transactions in the set is sent.
    assert!(!events.iter().any(|event| matches!(&event.event.data,
        EventData::MariaDbGtid { gtid, .. } if gtid.sequence < sequence)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_start_is_a_definite_binlog_purged_error() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("remote-purged")).await);
    write_workload(&server, 100).await;
    server.execute("FLUSH BINARY LOGS").await.expect("flush");
    // MariaDB keeps a file until InnoDB's checkpoint passed it: purge until it is gone.
    dm_testkit::wait_for("the purge", Duration::from_secs(20), || async {
        server
            .execute("PURGE BINARY LOGS TO 'mysql-bin.000003'")
            .await
            .expect("purge");
        let files = server.query("SHOW BINARY LOGS").await.expect("files");
        files[0][0].as_deref() == Some("mysql-bin.000003")
    })
    .await
    .expect("the first two binlog files purged");
    for start in [
        start_of("mysql-bin.000001"),
        StartPoint::Gtid(
            GtidSet::parse(Flavor::MariaDb, &format!("0-{}-1", server.server_id())).expect("set"),
        ),
    ] {
        // A file position is checked at connect (SHOW BINARY LOGS); for a GTID set the
        // server sends its fake rotate first, then the error.
        let error = match RemoteSource::connect(&options_for(&server, 103), &start).await {
            Err(error) => error,
            Ok(mut source) => loop {
                match source.next_event().await {
                    Ok(Some(event)) => assert!(event.artificial, "{event:?}"),
                    Ok(None) => panic!("{start}: the stream ended without an error"),
                    Err(error) => break error,
                }
            },
        };
        // The error names the start asked for, never a placeholder.
        let named = match &start {
            StartPoint::Position(position) => position.to_string(),
            StartPoint::Gtid(set) => set.to_string(),
        };
        assert!(error.to_string().contains(&named), "{start}: {error}");
        assert!(
            matches!(error, BinlogError::BinlogPurged { .. }),
            "{start}: {error}"
        );
        assert_eq!(error.class(), ErrorClass::Definite);
        assert_eq!(error.code().to_string(), "DM-11008");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_id_in_use_is_refused_with_who_uses_it() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("remote-ids")).await);
    server.execute("CREATE DATABASE d").await.expect("write");
    let mut options = options_for(&server, 104);
    options.stop_at_end = false;

    let own = RemoteSource::connect(
        &options_for(&server, server.server_id()),
        &start_of("mysql-bin.000001"),
    )
    .await
    .expect_err("the upstream's own id");
    assert!(
        own.to_string().contains("the upstream server itself"),
        "{own}"
    );

    let mut first = RemoteSource::connect(&options, &start_of("mysql-bin.000001"))
        .await
        .expect("first replica");
    first.next_event().await.expect("streaming");
    let mut other = options_for(&server, 104);
    other.replica_name = "another-replica".into();
    let error = RemoteSource::connect(&other, &start_of("mysql-bin.000001"))
        .await
        .expect_err("second replica with the same id");
    assert!(
        matches!(error, BinlogError::ServerIdInUse { server_id: 104, .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&options.replica_name), "{error}");
    assert_eq!(error.class(), ErrorClass::Definite);
    // The first replica's own reconnect (same replica name) is not a collision.
    RemoteSource::connect(&options, &start_of("mysql-bin.000001"))
        .await
        .expect("same replica reconnecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_upstream_sends_heartbeats() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("remote-heartbeat")).await);
    let mut options = options_for(&server, 105);
    options.stop_at_end = false;
    options.heartbeat_period = Duration::from_millis(500);
    let mut source = RemoteSource::connect(&options, &start_of("mysql-bin.000001"))
        .await
        .expect("connect");
    let heartbeat = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = source.next_event().await.expect("stream").expect("event");
            if let EventData::Heartbeat { file } = &event.event.data {
                return (file.clone(), event);
            }
        }
    })
    .await
    .expect("a heartbeat within 10 s");
    assert_eq!(heartbeat.0, "mysql-bin.000001");
    assert!(heartbeat.1.artificial);
    assert_eq!(heartbeat.1.position, heartbeat.1.next_position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_network_failures_are_classed() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("remote-login")).await);
    let mut options = options_for(&server, 106);
    options.password = "wrong".into();
    let error = RemoteSource::connect(&options, &start_of("mysql-bin.000001"))
        .await
        .expect_err("wrong password");
    assert!(error.to_string().contains("1045"), "{error}");
    assert_eq!(error.class(), ErrorClass::Definite);

    let port = server.port();
    drop(server);
    let mut options = RemoteOptions::new("127.0.0.1", port, "root", "", 106);
    options.connect_timeout = Duration::from_secs(2);
    let error = RemoteSource::connect(&options, &start_of("mysql-bin.000001"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, BinlogError::Network { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Transient);
}
