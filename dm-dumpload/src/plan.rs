//! Chunk planning: how a table is cut into pieces that are dumped and loaded independently.
//!
//! ```text
//! key column k (integer, first column of the PK or a NOT NULL unique key), MIN(k)..=MAX(k)
//! chunks = max(bytes / chunk bytes, rows / chunk rows), at least 1, at most `max_chunks`
//!   chunk 0:      k <  b1            (no lower bound: rows below MIN after a new snapshot too)
//!   chunk i:      b_i <= k < b_i+1
//!   chunk last:   k >= b_last        (no upper bound)
//! no integer key, or an empty table: one chunk with no WHERE
//! ```
//!
//! Invariant: the chunks of a table partition its rows: every non-NULL key value falls into
//! exactly one chunk, whatever its value (the outer chunks are open-ended), so a plan stored by
//! an interrupted load still covers every row of a later snapshot. Pure and synchronous.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A half-open range of an integer key column: `lower <= column < upper`, a missing bound is
/// unbounded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// The key column (upstream name).
    pub column: String,
    /// Inclusive lower bound.
    #[serde(with = "bound_text")]
    pub lower: Option<i128>,
    /// Exclusive upper bound.
    #[serde(with = "bound_text")]
    pub upper: Option<i128>,
}

/// Bounds are stored as decimal strings: they span BIGINT and BIGINT UNSIGNED, which JSON
/// numbers (and readers in other languages) do not hold exactly.
mod bound_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        bound: &Option<i128>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bound {
            Some(value) => serializer.serialize_some(&value.to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i128>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|text| text.parse::<i128>().map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl KeyRange {
    /// Whether `value` is in the range.
    pub fn contains(&self, value: i128) -> bool {
        self.lower.is_none_or(|lower| value >= lower)
            && self.upper.is_none_or(|upper| value < upper)
    }

    /// The range as a `WHERE` condition (without the keyword).
    pub fn condition(&self) -> String {
        let mut column = String::new();
        dm_mysql::literal::write_identifier(&mut column, &self.column);
        let mut text = String::new();
        match (self.lower, self.upper) {
            (Some(lower), Some(upper)) => {
                let _ = write!(text, "{column} >= {lower} AND {column} < {upper}");
            }
            (Some(lower), None) => {
                let _ = write!(text, "{column} >= {lower}");
            }
            (None, Some(upper)) => {
                let _ = write!(text, "{column} < {upper}");
            }
            (None, None) => text.push_str("TRUE"),
        }
        text
    }
}

/// One planned chunk of a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPlan {
    /// Its number within the table, from 0.
    pub number: u32,
    /// The rows it holds; `None`: the whole table.
    pub range: Option<KeyRange>,
}

/// How big chunks should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Aim for chunks of about this many bytes of table data (DM's `chunk-filesize`).
    pub bytes: u64,
    /// And at most about this many rows (DM's `rows`).
    pub rows: u64,
    /// Never more chunks than this per table.
    pub max_chunks: u32,
}

impl Default for ChunkLimits {
    /// DM's defaults: 64 MiB and 200 000 rows; at most 10 000 chunks.
    fn default() -> Self {
        ChunkLimits {
            bytes: 64 << 20,
            rows: 200_000,
            max_chunks: 10_000,
        }
    }
}

/// The key a table is chunked by: its column and the smallest and largest value in the
/// snapshot (`None` when the table is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkKey {
    /// The column.
    pub column: String,
    /// `MIN(column)` and `MAX(column)`.
    pub bounds: Option<(i128, i128)>,
}

