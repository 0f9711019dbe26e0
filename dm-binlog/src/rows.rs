//! Row images: from a rows event's bytes to `dm_core::Row`s, exactly.
//!
//! ```text
//! RowsEvent.rows + TableMap (binlog types, metadata) + TableSchema (signedness, charsets, types)
//!     --decode_rows--> [(before, after)] as dm_core::Row
//! ```
//!
//! The table map says how each column is stored; the table schema (from the schema tracker) says
//! what the bytes mean where the binlog does not: signedness (MariaDB writes no signedness
//! metadata by default), character set, ENUM/SET members. Rules that differ from other decoders:
//! - unsigned integers stay unsigned (`TINYINT UNSIGNED 250` is 250, not -6);
//! - negative TIME with a fraction is decoded as the server's `my_time_packed_from_binary` does
//!   (mysql_common panics or corrupts it); YEAR 0 is 0, not 1900;
//! - DECIMAL is exact text; text columns in utf8/utf8mb3/utf8mb4/ascii/latin1 are UTF-8 strings
//!   converted from their charset; in any other charset (gbk, big5, sjis...) they stay the
//!   column's bytes ([`Value::Bytes`]), never a lossy guess: a sink writes them back as bytes
//!   and the downstream column stores them unchanged;
//! - BINARY(n) values get back the trailing 0x00 padding the binlog strips;
//! - a column missing from an image (`binlog_row_image` other than FULL) is an error naming it.
//!
//! Not decoded (an error naming the column): the pre-5.6 temporal formats.

use dm_core::{
    ColumnDefinition, ColumnType, Date, DateTime, Decimal, Row, TableSchema, Time, Timestamp, Value,
};

use crate::bytes::ByteReader;
use crate::error::BinlogError;
use crate::event::{RowsEvent, RowsKind, TableMap};
use crate::json::JsonValue;

