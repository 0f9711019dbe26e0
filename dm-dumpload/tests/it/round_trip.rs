//! Dump and load against live MariaDB: every type at its edges, tables without a key, empty,
//! with a 16 MiB row, 500 columns, names that need quoting, a view; through a dump directory
//! (gzip) and through the direct stream; both equal to the upstream by checksum. A changed or
//! truncated dump file is refused with its path and none of its rows stay.

use dm_dumpload::{
    Compression, DumpError, dump_to_directory, load_directory, migrate_stream, read_directory,
};
use dm_task::filter::BlockAllowList;
use dm_testkit::or_skip;
use dm_testkit::workloads::{EVERY_TYPE_SCHEMA, EVERY_TYPE_WRITES};

use crate::support::{assert_same, chunk_counts, dump_options, loader, progress, server};

const EDGE_TABLES: &str = "
CREATE DATABASE edge;
CREATE TABLE edge.empty_table (id INT PRIMARY KEY, v VARCHAR(10));
CREATE TABLE edge.big_row (id INT PRIMARY KEY, payload LONGBLOB, note LONGTEXT);
INSERT INTO edge.big_row VALUES (1, REPEAT(X'00FF275C0A', 3355443), REPEAT('é\\n''', 100000)), (2, X'', '');
CREATE TABLE edge.no_key (a INT, b TEXT);
INSERT INTO edge.no_key VALUES (1, 'same'), (1, 'same'), (NULL, NULL), (2, 'x');
CREATE TABLE edge.many_ranges (id BIGINT UNSIGNED PRIMARY KEY, v INT);
INSERT INTO edge.many_ranges SELECT seq * 1000003, seq FROM edge.seq_1_to_3000;
INSERT INTO edge.many_ranges VALUES (18446744073709551615, -1), (0, 0);
CREATE TABLE edge.negative_keys (id INT PRIMARY KEY, v INT);
INSERT INTO edge.negative_keys SELECT CAST(seq AS SIGNED) - 1500, seq FROM edge.seq_1_to_3000;
CREATE DATABASE `we.ird db`;
CREATE TABLE `we.ird db`.`ta``ble ☃` (`co l` INT PRIMARY KEY, `sel``ect` VARCHAR(10));
INSERT INTO `we.ird db`.`ta``ble ☃` VALUES (1, 'a'), (2, 'b');
CREATE VIEW edge.a_view AS SELECT id, v FROM edge.negative_keys WHERE v > 10;
ANALYZE TABLE edge.many_ranges, edge.negative_keys;
";

async fn wide_table(upstream: &dm_testkit::MariaDb) {
    let columns: Vec<String> = (0..499).map(|index| format!("c{index} INT")).collect();
    upstream
        .execute(&format!(
            "CREATE TABLE edge.wide (id INT PRIMARY KEY, {})",
            columns.join(", ")
        ))
        .await
        .expect("wide table");
    let values: Vec<String> = (0..499).map(|index| (index * 7).to_string()).collect();
    for id in 0..20 {
        upstream
            .execute(&format!(
                "INSERT INTO edge.wide VALUES ({id}, {})",
                values.join(", ")
            ))
            .await
            .expect("wide row");
    }
}

