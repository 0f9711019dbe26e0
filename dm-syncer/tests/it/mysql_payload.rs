//! MySQL 8 compressed transactions (`binlog_transaction_compression=ON`: each transaction one
//! TRANSACTION_PAYLOAD event) through the syncer, into a live MariaDB downstream. The upstream is
//! dm-testkit's scripted MySQL 8 source serving real MySQL binlogs from the shared fixtures
//! byte for byte (no MySQL server can run here):
//!
//! - `my80_32-trx-compression`: one payload inserting `test.tb1 (1)`;
//! - `my80_28-trx-compression-update`: one payload updating an 11-column row of `demo.movies`
//!   (genres `Western` to `Western|Action`);
//! - `my80_31-payload-json-gtid`: a DDL (`CREATE TABLE a.b`), then a payload inserting `a.b (1)`
//!   and a payload with an update and an insert of `a.test_table_3` (JSON, DATE, TIMESTAMP,
//!   ENUM, SET, BINARY, TEXT columns), with real GTIDs;
//! - `my51_30-incident`: an INCIDENT event (the upstream lost changes), where the syncer stops
//!   with an error naming its position.
//!
//! The fixtures hold no CREATE TABLE for the tables of their rows: the tables are created
//! downstream first (column types from the table maps, names chosen here, and the update's
//! before image inserted), and every value of every row change is checked downstream. The
//! expected values are the fixtures' row images, as dm-binlog decodes them (the statements are
//! in the ROWS_QUERY events of `my80_31`). A restart after the first payload, and restarts from
//! a global checkpoint older than what the worker committed (the crash window, also between two
//! rows events of one payload), apply nothing twice.

use std::time::Duration;

use dm_binlog::RemoteOptions;
use dm_core::{BinlogPosition, Flavor, Location};
use dm_sink::MySqlSinkOptions;
use dm_syncer::{SyncerError, SyncerSettings, SyncerStatus, run};
use dm_task::config::InstanceRules;
use dm_testkit::{
    FakeMySqlScript, FakeMySqlSource, MariaDb, MariaDbOptions, or_skip, shared_fixture,
};

/// The GTID source of `my80_31-payload-json-gtid`.
const MY80_31_UUID: &str = "76f3e7be-6720-11ed-9cad-0242ac110002";

fn settings(workers: usize, batch: usize) -> SyncerSettings {
    SyncerSettings {
        workers,
        batch,
        queue_size: 64,
        checkpoint_interval: Duration::from_millis(100),
        flavor: Flavor::MySql,
        ..SyncerSettings::new("test", "mysql-01")
    }
}

/// A fake MySQL 8 source serving `fixture` as the binlog file `file_name`, keeping the first
/// `keep` events when given.
async fn fake_source(fixture: &str, file_name: &str, keep: Option<usize>) -> FakeMySqlSource {
    let directory = shared_fixture("mysql-binlog").expect("fixtures checked by the caller");
    let bytes = std::fs::read(directory.join(fixture)).expect("fixture");
    let mut script = FakeMySqlScript::from_binlog_file(file_name, &bytes, "pw");
    if let Some(keep) = keep {
        script.events.truncate(keep);
    }
    FakeMySqlSource::start(script).await.expect("fake source")
}

/// Runs the syncer from `source` (from `file_name:4` unless a checkpoint says otherwise) to the
/// end of its binlog.
async fn sync(
    source: &FakeMySqlSource,
    file_name: &str,
    downstream: &MariaDb,
    settings: SyncerSettings,
) -> Result<SyncerStatus, SyncerError> {
    let mut upstream = RemoteOptions::new("127.0.0.1", source.port(), "repl", "pw", 501);
    upstream.stop_at_end = true;
    upstream.heartbeat_period = Duration::from_millis(500);
    let start =
        Location::from_position(BinlogPosition::parse(&format!("{file_name}:4")).expect("start"));
    let sink = MySqlSinkOptions::new("127.0.0.1", downstream.port(), "root", "");
    let (_stop_sender, stop) = tokio::sync::watch::channel(false);
    let (progress, _) = tokio::sync::watch::channel(SyncerStatus::default());
    tokio::time::timeout(
        Duration::from_secs(60),
        run(
            settings,
            upstream,
            start,
            sink,
            InstanceRules::default(),
            stop,
            progress,
        ),
    )
    .await
    .expect("the syncer ends at the end of the binlog")
}

