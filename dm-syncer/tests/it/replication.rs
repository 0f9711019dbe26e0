//! The syncer against live MariaDB servers: an upstream workload with DML of every kind, tables
//! with and without keys, and DDL mid-stream replicates to an empty downstream, which then equals
//! the upstream table for table; and a syncer crashed at random points many times (its task and
//! workers dropped mid-transaction) and restarted each time from its checkpoints leaves the
//! downstream equal to the upstream with no row lost or duplicated, tables without keys included.

use std::time::Duration;

use dm_binlog::RemoteOptions;
use dm_core::{BinlogPosition, Location};
use dm_sink::MySqlSinkOptions;
use dm_syncer::{SyncerSettings, SyncerStatus, run};
use dm_task::config::InstanceRules;
use dm_task::filter::TableRouter;
use dm_testkit::{MariaDb, MariaDbOptions, compare_schemas, or_skip};

pub(crate) fn settings(workers: usize) -> SyncerSettings {
    SyncerSettings {
        workers,
        batch: 50,
        queue_size: 256,
        checkpoint_interval: Duration::from_millis(200),
        ..SyncerSettings::new("test", "mariadb-01")
    }
}

pub(crate) fn rules() -> InstanceRules {
    InstanceRules::default()
}

async fn sync_to_end(upstream: &MariaDb, downstream: &MariaDb, workers: usize) -> SyncerStatus {
    sync_to_end_with(upstream, downstream, settings(workers)).await
}

/// The start of the upstream's first binlog.
pub(crate) fn first_event() -> Location {
    Location::from_position(BinlogPosition::parse("mysql-bin.000001:4").expect("start"))
}

/// A syncer from `upstream` (as replica `server_id`) to `downstream`, not yet started: the
/// future to run and the sender that stops it. With `stop_at_end` it ends at the end of the
/// binlog.
pub(crate) fn syncer(
    upstream: &MariaDb,
    downstream: &MariaDb,
    server_id: u32,
    start: Location,
    settings: SyncerSettings,
    rules: InstanceRules,
    stop_at_end: bool,
) -> (
    impl std::future::Future<Output = Result<SyncerStatus, dm_syncer::SyncerError>> + Send + 'static,
    tokio::sync::watch::Sender<bool>,
) {
    let sink = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    syncer_into(
        upstream,
        sink,
        server_id,
        start,
        settings,
        rules,
        stop_at_end,
    )
}

/// [`syncer`] with the downstream's sink options given.
pub(crate) fn syncer_into(
    upstream: &MariaDb,
    sink: MySqlSinkOptions,
    server_id: u32,
    start: Location,
    settings: SyncerSettings,
    rules: InstanceRules,
    stop_at_end: bool,
) -> (
    impl std::future::Future<Output = Result<SyncerStatus, dm_syncer::SyncerError>> + Send + 'static,
    tokio::sync::watch::Sender<bool>,
) {
    let mut source = RemoteOptions::new("127.0.0.1", upstream.port(), "root", "", server_id);
    // One name per task and source across runs, as a deployment has: a killed run's
    // connection the upstream still lists is this replica's, not another one's.
    source.replica_name = format!("test-{}-{}", settings.task, settings.source_id);
    source.stop_at_end = stop_at_end;
    source.heartbeat_period = Duration::from_millis(500);
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    (
        run(settings, source, start, sink, rules, stop, progress),
        stop_sender,
    )
}

pub(crate) async fn sync_to_end_with(
    upstream: &MariaDb,
    downstream: &MariaDb,
    settings: SyncerSettings,
) -> SyncerStatus {
    let (syncer, _stop) = syncer(
        upstream,
        downstream,
        501,
        first_event(),
        settings,
        rules(),
        true,
    );
    syncer
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"))
}

pub(crate) async fn assert_equal(upstream: &MariaDb, downstream: &MariaDb, schema: &str) {
    let mut left = upstream.connect().await.expect("connect");
    let mut right = downstream.connect().await.expect("connect");
    let difference = compare_schemas(&mut left, &mut right, schema)
        .await
        .expect("compare");
    assert!(difference.is_none(), "{difference:?}");
}

