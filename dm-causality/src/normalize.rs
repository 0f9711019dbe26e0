//! Values as a unique index compares them: collation-aware text, numbers by value.
//!
//! Two values that the downstream's unique index considers equal must give equal causality keys,
//! or two conflicting changes could run in parallel. The rules, per column:
//!
//! - **text** follows the column's collation: `_bin`, `_cs` and `_as_cs` compare exactly; `_as_ci`
//!   folds case; every other `_ci` collation (and an unknown collation) folds case *and* ignores
//!   accents (`'a' = 'Á'`), which is what MySQL's and MariaDB's accent-insensitive collations do for
//!   letters with diacritics. PAD SPACE collations (all but MySQL's `*_0900_*` and MariaDB's
//!   `*_nopad_*`) ignore trailing spaces. A prefix index (`UNIQUE KEY (name(10))`) compares only the
//!   first characters (bytes, for binary strings);
//! - **numbers** compare by value: `Int(5)`, `UInt(5)`, `Decimal("5.00")` and `Double(5.0)` are one
//!   value (a column's type may change between two changes);
//! - everything else compares by its stored form.
//!
//! Normalising too little would be unsafe; normalising too much only serialises a few changes that
//! could have run in parallel. Where a collation's exact rules are richer than these (ligatures such
//! as `ß = ss` in `_unicode_ci`), the remaining difference is documented in the crate README.

use std::hash::Hasher;

use dm_core::{ColumnDefinition, Value};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// How one column's values are compared by a unique index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Comparison {
    /// Compare letters case-insensitively.
    pub fold_case: bool,
    /// Ignore diacritics (`é` = `e`).
    pub ignore_accents: bool,
    /// PAD SPACE: trailing spaces do not count.
    pub ignore_trailing_spaces: bool,
    /// Only the first characters (text) or bytes (binary) count: a prefix index.
    pub prefix_length: Option<u32>,
}

impl Comparison {
    /// The exact comparison (binary data, numbers, temporal values).
    pub const EXACT: Comparison = Comparison {
        fold_case: false,
        ignore_accents: false,
        ignore_trailing_spaces: false,
        prefix_length: None,
    };

    /// The comparison a unique index uses for `column`, optionally on a prefix of it.
    pub fn for_column(column: &ColumnDefinition, prefix_length: Option<u32>) -> Comparison {
        if !column.column_type.is_text() {
            return Comparison {
                prefix_length,
                ..Comparison::EXACT
            };
        }
        let collation = column
            .collation
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let ignore_trailing_spaces = !(collation.contains("0900") || collation.contains("nopad"));
        let (fold_case, ignore_accents) = if collation.is_empty() {
            // Unknown collation: the most permissive comparison is the safe one.
            (true, true)
        } else if collation.ends_with("_bin") || collation.ends_with("_cs") || collation == "binary"
        {
            (false, false)
        } else if collation.contains("_as_ci") {
            (true, false)
        } else {
            (true, true)
        };
        Comparison {
            fold_case,
            ignore_accents,
            ignore_trailing_spaces,
            prefix_length,
        }
    }
}

/// The comparable form of a number.
#[derive(Debug, PartialEq, Eq)]
enum Number<'a> {
    /// Any integer value, including integral decimals and floats.
    Integer(i128),
    /// A decimal with a fraction: sign, integer digits without leading zeros, fraction digits
    /// without trailing zeros (both non-empty fraction).
    Fraction {
        negative: bool,
        integer: &'a str,
        fraction: &'a str,
    },
    /// A non-integral float, by its bits.
    Float(u64),
}

fn decimal_number(text: &str) -> Number<'_> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let integer = integer.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        if let Ok(value) = integer.parse::<i128>() {
            return Number::Integer(if negative { -value } else { value });
        }
        if integer.is_empty() {
            return Number::Integer(0);
        }
    }
    Number::Fraction {
        negative: negative && !(integer.is_empty() && fraction.is_empty()),
        integer,
        fraction,
    }
}

fn float_number(value: f64) -> Number<'static> {
    // Integral floats well inside the i64 range compare as integers.
    if value.fract() == 0.0 && value.abs() < 9.0e18 {
        Number::Integer(value as i128)
    } else if value == 0.0 {
        Number::Integer(0)
    } else {
        Number::Float(value.to_bits())
    }
}

