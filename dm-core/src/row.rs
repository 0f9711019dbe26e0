//! Rows and row changes: what a binlog rows event means, and what the sink applies.
//!
//! A [`Row`] is positional: value `i` belongs to column `i` of the table schema the change
//! carries. A [`RowChange`] is one inserted, updated or deleted row; its [`RowChangeKind`] makes
//! an update without a before image, or a delete without the deleted row, impossible to build.
//! [`RowChange::new`] checks that every image is as wide as the schema. A change's location and
//! its index among its rows event's rows ([`RowChange::row`]) identify it in the stream.

use std::sync::Arc;

use crate::error::CoreError;
use crate::location::Location;
use crate::schema::{TableRef, TableSchema};
use crate::value::Value;

/// The values of one row, in column order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// The values.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The value of column `index`.
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.0.get(index)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Roughly how many bytes the row occupies, for bounding queues by bytes.
    pub fn approximate_size(&self) -> usize {
        self.0.iter().map(Value::approximate_size).sum()
    }
}

impl From<Vec<Value>> for Row {
    fn from(values: Vec<Value>) -> Self {
        Row(values)
    }
}

/// What happened to the row.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChangeKind {
    /// A new row.
    Insert {
        /// The inserted row.
        after: Row,
    },
    /// A changed row.
    Update {
        /// The row before the change (identifies it downstream).
        before: Row,
        /// The row after the change.
        after: Row,
    },
    /// A removed row.
    Delete {
        /// The deleted row (identifies it downstream).
        before: Row,
    },
}

/// One row change of one upstream table, with where it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct RowChange {
    schema: Arc<TableSchema>,
    kind: RowChangeKind,
    location: Location,
    commit_ts: u64,
    /// Its index among the rows of its rows event (with `location`, what identifies the change
    /// in the stream; the worker checkpoint's `row`).
    row: u64,
}

impl RowChange {
    /// Builds a change; fails if an image is not as wide as the schema.
    pub fn new(
        schema: Arc<TableSchema>,
        kind: RowChangeKind,
        location: Location,
        commit_ts: u64,
    ) -> Result<Self, CoreError> {
        let expected = schema.columns().len();
        let images: &[&Row] = match &kind {
            RowChangeKind::Insert { after } => &[after],
            RowChangeKind::Update { before, after } => &[before, after],
            RowChangeKind::Delete { before } => &[before],
        };
        if let Some(row) = images.iter().find(|row| row.len() != expected) {
            return Err(CoreError::RowWidthMismatch {
                table: schema.table().quoted(),
                expected,
                actual: row.len(),
            });
        }
        Ok(RowChange {
            schema,
            kind,
            location,
            commit_ts,
            row: 0,
        })
    }

    /// The change as the `row`-th row of its rows event (0 unless set).
    pub fn with_row(mut self, row: u64) -> Self {
        self.row = row;
        self
    }

    /// Its index among the rows of its rows event: with [`RowChange::location`], what
    /// identifies the change in the stream (for an event inside a MySQL transaction payload,
    /// the event's index in the payload times 2^32 plus the row's index).
    pub fn row(&self) -> u64 {
        self.row
    }

    /// The upstream table.
    pub fn table(&self) -> &TableRef {
        self.schema.table()
    }

    /// The upstream schema the images are aligned with.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// Insert, update or delete, with the images.
    pub fn kind(&self) -> &RowChangeKind {
        &self.kind
    }

    /// Where the rows event sits in the upstream binlog.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The upstream commit time, seconds since the epoch (the binlog event timestamp).
    pub fn commit_ts(&self) -> u64 {
        self.commit_ts
    }

    /// The image that identifies the row as it is downstream before this change is applied
    /// (`None` for an insert).
    pub fn before(&self) -> Option<&Row> {
        match &self.kind {
            RowChangeKind::Insert { .. } => None,
            RowChangeKind::Update { before, .. } | RowChangeKind::Delete { before } => Some(before),
        }
    }

    /// The row as it is after this change (`None` for a delete).
    pub fn after(&self) -> Option<&Row> {
        match &self.kind {
            RowChangeKind::Delete { .. } => None,
            RowChangeKind::Insert { after } | RowChangeKind::Update { after, .. } => Some(after),
        }
    }

    /// Takes the change apart.
    pub fn into_parts(self) -> (Arc<TableSchema>, RowChangeKind, Location, u64) {
        (self.schema, self.kind, self.location, self.commit_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::{BinlogFileName, BinlogPosition};
    use crate::schema::{ColumnDefinition, ColumnType};

    #[test]
    fn images_must_match_the_schema_width() {
        let schema = Arc::new(
            TableSchema::new(
                TableRef::new("user", "log"),
                vec![
                    ColumnDefinition::new("id", ColumnType::Json, false),
                    ColumnDefinition::new("name", ColumnType::Json, true),
                ],
                vec![],
            )
            .unwrap(),
        );
        let location = Location::from_position(BinlogPosition::start_of(
            BinlogFileName::parse("mysql-bin.000001").unwrap(),
        ));
        let short = Row(vec![Value::Int(1)]);
        let full = Row(vec![Value::Int(1), Value::Null]);
        let error = RowChange::new(
            schema.clone(),
            RowChangeKind::Update {
                before: full.clone(),
                after: short,
            },
            location.clone(),
            0,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "row of table `user`.`log` has 1 values, the table has 2 columns"
        );
        let change = RowChange::new(
            schema,
            RowChangeKind::Delete {
                before: full.clone(),
            },
            location,
            7,
        )
        .unwrap();
        assert_eq!(change.before(), Some(&full));
        assert_eq!(change.after(), None);
        assert_eq!(change.table().table, "log");
    }
}
