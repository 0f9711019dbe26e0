//! What the task file selects reaches the downstream, and only that: `where` (every table,
//! combined with the chunk ranges), `-B` (within the block-allow list), `-T` (replacing it, as
//! in DM), `-W`; `--no-locks` dumps without RELOAD or LOCK TABLES and hands off an exit point.

use dm_core::ClassifiedError;
use dm_testkit::{MariaDb, compare_tables, or_skip};

use crate::support::{rows_in_zone, run_task, server, task_text};

const DATA: &str = "CREATE DATABASE shop;
CREATE TABLE shop.items (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO shop.items SELECT seq, seq * 7 % 100 FROM shop.seq_1_to_300;
CREATE TABLE shop.orders (id INT PRIMARY KEY, item INT NOT NULL);
INSERT INTO shop.orders SELECT seq, seq % 300 + 1 FROM shop.seq_1_to_120;
CREATE VIEW shop.cheap AS SELECT id FROM shop.items WHERE v < 10;
CREATE DATABASE crm;
CREATE TABLE crm.people (id INT PRIMARY KEY, name VARCHAR(20));
INSERT INTO crm.people SELECT seq, CONCAT('p', seq) FROM crm.seq_1_to_40;
CREATE DATABASE other;
CREATE TABLE other.x (id BIGINT PRIMARY KEY);
INSERT INTO other.x SELECT seq FROM other.seq_1_to_25;
ANALYZE TABLE shop.items, shop.orders, crm.people, other.x";

/// The databases and tables (base tables and views) of the downstream, but its meta schema.
async fn downstream_objects(downstream: &MariaDb) -> Vec<String> {
    rows_in_zone(
        downstream,
        "+00:00",
        "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, ' ', TABLE_TYPE) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA IN ('shop', 'crm', 'other') ORDER BY 1",
    )
    .await
    .into_iter()
    .filter_map(|row| row.into_iter().next().flatten())
    .collect()
}

/// `sql` gives the same rows on both servers.
async fn same_rows(upstream: &MariaDb, downstream: &MariaDb, sql: &str, downstream_sql: &str) {
    let wanted = rows_in_zone(upstream, "+00:00", sql).await;
    let loaded = rows_in_zone(downstream, "+00:00", downstream_sql).await;
    assert!(!wanted.is_empty(), "{sql}");
    assert_eq!(loaded, wanted, "{sql}");
}

/// The whole table equal on both servers (columns and rows, by checksum).
async fn same_table(upstream: &MariaDb, downstream: &MariaDb, schema: &str, table: &str) {
    let mut left = upstream.connect().await.expect("upstream");
    let mut right = downstream.connect().await.expect("downstream");
    let table = dm_core::TableRef::new(schema, table);
    let difference = compare_tables(&mut left, &table, &mut right, &table)
        .await
        .expect("compare");
    assert_eq!(difference, None, "{table}");
}

async fn clean(downstream: &MariaDb) {
    downstream
        .execute("DROP DATABASE IF EXISTS shop; DROP DATABASE IF EXISTS crm; DROP DATABASE IF EXISTS other")
        .await
        .expect("clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_databases_tables_and_views_select_what_is_loaded() {
    let (upstream, downstream) =
        tokio::join!(server("select-upstream"), server("select-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(DATA).await.expect("data");
    let directory = tempfile::tempdir().expect("directory");
    let path = directory.path();

    // `where` applies to every table, with `rows` cutting tables into many chunks (each
    // chunk's range AND the condition); -W leaves the view out.
    let text = task_text(
        "where_all",
        &downstream,
        path,
        "",
        &["where: \"id % 3 = 0\"", "rows: 16", "extra-args: \"-W\""],
        &[],
    );
    let (config, result) = run_task(&text, &upstream, "root").await;
    result.expect("where");
    assert_eq!(config.limits.rows, 16);
    for table in ["shop.items", "shop.orders", "crm.people", "other.x"] {
        same_rows(
            &upstream,
            &downstream,
            &format!("SELECT * FROM {table} WHERE id % 3 = 0 ORDER BY id"),
            &format!("SELECT * FROM {table} ORDER BY id"),
        )
        .await;
    }
    assert!(
        !downstream_objects(&downstream)
            .await
            .iter()
            .any(|name| name.ends_with("VIEW")),
        "-W: no view"
    );
    let chunks = rows_in_zone(
        &downstream,
        "+00:00",
        "SELECT COUNT(*) FROM dm_meta.where_all_load_chunk WHERE table_name = 'items'",
    )
    .await;
    assert!(
        chunks[0][0]
            .as_deref()
            .unwrap_or("0")
            .parse::<u32>()
            .unwrap_or(0)
            > 5,
        "the table was cut into chunks: {chunks:?}"
    );

    // -B within the block-allow list: shop (in both), not crm (not in the list), not other
    // (not in -B). The view comes along.
    clean(&downstream).await;
    let text = task_text(
        "databases",
        &downstream,
        path,
        "block-allow-list:\n  list:\n    do-dbs: [shop, other]",
        &["extra-args: \"-B shop,crm\""],
        &[],
    );
    let (_, result) = run_task(&text, &upstream, "root").await;
    result.expect("-B");
    assert_eq!(
        downstream_objects(&downstream).await,
        [
            "shop.cheap VIEW",
            "shop.items BASE TABLE",
            "shop.orders BASE TABLE"
        ]
    );
    same_table(&upstream, &downstream, "shop", "items").await;
    same_table(&upstream, &downstream, "shop", "orders").await;

    // -T replaces the block-allow list (crm is not in it), exactly the tables listed.
    clean(&downstream).await;
    let text = task_text(
        "tables",
        &downstream,
        path,
        "block-allow-list:\n  list:\n    do-dbs: [shop]",
        &["extra-args: \"-T shop.items,crm.people --where 'id <= 30'\""],
        &[],
    );
    let (config, result) = run_task(&text, &upstream, "root").await;
    result.expect("-T");
    assert!(
        config.warnings().iter().any(|line| line.contains("-T")),
        "{:?}",
        config.warnings()
    );
    assert_eq!(
        downstream_objects(&downstream).await,
        ["crm.people BASE TABLE", "shop.items BASE TABLE"]
    );
    same_rows(
        &upstream,
        &downstream,
        "SELECT * FROM crm.people WHERE id <= 30 ORDER BY id",
        "SELECT * FROM crm.people ORDER BY id",
    )
    .await;

    // -B naming a database the upstream does not have: refused by name, as dumpling does.
    clean(&downstream).await;
    let text = task_text(
        "missing",
        &downstream,
        path,
        "",
        &["extra-args: \"-B shop,nosuch\""],
        &[],
    );
    let (_, result) = run_task(&text, &upstream, "root").await;
    let error = result.expect_err("an unknown database");
    assert!(error.to_string().contains("nosuch"), "{error}");
    assert_eq!(error.code().0, 15007);
    // So is a -T table that matches nothing.
    let text = task_text(
        "missing_table",
        &downstream,
        path,
        "",
        &["extra-args: \"-T shop.items,shop.nosuch\""],
        &[],
    );
    let (_, result) = run_task(&text, &upstream, "root").await;
    let error = result.expect_err("an unknown table");
    assert!(error.to_string().contains("shop.nosuch"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_locks_dumps_without_reload_and_hands_off_an_exit_point() {
    let (upstream, downstream) =
        tokio::join!(server("nolocks-upstream"), server("nolocks-downstream"));
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(DATA).await.expect("data");
    upstream
        .execute("CREATE USER dumper@'%'; GRANT SELECT, BINLOG MONITOR ON *.* TO dumper@'%'")
        .await
        .expect("user");
    let directory = tempfile::tempdir().expect("directory");

    // DM's default consistency locks: the user lacks RELOAD.
    let text = task_text(
        "locked",
        &downstream,
        directory.path(),
        "",
        &["extra-args: \"-B other\""],
        &[],
    );
    let (_, result) = run_task(&text, &upstream, "dumper").await;
    let error = result.expect_err("no RELOAD");
    assert!(error.to_string().contains("RELOAD"), "{error}");

    for (task, direct) in [("nolocks_files", "false"), ("nolocks_stream", "true")] {
        clean(&downstream).await;
        let text = task_text(
            task,
            &downstream,
            directory.path(),
            "",
            &["extra-args: \"--no-locks -B other\""],
            &[&format!("direct: {direct}")],
        );
        let (config, result) = run_task(&text, &upstream, "dumper").await;
        assert_eq!(config.consistency, dm_dumpload::Consistency::None);
        let handoff = result
            .unwrap_or_else(|error| panic!("{task}: {error}"))
            .expect("a hand-off");
        let exit = handoff.safe_mode_until.expect("an exit point");
        assert_ne!(
            handoff.location.compare(&exit),
            Some(std::cmp::Ordering::Greater),
            "{task}: the exit point is not before the start"
        );
        same_table(&upstream, &downstream, "other", "x").await;
    }
}
