//! SQL helpers for tests: run statements, read rows as text, and compare data on two servers.
//!
//! The comparison is what a user checks after a migration: every table of a schema has the same
//! columns and the same rows on both sides. [`checksum_table`] reads a table in full through the
//! text protocol and folds each row's hash into an order-independent digest (a wrapping sum, so
//! duplicate rows count), and [`compare_schemas`] reports the first difference: a missing table,
//! different columns, or the first row (in key order) that differs.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use dm_core::{TableRef, quote_identifier};

use crate::error::TestkitError;

fn shorten(sql: &str) -> String {
    const LIMIT: usize = 300;
    if sql.len() <= LIMIT {
        return sql.to_owned();
    }
    let mut end = LIMIT;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &sql[..end])
}

/// Wraps a client error with the server and the statement.
pub(crate) fn sql_error(
    server: &str,
    sql: &str,
) -> impl FnOnce(mysql_async::Error) -> TestkitError {
    let (server, sql) = (server.to_owned(), shorten(sql));
    move |source| TestkitError::Sql {
        server,
        sql,
        source,
    }
}

/// Runs SQL text that may hold several statements separated by `;`.
pub async fn execute(connection: &mut Conn, server: &str, sql: &str) -> Result<(), TestkitError> {
    connection
        .query_drop(sql)
        .await
        .map_err(sql_error(server, sql))
}

/// A value as text; `None` for NULL. Text-protocol results are always bytes or NULL.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        other => Some(other.as_sql(true)),
    }
}

/// Runs one query and returns every row as text.
pub async fn query_text(
    connection: &mut Conn,
    server: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, TestkitError> {
    let rows: Vec<Row> = connection
        .query(sql)
        .await
        .map_err(sql_error(server, sql))?;
    Ok(rows
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|index| row.as_ref(index).and_then(value_text))
                .collect()
        })
        .collect())
}

/// What one table holds, in a form cheap to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableChecksum {
    /// Column names in table order.
    pub columns: Vec<String>,
    /// Number of rows.
    pub rows: u64,
    /// Order-independent digest of all rows.
    pub digest: u64,
}

/// The first difference between two servers' copies of a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaDifference {
    /// A table exists on one side only.
    MissingTable {
        /// The table.
        table: String,
        /// `left` or `right`: the side that lacks it.
        missing_on: &'static str,
    },
    /// The tables have different columns.
    Columns {
        /// The table.
        table: String,
        /// Columns on the left.
        left: Vec<String>,
        /// Columns on the right.
        right: Vec<String>,
    },
    /// The rows differ; the first differing row in key order.
    Rows {
        /// The table.
        table: String,
        /// Row counts on each side.
        row_counts: (u64, u64),
        /// The first row that differs, as text (`None`: no row at that place on this side).
        left_row: Option<Vec<Option<String>>>,
        /// The right side's row at that place.
        right_row: Option<Vec<Option<String>>>,
    },
}

impl std::fmt::Display for SchemaDifference {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaDifference::MissingTable { table, missing_on } => {
                write!(
                    formatter,
                    "table {table} is missing on the {missing_on} side"
                )
            }
            SchemaDifference::Columns { table, left, right } => write!(
                formatter,
                "table {table} has columns {left:?} on the left and {right:?} on the right"
            ),
            SchemaDifference::Rows {
                table,
                row_counts,
                left_row,
                right_row,
            } => write!(
                formatter,
                "table {table} differs ({} rows left, {} right); first difference: left {left_row:?}, right {right_row:?}",
                row_counts.0, row_counts.1
            ),
        }
    }
}

/// Base tables of a schema, sorted.
pub async fn list_tables(
    connection: &mut Conn,
    server: &str,
    schema: &str,
) -> Result<Vec<String>, TestkitError> {
    let sql = format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' AND table_type = 'BASE TABLE' ORDER BY table_name",
        schema.replace('\\', "\\\\").replace('\'', "''")
    );
    Ok(query_text(connection, server, &sql)
        .await?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect())
}

fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The columns of a table, and the columns to order its rows by (primary key, else the first
/// unique key, else all columns).
async fn table_layout(
    connection: &mut Conn,
    server: &str,
    schema: &str,
    table: &str,
) -> Result<(Vec<String>, Vec<String>), TestkitError> {
    let columns: Vec<String> = query_text(
        connection,
        server,
        &format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
            string_literal(schema),
            string_literal(table)
        ),
    )
    .await?
    .into_iter()
    .filter_map(|row| row.into_iter().next().flatten())
    .collect();
    let key_rows = query_text(
        connection,
        server,
        &format!(
            "SELECT index_name, column_name FROM information_schema.statistics WHERE table_schema = {} AND table_name = {} AND non_unique = 0 ORDER BY index_name <> 'PRIMARY', index_name, seq_in_index",
            string_literal(schema),
            string_literal(table)
        ),
    )
    .await?;
    let first_key = key_rows
        .first()
        .and_then(|row| row.first().cloned().flatten());
    let order: Vec<String> = match first_key {
        Some(key) => key_rows
            .into_iter()
            .filter(|row| row.first().cloned().flatten().as_deref() == Some(key.as_str()))
            .filter_map(|row| row.get(1).cloned().flatten())
            .collect(),
        None => columns.clone(),
    };
    Ok((columns, order))
}

