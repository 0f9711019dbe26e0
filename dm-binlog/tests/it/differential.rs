//! Differential test: a live MariaDB's binlog (every column type, edge values: min, max, null,
//! zero, negative, max-length, multi-byte text, quotes and control bytes) decoded by this crate
//! and by MariaDB's own `mariadb-binlog --base64-output=decode-rows -vv`; every value of every
//! row image must print the same.
//!
//! Our values are rendered the way the tool prints them (`log_event_print_value`). Two
//! differences are the tool's, not ours, and are mapped explicitly: it prints YEAR 0 as `1900`
//! (the server stores and returns `0000`), and it prints BINARY(n), UUID and INET6 without the
//! trailing zero bytes the server pads them with (the binlog strips them; we restore them).

use std::process::Command;

use dm_binlog::{BinlogFileReader, EventData, Read, TableMap, decode_rows};
use dm_core::{ColumnDefinition, ColumnType, Row, TableSchema, Value};
use dm_testkit::{MariaDb, MariaDbOptions, or_skip};

const EXTRA_CREATE: &str = "CREATE TABLE d.extra (
  id INT PRIMARY KEY, j JSON, u UUID, ip INET6, g GEOMETRY,
  tt TINYTEXT, mt MEDIUMTEXT, lt LONGTEXT, lb LONGBLOB, q VARCHAR(50)
) DEFAULT CHARSET=utf8mb4;";

const EXTRA_WRITES: &str = "INSERT INTO d.extra VALUES
  (1, '{\"a\": [1, 2.5, \"x\"], \"b\": null}', '123e4567-e89b-12d3-a456-426614174000', '2001:db8::1',
   ST_GeomFromText('POINT(1 2)'), REPEAT('t', 255), REPEAT('m', 70000), 'long ✓', X'00FF0A27',
   'it''s a \\\\ path\\twith\\ncontrols'),
  (2, NULL, NULL, '::ffff:192.0.2.1', ST_GeomFromText('LINESTRING(0 0, 1 1)'), '', '', '', '', '');
UPDATE d.extra SET q = 'changed', ip = '::' WHERE id = 2;
DELETE FROM d.extra WHERE id = 1;
FLUSH BINARY LOGS;";

fn extra_schema() -> TableSchema {
    let plain = |name: &str, column_type| ColumnDefinition::new(name, column_type, true);
    let text = |name: &str, max_bytes| {
        let mut column = ColumnDefinition::new(name, ColumnType::Text { max_bytes }, true);
        column.charset = Some("utf8mb4".into());
        column
    };
    let mut json = plain("j", ColumnType::Json);
    json.charset = Some("utf8mb4".into());
    let mut q = plain("q", ColumnType::VarChar { length: 50 });
    q.charset = Some("utf8mb4".into());
    TableSchema::new(
        dm_core::TableRef::new("d", "extra"),
        vec![
            ColumnDefinition::new(
                "id",
                ColumnType::Integer {
                    width: dm_core::IntegerWidth::Int,
                    unsigned: false,
                },
                false,
            ),
            json,
            plain("u", ColumnType::Uuid),
            plain("ip", ColumnType::Inet6),
            plain("g", ColumnType::Geometry),
            text("tt", 255),
            text("mt", 16_777_215),
            text("lt", 4_294_967_295),
            plain(
                "lb",
                ColumnType::Blob {
                    max_bytes: 4_294_967_295,
                },
            ),
            q,
        ],
        Vec::new(),
    )
    .expect("schema")
}

/// One printed row image: `(statement line, values)`.
type Printed = (String, Vec<Vec<u8>>);

/// Parses the `###` pseudo-SQL of `mariadb-binlog -vv` into row images, in order.
pub(crate) fn parse_tool_output(output: &[u8]) -> Vec<Printed> {
    let mut images: Vec<Printed> = Vec::new();
    let mut statement = String::new();
    for line in output.split(|byte| *byte == b'\n') {
        let Some(rest) = line.strip_prefix(b"### ") else {
            continue;
        };
        if let Some(value) = rest.strip_prefix(b"  @") {
            let equals = value.iter().position(|byte| *byte == b'=').expect("@N=");
            let value = &value[equals + 1..];
            let comment = value
                .windows(4)
                .rposition(|window| window == b" /* ")
                .expect("a type comment");
            let mut value = &value[..comment];
            if value.last() != Some(&b'\'') {
                // FLOAT is printed left-aligned in 20 columns.
                while value.last() == Some(&b' ') {
                    value = &value[..value.len() - 1];
                }
            }
            images
                .last_mut()
                .expect("a SET/WHERE first")
                .1
                .push(value.to_vec());
        } else if rest == b"SET" || rest == b"WHERE" {
            images.push((
                format!("{statement} {}", String::from_utf8_lossy(rest)),
                Vec::new(),
            ));
        } else {
            statement = String::from_utf8_lossy(rest).into_owned();
        }
    }
    images
}

