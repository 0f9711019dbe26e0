//! A task file's block-allow list, routes, binlog event filter and expression filters, read by
//! `TaskConfig` as the `dm-syncer` example reads them, against live MariaDB servers: each rule
//! does what the file says and nothing else. The expected downstream is built on the upstream
//! with the binlog off, by applying the rules by hand to the same statements.

use std::time::Duration;

use dm_binlog::RemoteOptions;
use dm_core::{BinlogPosition, Location};
use dm_sink::MySqlSinkOptions;
use dm_syncer::{SyncerSettings, SyncerStatus, run};
use dm_task::config::TaskConfig;
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

const TASK: &str = r#"
name: filters
task-mode: incremental
target-database: { host: 127.0.0.1, port: 3306, user: root, password: "" }
block-allow-list:
  only-shop-and-logs:
    do-dbs: ["shop", "~^log"]
    ignore-tables:
      - { db-name: shop, tbl-name: secret }
routes:
  apps:
    schema-pattern: logs
    table-pattern: "app_*"
    target-schema: logs
    target-table: app
filters:
  keep-events:
    schema-pattern: shop
    table-pattern: events
    events: ["delete"]
    action: Ignore
  no-truncate:
    schema-pattern: "*"
    sql-pattern: ["^TRUNCATE"]
    action: Ignore
expression-filter:
  even-quantities:
    schema: shop
    table: items
    insert-value-expr: "qty % 2 = 0"
  price-jumps:
    schema: shop
    table: items
    update-old-value-expr: "price < 100"
    update-new-value-expr: "price >= 1000"
  old-sales:
    schema: shop
    table: items
    delete-value-expr: "status = 'sold' AND added < '2024-02-01'"
mysql-instances:
  - source-id: mariadb-01
    block-allow-list: only-shop-and-logs
    route-rules: ["apps"]
    filter-rules: ["keep-events", "no-truncate"]
    expression-filters: ["even-quantities", "price-jumps", "old-sales"]
"#;

const WORKLOAD: &str = "CREATE DATABASE shop; CREATE DATABASE logs; CREATE DATABASE private;
CREATE TABLE shop.items (id INT PRIMARY KEY, qty INT, price DECIMAL(8,2),
  status ENUM('new', 'sold'), added DATETIME);
CREATE TABLE shop.secret (id INT PRIMARY KEY);
CREATE TABLE shop.events (id INT PRIMARY KEY, kind VARCHAR(10));
CREATE TABLE logs.app_01 (id INT PRIMARY KEY, line VARCHAR(20));
CREATE TABLE logs.app_02 (id INT PRIMARY KEY, line VARCHAR(20));
CREATE TABLE private.t (id INT PRIMARY KEY);
INSERT INTO shop.items SELECT seq, seq % 10, seq * 1.5, IF(seq % 3 = 0, 'sold', 'new'),
  '2024-01-01' + INTERVAL seq DAY FROM shop.seq_1_to_400;
INSERT INTO shop.secret SELECT seq FROM shop.seq_1_to_10;
INSERT INTO private.t SELECT seq FROM shop.seq_1_to_10;
INSERT INTO shop.events SELECT seq, 'x' FROM shop.seq_1_to_100;
DELETE FROM shop.events WHERE id <= 30;
TRUNCATE TABLE shop.events;
INSERT INTO logs.app_01 SELECT seq, 'a' FROM shop.seq_1_to_50;
INSERT INTO logs.app_02 SELECT seq + 1000, 'b' FROM shop.seq_1_to_50;
UPDATE shop.items SET price = price + 1000 WHERE id <= 100 AND qty % 2 = 1;
UPDATE shop.items SET qty = qty + 100 WHERE id BETWEEN 300 AND 310 AND qty % 2 = 1;
DELETE FROM shop.items WHERE status = 'sold' AND id <= 60;";

/// The same statements with the rules applied by hand, written with the binlog off.
const EXPECTED: &str = "SET sql_log_bin = 0;
CREATE DATABASE expected;
CREATE TABLE expected.items LIKE shop.items;
INSERT INTO expected.items SELECT seq, seq % 10, seq * 1.5, IF(seq % 3 = 0, 'sold', 'new'),
  '2024-01-01' + INTERVAL seq DAY FROM shop.seq_1_to_400 WHERE NOT (seq % 10) % 2 = 0;
