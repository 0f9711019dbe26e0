//! A table's schema as far as its TABLE_MAP tells it: column storage types plus the optional
//! metadata block (`binlog_row_metadata=MINIMAL|FULL`: signedness, charsets, column names,
//! ENUM/SET members, primary key).
//!
//! ```text
//! TABLE_MAP: types + per-type metadata + null bitmap + [ (type u8, length lenenc, value) ... ]
//!                                                        1 SIGNEDNESS   2 DEFAULT_CHARSET
//!                                                        3 COLUMN_CHARSET 4 COLUMN_NAME
//!                                                        5 SET_STR_VALUE 6 ENUM_STR_VALUE
//!                                                        8 SIMPLE_PRIMARY_KEY ...
//! ```
//!
//! The syncer decodes rows with the schema tracker's schema (MariaDB writes no optional
//! metadata by default). This is for tools that have no tracker (`binlog-dump`) and for
//! checking the tracker against the binlog. What the map does not say is filled in safely:
//! integers without SIGNEDNESS are signed, text without a charset is kept as bytes (nothing is
//! lost), names without COLUMN_NAME are `@1`, `@2`, ...

use dm_core::{
    ColumnDefinition, ColumnType, IntegerWidth, KeyColumn, KeyDefinition, KeyKind, TableRef,
    TableSchema,
};

use crate::bytes::ByteReader;
use crate::error::BinlogError;
use crate::event::TableMap;

mod field {
    pub const SIGNEDNESS: u8 = 1;
    pub const DEFAULT_CHARSET: u8 = 2;
    pub const COLUMN_CHARSET: u8 = 3;
    pub const COLUMN_NAME: u8 = 4;
    pub const SET_STR_VALUE: u8 = 5;
    pub const ENUM_STR_VALUE: u8 = 6;
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
}

/// The optional metadata of a table map, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionalMetadata {
    /// One flag per numeric column, in order: unsigned.
    pub unsigned: Option<Vec<bool>>,
    /// One collation id per character column, in order.
    pub collations: Option<Vec<u32>>,
    /// Column names.
    pub names: Option<Vec<String>>,
    /// Members of each SET column, in order.
    pub set_members: Vec<Vec<String>>,
    /// Members of each ENUM column, in order.
    pub enum_members: Vec<Vec<String>>,
    /// Primary key column indexes (with prefix lengths, 0 = whole column).
    pub primary_key: Vec<(usize, u32)>,
}

fn is_numeric(binlog_type: u8) -> bool {
    matches!(binlog_type, 1..=5 | 8 | 9 | 246)
}

/// Character columns in the sense of COLUMN_CHARSET: strings and blobs (not ENUM/SET).
fn is_character(binlog_type: u8, metadata: [u8; 2]) -> bool {
    match binlog_type {
        15 | 253 | 252 => true,
        254 => !matches!(real_string_type(metadata), 247 | 248),
        _ => false,
    }
}

fn real_string_type(metadata: [u8; 2]) -> u8 {
    if metadata[0] & 0x30 != 0x30 {
        metadata[0] | 0x30
    } else {
        metadata[0]
    }
}