fn quoted(bytes: &[u8]) -> Vec<u8> {
    let mut output = vec![b'\''];
    for byte in bytes {
        if *byte > 0x1f {
            output.push(*byte);
        } else {
            output.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
        }
    }
    output.push(b'\'');
    output
}

fn cp1252_byte(character: char) -> u8 {
    const HIGH: [u16; 32] = [
        0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039,
        0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
    ];
    match HIGH
        .iter()
        .position(|code| u32::from(*code) == u32::from(character))
    {
        Some(index) => 0x80 + index as u8,
        None => u8::try_from(u32::from(character)).expect("a latin1 character"),
    }
}

fn without_padding(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |end| end + 1);
    &bytes[..end]
}

fn fraction(microsecond: u32, digits: u8) -> String {
    if digits == 0 {
        return String::new();
    }
    let text = format!("{microsecond:06}");
    format!(".{}", &text[..usize::from(digits)])
}

/// Our value as `mariadb-binlog -vv` prints it.
pub(crate) fn render(value: &Value, column: &ColumnDefinition) -> Vec<u8> {
    let signed_pair = |signed: i64, unsigned: u64| {
        if signed < 0 {
            format!("{signed} ({unsigned})")
        } else {
            signed.to_string()
        }
    };
    let bits = |value: u64, count: u32| -> String {
        (0..count)
            .rev()
            .map(|bit| if value >> bit & 1 == 1 { '1' } else { '0' })
            .collect()
    };
    let text = match (value, &column.column_type) {
        (Value::Null, _) => "NULL".to_owned(),
        (Value::Int(signed), ColumnType::Integer { width, .. }) => {
            let bits = u32::from(width.bytes()) * 8;
            let unsigned = (*signed as u64) & (u64::MAX >> (64 - bits));
            signed_pair(*signed, unsigned)
        }
        (Value::UInt(unsigned), ColumnType::Integer { width, .. }) => {
            let bits = u32::from(width.bytes()) * 8;
            let shift = 64 - bits;
            let signed = ((*unsigned << shift) as i64) >> shift;
            signed_pair(signed, *unsigned)
        }
        (Value::Float(float), _) => format!("{:.5e}", f64::from(*float)),
        (Value::Double(double), _) => format!("{double:e}"),
        (Value::Decimal(decimal), _) => decimal.as_str().to_owned(),
        (Value::Date(date), _) => format!("'{:04}:{:02}:{:02}'", date.year, date.month, date.day),
        (Value::DateTime(value), ColumnType::DateTime { fractional_digits }) => format!(
            "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}'",
            value.date.year,
            value.date.month,
            value.date.day,
            value.hour,
            value.minute,
            value.second,
            fraction(value.microsecond, *fractional_digits)
        ),
        (Value::Timestamp(value), ColumnType::Timestamp { fractional_digits }) => format!(
            "{}{}",
            value.seconds,
            fraction(value.microsecond, *fractional_digits)
        ),
        (Value::Time(value), ColumnType::Time { fractional_digits }) => format!(
            "'{}{:02}:{:02}:{:02}{}'",
            if value.negative { "-" } else { "" },
            value.hours,
            value.minutes,
            value.seconds,
            fraction(value.microsecond, *fractional_digits)
        ),
        // The tool prints YEAR 0 as 1900; see the module comment.
        (Value::Year(0), _) => "1900".to_owned(),
        (Value::Year(year), _) => year.to_string(),
        (Value::Enum(index), _) => index.to_string(),
        (Value::Set(mask), ColumnType::Set { members }) => {
            bits(*mask, (members.len().div_ceil(8) * 8) as u32)
        }
        (Value::Bit(bit_value), ColumnType::Bit { width }) => bits(*bit_value, u32::from(*width)),
        (Value::Text(text) | Value::Json(text), _) => {
            let bytes: Vec<u8> = if column.charset.as_deref() == Some("latin1") {
                text.chars().map(cp1252_byte).collect()
            } else {
                text.as_bytes().to_vec()
            };
            return quoted(&bytes);
        }
        // The tool prints what the binlog stores: BINARY(n) (and MariaDB's UUID and INET6,
        // which are BINARY(16) underneath) without the trailing zeros.
        (Value::Bytes(bytes), ColumnType::Binary { .. }) => return quoted(without_padding(bytes)),
        (Value::Uuid(bytes) | Value::Inet6(bytes), _) => return quoted(without_padding(bytes)),
        (Value::Bytes(bytes) | Value::Geometry(bytes), _) => return quoted(bytes),
        (other, column_type) => panic!("no rendering for {other:?} as {column_type:?}"),
    };
    match value {
        Value::Set(_) | Value::Bit(_) => format!("b'{text}'").into_bytes(),
        _ => text.into_bytes(),
    }
}

