//! MySQL's binary JSON (the storage format of `JSON` columns, binlog column type 245), decoded
//! into a [`JsonValue`] tree and printed as the JSON text MySQL itself prints.
//!
//! ```text
//! value  := type:u8 body
//! type   := 00 small object | 01 large object | 02 small array | 03 large array | 04 literal
//!         | 05 int16 | 06 uint16 | 07 int32 | 08 uint32 | 09 int64 | 0a uint64 | 0b double
//!         | 0c string (varlen length + utf8) | 0f opaque (field type, varlen length, bytes)
//! object := count, size, key entries (offset, u16 length), value entries (type, offset|inline),
//!           keys, values          -- counts/sizes/offsets u16 (small) or u32 (large)
//! ```
//!
//! MariaDB stores JSON as text and never writes this format. Malformed input is an error
//! naming what could not be read, never a panic; nesting is bounded.

use std::fmt::Write as _;

use crate::bytes::ByteReader;

/// The deepest nesting accepted (MySQL's own limit is 100).
const MAX_DEPTH: usize = 150;

/// A decoded JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A double.
    Double(f64),
    /// A string.
    String(String),
    /// An object, keys in stored order (MySQL sorts them by length, then bytes).
    Object(Vec<(String, JsonValue)>),
    /// An array.
    Array(Vec<JsonValue>),
    /// A MySQL scalar kept as text: DECIMAL digits (unquoted), or a DATE/TIME/DATETIME/TIMESTAMP
    /// (quoted).
    Scalar {
        /// The text.
        text: String,
        /// Whether it prints quoted.
        quoted: bool,
    },
    /// Another MySQL type, printed as MySQL does: `"base64:typeNN:..."`.
    Opaque {
        /// The MySQL field type.
        field_type: u8,
        /// Its bytes.
        data: Vec<u8>,
    },
}

/// Decodes a binary JSON document; an empty one is JSON `null` (as MySQL reads it).
///
/// Memory: offsets may point anywhere in a container, so damaged bytes could make many
/// entries share one large value (or one container nest itself through shared offsets) and
/// decode to a tree exponentially larger than the document. Every decoded value is charged one
/// unit plus the bytes of its string, key or opaque data against a budget of the document's
/// length: a document MySQL wrote stores each value once, in at least that many bytes, so it
/// never runs out; a document that does is malformed.
pub fn decode_json(bytes: &[u8]) -> Result<JsonValue, String> {
    if bytes.is_empty() {
        return Ok(JsonValue::Null);
    }
    let mut reader = ByteReader::new(bytes);
    let value_type = reader.u8("JSON type")?;
    let mut budget = Budget(bytes.len());
    decode_value(value_type, &bytes[1..], 0, &mut budget)
}

/// What is left to decode of a document: see [`decode_json`].
struct Budget(usize);

impl Budget {
    fn charge(&mut self, units: usize) -> Result<(), String> {
        self.0 = self.0.checked_sub(units.saturating_add(1)).ok_or_else(|| {
            "JSON values share bytes: the document decodes to more than it stores".to_owned()
        })?;
        Ok(())
    }
}

fn decode_value(
    value_type: u8,
    data: &[u8],
    depth: usize,
    budget: &mut Budget,
) -> Result<JsonValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("JSON nested deeper than {MAX_DEPTH} levels"));
    }
    budget.charge(0)?;
    let mut reader = ByteReader::new(data);
    Ok(match value_type {
        0x00 => container(data, false, true, depth, budget)?,
        0x01 => container(data, true, true, depth, budget)?,
        0x02 => container(data, false, false, depth, budget)?,
        0x03 => container(data, true, false, depth, budget)?,
        0x04 => literal(reader.u8("JSON literal")?)?,
        0x05 => JsonValue::Int(i64::from(reader.u16("JSON int16")? as i16)),
        0x06 => JsonValue::UInt(u64::from(reader.u16("JSON uint16")?)),
        0x07 => JsonValue::Int(i64::from(reader.u32("JSON int32")? as i32)),
        0x08 => JsonValue::UInt(u64::from(reader.u32("JSON uint32")?)),
        0x09 => JsonValue::Int(reader.u64("JSON int64")? as i64),
        0x0a => JsonValue::UInt(reader.u64("JSON uint64")?),
        0x0b => JsonValue::Double(f64::from_bits(reader.u64("JSON double")?)),
        0x0c => {
            let length = variable_length(&mut reader)?;
            let bytes = reader.take(length, "JSON string")?;
            budget.charge(bytes.len())?;
            JsonValue::String(
                std::str::from_utf8(bytes)
                    .map_err(|error| format!("JSON string is not UTF-8: {error}"))?
                    .to_owned(),
            )
        }
        0x0f => {
            let field_type = reader.u8("JSON opaque type")?;
            let length = variable_length(&mut reader)?;
            let bytes = reader.take(length, "JSON opaque value")?;
            budget.charge(bytes.len())?;
            opaque(field_type, bytes)?
        }
        other => return Err(format!("unknown JSON value type {other:#04x}")),
    })
}

