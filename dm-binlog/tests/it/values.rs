//! Row values decoded from a live MariaDB binlog equal the values written: every integer width
//! signed and unsigned at its limits, FLOAT/DOUBLE, DECIMAL up to (65,30), DATE with the zero
//! date, DATETIME/TIMESTAMP/TIME with fractions (negative fractional TIME too), YEAR 0, CHAR,
//! VARCHAR over 255, TEXT, latin1 text, BINARY/VARBINARY/BLOB, ENUM, SET, BIT(1) and BIT(64), NULLs;
//! inserts, an update (before and after) and a delete.

use dm_binlog::{BinlogFileReader, EventData, Read, decode_rows};
use dm_core::{
    ColumnDefinition, ColumnType, Date, DateTime, Decimal, IntegerWidth, KeyColumn, KeyDefinition,
    KeyKind, Row, TableRef, TableSchema, Time, Timestamp, Value,
};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

fn integer(name: &str, width: IntegerWidth, unsigned: bool) -> ColumnDefinition {
    ColumnDefinition::new(name, ColumnType::Integer { width, unsigned }, true)
}

fn text(name: &str, column_type: ColumnType, charset: &str) -> ColumnDefinition {
    let mut column = ColumnDefinition::new(name, column_type, true);
    column.charset = Some(charset.to_owned());
    column
}

/// The schema of `d.t` as the schema tracker will know it.
pub(crate) fn schema() -> TableSchema {
    use IntegerWidth::*;
    let plain =
        |name: &str, column_type: ColumnType| ColumnDefinition::new(name, column_type, true);
    let columns = vec![
        ColumnDefinition::new(
            "id",
            ColumnType::Integer {
                width: Int,
                unsigned: false,
            },
            false,
        ),
        integer("ti", Tiny, false),
        integer("tiu", Tiny, true),
        integer("si", Small, false),
        integer("siu", Small, true),
        integer("mi", Medium, false),
        integer("miu", Medium, true),
        integer("i", Int, false),
        integer("iu", Int, true),
        integer("bi", Big, false),
        integer("biu", Big, true),
        plain("f", ColumnType::Float),
        plain("dbl", ColumnType::Double),
        plain(
            "dec_wide",
            ColumnType::Decimal {
                precision: 65,
                scale: 30,
                unsigned: false,
            },
        ),
        plain(
            "dec_money",
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
                unsigned: false,
            },
        ),
        plain(
            "dec_whole",
            ColumnType::Decimal {
                precision: 5,
                scale: 0,
                unsigned: false,
            },
        ),
        plain("dt", ColumnType::Date),
        plain(
            "dtm",
            ColumnType::DateTime {
                fractional_digits: 6,
            },
        ),
        plain(
            "dtm0",
            ColumnType::DateTime {
                fractional_digits: 0,
            },
        ),
        plain(
            "ts",
            ColumnType::Timestamp {
                fractional_digits: 3,
            },
        ),
        plain(
            "tm2",
            ColumnType::Time {
                fractional_digits: 2,
            },
        ),
        plain(
            "tm6",
            ColumnType::Time {
                fractional_digits: 6,
            },
        ),
        plain(
            "tm0",
            ColumnType::Time {
                fractional_digits: 0,
            },
        ),
        plain("y", ColumnType::Year),
        text("c", ColumnType::Char { length: 10 }, "utf8mb4"),
        text("vc", ColumnType::VarChar { length: 300 }, "utf8mb4"),
        text("txt", ColumnType::Text { max_bytes: 65535 }, "utf8mb4"),
        text("lat", ColumnType::VarChar { length: 20 }, "latin1"),
        plain("bn", ColumnType::Binary { length: 4 }),
        plain("vb", ColumnType::VarBinary { length: 10 }),
        plain("bl", ColumnType::Blob { max_bytes: 65535 }),
        plain(
            "e",
            ColumnType::Enum {
                members: vec!["a".into(), "b".into(), "c".into()],
            },
        ),
        plain(
            "s",
            ColumnType::Set {
                members: vec!["x".into(), "y".into(), "z".into()],
            },
        ),
        plain("b1", ColumnType::Bit { width: 1 }),
        plain("b64", ColumnType::Bit { width: 64 }),
    ];
    TableSchema::new(
        TableRef::new("d", "t"),
        columns,
        vec![KeyDefinition {
            name: "PRIMARY".into(),
            kind: KeyKind::Primary,
            columns: vec![KeyColumn {
                column: 0,
                prefix_length: None,
            }],
        }],
    )
    .expect("schema")
}