/// Whether the tool's text and ours mean the same value (floats compare by value).
pub(crate) fn same(ours: &[u8], theirs: &[u8], value: &Value) -> bool {
    let number = |bytes: &[u8]| String::from_utf8_lossy(bytes).parse::<f64>().ok();
    match value {
        // `%-20g`: six significant digits.
        Value::Float(_) => match (number(ours), number(theirs)) {
            (Some(ours), Some(theirs)) => ours == theirs || ((ours - theirs) / theirs).abs() < 1e-5,
            _ => false,
        },
        // `%.20g` reads back to the same double.
        Value::Double(_) => number(ours).is_some() && number(ours) == number(theirs),
        _ => ours == theirs,
    }
}

/// Decodes every row image of the tables we know in a closed binlog file.
fn decode_file(path: &std::path::Path, schemas: &[TableSchema]) -> Vec<(String, Row)> {
    let mut reader = BinlogFileReader::open(path).expect("open");
    let mut maps: std::collections::HashMap<u64, TableMap> = Default::default();
    let mut images = Vec::new();
    loop {
        match reader.read_next().expect("decode") {
            Read::Event { event, .. } => match event.data {
                EventData::TableMap(map) => {
                    maps.insert(map.table_id, map);
                }
                EventData::Rows(rows) => {
                    let map = &maps[&rows.table_id];
                    let schema = schemas
                        .iter()
                        .find(|schema| schema.table().table == map.table)
                        .expect("a known table");
                    for (before, after) in decode_rows(&rows, map, schema).expect("rows decode") {
                        let table = map.table.clone();
                        images.extend(before.map(|row| (table.clone(), row)));
                        images.extend(after.map(|row| (table.clone(), row)));
                    }
                }
                _ => {}
            },
            Read::End => return images,
            Read::Partial { offset, .. } => panic!("partial event at {offset}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_prints_as_mariadb_binlog_prints_it() {
    let server = or_skip!(MariaDb::start_with(MariaDbOptions::named("differential")).await);
    server.execute(crate::values::CREATE).await.expect("create");
    server.execute(EXTRA_CREATE).await.expect("create extra");
    let writes = crate::values::WRITES.replace("FLUSH BINARY LOGS;", "");
    server.execute(&writes).await.expect("write");
    server.execute(EXTRA_WRITES).await.expect("write extra");
    let path = server.directory().join("data/mysql-bin.000001");
    let output = Command::new("mariadb-binlog")
        .args(["--base64-output=decode-rows", "-vv"])
        .arg(&path)
        .output()
        .expect("mariadb-binlog runs (it comes with mariadb-client: scripts/setup.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = parse_tool_output(&output.stdout);
    let schemas = [crate::values::schema(), extra_schema()];
    let decoded = decode_file(&path, &schemas);
    assert_eq!(decoded.len(), printed.len(), "row images");
    // 5 row changes of d.t (3 inserts, 1 update, 1 delete) and 4 of d.extra.
    assert_eq!(decoded.len(), 6 + 5);
    let mut compared = 0;
    for ((table, row), (statement, values)) in decoded.iter().zip(&printed) {
        assert!(statement.contains(&format!("`d`.`{table}`")), "{statement}");
        let schema = schemas
            .iter()
            .find(|schema| &schema.table().table == table)
            .expect("schema");
        assert_eq!(row.0.len(), values.len(), "{statement}: columns");
        for ((value, theirs), column) in row.0.iter().zip(values).zip(schema.columns()) {
            let ours = render(value, column);
            assert!(
                same(&ours, theirs, value),
                "{statement} column `{}` ({value:?}): we print {:?}, mariadb-binlog prints {:?}",
                column.name,
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(theirs)
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 6 * 35 + 5 * 10);
}
