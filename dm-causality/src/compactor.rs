//! Merging the changes of one row within a window.
//!
//! ```text
//! changes (binlog order) --push--> [ slot 0 | slot 1 | ... ] --drain--> fewer changes, same result
//! ```
//!
//! A slot follows one row through the window: the row as it was before the window's first change
//! to it (`original`, absent for an insert) and as it is now (`current`, absent after a delete).
//! Draining emits one change per slot:
//!
//! | original | current | emitted | from, for example |
//! |---|---|---|---|
//! | absent | absent | nothing | INSERT + DELETE |
//! | absent | row b | INSERT b | INSERT + UPDATE |
//! | row a | row b | UPDATE a→b (first before, last after) | UPDATE + UPDATE |
//! | row a | row b, through a delete | UPDATE a→b (the row never left its identity) | DELETE + INSERT |
//! | row a | row b, through a delete, identity moved | idempotent UPDATE a→b (delete a, replace b) | UPDATE (new PK) + DELETE + INSERT |
//! | row a | absent | DELETE a (the original row) | UPDATE + DELETE |
//!
//! A row is followed by its identity (primary key, else first not-null unique key). An UPDATE that
//! changes the identity moves the row to its new identity: later changes of the new identity merge
//! into it, and the old identity is free for an unrelated new row.
//!
//! **When a merge is allowed.** Merging moves the later change's effect back to the slot of the
//! earlier one. That is only safe if no change in between touches any unique value the later
//! change touches (otherwise, for example, a row that takes over a unique value freed in between
//! would now collide with it). The compactor remembers the last slot that touched each causality
//! key; a change merges into slot `i` only if every key it touches was last touched at or before
//! `i`. Otherwise it is appended as a new slot. DM moves merged changes to the latest slot without
//! this check, which can reorder changes of different rows that share a unique value.
//!
//! Not compacted, appended as they are: changes of tables without an identity, and changes marked
//! idempotent (replayed in safe mode, where the downstream may already hold their effect).
//!
//! Memory: at most `capacity` slots; the caller drains when [`Compactor::is_full`].

use std::sync::Arc;

use dm_core::{Location, Row, RowChange, RowChangeKind, TableRef, TableSchema};
use hashbrown::HashTable;

use crate::causality::KeyHasher;
use crate::keys::TableKeys;

type KeyMap<V> = hashbrown::HashMap<u64, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// A change ready for a worker, with whether it must be written idempotently (as REPLACE, or
/// DELETE + REPLACE for an update).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingChange {
    /// The change.
    pub change: RowChange,
    /// Write it so that applying it twice gives the same table.
    pub idempotent: bool,
}

/// One row followed through the window. Rows are moved in from the changes, never copied.
#[derive(Debug)]
struct RowSlot {
    /// The row before the window's first change to it (`None`: it did not exist).
    original: Option<Row>,
    /// The row now (`None`: deleted).
    current: Option<Row>,
    /// The last deleted image when it differs from `original`, while `current` is `None`.
    deleted: Option<Row>,
    /// A delete happened after the original and before the current row.
    through_delete: bool,
    /// Some merged update changed the row's identity (primary key / not-null unique key).
    identity_moved: bool,
    /// Schema, location, commit time and row index of the latest merged change.
    schema: Arc<TableSchema>,
    location: Location,
    commit_ts: u64,
    row: u64,
}

impl RowSlot {
    /// The row whose identity this slot answers to: the current row, else the last deleted one
    /// (which is the original row when the window's first change to it was the delete).
    fn identity_row(&self) -> Option<&Row> {
        self.current
            .as_ref()
            .or(self.deleted.as_ref())
            .or(self.original.as_ref())
    }
}

#[derive(Debug)]
enum Slot {
    /// A change that is not compacted.
    Plain(PendingChange),
    /// A row followed through the window.
    Row(RowSlot),
}

/// Merges changes to the same row within a window of at most `capacity` slots.
#[derive(Debug)]
pub struct Compactor {
    capacity: usize,
    slots: Vec<Slot>,
    /// Identity hash → slot index, verified by comparing identities (entries whose slot moved to
    /// another identity no longer verify and are inert).
    identities: HashTable<(u64, usize)>,
    /// Causality key → last slot that touched it.
    last_touch: KeyMap<usize>,
    /// Scratch buffer for keys (no allocation per change).
    keys: Vec<u64>,
}