const WORKLOAD: &str = "CREATE DATABASE shop;
USE shop;
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(10,2));
CREATE TABLE events (kind VARCHAR(10), amount INT);
CREATE TABLE codes (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY (code));
INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 10, seq / 7 FROM seq_1_to_2000;
INSERT INTO events SELECT 'buy', seq % 3 FROM seq_1_to_500;
INSERT INTO events VALUES ('dup', 1), ('dup', 1), ('dup', 1);
INSERT INTO codes SELECT CONCAT('c', seq), seq FROM seq_1_to_300;
UPDATE items SET qty = qty + 1 WHERE id % 3 = 0;
UPDATE items SET id = id + 100000 WHERE id % 97 = 0;
DELETE FROM items WHERE id % 11 = 0;
DELETE FROM events WHERE kind = 'dup' LIMIT 1;
UPDATE events SET amount = amount + 10 WHERE amount = 2;
UPDATE codes SET code = CONCAT('x', code) WHERE v % 5 = 0;
ALTER TABLE items ADD COLUMN note VARCHAR(20) DEFAULT 'none' AFTER name;
INSERT INTO items (id, name, note, qty, price) VALUES (500000, 'late', 'after alter', 1, 9.99);
UPDATE items SET note = 'changed' WHERE id < 50;
CREATE TABLE archive LIKE items;
INSERT INTO archive SELECT * FROM items WHERE id < 100;
RENAME TABLE archive TO archive_old;
CREATE TABLE scratch (a INT);
INSERT INTO scratch VALUES (1), (2);
TRUNCATE TABLE scratch;
DROP TABLE scratch;
ALTER TABLE items MODIFY COLUMN qty BIGINT NOT NULL DEFAULT 0;
ALTER TABLE items CHANGE COLUMN name title VARCHAR(60);
ALTER TABLE items ADD INDEX by_qty (qty);
UPDATE items SET qty = qty * 1000000000 WHERE id % 5 = 0;
ALTER TABLE items DROP INDEX by_qty, DROP COLUMN note;
ALTER TABLE items RENAME COLUMN title TO name;
INSERT INTO items (id, name, qty, price) VALUES (700000, 'after renames', 3, 2.00);
CREATE TABLE parts (id INT PRIMARY KEY, v INT) PARTITION BY RANGE (id)
  (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE);
