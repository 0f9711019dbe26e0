//! Rows read with the text protocol, written as multi-row `INSERT` statements, one per line.
//!
//! ```text
//! INSERT INTO `t` (`id`,`name`,`photo`) VALUES (1,'it\'s',X'ffd8'),(2,NULL,X'');
//! numbers, DECIMAL, YEAR          -> as the server sent them (checked to be numeric)
//! text, ENUM, SET, JSON, temporal -> quoted, escaped ('\n', '\r', '\\', '\'', '\0', '\Z')
//! binary strings, BLOB, BIT, GEOMETRY -> X'..' hex
//! ```
//!
//! Invariants: a statement never contains a raw line break (so a dump file has exactly one
//! statement per line); no value can end its literal early; a statement is cut once it
//! reaches the configured size (DM's `statement-size`), never inside a row. TIMESTAMP values
//! arrive as seconds since the epoch (`UNIX_TIMESTAMP(column)`, exact in any session zone) and
//! are written as UTC text ([`utc_from_unix_timestamp`]); the loader's session has
//! `time_zone = '+00:00'`. Pure and synchronous.

use dm_core::{ColumnDefinition, ColumnType};
use dm_mysql::literal::{write_hex, write_identifier, write_text};

/// How a column's values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralForm {
    /// Digits as sent (integers, DECIMAL, FLOAT, DOUBLE, YEAR).
    Number,
    /// A quoted string.
    Text,
    /// A hex literal.
    Bytes,
}

/// The form of a column's values.
pub fn literal_form(column: &ColumnDefinition) -> LiteralForm {
    match &column.column_type {
        ColumnType::Integer { .. }
        | ColumnType::Decimal { .. }
        | ColumnType::Float
        | ColumnType::Double
        | ColumnType::Year => LiteralForm::Number,
        ColumnType::Bit { .. }
        | ColumnType::Binary { .. }
        | ColumnType::VarBinary { .. }
        | ColumnType::Blob { .. }
        | ColumnType::Geometry => LiteralForm::Bytes,
        ColumnType::Char { .. } | ColumnType::VarChar { .. } | ColumnType::Text { .. }
            if column.charset.as_deref() == Some("binary") =>
        {
            LiteralForm::Bytes
        }
        _ => LiteralForm::Text,
    }
}