/// Binlog column type codes.
mod column_type {
    #![allow(missing_docs)]
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const YEAR: u8 = 13;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const VECTOR: u8 = 242;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// How one column is stored, from the table map.
#[derive(Clone, Copy, Debug)]
struct Storage {
    binlog_type: u8,
    /// Type-specific metadata, up to two bytes.
    metadata: [u8; 2],
}

/// How many metadata bytes a binlog column type has in the table map.
fn metadata_width(binlog_type: u8) -> usize {
    use column_type as t;
    match binlog_type {
        t::FLOAT
        | t::DOUBLE
        | t::BLOB
        | t::GEOMETRY
        | t::VECTOR
        | t::JSON
        | t::TIMESTAMP2
        | t::DATETIME2
        | t::TIME2 => 1,
        t::VARCHAR | t::VAR_STRING | t::BIT | t::NEWDECIMAL | t::STRING | t::ENUM | t::SET => 2,
        _ => 0,
    }
}

/// Splits the table map's metadata block per column.
fn storages(map: &TableMap) -> Result<Vec<Storage>, String> {
    let mut reader = ByteReader::new(&map.column_metadata);
    map.column_types
        .iter()
        .map(|&binlog_type| {
            let mut metadata = [0u8; 2];
            let width = metadata_width(binlog_type);
            metadata[..width].copy_from_slice(reader.take(width, "column metadata")?);
            Ok(Storage {
                binlog_type,
                metadata,
            })
        })
        .collect()
}

/// Each column's type-specific metadata bytes (up to two), from the table map.
pub(crate) fn column_metadata(map: &TableMap) -> Result<Vec<[u8; 2]>, String> {
    Ok(storages(map)?
        .into_iter()
        .map(|storage| storage.metadata)
        .collect())
}

fn bit(bitmap: &[u8], index: usize) -> bool {
    bitmap
        .get(index / 8)
        .is_some_and(|byte| byte & (1 << (index % 8)) != 0)
}

/// One row of a rows event: the before image (updates, deletes) and the after image (writes,
/// updates).
pub type RowImages = (Option<Row>, Option<Row>);

/// Decodes every row of a rows event, as its kind has them.
pub fn decode_rows(
    event: &RowsEvent,
    map: &TableMap,
    schema: &TableSchema,
) -> Result<Vec<RowImages>, BinlogError> {
    decode_all(event, map, schema).map_err(|reason| BinlogError::UndecodableRow {
        table: format!("{}.{}", map.schema, map.table),
        reason,
    })
}

fn decode_all(
    event: &RowsEvent,
    map: &TableMap,
    schema: &TableSchema,
) -> Result<Vec<RowImages>, String> {
    let storages = storages(map)?;
    if storages.len() != schema.columns().len() {
        return Err(format!(
            "the binlog has {} columns for {}.{}, the tracked schema {}: the schema is out of date",
            storages.len(),
            map.schema,
            map.table,
            schema.columns().len()
        ));
    }
    let mut reader = ByteReader::new(&event.rows);
    let mut rows = Vec::new();
    let mut before_documents = Vec::new();
    while reader.remaining() > 0 {
        let remaining = reader.remaining();
        // A partial update's after image may hold JSON diffs against the before image's
        // documents: keep those (only then).
        let capture = (event.partial_json).then_some(&mut before_documents);
        let first = decode_image(
            &mut reader,
            &event.columns_present,
            &storages,
            schema,
            None,
            capture,
        )?;
        rows.push(match event.kind {
            RowsKind::Write => (None, Some(first)),
            RowsKind::Delete => (Some(first), None),
            RowsKind::Update => {
                let present = event
                    .columns_present_after
                    .as_deref()
                    .unwrap_or(&event.columns_present);
                let partial = if event.partial_json {
                    partial_json_columns(&mut reader, &storages)?
                } else {
                    None
                };
                let diffs = partial
                    .as_deref()
                    .map(|flags| (flags, before_documents.as_slice()));
                let second = decode_image(&mut reader, present, &storages, schema, diffs, None)?;
                (Some(first), Some(second))
            }
        });
        // A row of a table without columns takes no bytes: the rest would decode to rows
        // forever.
        if reader.remaining() == remaining {
            return Err(format!(
                "a row of {}.{} takes no bytes ({} left over): a table map without columns",
                map.schema,
                map.table,
                reader.remaining()
            ));
        }
    }
    Ok(rows)
}

/// The value options before a PARTIAL_UPDATE_ROWS after image. With PARTIAL_JSON_UPDATES set, a
/// bitmap over the table's JSON columns (in order) marks those whose value in the after image
/// is a diff vector against the before image's document. Returns the flag per column.
fn partial_json_columns(
    reader: &mut ByteReader<'_>,
    storages: &[Storage],
) -> Result<Option<Vec<bool>>, String> {
    let options = reader.length_encoded("value options")?;
    if options & 1 == 0 {
        return Ok(None);
    }
    let json_columns: Vec<usize> = (0..storages.len())
        .filter(|index| storages[*index].binlog_type == column_type::JSON)
        .collect();
    let bitmap = reader.take(json_columns.len().div_ceil(8), "partial JSON bitmap")?;
    let mut flags = vec![false; storages.len()];
    for (position, column) in json_columns.iter().enumerate() {
        flags[*column] = bit(bitmap, position);
    }
    Ok(Some(flags))
}

/// JSON diffs of a partial update's after image: which columns hold them, and the before
/// image's documents they apply to.
type JsonDiffs<'a> = (&'a [bool], &'a [Option<JsonValue>]);

fn decode_image(
    reader: &mut ByteReader<'_>,
    present: &[u8],
    storages: &[Storage],
    schema: &TableSchema,
    diffs: Option<JsonDiffs<'_>>,
    mut capture: Option<&mut Vec<Option<JsonValue>>>,
) -> Result<Row, String> {
    if let Some(documents) = capture.as_deref_mut() {
        documents.clear();
        documents.resize(storages.len(), None);
    }
    if let Some(missing) = (0..storages.len()).find(|index| !bit(present, *index)) {
        return Err(format!(
            "column `{}` is not in the row image: set binlog_row_image=FULL on the upstream",
            schema.columns()[missing].name
        ));
    }
    let null_bitmap = reader.take(storages.len().div_ceil(8), "null bitmap")?;
    let mut values = Vec::with_capacity(storages.len());
    for (index, (storage, column)) in storages.iter().zip(schema.columns()).enumerate() {
        if bit(null_bitmap, index) {
            values.push(Value::Null);
        } else if storage.binlog_type == column_type::JSON && (diffs.is_some() || capture.is_some())
        {
            let length = reader.uint(usize::from(storage.metadata[0]), "JSON length")?;
            let bytes = reader.take(length as usize, "JSON")?;
            let document = match diffs {
                Some((partial, before)) if partial.get(index) == Some(&true) => {
                    let mut document = before.get(index).cloned().flatten().ok_or_else(|| {
                        format!(
                            "column `{}` has a partial JSON update but no document in the before image: set binlog_row_image=FULL on the upstream",
                            column.name
                        )
                    })?;
                    crate::json::apply_json_diffs(&mut document, bytes)
                        .map_err(|reason| format!("column `{}`: {reason}", column.name))?;
                    document
                }
                _ => crate::json::decode_json(bytes)
                    .map_err(|reason| format!("column `{}`: {reason}", column.name))?,
            };
            values.push(Value::Json(document.to_json_text()));
            if let Some(documents) = capture.as_deref_mut() {
                documents[index] = Some(document);
            }
        } else {
            values.push(
                decode_value(reader, *storage, column)
                    .map_err(|reason| format!("column `{}`: {reason}", column.name))?,
            );
        }
    }
    Ok(Row(values))
}

fn unsigned(column: &ColumnDefinition) -> bool {
    matches!(
        column.column_type,
        ColumnType::Integer { unsigned: true, .. }
    )
}

fn integer(
    reader: &mut ByteReader<'_>,
    width: usize,
    column: &ColumnDefinition,
) -> Result<Value, String> {
    let raw = reader.uint(width, "integer")?;
    if unsigned(column) {
        return Ok(Value::UInt(raw));
    }
    let shift = 64 - 8 * width as u32;
    Ok(Value::Int(((raw << shift) as i64) >> shift))
}

fn big_endian(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
}

/// Fractional seconds stored after a temporal value: (bytes, multiplier to microseconds).
fn fraction_layout(fsp: u8) -> (usize, u32) {
    match fsp {
        1 | 2 => (1, 10_000),
        3 | 4 => (2, 100),
        5 | 6 => (3, 1),
        _ => (0, 0),
    }
}

fn text(bytes: &[u8], column: &ColumnDefinition) -> Result<Value, String> {
    let charset = column.charset.as_deref().unwrap_or("utf8mb4");
    let is = |name: &str| charset.eq_ignore_ascii_case(name);
    if is("utf8mb4") || is("utf8") || is("utf8mb3") || is("ascii") {
        std::str::from_utf8(bytes)
            .map(|text| Value::Text(text.to_owned()))
            .map_err(|error| format!("is not valid {charset}: {error}"))
    } else if is("binary") {
        Ok(Value::Bytes(bytes.to_vec()))
    } else if is("latin1") {
        // MySQL's latin1 is Windows-1252; its five unassigned bytes map to the C1 controls.
        Ok(Value::Text(
            bytes.iter().map(|byte| cp1252(*byte)).collect(),
        ))
    } else {
        // gbk, big5, sjis, ...: the bytes as stored. Converting through a Unicode table could
        // change a character where MySQL's table and the converter's differ; bytes cannot.
        Ok(Value::Bytes(bytes.to_vec()))
    }
}

fn cp1252(byte: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039,
        0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
        0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
    ];
    match byte {
        0x80..=0x9f => {
            char::from_u32(u32::from(HIGH[usize::from(byte - 0x80)])).unwrap_or('\u{fffd}')
        }
        other => char::from(other),
    }
}