async fn rows(downstream: &MariaDb, sql: &str) -> Vec<Vec<String>> {
    downstream
        .query(sql)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|value| value.unwrap_or_else(|| "NULL".to_owned()))
                .collect()
        })
        .collect()
}

fn texts(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_inside_a_compressed_transaction_is_applied() {
    or_skip!(shared_fixture("mysql-binlog"));
    let downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("payload-insert")).await);
    downstream
        .execute("CREATE DATABASE test; CREATE TABLE test.tb1 (id INT)")
        .await
        .expect("downstream table");
    let source = fake_source("my80_32-trx-compression.binlog", "binlog.000042", None).await;
    let status = sync(&source, "binlog.000042", &downstream, settings(4, 50))
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    assert_eq!(
        rows(&downstream, "SELECT id FROM test.tb1").await,
        vec![texts(&["1"])]
    );
    assert_eq!(status.rows_dispatched, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_inside_a_compressed_transaction_is_applied_with_every_column() {
    or_skip!(shared_fixture("mysql-binlog"));
    let downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("payload-update")).await);
    // The table map: INT, VARCHAR(1024 bytes) x 3 around an INT, VARCHAR(4096), VARCHAR(2048),
    // VARCHAR(1024) x 4, all NOT NULL, utf8mb4.
    let actors = "Claudia Cardinale|Charles Bronson|Henry Fonda|Gabriele Ferzetti|Frank Wolff|Al Mulock|Jason Robards|Woody Strode|Jack Elam|Lionel Stander|Paolo Stoppa|Keenan Wynn|Aldo Sambrell";
    let writers = "Sergio Leone|Sergio Donati|Dario Argento|Bernardo Bertolucci";
    downstream
        .execute(&format!(
            "CREATE DATABASE demo;
             CREATE TABLE demo.movies (
               id INT NOT NULL PRIMARY KEY, title VARCHAR(256) NOT NULL, year INT NOT NULL,
               country VARCHAR(256) NOT NULL, genres VARCHAR(256) NOT NULL,
               actors VARCHAR(1024) NOT NULL, directors VARCHAR(512) NOT NULL,
               composers VARCHAR(256) NOT NULL, screenwriters VARCHAR(256) NOT NULL,
               cinematographer VARCHAR(256) NOT NULL, production VARCHAR(256) NOT NULL
             ) CHARACTER SET utf8mb4;
             INSERT INTO demo.movies VALUES (1, 'Once Upon a Time in the West', 1968, 'Italy',
               'Western', '{actors}', 'Sergio Leone', 'Ennio Morricone', '{writers}',
               'Tonino Delli Colli', 'Paramount Pictures');
             INSERT INTO demo.movies VALUES (2, 'Untouched', 2000, 'Nowhere', 'Drama', '', '', '',
               '', '', '');"
        ))
        .await
        .expect("downstream table with the before image");
    let source = fake_source(
        "my80_28-trx-compression-update.binlog",
        "mysql-bin.000004",
        None,
    )
    .await;
    let status = sync(&source, "mysql-bin.000004", &downstream, settings(4, 50))
        .await
        .unwrap_or_else(|error| panic!("syncer: {error}"));
    assert_eq!(
        rows(&downstream, "SELECT * FROM demo.movies ORDER BY id").await,
        vec![
            texts(&[
                "1",
                "Once Upon a Time in the West",
                "1968",
                "Italy",
                "Western|Action",
                actors,
                "Sergio Leone",
                "Ennio Morricone",
                writers,
                "Tonino Delli Colli",
                "Paramount Pictures",
            ]),
            texts(&[
                "2",
                "Untouched",
                "2000",
                "Nowhere",
                "Drama",
                "",
                "",
                "",
                "",
                "",
                ""
            ]),
        ]
    );
    assert_eq!(status.rows_dispatched, 1);
}