fn literal(byte: u8) -> Result<JsonValue, String> {
    match byte {
        0 => Ok(JsonValue::Null),
        1 => Ok(JsonValue::Bool(true)),
        2 => Ok(JsonValue::Bool(false)),
        other => Err(format!("unknown JSON literal {other}")),
    }
}

/// A length in 7-bit groups, least significant first, high bit = more (at most 5 bytes).
fn variable_length(reader: &mut ByteReader<'_>) -> Result<usize, String> {
    let mut length: u64 = 0;
    for index in 0..5 {
        let byte = reader.u8("JSON length")?;
        length |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return usize::try_from(length).map_err(|_| format!("JSON length {length}"));
        }
    }
    Err("JSON length longer than 5 bytes".into())
}

fn container(
    data: &[u8],
    large: bool,
    object: bool,
    depth: usize,
    budget: &mut Budget,
) -> Result<JsonValue, String> {
    let width = if large { 4 } else { 2 };
    let mut reader = ByteReader::new(data);
    let count = reader.uint(width, "JSON element count")? as usize;
    let size = reader.uint(width, "JSON size")? as usize;
    if size > data.len() {
        return Err(format!(
            "JSON container of {size} bytes in {} bytes",
            data.len()
        ));
    }
    let data = &data[..size];
    // Each element needs at least its entry bytes: reject absurd counts before allocating.
    let entry = if object { width + 2 } else { 0 } + 1 + width;
    if count.saturating_mul(entry) > size {
        return Err(format!(
            "JSON container claims {count} elements in {size} bytes"
        ));
    }
    let mut keys = Vec::with_capacity(if object { count } else { 0 });
    if object {
        for _ in 0..count {
            let offset = reader.uint(width, "JSON key offset")? as usize;
            let length = usize::from(reader.u16("JSON key length")?);
            let key = data
                .get(offset..offset + length)
                .ok_or_else(|| format!("JSON key at {offset}+{length} is outside the object"))?;
            budget.charge(key.len())?;
            keys.push(
                std::str::from_utf8(key)
                    .map_err(|error| format!("JSON key is not UTF-8: {error}"))?
                    .to_owned(),
            );
        }
    }
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let value_type = reader.u8("JSON value type")?;
        let inlined =
            matches!(value_type, 0x04..=0x06) || (large && matches!(value_type, 0x07 | 0x08));
        if inlined {
            let bytes = reader.take(width, "JSON inlined value")?;
            values.push(decode_value(value_type, bytes, depth + 1, budget)?);
        } else {
            let offset = reader.uint(width, "JSON value offset")? as usize;
            let bytes = data
                .get(offset..)
                .ok_or_else(|| format!("JSON value at {offset} is outside the container"))?;
            values.push(decode_value(value_type, bytes, depth + 1, budget)?);
        }
    }
    Ok(if object {
        JsonValue::Object(keys.into_iter().zip(values).collect())
    } else {
        JsonValue::Array(values)
    })
}

/// A step of a JSON path: an object member or an array element.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PathLeg {
    Key(String),
    Index(usize),
}