pub(crate) const CREATE: &str = "CREATE DATABASE d;
CREATE TABLE d.t (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, dbl DOUBLE,
  dec_wide DECIMAL(65,30), dec_money DECIMAL(10,2), dec_whole DECIMAL(5,0),
  dt DATE, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL DEFAULT NULL,
  tm2 TIME(2), tm6 TIME(6), tm0 TIME, y YEAR,
  c CHAR(10), vc VARCHAR(300), txt TEXT, lat VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('a','b','c'), s SET('x','y','z'), b1 BIT(1), b64 BIT(64)
) DEFAULT CHARSET=utf8mb4;";

pub(crate) const WRITES: &str = "SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00';
INSERT INTO d.t VALUES (1,
  -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -3.25, -2.5e-300,
  '-99999999999999999999999999999999999.999999999999999999999999999999', '-12345678.90', '-99999',
  '0000-00-00', '1000-01-01 00:00:00.000001', '2024-02-29 23:59:59', '1970-01-01 00:00:01.000',
  '-838:59:59.99', '-00:00:00.500000', '-12:34:56', 0,
  '', '', '', 'café',
  X'00000000', X'', X'', 'a', '', b'0', b'0');
INSERT INTO d.t VALUES (2,
  127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
  1.5, 1e308,
  '99999999999999999999999999999999999.999999999999999999999999999999', '0.01', '0',
  '9999-12-31', '9999-12-31 23:59:59.999999', '2000-01-01 00:00:00', '2038-01-19 03:14:07.999',
  '838:59:59.99', '838:59:59.000001', '00:00:00', 2155,
  'abc', REPEAT('é', 300), '日本語 ✓', 'ÿ€',
  X'DEADBEEF', X'00FF', X'0102030405', 'c', 'x,y,z', b'1', b'1111111111111111111111111111111111111111111111111111111111111111');
INSERT INTO d.t (id) VALUES (3);
UPDATE d.t SET i = 7, tm2 = '-00:00:00.01' WHERE id = 3;
DELETE FROM d.t WHERE id = 1;
FLUSH BINARY LOGS;";

fn decimal(text: &str) -> Value {
    Value::Decimal(Decimal::parse(text).expect("decimal"))
}