fn is_numeric(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// Appends one value; `None` is NULL.
pub fn write_literal(out: &mut String, value: Option<&[u8]>, form: LiteralForm) {
    let Some(bytes) = value else {
        out.push_str("NULL");
        return;
    };
    match form {
        LiteralForm::Number if is_numeric(bytes) => {
            // Only ASCII digits and signs: the check above makes this exact.
            out.extend(bytes.iter().map(|byte| char::from(*byte)));
        }
        LiteralForm::Bytes => write_hex(out, bytes),
        LiteralForm::Number | LiteralForm::Text => match std::str::from_utf8(bytes) {
            Ok(text) => write_text(out, text),
            // The connection speaks utf8mb4, so the server sends valid UTF-8; anything else is
            // kept byte for byte.
            Err(_) => write_hex(out, bytes),
        },
    }
}

/// The UTC text of a TIMESTAMP read as `UNIX_TIMESTAMP(column)`: `1577836800.123` ->
/// `2020-01-01 00:00:00.123` (the fraction kept digit for digit). `0` is the zero timestamp
/// (`0000-00-00 00:00:00`): the epoch itself is not a TIMESTAMP value (they start one second
/// later). `None` when `text` is not such a number, or lies past year 9999.
pub fn utc_from_unix_timestamp(text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let (seconds, fraction) = match text.split_once('.') {
        Some((seconds, fraction)) => (seconds, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(seconds) || fraction.is_some_and(|fraction| !digits(fraction) || fraction.len() > 6)
    {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    let mut out = if seconds == 0 {
        "0000-00-00 00:00:00".to_owned()
    } else {
        // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
        const SECONDS_PER_DAY: u64 = 86_400;
        let days = i64::try_from(seconds / SECONDS_PER_DAY).ok()?;
        let of_day = seconds % SECONDS_PER_DAY;
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        if year > 9999 {
            return None;
        }
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        )
    };
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    Some(out)
}

/// `INSERT INTO `table` (`a`,`b`) VALUES ` for a table's columns: the start of every statement
/// of its chunks (the loader swaps in the routed target name).
pub fn insert_prefix(table: &str, columns: &[String]) -> String {
    let mut prefix = String::from("INSERT INTO ");
    write_identifier(&mut prefix, table);
    prefix.push_str(" (");
    for (index, column) in columns.iter().enumerate() {
        if index > 0 {
            prefix.push(',');
        }
        write_identifier(&mut prefix, column);
    }
    prefix.push_str(") VALUES ");
    prefix
}

/// Collects rows into statements of about `statement_bytes` bytes.
#[derive(Debug)]
pub struct StatementBuilder {
    prefix: String,
    forms: Vec<LiteralForm>,
    statement_bytes: usize,
    current: String,
    rows_in_current: u64,
}

impl StatementBuilder {
    /// A builder for rows of `forms.len()` columns, statements starting with `prefix`.
    pub fn new(prefix: String, forms: Vec<LiteralForm>, statement_bytes: usize) -> Self {
        StatementBuilder {
            prefix,
            forms,
            statement_bytes: statement_bytes.max(1),
            current: String::new(),
            rows_in_current: 0,
        }
    }

    /// Adds a row (one value per column); returns a finished statement (with its row count)
    /// when this row made the current one reach the size.
    pub fn push_row<'a>(
        &mut self,
        values: impl IntoIterator<Item = Option<&'a [u8]>>,
    ) -> Option<(String, u64)> {
        if self.current.is_empty() {
            self.current
                .reserve(self.statement_bytes.min(16 << 20) + 1024);
            self.current.push_str(&self.prefix);
        } else {
            self.current.push(',');
        }
        self.current.push('(');
        for (index, (value, form)) in values.into_iter().zip(&self.forms).enumerate() {
            if index > 0 {
                self.current.push(',');
            }
            write_literal(&mut self.current, value, *form);
        }
        self.current.push(')');
        self.rows_in_current += 1;
        if self.current.len() >= self.statement_bytes {
            self.finish()
        } else {
            None
        }
    }

    /// The statement under construction, if it has rows.
    pub fn finish(&mut self) -> Option<(String, u64)> {
        if self.rows_in_current == 0 {
            return None;
        }
        self.current.push(';');
        let rows = std::mem::replace(&mut self.rows_in_current, 0);
        Some((std::mem::take(&mut self.current), rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_keep_their_kind_and_never_break_the_line() {
        let prefix = insert_prefix("we`ird", &["id".into(), "na me".into(), "raw".into()]);
        assert_eq!(prefix, "INSERT INTO `we``ird` (`id`,`na me`,`raw`) VALUES ");
        let forms = vec![LiteralForm::Number, LiteralForm::Text, LiteralForm::Bytes];
        let mut builder = StatementBuilder::new(prefix, forms, 1 << 20);
        assert!(
            builder
                .push_row([
                    Some(&b"-12"[..]),
                    Some(b"a'b\\c\nd\r\x1a\0"),
                    Some(b"\x00\xff")
                ])
                .is_none()
        );
        assert!(
            builder
                .push_row([Some(&b"7"[..]), None, Some(b"")])
                .is_none()
        );
        let (statement, rows) = builder.finish().expect("a statement");
        assert_eq!(rows, 2);
        assert_eq!(
            statement,
            "INSERT INTO `we``ird` (`id`,`na me`,`raw`) VALUES (-12,'a\\'b\\\\c\\nd\\r\\Z\\0',X'00ff'),(7,NULL,X'');"
        );
        assert!(builder.finish().is_none());
        // A "number" that is not one is quoted, not pasted.
        let mut out = String::new();
        write_literal(&mut out, Some(b"1); DROP TABLE t; --"), LiteralForm::Number);
        assert_eq!(out, "'1); DROP TABLE t; --'");
    }

    #[test]
    fn statements_are_cut_at_the_size_between_rows() {
        let mut builder = StatementBuilder::new(
            insert_prefix("t", &["v".into()]),
            vec![LiteralForm::Text],
            40,
        );
        let mut statements = Vec::new();
        for _ in 0..5 {
            if let Some(done) = builder.push_row([Some(&b"0123456789"[..])]) {
                statements.push(done);
            }
        }
        statements.extend(builder.finish());
        assert_eq!(statements.iter().map(|(_, rows)| rows).sum::<u64>(), 5);
        assert!(statements.len() >= 2);
        for (statement, _) in &statements {
            assert!(statement.starts_with("INSERT INTO `t` (`v`) VALUES ('"));
            assert!(statement.ends_with("');"));
        }
    }

    #[test]
    fn unix_timestamps_become_utc_text() {
        let utc = |text: &str| utc_from_unix_timestamp(text.as_bytes());
        assert_eq!(utc("1").as_deref(), Some("1970-01-01 00:00:01"));
        assert_eq!(
            utc("1577836800.123").as_deref(),
            Some("2020-01-01 00:00:00.123")
        );
        assert_eq!(
            utc("2147483647.999999").as_deref(),
            Some("2038-01-19 03:14:07.999999")
        );
        assert_eq!(utc("951782400").as_deref(), Some("2000-02-29 00:00:00"));
        assert_eq!(utc("4294967295").as_deref(), Some("2106-02-07 06:28:15"));
        assert_eq!(utc("0").as_deref(), Some("0000-00-00 00:00:00"));
        assert_eq!(utc("0.000").as_deref(), Some("0000-00-00 00:00:00.000"));
        for bad in [
            "",
            "-1",
            "1.",
            ".5",
            "1e9",
            "1.1234567",
            "253402300800",
            "x",
        ] {
            assert_eq!(utc(bad), None, "{bad}");
        }
    }

    /// Days counted forward one at a time agree with the closed formula.
    #[test]
    fn every_day_of_four_centuries_follows_the_calendar() {
        let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
        for days in 0..(400i64 * 366) {
            let seconds = days * 86_400 + 1;
            let expected = format!("{year:04}-{month:02}-{day:02} 00:00:01");
            assert_eq!(
                utc_from_unix_timestamp(seconds.to_string().as_bytes()).as_deref(),
                Some(expected.as_str())
            );
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > length {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    proptest! {
        #[test]
        fn no_value_breaks_the_line_or_the_quote(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for form in [LiteralForm::Number, LiteralForm::Text, LiteralForm::Bytes] {
                let mut out = String::new();
                write_literal(&mut out, Some(&bytes), form);
                prop_assert!(!out.contains('\n') && !out.contains('\r'));
                // Outside escapes, a quoted literal has exactly its two quotes.
                if out.starts_with('\'') {
                    let mut quotes = 0;
                    let mut escaped = false;
                    for character in out.chars() {
                        match (escaped, character) {
                            (true, _) => escaped = false,
                            (false, '\\') => escaped = true,
                            (false, '\'') => quotes += 1,
                            _ => {}
                        }
                    }
                    prop_assert_eq!(quotes, 2, "{}", out);
                }
            }
        }
    }
}