/// Parses the paths of MySQL's JSON diffs: `$`, then `.key`, `."quoted key"` or `[N]` legs.
fn parse_path(path: &str) -> Result<Vec<PathLeg>, String> {
    let invalid = |why: &str| format!("JSON diff path `{path}` {why}");
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| invalid("does not start with $"))?;
    let mut legs = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after
                .find(']')
                .ok_or_else(|| invalid("has an unclosed ["))?;
            let index = after[..end]
                .trim()
                .parse::<usize>()
                .map_err(|_| invalid("has an array index that is not a number"))?;
            legs.push(PathLeg::Index(index));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix(".\"") {
            let mut key = String::new();
            let mut characters = after.char_indices();
            let mut consumed = None;
            while let Some((position, character)) = characters.next() {
                match character {
                    '"' => {
                        consumed = Some(position + 1);
                        break;
                    }
                    '\\' => match characters.next() {
                        Some((_, 'u')) => {
                            let hex: String = (0..4)
                                .filter_map(|_| characters.next().map(|(_, c)| c))
                                .collect();
                            let code = u32::from_str_radix(&hex, 16)
                                .map_err(|_| invalid("has a bad \\u escape"))?;
                            key.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        Some((_, 'n')) => key.push('\n'),
                        Some((_, 't')) => key.push('\t'),
                        Some((_, 'r')) => key.push('\r'),
                        Some((_, 'b')) => key.push('\u{8}'),
                        Some((_, 'f')) => key.push('\u{c}'),
                        Some((_, other)) => key.push(other),
                        None => return Err(invalid("ends inside an escape")),
                    },
                    other => key.push(other),
                }
            }
            let consumed = consumed.ok_or_else(|| invalid("has an unclosed quoted key"))?;
            legs.push(PathLeg::Key(key));
            rest = &after[consumed..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(invalid("has an empty key"));
            }
            legs.push(PathLeg::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else {
            return Err(invalid("has an unexpected character"));
        }
    }
    Ok(legs)
}

/// MySQL keeps object keys sorted by length, then bytes; an inserted key goes to its place.
fn key_order(left: &str, right: &str) -> std::cmp::Ordering {
    (left.len(), left.as_bytes()).cmp(&(right.len(), right.as_bytes()))
}

fn navigate<'a>(
    mut value: &'a mut JsonValue,
    legs: &[PathLeg],
    path: &str,
) -> Result<&'a mut JsonValue, String> {
    for leg in legs {
        value = match (value, leg) {
            (JsonValue::Object(members), PathLeg::Key(key)) => members
                .iter_mut()
                .find(|(name, _)| name == key)
                .map(|(_, member)| member)
                .ok_or_else(|| format!("JSON diff path `{path}`: no member `{key}`"))?,
            (JsonValue::Array(elements), PathLeg::Index(index)) => elements
                .get_mut(*index)
                .ok_or_else(|| format!("JSON diff path `{path}`: no element {index}"))?,
            _ => {
                return Err(format!(
                    "JSON diff path `{path}` does not match the document"
                ));
            }
        };
    }
    Ok(value)
}

/// Applies a partial update's diff vector (`operation u8, path lenenc, [value lenenc + binary
/// JSON]` repeated, as MySQL's `Json_diff_vector` writes it) to the document it was made against.
pub(crate) fn apply_json_diffs(document: &mut JsonValue, diffs: &[u8]) -> Result<(), String> {
    let mut reader = ByteReader::new(diffs);
    while reader.remaining() > 0 {
        let operation = reader.u8("JSON diff operation")?;
        let path_length = reader.length_encoded("JSON diff path length")?;
        let path = reader.take(path_length as usize, "JSON diff path")?;
        let path = std::str::from_utf8(path).map_err(|_| "JSON diff path is not UTF-8")?;
        let value = if operation == 2 {
            None
        } else {
            let length = reader.length_encoded("JSON diff value length")?;
            Some(decode_json(
                reader.take(length as usize, "JSON diff value")?,
            )?)
        };
        let legs = parse_path(path)?;
        let Some((last, parents)) = legs.split_last() else {
            match (operation, value) {
                (0 | 1, Some(value)) => *document = value,
                _ => {
                    return Err(format!(
                        "JSON diff operation {operation} on the whole document"
                    ));
                }
            }
            continue;
        };
        let parent = navigate(document, parents, path)?;
        match (operation, value, parent, last) {
            (0, Some(value), parent, _) => {
                *navigate(parent, std::slice::from_ref(last), path)? = value;
            }
            (1, Some(value), JsonValue::Array(elements), PathLeg::Index(index)) => {
                let index = (*index).min(elements.len());
                elements.insert(index, value);
            }
            (1, Some(value), JsonValue::Object(members), PathLeg::Key(key)) => {
                match members.iter().position(|(name, _)| name == key) {
                    Some(existing) => members[existing].1 = value,
                    None => {
                        let at = members
                            .iter()
                            .position(|(name, _)| key_order(name, key).is_gt())
                            .unwrap_or(members.len());
                        members.insert(at, (key.clone(), value));
                    }
                }
            }
            (2, None, JsonValue::Array(elements), PathLeg::Index(index))
                if *index < elements.len() =>
            {
                elements.remove(*index);
            }
            (2, None, JsonValue::Object(members), PathLeg::Key(key)) => {
                let before = members.len();
                members.retain(|(name, _)| name != key);
                if members.len() == before {
                    return Err(format!(
                        "JSON diff path `{path}`: no member `{key}` to remove"
                    ));
                }
            }
            (operation, _, _, _) => {
                return Err(format!(
                    "JSON diff operation {operation} at `{path}` does not match the document"
                ));
            }
        }
    }
    Ok(())
}

