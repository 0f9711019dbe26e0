//! Tables, columns and keys.
//!
//! A [`TableSchema`] is what the schema tracker knows about one table at one location: its
//! columns in order (rows are positional and aligned with them), their types, and its keys.
//! Row identity (WHERE clauses, causality keys, compaction) uses the **primary key**, or else the
//! first **unique key whose columns are all NOT NULL**: a nullable unique key does not identify a
//! row, because several rows may hold NULL in it.
//!
//! Invariants, enforced by [`TableSchema::new`]: column names are unique (case-insensitively, as
//! MySQL compares them), every key names existing columns, there is at most one primary key.
//! Identifiers are kept as written; [`quote_identifier`] quotes them for SQL.

use std::fmt;

use crate::error::CoreError;

/// Quotes an identifier with backticks, doubling any backtick inside it, so that no name can
/// break out of the quotes.
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A table: its schema (database) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TableRef {
    /// The database the table belongs to.
    pub schema: String,
    /// The table's name.
    pub table: String,
}

impl TableRef {
    /// A reference to `schema`.`table`.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        TableRef {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// `` `schema`.`table` ``, safe to put in SQL.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_identifier(&self.schema),
            quote_identifier(&self.table)
        )
    }
}

impl fmt::Display for TableRef {
    /// The quoted form, so that names with dots or spaces read unambiguously in messages.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.quoted())
    }
}

/// Width of an integer column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IntegerWidth {
    /// `TINYINT`, 1 byte.
    Tiny,
    /// `SMALLINT`, 2 bytes.
    Small,
    /// `MEDIUMINT`, 3 bytes.
    Medium,
    /// `INT`, 4 bytes.
    Int,
    /// `BIGINT`, 8 bytes.
    Big,
}

impl IntegerWidth {
    /// Storage size in bytes.
    pub fn bytes(self) -> u8 {
        match self {
            IntegerWidth::Tiny => 1,
            IntegerWidth::Small => 2,
            IntegerWidth::Medium => 3,
            IntegerWidth::Int => 4,
            IntegerWidth::Big => 8,
        }
    }
}

/// A column's type, as far as decoding and rendering values needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ColumnType {
    /// TINYINT .. BIGINT (BOOL is TINYINT(1)).
    Integer {
        /// Storage width.
        width: IntegerWidth,
        /// `UNSIGNED`.
        unsigned: bool,
    },
    /// `DECIMAL(precision, scale)`.
    Decimal {
        /// Total digits, 1..=65.
        precision: u8,
        /// Digits after the point, 0..=30.
        scale: u8,
        /// `UNSIGNED` (deprecated, still accepted).
        unsigned: bool,
    },
    /// `FLOAT`.
    Float,
    /// `DOUBLE` / `REAL`.
    Double,
    /// `BIT(width)`, 1..=64.
    Bit {
        /// Number of bits.
        width: u8,
    },
    /// `YEAR`.
    Year,
    /// `DATE`.
    Date,
    /// `TIME(fsp)`.
    Time {
        /// Fractional-second digits, 0..=6.
        fractional_digits: u8,
    },
    /// `DATETIME(fsp)`.
    DateTime {
        /// Fractional-second digits, 0..=6.
        fractional_digits: u8,
    },
    /// `TIMESTAMP(fsp)`.
    Timestamp {
        /// Fractional-second digits, 0..=6.
        fractional_digits: u8,
    },
    /// `CHAR(length)`, length in characters.
    Char {
        /// Maximum characters.
        length: u32,
    },
    /// `VARCHAR(length)`, length in characters.
    VarChar {
        /// Maximum characters.
        length: u32,
    },
    /// `TINYTEXT` .. `LONGTEXT`.
    Text {
        /// Maximum bytes (255, 65535, 16777215 or 4294967295).
        max_bytes: u64,
    },
    /// `BINARY(length)`, length in bytes.
    Binary {
        /// Bytes.
        length: u32,
    },
    /// `VARBINARY(length)`.
    VarBinary {
        /// Maximum bytes.
        length: u32,
    },
    /// `TINYBLOB` .. `LONGBLOB`.
    Blob {
        /// Maximum bytes.
        max_bytes: u64,
    },
    /// `ENUM('a', 'b', ...)`.
    Enum {
        /// Members in declaration order (index 1 is the first).
        members: Vec<String>,
    },
    /// `SET('a', 'b', ...)`.
    Set {
        /// Members in declaration order (bit 0 is the first).
        members: Vec<String>,
    },
    /// `JSON` (MySQL binary JSON; in MariaDB an alias of LONGTEXT with a JSON check).
    Json,
    /// `GEOMETRY`, `POINT`, `POLYGON`, ...
    Geometry,
    /// MariaDB `UUID`.
    Uuid,
    /// MariaDB `INET6`.
    Inet6,
}

