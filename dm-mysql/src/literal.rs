//! SQL literals for `dm_core::Value`s, exact for every type, and quoted identifiers: the text
//! every stage that writes SQL for a MySQL-compatible server builds its statements from (the
//! sink's row changes and checkpoints, the dumper's SELECTs and INSERT files, the loader's meta
//! rows).
//!
//! ```text
//! Value::Text("it's")         -> 'it\'s'             (backslash escapes: the session never sets
//! Value::Bytes([0, 255])      -> X'00ff'              NO_BACKSLASH_ESCAPES)
//! Value::Timestamp{1, 500000} -> '1970-01-01 00:00:01.500000'   (session time_zone = '+00:00')
//! Value::Year(0)              -> 0                    (numeric: stores 0000; the string '0' is 2000)
//! "a`b"  (identifier)         -> `a``b`
//! ```
//!
//! Invariants: no value can end its literal early or inject SQL (text is escaped, bytes are hex,
//! identifiers are quoted with their backticks doubled); numbers print so that the server reads
//! back the same number (shortest round-trip form for floating point, the exact digits for
//! DECIMAL); temporal values print in full precision. The session that runs the text must not
//! set `NO_BACKSLASH_ESCAPES`.

use std::fmt::Write as _;

use dm_core::{ColumnDefinition, ColumnType, Value};

/// Appends `value` as a literal. TIMESTAMP values print as UTC datetimes: the session that runs
/// the statement must have `time_zone = '+00:00'` (the sink's has).
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Int(number) => {
            let _ = write!(out, "{number}");
        }
        Value::UInt(number) => {
            let _ = write!(out, "{number}");
        }
        // The exact double value of the float: the column rounds it back to the same float
        // (printing the float's own shortest form would round twice).
        Value::Float(number) => write_floating(out, f64::from(*number)),
        Value::Double(number) => write_floating(out, *number),
        Value::Decimal(decimal) => out.push_str(decimal.as_str()),
        Value::Date(date) => {
            let _ = write!(out, "'{:04}-{:02}-{:02}'", date.year, date.month, date.day);
        }
        Value::DateTime(datetime) => {
            let _ = write!(
                out,
                "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}'",
                datetime.date.year,
                datetime.date.month,
                datetime.date.day,
                datetime.hour,
                datetime.minute,
                datetime.second,
                datetime.microsecond
            );
        }
        Value::Timestamp(timestamp) => {
            if timestamp.seconds == 0 && timestamp.microsecond == 0 {
                out.push_str("'0000-00-00 00:00:00'");
            } else {
                let utc = timestamp.to_utc();
                let _ = write!(
                    out,
                    "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}'",
                    utc.date.year,
                    utc.date.month,
                    utc.date.day,
                    utc.hour,
                    utc.minute,
                    utc.second,
                    utc.microsecond
                );
            }
        }
        Value::Time(time) => {
            let _ = write!(
                out,
                "'{}{:02}:{:02}:{:02}.{:06}'",
                if time.negative { "-" } else { "" },
                time.hours,
                time.minutes,
                time.seconds,
                time.microsecond
            );
        }
        Value::Year(year) => {
            let _ = write!(out, "{year}");
        }
        Value::Text(text) | Value::Json(text) => write_text(out, text),
        Value::Bytes(bytes) | Value::Geometry(bytes) => write_hex(out, bytes),
        Value::Bit(bits) | Value::Set(bits) => {
            let _ = write!(out, "{bits}");
        }
        Value::Enum(index) => {
            let _ = write!(out, "{index}");
        }
        Value::Uuid(bytes) => {
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            let _ = write!(
                out,
                "'{}-{}-{}-{}-{}'",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
        }
        Value::Inet6(bytes) => {
            let address = std::net::Ipv6Addr::from(*bytes);
            let _ = write!(out, "'{address}'");
        }
    }
}

/// The shortest text that reads back to the same double.
fn write_floating(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value:?}");
    } else {
        // MySQL has no infinity or NaN; the binlog cannot carry them either.
        out.push_str("NULL");
    }
}

/// Character data as an escaped string literal; the connection speaks utf8mb4 and the server
/// converts to the column's character set.
pub fn write_text(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('\'');
    // Every character to escape is ASCII, and ASCII bytes never occur inside a multi-byte UTF-8
    // sequence: scanning bytes and copying the runs between them keeps `text` intact.
    let mut run_start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'\'' => "\\'",
            b'\\' => "\\\\",
            0 => "\\0",
            b'\n' => "\\n",
            b'\r' => "\\r",
            0x1a => "\\Z",
            _ => continue,
        };
        out.push_str(&text[run_start..index]);
        out.push_str(escaped);
        run_start = index + 1;
    }
    out.push_str(&text[run_start..]);
    out.push('\'');
}