/// `a.test_table_3` as the table map of `my80_31` describes it (names from its statements where
/// they say them), with the before image of the row its update changes.
const TEST_TABLE_3: &str = "CREATE DATABASE a;
CREATE TABLE a.test_table_3 (
  product_id INT NOT NULL PRIMARY KEY,
  product_item VARCHAR(255) NOT NULL,
  made_on DATE NULL,
  quantity INT NULL,
  description TEXT NULL,
  made_at TIMESTAMP NULL DEFAULT NULL,
  enum_field ENUM('x-small', 'small', 'medium', 'large', 'x-large') NULL,
  set_field SET('a', 'b', 'c', 'd') NULL,
  code BINARY(3) NULL,
  attributes JSON NULL,
  product_item_2 VARCHAR(255) NOT NULL,
  made_on_2 DATE NOT NULL,
  made_on_3 DATE NULL,
  quantity_3 INT NULL,
  description_3 TEXT NULL,
  made_at_3 TIMESTAMP NULL DEFAULT NULL,
  made_on_4 DATE NULL,
  quantity_4 INT NULL,
  description_4 TEXT NULL,
  made_at_4 TIMESTAMP NULL DEFAULT NULL
) CHARACTER SET utf8mb3;
INSERT INTO a.test_table_3 VALUES (55555, 'product_item_value_2', '2022-11-20', 111,
  'description_1', FROM_UNIXTIME(1668951630), 'large', 'd', 'b3\\0', '{\"c\": 1}',
  'product_item_2_value', '2022-11-20', '2022-11-20', 2222, 'description_3_value',
  FROM_UNIXTIME(1668951630), '2022-11-20', 222, 'description_4_value',
  FROM_UNIXTIME(1668951630));";

/// Every column of `a.test_table_3` as text, timestamps as unix seconds (whatever the session
/// time zone), the binary as hex.
const SELECT_TEST_TABLE_3: &str = "SELECT product_id, product_item, made_on, quantity, description,
  UNIX_TIMESTAMP(made_at), enum_field, set_field, HEX(code), attributes, product_item_2, made_on_2,
  made_on_3, quantity_3, description_3, UNIX_TIMESTAMP(made_at_3), made_on_4, quantity_4,
  description_4, UNIX_TIMESTAMP(made_at_4)
  FROM a.test_table_3 ORDER BY product_id";

fn test_table_3_row(id: &str, seconds: &str, set: &str, item_2: &str) -> Vec<String> {
    texts(&[
        id,
        "product_item_value_2",
        "2022-11-20",
        "111",
        "description_1",
        seconds,
        "large",
        set,
        "623300",
        "{\"c\": 1}",
        item_2,
        "2022-11-20",
        "2022-11-20",
        "2222",
        "description_3_value",
        seconds,
        "2022-11-20",
        "222",
        "description_4_value",
        seconds,
    ])
}

