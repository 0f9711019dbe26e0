//! Proves: planning a worker's changes into units and applying each unit as one statement (all its
//! rows at once, as a multi-row INSERT, DELETE or UPDATE does) gives the table that applying the
//! changes one by one gives. A unit that held two changes of one key would fail here: applied at
//! once, the second change would not find the row the first one leaves.

use dm_causality::{BatchPlanner, BatchUnit, PendingChange, UnitKind};
use proptest::prelude::*;

use crate::compaction::{apply_all, compact, delete, insert, row, update};
use crate::model::{ModelRow, ModelTable, generate, serial, table_keys};

fn images(pending: &PendingChange) -> (Option<ModelRow>, Option<ModelRow>) {
    (
        pending.change.before().map(ModelRow::from_row),
        pending.change.after().map(ModelRow::from_row),
    )
}

/// Applies one unit as a single statement: every before image is checked and removed first,
/// then every after image is written, with the constraints checked against the result.
fn apply_unit(
    table: &mut ModelTable,
    unit: &BatchUnit,
    changes: &[PendingChange],
) -> Result<(), String> {
    let members = &changes[unit.changes.clone()];
    for pending in members {
        let (before, _) = images(pending);
        if let Some(before) = before {
            match table.rows.get(&before.id) {
                Some(existing) if *existing == before => {}
                // A REPLACE or an idempotent update tolerates a missing old row.
                _ if pending.idempotent => {}
                other => {
                    return Err(format!(
                        "{unit:?}: {before:?} not found, table has {other:?}"
                    ));
                }
            }
        }
    }
    for pending in members {
        if let (Some(before), _) = images(pending) {
            table.rows.remove(&before.id);
        }
    }
    for pending in members {
        if let (_, Some(after)) = images(pending) {
            if matches!(unit.kind, UnitKind::Replace) || pending.idempotent {
                table.replace(after);
            } else {
                table
                    .insert(after)
                    .map_err(|error| format!("{unit:?}: {error}"))?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::model::cases(), ..ProptestConfig::default() })]

    #[test]
    fn planned_units_give_the_same_table(
        initial in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..6),
        ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..60),
        max_rows in 1usize..20,
        compact_first in any::<bool>(),
    ) {
        let (start, changes) = generate(&initial, &ops);
        let expected = serial(&start, &changes);
        let pending: Vec<PendingChange> = if compact_first {
            compact(&changes, 16, &[])
        } else {
            changes.iter().cloned().map(|change| PendingChange { change, idempotent: false }).collect()
        };
        prop_assert_eq!(apply_all(&start, &pending).map_err(TestCaseError::fail)?, expected.clone());

        let keys = table_keys();
        let mut units = Vec::new();
        BatchPlanner::new(max_rows).plan(&pending, |_| &keys, &mut units);
        // The units cover the input exactly, in order.
        let mut next = 0;
        for unit in &units {
            prop_assert_eq!(unit.changes.start, next);
            prop_assert!(!unit.changes.is_empty() && unit.changes.len() <= max_rows);
            next = unit.changes.end;
        }
        prop_assert_eq!(next, pending.len());

        let mut table = start.clone();
        for unit in &units {
            apply_unit(&mut table, unit, &pending).map_err(TestCaseError::fail)?;
        }
        prop_assert_eq!(table, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::model::cases(), ..ProptestConfig::default() })]

    /// Grouping (sorting by statement kind when no key repeats) after compaction, then
    /// planning and applying unit by unit, still gives the serial result.
    #[test]
    fn grouped_changes_give_the_same_table(
        initial in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..6),
        ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..60),
        capacity in 1usize..40,
    ) {
        let (start, changes) = generate(&initial, &ops);
        let expected = serial(&start, &changes);
        let keys = table_keys();
        let mut planner = BatchPlanner::new(100);
        let mut table = start.clone();
        for window in changes.chunks(capacity) {
            let mut pending = compact(window, capacity, &[]);
            planner.group(&mut pending, |_| &keys);
            let mut units = Vec::new();
            planner.plan(&pending, |_| &keys, &mut units);
            for unit in &units {
                apply_unit(&mut table, unit, &pending).map_err(TestCaseError::fail)?;
            }
        }
        prop_assert_eq!(table, expected);
    }
}

#[test]
fn changes_of_distinct_rows_are_grouped_by_kind_and_a_shared_unique_value_keeps_the_order() {
    let keys = table_keys();
    let pending = |changes: Vec<dm_core::RowChange>| -> Vec<PendingChange> {
        changes
            .into_iter()
            .map(|change| PendingChange {
                change,
                idempotent: false,
            })
            .collect()
    };
    let kinds = |pending: &[PendingChange]| -> Vec<&'static str> {
        pending
            .iter()
            .map(|pending| match pending.change.kind() {
                dm_core::RowChangeKind::Insert { .. } => "insert",
                dm_core::RowChangeKind::Update { .. } => "update",
                dm_core::RowChangeKind::Delete { .. } => "delete",
            })
            .collect()
    };
    let mut planner = BatchPlanner::new(100);
    let mut distinct = pending(vec![
        insert(row(1, 10, 0)),
        update(row(2, 20, 0), row(2, 20, 1)),
        delete(row(3, 30, 0)),
        insert(row(4, 40, 0)),
    ]);
    assert!(planner.group(&mut distinct, |_| &keys));
    assert_eq!(kinds(&distinct), ["delete", "update", "insert", "insert"]);
    let mut units = Vec::new();
    planner.plan(&distinct, |_| &keys, &mut units);
    assert_eq!(units.len(), 3, "{units:?}");

    // Row 3 frees unique value 30 and row 5 takes it: the delete must stay first, and does
    // because nothing is reordered.
    let mut shared = pending(vec![
        insert(row(1, 10, 0)),
        delete(row(3, 30, 0)),
        insert(row(5, 30, 0)),
    ]);
    assert!(!planner.group(&mut shared, |_| &keys));
    assert_eq!(kinds(&shared), ["insert", "delete", "insert"]);
}

#[test]
fn consecutive_inserts_share_a_unit_until_a_key_repeats() {
    let (_, changes) = generate(
        &[],
        &[
            (0, 0, 0, 1, false),
            (0, 1, 1, 2, false),
            (0, 2, 2, 3, false),
        ],
    );
    let pending: Vec<PendingChange> = changes
        .into_iter()
        .map(|change| PendingChange {
            change,
            idempotent: false,
        })
        .collect();
    let keys = table_keys();
    let mut units = Vec::new();
    BatchPlanner::new(100).plan(&pending, |_| &keys, &mut units);
    assert_eq!(
        units,
        [BatchUnit {
            kind: UnitKind::Insert,
            changes: 0..3
        }]
    );
}
