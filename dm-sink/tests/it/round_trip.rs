//! Every column type, at its edge values, written on a live upstream MariaDB, read back from its
//! binlog with dm-binlog, and applied by `MySqlSink` to a downstream MariaDB: the tables are then
//! equal row for row (dm-testkit's checksum comparison). Replaying the whole stream a second time
//! in safe mode (idempotent) leaves them equal; a table without any key gets each change exactly
//! once, duplicates included.

use std::collections::HashMap;
use std::sync::Arc;

use dm_binlog::{BinlogFileReader, EventData, Read, TableMap, decode_rows};
use dm_core::{
    ApplyMode, BinlogPosition, Location, RowChange, RowChangeKind, Sink, TableRef, TableSchema,
};
use dm_sink::{MySqlSink, MySqlSinkOptions, load_table_schema};
use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas, or_skip};

pub(crate) const CREATE: &str = dm_testkit::workloads::EVERY_TYPE_SCHEMA;
const WRITES: &str = dm_testkit::workloads::EVERY_TYPE_WRITES;

/// The upstream's binlog as transactions of row changes, with schemas read from the upstream.
pub(crate) async fn transactions_of(server: &MariaDb) -> Vec<Vec<RowChange>> {
    let mut connection = server.connect().await.expect("connect");
    let mut schemas: HashMap<String, Arc<TableSchema>> = HashMap::new();
    for table in ["types", "composite", "unique_only", "keyless"] {
        let schema = load_table_schema(&mut connection, &TableRef::new("d", table))
            .await
            .expect("introspect")
            .expect("table exists");
        schemas.insert(table.into(), Arc::new(schema));
    }
    let mut reader =
        BinlogFileReader::open(server.directory().join("data/mysql-bin.000001")).expect("open");
    let mut maps: HashMap<u64, TableMap> = HashMap::new();
    let mut transactions = Vec::new();
    let mut current = Vec::new();
    loop {
        match reader.read_next().expect("decode") {
            Read::Event { offset, event } => match event.data {
                EventData::TableMap(map) => {
                    maps.insert(map.table_id, map);
                }
                EventData::Rows(rows) => {
                    let map = &maps[&rows.table_id];
                    let schema = schemas[&map.table].clone();
                    let location = Location::from_position(
                        BinlogPosition::parse(&format!("mysql-bin.000001:{offset}"))
                            .expect("position"),
                    );
                    for images in decode_rows(&rows, map, &schema).expect("rows") {
                        let kind = match images {
                            (None, Some(after)) => RowChangeKind::Insert { after },
                            (Some(before), Some(after)) => RowChangeKind::Update { before, after },
                            (Some(before), None) => RowChangeKind::Delete { before },
                            (None, None) => panic!("an empty row"),
                        };
                        current.push(
                            RowChange::new(schema.clone(), kind, location.clone(), 0)
                                .expect("change"),
                        );
                    }
                }
                EventData::Xid { .. } if !current.is_empty() => {
                    transactions.push(std::mem::take(&mut current));
                }
                _ => {}
            },
            Read::End => break,
            Read::Partial { offset, .. } => panic!("partial event at {offset}"),
        }
    }
    transactions
}

pub(crate) fn sink_for(server: &MariaDb) -> MySqlSink {
    MySqlSink::new(MySqlSinkOptions::new(
        "127.0.0.1",
        server.port(),
        "root",
        "",
    ))
    .expect("sink")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_and_a_safe_mode_replay_changes_nothing() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("sink-upstream")),
        MariaDb::start_with(MariaDbOptions::named("sink-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(CREATE).await.expect("create upstream");
    downstream.execute(CREATE).await.expect("create downstream");
    upstream.execute(WRITES).await.expect("write upstream");
    let transactions = transactions_of(&upstream).await;
    assert!(
        transactions.len() >= 12,
        "{} transactions",
        transactions.len()
    );

    let mut sink = sink_for(&downstream);
    for transaction in &transactions {
        sink.apply_changes(transaction, ApplyMode::Exact)
            .await
            .expect("apply");
    }
    let mut left = upstream.connect().await.expect("connect");
    let mut right = downstream.connect().await.expect("connect");
    let difference = compare_schemas(&mut left, &mut right, "d")
        .await
        .expect("compare");
    assert!(difference.is_none(), "{difference:?}");
    // What the comparison covered: the rows the workload left.
    let counts = downstream
        .query(
            "SELECT (SELECT GROUP_CONCAT(id ORDER BY id) FROM d.types),
                    (SELECT COUNT(*) FROM d.composite), (SELECT COUNT(*) FROM d.unique_only),
                    (SELECT GROUP_CONCAT(CONCAT(a, ':', IFNULL(b, 'NULL')) ORDER BY a) FROM d.keyless)",
        )
        .await
        .expect("counts");
    assert_eq!(
        counts[0],
        vec![
            Some("2,30".to_owned()),
            Some("2".to_owned()),
            Some("1".to_owned()),
            Some("1:dup,3:y,20:NULL".to_owned())
        ]
    );

    // Safe mode: the keyed tables take the whole stream again without a change.
    for transaction in &transactions {
        let keyed: Vec<RowChange> = transaction
            .iter()
            .filter(|change| change.table().table != "keyless")
            .cloned()
            .collect();
        sink.apply_changes(&keyed, ApplyMode::Idempotent)
            .await
            .expect("replay in safe mode");
    }
    let difference = compare_schemas(&mut left, &mut right, "d")
        .await
        .expect("compare");
    assert!(
        difference.is_none(),
        "after the safe-mode replay: {difference:?}"
    );
}
