//! The model: a table `(id INT PRIMARY KEY, uk INT NULL UNIQUE, value INT)` held in memory, strict
//! about every constraint, and a generator of consistent change sequences on a small key space.

use std::collections::BTreeMap;
use std::sync::Arc;

use dm_causality::{PendingChange, TableKeys};
use dm_core::{
    BinlogFileName, BinlogPosition, ColumnDefinition, ColumnType, IntegerWidth, KeyColumn,
    KeyDefinition, KeyKind, Location, Row, RowChange, RowChangeKind, TableRef, TableSchema, Value,
};

/// Ids are drawn from `0..ID_SPACE`, unique values from `0..UNIQUE_SPACE` (or NULL): small, so
/// that changes collide and unique values move between rows all the time.
pub const ID_SPACE: u8 = 6;
pub const UNIQUE_SPACE: u8 = 4;

pub fn schema() -> Arc<TableSchema> {
    let int = |name: &str, nullable| {
        ColumnDefinition::new(
            name,
            ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: false,
            },
            nullable,
        )
    };
    let key = |name: &str, kind, column| KeyDefinition {
        name: name.into(),
        kind,
        columns: vec![KeyColumn {
            column,
            prefix_length: None,
        }],
    };
    Arc::new(
        TableSchema::new(
            TableRef::new("model", "t"),
            vec![int("id", false), int("uk", true), int("value", true)],
            vec![
                key("PRIMARY", KeyKind::Primary, 0),
                key("uk", KeyKind::Unique, 1),
            ],
        )
        .expect("model schema"),
    )
}

pub fn table_keys() -> TableKeys {
    TableKeys::for_table(&schema())
}

/// One model row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelRow {
    pub id: u8,
    pub unique: Option<u8>,
    pub value: u8,
}

impl ModelRow {
    pub fn to_row(self) -> Row {
        Row(vec![
            Value::Int(i64::from(self.id)),
            self.unique
                .map_or(Value::Null, |unique| Value::Int(i64::from(unique))),
            Value::Int(i64::from(self.value)),
        ])
    }

    pub fn from_row(row: &Row) -> ModelRow {
        let int = |index: usize| match row.get(index) {
            Some(Value::Int(value)) => Some(u8::try_from(*value).expect("small values")),
            Some(Value::Null) => None,
            other => panic!("unexpected value {other:?}"),
        };
        ModelRow {
            id: int(0).expect("id is not null"),
            unique: int(1),
            value: int(2).expect("value is set"),
        }
    }
}

/// The table: rows by id. Every operation checks the constraints a real server checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelTable {
    pub rows: BTreeMap<u8, ModelRow>,
}

impl ModelTable {
    fn unique_holder(&self, unique: Option<u8>) -> Option<u8> {
        let unique = unique?;
        self.rows
            .values()
            .find(|row| row.unique == Some(unique))
            .map(|row| row.id)
    }

    pub fn insert(&mut self, row: ModelRow) -> Result<(), String> {
        if self.rows.contains_key(&row.id) {
            return Err(format!(
                "duplicate primary key {} inserting {row:?}",
                row.id
            ));
        }
        if let Some(holder) = self.unique_holder(row.unique) {
            return Err(format!(
                "duplicate unique value held by id {holder} inserting {row:?}"
            ));
        }
        self.rows.insert(row.id, row);
        Ok(())
    }

    pub fn delete(&mut self, row: ModelRow) -> Result<(), String> {
        match self.rows.get(&row.id) {
            Some(existing) if *existing == row => {
                self.rows.remove(&row.id);
                Ok(())
            }
            other => Err(format!("deleting {row:?} but the table holds {other:?}")),
        }
    }

    pub fn update(&mut self, before: ModelRow, after: ModelRow) -> Result<(), String> {
        self.delete(before)
            .map_err(|error| format!("update: {error}"))?;
        self.insert(after)
            .map_err(|error| format!("update: {error}"))
    }

    /// `REPLACE`: delete every row that collides on the primary or the unique key, then insert.
    pub fn replace(&mut self, row: ModelRow) {
        self.rows.remove(&row.id);
        if let Some(holder) = self.unique_holder(row.unique) {
            self.rows.remove(&holder);
        }
        self.rows.insert(row.id, row);
    }

