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
//! reaches the configured size (DM's `statement-size`), never inside a row. The reading
//! session has `time_zone = '+00:00'` and so has the loader's. Pure and synchronous.

use dm_core::{ColumnDefinition, ColumnType};
use dm_sink::literal::{write_hex, write_identifier, write_text};

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