#[inline]
fn number(value: &Value) -> Option<Number<'_>> {
    Some(match value {
        Value::Int(value) => Number::Integer(i128::from(*value)),
        Value::UInt(value) => Number::Integer(i128::from(*value)),
        Value::Decimal(decimal) => decimal_number(decimal.as_str()),
        Value::Float(value) => float_number(f64::from(*value)),
        Value::Double(value) => float_number(*value),
        _ => return None,
    })
}

/// The characters of `text` as the comparison sees them, lazily (no allocation).
fn normalized_characters(text: &str, comparison: Comparison) -> impl Iterator<Item = char> + '_ {
    let text = if comparison.ignore_trailing_spaces {
        text.trim_end_matches(' ')
    } else {
        text
    };
    let limit = comparison
        .prefix_length
        .map_or(usize::MAX, |length| length as usize);
    text.chars().take(limit).flat_map(move |character| {
        let mut base = [character, '\0', '\0', '\0'];
        let mut count = 1;
        if comparison.ignore_accents && !character.is_ascii() {
            count = 0;
            decompose_canonical(character, |part| {
                if !is_combining_mark(part) && count < base.len() {
                    base[count] = part;
                    count += 1;
                }
            });
        }
        base.into_iter().take(count).flat_map(move |part| {
            if comparison.fold_case {
                CaseFold::Lower(part.to_lowercase())
            } else {
                CaseFold::Same(Some(part))
            }
        })
    })
}

/// Either a character's lowercase form or the character itself, as one iterator type.
enum CaseFold {
    Lower(std::char::ToLowercase),
    Same(Option<char>),
}

impl Iterator for CaseFold {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            CaseFold::Lower(lower) => lower.next(),
            CaseFold::Same(character) => character.take(),
        }
    }
}

fn binary_prefix(bytes: &[u8], comparison: Comparison) -> &[u8] {
    match comparison.prefix_length {
        Some(length) => &bytes[..bytes.len().min(length as usize)],
        None => bytes,
    }
}

/// Feeds the comparable form of `value` into `hasher`. Values that compare equal feed equal bytes.
#[inline]
pub fn hash_value(value: &Value, comparison: Comparison, hasher: &mut impl Hasher) {
    if let Some(number) = number(value) {
        match number {
            Number::Integer(integer) => {
                hasher.write_u8(1);
                hasher.write_i128(integer);
            }
            Number::Fraction {
                negative,
                integer,
                fraction,
            } => {
                hasher.write_u8(2);
                hasher.write_u8(u8::from(negative));
                hasher.write(integer.as_bytes());
                hasher.write_u8(b'.');
                hasher.write(fraction.as_bytes());
            }
            Number::Float(bits) => {
                hasher.write_u8(3);
                hasher.write_u64(bits);
            }
        }
        return;
    }
    match value {
        Value::Text(text) => {
            hasher.write_u8(4);
            if text.is_ascii() && !comparison.fold_case && comparison.prefix_length.is_none() {
                let text = if comparison.ignore_trailing_spaces {
                    text.trim_end_matches(' ')
                } else {
                    text
                };
                hasher.write(text.as_bytes());
            } else {
                let mut buffer = [0u8; 64];
                let mut used = 0;
                for character in normalized_characters(text, comparison) {
                    if used + 4 > buffer.len() {
                        hasher.write(&buffer[..used]);
                        used = 0;
                    }
                    used += character.encode_utf8(&mut buffer[used..]).len();
                }
                hasher.write(&buffer[..used]);
            }
        }
        Value::Bytes(bytes) | Value::Geometry(bytes) => {
            hasher.write_u8(5);
            hasher.write(binary_prefix(bytes, comparison));
        }
        other => {
            hasher.write_u8(6);
            hash_exact(other, hasher);
        }
    }
}

