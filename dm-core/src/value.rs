//! Column values, faithful to every MySQL and MariaDB type.
//!
//! A [`Value`] carries exactly what the upstream stored, so that what the sink writes downstream
//! is byte-for-byte the same row:
//! - integers keep their signedness (`Int` / `UInt`: `BIGINT UNSIGNED` 18446744073709551615 is
//!   not -1);
//! - `DECIMAL` is exact text ([`Decimal`]), never a float: DECIMAL(65,30) has 65 digits;
//! - temporal values keep the zero forms MySQL allows (`0000-00-00`, `2024-00-00`, YEAR 0, the
//!   zero TIMESTAMP) and TIME keeps its sign and fraction (`-838:59:59.999999`, `-00:00:00.5`);
//! - `TIMESTAMP` stays a point in time (seconds since the epoch), rendered in the session time
//!   zone only by the sink;
//! - text is UTF-8 ([`Value::Text`], converted from the column charset by the decoder) and binary
//!   data stays bytes ([`Value::Bytes`]);
//! - `ENUM` and `SET` are the stored index and bitmask; their names live in the column type;
//! - `JSON` is JSON text, as MySQL prints its binary JSON and as MariaDB stores it.

use std::fmt;

use crate::error::CoreError;

/// One column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A signed integer of any width (TINYINT .. BIGINT).
    Int(i64),
    /// An unsigned integer of any width.
    UInt(u64),
    /// `FLOAT`.
    Float(f32),
    /// `DOUBLE`.
    Double(f64),
    /// `DECIMAL` / `NUMERIC`, exact.
    Decimal(Decimal),
    /// `DATE`.
    Date(Date),
    /// `DATETIME(0..6)`: a wall-clock time without a time zone.
    DateTime(DateTime),
    /// `TIMESTAMP(0..6)`: a point in time.
    Timestamp(Timestamp),
    /// `TIME(0..6)`, signed, up to ±838:59:59.999999.
    Time(Time),
    /// `YEAR`: 0 or 1901..=2155.
    Year(u16),
    /// Character data (CHAR, VARCHAR, TEXT), as UTF-8.
    Text(String),
    /// Binary data (BINARY, VARBINARY, BLOB).
    Bytes(Vec<u8>),
    /// `BIT(1..64)`, right-aligned.
    Bit(u64),
    /// `ENUM`: the 1-based index of the member (0 is the empty error value).
    Enum(u16),
    /// `SET`: bit `n` set when the n-th member (0-based) is present.
    Set(u64),
    /// `JSON`, as text.
    Json(String),
    /// Spatial types: the server's internal form (4-byte SRID, then WKB).
    Geometry(Vec<u8>),
    /// MariaDB `UUID`, the 16 bytes in the order of its text form.
    Uuid([u8; 16]),
    /// MariaDB `INET6`, the 16 address bytes in network order.
    Inet6([u8; 16]),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Roughly how many bytes this value occupies in memory, for bounding queues by bytes.
    pub fn approximate_size(&self) -> usize {
        let heap = match self {
            Value::Text(text) | Value::Json(text) => text.len(),
            Value::Bytes(bytes) | Value::Geometry(bytes) => bytes.len(),
            Value::Decimal(decimal) => decimal.as_str().len(),
            _ => 0,
        };
        std::mem::size_of::<Value>() + heap
    }
}

/// An exact decimal number kept as its text, such as `-12345.678901`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// Validates `[-+]digits[.digits]` (at least one digit) and keeps the text as given, minus
    /// a leading `+`.
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidDecimal {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let unsigned = input
            .strip_prefix('-')
            .or_else(|| input.strip_prefix('+'))
            .unwrap_or(input);
        let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if integer.is_empty() && fraction.is_empty() {
            return Err(invalid("it has no digits"));
        }
        if !integer
            .bytes()
            .chain(fraction.bytes())
            .all(|byte| byte.is_ascii_digit())
        {
            return Err(invalid(
                "only digits, one sign and one decimal point are allowed",
            ));
        }
        let text = input.strip_prefix('+').unwrap_or(input);
        Ok(Decimal(text.to_owned()))
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A calendar date; any part may be zero, as MySQL allows without `NO_ZERO_DATE` /
/// `NO_ZERO_IN_DATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// 0..=9999.
    pub year: u16,
    /// 0..=12.
    pub month: u8,
    /// 0..=31.
    pub day: u8,
}

impl fmt::Display for Date {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:04}-{:02}-{:02}",
            self.year, self.month, self.day
        )
    }
}

/// Writes `.ffffff` when there is a fraction.
fn write_fraction(formatter: &mut fmt::Formatter<'_>, microsecond: u32) -> fmt::Result {
    if microsecond > 0 {
        write!(formatter, ".{microsecond:06}")?;
    }
    Ok(())
}

/// A `DATETIME` value: date and wall-clock time with microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime {
    /// The date part (possibly zero).
    pub date: Date,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// 0..=999999.
    pub microsecond: u32,
}

