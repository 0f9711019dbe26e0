//! Binlog file names and positions.
//!
//! A MySQL or MariaDB server writes its binlog into files `<base>.<sequence>`, the sequence
//! zero-padded to six digits and growing wider after `999999` (`mysql-bin.1000000`). A position
//! is a file plus a byte offset in it; offsets are `u64` because a binlog file may grow past
//! 4 GiB when one transaction is huge, even though the event header's own `log_pos` is 32-bit.
//!
//! Invariants:
//! - two names with different bases do not compare: [`BinlogFileName`] and [`BinlogPosition`]
//!   are `PartialOrd` only, and `partial_cmp` returns `None` across bases (for example after an
//!   upstream's `log-bin` setting changed, or across two servers);
//! - a name keeps the width it was written with, so it prints back exactly as the server wrote it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::CoreError;

/// A binlog file name split into its base, sequence number and the width of that number.
///
/// The base is shared (`Arc<str>`): every event's location carries a file name, and copying one
/// must not allocate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BinlogFileName {
    base: Arc<str>,
    sequence: u64,
    width: usize,
}

impl BinlogFileName {
    /// Builds a name from parts; the width grows to fit the sequence if needed.
    pub fn new(base: impl Into<String>, sequence: u64, width: usize) -> Result<Self, CoreError> {
        let base: String = base.into();
        if base.is_empty() {
            return Err(CoreError::InvalidBinlogFileName {
                input: format!(".{sequence:0width$}"),
                reason: "the base name before the dot is empty".into(),
            });
        }
        let width = width.max(digit_count(sequence));
        Ok(BinlogFileName {
            base: Arc::from(base),
            sequence,
            width,
        })
    }

    /// Parses a name such as `mysql-bin.000042`.
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidBinlogFileName {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (base, extension) = input
            .rsplit_once('.')
            .ok_or_else(|| invalid("it has no `.NNNNNN` sequence extension"))?;
        if base.is_empty() {
            return Err(invalid("the base name before the dot is empty"));
        }
        if extension.is_empty() || !extension.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid("the extension after the last dot is not a number"));
        }
        let sequence = extension
            .parse::<u64>()
            .map_err(|_| invalid("the sequence number is too large"))?;
        Ok(BinlogFileName {
            base: Arc::from(base),
            sequence,
            width: extension.len(),
        })
    }

    /// The part before the last dot, such as `mysql-bin`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The sequence number, such as `42` for `mysql-bin.000042`.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// How many digits the sequence is printed with.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The file the server rotates to after this one.
    pub fn next(&self) -> Result<Self, CoreError> {
        let sequence =
            self.sequence
                .checked_add(1)
                .ok_or_else(|| CoreError::BinlogSequenceExhausted {
                    name: self.to_string(),
                })?;
        Ok(BinlogFileName {
            base: self.base.clone(),
            sequence,
            width: self.width.max(digit_count(sequence)),
        })
    }
}

fn digit_count(mut number: u64) -> usize {
    let mut digits = 1;
    while number >= 10 {
        number /= 10;
        digits += 1;
    }
    digits
}

impl fmt::Display for BinlogFileName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}.{:0width$}",
            self.base,
            self.sequence,
            width = self.width
        )
    }
}

impl FromStr for BinlogFileName {
    type Err = CoreError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        BinlogFileName::parse(input)
    }
}

impl PartialOrd for BinlogFileName {
    /// Orders by sequence within one base; names of different bases do not compare.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.base != other.base {
            return None;
        }
        // The width only grows with the sequence, so (sequence, width) orders like the sequence
        // and stays consistent with equality.
        Some(
            self.sequence
                .cmp(&other.sequence)
                .then(self.width.cmp(&other.width)),
        )
    }
}

/// A byte offset in a binlog file: where an event starts or ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BinlogPosition {
    /// The binlog file.
    pub file: BinlogFileName,
    /// Byte offset in that file; 4 is the first event after the magic header.
    pub offset: u64,
}

impl BinlogPosition {
    /// The offset of the first event of every binlog file, after the 4-byte magic number.
    pub const FIRST_EVENT_OFFSET: u64 = 4;

    /// A position in `file` at `offset`.
    pub fn new(file: BinlogFileName, offset: u64) -> Self {
        BinlogPosition { file, offset }
    }

    /// The start of a file, where a replica asks to begin.
    pub fn start_of(file: BinlogFileName) -> Self {
        BinlogPosition {
            file,
            offset: Self::FIRST_EVENT_OFFSET,
        }
    }