impl ColumnType {
    /// Whether values of this type are character data (compared by collation).
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            ColumnType::Char { .. }
                | ColumnType::VarChar { .. }
                | ColumnType::Text { .. }
                | ColumnType::Enum { .. }
                | ColumnType::Set { .. }
        )
    }
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ColumnDefinition {
    /// The column's name, as written.
    pub name: String,
    /// Its type.
    pub column_type: ColumnType,
    /// Whether NULL is allowed (a nullable unique key cannot identify a row).
    pub nullable: bool,
    /// Character set of text columns (`utf8mb4`, `latin1`, `gbk`...); `None` for other types.
    pub charset: Option<String>,
    /// Collation of text columns; decides how key values compare.
    pub collation: Option<String>,
    /// Whether the column is generated (`AS (expr)`): never written explicitly downstream.
    pub generated: bool,
}

impl ColumnDefinition {
    /// A non-generated column without charset information.
    pub fn new(name: impl Into<String>, column_type: ColumnType, nullable: bool) -> Self {
        ColumnDefinition {
            name: name.into(),
            column_type,
            nullable,
            charset: None,
            collation: None,
            generated: false,
        }
    }
}

/// Whether a key is the primary key or a unique key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KeyKind {
    /// `PRIMARY KEY`.
    Primary,
    /// `UNIQUE KEY`.
    Unique,
}

/// One column of a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeyColumn {
    /// Index of the column in [`TableSchema::columns`].
    pub column: usize,
    /// `KEY (name(10))`: only the first characters or bytes take part.
    pub prefix_length: Option<u32>,
}

/// A primary or unique key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeyDefinition {
    /// The key's name (`PRIMARY` for the primary key).
    pub name: String,
    /// Primary or unique.
    pub kind: KeyKind,
    /// Its columns, in key order.
    pub columns: Vec<KeyColumn>,
}

/// The structure of one table at one point in the binlog.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "TableSchemaParts"))]
pub struct TableSchema {
    table: TableRef,
    columns: Vec<ColumnDefinition>,
    keys: Vec<KeyDefinition>,
}

/// A [`TableSchema`]'s parts as stored (serde), checked by [`TableSchema::new`] when read back.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct TableSchemaParts {
    table: TableRef,
    columns: Vec<ColumnDefinition>,
    keys: Vec<KeyDefinition>,
}

#[cfg(feature = "serde")]
impl TryFrom<TableSchemaParts> for TableSchema {
    type Error = CoreError;

    fn try_from(parts: TableSchemaParts) -> Result<Self, CoreError> {
        TableSchema::new(parts.table, parts.columns, parts.keys)
    }
}