/// The rows of `my80_31` once all of it is applied.
async fn assert_my80_31_applied(downstream: &MariaDb) {
    assert_eq!(
        rows(downstream, "SELECT id FROM a.b").await,
        vec![texts(&["1"])],
        "the first payload's insert, once"
    );
    assert_eq!(
        rows(downstream, SELECT_TEST_TABLE_3).await,
        vec![
            // Inserted by the second payload.
            test_table_3_row("6666", "1668952412", "d", "product_item_2_value"),
            // Updated by it: enum_field='large', set_field='c', product_item_2='product_3_value'.
            test_table_3_row("55555", "1668951630", "c", "product_3_value"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_compressed_transactions_after_a_ddl_are_applied_and_a_restart_after_the_first_repeats_nothing()
 {
    or_skip!(shared_fixture("mysql-binlog"));
    let downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("payload-restart")).await);
    downstream
        .execute(TEST_TABLE_3)
        .await
        .expect("downstream table");
    let fixture = "my80_31-payload-json-gtid.binlog";
    let file = "mysql-bin.000057";

    // The binlog up to the end of the first payload: FDE, PREVIOUS_GTIDS, GTID, CREATE TABLE,
    // GTID, TRANSACTION_PAYLOAD (insert into a.b).
    let first = fake_source(fixture, file, Some(6)).await;
    let status = sync(&first, file, &downstream, settings(4, 50))
        .await
        .unwrap_or_else(|error| panic!("first run: {error}"));
    assert_eq!(status.rows_dispatched, 1);
    assert_eq!(
        rows(&downstream, "SELECT id FROM a.b").await,
        vec![texts(&["1"])]
    );
    assert_eq!(
        rows(&downstream, SELECT_TEST_TABLE_3).await,
        vec![test_table_3_row(
            "55555",
            "1668951630",
            "d",
            "product_item_2_value"
        )],
        "the second payload is not read yet"
    );
    let checkpoint = rows(
        &downstream,
        "SELECT binlog_name, binlog_pos, binlog_gtid FROM dm_meta.test_syncer_checkpoint WHERE is_global = 1",
    )
    .await;
    assert_eq!(
        checkpoint,
        vec![texts(&[file, "651", &format!("{MY80_31_UUID}:1-12")])],
        "the global checkpoint is the end of the first payload"
    );

    // The whole binlog: the restart resumes after GTID 12 and applies the second payload only.
    let whole = fake_source(fixture, file, None).await;
    let status = sync(&whole, file, &downstream, settings(4, 50))
        .await
        .unwrap_or_else(|error| panic!("second run: {error}"));
    assert_eq!(status.rows_dispatched, 2, "{status:?}");
    assert_my80_31_applied(&downstream).await;
    let dumps: Vec<Vec<u8>> = whole
        .commands()
        .into_iter()
        .filter(|command| command[0] == 0x1e)
        .collect();
    assert_eq!(dumps.len(), 1, "one GTID dump");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_an_older_global_checkpoint_skips_what_the_worker_committed_inside_a_payload()
 {
    or_skip!(shared_fixture("mysql-binlog"));
    let downstream =
        or_skip!(MariaDb::start_with(MariaDbOptions::named("payload-crash-window")).await);
    downstream
        .execute(TEST_TABLE_3)
        .await
        .expect("downstream table");
    let fixture = "my80_31-payload-json-gtid.binlog";
    let file = "mysql-bin.000057";
    let source = fake_source(fixture, file, None).await;
    // One worker committing one change per transaction: its checkpoint names each change.
    let status = sync(&source, file, &downstream, settings(1, 1))
        .await
        .unwrap_or_else(|error| panic!("first run: {error}"));
    assert_eq!(status.rows_dispatched, 3);
    assert_my80_31_applied(&downstream).await;
    // The worker's last change: the insert, event 6 of the second payload (BEGIN, ROWS_QUERY,
    // TABLE_MAP, UPDATE_ROWS, ROWS_QUERY, TABLE_MAP, WRITE_ROWS, XID), row 0.
    let worker = rows(
        &downstream,
        "SELECT binlog_name, binlog_pos, binlog_gtid, row_index FROM dm_meta.test_worker_checkpoint",
    )
    .await;
    assert_eq!(
        worker,
        vec![texts(&[
            file,
            "730",
            &format!("{MY80_31_UUID}:1-12"),
            &(6u64 << 32).to_string()
        ])]
    );

    // A crash after the worker committed the whole second payload but before the global
    // checkpoint passed it: the global checkpoint is the end of the first payload.
    let rewind_global = format!(
        "UPDATE dm_meta.test_syncer_checkpoint SET binlog_pos = 651, binlog_gtid = '{MY80_31_UUID}:1-12' WHERE is_global = 1"
    );
    downstream.execute(&rewind_global).await.expect("rewind");
    let status = sync(&source, file, &downstream, settings(1, 1))
        .await
        .unwrap_or_else(|error| panic!("restart after the payload: {error}"));
    assert_eq!(
        (status.rows_already_applied, status.rows_dispatched),
        (2, 0),
        "{status:?}"
    );
    assert_my80_31_applied(&downstream).await;

    // A crash between the payload's two rows events: the update (event 3) committed, the
    // insert (event 6) not.
    downstream
        .execute(&format!(
            "{rewind_global};
             UPDATE dm_meta.test_worker_checkpoint SET row_index = {};
             DELETE FROM a.test_table_3 WHERE product_id = 6666",
            3u64 << 32
        ))
        .await
        .expect("the state a crash leaves");
    let status = sync(&source, file, &downstream, settings(1, 1))
        .await
        .unwrap_or_else(|error| panic!("restart inside the payload: {error}"));
    assert_eq!(
        (status.rows_already_applied, status.rows_dispatched),
        (1, 1),
        "{status:?}"
    );
    assert_my80_31_applied(&downstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_stops_the_syncer_with_its_position() {
    or_skip!(shared_fixture("mysql-binlog"));
    let downstream = or_skip!(MariaDb::start_with(MariaDbOptions::named("payload-incident")).await);
    // MySQL 5.1: no checksums, an INCIDENT (LOST_EVENTS) at 106.
    let source = fake_source("my51_30-incident.binlog", "master-bin.000002", None).await;
    let error = sync(&source, "master-bin.000002", &downstream, settings(2, 50))
        .await
        .expect_err("an incident stops the syncer");
    assert!(
        matches!(&error, SyncerError::Unsupported { position, .. } if position == "master-bin.000002:106"),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("INCIDENT") || text.contains("incident"),
        "{text}"
    );
}