/// MySQL field types that JSON keeps as opaque scalars.
const FIELD_NEWDECIMAL: u8 = 246;
const FIELD_DATE: u8 = 10;
const FIELD_TIME: u8 = 11;
const FIELD_DATETIME: u8 = 12;
const FIELD_TIMESTAMP: u8 = 7;

fn opaque(field_type: u8, data: &[u8]) -> Result<JsonValue, String> {
    match field_type {
        FIELD_NEWDECIMAL => {
            let mut reader = ByteReader::new(data);
            let precision = reader.u8("JSON decimal precision")?;
            let scale = reader.u8("JSON decimal scale")?;
            let decimal = crate::rows::decode_decimal_bytes(&mut reader, precision, scale)?;
            Ok(JsonValue::Scalar {
                text: decimal.as_str().to_owned(),
                quoted: false,
            })
        }
        FIELD_DATE | FIELD_TIME | FIELD_DATETIME | FIELD_TIMESTAMP => {
            let mut reader = ByteReader::new(data);
            let packed = reader.u64("JSON temporal")? as i64;
            Ok(JsonValue::Scalar {
                text: packed_temporal(field_type, packed),
                quoted: true,
            })
        }
        _ => Ok(JsonValue::Opaque {
            field_type,
            data: data.to_vec(),
        }),
    }
}

/// MySQL's in-memory packed temporal (`longlong` with 24 fraction bits) as text.
fn packed_temporal(field_type: u8, packed: i64) -> String {
    let negative = packed < 0;
    let magnitude = packed.unsigned_abs();
    let microsecond = magnitude % (1 << 24);
    let integer = magnitude >> 24;
    if field_type == FIELD_TIME {
        let hms = integer;
        return format!(
            "{}{:02}:{:02}:{:02}.{microsecond:06}",
            if negative { "-" } else { "" },
            (hms >> 12) % (1 << 10),
            (hms >> 6) % 64,
            hms % 64
        );
    }
    let ymd = integer >> 17;
    let year_month = ymd >> 5;
    let hms = integer % (1 << 17);
    let date = format!(
        "{:04}-{:02}-{:02}",
        year_month / 13,
        year_month % 13,
        ymd % 32
    );
    if field_type == FIELD_DATE {
        return date;
    }
    format!(
        "{date} {:02}:{:02}:{:02}.{microsecond:06}",
        hms >> 12,
        (hms >> 6) % 64,
        hms % 64
    )
}

impl JsonValue {
    /// The JSON text, formatted as MySQL prints it (`{"a": 1, "b": [true, null]}`).
    pub fn to_json_text(&self) -> String {
        let mut output = String::new();
        self.write(&mut output);
        output
    }

