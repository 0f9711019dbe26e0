//! A live MariaDB 10.11's binlog file, read with the event layer, agrees event by event with the
//! server's own `SHOW BINLOG EVENTS`: start and end positions, server id, type, GTIDs (in a
//! non-zero replication domain), GTID list, table maps, statements, XIDs and the rotate.

use dm_binlog::{BinlogFileReader, EventData, Read, event_type_name};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

/// MariaDB's name for an event type in SHOW BINLOG EVENTS.
fn mariadb_name(code: u8) -> &'static str {
    match event_type_name(code) {
        "FORMAT_DESCRIPTION" => "Format_desc",
        "GTID_LIST" => "Gtid_list",
        "BINLOG_CHECKPOINT" => "Binlog_checkpoint",
        "MARIADB_GTID" => "Gtid",
        "QUERY" => "Query",
        "ANNOTATE_ROWS" => "Annotate_rows",
        "TABLE_MAP" => "Table_map",
        "WRITE_ROWS_V1" => "Write_rows_v1",
        "UPDATE_ROWS_V1" => "Update_rows_v1",
        "DELETE_ROWS_V1" => "Delete_rows_v1",
        "XID" => "Xid",
        "ROTATE" => "Rotate",
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_mariadb_binlog_matches_show_binlog_events() {
    let mut options = MariaDbOptions::named("binlog-source");
    options.gtid_domain_id = Some(3);
    let server = or_skip!(MariaDb::start_with(options).await);
    server
        .execute(
            "CREATE DATABASE shop;
             CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2));
             INSERT INTO shop.items VALUES (1, 'tea', 3.50), (2, 'coffee', 4.20), (3, 'cake', NULL);
             UPDATE shop.items SET price = 4.00 WHERE id = 1;
             DELETE FROM shop.items WHERE id = 3;
             ALTER TABLE shop.items ADD COLUMN stock INT NOT NULL DEFAULT 0;
             FLUSH BINARY LOGS;",
        )
        .await
        .expect("write upstream");
    let shown = server
        .query("SHOW BINLOG EVENTS IN 'mysql-bin.000001'")
        .await
        .expect("show binlog events");
    let field = |row: &Vec<Option<String>>, index: usize| row[index].clone().unwrap_or_default();

    let mut reader =
        BinlogFileReader::open(server.directory().join("data/mysql-bin.000001")).expect("open");
    let mut events = Vec::new();
    loop {
        match reader.read_next().expect("decode") {
            Read::Event { offset, event } => events.push((offset, event)),
            Read::End => break,
            Read::Partial { offset, .. } => {
                panic!("a closed binlog has a partial event at {offset}")
            }
        }
    }
    assert!(
        reader.decoder().format().checksum,
        "MariaDB 10.11 writes CRC32 checksums"
    );
    assert!(reader.decoder().format().is_mariadb());
    assert_eq!(
        events.len(),
        shown.len(),
        "one event per SHOW BINLOG EVENTS row"
    );

    let mut gtids = 0;
    for ((offset, event), row) in events.iter().zip(&shown) {
        let at = format!("event at {offset} ({row:?})");
        assert_eq!(offset.to_string(), field(row, 1), "{at}: start position");
        assert_eq!(
            event.header.log_position.to_string(),
            field(row, 4),
            "{at}: end position"
        );
        assert_eq!(
            event.header.server_id,
            server.server_id(),
            "{at}: server id"
        );
        assert_eq!(field(row, 3), server.server_id().to_string());
        assert_eq!(
            mariadb_name(event.header.event_type),
            field(row, 2),
            "{at}: type"
        );
        let info = field(row, 5);
        match &event.data {
            EventData::MariaDbGtid { gtid, .. } => {
                assert_eq!(gtid.domain, 3, "{at}");
                assert!(info.ends_with(&format!("GTID {gtid}")), "{at}: {gtid}");
                gtids += 1;
            }
            EventData::MariaDbGtidList(list) => {
                let text: Vec<String> = list.iter().map(ToString::to_string).collect();
                assert_eq!(info, format!("[{}]", text.join(",")), "{at}");
            }
            EventData::TableMap(map) => {
                assert!(
                    info.ends_with(&format!("({}.{})", map.schema, map.table)),
                    "{at}"
                );
                assert_eq!(map.column_types.len(), 3, "{at}: three columns");
            }
            EventData::Query { sql, .. } => {
                assert_eq!(String::from_utf8_lossy(sql), info, "{at}");
            }
            EventData::AnnotateRows { sql } => {
                assert_eq!(String::from_utf8_lossy(sql), info, "{at}");
            }
            EventData::Xid { xid } => assert_eq!(info, format!("COMMIT /* xid={xid} */"), "{at}"),
            EventData::Rotate {
                next_file,
                position,
            } => {
                assert_eq!(info, format!("{next_file};pos={position}"), "{at}");
            }
            EventData::Rows(rows) => {
                assert_eq!(rows.column_count, 3, "{at}");
                assert!(!rows.rows.is_empty(), "{at}");
            }
            _ => {}
        }
    }
    // CREATE DATABASE, CREATE TABLE, INSERT, UPDATE, DELETE, ALTER: six GTIDs in domain 3.
    assert_eq!(gtids, 6);
    let position = server
        .query("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid position");
    assert!(field(&position[0], 0).starts_with("3-"), "{position:?}");
}

