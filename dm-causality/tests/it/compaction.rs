//! Proves: compacting a change sequence (with any window size, drained at any point) and applying
//! the result gives the table the original sequence gives; and each merge rule of the compactor's
//! table does what it says.

use dm_causality::{Compactor, PendingChange};
use dm_core::{RowChange, RowChangeKind};
use proptest::prelude::*;

use crate::model::{ModelRow, ModelTable, generate, schema, serial, table_keys};

/// Compacts `changes` in windows of `capacity`, draining early where `drains` says.
pub fn compact(changes: &[RowChange], capacity: usize, drains: &[bool]) -> Vec<PendingChange> {
    let keys = table_keys();
    let mut compactor = Compactor::new(capacity);
    let mut out = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        if compactor.is_full() || drains.get(index).copied().unwrap_or(false) {
            compactor.drain_into(&mut out);
        }
        compactor.push(change.clone(), false, &keys);
    }
    compactor.drain_into(&mut out);
    out
}

pub fn apply_all(start: &ModelTable, changes: &[PendingChange]) -> Result<ModelTable, String> {
    let mut table = start.clone();
    for (index, pending) in changes.iter().enumerate() {
        table
            .apply_pending(pending)
            .map_err(|error| format!("compacted change {index} {pending:?}: {error}"))?;
    }
    Ok(table)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::model::cases(), ..ProptestConfig::default() })]

    #[test]
    fn compacted_changes_give_the_same_table(
        initial in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..6),
        ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..60),
        capacity in 1usize..40,
        drains in proptest::collection::vec(proptest::bool::weighted(0.05), 0..60),
    ) {
        let (start, changes) = generate(&initial, &ops);
        let expected = serial(&start, &changes);
        let compacted = compact(&changes, capacity, &drains);
        prop_assert!(compacted.len() <= changes.len());
        let actual = apply_all(&start, &compacted).map_err(TestCaseError::fail)?;
        prop_assert_eq!(actual, expected);
    }
}

// -- the merge rules, one example each ---------------------------------------------------------

pub fn row(id: u8, unique: u8, value: u8) -> ModelRow {
    ModelRow {
        id,
        unique: Some(unique),
        value,
    }
}

pub fn insert(after: ModelRow) -> RowChange {
    change(RowChangeKind::Insert {
        after: after.to_row(),
    })
}

pub fn update(before: ModelRow, after: ModelRow) -> RowChange {
    change(RowChangeKind::Update {
        before: before.to_row(),
        after: after.to_row(),
    })
}

pub fn delete(before: ModelRow) -> RowChange {
    change(RowChangeKind::Delete {
        before: before.to_row(),
    })
}

fn change(kind: RowChangeKind) -> RowChange {
    let location = dm_core::Location::from_position(dm_core::BinlogPosition::start_of(
        dm_core::BinlogFileName::parse("mysql-bin.000001").expect("name"),
    ));
    RowChange::new(schema(), kind, location, 0).expect("width")
}

fn compacted(changes: &[RowChange]) -> Vec<(RowChangeKind, bool)> {
    compact(changes, 64, &[])
        .into_iter()
        .map(|pending| (pending.change.kind().clone(), pending.idempotent))
        .collect()
}

#[test]
fn each_merge_rule() {
    let (a, b, c) = (row(1, 1, 10), row(1, 1, 20), row(1, 1, 30));
    // INSERT + UPDATE -> INSERT of the last image.
    assert_eq!(
        compacted(&[insert(a), update(a, b)]),
        [(RowChangeKind::Insert { after: b.to_row() }, false)]
    );
    // UPDATE + UPDATE -> UPDATE from the first before to the last after.
    assert_eq!(
        compacted(&[update(a, b), update(b, c)]),
        [(
            RowChangeKind::Update {
                before: a.to_row(),
                after: c.to_row()
            },
            false
        )]
    );
    // INSERT + DELETE -> nothing.
    assert_eq!(compacted(&[insert(a), delete(a)]), []);
    // UPDATE + DELETE -> DELETE of the original row.
    assert_eq!(
        compacted(&[update(a, b), delete(b)]),
        [(RowChangeKind::Delete { before: a.to_row() }, false)]
    );
    // DELETE + INSERT -> one UPDATE from the deleted row to the inserted one.
    assert_eq!(
        compacted(&[delete(a), insert(c)]),
        [(
            RowChangeKind::Update {
                before: a.to_row(),
                after: c.to_row()
            },
            false
        )]
    );
}

#[test]
fn an_update_that_moves_the_primary_key_frees_the_old_one() {
    // Row 1 moves to id 2; a new row takes id 1; then both change again.
    let (old, moved) = (row(1, 1, 0), row(2, 1, 0));
    let newcomer = row(1, 2, 5);
    let changes = [
        update(old, moved),
        insert(newcomer),
        update(moved, row(2, 1, 9)),
        update(newcomer, row(1, 2, 6)),
    ];
    assert_eq!(
        compacted(&changes),
        [
            (
                RowChangeKind::Update {
                    before: old.to_row(),
                    after: row(2, 1, 9).to_row()
                },
                false
            ),
            (
                RowChangeKind::Insert {
                    after: row(1, 2, 6).to_row()
                },
                false
            ),
        ]
    );
}

#[test]
fn a_merge_that_would_overtake_a_unique_value_is_not_made() {
    // Row 1 frees unique value 1; row 2 takes it; row 1 changes again. Merging the last change
    // into the first slot is fine (row 2's insert does not touch row 1's keys after the first
    // change)... but merging row 1's *second* change back would move "row 1 takes 3" before
    // "row 2 takes 1" only if they shared a value: here they do not, so it merges.
    let changes = [
        update(row(1, 1, 0), row(1, 3, 0)),
        insert(row(2, 1, 0)),
        update(row(1, 3, 0), row(1, 3, 7)),
    ];
    assert_eq!(compacted(&changes).len(), 2);
    // Now row 1's second change takes back a value row 2 releases in between: merging it before
    // row 2's change would collide, so it stays after it.
    let changes = [
        update(row(1, 1, 0), row(1, 3, 0)),
        update(row(2, 2, 0), row(2, 0, 0)),
        update(row(1, 3, 0), row(1, 2, 0)),
    ];
    let result = compacted(&changes);
    assert_eq!(result.len(), 3, "{result:?}");
    let start = ModelTable {
        rows: [(1, row(1, 1, 0)), (2, row(2, 2, 0))].into_iter().collect(),
    };
    assert_eq!(
        apply_all(&start, &compact(&changes, 64, &[])).expect("applies"),
        serial(&start, &changes)
    );
}

#[test]
fn a_row_that_moves_then_is_deleted_and_inserted_again_removes_its_original() {
    // Found by the property test: UPDATE id 0 -> 5, DELETE 5, INSERT 5 merge into one slot whose
    // original row has id 0. A plain REPLACE of id 5 would leave row 0 behind.
    let original = row(0, 0, 0);
    let moved = row(5, 0, 1);
    let reinserted = ModelRow {
        id: 5,
        unique: None,
        value: 2,
    };
    let changes = [update(original, moved), delete(moved), insert(reinserted)];
    assert_eq!(
        compacted(&changes),
        [(
            RowChangeKind::Update {
                before: original.to_row(),
                after: reinserted.to_row()
            },
            true
        )]
    );
    let start = ModelTable {
        rows: [(0, original)].into_iter().collect(),
    };
    assert_eq!(
        apply_all(&start, &compact(&changes, 64, &[])).expect("applies"),
        serial(&start, &changes)
    );
}