impl Compactor {
    /// A compactor holding at most `capacity` slots (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Compactor {
            capacity,
            slots: Vec::with_capacity(capacity),
            identities: HashTable::with_capacity(capacity),
            last_touch: KeyMap::with_capacity_and_hasher(capacity * 2, Default::default()),
            keys: Vec::with_capacity(8),
        }
    }

    /// Number of slots in use.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no change is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether the window is full: drain before pushing more.
    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.capacity
    }

    /// Adds a change (in binlog order) of the table whose keys are `keys`.
    pub fn push(&mut self, change: RowChange, idempotent: bool, keys: &TableKeys) {
        let identities = keys.causality_keys_and_identity(&change, &mut self.keys);
        // The identity the change is found under, and whether the row leaves it.
        let (probe, identity_changes) = match change.kind() {
            RowChangeKind::Insert { after } => (identities.after.map(|hash| (hash, after)), false),
            RowChangeKind::Update { before, after } => (
                identities.before.map(|hash| (hash, before)),
                identities.before != identities.after || !keys.same_identity(before, after),
            ),
            RowChangeKind::Delete { before } => {
                (identities.before.map(|hash| (hash, before)), false)
            }
        };
        let Some((probe_hash, probe_row)) = probe.filter(|_| !idempotent) else {
            let index = self.slots.len();
            self.touch(index);
            self.slots
                .push(Slot::Plain(PendingChange { change, idempotent }));
            return;
        };
        let found = find_identity(
            &self.identities,
            &self.slots,
            probe_hash,
            probe_row,
            &change,
            keys,
        );
        let merge_into = found.filter(|index| self.can_merge(*index, &change));
        if identity_changes {
            // The row leaves this identity: nothing may merge into it under the old one.
            forget_identity(
                &mut self.identities,
                &self.slots,
                change.table(),
                probe_hash,
                probe_row,
                keys,
            );
        }
        let index = match merge_into {
            Some(index) => {
                if let Some(Slot::Row(slot)) = self.slots.get_mut(index) {
                    slot.identity_moved |= identity_changes;
                    merge(slot, change);
                }
                index
            }
            None => {
                self.slots
                    .push(Slot::Row(new_slot(change, identity_changes)));
                self.slots.len() - 1
            }
        };
        self.touch(index);
        // A merge that keeps the identity leaves the entry that found the slot in place.
        if merge_into.is_none() || identity_changes {
            upsert_identity(&mut self.identities, &self.slots, index, keys);
        }
    }

    /// Whether merging the change into slot `index` keeps the order of every unique value it
    /// touches, and the slot's row is in the state the change expects.
    fn can_merge(&self, index: usize, change: &RowChange) -> bool {
        let Some(Slot::Row(slot)) = self.slots.get(index) else {
            return false;
        };
        let expected_state = match change.kind() {
            RowChangeKind::Insert { .. } => slot.current.is_none(),
            RowChangeKind::Update { .. } | RowChangeKind::Delete { .. } => slot.current.is_some(),
        };
        let same_layout = Arc::ptr_eq(&slot.schema, change.schema())
            || slot.schema.columns() == change.schema().columns();
        expected_state
            && same_layout
            && self
                .keys
                .iter()
                .all(|key| self.last_touch.get(key).is_none_or(|last| *last <= index))
    }

    fn touch(&mut self, index: usize) {
        for key in &self.keys {
            self.last_touch.insert(*key, index);
        }
    }

    /// Moves the window's changes, in order, to `out`, and empties the window for reuse.
    pub fn drain_into(&mut self, out: &mut Vec<PendingChange>) {
        self.identities.clear();
        self.last_touch.clear();
        for slot in self.slots.drain(..) {
            match slot {
                Slot::Plain(pending) => out.push(pending),
                Slot::Row(slot) => {
                    if let Some(pending) = emit(slot) {
                        out.push(pending);
                    }
                }
            }
        }
    }
}

/// A test for identity-map entries: does the entry point at a slot of `table` whose row has the
/// identity of `row`? (Entries whose slot moved to another identity no longer pass.)
fn holds_identity<'a>(
    slots: &'a [Slot],
    keys: &'a TableKeys,
    table: &'a TableRef,
    hash: u64,
    row: &'a Row,
) -> impl Fn(&(u64, usize)) -> bool + 'a {
    move |(entry_hash, index)| {
        *entry_hash == hash
            && match slots.get(*index) {
                Some(Slot::Row(slot)) => {
                    slot.schema.table() == table
                        && slot
                            .identity_row()
                            .is_some_and(|slot_row| keys.same_identity(slot_row, row))
                }
                _ => false,
            }
    }
}

