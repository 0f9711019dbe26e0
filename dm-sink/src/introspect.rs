//! A downstream table's structure, read from `information_schema`: its columns (types,
//! nullability, charsets, generated) and unique keys, as a `dm_core::TableSchema`.
//!
//! ```text
//! information_schema.COLUMNS    --parse_column_type--> ColumnDefinition ...
//! information_schema.STATISTICS --unique indexes-----> KeyDefinition ...   --> TableSchema
//! ```
//!
//! The sink addresses rows by the downstream's own keys (they may differ from the upstream's);
//! the schema tracker can seed a table's upstream schema from it. `parse_column_type` is pure.

use dm_core::{
    ColumnDefinition, ColumnType, IntegerWidth, KeyColumn, KeyDefinition, KeyKind, TableRef,
    TableSchema,
};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::error::SinkError;

/// The number inside the first parentheses of a column type: `varchar(40)` -> 40.
fn first_number(column_type: &str) -> Option<u32> {
    let inside = column_type.split_once('(')?.1;
    let end = inside.find([',', ')'])?;
    inside[..end].trim().parse().ok()
}

/// `decimal(10,2)` -> (10, 2).
fn precision_scale(column_type: &str) -> Option<(u8, u8)> {
    let inside = column_type.split_once('(')?.1;
    let inside = &inside[..inside.find(')')?];
    let (precision, scale) = inside.split_once(',').unwrap_or((inside, "0"));
    Some((precision.trim().parse().ok()?, scale.trim().parse().ok()?))
}

/// The quoted members of `enum('a','b''c')`.
fn members(column_type: &str) -> Result<Vec<String>, String> {
    let inside = column_type
        .split_once('(')
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| format!("`{column_type}` has no member list"))?;
    let mut members = Vec::new();
    let mut characters = inside.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                let mut member = String::new();
                loop {
                    match characters.next() {
                        Some('\'') if characters.peek() == Some(&'\'') => {
                            characters.next();
                            member.push('\'');
                        }
                        Some('\'') => break,
                        Some('\\') => {
                            if let Some(escaped) = characters.next() {
                                member.push(escaped);
                            }
                        }
                        Some(other) => member.push(other),
                        None => return Err(format!("`{column_type}` has an unclosed member")),
                    }
                }
                members.push(member);
            }
            ',' | ' ' => {}
            other => return Err(format!("`{column_type}` has `{other}` between members")),
        }
    }
    Ok(members)
}

/// The `ColumnType` of `information_schema.COLUMNS` `DATA_TYPE` and `COLUMN_TYPE`.
pub fn parse_column_type(data_type: &str, column_type: &str) -> Result<ColumnType, String> {
    let data_type = data_type.to_ascii_lowercase();
    let column_type_lower = column_type.to_ascii_lowercase();
    let unsigned = column_type_lower.contains("unsigned");
    let integer = |width| ColumnType::Integer { width, unsigned };
    let digits = || first_number(&column_type_lower).unwrap_or(0).min(6) as u8;
    let length = || first_number(&column_type_lower).unwrap_or(1);
    Ok(match data_type.as_str() {
        "tinyint" => integer(IntegerWidth::Tiny),
        "smallint" => integer(IntegerWidth::Small),
        "mediumint" => integer(IntegerWidth::Medium),
        "int" | "integer" => integer(IntegerWidth::Int),
        "bigint" => integer(IntegerWidth::Big),
        "decimal" | "numeric" => {
            let (precision, scale) = precision_scale(&column_type_lower).unwrap_or((10, 0));
            ColumnType::Decimal {
                precision,
                scale,
                unsigned,
            }
        }
        "float" => ColumnType::Float,
        "double" | "real" | "double precision" => ColumnType::Double,
        "bit" => ColumnType::Bit {
            width: first_number(&column_type_lower).unwrap_or(1).min(64) as u8,
        },
        "year" => ColumnType::Year,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time {
            fractional_digits: digits(),
        },
        "datetime" => ColumnType::DateTime {
            fractional_digits: digits(),
        },
        "timestamp" => ColumnType::Timestamp {
            fractional_digits: digits(),
        },
        "char" => ColumnType::Char { length: length() },
        "varchar" => ColumnType::VarChar { length: length() },
        "tinytext" => ColumnType::Text { max_bytes: 255 },
        "text" => ColumnType::Text { max_bytes: 65_535 },
        "mediumtext" => ColumnType::Text {
            max_bytes: 16_777_215,
        },
        "longtext" => ColumnType::Text {
            max_bytes: 4_294_967_295,
        },
        "binary" => ColumnType::Binary { length: length() },
        "varbinary" => ColumnType::VarBinary { length: length() },
        "tinyblob" => ColumnType::Blob { max_bytes: 255 },
        "blob" => ColumnType::Blob { max_bytes: 65_535 },
        "mediumblob" => ColumnType::Blob {
            max_bytes: 16_777_215,
        },
        "longblob" | "vector" => ColumnType::Blob {
            max_bytes: 4_294_967_295,
        },
        "enum" => ColumnType::Enum {
            members: members(column_type)?,
        },
        "set" => ColumnType::Set {
            members: members(column_type)?,
        },
        "json" => ColumnType::Json,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => ColumnType::Geometry,
        "uuid" => ColumnType::Uuid,
        "inet6" => ColumnType::Inet6,
        other => {
            return Err(format!(
                "column type `{other}` ({column_type}) is not supported"
            ));
        }
    })
}

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
        let parsed = parse_column_type(&data_type, &column_type)
            .map_err(|reason| format!("column `{name}`: {reason}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_parse_from_information_schema() {
        assert_eq!(
            parse_column_type("int", "int(10) unsigned"),
            Ok(ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: true
            })
        );
        assert_eq!(
            parse_column_type("decimal", "decimal(65,30)"),
            Ok(ColumnType::Decimal {
                precision: 65,
                scale: 30,
                unsigned: false
            })
        );
        assert_eq!(
            parse_column_type("datetime", "datetime(3)"),
            Ok(ColumnType::DateTime {
                fractional_digits: 3
            })
        );
        assert_eq!(
            parse_column_type("varchar", "varchar(300)"),
            Ok(ColumnType::VarChar { length: 300 })
        );
        assert_eq!(
            parse_column_type("enum", "enum('a','it''s','c,d')"),
            Ok(ColumnType::Enum {
                members: vec!["a".into(), "it's".into(), "c,d".into()]
            })
        );
        assert_eq!(
            parse_column_type("bit", "bit(64)"),
            Ok(ColumnType::Bit { width: 64 })
        );
        assert!(parse_column_type("inet4", "inet4").is_err());
        assert!(parse_column_type("enum", "enum('a").is_err());
    }
}