INSERT INTO parts SELECT seq, seq FROM seq_1_to_300;
ALTER TABLE parts ADD COLUMN w INT DEFAULT 7;
UPDATE parts SET w = v WHERE id > 250;
ALTER TABLE parts TRUNCATE PARTITION p0;
CREATE DATABASE scratch_db;
CREATE TABLE scratch_db.t (a INT);
INSERT INTO scratch_db.t VALUES (1);
DROP DATABASE scratch_db;
FLUSH BINARY LOGS;
INSERT INTO items (id, name, qty, price) VALUES (600000, 'second file', 2, 1.00);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_workload_with_ddl_replicates_table_for_table() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("syncer-upstream")),
        MariaDb::start_with(MariaDbOptions::named("syncer-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(WORKLOAD).await.expect("workload");
    let metrics = dm_syncer::SyncerMetrics::new().expect("metrics");
    let mut with_metrics = settings(4);
    with_metrics.metrics = Some(metrics.clone());
    with_metrics.upstream = Some(RemoteOptions::new(
        "127.0.0.1",
        upstream.port(),
        "root",
        "",
        601,
    ));
    let status = sync_to_end_with(&upstream, &downstream, with_metrics).await;
    assert_equal(&upstream, &downstream, "shop").await;
    // Status and metrics as DM names them.
    assert!(status.transactions > 10, "{status:?}");
    assert!(status.master_position.is_some(), "{status:?}");
    let text = metrics.encode();
    for name in [
        "dm_syncer_replication_lag_gauge{source_id=\"mariadb-01\",task=\"test\",worker=\"\"}",
        "dm_syncer_binlog_pos{node=\"syncer\"",
        "dm_syncer_binlog_file{node=\"master\"",
        "dm_syncer_added_jobs_total{queueNo=\"q_0\",source_id=\"mariadb-01\",target_schema=\"shop\",target_table=\"items\",task=\"test\",type=\"insert\",worker=\"\"}",
        "dm_syncer_queue_size{queue_id=\"q_0\"",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    // Every exported name appears (the remaining time once it is known: two looks at the
    // upstream's binlogs, seconds apart).
    for name in dm_syncer::metrics::EXPORTED {
        let expected =
            name != dm_syncer::metrics::REMAINING_TIME || status.remaining_seconds.is_some();
        assert_eq!(
            text.contains(&format!("# TYPE {name} ")),
            expected,
            "{name} in:\n{text}"
        );
    }
    // What counts things counts what happened.
    let dml = ["type=\"insert\"", "type=\"update\"", "type=\"delete\""];
    let jobs = |name: &str, kind: &str| sample_sum(&text, name, &[kind]);
    let dml_jobs = |name: &str| dml.iter().map(|kind| jobs(name, kind)).sum::<f64>();
    let rows = status.rows_dispatched as f64;
    let ddls = status.ddls_executed as f64;
    assert_eq!(dml_jobs("dm_syncer_added_jobs_total"), rows, "{text}");
    assert_eq!(dml_jobs("dm_syncer_finished_jobs_total"), rows, "{text}");
    assert_eq!(jobs("dm_syncer_added_jobs_total", "type=\"ddl\""), ddls);
    assert_eq!(jobs("dm_syncer_finished_jobs_total", "type=\"ddl\""), ddls);
    let count = |name: &str, labels: &[&str]| sample_sum(&text, &format!("{name}_count"), labels);
    let transactions = sample_sum(&text, "dm_syncer_finished_transaction_total", &[]);
    assert!(transactions > 0.0, "{text}");
    assert_eq!(
        count(
            "dm_syncer_replication_transaction_batch",
            &["type=\"rows\""]
        ),
        transactions
    );
    let batched = sample_sum(&text, "dm_syncer_replication_transaction_batch_sum", &[]);
    assert!(batched > 0.0 && batched <= rows, "{batched} of {rows}");
    assert_eq!(
        count("dm_syncer_binlog_transform_cost", &["stage=\"dml-exec\""]),
        transactions
    );
    // Worker transactions, checkpoint writes and DDL statements.
    let flushes = sample_sum(&text, "dm_syncer_flush_checkpoints_total", &[]);
    assert!(flushes > 1.0, "{text}");
    assert_eq!(
        count("dm_syncer_txn_duration_time", &[]),
        transactions + flushes + ddls
    );
    assert_eq!(
        count("dm_syncer_stmt_duration_time", &["type=\"stmt\""]),
        ddls
    );
    assert_eq!(
        count("dm_syncer_flush_checkpoints_time_interval", &[]),
        flushes - 1.0
    );
    assert!(count("dm_syncer_query_duration_time", &[]) > 0.0, "{text}");
    assert_eq!(
        count("dm_syncer_read_binlog_duration", &[]),
        status.events as f64
    );
    assert!(count("dm_syncer_binlog_event_size", &[]) > 0.0, "{text}");
    assert!(count("dm_syncer_replication_lag", &[]) > 0.0, "{text}");
    assert!(sample_sum(&text, "dm_syncer_binlog_event_row_sum", &[]) >= rows);
    for stage in [
        "gen-write-rows",
        "gen-update-rows",
        "gen-delete-rows",
        "gen-query",
        "ddl-exec",
    ] {
        let stage = format!("stage=\"{stage}\"");
        assert!(
            count("dm_syncer_binlog_transform_cost", &[&stage]) > 0.0,
            "{stage}: {text}"
        );
    }
    for kind in dml {
        assert!(
            count("dm_syncer_dispatch_binlog_duration", &[kind]) > 0.0,
            "{kind}: {text}"
        );
    }
    assert!(
        sample_sum(&text, "dm_syncer_ideal_qps", &[]) > 0.0,
        "{text}"
    );
    assert_eq!(
        sample_sum(&text, "dm_syncer_exit_with_error_count", &[]),
        0.0
    );
    assert!(status.ddls_executed >= 20, "{status:?}");
    // The dropped database is gone downstream too.
    let scratch = downstream
        .query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'scratch_db'")
        .await
        .expect("schemata");
    assert_eq!(scratch, vec![vec![Some("0".to_owned())]]);
    assert!(status.rows_dispatched > 3000, "{status:?}");
    assert_eq!(status.rows_already_applied, 0);
    // A second run resumes at the checkpoint: nothing is applied twice.
    let again = sync_to_end(&upstream, &downstream, 4).await;
    assert_eq!(again.rows_dispatched, 0, "{again:?}");
    assert_equal(&upstream, &downstream, "shop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_random_points_lose_and_duplicate_nothing() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("crash-upstream")),
        MariaDb::start_with(MariaDbOptions::named("crash-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    // Many small transactions on a table without any key (where DM's safe mode duplicates rows)
    // and on a keyed table.
    let mut workload = String::from(
        "CREATE DATABASE bank; USE bank;
         CREATE TABLE ledger (account INT, amount INT);
         CREATE TABLE balances (account INT PRIMARY KEY, total INT);
         INSERT INTO balances SELECT seq, 0 FROM seq_1_to_50;",
    );
    for round in 0..4000 {
        workload.push_str(&format!(
            "INSERT INTO ledger VALUES ({a}, 10), ({a}, 10), ({b}, -5);
             UPDATE balances SET total = total + 15 WHERE account IN ({a}, {b});",
            a = round % 50 + 1,
            b = (round * 7) % 50 + 1
        ));
        if round % 50 == 49 {
            workload.push_str("DELETE FROM ledger WHERE amount = -5 LIMIT 3;");
        }
    }
    upstream.execute(&workload).await.expect("workload");

    let mut crashes = 0;
    let mut seed = 0x2545_f491_u64;
    for _ in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(5 + seed % 100);
        let (run, _stop) = syncer(
            &upstream,
            &downstream,
            502,
            first_event(),
            settings(4),
            rules(),
            true,
        );
        let task = tokio::spawn(run);
        tokio::time::sleep(delay).await;
        if !task.is_finished() {
            task.abort();
            crashes += 1;
        }
        let _ = task.await;
    }
    let status = sync_to_end(&upstream, &downstream, 4).await;
    assert!(crashes >= 3, "only {crashes} runs were interrupted");
    assert_equal(&upstream, &downstream, "bank").await;
    eprintln!("{crashes} crashes; the last run: {status:?}");
    // The last run re-read changes that workers had committed before a crash, and did not apply
    // them again: the exactly-once path was taken, not avoided.
    assert!(status.rows_already_applied > 0, "{status:?}");
}

/// `shop.t`'s row count, or `None` while the server is away.
async fn row_count(server: &MariaDb) -> Option<u64> {
    server
        .query("SELECT COUNT(*) FROM shop.t")
        .await
        .ok()
        .and_then(|rows| rows.first()?.first()?.as_deref()?.parse::<u64>().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_that_goes_away_is_waited_for_and_caught_up_with() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("restart-upstream")),
        MariaDb::start_with(MariaDbOptions::named("restart-downstream")),
    );
    let upstream = or_skip!(upstream);
    let mut downstream = or_skip!(downstream);
    upstream
        .execute("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT); INSERT INTO shop.t SELECT seq, seq FROM shop.seq_1_to_1000")
        .await
        .expect("write");
    let (run, stop_sender) = syncer(
        &upstream,
        &downstream,
        503,
        first_event(),
        settings(2),
        rules(),
        false,
    );
    let syncer = tokio::spawn(run);
    dm_testkit::wait_for(
        "the first rows downstream",
        Duration::from_secs(30),
        || async { row_count(&downstream).await == Some(1000) },
    )
    .await
    .expect("caught up");

    // The downstream goes away while the upstream keeps writing.
    downstream.kill().expect("kill");
    upstream
        .execute("INSERT INTO shop.t SELECT seq + 1000, seq FROM shop.seq_1_to_500; UPDATE shop.t SET v = 0 WHERE id <= 10")
        .await
        .expect("write while down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    if syncer.is_finished() {
        panic!("the syncer gave up instead of waiting: {:?}", syncer.await);
    }
    downstream.restart().await.expect("restart");
    dm_testkit::wait_for(
        "the rows written while down",
        Duration::from_secs(60),
        || async { row_count(&downstream).await == Some(1500) },
    )
    .await
    .expect("caught up after the restart");
    upstream
        .execute("INSERT INTO shop.t VALUES (999999, 1)")
        .await
        .expect("write");
    dm_testkit::wait_for("the last row", Duration::from_secs(30), || async {
        row_count(&downstream).await == Some(1501)
    })
    .await
    .expect("caught up with the last write");
    // A graceful stop: at the next point between transactions (a heartbeat at the latest).
    stop_sender.send(true).expect("stop");
    let status = tokio::time::timeout(Duration::from_secs(30), syncer)
        .await
        .expect("stops")
        .expect("task")
        .expect("syncer");
    assert!(status.checkpoint.is_some());
    let mut left = upstream.connect().await.expect("connect");
    let mut right = downstream.connect().await.expect("connect");
    let difference = compare_schemas(&mut left, &mut right, "shop")
        .await
        .expect("compare");
    assert!(difference.is_none(), "{difference:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_route_into_one_table_with_their_ddl() {
    use dm_task::filter::RouteRule;
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("route-upstream")),
        MariaDb::start_with(MariaDbOptions::named("route-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    let mut workload = String::new();
    for shard in 1..=3 {
        workload.push_str(&format!(
            "CREATE DATABASE shop_0{shard}; USE shop_0{shard};
             CREATE TABLE orders (id INT PRIMARY KEY, amount INT);
             INSERT INTO orders SELECT seq * 10 + {shard}, seq FROM seq_1_to_100;
             UPDATE orders SET amount = amount + 1 WHERE id % 7 = 0;"
        ));
    }
    for shard in 1..=3 {
        workload.push_str(&format!(
            "ALTER TABLE shop_0{shard}.orders ADD COLUMN note VARCHAR(10) DEFAULT 'n';
             INSERT INTO shop_0{shard}.orders VALUES (100000 + {shard}, 5, 'late');
             DELETE FROM shop_0{shard}.orders WHERE id < 100;"
        ));
    }
    upstream.execute(&workload).await.expect("workload");
    let router = TableRouter::new(
        true,
        vec![
            RouteRule::new(
                "orders",
                "shop_*",
                Some("orders"),
                "shop",
                Some("orders"),
                true,
            )
            .expect("rule"),
            RouteRule::new("schemas", "shop_*", None, "shop", None, true).expect("rule"),
        ],
    );
    let rules = InstanceRules {
        router,
        ..InstanceRules::default()
    };
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        504,
        first_event(),
        settings(4),
        rules,
        true,
    );
    run.await.unwrap_or_else(|error| panic!("syncer: {error}"));
    // The merged table holds every shard's rows, as the union of the upstream tables.
    let union = upstream
        .query(
            "SELECT COUNT(*), SUM(id), SUM(amount), SUM(note = 'late') FROM (
               SELECT * FROM shop_01.orders UNION ALL SELECT * FROM shop_02.orders
               UNION ALL SELECT * FROM shop_03.orders) AS shards",
        )
        .await
        .expect("union");
    let merged = downstream
        .query("SELECT COUNT(*), SUM(id), SUM(amount), SUM(note = 'late') FROM shop.orders")
        .await
        .expect("merged");
    assert_eq!(merged, union);
    let schemas = downstream
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'shop%'")
        .await
        .expect("schemata");
    assert_eq!(schemas, vec![vec![Some("shop".to_owned())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_change_logged_as_a_statement_stops_the_task_and_skip_resumes_it() {
    use dm_binlog::Operator;
    use dm_task::filter::RouteRule;
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("skip-upstream")),
        MariaDb::start_with(MariaDbOptions::named("skip-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    // A partitioned table under a renaming route (sqlparser does not read PARTITION BY: the
    // names are replaced in place), then a session that switched to statement format.
    upstream
        .execute(
            "CREATE DATABASE shop_01; USE shop_01;
             CREATE TABLE t (id INT PRIMARY KEY, v INT) PARTITION BY HASH(id) PARTITIONS 2;
             INSERT INTO t VALUES (1, 1), (2, 2);
             SET SESSION binlog_format = 'STATEMENT';
             INSERT INTO t VALUES (3, 3);
             SET SESSION binlog_format = 'ROW';
             INSERT INTO t VALUES (4, 4);",
        )
        .await
        .expect("workload");
    let run_with = |operators: Vec<(BinlogPosition, Operator)>| {
        let mut settings = settings(2);
        settings.operators = operators;
        let rules = InstanceRules {
            router: TableRouter::new(
                true,
                vec![RouteRule::new("schemas", "shop_*", None, "shop", None, true).expect("rule")],
            ),
            ..InstanceRules::default()
        };
        syncer(
            &upstream,
            &downstream,
            505,
            first_event(),
            settings,
            rules,
            true,
        )
        .0
    };
    let error = run_with(Vec::new())
        .await
        .expect_err("a statement-format insert");
    let message = error.to_string();
    assert!(message.contains("INSERT INTO t VALUES (3, 3)"), "{message}");
    assert!(message.contains("binlog_format=ROW"), "{message}");
    let position = message
        .strip_prefix("at ")
        .and_then(|rest| rest.split(':').take(2).collect::<Vec<_>>().join(":").into())
        .map(|text: String| text.to_owned())
        .expect("the message starts with the position");
    let position = BinlogPosition::parse(&position).expect("a file:position");
    // Nothing after the statement was applied; the partitioned table arrived routed.
    let rows = downstream
        .query("SELECT id, v FROM shop.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let partitioned = downstream
        .query("SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 't' AND PARTITION_NAME IS NOT NULL")
        .await
        .expect("partitions");
    assert_eq!(partitioned, vec![vec![Some("2".to_owned())]]);
    // The user copies the row by hand and skips the statement.
    downstream
        .execute("INSERT INTO shop.t VALUES (3, 3)")
        .await
        .expect("copy by hand");
    let status = run_with(vec![(position, Operator::Skip)])
        .await
        .unwrap_or_else(|error| panic!("resumed: {error}"));
    assert!(status.rows_dispatched >= 1, "{status:?}");
    let rows = downstream
        .query("SELECT id, v FROM shop.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 4, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_mode_until_the_exit_point_absorbs_rows_already_downstream() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("exit-upstream")),
        MariaDb::start_with(MariaDbOptions::named("exit-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    let schema = "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT);";
    upstream.execute(schema).await.expect("schema");
    downstream.execute(schema).await.expect("schema");
    let (file, offset) = upstream.binlog_position().await.expect("position");
    let start =
        Location::from_position(BinlogPosition::parse(&format!("{file}:{offset}")).expect("start"));
    upstream
        .execute("INSERT INTO shop.t SELECT seq, seq FROM shop.seq_1_to_100; UPDATE shop.t SET v = 0 WHERE id <= 20")
        .await
        .expect("writes");
    let (file, offset) = upstream.binlog_position().await.expect("position");
    let exit =
        Location::from_position(BinlogPosition::parse(&format!("{file}:{offset}")).expect("exit"));
    upstream
        .execute("INSERT INTO shop.t VALUES (101, 1)")
        .await
        .expect("after the exit point");
    // A dump without a consistent snapshot already copied part of those writes.
    downstream
        .execute("INSERT INTO shop.t SELECT seq, seq FROM shop.seq_1_to_50")
        .await
        .expect("dumped rows");

    let run_from = |safe_mode_until: Option<Location>| {
        let mut settings = settings(2);
        settings.safe_mode_until = safe_mode_until;
        settings.task = if settings.safe_mode_until.is_some() {
            "exit".into()
        } else {
            "plain".into()
        };
        syncer(
            &upstream,
            &downstream,
            506,
            start.clone(),
            settings,
            rules(),
            true,
        )
        .0
    };
    // Exact writes meet the copied rows: a duplicate key, the task stops.
    let error = run_from(None).await.expect_err("duplicate");
    assert!(error.to_string().contains("1062"), "{error}");
    // Safe mode until the exit point: REPLACE absorbs them, and exact writes resume after it.
    run_from(Some(exit))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_equal(&upstream, &downstream, "shop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_at_its_edges_round_trips_through_the_syncer() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("types-upstream")),
        MariaDb::start_with(MariaDbOptions::named("types-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    // The tables are created by the replayed DDL, the rows by the replayed row events.
    upstream
        .execute(dm_testkit::workloads::EVERY_TYPE_SCHEMA)
        .await
        .expect("schema");
    upstream
        .execute(dm_testkit::workloads::EVERY_TYPE_WRITES)
        .await
        .expect("writes");
    let status = sync_to_end(&upstream, &downstream, 4).await;
    assert!(status.rows_dispatched >= 15, "{status:?}");
    assert_equal(&upstream, &downstream, "d").await;
}

/// Wide rows: the changes dispatched and not yet committed stay under `max_in_flight_bytes`
/// (one change over it at most), however many the queues could hold by count; the data arrives
/// whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_rows_keep_the_bytes_in_flight_under_the_budget() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("wide-upstream")),
        MariaDb::start_with(MariaDbOptions::named("wide-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    // 240 rows of ~256 KiB, inserted, then updated (before + after images): ~180 MB of changes.
    upstream
        .execute(
            "CREATE DATABASE wide; USE wide;
             CREATE TABLE blobs (id INT PRIMARY KEY, body LONGBLOB);
             INSERT INTO blobs SELECT seq, REPEAT(CHAR(65 + seq % 26), 262144) FROM seq_1_to_240;
             UPDATE blobs SET body = REPEAT('z', 262144) WHERE id % 2 = 0;",
        )
        .await
        .expect("workload");
    let budget = 2 << 20;
    let status = sync_to_end_with(
        &upstream,
        &downstream,
        SyncerSettings {
            max_in_flight_bytes: budget,
            ..settings(4)
        },
    )
    .await;
    assert_equal(&upstream, &downstream, "wide").await;
    assert_eq!(status.rows_dispatched, 360, "{status:?}");
    // One update carries two images of 256 KiB.
    let largest_change = 2 * 262_144 + 64;
    assert!(
        status.peak_in_flight_bytes > 0
            && status.peak_in_flight_bytes <= (budget + largest_change) as u64,
        "peak {} bytes in flight, budget {budget}",
        status.peak_in_flight_bytes
    );
}

/// Two syncers of one task and source would both write the same checkpoints: the second waits
/// for the first's worker locks and, when they stay held, stops with DM-13005 naming the lock;
/// once the first has stopped, the second runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_syncer_of_the_same_task_is_refused_while_the_first_runs() {
    use dm_core::ClassifiedError;
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("twice-upstream")),
        MariaDb::start_with(MariaDbOptions::named("twice-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(WORKLOAD).await.expect("workload");
    // The first one follows the binlog (it does not stop at its end).
    let (first, stop_first) = syncer(
        &upstream,
        &downstream,
        503,
        first_event(),
        settings(2),
        rules(),
        false,
    );
    let first = tokio::spawn(first);
    dm_testkit::wait_for(
        "the first syncer to replicate",
        Duration::from_secs(30),
        || async {
            downstream
                .query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'")
                .await
                .is_ok_and(|rows| rows != vec![vec![Some("0".to_owned())]])
        },
    )
    .await
    .expect("the first syncer runs");

    let mut sink = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    sink.lock_wait = Duration::from_secs(1);
    let second = || {
        let (run, _stop) = syncer_into(
            &upstream,
            sink.clone(),
            504,
            first_event(),
            settings(2),
            rules(),
            true,
        );
        run
    };
    let refused = second().await.expect_err("the second syncer is refused");
    assert_eq!(refused.code().to_string(), "DM-13005", "{refused}");
    assert!(refused.to_string().contains("dm-syncer-"), "{refused}");

    let _ = stop_first.send(true);
    first
        .await
        .expect("joined")
        .expect("the first syncer stops cleanly");
    second()
        .await
        .expect("the second syncer runs once the first stopped");
    assert_equal(&upstream, &downstream, "shop").await;
}

/// The sum of the samples named `name` (`..._count` for a histogram's count) whose labels
/// include every one of `labels` (`key="value"`), in Prometheus' text format.
fn sample_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            let matches =
                series_name == name && labels.iter().all(|label| series_labels.contains(label));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}
