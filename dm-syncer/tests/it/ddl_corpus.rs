//! A corpus of DDL forms replicated through the syncer against live MariaDB servers, under a
//! block-allow list and a shard route: `IF [NOT] EXISTS`, `CREATE SCHEMA`, executable comments,
//! leading comments, several tables in one DROP or RENAME, names with backticks and dots, and
//! the statements mysqldump and mydumper write. Every replicated database equals its upstream,
//! the shards merge into their routed table, and nothing filtered reaches the downstream.

use dm_task::config::TaskConfig;
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

use crate::replication::{assert_equal, first_event, settings, syncer};

const TASK: &str = r#"
name: corpus
task-mode: incremental
target-database: {host: 127.0.0.1, port: 3306, user: root}
block-allow-list:
  replicated:
    do-dbs: ["app", "legacy", "dumped", "my.db", "shop_0*"]
    ignore-tables:
      - db-name: "app"
        tbl-name: "ignored_*"
routes:
  shard-tables:
    schema-pattern: "shop_0*"
    table-pattern: "orders"
    target-schema: "shop"
    target-table: "orders"
  shard-schemas:
    schema-pattern: "shop_0*"
    target-schema: "shop"
mysql-instances:
  - source-id: mariadb-01
    block-allow-list: replicated
    route-rules: ["shard-tables", "shard-schemas"]
"#;

/// The upstream's history, each statement as a user, mysqldump or mydumper would send it.
const CORPUS: &str = r#"
CREATE DATABASE other_scratch_db;
CREATE DATABASE IF NOT EXISTS app; USE app;
CREATE TABLE IF NOT EXISTS users (id INT PRIMARY KEY, name VARCHAR(20));
CREATE TABLE IF NOT EXISTS users (id INT PRIMARY KEY, name VARCHAR(20));
INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
/* migration 42: leading comment */ ALTER TABLE users ADD COLUMN email VARCHAR(40) AFTER name;
-- a line comment first
ALTER TABLE app.users ADD COLUMN (age INT, city VARCHAR(10));
INSERT INTO users VALUES (3, 'cy', 'c@x', 30, 'oslo');
CREATE TABLE ignored_log (id INT PRIMARY KEY);
INSERT INTO ignored_log VALUES (1);
CREATE TABLE a (id INT PRIMARY KEY, side CHAR(1));
CREATE TABLE b (id INT PRIMARY KEY, side CHAR(1));
INSERT INTO a VALUES (1, 'a'); INSERT INTO b VALUES (1, 'b'), (2, 'b');
RENAME TABLE a TO swap_tmp, b TO a, swap_tmp TO b;
INSERT INTO a VALUES (3, 'B'); INSERT INTO b VALUES (4, 'A');
CREATE TABLE gone1 (x INT); CREATE TABLE gone2 (x INT);
DROP TABLE gone1, `gone2`, ignored_log;
DROP TABLE IF EXISTS never_there;
CREATE TABLE users_copy LIKE users;
INSERT INTO users_copy SELECT * FROM users;
ALTER TABLE users_copy RENAME TO users_archive;
CREATE UNIQUE INDEX by_email ON users_archive (email);
DROP INDEX by_email ON users_archive;
CREATE TABLE parts (id INT PRIMARY KEY, v INT) /*!50100 PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE) */;
INSERT INTO parts VALUES (1, 1), (20, 20);
ALTER TABLE parts REORGANIZE PARTITION p1 INTO (PARTITION p1 VALUES LESS THAN (100), PARTITION p2 VALUES LESS THAN MAXVALUE);
ALTER TABLE parts TRUNCATE PARTITION p0;
ALTER TABLE parts ENGINE=InnoDB;
CREATE OR REPLACE VIEW recent AS SELECT id, name FROM users WHERE id > 1;
DROP VIEW IF EXISTS recent;
TRUNCATE users_archive;
ALTER DATABASE app CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE TABLE after_charset (id INT PRIMARY KEY, note VARCHAR(10));
INSERT INTO after_charset VALUES (1, 'ok');
SET STATEMENT max_statement_time=600 FOR ALTER TABLE users MODIFY name VARCHAR(30);
INSERT INTO users (id, name) VALUES (4, 'a name of thirty characters!!');
CREATE TABLE users_snapshot SELECT id, name FROM users;
RENAME TABLE IF EXISTS users_snapshot TO users_frozen, no_such_table TO nothing;
SET SESSION sql_mode = 'ANSI_QUOTES';
CREATE TABLE "quoted" ("id" INT PRIMARY KEY, "v" VARCHAR(5));
INSERT INTO "quoted" VALUES (1, 'q');
SET SESSION sql_mode = DEFAULT;
USE other_scratch_db;
ALTER TABLE app.users ADD COLUMN from_elsewhere INT DEFAULT 9;
USE app;

CREATE SCHEMA `my.db`;
CREATE TABLE `my.db`.`t.1` (`id``x` INT PRIMARY KEY, `v.w` VARCHAR(5));
INSERT INTO `my.db`.`t.1` VALUES (1, 'dot');
ALTER TABLE `my.db`.`t.1` ADD COLUMN `x y` INT DEFAULT 5;
INSERT INTO `my.db`.`t.1` VALUES (2, 'dot2', 6);

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `legacy` /*!40100 DEFAULT CHARACTER SET latin1 */;
USE `legacy`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8 */;
DROP TABLE IF EXISTS `stock`;
CREATE TABLE `stock` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `label` varchar(30) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=latin1;
/*!40101 SET character_set_client = @saved_cs_client */;
LOCK TABLES `stock` WRITE;
/*!40000 ALTER TABLE `stock` DISABLE KEYS */;
INSERT INTO `stock` VALUES (1,'caf\xe9'),(2,'two');
/*!40000 ALTER TABLE `stock` ENABLE KEYS */;
UNLOCK TABLES;