/// Character data or binary data, as the column's type says.
fn string_value(bytes: &[u8], column: &ColumnDefinition) -> Result<Value, String> {
    match column.column_type {
        ColumnType::Char { .. } | ColumnType::VarChar { .. } | ColumnType::Text { .. } => {
            text(bytes, column)
        }
        ColumnType::Json => text(bytes, column).map(|value| match value {
            Value::Text(json) => Value::Json(json),
            other => other,
        }),
        // MariaDB stores both as BINARY(16), and the binlog strips its trailing zero bytes.
        ColumnType::Uuid => sixteen_bytes(bytes, "a UUID").map(Value::Uuid),
        ColumnType::Inet6 => sixteen_bytes(bytes, "an INET6").map(Value::Inet6),
        // The binlog strips BINARY(n)'s trailing 0x00 padding; the stored value has n bytes.
        ColumnType::Binary { length } if bytes.len() < length as usize => {
            let mut padded = bytes.to_vec();
            padded.resize(length as usize, 0);
            Ok(Value::Bytes(padded))
        }
        _ => Ok(Value::Bytes(bytes.to_vec())),
    }
}

fn sixteen_bytes(bytes: &[u8], what: &str) -> Result<[u8; 16], String> {
    if bytes.len() > 16 {
        return Err(format!("{what} has 16 bytes, not {}", bytes.len()));
    }
    let mut padded = [0u8; 16];
    padded[..bytes.len()].copy_from_slice(bytes);
    Ok(padded)
}