fn date(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn datetime(date: Date, hour: u8, minute: u8, second: u8, microsecond: u32) -> Value {
    Value::DateTime(DateTime {
        date,
        hour,
        minute,
        second,
        microsecond,
    })
}

fn time(negative: bool, hours: u16, minutes: u8, seconds: u8, microsecond: u32) -> Value {
    Value::Time(Time {
        negative,
        hours,
        minutes,
        seconds,
        microsecond,
    })
}

fn expected_rows() -> (Row, Row, Row) {
    let text = |text: &str| Value::Text(text.to_owned());
    let bytes = |bytes: &[u8]| Value::Bytes(bytes.to_vec());
    let first = Row(vec![
        Value::Int(1),
        Value::Int(-128),
        Value::UInt(0),
        Value::Int(-32768),
        Value::UInt(0),
        Value::Int(-8_388_608),
        Value::UInt(0),
        Value::Int(-2_147_483_648),
        Value::UInt(0),
        Value::Int(i64::MIN),
        Value::UInt(0),
        Value::Float(-3.25),
        Value::Double(-2.5e-300),
        decimal("-99999999999999999999999999999999999.999999999999999999999999999999"),
        decimal("-12345678.90"),
        decimal("-99999"),
        Value::Date(date(0, 0, 0)),
        datetime(date(1000, 1, 1), 0, 0, 0, 1),
        datetime(date(2024, 2, 29), 23, 59, 59, 0),
        Value::Timestamp(Timestamp {
            seconds: 1,
            microsecond: 0,
        }),
        time(true, 838, 59, 59, 990_000),
        time(true, 0, 0, 0, 500_000),
        time(true, 12, 34, 56, 0),
        Value::Year(0),
        text(""),
        text(""),
        text(""),
        text("café"),
        bytes(&[0, 0, 0, 0]),
        bytes(&[]),
        bytes(&[]),
        Value::Enum(1),
        Value::Set(0),
        Value::Bit(0),
        Value::Bit(0),
    ]);
    let second = Row(vec![
        Value::Int(2),
        Value::Int(127),
        Value::UInt(255),
        Value::Int(32767),
        Value::UInt(65535),
        Value::Int(8_388_607),
        Value::UInt(16_777_215),
        Value::Int(2_147_483_647),
        Value::UInt(4_294_967_295),
        Value::Int(i64::MAX),
        Value::UInt(u64::MAX),
        Value::Float(1.5),
        Value::Double(1e308),
        decimal("99999999999999999999999999999999999.999999999999999999999999999999"),
        decimal("0.01"),
        decimal("0"),
        Value::Date(date(9999, 12, 31)),
        datetime(date(9999, 12, 31), 23, 59, 59, 999_999),
        datetime(date(2000, 1, 1), 0, 0, 0, 0),
        Value::Timestamp(Timestamp {
            seconds: 2_147_483_647,
            microsecond: 999_000,
        }),
        time(false, 838, 59, 59, 990_000),
        time(false, 838, 59, 59, 1),
        time(false, 0, 0, 0, 0),
        Value::Year(2155),
        text("abc"),
        text(&"é".repeat(300)),
        text("日本語 ✓"),
        text("ÿ€"),
        bytes(&[0xde, 0xad, 0xbe, 0xef]),
        bytes(&[0x00, 0xff]),
        bytes(&[1, 2, 3, 4, 5]),
        Value::Enum(3),
        Value::Set(0b111),
        Value::Bit(1),
        Value::Bit(u64::MAX),
    ]);
    let mut nulls = vec![Value::Null; 35];
    nulls[0] = Value::Int(3);
    (first, second, Row(nulls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_decodes_to_the_value_written() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("values")).await);
    server.execute(CREATE).await.expect("create");
    server.execute(WRITES).await.expect("write");
    let schema = schema();

    let mut reader =
        BinlogFileReader::open(server.directory().join("data/mysql-bin.000001")).expect("open");
    let mut map = None;
    let mut decoded = Vec::new();
    loop {
        match reader.read_next().expect("decode") {
            Read::Event { event, .. } => match event.data {
                EventData::TableMap(table_map) if table_map.table == "t" => map = Some(table_map),
                EventData::Rows(rows) => {
                    let table_map = map.as_ref().expect("a table map before rows");
                    decoded.extend(decode_rows(&rows, table_map, &schema).expect("rows decode"));
                }
                _ => {}
            },
            Read::End => break,
            Read::Partial { .. } => panic!("partial event in a closed binlog"),
        }
    }
    let (first, second, nulls) = expected_rows();
    let mut updated = nulls.clone();
    updated.0[7] = Value::Int(7);
    updated.0[20] = time(true, 0, 0, 0, 10_000);
    let expected = vec![
        (None, Some(first.clone())),
        (None, Some(second)),
        (None, Some(nulls.clone())),
        (Some(nulls), Some(updated)),
        (Some(first), None),
    ];
    assert_eq!(decoded.len(), expected.len());
    for (index, (actual, expected)) in decoded.iter().zip(&expected).enumerate() {
        for (image, (actual, expected)) in [(&actual.0, &expected.0), (&actual.1, &expected.1)]
            .into_iter()
            .enumerate()
        {
            match (actual, expected) {
                (Some(actual), Some(expected)) => {
                    for (column, (value, wanted)) in actual.0.iter().zip(&expected.0).enumerate() {
                        assert_eq!(
                            value,
                            wanted,
                            "row change {index}, image {image}, column `{}`",
                            schema.columns()[column].name
                        );
                    }
                }
                (None, None) => {}
                other => panic!("row change {index} image {image}: {other:?}"),
            }
        }
    }
}