const SCHEMAS: [&str; 3] = ["d", "edge", "we.ird db"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_edge_tables_survive_files_and_stream() {
    let (upstream, downstream) = tokio::join!(server("dl-upstream"), server("dl-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(EVERY_TYPE_SCHEMA).await.expect("schema");
    upstream.execute(EVERY_TYPE_WRITES).await.expect("writes");
    upstream.execute(EDGE_TABLES).await.expect("edge tables");
    wide_table(&upstream).await;
    let filter = BlockAllowList::default();
    // Small chunks so that the keyed tables are cut into several ranges.
    let options = dump_options(&upstream, 3, 16 << 10);

    let directory = tempfile::tempdir().expect("directory");
    let dump_path = directory.path().join("dump");
    let dumped = dump_to_directory(&options, &filter, &dump_path, Compression::Gzip, progress())
        .await
        .expect("dump");
    let ranges = dumped
        .header
        .tables
        .iter()
        .find(|table| table.table == "many_ranges")
        .expect("many_ranges dumped");
    assert!(ranges.chunks.len() > 3, "{:?}", ranges.chunks);
    assert_eq!(dumped.header.views.len(), 1);
    let again =
        dump_to_directory(&options, &filter, &dump_path, Compression::Gzip, progress()).await;
    assert!(
        matches!(&again, Err(DumpError::File { reason, .. }) if reason.contains("already holds a complete dump")),
        "{again:?}"
    );

    let load_progress = progress();
    let files_loader = loader(&downstream, "files", 3);
    load_directory(&files_loader, 3, &dump_path, load_progress.clone())
        .await
        .expect("load");
    assert_same(&upstream, &downstream, &SCHEMAS).await;
    let view = downstream
        .query("SELECT COUNT(*) FROM edge.a_view")
        .await
        .expect("view");
    assert_eq!(view[0][0].as_deref(), Some("2990"));
    let status = load_progress.status();
    assert_eq!(status.percent, 100.0);
    assert_eq!(status.chunks_done, dumped.header.chunk_count());
    let (chunks, loaded, _) = chunk_counts(&downstream, "files").await;
    assert_eq!(
        (chunks, loaded),
        (dumped.header.chunk_count(), dumped.header.chunk_count())
    );
    // Loading a finished load again changes nothing and hands off the same location.
    let handoff = load_directory(&files_loader, 3, &dump_path, progress())
        .await
        .expect("again");
    assert_eq!(handoff.location, dumped.header.location);

    // The same through the direct stream, into an emptied downstream.
    for schema in ["d", "edge", "we.ird db", "dm_meta"] {
        downstream
            .execute(&format!("DROP DATABASE `{schema}`"))
            .await
            .expect("drop");
    }
    let stream_loader = loader(&downstream, "stream", 2);
    let handoff = migrate_stream(&options, &filter, &stream_loader, progress(), progress())
        .await
        .expect("stream");
    assert_eq!(handoff.safe_mode_until, None);
    assert_same(&upstream, &downstream, &SCHEMAS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_truncated_dump_file_is_named_and_rolled_back() {
    let (upstream, downstream) = tokio::join!(server("bad-upstream"), server("bad-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute(
            "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20));
             INSERT INTO shop.items SELECT seq, CONCAT('item ', seq) FROM shop.seq_1_to_2000;",
        )
        .await
        .expect("data");
    let directory = tempfile::tempdir().expect("directory");
    let filter = BlockAllowList::default();
    let options = dump_options(&upstream, 2, 1 << 20);
    for (compression, name) in [(Compression::None, "plain"), (Compression::Gzip, "gzip")] {
        let path = directory.path().join(name);
        let dumped = dump_to_directory(&options, &filter, &path, compression, progress())
            .await
            .expect("dump");
        let file = path.join(&dumped.files[0][0].file);
        let mut bytes = std::fs::read(&file).expect("read");
        match compression {
            // One digit of one value changed: still valid SQL, caught by the CRC.
            Compression::None => {
                let at = bytes
                    .windows(9)
                    .position(|window| window == b"'item 77'")
                    .expect("a value");
                bytes[at + 7] = b'8';
            }
            // Cut short: caught by the decompressor or the size.
            Compression::Gzip => bytes.truncate(bytes.len() / 2),
        }
        std::fs::write(&file, bytes).expect("write");
        assert!(read_directory(&path).is_ok(), "metadata is intact");
        let loader = loader(&downstream, name, 2);
        let error = load_directory(&loader, 2, &path, progress())
            .await
            .expect_err("a corrupted file");
        let text = error.to_string();
        assert!(
            matches!(error, DumpError::Corrupted { .. })
                && text.contains(&file.display().to_string()),
            "{text}"
        );
        let rows = downstream
            .query("SELECT COUNT(*) FROM shop.items")
            .await
            .expect("count");
        assert_eq!(
            rows[0][0].as_deref(),
            Some("0"),
            "the chunk was rolled back"
        );
        let (_, loaded, _) = chunk_counts(&downstream, name).await;
        assert_eq!(loaded, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_tables_routed_to_one_target_load_into_it() {
    let (upstream, downstream) = tokio::join!(server("shard-upstream"), server("shard-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    for shard in 1..=3 {
        upstream
            .execute(&format!(
                "CREATE DATABASE shard_{shard};
                 CREATE TABLE shard_{shard}.orders (id INT PRIMARY KEY, shard INT NOT NULL);
                 INSERT INTO shard_{shard}.orders SELECT seq * 10 + {shard}, {shard} FROM shard_{shard}.seq_1_to_3000;"
            ))
            .await
            .expect("shard");
    }
    let rule = dm_task::filter::RouteRule::new(
        "merge",
        "shard_*",
        Some("orders"),
        "merged",
        Some("all_orders"),
        true,
    )
    .expect("route");
    let loader = dm_dumpload::Loader::new(
        crate::support::load_options(&downstream, "shards", 3),
        dm_task::filter::TableRouter::new(true, vec![rule]),
    )
    .expect("loader");
    let options = dump_options(&upstream, 2, 16 << 10);
    migrate_stream(
        &options,
        &BlockAllowList::default(),
        &loader,
        progress(),
        progress(),
    )
    .await
    .expect("merged load");
    let rows = downstream
        .query("SELECT COUNT(*), COUNT(DISTINCT shard), SUM(id) FROM merged.all_orders")
        .await
        .expect("merged rows");
    let expected_sum: u64 = (1..=3u64)
        .map(|shard| (1..=3000u64).map(|seq| seq * 10 + shard).sum::<u64>())
        .sum();
    assert_eq!(
        rows[0],
        vec![
            Some("9000".into()),
            Some("3".into()),
            Some(expected_sum.to_string())
        ]
    );
    let tables = downstream
        .query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE 'shard%' OR TABLE_SCHEMA = 'merged'")
        .await
        .expect("tables");
    assert_eq!(
        tables[0][0].as_deref(),
        Some("1"),
        "one target table, created once"
    );
}
