//! A table's structure, read from a server's `information_schema`: its columns (types,
//! nullability, charsets, generated) and unique keys, as a `dm_core::TableSchema`.
//!
//! ```text
//! information_schema.COLUMNS    --ColumnType::from_sql--> ColumnDefinition ...
//! information_schema.STATISTICS --unique indexes-----> KeyDefinition ...   --> TableSchema
//! ```
//!
//! Both sides read it: the dumper reads the upstream's tables (which columns to select, how to
//! write their values, which integer key cuts chunks); the sink reads the downstream's (rows are
//! addressed by the downstream's own keys, which may differ from the upstream's); the schema
//! tracker can seed a table's upstream schema from it. Column types are parsed by
//! `dm_core::ColumnType::from_sql`.
//!
//! Invariants: keys come primary first, then the unique keys by name; a key with a part that is
//! not a column (a functional index part) is left out, since it cannot address rows; non-unique
//! indexes are not read.

use dm_core::{
    ColumnDefinition, ColumnType, KeyColumn, KeyDefinition, KeyKind, TableRef, TableSchema,
};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::MySqlError;

type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// `INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART`; MySQL 8 gives a functional key part no
/// column name (NULL).
type IndexRow = (String, i64, Option<String>, Option<u32>);

/// Reads the structure of `table` on the server `connection` is open to; `Ok(None)` when the
/// table does not exist there. Two queries on `connection` (COLUMNS, then STATISTICS).
pub async fn load_table_schema(
    connection: &mut Conn,
    table: &TableRef,
) -> Result<Option<TableSchema>, MySqlError> {
    let client_error = |source| MySqlError::Client {
        what: format!("reading the structure of {}", table.quoted()),
        source,
    };
    let columns: Vec<ColumnRow> = connection
        .exec(
            "SELECT COLUMN_NAME, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, \
             COLLATION_NAME, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&table.schema, &table.table),
        )
        .await
        .map_err(client_error)?;
    if columns.is_empty() {
        return Ok(None);
    }
    let indexes: Vec<IndexRow> = connection
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&table.schema, &table.table),
        )
        .await
        .map_err(client_error)?;
    build_schema(table, columns, indexes)
        .map(Some)
        .map_err(|reason| MySqlError::UnsupportedTable {
            table: table.quoted(),
            reason,
        })
}

/// The schema the catalog's rows describe; `Err` names what this program cannot represent.
fn build_schema(
    table: &TableRef,
    columns: Vec<ColumnRow>,
    indexes: Vec<IndexRow>,
) -> Result<TableSchema, String> {
    let mut definitions = Vec::with_capacity(columns.len());
    for (name, nullable, data_type, column_type, charset, collation, extra) in columns {
        let parsed = ColumnType::from_sql(&data_type, &column_type)
            .map_err(|error| format!("column `{name}`: {error}"))?;
        let mut definition = ColumnDefinition::new(name, parsed, nullable == "YES");
        definition.charset = charset;
        definition.collation = collation;
        definition.generated = is_generated(&extra);
        definitions.push(definition);
    }
    let mut keys: Vec<KeyDefinition> = Vec::new();
    // Keys with a part that is not a column, whatever the order of their parts.
    let mut unusable: Vec<String> = Vec::new();
    for (index_name, non_unique, column_name, sub_part) in indexes {
        if non_unique != 0 || unusable.contains(&index_name) {
            continue;
        }
        let Some(column) = column_name.and_then(|column_name| {
            definitions
                .iter()
                .position(|definition| definition.name.eq_ignore_ascii_case(&column_name))
        }) else {
            // A functional key part has no column: the key cannot address rows, and its other
            // parts alone are not unique.
            keys.retain(|key| key.name != index_name);
            unusable.push(index_name);
            continue;
        };
        let part = KeyColumn {
            column,
            prefix_length: sub_part,
        };
        match keys.iter_mut().find(|key| key.name == index_name) {
            Some(key) => key.columns.push(part),
            None => keys.push(KeyDefinition {
                kind: if index_name == "PRIMARY" {
                    KeyKind::Primary
                } else {
                    KeyKind::Unique
                },
                name: index_name,
                columns: vec![part],
            }),
        }
    }
    keys.sort_by_key(|key| key.kind != KeyKind::Primary);
    TableSchema::new(table.clone(), definitions, keys).map_err(|error| error.to_string())
}