    /// Applies one change strictly.
    pub fn apply(&mut self, change: &RowChange) -> Result<(), String> {
        match change.kind() {
            RowChangeKind::Insert { after } => self.insert(ModelRow::from_row(after)),
            RowChangeKind::Update { before, after } => {
                self.update(ModelRow::from_row(before), ModelRow::from_row(after))
            }
            RowChangeKind::Delete { before } => self.delete(ModelRow::from_row(before)),
        }
    }

    /// Applies a pending change: an idempotent insert is a REPLACE, an idempotent update a
    /// DELETE of the old row (if present) and a REPLACE of the new one.
    pub fn apply_pending(&mut self, pending: &PendingChange) -> Result<(), String> {
        if !pending.idempotent {
            return self.apply(&pending.change);
        }
        match pending.change.kind() {
            RowChangeKind::Insert { after } => {
                self.replace(ModelRow::from_row(after));
                Ok(())
            }
            RowChangeKind::Update { before, after } => {
                self.rows.remove(&ModelRow::from_row(before).id);
                self.replace(ModelRow::from_row(after));
                Ok(())
            }
            RowChangeKind::Delete { before } => {
                self.rows.remove(&ModelRow::from_row(before).id);
                Ok(())
            }
        }
    }
}

fn location(index: usize) -> Location {
    Location::from_position(BinlogPosition::new(
        BinlogFileName::parse("mysql-bin.000001").expect("file name"),
        4 + index as u64,
    ))
}

/// Turns random bytes into an initial table and a sequence of changes that is valid when applied
/// in order. Each op is (kind, pick, new unique, new value, whether the id moves).
pub fn generate(
    initial: &[(u8, u8)],
    ops: &[(u8, u8, u8, u8, bool)],
) -> (ModelTable, Vec<RowChange>) {
    let schema = schema();
    let mut table = ModelTable::default();
    for (id, unique) in initial {
        let row = ModelRow {
            id: id % ID_SPACE,
            unique: unique_value(*unique),
            value: 0,
        };
        let _ = table.insert(row);
    }
    let start = table.clone();
    let mut changes = Vec::new();
    for (kind, pick, unique, value, move_id) in ops {
        let existing: Vec<ModelRow> = table.rows.values().copied().collect();
        let free_ids: Vec<u8> = (0..ID_SPACE)
            .filter(|id| !table.rows.contains_key(id))
            .collect();
        let wanted_unique = unique_value(*unique);
        let unique_free = |table: &ModelTable, except: Option<u8>| {
            table
                .unique_holder(wanted_unique)
                .is_none_or(|holder| Some(holder) == except)
        };
        let change_kind = match kind % 3 {
            0 if !free_ids.is_empty() && unique_free(&table, None) => {
                let row = ModelRow {
                    id: free_ids[*pick as usize % free_ids.len()],
                    unique: wanted_unique,
                    value: *value,
                };
                RowChangeKind::Insert {
                    after: row.to_row(),
                }
            }
            1 if !existing.is_empty() => {
                let before = existing[*pick as usize % existing.len()];
                let id = if *move_id && !free_ids.is_empty() {
                    free_ids[*value as usize % free_ids.len()]
                } else {
                    before.id
                };
                let unique = if unique_free(&table, Some(before.id)) {
                    wanted_unique
                } else {
                    before.unique
                };
                let after = ModelRow {
                    id,
                    unique,
                    value: *value,
                };
                RowChangeKind::Update {
                    before: before.to_row(),
                    after: after.to_row(),
                }
            }
            2 if !existing.is_empty() => RowChangeKind::Delete {
                before: existing[*pick as usize % existing.len()].to_row(),
            },
            _ => continue,
        };
        let change = RowChange::new(schema.clone(), change_kind, location(changes.len()), 0)
            .expect("row widths match");
        table
            .apply(&change)
            .expect("generated changes are valid in order");
        changes.push(change);
    }
    (start, changes)
}

fn unique_value(byte: u8) -> Option<u8> {
    // One in five is NULL, which a unique key allows many times.
    if byte % 5 == 4 {
        None
    } else {
        Some(byte % UNIQUE_SPACE)
    }
}

/// The table after applying `changes` one by one to `start`.
pub fn serial(start: &ModelTable, changes: &[RowChange]) -> ModelTable {
    let mut table = start.clone();
    for change in changes {
        table.apply(change).expect("serial application is valid");
    }
    table
}

/// Cases per property: `PROPTEST_CASES` when set (for long local hunts), else 1024, which finds
/// the bugs recorded in the crate README within the first few hundred cases.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(1024)
}