impl TableSchema {
    /// Checks and builds a schema (see the module invariants). Only primary and unique keys
    /// matter here; plain indexes are not kept.
    pub fn new(
        table: TableRef,
        columns: Vec<ColumnDefinition>,
        keys: Vec<KeyDefinition>,
    ) -> Result<Self, CoreError> {
        let invalid = |reason: String| CoreError::InvalidTableSchema {
            table: table.quoted(),
            reason,
        };
        for (index, column) in columns.iter().enumerate() {
            if columns[..index]
                .iter()
                .any(|earlier| earlier.name.eq_ignore_ascii_case(&column.name))
            {
                return Err(invalid(format!(
                    "column {} appears twice",
                    quote_identifier(&column.name)
                )));
            }
        }
        if keys
            .iter()
            .filter(|key| key.kind == KeyKind::Primary)
            .count()
            > 1
        {
            return Err(invalid("it has more than one primary key".into()));
        }
        for key in &keys {
            if key.columns.is_empty() {
                return Err(invalid(format!(
                    "key {} has no columns",
                    quote_identifier(&key.name)
                )));
            }
            if let Some(bad) = key.columns.iter().find(|part| part.column >= columns.len()) {
                return Err(invalid(format!(
                    "key {} refers to column #{} but the table has {} columns",
                    quote_identifier(&key.name),
                    bad.column,
                    columns.len()
                )));
            }
        }
        Ok(TableSchema {
            table,
            columns,
            keys,
        })
    }

    /// The table this schema describes.
    pub fn table(&self) -> &TableRef {
        &self.table
    }

    /// Columns in table order.
    pub fn columns(&self) -> &[ColumnDefinition] {
        &self.columns
    }

    /// Primary and unique keys.
    pub fn keys(&self) -> &[KeyDefinition] {
        &self.keys
    }

    /// The index of a column by name (case-insensitive, as MySQL compares column names).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|column| column.name.eq_ignore_ascii_case(name))
    }

    /// The primary key, if any.
    pub fn primary_key(&self) -> Option<&KeyDefinition> {
        self.keys.iter().find(|key| key.kind == KeyKind::Primary)
    }

    /// Keys that identify a row: the primary key and every unique key whose columns are all
    /// NOT NULL, in declaration order with the primary key first.
    pub fn identifying_keys(&self) -> impl Iterator<Item = &KeyDefinition> {
        let primary = self.primary_key();
        primary.into_iter().chain(self.keys.iter().filter(|key| {
            key.kind == KeyKind::Unique
                && key
                    .columns
                    .iter()
                    .all(|part| self.columns.get(part.column).is_some_and(|c| !c.nullable))
        }))
    }

    /// The key used for WHERE clauses: the primary key, else the first not-null unique key;
    /// `None` when the table has neither (then every column identifies the row).
    pub fn row_identity_key(&self) -> Option<&KeyDefinition> {
        self.identifying_keys().next()
    }
}

// ---------------------------------------------------------------------------------------------
// Column types from SQL text

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

