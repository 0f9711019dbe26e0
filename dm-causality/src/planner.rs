//! Grouping a worker's changes into multi-row statements.
//!
//! ```text
//! worker queue: [ins t1][ins t1][ins t1][upd t1][del t2][del t2] --plan--> INSERT x3 | UPDATE x1 | DELETE x2
//! ```
//!
//! A [`BatchUnit`] is a run of consecutive changes of one kind, one table and one column layout,
//! which `dm-sink` turns into one statement (multi-value INSERT / REPLACE, DELETE by key list,
//! grouped UPDATE). Runs are cut when the kind, table or layout changes, when the unit reaches
//! `max_rows`, and **when a change shares a causality key with a change already in the unit**: a
//! multi-row statement applies its rows as one step, so two changes of one key (or one unique
//! value) must not share a statement, or their order would be lost. Units are emitted in input
//! order and each covers a contiguous range, so the plan never reorders anything.
//!
//! [`BatchPlanner::group`] comes before planning: when no two changes of a batch share a
//! causality key (after compaction each row appears once; a shared unique value would make the
//! order matter), their order cannot change the result, so it sorts them by table and statement
//! kind (deletes, updates, inserts), and each table's changes of one kind become one statement
//! instead of one per change.

use std::ops::Range;

use dm_core::{RowChange, RowChangeKind, TableRef};

use crate::causality::KeyHasher;
use crate::compactor::PendingChange;
use crate::keys::TableKeys;

type KeySet = hashbrown::HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// What statement a unit becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// Multi-value `INSERT`.
    Insert,
    /// Multi-value `REPLACE` (idempotent inserts).
    Replace,
    /// Updates of rows.
    Update {
        /// Whether some update changes the row's identity (PK / not-null UK): then the statement
        /// must address rows by their old identity (`UPDATE ... CASE`), not upsert by the new one.
        identity_changes: bool,
        /// Whether the updates must be idempotent (safe mode: DELETE + REPLACE).
        idempotent: bool,
    },
    /// `DELETE` by a list of identities.
    Delete,
}

/// A run of changes that becomes one statement: `changes` indexes the planned slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchUnit {
    /// The statement kind.
    pub kind: UnitKind,
    /// The changes, a contiguous range of the input.
    pub changes: Range<usize>,
}

/// Plans units; keeps its buffers between calls so planning does not allocate per change.
#[derive(Debug)]
pub struct BatchPlanner {
    max_rows: usize,
    keys: Vec<u64>,
    unit_keys: KeySet,
}

impl BatchPlanner {
    /// A planner whose units hold at most `max_rows` changes (at least 1).
    pub fn new(max_rows: usize) -> Self {
        BatchPlanner {
            max_rows: max_rows.max(1),
            keys: Vec::with_capacity(8),
            unit_keys: KeySet::default(),
        }
    }

    /// Appends to `out` the units covering `changes` in order. `keys_for` gives the keys of each
    /// change's target table.
    pub fn plan<'keys>(
        &mut self,
        changes: &[PendingChange],
        keys_for: impl Fn(&RowChange) -> &'keys TableKeys,
        out: &mut Vec<BatchUnit>,
    ) {
        let mut start = 0;
        self.unit_keys.clear();
        for (index, pending) in changes.iter().enumerate() {
            let keys = keys_for(&pending.change);
            let kind = unit_kind(pending, keys);
            keys.causality_keys(&pending.change, &mut self.keys);
            let continues = index > start
                && index - start < self.max_rows
                && changes.get(start).is_some_and(|first| {
                    unit_kind(first, keys_for(&first.change)) == kind
                        && same_layout(&first.change, &pending.change)
                })
                && !self.keys.iter().any(|key| self.unit_keys.contains(key));
            if index > start && !continues {
                out.push(BatchUnit {
                    kind: unit_kind(&changes[start], keys_for(&changes[start].change)),
                    changes: start..index,
                });
                start = index;
                self.unit_keys.clear();
            }
            self.unit_keys.extend(self.keys.iter().copied());
        }
        if start < changes.len() {
            out.push(BatchUnit {
                kind: unit_kind(&changes[start], keys_for(&changes[start].change)),
                changes: start..changes.len(),
            });
        }
    }
}

impl BatchPlanner {
    /// Sorts `changes` by table (in order of first appearance) and statement kind (deletes,
    /// updates, inserts) when no two of them share a causality key, so that order cannot matter;
    /// otherwise leaves them as they are. Returns whether it sorted.
    pub fn group<'keys>(
        &mut self,
        changes: &mut [PendingChange],
        keys_for: impl Fn(&RowChange) -> &'keys TableKeys,
    ) -> bool {
        self.unit_keys.clear();
        let mut tables: Vec<TableRef> = Vec::new();
        for pending in changes.iter() {
            keys_for(&pending.change).causality_keys(&pending.change, &mut self.keys);
            for key in &self.keys {
                if !self.unit_keys.insert(*key) {
                    self.unit_keys.clear();
                    return false;
                }
            }
            if !tables.contains(pending.change.table()) {
                tables.push(pending.change.table().clone());
            }
        }
        self.unit_keys.clear();
        let rank = |pending: &PendingChange| {
            let table = tables
                .iter()
                .position(|table| table == pending.change.table())
                .unwrap_or(usize::MAX);
            let kind = match pending.change.kind() {
                RowChangeKind::Delete { .. } => 0u8,
                RowChangeKind::Update { .. } => 1,
                RowChangeKind::Insert { .. } => 2,
            };
            (table, kind)
        };
        changes.sort_by_cached_key(rank);
        true
    }
}

fn same_layout(left: &RowChange, right: &RowChange) -> bool {
    left.table() == right.table()
        && (std::sync::Arc::ptr_eq(left.schema(), right.schema())
            || left.schema().columns() == right.schema().columns())
}

fn unit_kind(pending: &PendingChange, keys: &TableKeys) -> UnitKind {
    match pending.change.kind() {
        RowChangeKind::Insert { .. } if pending.idempotent => UnitKind::Replace,
        RowChangeKind::Insert { .. } => UnitKind::Insert,
        RowChangeKind::Update { before, after } => UnitKind::Update {
            identity_changes: !keys.same_identity(before, after),
            idempotent: pending.idempotent,
        },
        RowChangeKind::Delete { .. } => UnitKind::Delete,
    }
}