/// The slot holding the row with `row`'s identity, if any.
fn find_identity(
    identities: &HashTable<(u64, usize)>,
    slots: &[Slot],
    hash: u64,
    row: &Row,
    change: &RowChange,
    keys: &TableKeys,
) -> Option<usize> {
    identities
        .find(hash, holds_identity(slots, keys, change.table(), hash, row))
        .map(|(_, index)| *index)
}

/// Points the identity of slot `index`'s row at `index`, replacing an entry for that identity.
fn upsert_identity(
    identities: &mut HashTable<(u64, usize)>,
    slots: &[Slot],
    index: usize,
    keys: &TableKeys,
) {
    let Some(Slot::Row(slot)) = slots.get(index) else {
        return;
    };
    let Some(row) = slot.identity_row() else {
        return;
    };
    let Some(hash) = keys.identity_hash(row) else {
        return;
    };
    let verifies = holds_identity(slots, keys, slot.schema.table(), hash, row);
    match identities.find_entry(hash, verifies) {
        Ok(mut entry) => entry.get_mut().1 = index,
        Err(absent) => {
            absent
                .into_table()
                .insert_unique(hash, (hash, index), |(hash, _)| *hash);
        }
    }
}

/// Removes the entry of `row`'s identity, if one verifies.
fn forget_identity(
    identities: &mut HashTable<(u64, usize)>,
    slots: &[Slot],
    table: &TableRef,
    hash: u64,
    row: &Row,
    keys: &TableKeys,
) {
    let verifies = holds_identity(slots, keys, table, hash, row);
    if let Ok(entry) = identities.find_entry(hash, verifies) {
        entry.remove();
    }
}

fn new_slot(change: RowChange, identity_moved: bool) -> RowSlot {
    let row = change.row();
    let (schema, kind, location, commit_ts) = change.into_parts();
    let (original, current, deleted) = match kind {
        RowChangeKind::Insert { after } => (None, Some(after), None),
        RowChangeKind::Update { before, after } => (Some(before), Some(after), None),
        RowChangeKind::Delete { before } => (Some(before), None, None),
    };
    RowSlot {
        original,
        current,
        deleted,
        through_delete: false,
        identity_moved,
        schema,
        location,
        commit_ts,
        row,
    }
}

fn merge(slot: &mut RowSlot, change: RowChange) {
    slot.row = change.row();
    let (schema, kind, location, commit_ts) = change.into_parts();
    match kind {
        RowChangeKind::Insert { after } => {
            slot.through_delete |= slot.original.is_some();
            slot.current = Some(after);
            slot.deleted = None;
        }
        RowChangeKind::Update { after, .. } => slot.current = Some(after),
        RowChangeKind::Delete { before } => {
            slot.current = None;
            slot.deleted = Some(before);
        }
    }
    slot.schema = schema;
    slot.location = location;
    slot.commit_ts = commit_ts;
}

fn emit(slot: RowSlot) -> Option<PendingChange> {
    let (kind, idempotent) = match (slot.original, slot.current) {
        (None, None) => return None,
        (None, Some(after)) => (RowChangeKind::Insert { after }, false),
        // Deleted and inserted again under the same identity: an UPDATE a→b does both, and
        // keeps `a`, whose unique values it frees, in sight of whoever orders the changes after
        // (a REPLACE would free them unseen).
        // Moved to another identity on the way: REPLACE alone would leave the original row, so
        // an idempotent UPDATE (delete the original, replace the new) does both.
        (Some(before), Some(after)) if slot.through_delete && slot.identity_moved => {
            (RowChangeKind::Update { before, after }, true)
        }
        (Some(before), Some(after)) => (RowChangeKind::Update { before, after }, false),
        (Some(before), None) => (RowChangeKind::Delete { before }, false),
    };
    // The images come from changes of one layout (checked before merging), so this holds.
    RowChange::new(slot.schema, kind, slot.location, slot.commit_ts)
        .ok()
        .map(|change| PendingChange {
            change: change.with_row(slot.row),
            idempotent,
        })
}