impl ColumnType {
    /// The type that `information_schema.COLUMNS` describes with `DATA_TYPE` (`int`) and
    /// `COLUMN_TYPE` (`int(10) unsigned`); also what a `CREATE TABLE` writes (`INT(10) UNSIGNED`,
    /// with the first word as `data_type`).
    pub fn from_sql(data_type: &str, column_type: &str) -> Result<ColumnType, CoreError> {
        let unsupported = |reason: String| CoreError::UnsupportedColumnType {
            column_type: column_type.to_owned(),
            reason,
        };
        let data_type = data_type.trim().to_ascii_lowercase();
        let column_type_lower = column_type.to_ascii_lowercase();
        let unsigned = column_type_lower.contains("unsigned");
        let integer = |width| ColumnType::Integer { width, unsigned };
        let digits = || first_number(&column_type_lower).unwrap_or(0).min(6) as u8;
        let length = || first_number(&column_type_lower).unwrap_or(1);
        Ok(match data_type.as_str() {
            "bool" | "boolean" => ColumnType::Integer {
                width: IntegerWidth::Tiny,
                unsigned: false,
            },
            "serial" => ColumnType::Integer {
                width: IntegerWidth::Big,
                unsigned: true,
            },
            "tinyint" | "int1" => integer(IntegerWidth::Tiny),
            "smallint" => integer(IntegerWidth::Small),
            "mediumint" => integer(IntegerWidth::Medium),
            "int" | "integer" | "int4" => integer(IntegerWidth::Int),
            "bigint" => integer(IntegerWidth::Big),
            "decimal" | "numeric" | "dec" | "fixed" => {
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
            "char" | "character" | "nchar" => ColumnType::Char { length: length() },
            "varchar" | "nvarchar" | "character varying" => {
                ColumnType::VarChar { length: length() }
            }
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
                members: members(column_type).map_err(unsupported)?,
            },
            "set" => ColumnType::Set {
                members: members(column_type).map_err(unsupported)?,
            },
            "json" => ColumnType::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => ColumnType::Geometry,
            "uuid" => ColumnType::Uuid,
            "inet6" => ColumnType::Inet6,
            other => return Err(unsupported(format!("`{other}` is not a supported type"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(name: &str, nullable: bool) -> ColumnDefinition {
        ColumnDefinition::new(
            name,
            ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: false,
            },
            nullable,
        )
    }

    fn key(name: &str, kind: KeyKind, columns: &[usize]) -> KeyDefinition {
        KeyDefinition {
            name: name.into(),
            kind,
            columns: columns
                .iter()
                .map(|column| KeyColumn {
                    column: *column,
                    prefix_length: None,
                })
                .collect(),
        }
    }

    #[test]
    fn identity_prefers_primary_then_not_null_unique() {
        let table = TableRef::new("shop", "orders");
        let columns = vec![int("id", false), int("code", true), int("serial", false)];
        let schema = TableSchema::new(
            table.clone(),
            columns.clone(),
            vec![
                key("code", KeyKind::Unique, &[1]),
                key("serial", KeyKind::Unique, &[2]),
            ],
        )
        .unwrap();
        assert_eq!(schema.row_identity_key().unwrap().name, "serial");
        let with_primary = TableSchema::new(
            table.clone(),
            columns.clone(),
            vec![
                key("serial", KeyKind::Unique, &[2]),
                key("PRIMARY", KeyKind::Primary, &[0]),
            ],
        )
        .unwrap();
        let names: Vec<_> = with_primary
            .identifying_keys()
            .map(|key| key.name.as_str())
            .collect();
        assert_eq!(names, ["PRIMARY", "serial"]);
        let keyless =
            TableSchema::new(table, columns, vec![key("code", KeyKind::Unique, &[1])]).unwrap();
        assert!(keyless.row_identity_key().is_none());
        assert_eq!(keyless.column_index("CODE"), Some(1));
    }

    #[test]
    fn contradictions_are_rejected_with_the_reason() {
        let table = TableRef::new("a`b", "t");
        let error = TableSchema::new(
            table.clone(),
            vec![int("x", false), int("X", false)],
            vec![],
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid schema of table `a``b`.`t`: column `X` appears twice"
        );
        let error = TableSchema::new(
            table,
            vec![int("x", false)],
            vec![key("PRIMARY", KeyKind::Primary, &[3])],
        )
        .unwrap_err();
        assert!(error.to_string().contains("refers to column #3"), "{error}");
    }

    #[test]
    fn column_types_parse_from_sql() {
        assert_eq!(
            ColumnType::from_sql("int", "int(10) unsigned"),
            Ok(ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: true
            })
        );
        assert_eq!(
            ColumnType::from_sql("decimal", "decimal(65,30)"),
            Ok(ColumnType::Decimal {
                precision: 65,
                scale: 30,
                unsigned: false
            })
        );
        assert_eq!(
            ColumnType::from_sql("datetime", "datetime(3)"),
            Ok(ColumnType::DateTime {
                fractional_digits: 3
            })
        );
        assert_eq!(
            ColumnType::from_sql("varchar", "varchar(300)"),
            Ok(ColumnType::VarChar { length: 300 })
        );
        assert_eq!(
            ColumnType::from_sql("enum", "enum('a','it''s','c,d')"),
            Ok(ColumnType::Enum {
                members: vec!["a".into(), "it's".into(), "c,d".into()]
            })
        );
        assert_eq!(
            ColumnType::from_sql("bit", "bit(64)"),
            Ok(ColumnType::Bit { width: 64 })
        );
        assert!(ColumnType::from_sql("inet4", "inet4").is_err());
        assert!(ColumnType::from_sql("enum", "enum('a").is_err());
    }
}