/// Whether `EXTRA` marks a generated column: `VIRTUAL GENERATED`, `STORED GENERATED` (MariaDB
/// also `PERSISTENT GENERATED`). MySQL 8's `DEFAULT_GENERATED` marks an expression default
/// (`DEFAULT CURRENT_TIMESTAMP`): the column holds written values and must be dumped and
/// written like any other.
fn is_generated(extra: &str) -> bool {
    extra
        .split_ascii_whitespace()
        .any(|word| word.eq_ignore_ascii_case("GENERATED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, column_type: &str, extra: &str) -> ColumnRow {
        (
            name.into(),
            "NO".into(),
            data_type.into(),
            column_type.into(),
            None,
            None,
            extra.into(),
        )
    }

    fn part(index: &str, column: Option<&str>) -> IndexRow {
        (index.into(), 0, column.map(Into::into), None)
    }

    fn table() -> TableRef {
        TableRef::new("d", "t")
    }

    /// Each key of the schema the rows describe: kind, name, column indexes.
    fn keys_of(
        columns: Vec<ColumnRow>,
        indexes: Vec<IndexRow>,
    ) -> Vec<(KeyKind, String, Vec<usize>)> {
        let schema = build_schema(&table(), columns, indexes).expect("schema");
        schema
            .keys()
            .iter()
            .map(|key| {
                let parts = key.columns.iter().map(|part| part.column).collect();
                (key.kind, key.name.clone(), parts)
            })
            .collect()
    }

    #[test]
    fn keys_come_primary_first_and_skip_non_unique_indexes() {
        let columns = vec![
            column("id", "int", "int(11)", ""),
            column("code", "varchar", "varchar(10)", ""),
        ];
        let indexes = vec![
            part("code", Some("code")),
            ("by_code".into(), 1, Some("code".into()), Some(4)),
            part("PRIMARY", Some("ID")),
        ];
        assert_eq!(
            keys_of(columns, indexes),
            [
                (KeyKind::Primary, "PRIMARY".into(), vec![0]),
                (KeyKind::Unique, "code".into(), vec![1])
            ]
        );
    }

    #[test]
    fn a_key_with_a_functional_part_is_left_out_whatever_the_part_order() {
        let columns = vec![
            column("a", "int", "int(11)", ""),
            column("b", "int", "int(11)", ""),
        ];
        let indexes = vec![
            part("first", None),
            part("first", Some("a")),
            part("middle", Some("a")),
            part("middle", None),
            part("middle", Some("b")),
            part("plain", Some("b")),
        ];
        assert_eq!(
            keys_of(columns, indexes),
            [(KeyKind::Unique, "plain".into(), vec![1])]
        );
    }

    #[test]
    fn generated_columns_are_told_from_expression_defaults() {
        let columns = vec![
            column("virtual", "int", "int(11)", "VIRTUAL GENERATED"),
            column("stored", "int", "int(11)", "STORED GENERATED"),
            column("persistent", "int", "int(11)", "PERSISTENT GENERATED"),
            column("created", "timestamp", "timestamp", "DEFAULT_GENERATED"),
            column(
                "updated",
                "datetime",
                "datetime",
                "DEFAULT_GENERATED on update CURRENT_TIMESTAMP",
            ),
            column("id", "int", "int(11)", "auto_increment"),
        ];
        let schema = build_schema(&table(), columns, Vec::new()).expect("schema");
        let generated: Vec<_> = schema
            .columns()
            .iter()
            .map(|column| column.generated)
            .collect();
        assert_eq!(generated, [true, true, true, false, false, false]);
    }

    #[test]
    fn an_unknown_column_type_names_the_column() {
        let columns = vec![column("shape", "hologram", "hologram", "")];
        let reason = build_schema(&table(), columns, Vec::new()).expect_err("unknown type");
        assert!(reason.starts_with("column `shape`: "), "{reason}");
    }
}