fn select_all_sql(schema: &str, table: &str, columns: &[String], order: &[String]) -> String {
    let quoted = |names: &[String]| {
        names
            .iter()
            .map(|name| quote_identifier(name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "SELECT {} FROM {}.{} ORDER BY {}",
        quoted(columns),
        quote_identifier(schema),
        quote_identifier(table),
        quoted(order)
    )
}

fn row_hash(row: &[Option<String>]) -> u64 {
    let mut hasher = DefaultHasher::new();
    row.hash(&mut hasher);
    hasher.finish()
}

/// Reads a whole table and digests it.
pub async fn checksum_table(
    connection: &mut Conn,
    server: &str,
    schema: &str,
    table: &str,
) -> Result<TableChecksum, TestkitError> {
    let (columns, order) = table_layout(connection, server, schema, table).await?;
    let rows = query_text(
        connection,
        server,
        &select_all_sql(schema, table, &columns, &order),
    )
    .await?;
    let digest = rows
        .iter()
        .fold(0u64, |digest, row| digest.wrapping_add(row_hash(row)));
    Ok(TableChecksum {
        columns,
        rows: rows.len() as u64,
        digest,
    })
}

/// Compares every base table of `schema` on two servers; `Ok(None)` when they hold the same
/// tables, columns and rows.
pub async fn compare_schemas(
    left: &mut Conn,
    right: &mut Conn,
    schema: &str,
) -> Result<Option<SchemaDifference>, TestkitError> {
    let left_tables: BTreeSet<String> = list_tables(left, "left", schema)
        .await?
        .into_iter()
        .collect();
    let right_tables: BTreeSet<String> = list_tables(right, "right", schema)
        .await?
        .into_iter()
        .collect();
    if let Some(table) = left_tables.symmetric_difference(&right_tables).next() {
        return Ok(Some(SchemaDifference::MissingTable {
            table: TableRef::new(schema, table.as_str()).quoted(),
            missing_on: if left_tables.contains(table) {
                "right"
            } else {
                "left"
            },
        }));
    }
    for table in &left_tables {
        let table = TableRef::new(schema, table.as_str());
        if let Some(difference) = compare_tables(left, &table, right, &table).await? {
            return Ok(Some(difference));
        }
    }
    Ok(None)
}

/// Compares one table on the left with one on the right (their names may differ, as after
/// routing); `Ok(None)` when they have the same columns and rows.
pub async fn compare_tables(
    left: &mut Conn,
    left_table: &TableRef,
    right: &mut Conn,
    right_table: &TableRef,
) -> Result<Option<SchemaDifference>, TestkitError> {
    let name = if left_table == right_table {
        left_table.quoted()
    } else {
        format!("{} / {}", left_table.quoted(), right_table.quoted())
    };
    let left_sum = checksum_table(left, "left", &left_table.schema, &left_table.table).await?;
    let right_sum = checksum_table(right, "right", &right_table.schema, &right_table.table).await?;
    if left_sum.columns != right_sum.columns {
        return Ok(Some(SchemaDifference::Columns {
            table: name,
            left: left_sum.columns,
            right: right_sum.columns,
        }));
    }
    if left_sum == right_sum {
        return Ok(None);
    }
    // Locate the first differing row, reading both sides in the left side's key order.
    let (columns, order) =
        table_layout(left, "left", &left_table.schema, &left_table.table).await?;
    let left_rows = query_text(
        left,
        "left",
        &select_all_sql(&left_table.schema, &left_table.table, &columns, &order),
    )
    .await?;
    let right_rows = query_text(
        right,
        "right",
        &select_all_sql(&right_table.schema, &right_table.table, &columns, &order),
    )
    .await?;
    let index = (0..left_rows.len().max(right_rows.len()))
        .find(|index| left_rows.get(*index) != right_rows.get(*index))
        .unwrap_or(0);
    Ok(Some(SchemaDifference::Rows {
        table: name,
        row_counts: (left_sum.rows, right_sum.rows),
        left_row: left_rows.get(index).cloned(),
        right_row: right_rows.get(index).cloned(),
    }))
}