    fn write(&self, output: &mut String) {
        match self {
            JsonValue::Null => output.push_str("null"),
            JsonValue::Bool(value) => output.push_str(if *value { "true" } else { "false" }),
            JsonValue::Int(value) => {
                let _ = write!(output, "{value}");
            }
            JsonValue::UInt(value) => {
                let _ = write!(output, "{value}");
            }
            JsonValue::Double(value) => write_double(*value, output),
            JsonValue::String(text) => write_string(text, output),
            JsonValue::Scalar { text, quoted } => {
                if *quoted {
                    write_string(text, output);
                } else {
                    output.push_str(text);
                }
            }
            JsonValue::Opaque { field_type, data } => {
                let text = format!("base64:type{field_type}:{}", base64(data));
                write_string(&text, output);
            }
            JsonValue::Array(values) => {
                output.push('[');
                for (index, value) in values.iter().enumerate() {
                    if index > 0 {
                        output.push_str(", ");
                    }
                    value.write(output);
                }
                output.push(']');
            }
            JsonValue::Object(members) => {
                output.push('{');
                for (index, (key, value)) in members.iter().enumerate() {
                    if index > 0 {
                        output.push_str(", ");
                    }
                    write_string(key, output);
                    output.push_str(": ");
                    value.write(output);
                }
                output.push('}');
            }
        }
    }
}

/// Shortest text that reads back to the same double; integral values keep a `.0`, large and
/// small magnitudes use an exponent, as MySQL prints them.
fn write_double(value: f64, output: &mut String) {
    let _ = write!(output, "{value:?}");
}