/// Parses the optional metadata block; unknown fields are skipped by their length.
pub fn parse_optional_metadata(map: &TableMap) -> Result<OptionalMetadata, String> {
    let types = &map.column_types;
    let storages = crate::rows::column_metadata(map)?;
    let numeric = types.iter().filter(|t| is_numeric(**t)).count();
    let character = types
        .iter()
        .zip(&storages)
        .filter(|(t, m)| is_character(**t, **m))
        .count();
    let mut parsed = OptionalMetadata::default();
    let mut reader = ByteReader::new(&map.optional_metadata);
    while reader.remaining() > 0 {
        let kind = reader.u8("metadata field type")?;
        let length = reader.length_encoded("metadata field length")?;
        let value = reader.take(length as usize, "metadata field")?;
        let mut field_reader = ByteReader::new(value);
        match kind {
            field::SIGNEDNESS => {
                parsed.unsigned = Some(
                    (0..numeric)
                        .map(|index| {
                            value
                                .get(index / 8)
                                .is_some_and(|byte| byte & (0x80 >> (index % 8)) != 0)
                        })
                        .collect(),
                );
            }
            field::DEFAULT_CHARSET => {
                let default = field_reader.length_encoded("default collation")? as u32;
                let mut collations = vec![default; character];
                while field_reader.remaining() > 0 {
                    let index = field_reader.length_encoded("column index")? as usize;
                    let collation = field_reader.length_encoded("collation")? as u32;
                    if let Some(slot) = collations.get_mut(index) {
                        *slot = collation;
                    }
                }
                parsed.collations = Some(collations);
            }
            field::COLUMN_CHARSET => {
                let mut collations = Vec::new();
                while field_reader.remaining() > 0 {
                    collations.push(field_reader.length_encoded("collation")? as u32);
                }
                parsed.collations = Some(collations);
            }
            field::COLUMN_NAME => {
                let mut names = Vec::new();
                while field_reader.remaining() > 0 {
                    names.push(length_encoded_string(&mut field_reader)?);
                }
                parsed.names = Some(names);
            }
            field::SET_STR_VALUE | field::ENUM_STR_VALUE => {
                let mut columns = Vec::new();
                while field_reader.remaining() > 0 {
                    let count = field_reader.length_encoded("member count")?;
                    let mut members = Vec::new();
                    for _ in 0..count {
                        members.push(length_encoded_string(&mut field_reader)?);
                    }
                    columns.push(members);
                }
                if kind == field::SET_STR_VALUE {
                    parsed.set_members = columns;
                } else {
                    parsed.enum_members = columns;
                }
            }
            field::SIMPLE_PRIMARY_KEY => {
                while field_reader.remaining() > 0 {
                    let column = field_reader.length_encoded("key column")? as usize;
                    parsed.primary_key.push((column, 0));
                }
            }
            field::PRIMARY_KEY_WITH_PREFIX => {
                while field_reader.remaining() > 0 {
                    let column = field_reader.length_encoded("key column")? as usize;
                    let prefix = field_reader.length_encoded("key prefix")? as u32;
                    parsed.primary_key.push((column, prefix));
                }
            }
            _ => {}
        }
    }
    Ok(parsed)
}

fn length_encoded_string(reader: &mut ByteReader<'_>) -> Result<String, String> {
    let length = reader.length_encoded("string length")?;
    Ok(String::from_utf8_lossy(reader.take(length as usize, "string")?).into_owned())
}

/// The character set of a collation id (MySQL and MariaDB numbering), for the charsets the row
/// decoder reads; `None` for others.
pub fn charset_of_collation(collation: u32) -> Option<&'static str> {
    Some(match collation {
        63 => "binary",
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        11 | 65 => "ascii",
        33 | 83 | 192..=215 | 223 | 76 => "utf8mb3",
        45 | 46 | 224..=247 | 255..=323 | 2048..=2559 => "utf8mb4",
        _ => return None,
    })
}