/// Cuts a table of about `rows` rows and `bytes` bytes into chunks.
pub fn plan_chunks(
    key: Option<&ChunkKey>,
    rows: u64,
    bytes: u64,
    limits: ChunkLimits,
) -> Vec<ChunkPlan> {
    let whole = vec![ChunkPlan {
        number: 0,
        range: None,
    }];
    let Some(key) = key else {
        return whole;
    };
    let Some((minimum, maximum)) = key.bounds else {
        return whole;
    };
    if maximum < minimum {
        return whole;
    }
    let by_bytes = bytes.div_ceil(limits.bytes.max(1));
    let by_rows = rows.div_ceil(limits.rows.max(1));
    let span = (maximum - minimum).saturating_add(1);
    let wanted = i128::from(by_bytes.max(by_rows).max(1))
        .min(i128::from(limits.max_chunks.max(1)))
        .min(span);
    if wanted <= 1 {
        return whole;
    }
    let width = (span + wanted - 1) / wanted;
    let mut plans = Vec::new();
    let mut lower: Option<i128> = None;
    let mut boundary = minimum.saturating_add(width);
    while boundary <= maximum {
        plans.push(ChunkPlan {
            number: plans.len() as u32,
            range: Some(KeyRange {
                column: key.column.clone(),
                lower,
                upper: Some(boundary),
            }),
        });
        lower = Some(boundary);
        boundary = boundary.saturating_add(width);
    }
    plans.push(ChunkPlan {
        number: plans.len() as u32,
        range: Some(KeyRange {
            column: key.column.clone(),
            lower,
            upper: None,
        }),
    });
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(minimum: i128, maximum: i128) -> ChunkKey {
        ChunkKey {
            column: "id".into(),
            bounds: Some((minimum, maximum)),
        }
    }

    #[test]
    fn a_small_table_is_one_chunk_and_keyless_or_empty_ones_too() {
        let limits = ChunkLimits::default();
        assert_eq!(
            plan_chunks(Some(&key(1, 1000)), 1000, 50_000, limits).len(),
            1
        );
        assert_eq!(plan_chunks(None, 10_000_000, 10 << 30, limits).len(), 1);
        let empty = ChunkKey {
            column: "id".into(),
            bounds: None,
        };
        assert_eq!(plan_chunks(Some(&empty), 0, 0, limits)[0].range, None);
    }

    #[test]
    fn chunks_follow_bytes_and_rows_and_render_as_conditions() {
        let limits = ChunkLimits {
            bytes: 1 << 20,
            rows: 1_000_000,
            max_chunks: 100,
        };
        let plans = plan_chunks(Some(&key(1, 100_000)), 100_000, 4 << 20, limits);
        assert_eq!(plans.len(), 4);
        let conditions: Vec<String> = plans
            .iter()
            .map(|plan| {
                plan.range
                    .as_ref()
                    .map(KeyRange::condition)
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            conditions,
            [
                "`id` < 25001",
                "`id` >= 25001 AND `id` < 50001",
                "`id` >= 50001 AND `id` < 75001",
                "`id` >= 75001"
            ]
        );
        let by_rows = ChunkLimits {
            rows: 10_000,
            ..limits
        };
        assert_eq!(
            plan_chunks(Some(&key(1, 100_000)), 100_000, 1, by_rows).len(),
            10
        );
        // Never more chunks than distinct key values.
        assert_eq!(
            plan_chunks(Some(&key(5, 7)), 100_000, 1 << 40, limits).len(),
            3
        );
    }

    proptest! {
        #[test]
        fn every_value_is_in_exactly_one_chunk(
            minimum in any::<i64>(),
            length in 0u64..u64::MAX,
            rows in 0u64..10_000_000,
            bytes in 0u64..(1 << 40),
            chunk_rows in 1u64..1_000_000,
            probes in proptest::collection::vec(any::<i128>(), 1..20),
        ) {
            let minimum = i128::from(minimum);
            let maximum = minimum + i128::from(length);
            let limits = ChunkLimits { bytes: 1 << 20, rows: chunk_rows, max_chunks: 1000 };
            let plans = plan_chunks(Some(&key(minimum, maximum)), rows, bytes, limits);
            prop_assert!(!plans.is_empty() && plans.len() <= 1000);
            let mut values = probes;
            values.extend([minimum, maximum, minimum - 1, maximum + 1, i128::from(u64::MAX)]);
            for value in values {
                let holders = plans
                    .iter()
                    .filter(|plan| plan.range.as_ref().is_none_or(|range| range.contains(value)))
                    .count();
                prop_assert_eq!(holders, 1, "value {} in {:?}", value, plans);
            }
            for (index, plan) in plans.iter().enumerate() {
                prop_assert_eq!(plan.number as usize, index);
            }
        }
    }
}
