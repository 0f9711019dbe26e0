//! The schema tracker against a live MariaDB: every DDL of a realistic sequence is executed on
//! the server and replayed by the tracker; after each one, every tracked table equals what the
//! server reports in information_schema (columns in order, types, signedness, nullability,
//! character sets, generated columns, unique keys). Statements sqlparser cannot parse (PARTITION
//! clauses, MariaDB's `ADD COLUMN (a, b)`) or whose columns come from a query are reloaded from
//! the server, as the syncer reloads them from the downstream.

use dm_core::{ColumnType, TableRef, TableSchema};
use dm_sink::load_table_schema;
use dm_syncer::tracker::{SchemaTracker, TrackOutcome};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

const DDL: &[&str] = &[
    "CREATE TABLE t1 (id INT PRIMARY KEY, a VARCHAR(20) CHARACTER SET latin1, b INT UNSIGNED NOT NULL, c DECIMAL(10,2), UNIQUE KEY uk_b (b)) DEFAULT CHARSET=utf8mb4",
    "ALTER TABLE t1 ADD COLUMN d DATETIME(3) AFTER a",
    "ALTER TABLE t1 ADD COLUMN e TINYINT FIRST",
    "ALTER TABLE t1 ADD COLUMN note TEXT",
    "ALTER TABLE t1 MODIFY COLUMN a VARCHAR(50)",
    "ALTER TABLE t1 CHANGE COLUMN c cc DECIMAL(12,3) NOT NULL",
    "ALTER TABLE t1 RENAME COLUMN cc TO c2",
    "ALTER TABLE t1 DROP COLUMN e",
    "ALTER TABLE t1 DROP INDEX uk_b",
    "ALTER TABLE t1 ADD UNIQUE KEY uk_ab (a, b)",
    "CREATE UNIQUE INDEX uk_d ON t1 (d)",
    "DROP INDEX uk_d ON t1",
    "ALTER TABLE t1 DROP PRIMARY KEY, ADD PRIMARY KEY (id, b)",
    "ALTER TABLE t1 ADD UNIQUE (note(10))",
    "CREATE TABLE t2 LIKE t1",
    "RENAME TABLE t2 TO t3",
    "ALTER TABLE t3 RENAME TO t4",
    "CREATE TABLE t5 (x INT, y INT AS (x + 1) VIRTUAL, j JSON, u UUID, ip INET6, g GEOMETRY, e ENUM('a','b'), s SET('x','y'), bit8 BIT(8), y2 YEAR, tm TIME(2), bl LONGBLOB, tt TINYTEXT, f FLOAT, d DOUBLE, big BIGINT UNSIGNED, sm SMALLINT, bo BOOLEAN, bn BINARY(16), vb VARBINARY(8), ts TIMESTAMP(6) NULL)",
    "CREATE TABLE IF NOT EXISTS t5 (other INT)",
    "CREATE TABLE t6 (id INT NOT NULL, v INT, PRIMARY KEY (id)) PARTITION BY HASH(id) PARTITIONS 4",
    "ALTER TABLE t6 ADD PARTITION PARTITIONS 2",
    "TRUNCATE TABLE t1",
    "DROP TABLE t4, t5",
    "DROP TABLE IF EXISTS t4",
    "CREATE TABLE t7 AS SELECT id, a FROM t1",
    "ALTER TABLE t1 ADD COLUMN (f1 INT, f2 VARCHAR(5))",
    "ALTER TABLE t7 ADD COLUMN IF NOT EXISTS id INT",
    "ALTER TABLE t7 ADD COLUMN IF NOT EXISTS z INT NOT NULL DEFAULT 3",
];

/// What a server and the tracker must agree on. MariaDB's JSON is LONGTEXT underneath: the
/// server reports it as text, the tracker keeps it as JSON.
fn normalized(schema: &TableSchema) -> String {
    let mut text = String::new();
    for column in schema.columns() {
        let column_type = match &column.column_type {
            ColumnType::Json => ColumnType::Text {
                max_bytes: 4_294_967_295,
            },
            other => other.clone(),
        };
        let charset = if column_type.is_text() {
            column.charset.clone().unwrap_or_default()
        } else {
            String::new()
        };
        text.push_str(&format!(
            "{} {:?} null={} gen={} {}\n",
            column.name, column_type, column.nullable, column.generated, charset
        ));
    }
    let mut keys: Vec<String> = schema
        .keys()
        .iter()
        .map(|key| {
            let parts: Vec<String> = key
                .columns
                .iter()
                .map(|part| {
                    format!(
                        "{}:{:?}",
                        schema.columns()[part.column].name,
                        part.prefix_length
                    )
                })
                .collect();
            format!(
                "{:?} {} ({})",
                key.kind,
                key.name.to_lowercase(),
                parts.join(",")
            )
        })
        .collect();
    keys.sort();
    text.push_str(&keys.join("\n"));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_agrees_with_the_server_after_every_ddl() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("tracker")).await);
    server.execute("CREATE DATABASE d").await.expect("database");
    let mut connection = server.connect().await.expect("connect");
    let mut tracker = SchemaTracker::new(true);
    // Seeded as the syncer seeds it: the schema's default charset from the server.
    let charset = server
        .query("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'd'")
        .await
        .expect("schemata")[0][0]
        .clone()
        .expect("charset");
    tracker.set_schema_charset("d", &charset);
    let mut reloaded = 0;
    for ddl in DDL {
        server
            .execute(&format!("USE d; {ddl}"))
            .await
            .unwrap_or_else(|error| panic!("{ddl}: {error}"));
        let outcome = tracker
            .apply_ddl("d", ddl)
            .unwrap_or_else(|error| panic!("{error}"));
        if let TrackOutcome::Reload(tables) = &outcome {
            reloaded += 1;
            for table in tables {
                match load_table_schema(&mut connection, table)
                    .await
                    .expect("introspect")
                {
                    Some(schema) => tracker.set(schema),
                    None => tracker.remove(table),
                }
            }
        }
        // Every table on the server, compared with the tracker.
        let names: Vec<String> = server
            .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'd' ORDER BY 1")
            .await
            .expect("tables")
            .into_iter()
            .filter_map(|row| row[0].clone())
            .collect();
        let mut tracked: Vec<String> = tracker
            .tables()
            .map(|schema| schema.table().table.clone())
            .collect();
        tracked.sort();
        assert_eq!(tracked, names, "after `{ddl}` ({outcome:?})");
        for name in &names {
            let table = TableRef::new("d", name.as_str());
            let on_server = load_table_schema(&mut connection, &table)
                .await
                .expect("introspect")
                .expect("exists");
            let in_tracker = tracker.get(&table).expect("tracked");
            assert_eq!(
                normalized(&in_tracker),
                normalized(&on_server),
                "table {name} after `{ddl}` ({outcome:?})"
            );
        }
    }
    assert!(
        (3..=8).contains(&reloaded),
        "{reloaded} statements needed a reload: only the unparsable and query-defined ones should"
    );
}