/// Feeds the stored form of a value that is neither a number, text nor binary.
fn hash_exact(value: &Value, hasher: &mut impl Hasher) {
    match value {
        Value::Null => hasher.write_u8(0),
        Value::Date(date) => {
            hasher.write_u8(10);
            hasher.write_u16(date.year);
            hasher.write_u8(date.month);
            hasher.write_u8(date.day);
        }
        Value::DateTime(datetime) => {
            hasher.write_u8(11);
            hasher.write_u16(datetime.date.year);
            hasher.write_u8(datetime.date.month);
            hasher.write_u8(datetime.date.day);
            hasher.write_u8(datetime.hour);
            hasher.write_u8(datetime.minute);
            hasher.write_u8(datetime.second);
            hasher.write_u32(datetime.microsecond);
        }
        Value::Timestamp(timestamp) => {
            hasher.write_u8(12);
            hasher.write_u64(timestamp.seconds);
            hasher.write_u32(timestamp.microsecond);
        }
        Value::Time(time) => {
            hasher.write_u8(13);
            let zero =
                time.hours == 0 && time.minutes == 0 && time.seconds == 0 && time.microsecond == 0;
            hasher.write_u8(u8::from(time.negative && !zero));
            hasher.write_u16(time.hours);
            hasher.write_u8(time.minutes);
            hasher.write_u8(time.seconds);
            hasher.write_u32(time.microsecond);
        }
        Value::Year(year) => {
            hasher.write_u8(14);
            hasher.write_u16(*year);
        }
        Value::Bit(bits) | Value::Set(bits) => {
            hasher.write_u8(15);
            hasher.write_u64(*bits);
        }
        Value::Enum(index) => {
            hasher.write_u8(16);
            hasher.write_u16(*index);
        }
        Value::Json(text) => {
            hasher.write_u8(17);
            hasher.write(text.as_bytes());
        }
        Value::Uuid(bytes) | Value::Inet6(bytes) => {
            hasher.write_u8(18);
            hasher.write(bytes);
        }
        // Numbers, text and binary are handled by `hash_value`.
        Value::Int(_)
        | Value::UInt(_)
        | Value::Decimal(_)
        | Value::Float(_)
        | Value::Double(_)
        | Value::Text(_)
        | Value::Bytes(_)
        | Value::Geometry(_) => hasher.write_u8(19),
    }
}

