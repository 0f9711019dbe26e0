//! `load_table_schema` on a live MariaDB: columns in order with their types, nullability,
//! charsets and generated flags; unique keys primary first, prefix lengths kept, non-unique
//! indexes left out; a missing table is `None`; a server that went away is a transient error.

use dm_core::{ClassifiedError, ColumnType, ErrorClass, KeyKind, TableRef};
use dm_mysql::{MySqlError, load_table_schema};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

#[tokio::test]
async fn a_table_reads_as_its_schema_and_a_missing_one_as_none() {
    let mut server = or_skip!(MariaDb::start_with(MariaDbOptions::named("catalog")).await);
    server
        .execute(
            "CREATE DATABASE `d``b`; CREATE TABLE `d``b`.items (\
             code VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL, \
             id INT UNSIGNED NOT NULL, \
             note TEXT, \
             doubled BIGINT AS (id * 2) VIRTUAL, \
             tripled BIGINT AS (id * 3) STORED, \
             created TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), \
             PRIMARY KEY (id), UNIQUE KEY by_code (code(8), id), KEY by_note (note(10)))",
        )
        .await
        .expect("create");
    let mut connection = server.connect().await.expect("connect");

    let schema = load_table_schema(&mut connection, &TableRef::new("d`b", "items"))
        .await
        .expect("read")
        .expect("the table exists");
    let columns: Vec<_> = schema
        .columns()
        .iter()
        .map(|column| (column.name.as_str(), column.nullable, column.generated))
        .collect();
    assert_eq!(
        columns,
        [
            ("code", false, false),
            ("id", false, false),
            ("note", true, false),
            ("doubled", true, true),
            ("tripled", true, true),
            ("created", false, false),
        ]
    );
    let code = &schema.columns()[0];
    assert_eq!(code.charset.as_deref(), Some("latin1"));
    assert_eq!(code.collation.as_deref(), Some("latin1_bin"));
    assert!(
        matches!(
            schema.columns()[1].column_type,
            ColumnType::Integer { unsigned: true, .. }
        ),
        "{:?}",
        schema.columns()[1].column_type
    );
    let keys: Vec<_> = schema
        .keys()
        .iter()
        .map(|key| {
            let parts: Vec<_> = key
                .columns
                .iter()
                .map(|part| (part.column, part.prefix_length))
                .collect();
            (key.kind, key.name.as_str(), parts)
        })
        .collect();
    assert_eq!(
        keys,
        [
            (KeyKind::Primary, "PRIMARY", vec![(1, None)]),
            (KeyKind::Unique, "by_code", vec![(0, Some(8)), (1, None)]),
        ]
    );

    let missing = load_table_schema(&mut connection, &TableRef::new("d`b", "nothing"))
        .await
        .expect("read");
    assert!(missing.is_none(), "{missing:?}");

    server.stop().await.expect("stop");
    let error = load_table_schema(&mut connection, &TableRef::new("d`b", "items"))
        .await
        .expect_err("the server is gone");
    assert!(matches!(error, MySqlError::Client { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");
    assert!(
        error
            .to_string()
            .starts_with("reading the structure of `d``b`.`items`: "),
        "{error}"
    );
}