UPDATE expected.items SET price = price + 1000
  WHERE id <= 100 AND qty % 2 = 1 AND NOT (price < 100 AND price + 1000 >= 1000);
UPDATE expected.items SET qty = qty + 100 WHERE id BETWEEN 300 AND 310 AND qty % 2 = 1;
DELETE FROM expected.items WHERE status = 'sold' AND id <= 60
  AND NOT (status = 'sold' AND added < '2024-02-01');";

const DIGEST: &str = "COUNT(*), SUM(CRC32(CONCAT_WS('|', id, qty, price, status, added))) FROM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_file_rules_do_what_they_say_and_only_that() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("filters-upstream")),
        MariaDb::start_with(MariaDbOptions::named("filters-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    let task = TaskConfig::from_yaml(TASK, "task.yaml").expect("task file");
    let instance = task.mysql_instances.first().expect("instance");
    let rules = task.rules_for(instance).expect("rules");
    upstream.execute(WORKLOAD).await.expect("workload");
    upstream.execute(EXPECTED).await.expect("expected");

    let mut source = RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", 511);
    source.stop_at_end = true;
    let start =
        Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"));
    let sink = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    let settings = SyncerSettings {
        workers: 4,
        batch: 50,
        queue_size: 256,
        checkpoint_interval: Duration::from_millis(200),
        case_sensitive: task.case_sensitive,
        ..SyncerSettings::new(&task.name, &instance.source_id)
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    let status = run(settings, source, start, sink, rules, stop, progress)
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"));

    // Expression filters: the rows they match, and only those, are left out.
    let expected = upstream
        .query(&format!("SELECT {DIGEST} expected.items"))
        .await
        .expect("expected");
    let replicated = downstream
        .query(&format!("SELECT {DIGEST} shop.items"))
        .await
        .expect("replicated");
    assert_eq!(replicated, expected);
    let unfiltered = upstream
        .query(&format!("SELECT {DIGEST} shop.items"))
        .await
        .expect("upstream");
    assert_ne!(
        replicated, unfiltered,
        "the filters must have left rows out"
    );
    // 200 even-quantity inserts, 33 price jumps from under 100, 10 old sales (and the event
    // filter's rows events).
    assert!(status.rows_filtered > 200 + 33 + 10, "{status:?}");

    // The event filter: deletes of shop.events and the TRUNCATE are ignored.
    let events = downstream
        .query("SELECT COUNT(*) FROM shop.events")
        .await
        .expect("events");
    assert_eq!(events, vec![vec![Some("100".to_owned())]]);

    // The route merges both app tables into logs.app, and only it exists downstream.
    let merged = downstream
        .query("SELECT COUNT(*), SUM(id) FROM logs.app")
        .await
        .expect("merged");
    assert_eq!(
        merged,
        vec![vec![Some("100".to_owned()), Some("52550".to_owned())]]
    );
    // The block-allow list: the ignored table, the schema not listed and the routed-away
    // names do not exist downstream.
    let tables = downstream
        .query(
            "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES
             WHERE TABLE_SCHEMA IN ('shop', 'logs', 'private') ORDER BY 1",
        )
        .await
        .expect("tables");
    let names: Vec<String> = tables.into_iter().flatten().flatten().collect();
    assert_eq!(names, ["logs.app", "shop.events", "shop.items"]);
}

#[test]
fn an_expression_filter_rule_with_two_kinds_or_a_bad_expression_is_refused() {
    let two_kinds = TASK.replace(
        "    insert-value-expr: \"qty % 2 = 0\"",
        "    insert-value-expr: \"qty % 2 = 0\"\n    delete-value-expr: \"qty = 1\"",
    );
    let error = TaskConfig::from_yaml(&two_kinds, "task.yaml").expect_err("two kinds");
    let message = error.to_string();
    assert!(
        message.contains("task.yaml") && message.contains("expression-filter.even-quantities"),
        "{message}"
    );
    assert!(message.contains("exactly one"), "{message}");
    let function = TASK.replace("qty % 2 = 0", "SLEEP(qty) = 0");
    let message = TaskConfig::from_yaml(&function, "task.yaml")
        .expect_err("function")
        .to_string();
    assert!(
        message.contains("SLEEP(qty)") && message.contains("not supported"),
        "{message}"
    );
}