fn decode_value(
    reader: &mut ByteReader<'_>,
    storage: Storage,
    column: &ColumnDefinition,
) -> Result<Value, String> {
    use column_type as t;
    let [first, second] = storage.metadata;
    Ok(match storage.binlog_type {
        t::TINY => integer(reader, 1, column)?,
        t::SHORT => integer(reader, 2, column)?,
        t::INT24 => integer(reader, 3, column)?,
        t::LONG => integer(reader, 4, column)?,
        t::LONGLONG => integer(reader, 8, column)?,
        t::FLOAT => Value::Float(f32::from_bits(reader.u32("float")?)),
        t::DOUBLE => Value::Double(f64::from_bits(reader.u64("double")?)),
        t::YEAR => match reader.u8("year")? {
            0 => Value::Year(0),
            year => Value::Year(1900 + u16::from(year)),
        },
        t::DATE => {
            let packed = reader.uint(3, "date")?;
            Value::Date(Date {
                year: (packed >> 9) as u16,
                month: ((packed >> 5) & 15) as u8,
                day: (packed & 31) as u8,
            })
        }
        t::NEWDECIMAL => Value::Decimal(decode_decimal_bytes(reader, first, second)?),
        t::TIMESTAMP2 => {
            let seconds = big_endian(reader.take(4, "timestamp")?);
            let (bytes, scale) = fraction_layout(first);
            let fraction = big_endian(reader.take(bytes, "timestamp fraction")?) as u32;
            Value::Timestamp(Timestamp {
                seconds,
                microsecond: fraction * scale,
            })
        }
        t::DATETIME2 => {
            let packed = big_endian(reader.take(5, "datetime")?) as i64 - 0x80_0000_0000;
            let (bytes, scale) = fraction_layout(first);
            let fraction = big_endian(reader.take(bytes, "datetime fraction")?) as u32;
            let packed = packed.unsigned_abs();
            let date = packed >> 17;
            let year_month = date >> 5;
            let time = packed % (1 << 17);
            Value::DateTime(DateTime {
                date: Date {
                    year: (year_month / 13) as u16,
                    month: (year_month % 13) as u8,
                    day: (date % 32) as u8,
                },
                hour: (time >> 12) as u8,
                minute: ((time >> 6) % 64) as u8,
                second: (time % 64) as u8,
                microsecond: fraction * scale,
            })
        }
        t::TIME2 => Value::Time(decode_time2(reader, first)?),
        t::VARCHAR | t::VAR_STRING => {
            let maximum = u16::from_le_bytes([first, second]);
            string_value(length_prefixed(reader, maximum)?, column)?
        }
        t::STRING => {
            // Metadata: real type and length (two length bits hide in the real type's byte).
            let (real_type, maximum) = if first & 0x30 != 0x30 {
                (
                    first | 0x30,
                    u16::from(second) | (u16::from((first & 0x30) ^ 0x30) << 4),
                )
            } else {
                (first, u16::from(second))
            };
            match real_type {
                t::ENUM => Value::Enum(reader.uint(usize::from(second), "enum")? as u16),
                t::SET => Value::Set(reader.uint(usize::from(second), "set")?),
                _ => string_value(length_prefixed(reader, maximum)?, column)?,
            }
        }
        t::VECTOR => {
            // MySQL 9 VECTOR: float32 values, behind a length like a BLOB; kept as bytes.
            let length = reader.uint(usize::from(first), "vector length")?;
            Value::Bytes(reader.take(length as usize, "vector")?.to_vec())
        }
        t::BLOB => {
            let length = reader.uint(usize::from(first), "blob length")?;
            string_value(reader.take(length as usize, "blob")?, column)?
        }
        t::ENUM => Value::Enum(reader.uint(usize::from(second).max(1), "enum")? as u16),
        t::SET => Value::Set(reader.uint(usize::from(second).max(1), "set")?),
        t::BIT => {
            let bits = usize::from(second) * 8 + usize::from(first);
            Value::Bit(big_endian(reader.take(bits.div_ceil(8), "bit")?))
        }
        t::JSON => {
            // MySQL's binary JSON, behind a length of `first` bytes.
            let length = reader.uint(usize::from(first), "JSON length")?;
            let bytes = reader.take(length as usize, "JSON")?;
            Value::Json(crate::json::decode_json(bytes)?.to_json_text())
        }
        t::GEOMETRY => {
            // SRID (4 bytes) and WKB, behind a length of `first` bytes, like a BLOB.
            let length = reader.uint(usize::from(first), "geometry length")?;
            Value::Geometry(reader.take(length as usize, "geometry")?.to_vec())
        }
        other => {
            return Err(format!(
                "binlog column type {other} is not decoded (pre-5.6 temporal types are not supported: upgrade the table with ALTER TABLE ... FORCE)"
            ));
        }
    })
}