/// Builds the schema the table map describes (see the module documentation for the defaults).
pub fn schema_from_table_map(map: &TableMap) -> Result<TableSchema, BinlogError> {
    let undecodable = |reason: String| BinlogError::UndecodableRow {
        table: format!("{}.{}", map.schema, map.table),
        reason,
    };
    let metadata = parse_optional_metadata(map).map_err(undecodable)?;
    let storages = crate::rows::column_metadata(map).map_err(undecodable)?;
    let mut numeric_index = 0;
    let mut character_index = 0;
    let mut enum_index = 0;
    let mut set_index = 0;
    let mut columns = Vec::with_capacity(map.column_types.len());
    for (index, (&binlog_type, &meta)) in map.column_types.iter().zip(&storages).enumerate() {
        let unsigned = if is_numeric(binlog_type) {
            numeric_index += 1;
            metadata
                .unsigned
                .as_ref()
                .and_then(|flags| flags.get(numeric_index - 1).copied())
                .unwrap_or(false)
        } else {
            false
        };
        let charset = if is_character(binlog_type, meta) {
            character_index += 1;
            metadata
                .collations
                .as_ref()
                .and_then(|collations| collations.get(character_index - 1))
                .map(|collation| charset_of_collation(*collation).unwrap_or("binary"))
                .unwrap_or("binary")
        } else {
            "binary"
        };
        let binary = charset == "binary";
        let integer = |width| ColumnType::Integer { width, unsigned };
        let pack_bytes = |pack: u8| match pack {
            1 => 255u64,
            2 => 65_535,
            3 => 16_777_215,
            _ => 4_294_967_295,
        };
        let column_type = match binlog_type {
            1 => integer(IntegerWidth::Tiny),
            2 => integer(IntegerWidth::Small),
            9 => integer(IntegerWidth::Medium),
            3 => integer(IntegerWidth::Int),
            8 => integer(IntegerWidth::Big),
            4 => ColumnType::Float,
            5 => ColumnType::Double,
            246 => ColumnType::Decimal {
                precision: meta[0],
                scale: meta[1],
                unsigned,
            },
            13 => ColumnType::Year,
            10 => ColumnType::Date,
            19 => ColumnType::Time {
                fractional_digits: meta[0],
            },
            18 => ColumnType::DateTime {
                fractional_digits: meta[0],
            },
            17 => ColumnType::Timestamp {
                fractional_digits: meta[0],
            },
            15 | 253 => {
                let length = u32::from(u16::from_le_bytes(meta));
                if binary {
                    ColumnType::VarBinary { length }
                } else {
                    ColumnType::VarChar { length }
                }
            }
            254 => match real_string_type(meta) {
                247 => {
                    enum_index += 1;
                    ColumnType::Enum {
                        members: metadata
                            .enum_members
                            .get(enum_index - 1)
                            .cloned()
                            .unwrap_or_default(),
                    }
                }
                248 => {
                    set_index += 1;
                    ColumnType::Set {
                        members: metadata
                            .set_members
                            .get(set_index - 1)
                            .cloned()
                            .unwrap_or_default(),
                    }
                }
                _ => {
                    let length = u32::from(meta[1]) | (u32::from((meta[0] & 0x30) ^ 0x30) << 4);
                    if binary {
                        ColumnType::Binary { length }
                    } else {
                        ColumnType::Char { length }
                    }
                }
            },
            252 => {
                let max_bytes = pack_bytes(meta[0]);
                if binary {
                    ColumnType::Blob { max_bytes }
                } else {
                    ColumnType::Text { max_bytes }
                }
            }
            // BIT(M): M / 8 whole bytes in the second byte, M % 8 bits in the first.
            16 => ColumnType::Bit {
                width: u8::try_from(u16::from(meta[1]) * 8 + u16::from(meta[0]))
                    .ok()
                    .filter(|width| *width <= 64)
                    .ok_or_else(|| {
                        undecodable(format!(
                            "column {} is BIT with {} bytes and {} bits, more than BIT(64)",
                            index + 1,
                            meta[1],
                            meta[0]
                        ))
                    })?,
            },
            // MySQL 9 VECTOR: float32 values, kept as bytes.
            242 => ColumnType::Blob {
                max_bytes: pack_bytes(meta[0]),
            },
            245 => ColumnType::Json,
            255 => ColumnType::Geometry,
            other => {
                return Err(undecodable(format!(
                    "column {} has binlog type {other}, which has no schema mapping",
                    index + 1
                )));
            }
        };
        let name = metadata
            .names
            .as_ref()
            .and_then(|names| names.get(index).cloned())
            .unwrap_or_else(|| format!("@{}", index + 1));
        let nullable = map
            .null_bitmap
            .get(index / 8)
            .is_some_and(|byte| byte & (1 << (index % 8)) != 0);
        let mut column = ColumnDefinition::new(name, column_type, nullable);
        if !binary {
            column.charset = Some(charset.to_owned());
        }
        columns.push(column);
    }
    let keys = if metadata.primary_key.is_empty() {
        Vec::new()
    } else {
        vec![KeyDefinition {
            name: "PRIMARY".into(),
            kind: KeyKind::Primary,
            columns: metadata
                .primary_key
                .iter()
                .map(|(column, prefix)| KeyColumn {
                    column: *column,
                    prefix_length: (*prefix > 0).then_some(*prefix),
                })
                .collect(),
        }]
    };
    TableSchema::new(TableRef::new(&map.schema, &map.table), columns, keys)
        .map_err(|error| undecodable(error.to_string()))
}
