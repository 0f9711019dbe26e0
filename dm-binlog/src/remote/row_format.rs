//! The binlog format a replica that applies row images needs: `binlog_format=ROW` and
//! `binlog_row_image=FULL` (DM's precheck items `binlog_format` and `binlog_row_image`, each
//! skippable through [`super::RemoteOptions`]), checked at connect time.
//!
//! ```text
//! SELECT @@global.binlog_format, @@global.binlog_row_image
//!   ERR 1193 (MySQL 5.5, MariaDB < 10.1.6 have no binlog_row_image: rows are always full)
//!     -> SELECT @@global.binlog_format
//! binlog_format    STATEMENT | MIXED                          -> BinlogFormatNotRow (definite)
//! binlog_row_image MINIMAL | NOBLOB | FULL_NODUP (MariaDB 11) -> BinlogFormatNotRow (definite)
//! ```
//!
//! With STATEMENT or MIXED, changes arrive as SQL text that a replica of row images cannot apply
//! exactly; with a partial row image, updates and deletes lack the columns that identify and
//! complete a row. Only the global values are read: sessions opened before a `SET GLOBAL` keep
//! their own until they reconnect, which the error tells the user.

use super::connection::Connection;
use crate::error::BinlogError;

/// `ER_UNKNOWN_SYSTEM_VARIABLE`.
const UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

/// Refuses an upstream whose binlog is not ROW (when `require_row_format`) or whose row images
/// are not FULL (when `require_full_row_image`).
pub(crate) async fn check(
    connection: &mut Connection,
    address: &str,
    require_row_format: bool,
    require_full_row_image: bool,
) -> Result<(), BinlogError> {
    if !require_row_format && !require_full_row_image {
        return Ok(());
    }
    let first = |rows: Vec<Vec<Option<String>>>| {
        rows.into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect::<Vec<String>>()
    };
    let (format, row_image) = match connection
        .query("SELECT @@global.binlog_format, @@global.binlog_row_image")
        .await
    {
        Ok(rows) => {
            let mut values = first(rows).into_iter();
            (
                values.next().unwrap_or_default(),
                Some(values.next().unwrap_or_default()),
            )
        }
        Err(BinlogError::Server { error, .. }) if error.code == UNKNOWN_SYSTEM_VARIABLE => {
            let rows = connection.query("SELECT @@global.binlog_format").await?;
            (first(rows).into_iter().next().unwrap_or_default(), None)
        }
        Err(other) => return Err(other),
    };
    let refuse = |variable: &str, value: &str, required: &str| BinlogError::BinlogFormatNotRow {
        address: address.to_owned(),
        variable: variable.to_owned(),
        value: value.to_owned(),
        required: required.to_owned(),
    };
    if require_row_format && !format.eq_ignore_ascii_case("ROW") {
        return Err(refuse("binlog_format", &format, "ROW"));
    }
    match row_image {
        Some(image) if require_full_row_image && !image.eq_ignore_ascii_case("FULL") => {
            Err(refuse("binlog_row_image", &image, "FULL"))
        }
        _ => Ok(()),
    }
}