impl fmt::Display for DateTime {
    /// `2024-02-29 13:04:05.000120`; the fraction only when non-zero.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        write_fraction(formatter, self.microsecond)
    }
}

/// A `TIMESTAMP` value: seconds and microseconds since 1970-01-01 00:00:00 UTC. The value 0 is
/// MySQL's zero timestamp `0000-00-00 00:00:00` (the epoch itself is not a valid TIMESTAMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since the epoch.
    pub seconds: u64,
    /// 0..=999999.
    pub microsecond: u32,
}

impl Timestamp {
    /// Whether this is the zero timestamp.
    pub fn is_zero(&self) -> bool {
        self.seconds == 0 && self.microsecond == 0
    }

    /// The UTC date and time of this instant (the zero timestamp gives the zero date time).
    pub fn to_utc(&self) -> DateTime {
        if self.is_zero() {
            return DateTime {
                date: Date {
                    year: 0,
                    month: 0,
                    day: 0,
                },
                hour: 0,
                minute: 0,
                second: 0,
                microsecond: 0,
            };
        }
        // Days to civil date: Howard Hinnant's algorithm, from 1970-01-01.
        let days = (self.seconds / 86_400) as i64;
        let rest = self.seconds % 86_400;
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        DateTime {
            date: Date {
                year: u16::try_from(year).unwrap_or(u16::MAX),
                month: month as u8,
                day: day as u8,
            },
            hour: (rest / 3_600) as u8,
            minute: (rest % 3_600 / 60) as u8,
            second: (rest % 60) as u8,
            microsecond: self.microsecond,
        }
    }
}

/// A `TIME` value: a signed duration, up to ±838:59:59.999999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Time {
    /// True for negative durations, including `-00:00:00.5` whose hours are 0.
    pub negative: bool,
    /// 0..=838.
    pub hours: u16,
    /// 0..=59.
    pub minutes: u8,
    /// 0..=59.
    pub seconds: u8,
    /// 0..=999999.
    pub microsecond: u32,
}

impl fmt::Display for Time {
    /// `-838:59:59.999999`; the fraction only when non-zero; a zero time is never negative.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let is_zero =
            self.hours == 0 && self.minutes == 0 && self.seconds == 0 && self.microsecond == 0;
        if self.negative && !is_zero {
            formatter.write_str("-")?;
        }
        write!(
            formatter,
            "{:02}:{:02}:{:02}",
            self.hours, self.minutes, self.seconds
        )?;
        write_fraction(formatter, self.microsecond)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_stay_exact_text() {
        let long = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
        assert_eq!(Decimal::parse(&long).unwrap().as_str(), long);
        assert_eq!(Decimal::parse("+1.50").unwrap().as_str(), "1.50");
        assert_eq!(Decimal::parse(".5").unwrap().as_str(), ".5");
        for bad in ["", "-", ".", "1.2.3", "1e5", "12a", "--1"] {
            let error = Decimal::parse(bad).unwrap_err();
            assert!(
                error.to_string().starts_with("invalid decimal"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn timestamps_convert_to_utc_calendar_time() {
        let utc = |seconds, microsecond| {
            Timestamp {
                seconds,
                microsecond,
            }
            .to_utc()
            .to_string()
        };
        assert_eq!(utc(1, 0), "1970-01-01 00:00:01");
        assert_eq!(utc(951_782_400, 5), "2000-02-29 00:00:00.000005");
        assert_eq!(utc(2_147_483_647, 0), "2038-01-19 03:14:07");
        assert_eq!(utc(4_102_444_799, 0), "2099-12-31 23:59:59");
        assert_eq!(utc(0, 0), "0000-00-00 00:00:00");
    }

    #[test]
    fn temporal_values_print_their_edge_forms() {
        let zero = Date {
            year: 0,
            month: 0,
            day: 0,
        };
        assert_eq!(zero.to_string(), "0000-00-00");
        let time = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            microsecond: 990_000,
        };
        assert_eq!(time.to_string(), "-838:59:59.990000");
        let half_second = Time {
            negative: true,
            hours: 0,
            minutes: 0,
            seconds: 0,
            microsecond: 500_000,
        };
        assert_eq!(half_second.to_string(), "-00:00:00.500000");
        let datetime = DateTime {
            date: Date {
                year: 2024,
                month: 2,
                day: 29,
            },
            hour: 13,
            minute: 4,
            second: 5,
            microsecond: 120,
        };
        assert_eq!(datetime.to_string(), "2024-02-29 13:04:05.000120");
        assert!(
            Timestamp {
                seconds: 0,
                microsecond: 0
            }
            .is_zero()
        );
    }

    #[test]
    fn unsigned_stays_unsigned() {
        assert_ne!(Value::UInt(u64::MAX), Value::Int(-1));
        assert!(Value::Null.is_null());
        assert!(Value::Text("abc".into()).approximate_size() > 3);
    }
}