/// A CHAR/VARCHAR value: a 1-byte length when the column holds under 256 bytes, else 2 bytes.
fn length_prefixed<'a>(reader: &mut ByteReader<'a>, maximum: u16) -> Result<&'a [u8], String> {
    let length = if maximum < 256 {
        usize::from(reader.u8("string length")?)
    } else {
        usize::from(reader.u16("string length")?)
    };
    reader.take(length, "string")
}

/// TIME2: 3 bytes big-endian with a 0x800000 offset (sign, hour, minute, second), then the
/// fraction; negative values with a fraction borrow from the integer part, as the server's
/// `my_time_packed_from_binary` does.
fn decode_time2(reader: &mut ByteReader<'_>, fsp: u8) -> Result<Time, String> {
    let packed: i64 = match fsp {
        5 | 6 => big_endian(reader.take(6, "time")?) as i64 - 0x8000_0000_0000,
        _ => {
            let mut integer = big_endian(reader.take(3, "time")?) as i64 - 0x80_0000;
            let (bytes, scale) = fraction_layout(fsp);
            let mut fraction = big_endian(reader.take(bytes, "time fraction")?) as i64;
            if integer < 0 && fraction != 0 {
                integer += 1;
                fraction -= 1 << (8 * bytes);
            }
            (integer << 24) + fraction * i64::from(scale)
        }
    };
    let negative = packed < 0;
    let magnitude = packed.unsigned_abs();
    let hms = magnitude >> 24;
    Ok(Time {
        negative,
        hours: ((hms >> 12) % (1 << 10)) as u16,
        minutes: ((hms >> 6) % 64) as u8,
        seconds: (hms % 64) as u8,
        microsecond: (magnitude % (1 << 24)) as u32,
    })
}

