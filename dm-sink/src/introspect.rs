//! A downstream table's structure, read from `information_schema`: its columns (types,
//! nullability, charsets, generated) and unique keys, as a `dm_core::TableSchema`.
//!
//! ```text
//! information_schema.COLUMNS    --ColumnType::from_sql--> ColumnDefinition ...
//! information_schema.STATISTICS --unique indexes-----> KeyDefinition ...   --> TableSchema
//! ```
//!
//! The sink addresses rows by the downstream's own keys (they may differ from the upstream's);
//! the schema tracker can seed a table's upstream schema from it. Column types are parsed by
//! `dm_core::ColumnType::from_sql`.

use dm_core::{
    ColumnDefinition, ColumnType, KeyColumn, KeyDefinition, KeyKind, TableRef, TableSchema,
};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::SinkError;

type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// Reads the structure of `table` downstream; `Ok(None)` when it does not exist.
pub async fn load_table_schema(
    connection: &mut Conn,
    table: &TableRef,
) -> Result<Option<TableSchema>, mysql_async::Error> {
    let columns: Vec<ColumnRow> = connection
        .exec(
            "SELECT COLUMN_NAME, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, \
             COLLATION_NAME, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&table.schema, &table.table),
        )
        .await?;
    if columns.is_empty() {
        return Ok(None);
    }
    let indexes: Vec<(String, i64, String, Option<u32>)> = connection
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (&table.schema, &table.table),
        )
        .await?;
    Ok(Some(build_schema(table, columns, indexes).map_err(
        |reason| mysql_async::Error::Other(format!("{}: {reason}", table.quoted()).into()),
    )?))
}

fn build_schema(
    table: &TableRef,
    columns: Vec<ColumnRow>,
    indexes: Vec<(String, i64, String, Option<u32>)>,
) -> Result<TableSchema, String> {
    let mut definitions = Vec::with_capacity(columns.len());
    for (name, nullable, data_type, column_type, charset, collation, extra) in columns {
        let parsed = ColumnType::from_sql(&data_type, &column_type)
            .map_err(|error| format!("column `{name}`: {error}"))?;
        let mut definition = ColumnDefinition::new(name, parsed, nullable == "YES");
        definition.charset = charset;
        definition.collation = collation;
        definition.generated = extra.to_ascii_uppercase().contains("GENERATED");
        definitions.push(definition);
    }
    let mut keys: Vec<KeyDefinition> = Vec::new();
    for (index_name, non_unique, column_name, sub_part) in indexes {
        if non_unique != 0 {
            continue;
        }
        let Some(column) = definitions
            .iter()
            .position(|definition| definition.name.eq_ignore_ascii_case(&column_name))
        else {
            // A functional index part has no column: the key cannot address rows.
            keys.retain(|key| key.name != index_name);
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

/// Wraps a client error while reading a downstream table's structure.
pub(crate) fn introspection_error(table: &TableRef, error: mysql_async::Error) -> SinkError {
    crate::mysql::client_error(
        &format!("reading the structure of {}", table.quoted()),
        "",
        error,
    )
}