/// `text` as an escaped string literal, owned: [`write_text`] for a statement built with
/// `format!`.
pub fn quote_text(text: &str) -> String {
    let mut out = String::new();
    write_text(&mut out, text);
    out
}

/// Bytes as a hex literal: `X'...'` (`''` for none).
pub fn write_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 3);
    out.push_str("X'");
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out.push('\'');
}

/// Appends `` `name` `` with backticks doubled.
pub fn write_identifier(out: &mut String, name: &str) {
    out.push('`');
    for character in name.chars() {
        if character == '`' {
            out.push('`');
        }
        out.push(character);
    }
    out.push('`');
}

/// Appends `` `schema`.`table` ``.
pub fn write_table(out: &mut String, table: &dm_core::TableRef) {
    write_identifier(out, &table.schema);
    out.push('.');
    write_identifier(out, &table.table);
}

/// Whether values of this column can be compared with `=` to address a row (floating-point and
/// large-object columns are left out of an all-columns WHERE: their literals may not compare
/// equal to what is stored).
pub fn comparable(column: &ColumnDefinition) -> bool {
    !matches!(
        column.column_type,
        ColumnType::Float
            | ColumnType::Double
            | ColumnType::Json
            | ColumnType::Geometry
            | ColumnType::Blob { .. }
            | ColumnType::Text { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{Date, DateTime, Decimal, Time, Timestamp};

    fn render(value: Value) -> String {
        let mut out = String::new();
        write_value(&mut out, &value);
        out
    }

    #[test]
    fn every_kind_of_value_renders_exactly() {
        assert_eq!(render(Value::Null), "NULL");
        assert_eq!(render(Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(render(Value::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(render(Value::Float(-3.25)), "-3.25");
        assert_eq!(render(Value::Double(1e308)), "1e308");
        assert_eq!(render(Value::Double(-2.5e-300)), "-2.5e-300");
        assert_eq!(
            render(Value::Decimal(
                Decimal::parse("-12345.678900").expect("decimal")
            )),
            "-12345.678900"
        );
        let date = Date {
            year: 0,
            month: 0,
            day: 0,
        };
        assert_eq!(render(Value::Date(date)), "'0000-00-00'");
        let datetime = DateTime {
            date: Date {
                year: 9999,
                month: 12,
                day: 31,
            },
            hour: 23,
            minute: 59,
            second: 59,
            microsecond: 999_999,
        };
        assert_eq!(
            render(Value::DateTime(datetime)),
            "'9999-12-31 23:59:59.999999'"
        );
        assert_eq!(
            render(Value::Timestamp(Timestamp {
                seconds: 2_147_483_647,
                microsecond: 999_000
            })),
            "'2038-01-19 03:14:07.999000'"
        );
        assert_eq!(
            render(Value::Timestamp(Timestamp {
                seconds: 951_782_400,
                microsecond: 0
            })),
            "'2000-02-29 00:00:00.000000'"
        );
        assert_eq!(
            render(Value::Timestamp(Timestamp {
                seconds: 0,
                microsecond: 0
            })),
            "'0000-00-00 00:00:00'"
        );
        let time = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            microsecond: 990_000,
        };
        assert_eq!(render(Value::Time(time)), "'-838:59:59.990000'");
        assert_eq!(render(Value::Year(0)), "0");
        assert_eq!(
            render(Value::Text("it's a \\ path\n\0".into())),
            "'it\\'s a \\\\ path\\n\\0'"
        );
        // Multi-byte characters next to escaped ones, and at both ends, stay whole.
        assert_eq!(
            render(Value::Text("é'\r\u{1a}日本\\🙂".into())),
            "'é\\'\\r\\Z日本\\\\🙂'"
        );
        assert_eq!(render(Value::Text(String::new())), "''");
        assert_eq!(render(Value::Bytes(vec![0, 255, 39])), "X'00ff27'");
        assert_eq!(render(Value::Bytes(Vec::new())), "X''");
        assert_eq!(render(Value::Bit(5)), "5");
        let mut uuid = [0u8; 16];
        uuid[0] = 0x12;
        uuid[15] = 0xab;
        assert_eq!(
            render(Value::Uuid(uuid)),
            "'12000000-0000-0000-0000-0000000000ab'"
        );
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(render(Value::Inet6(mapped)), "'::ffff:192.0.2.1'");
    }

    #[test]
    fn identifiers_double_their_backticks() {
        let mut out = String::new();
        write_table(&mut out, &dm_core::TableRef::new("a`b", "t t"));
        assert_eq!(out, "`a``b`.`t t`");
    }

    #[test]
    fn quoted_text_is_the_written_literal() {
        assert_eq!(quote_text("it's"), "'it\\'s'");
        assert_eq!(quote_text(""), "''");
    }
}