CREATE DATABASE IF NOT EXISTS `dumped`;
/*!40101 SET NAMES binary*/;
/*!40014 SET FOREIGN_KEY_CHECKS=0*/;
/*!40103 SET TIME_ZONE='+00:00' */;
CREATE TABLE `dumped`.`rows` (
  `id` bigint unsigned NOT NULL,
  `body` text,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO `dumped`.`rows` VALUES (1,'x'),(2,NULL);

CREATE DATABASE IF NOT EXISTS other;
CREATE TABLE other.t (id INT PRIMARY KEY);
INSERT INTO other.t VALUES (1);
DROP DATABASE IF EXISTS other;

CREATE DATABASE shop_01; CREATE DATABASE shop_02;
CREATE TABLE shop_01.orders (id INT PRIMARY KEY, amount INT);
CREATE TABLE shop_02.orders (id INT PRIMARY KEY, amount INT);
INSERT INTO shop_01.orders VALUES (1, 10), (3, 30);
INSERT INTO shop_02.orders VALUES (2, 20), (4, 40);
ALTER TABLE shop_01.orders ADD COLUMN note VARCHAR(10) DEFAULT 'n';
ALTER TABLE shop_02.orders ADD COLUMN note VARCHAR(10) DEFAULT 'n';
INSERT INTO shop_01.orders VALUES (5, 50, 'five');
INSERT INTO shop_02.orders VALUES (6, 60, 'six');
USE shop_01;
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 30;
ALTER DATABASE CHARACTER SET latin1;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_of_ddl_forms_replicates_under_filters_and_routes() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("corpus-upstream")),
        MariaDb::start_with(MariaDbOptions::named("corpus-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream.execute(CORPUS).await.expect("corpus");
    let task = TaskConfig::from_yaml(TASK, "task.yaml").expect("task");
    let rules = task.rules_for(&task.mysql_instances[0]).expect("rules");
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        801,
        first_event(),
        settings(2),
        rules,
        true,
    );
    let status = run.await.unwrap_or_else(|error| panic!("syncer: {error}"));

    for schema in ["app", "my.db", "legacy", "dumped"] {
        assert_equal(&upstream, &downstream, schema).await;
    }
    // Filtered: a database outside the list, a table the list ignores.
    let present = downstream
        .query(
            "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA IN ('other', 'shop_01', 'shop_02') OR TABLE_NAME LIKE 'ignored%'",
        )
        .await
        .expect("tables");
    assert!(
        present.is_empty(),
        "filtered objects downstream: {present:?}"
    );
    // The swap by three renames moved the rows with the names.
    let swapped = downstream
        .query("SELECT id, side FROM app.a ORDER BY id")
        .await
        .expect("a");
    assert_eq!(
        swapped,
        vec![
            vec![Some("1".into()), Some("b".into())],
            vec![Some("2".into()), Some("b".into())],
            vec![Some("3".into()), Some("B".into())],
        ]
    );
    // The shards merged into their routed table, each shard's ALTER applied once.
    let merged = downstream
        .query("SELECT id, amount, note FROM shop.orders ORDER BY id")
        .await
        .expect("merged");
    let expected: Vec<Vec<Option<String>>> = [
        (1, 10, "n"),
        (2, 20, "n"),
        (3, 30, "n"),
        (4, 40, "n"),
        (5, 50, "five"),
        (6, 60, "six"),
    ]
    .iter()
    .map(|(id, amount, note)| {
        vec![
            Some(id.to_string()),
            Some(amount.to_string()),
            Some((*note).to_owned()),
        ]
    })
    .collect();
    assert_eq!(merged, expected);
    assert!(status.ddls_skipped > 0, "{status:?}");
    // The view and the ALTER DATABASE of a routed database went to the routed one, the view's
    // body reading the routed table.
    let view = downstream
        .query("SELECT id FROM shop.big_orders ORDER BY id")
        .await
        .expect("routed view");
    assert_eq!(
        view,
        vec![
            vec![Some("4".to_owned())],
            vec![Some("5".to_owned())],
            vec![Some("6".to_owned())]
        ]
    );
    let charset = downstream
        .query("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'")
        .await
        .expect("charset");
    assert_eq!(charset, vec![vec![Some("latin1".to_owned())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xa_transaction_stops_the_task_before_its_rows() {
    let (upstream, downstream) = tokio::join!(
        MariaDb::start_with(MariaDbOptions::named("xa-upstream")),
        MariaDb::start_with(MariaDbOptions::named("xa-downstream")),
    );
    let upstream = or_skip!(upstream);
    let downstream = or_skip!(downstream);
    upstream
        .execute(
            "CREATE DATABASE app; USE app; CREATE TABLE t (id INT PRIMARY KEY);
             INSERT INTO t VALUES (1);
             XA START 'x1'; INSERT INTO t VALUES (2); XA END 'x1'; XA PREPARE 'x1';
             XA ROLLBACK 'x1';
             INSERT INTO t VALUES (5);",
        )
        .await
        .expect("history");
    let (run, _stop) = syncer(
        &upstream,
        &downstream,
        802,
        first_event(),
        settings(2),
        dm_task::config::InstanceRules::default(),
        true,
    );
    let error = run.await.expect_err("an XA transaction");
    let message = error.to_string();
    assert!(message.contains("XA transaction"), "{message}");
    assert!(message.starts_with("at mysql-bin.000001:"), "{message}");
    // Nothing of the XA transaction reached the downstream.
    let rows = downstream
        .query("SELECT id FROM app.t ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(rows, vec![vec![Some("1".to_owned())]]);
}