/// Whether a unique index with this comparison considers the two values equal.
#[inline]
pub fn values_equal(left: &Value, right: &Value, comparison: Comparison) -> bool {
    match (number(left), number(right)) {
        (Some(left), Some(right)) => return left == right,
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    match (left, right) {
        (Value::Text(left), Value::Text(right)) => {
            normalized_characters(left, comparison).eq(normalized_characters(right, comparison))
        }
        (Value::Bytes(left), Value::Bytes(right))
        | (Value::Geometry(left), Value::Geometry(right)) => {
            binary_prefix(left, comparison) == binary_prefix(right, comparison)
        }
        (Value::Time(left), Value::Time(right)) => {
            let zero = |time: &dm_core::Time| {
                time.hours == 0 && time.minutes == 0 && time.seconds == 0 && time.microsecond == 0
            };
            (left.negative && !zero(left)) == (right.negative && !zero(right))
                && (left.hours, left.minutes, left.seconds, left.microsecond)
                    == (right.hours, right.minutes, right.seconds, right.microsecond)
        }
        (left, right) => left == right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{ColumnType, Decimal};
    use std::hash::BuildHasher;

    fn hash(value: &Value, comparison: Comparison) -> u64 {
        let mut hasher = foldhash::fast::FixedState::with_seed(7).build_hasher();
        hash_value(value, comparison, &mut hasher);
        hasher.finish()
    }

    fn text_column(collation: &str) -> ColumnDefinition {
        let mut column = ColumnDefinition::new("name", ColumnType::VarChar { length: 20 }, false);
        column.collation = Some(collation.to_owned());
        column
    }

    fn assert_same(left: &Value, right: &Value, comparison: Comparison) {
        assert!(
            values_equal(left, right, comparison),
            "{left:?} = {right:?}"
        );
        assert_eq!(
            hash(left, comparison),
            hash(right, comparison),
            "{left:?} = {right:?}"
        );
    }

    fn assert_different(left: &Value, right: &Value, comparison: Comparison) {
        assert!(
            !values_equal(left, right, comparison),
            "{left:?} != {right:?}"
        );
        assert_ne!(
            hash(left, comparison),
            hash(right, comparison),
            "{left:?} != {right:?}"
        );
    }

    #[test]
    fn accent_and_case_insensitive_collations_fold_both() {
        let general = Comparison::for_column(&text_column("utf8mb4_general_ci"), None);
        assert!(general.fold_case && general.ignore_accents && general.ignore_trailing_spaces);
        assert_same(
            &Value::Text("Élan".into()),
            &Value::Text("elan".into()),
            general,
        );
        assert_same(
            &Value::Text("abc  ".into()),
            &Value::Text("ABC".into()),
            general,
        );
        assert_different(
            &Value::Text("abc".into()),
            &Value::Text("abd".into()),
            general,
        );
        // Leading spaces count, trailing ones do not.
        assert_different(
            &Value::Text(" abc".into()),
            &Value::Text("abc".into()),
            general,
        );
    }

    #[test]
    fn binary_and_accent_sensitive_collations_keep_what_they_compare() {
        let binary = Comparison::for_column(&text_column("utf8mb4_bin"), None);
        assert_different(&Value::Text("a".into()), &Value::Text("A".into()), binary);
        // utf8mb4_bin is PAD SPACE; the 0900 collations and MariaDB nopad ones are not.
        assert_same(&Value::Text("a ".into()), &Value::Text("a".into()), binary);
        let no_pad = Comparison::for_column(&text_column("utf8mb4_0900_ai_ci"), None);
        assert_different(&Value::Text("a ".into()), &Value::Text("a".into()), no_pad);
        assert_same(&Value::Text("Á".into()), &Value::Text("a".into()), no_pad);
        let accent_sensitive = Comparison::for_column(&text_column("utf8mb4_0900_as_ci"), None);
        assert_same(
            &Value::Text("É".into()),
            &Value::Text("é".into()),
            accent_sensitive,
        );
        assert_different(
            &Value::Text("é".into()),
            &Value::Text("e".into()),
            accent_sensitive,
        );
        let nopad_bin = Comparison::for_column(&text_column("utf8mb4_nopad_bin"), None);
        assert_different(
            &Value::Text("a ".into()),
            &Value::Text("a".into()),
            nopad_bin,
        );
    }

    #[test]
    fn prefix_indexes_compare_only_the_prefix() {
        let prefix = Comparison::for_column(&text_column("utf8mb4_general_ci"), Some(3));
        assert_same(
            &Value::Text("ABCdef".into()),
            &Value::Text("abcxyz".into()),
            prefix,
        );
        assert_different(
            &Value::Text("abd".into()),
            &Value::Text("abc".into()),
            prefix,
        );
        let bytes = Comparison {
            prefix_length: Some(2),
            ..Comparison::EXACT
        };
        assert_same(
            &Value::Bytes(vec![1, 2, 3]),
            &Value::Bytes(vec![1, 2, 9]),
            bytes,
        );
    }

    #[test]
    fn numbers_compare_by_value_across_types() {
        let exact = Comparison::EXACT;
        let decimal = |text: &str| Value::Decimal(Decimal::parse(text).unwrap());
        assert_same(&Value::Int(5), &Value::UInt(5), exact);
        assert_same(&Value::Int(5), &decimal("005.000"), exact);
        assert_same(&Value::Double(5.0), &Value::Int(5), exact);
        assert_same(&decimal("-0.00"), &Value::Int(0), exact);
        assert_same(&decimal("12.50"), &decimal("12.5"), exact);
        assert_different(&decimal("12.5"), &decimal("-12.5"), exact);
        assert_different(&Value::Int(-1), &Value::UInt(u64::MAX), exact);
        let big = "123456789012345678901234567890123456789012345";
        assert_same(&decimal(big), &decimal(&format!("{big}.0")), exact);
        assert_different(&decimal(big), &decimal(&format!("{big}1")), exact);
        // A number never equals text that spells it.
        assert_different(&Value::Int(5), &Value::Text("5".into()), exact);
    }

    #[test]
    fn negative_zero_time_is_zero() {
        let time = |negative| {
            Value::Time(dm_core::Time {
                negative,
                hours: 0,
                minutes: 0,
                seconds: 0,
                microsecond: 0,
            })
        };
        assert_same(&time(true), &time(false), Comparison::EXACT);
    }
}