/// Reads a closed binlog file of a server to the end.
fn events_of(server: &MariaDb, file: &str) -> Vec<dm_binlog::Event> {
    let mut reader =
        BinlogFileReader::open(server.directory().join("data").join(file)).expect("open");
    let mut events = Vec::new();
    loop {
        match reader.read_next().expect("decode") {
            Read::Event { event, .. } => events.push(event),
            Read::End => return events,
            Read::Partial { offset, .. } => panic!("partial event at {offset} in a closed binlog"),
        }
    }
}

/// What a consumer sees of an event: statements and row images, not how they were stored.
fn content(event: &dm_binlog::Event) -> Option<String> {
    match &event.data {
        EventData::Query { sql, .. } => Some(format!(
            "query of {} bytes, crc32 {:08x}",
            sql.len(),
            crc32fast::hash(sql)
        )),
        EventData::Rows(rows) => Some(format!(
            "{:?} columns {:?} row images: {} bytes, crc32 {:08x}",
            rows.kind,
            rows.columns_present,
            rows.rows.len(),
            crc32fast::hash(&rows.rows)
        )),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_events_inflate_to_what_an_uncompressed_server_writes() {
    let compressing = MariaDbOptions::named("compressing")
        .arg("--log-bin-compress=ON")
        .arg("--log-bin-compress-min-len=10");
    let (compressing, plain) = tokio::join!(
        MariaDb::start_with(compressing),
        MariaDb::start_with(MariaDbOptions::named("plain")),
    );
    let compressing = or_skip!(compressing);
    let plain = or_skip!(plain);
    // Rows over 255 bytes (multi-byte original lengths) and a statement over 255 bytes.
    let workload = format!(
        "CREATE DATABASE c;
         CREATE TABLE c.t (id INT PRIMARY KEY, note VARCHAR(2000), /* {} */ n INT);
         INSERT INTO c.t VALUES (1, REPEAT('a', 300), 1), (2, REPEAT('xyz', 500), 2), (3, 'short', 3);
         UPDATE c.t SET note = REPEAT('b', 1200), n = n + 10 WHERE id < 3;
         DELETE FROM c.t WHERE id = 2;
         FLUSH BINARY LOGS;",
        "c".repeat(300)
    );
    compressing
        .execute(&workload)
        .await
        .expect("compressing workload");
    plain.execute(&workload).await.expect("plain workload");

    let compressed_types: Vec<String> = compressing
        .query("SHOW BINLOG EVENTS IN 'mysql-bin.000001'")
        .await
        .expect("show")
        .into_iter()
        .filter_map(|row| row[2].clone())
        .filter(|kind| kind.contains("compressed"))
        .collect();
    for expected in [
        "Query_compressed",
        "Write_rows_compressed_v1",
        "Update_rows_compressed_v1",
        "Delete_rows_compressed_v1",
    ] {
        assert!(
            compressed_types.iter().any(|kind| kind == expected),
            "{expected} in {compressed_types:?}"
        );
    }

    let compressed: Vec<String> = events_of(&compressing, "mysql-bin.000001")
        .iter()
        .filter_map(content)
        .collect();
    let uncompressed: Vec<String> = events_of(&plain, "mysql-bin.000001")
        .iter()
        .filter_map(content)
        .collect();
    // CREATE DATABASE, CREATE TABLE, and one insert, update and delete rows event.
    assert_eq!(compressed.len(), 5, "{compressed:#?}");
    assert_eq!(
        compressed, uncompressed,
        "inflated events equal the uncompressed server's"
    );
}