/// DECIMAL(precision, scale) in MySQL's binary format: groups of 9 digits in 4 bytes, leftover
/// digits in 1-4 bytes, big-endian, sign in the top bit (negative numbers stored inverted).
pub(crate) fn decode_decimal_bytes(
    reader: &mut ByteReader<'_>,
    precision: u8,
    scale: u8,
) -> Result<Decimal, String> {
    const LEFTOVER_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    if scale > precision || precision > 65 {
        return Err(format!(
            "DECIMAL({precision},{scale}) is not a valid precision"
        ));
    }
    let integer_digits = usize::from(precision - scale);
    let fraction_digits = usize::from(scale);
    let size = (integer_digits / 9) * 4
        + LEFTOVER_BYTES[integer_digits % 9]
        + (fraction_digits / 9) * 4
        + LEFTOVER_BYTES[fraction_digits % 9];
    let mut bytes = reader.take(size, "decimal")?.to_vec();
    if bytes.is_empty() {
        return Decimal::parse("0").map_err(|error| error.to_string());
    }
    let negative = bytes[0] & 0x80 == 0;
    bytes[0] ^= 0x80;
    if negative {
        bytes.iter_mut().for_each(|byte| *byte = !*byte);
    }
    let mut reader = ByteReader::new(&bytes);
    let mut read_group = |digits: usize, bytes: usize| -> Result<String, String> {
        let value = big_endian(reader.take(bytes, "decimal group")?);
        if value >= 10u64.pow(digits as u32) {
            return Err(format!(
                "decimal group {value} has more than {digits} digits"
            ));
        }
        Ok(format!("{value:0digits$}"))
    };
    let mut integer = String::new();
    if integer_digits % 9 > 0 {
        integer.push_str(&read_group(
            integer_digits % 9,
            LEFTOVER_BYTES[integer_digits % 9],
        )?);
    }
    for _ in 0..integer_digits / 9 {
        integer.push_str(&read_group(9, 4)?);
    }
    let mut fraction = String::new();
    for _ in 0..fraction_digits / 9 {
        fraction.push_str(&read_group(9, 4)?);
    }
    if fraction_digits % 9 > 0 {
        fraction.push_str(&read_group(
            fraction_digits % 9,
            LEFTOVER_BYTES[fraction_digits % 9],
        )?);
    }
    let integer = integer.trim_start_matches('0');
    let integer = if integer.is_empty() { "0" } else { integer };
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    text.push_str(integer);
    if !fraction.is_empty() {
        text.push('.');
        text.push_str(&fraction);
    }
    Decimal::parse(&text).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{IntegerWidth, TableRef};
    use proptest::prelude::*;

    /// A table map and schema covering every decoded storage, with hostile metadata choices.
    fn table(metadata: [u8; 2]) -> (TableMap, TableSchema) {
        use column_type as t;
        let types = [
            t::TINY,
            t::SHORT,
            t::INT24,
            t::LONG,
            t::LONGLONG,
            t::FLOAT,
            t::DOUBLE,
            t::YEAR,
            t::DATE,
            t::NEWDECIMAL,
            t::TIMESTAMP2,
            t::DATETIME2,
            t::TIME2,
            t::VARCHAR,
            t::STRING,
            t::BLOB,
            t::BIT,
            t::ENUM,
            t::SET,
            t::JSON,
        ];
        let mut column_metadata = Vec::new();
        for binlog_type in types {
            column_metadata.extend_from_slice(&metadata[..metadata_width(binlog_type)]);
        }
        let columns = types
            .iter()
            .enumerate()
            .map(|(index, _)| {
                ColumnDefinition::new(
                    format!("c{index}"),
                    ColumnType::Integer {
                        width: IntegerWidth::Int,
                        unsigned: index % 2 == 0,
                    },
                    true,
                )
            })
            .collect();
        let map = TableMap {
            table_id: 1,
            schema: "d".into(),
            table: "t".into(),
            column_types: types.to_vec(),
            column_metadata,
            null_bitmap: vec![0xff; 3],
            optional_metadata: Vec::new(),
        };
        (
            map,
            TableSchema::new(TableRef::new("d", "t"), columns, vec![]).expect("schema"),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        /// Random row images under random metadata never panic: they decode or fail with a
        /// message.
        #[test]
        fn random_row_images_never_panic(
            metadata in any::<[u8; 2]>(),
            present in any::<[u8; 3]>(),
            rows in prop::collection::vec(any::<u8>(), 0..120),
            kind in 0u8..3,
        ) {
            let (map, schema) = table(metadata);
            let event = RowsEvent {
                kind: [RowsKind::Write, RowsKind::Update, RowsKind::Delete][usize::from(kind)],
                table_id: 1,
                flags: 0,
                column_count: map.column_types.len() as u64,
                columns_present: present.to_vec(),
                columns_present_after: Some(present.to_vec()),
                rows,
                partial_json: kind == 1,
            };
            let _ = decode_rows(&event, &map, &schema);
        }
    }

    #[test]
    fn negative_fractional_times_borrow_like_the_server() {
        // '-00:00:00.01' as TIME(2): integer part 0x800000 - 1, fraction 0x100 - 1.
        let mut reader = ByteReader::new(&[0x7f, 0xff, 0xff, 0xff]);
        let time = decode_time2(&mut reader, 2).expect("decodes");
        assert_eq!(time.to_string(), "-00:00:00.010000");
    }

    /// `{"a": 1}` in MySQL's binary JSON.
    fn small_document() -> Vec<u8> {
        let mut document = vec![0x00];
        document.extend_from_slice(&1u16.to_le_bytes());
        document.extend_from_slice(&12u16.to_le_bytes());
        document.extend_from_slice(&11u16.to_le_bytes());
        document.extend_from_slice(&1u16.to_le_bytes());
        document.extend_from_slice(&[0x05, 1, 0]);
        document.push(b'a');
        document
    }

    fn json_value(bytes: &[u8]) -> Vec<u8> {
        let mut value = (bytes.len() as u32).to_le_bytes().to_vec();
        value.extend_from_slice(bytes);
        value
    }

    #[test]
    fn partial_json_updates_apply_to_the_before_image() {
        use column_type as t;
        let map = TableMap {
            table_id: 1,
            schema: "d".into(),
            table: "t".into(),
            column_types: vec![t::LONG, t::JSON],
            column_metadata: vec![4],
            null_bitmap: vec![2],
            optional_metadata: Vec::new(),
        };
        let schema = TableSchema::new(
            TableRef::new("d", "t"),
            vec![
                ColumnDefinition::new(
                    "id",
                    ColumnType::Integer {
                        width: IntegerWidth::Int,
                        unsigned: false,
                    },
                    false,
                ),
                ColumnDefinition::new("doc", ColumnType::Json, true),
            ],
            Vec::new(),
        )
        .expect("schema");
        // Before: id 1, {"a": 1}. After (partial): id 1, diffs REPLACE $.a = "z", INSERT $.b = true.
        let mut rows = vec![0];
        rows.extend_from_slice(&1u32.to_le_bytes());
        rows.extend_from_slice(&json_value(&small_document()));
        let mut diffs = vec![0, 3];
        diffs.extend_from_slice(b"$.a");
        diffs.extend_from_slice(&[3, 0x0c, 1, b'z']);
        diffs.extend_from_slice(&[1, 3]);
        diffs.extend_from_slice(b"$.b");
        diffs.extend_from_slice(&[2, 0x04, 1]);
        let mut partial = rows.clone();
        partial.extend_from_slice(&[1, 0b1, 0]); // value options, partial bitmap, null bitmap
        partial.extend_from_slice(&1u32.to_le_bytes());
        partial.extend_from_slice(&json_value(&diffs));
        let event = RowsEvent {
            kind: RowsKind::Update,
            table_id: 1,
            flags: 0,
            column_count: 2,
            columns_present: vec![3],
            columns_present_after: Some(vec![3]),
            rows: partial,
            partial_json: true,
        };
        let decoded = decode_rows(&event, &map, &schema).expect("decodes");
        let (before, after) = &decoded[0];
        assert_eq!(
            before.as_ref().expect("before").0[1],
            Value::Json(r#"{"a": 1}"#.into())
        );
        assert_eq!(
            after.as_ref().expect("after").0[1],
            Value::Json(r#"{"a": "z", "b": true}"#.into())
        );
        // Value options without PARTIAL_JSON_UPDATES: the after image holds whole documents.
        let mut whole = rows.clone();
        whole.extend_from_slice(&[0, 0]);
        whole.extend_from_slice(&1u32.to_le_bytes());
        whole.extend_from_slice(&json_value(&small_document()));
        let event = RowsEvent {
            rows: whole,
            ..event
        };
        let decoded = decode_rows(&event, &map, &schema).expect("decodes");
        assert_eq!(
            decoded[0].1.as_ref().expect("after").0[1],
            Value::Json(r#"{"a": 1}"#.into())
        );
    }
}