fn write_string(text: &str, output: &mut String) {
    output.push('"');
    for character in text.chars() {
        match character {
            '"' => output.push_str("\\\""),
            '\\' => output.push_str("\\\\"),
            '\n' => output.push_str("\\n"),
            '\r' => output.push_str("\\r"),
            '\t' => output.push_str("\\t"),
            '\u{08}' => output.push_str("\\b"),
            '\u{0c}' => output.push_str("\\f"),
            control if u32::from(control) < 0x20 => {
                let _ = write!(output, "\\u{:04x}", u32::from(control));
            }
            other => output.push(other),
        }
    }
    output.push('"');
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut output = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for index in 0..4 {
            if index <= chunk.len() {
                output.push(char::from(
                    ALPHABET[((group >> (18 - 6 * index)) & 63) as usize],
                ));
            } else {
                output.push('=');
            }
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Binary JSON for `{"a": 1, "bb": [true, null, "x", 3.5, -70000]}`, built by hand after the
    /// layout in MySQL's json_binary.h (small format).
    fn sample() -> Vec<u8> {
        // The array: 5 elements.
        let mut array = Vec::new();
        let array_header = 2 + 2 + 5 * 3;
        let string_offset = array_header;
        let double_offset = string_offset + 2;
        let int32_offset = double_offset + 8;
        let array_size = int32_offset + 4;
        array.extend_from_slice(&5u16.to_le_bytes());
        array.extend_from_slice(&(array_size as u16).to_le_bytes());
        array.extend_from_slice(&[0x04, 1, 0]); // true, inlined
        array.extend_from_slice(&[0x04, 0, 0]); // null, inlined
        array.push(0x0c);
        array.extend_from_slice(&(string_offset as u16).to_le_bytes());
        array.push(0x0b);
        array.extend_from_slice(&(double_offset as u16).to_le_bytes());
        array.push(0x07);
        array.extend_from_slice(&(int32_offset as u16).to_le_bytes());
        array.extend_from_slice(&[1, b'x']);
        array.extend_from_slice(&3.5f64.to_le_bytes());
        array.extend_from_slice(&(-70000i32).to_le_bytes());
        assert_eq!(array.len(), array_size);

        let header = 2 + 2 + 2 * 4 + 2 * 3;
        let key_a = header;
        let key_bb = key_a + 1;
        let array_offset = key_bb + 2;
        let size = array_offset + array.len();
        let mut object = Vec::new();
        object.extend_from_slice(&2u16.to_le_bytes());
        object.extend_from_slice(&(size as u16).to_le_bytes());
        object.extend_from_slice(&(key_a as u16).to_le_bytes());
        object.extend_from_slice(&1u16.to_le_bytes());
        object.extend_from_slice(&(key_bb as u16).to_le_bytes());
        object.extend_from_slice(&2u16.to_le_bytes());
        object.extend_from_slice(&[0x05, 1, 0]); // int16 1, inlined
        object.push(0x02);
        object.extend_from_slice(&(array_offset as u16).to_le_bytes());
        object.extend_from_slice(b"abb");
        object.extend_from_slice(&array);
        let mut document = vec![0x00];
        document.extend_from_slice(&object);
        document
    }

    #[test]
    fn objects_arrays_and_scalars_print_as_mysql_does() {
        let value = decode_json(&sample()).expect("decodes");
        assert_eq!(
            value.to_json_text(),
            r#"{"a": 1, "bb": [true, null, "x", 3.5, -70000]}"#
        );
        assert_eq!(decode_json(&[]).expect("empty"), JsonValue::Null);
        assert_eq!(
            decode_json(&[0x0c, 3, b'a', b'"', b'\n'])
                .expect("string")
                .to_json_text(),
            r#""a\"\n""#
        );
        assert_eq!(
            decode_json(&[0x0b, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])
                .expect("double")
                .to_json_text(),
            "1.0"
        );
    }

    #[test]
    fn opaque_decimals_and_datetimes_become_scalars() {
        // DECIMAL(4,2) 12.34: precision, scale, then the binary decimal.
        let decimal = decode_json(&[0x0f, 246, 4, 4, 2, 0x80 | 12, 34]).expect("decimal");
        assert_eq!(decimal.to_json_text(), "12.34");
        // DATETIME 2015-01-15 23:24:25.000000 packed: ((y*13+m)<<5|d)<<17 | h<<12|i<<6|s, <<24.
        let ymd = ((2015u64 * 13 + 1) << 5) | 15;
        let packed = ((ymd << 17) | (23 << 12) | (24 << 6) | 25) << 24;
        let mut bytes = vec![0x0f, 12, 8];
        bytes.extend_from_slice(&packed.to_le_bytes());
        assert_eq!(
            decode_json(&bytes).expect("datetime").to_json_text(),
            r#""2015-01-15 23:24:25.000000""#
        );
        let other = decode_json(&[0x0f, 252, 2, 0xff, 0x00]).expect("opaque");
        assert_eq!(other.to_json_text(), r#""base64:type252:/wA=""#);
    }

    #[test]
    fn every_cut_and_mutation_is_an_error_or_a_value() {
        let document = sample();
        for cut in 0..document.len() {
            let _ = decode_json(&document[..cut]);
        }
        assert!(decode_json(&document[..10]).is_err());
        // Deep nesting is refused, not a stack overflow.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x02]);
        }
        let _ = decode_json(&deep);
    }

    fn diff(operation: u8, path: &str, value: Option<&[u8]>) -> Vec<u8> {
        let mut bytes = vec![operation, path.len() as u8];
        bytes.extend_from_slice(path.as_bytes());
        if let Some(value) = value {
            bytes.push(value.len() as u8);
            bytes.extend_from_slice(value);
        }
        bytes
    }

    #[test]
    fn json_diffs_replace_insert_and_remove_as_mysql_does() {
        let mut document = decode_json(&sample()).expect("decodes");
        let mut diffs = diff(0, "$.a", Some(&[0x05, 7, 0]));
        diffs.extend(diff(1, "$.bb[1]", Some(&[0x0c, 1, b'y'])));
        diffs.extend(diff(2, "$.bb[0]", None));
        // Keys are kept sorted by length, then bytes: "c" goes before "bb".
        diffs.extend(diff(1, "$.c", Some(&[0x04, 0, 0])));
        diffs.extend(diff(1, "$.\"a b\"", Some(&[0x04, 1])));
        apply_json_diffs(&mut document, &diffs).expect("applies");
        assert_eq!(
            document.to_json_text(),
            r#"{"a": 7, "c": null, "bb": ["y", null, "x", 3.5, -70000], "a b": true}"#
        );
        let mut document = decode_json(&sample()).expect("decodes");
        assert!(apply_json_diffs(&mut document, &diff(0, "$.missing", Some(&[0x04, 0]))).is_err());
        assert!(apply_json_diffs(&mut document, &diff(2, "$.bb[9]", None)).is_err());
        assert!(apply_json_diffs(&mut document, &diff(0, "a", Some(&[0x04, 0]))).is_err());
        assert!(apply_json_diffs(&mut document, &[0, 5, b'$']).is_err());
    }

    proptest! {
        #[test]
        fn random_diffs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut document = decode_json(&sample()).expect("decodes");
            let _ = apply_json_diffs(&mut document, &bytes);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_json(&bytes);
        }

        #[test]
        fn mutated_documents_never_panic(index in 0usize..60, byte in any::<u8>()) {
            let mut document = sample();
            let index = index % document.len();
            document[index] = byte;
            let _ = decode_json(&document);
        }
    }
}