    /// Parses `name:offset`, the form the checkpoint and the command line use
    /// (`mysql-bin.000042:1234`). SHOW MASTER STATUS gives the two parts separately; join them
    /// with [`BinlogPosition::new`].
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let (name, offset) =
            input
                .rsplit_once(':')
                .ok_or_else(|| CoreError::InvalidBinlogFileName {
                    input: input.to_owned(),
                    reason: "a position is written `name:offset`, such as `mysql-bin.000042:4`"
                        .into(),
                })?;
        let offset = offset
            .parse::<u64>()
            .map_err(|_| CoreError::InvalidBinlogFileName {
                input: input.to_owned(),
                reason: format!("the offset `{offset}` is not a number"),
            })?;
        Ok(BinlogPosition {
            file: BinlogFileName::parse(name)?,
            offset,
        })
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.file, self.offset)
    }
}

/// Stored as its text, `name:offset` (as checkpoints store it).
#[cfg(feature = "serde")]
impl serde::Serialize for BinlogPosition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for BinlogPosition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BinlogPosition::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl PartialOrd for BinlogPosition {
    /// File first, then offset; positions in files of different bases do not compare.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.file.partial_cmp(&other.file)? {
            Ordering::Equal => Some(self.offset.cmp(&other.offset)),
            ordering => Some(ordering),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_names_as_written() {
        let name = BinlogFileName::parse("mysql-bin.000042").unwrap();
        assert_eq!(name.base(), "mysql-bin");
        assert_eq!(name.sequence(), 42);
        assert_eq!(name.width(), 6);
        assert_eq!(name.to_string(), "mysql-bin.000042");
        let dotted = BinlogFileName::parse("db.example.com-bin.000001").unwrap();
        assert_eq!(dotted.base(), "db.example.com-bin");
    }

    #[test]
    fn next_widens_after_999999() {
        let name = BinlogFileName::parse("mysql-bin.999999").unwrap();
        assert_eq!(name.next().unwrap().to_string(), "mysql-bin.1000000");
        assert!(name < name.next().unwrap());
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        let error = BinlogFileName::parse("mysql-bin").unwrap_err();
        assert!(error.to_string().contains("no `.NNNNNN`"), "{error}");
        let error = BinlogFileName::parse("mysql-bin.00a1").unwrap_err();
        assert!(error.to_string().contains("not a number"), "{error}");
        let error = BinlogFileName::parse(".000001").unwrap_err();
        assert!(error.to_string().contains("base name"), "{error}");
        let error = BinlogPosition::parse("mysql-bin.000001:x").unwrap_err();
        assert!(error.to_string().contains("offset `x`"), "{error}");
    }

    #[test]
    fn positions_of_different_bases_do_not_compare() {
        let a = BinlogPosition::parse("mysql-bin.000001:4").unwrap();
        let b = BinlogPosition::parse("other-bin.000001:4").unwrap();
        assert_eq!(a.partial_cmp(&b), None);
        assert!(a != b, "incomparable positions are not equal either");
    }

    #[test]
    fn offsets_past_four_gibibytes_round_trip() {
        let position = BinlogPosition::parse("mysql-bin.000003:5000000000").unwrap();
        assert_eq!(position.offset, 5_000_000_000);
        assert_eq!(position.to_string(), "mysql-bin.000003:5000000000");
    }

    fn position_strategy() -> impl Strategy<Value = BinlogPosition> {
        (
            prop_oneof![Just("mysql-bin"), Just("binlog")],
            0u64..2_000_000,
            0u64..u64::MAX / 2,
        )
            .prop_map(|(base, sequence, offset)| {
                BinlogPosition::new(BinlogFileName::new(base, sequence, 6).unwrap(), offset)
            })
    }

    proptest! {
        /// Positions are a partial order: antisymmetric, transitive, consistent with equality,
        /// total within one base and empty across bases; printing and parsing is the identity.
        #[test]
        fn position_order_is_a_partial_order(
            a in position_strategy(),
            b in position_strategy(),
            c in position_strategy(),
        ) {
            prop_assert_eq!(BinlogPosition::parse(&a.to_string()).unwrap(), a.clone());
            let same_base = a.file.base() == b.file.base();
            prop_assert_eq!(a.partial_cmp(&b).is_some(), same_base);
            prop_assert_eq!(a.partial_cmp(&b) == Some(Ordering::Equal), a == b);
            prop_assert_eq!(a.partial_cmp(&b).map(Ordering::reverse), b.partial_cmp(&a));
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
            if same_base {
                let expected = (a.file.sequence(), a.offset).cmp(&(b.file.sequence(), b.offset));
                prop_assert_eq!(a.partial_cmp(&b), Some(expected));
            }
        }
    }
}
