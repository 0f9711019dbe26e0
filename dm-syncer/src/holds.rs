//! Held tables and rewinds (shard DDL): the pure decisions of `docs/design/checkpoint.md`,
//! "Held tables and rewinds", that the event loop asks and the model test checks.
//!
//! ```text
//! ShardCoordinator: Hold ----> HoldKeeper::hold(T, H, reopen)      rows of T after H: Dropped
//!                                 | global checkpoint clamped to the floor (min reopen of held/replaying)
//! resolution -> drain, run T's DDL, HoldKeeper::begin_replay(T, H, until = P), stream reset to reopen
//!                                 | live pass: rows of T after H dispatched as replayed (ReplayMark),
//!                                 | every other row is already applied
//! event start >= P -> HoldKeeper::passed: the pass ends, T is Replayed{P}; forgotten once G >= P
//! ```
//!
//! [`HoldKeeper::fate`] says what becomes of a row change (rule 2): dispatch it (as replayed, or
//! the usual way), it is already applied, or it is dropped (held). [`HoldKeeper::checkpoint`]
//! says where the global checkpoint may be (the floor, rule 1), which deferred table structures
//! and DDL records it carries (rule 6), and forgets finished holds (rule 5).
//!
//! Invariants: a row of a held table after its DDL is never dispatched; a replayed row is
//! dispatched unless its worker's [`ReplayMark`] for the same hold covers it; the checkpoint
//! never passes the reopen point of a held or replaying table; a table structure changed by a
//! DDL after the floor is saved only with a checkpoint past that DDL.

use std::cmp::Ordering;

use dm_core::{DdlRecord, HoldStage, Location, ReplayMark, ShardHold, TableCheckpoint, TableRef};

/// What becomes of one row change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Send it to its worker; `replay` names the hold (its `held_at`) whose replay it belongs
    /// to, `None` for the usual way (it moves the worker's own checkpoint).
    Dispatch {
        /// The hold it replays.
        replay: Option<Location>,
    },
    /// It is applied already (before a crash, or before a rewind).
    Committed,
    /// Its table is held: it is not applied now (a replay or a restart reads it again).
    Dropped,
}

/// A replay pass in progress: the stream was reset to the hold's reopen point and is read up
/// to `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePass {
    /// The replayed table.
    pub table: TableRef,
    /// Its hold.
    pub held_at: Location,
    /// Where the reading was when the resolution came (a transaction end).
    pub until: Location,
}

/// What a global checkpoint at a location carries about holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldCheckpoint {
    /// The checkpoint's location: the watermark, or the floor below it.
    pub location: Option<Location>,
    /// Table structures of DDLs at or before the location, deferred while it was clamped.
    pub tables: Vec<TableCheckpoint>,
    /// Records of DDLs after the location that ran (kept until a checkpoint passes them).
    pub earlier_ddls: Vec<DdlRecord>,
    /// The holds to store.
    pub holds: Vec<ShardHold>,
}

/// The holds of one source and what follows from them.
#[derive(Clone, Debug, Default)]
pub struct HoldKeeper {
    holds: Vec<ShardHold>,
    /// Each worker's replay progress as loaded (what a restart during a replay skips; a live
    /// pass dispatches each replayed change once and needs none).
    marks: Vec<Option<ReplayMark>>,
    live: Option<LivePass>,
    /// Table structures changed by DDLs while the checkpoint was clamped, with each DDL's end.
    deferred: Vec<(Location, Vec<TableCheckpoint>)>,
    /// Records of DDLs that ran while the checkpoint was clamped, other than the newest.
    records: Vec<DdlRecord>,
    /// The workers' stored checkpoints were written while reading another server than the one
    /// read now (a failover by GTID set): their file positions mean nothing here, so a change
    /// is covered only when its whole transaction is before the mark's
    /// ([`HoldKeeper::compare_marks_by_transaction_only`]).
    marks_by_transaction_only: bool,
}

fn before(left: &Location, right: &Location) -> bool {
    left.compare(right) == Some(Ordering::Less)
}

fn at_or_after(left: &Location, right: &Location) -> bool {
    matches!(
        left.compare(right),
        Some(Ordering::Greater | Ordering::Equal)
    )
}

/// Whether the change at `location` is in a transaction before the one of `mark_location`, by
/// GTID sets alone (the same on every server of a replication group); `false` without them.
fn transaction_before(location: &Location, mark_location: &Location) -> bool {
    match (&location.gtid_set, &mark_location.gtid_set) {
        (Some(set), Some(mark)) => set.as_ref().partial_cmp(mark.as_ref()) == Some(Ordering::Less),
        _ => false,
    }
}

/// Whether the change at (`location`, `row`) is at or before (`mark_location`, `mark_row`).
fn covered(location: &Location, row: u64, mark_location: &Location, mark_row: u64) -> bool {
    match location.compare(mark_location) {
        Some(Ordering::Less) => true,
        Some(Ordering::Equal) => row <= mark_row,
        _ => false,
    }
}

impl HoldKeeper {
    /// The holds, replay marks and earlier DDL records a restart loaded.
    pub fn restore(
        holds: Vec<ShardHold>,
        marks: Vec<Option<ReplayMark>>,
        records: Vec<DdlRecord>,
    ) -> Self {
        HoldKeeper {
            holds,
            marks,
            records,
            ..HoldKeeper::default()
        }
    }

    /// From now on a worker's stored checkpoint covers only the changes of the transactions
    /// before its own (by GTID set): the marks were written while reading another server, whose
    /// file positions cannot be compared with this one's. The rest of a mark's transaction is
    /// dispatched again, and the caller writes it idempotently.
    pub fn compare_marks_by_transaction_only(&mut self) {
        self.marks_by_transaction_only = true;
    }

    /// Whether the change at (`location`, `row`) is at or before a worker's mark.
    fn covers(
        &self,
        location: &Location,
        row: u64,
        mark_location: &Location,
        mark_row: u64,
    ) -> bool {
        if self.marks_by_transaction_only {
            transaction_before(location, mark_location)
        } else {
            covered(location, row, mark_location, mark_row)
        }
    }

    /// No hold at all (the keeper changes nothing).
    pub fn is_empty(&self) -> bool {
        self.holds.is_empty() && self.live.is_none()
    }

    /// The holds as stored.
    pub fn holds(&self) -> &[ShardHold] {
        &self.holds
    }

    /// The replay pass in progress.
    pub fn live(&self) -> Option<&LivePass> {
        self.live.as_ref()
    }

    /// Whether any table is held (a resolution is awaited).
    pub fn any_held(&self) -> bool {
        self.holds.iter().any(|hold| hold.stage == HoldStage::Held)
    }

    /// The hold of `table` in stage `Held`, if any.
    pub fn held(&self, table: &TableRef) -> Option<&ShardHold> {
        self.holds
            .iter()
            .find(|hold| &hold.table == table && hold.stage == HoldStage::Held)
    }

    /// The hold of `table` whose DDL starts at `held_at`.
    pub fn hold_at(&self, table: &TableRef, held_at: &Location) -> Option<&ShardHold> {
        self.holds.iter().find(|hold| {
            &hold.table == table && hold.held_at.compare(held_at) == Some(Ordering::Equal)
        })
    }

    /// The floor: the global checkpoint stays at or before it (the earliest reopen point of a
    /// table held or replaying).
    pub fn floor(&self) -> Option<&Location> {
        self.holds
            .iter()
            .filter(|hold| !matches!(hold.stage, HoldStage::Replayed { .. }))
            .map(|hold| &hold.reopen_at)
            .reduce(|earliest, next| {
                if before(next, earliest) {
                    next
                } else {
                    earliest
                }
            })
    }

    /// What becomes of a change of `table` at `location` that is decided before its rows are
    /// decoded (the tracker may not describe them): `Dropped` while the table is held after
    /// its DDL, `Committed` when a replay already applied it, or, during a live pass, when it
    /// is not a row the pass replays. `None`: decode it and ask [`HoldKeeper::fate`].
    pub fn fate_before_decoding(&self, table: &TableRef, location: &Location) -> Option<Fate> {
        for hold in self.holds.iter().filter(|hold| &hold.table == table) {
            if !before(&hold.held_at, location) {
                continue;
            }
            match &hold.stage {
                HoldStage::Held => return Some(Fate::Dropped),
                HoldStage::Replayed { until } if before(location, until) => {
                    return Some(Fate::Committed);
                }
                _ => {}
            }
        }
        match &self.live {
            // A live pass: only the replayed table's rows after its DDL are new.
            Some(live) if !(&live.table == table && before(&live.held_at, location)) => {
                Some(Fate::Committed)
            }
            _ => None,
        }
    }

    /// What becomes of the change of `table` at (`location`, `row`), assigned to `worker`
    /// whose own checkpoint is `applied` (`None`: the worker is past it, everything is new)
    /// (rule 2 of the design).
    pub fn fate(
        &self,
        table: &TableRef,
        location: &Location,
        row: u64,
        worker: usize,
        applied: Option<&(Location, u64)>,
    ) -> Fate {
        if let Some(fate) = self.fate_before_decoding(table, location) {
            return fate;
        }
        let replaying = self.holds.iter().find(|hold| {
            &hold.table == table
                && before(&hold.held_at, location)
                && matches!(&hold.stage, HoldStage::Replaying { until } if before(location, until))
        });
        if let Some(hold) = replaying {
            let mark = self.marks.get(worker).and_then(Option::as_ref);
            let done = mark.is_some_and(|mark| {
                mark.held_at.compare(&hold.held_at) == Some(Ordering::Equal)
                    && self.covers(location, row, &mark.location, mark.row)
            });
            return if done {
                Fate::Committed
            } else {
                Fate::Dispatch {
                    replay: Some(hold.held_at.clone()),
                }
            };
        }
        match applied {
            Some((applied, last_row)) if self.covers(location, row, applied, *last_row) => {
                Fate::Committed
            }
            _ => Fate::Dispatch { replay: None },
        }
    }

    /// `table`'s DDL at `held_at` is held; `reopen_at` is the transaction end before it. A
    /// replay of the same table that reaches past `held_at` stops there for the table (its
    /// rows after it were not applied); a live pass still reads up to its end, applying
    /// nothing more of the table.
    pub fn hold(&mut self, table: TableRef, held_at: Location, reopen_at: Location) {
        for hold in self.holds.iter_mut().filter(|hold| hold.table == table) {
            if let HoldStage::Replaying { until } | HoldStage::Replayed { until } = &mut hold.stage
                && before(&held_at, until)
            {
                *until = held_at.clone();
            }
        }
        self.holds.push(ShardHold {
            table,
            held_at,
            reopen_at,
            stage: HoldStage::Held,
        });
    }

    /// The held DDL of `table` at `held_at` ran (or was skipped) as resolved: its rows from it
    /// up to `until` are replayed now (`live`: by a pass the caller starts at the hold's reopen
    /// point). Returns the reopen point, `None` when no such hold is held.
    pub fn begin_replay(
        &mut self,
        table: &TableRef,
        held_at: &Location,
        until: Location,
    ) -> Option<Location> {
        let hold = self.holds.iter_mut().find(|hold| {
            &hold.table == table
                && hold.held_at.compare(held_at) == Some(Ordering::Equal)
                && hold.stage == HoldStage::Held
        })?;
        hold.stage = HoldStage::Replaying {
            until: until.clone(),
        };
        let reopen = hold.reopen_at.clone();
        self.live = Some(LivePass {
            table: table.clone(),
            held_at: held_at.clone(),
            until,
        });
        Some(reopen)
    }

    /// Whether a replay ends at `end`, the end of the event just handled (a replay's end is
    /// where the reading was, a transaction end): the caller waits until every
    /// dispatched change is committed (a replayed table stops holding the checkpoint back
    /// once its replay ended), then calls [`HoldKeeper::passed`].
    pub fn replay_ends(&self, end: &Location) -> bool {
        self.holds.iter().any(
            |hold| matches!(&hold.stage, HoldStage::Replaying { until } if at_or_after(end, until)),
        ) || self
            .live
            .as_ref()
            .is_some_and(|live| at_or_after(end, &live.until))
    }

    /// Whether the resolution of the hold at `held_at` may start a rewind with the next event
    /// starting at `reading` (a transaction end): not before the reading passed the held DDL
    /// (after a restart the reading starts below it), nor before it passed every worker's
    /// stored checkpoint (`applied`, `None` once a worker is past it) and every DDL recorded
    /// (`pending` and the records kept): a run before a crash may have dropped rows and DDL of
    /// the held table up to there while the workers committed other rows, and other DDLs ran,
    /// past them; the replay must reach that far, or the usual rules would take what was
    /// dropped for applied. Nor while another table's replay goes on (after a restart, a
    /// replay continues in the reading): a worker keeps the progress of one replay only.
    pub fn may_rewind(
        &self,
        held_at: &Location,
        reading: &Location,
        applied: &[Option<(Location, u64)>],
        pending: Option<&DdlRecord>,
    ) -> bool {
        before(held_at, reading)
            && self.live.is_none()
            && !self
                .holds
                .iter()
                .any(|hold| matches!(hold.stage, HoldStage::Replaying { .. }))
            && applied
                .iter()
                .flatten()
                .all(|(location, _)| before(location, reading))
            && self
                .records
                .iter()
                .chain(pending)
                .all(|record| record.compare_to(reading) == Some(Ordering::Less))
    }

    /// The event just handled ends at `end`: a replay that reached its end is over. Returns
    /// `true` when a live pass ended here (the caller goes on reading the same stream
    /// normally).
    pub fn passed(&mut self, end: &Location) -> bool {
        for hold in &mut self.holds {
            if let HoldStage::Replaying { until } = &hold.stage
                && at_or_after(end, until)
            {
                hold.stage = HoldStage::Replayed {
                    until: until.clone(),
                };
            }
        }
        match &self.live {
            Some(live) if at_or_after(end, &live.until) => {
                self.live = None;
                true
            }
            _ => false,
        }
    }

    /// Whether the global checkpoint is held back (table structures are deferred).
    pub fn clamped(&self) -> bool {
        self.floor().is_some()
    }

    /// The structures a DDL ending at `end` changed (or the tracker learnt by the reading at
    /// `end`), saved with the first checkpoint at or past `end`, in the order they came
    /// (rule 6: while the checkpoint is clamped, that is later than the DDL).
    pub fn defer_tables(&mut self, end: Location, tables: Vec<TableCheckpoint>) {
        if !tables.is_empty() {
            self.deferred.push((end, tables));
        }
    }

    /// While clamped: a DDL's record that a newer one replaces; kept until a checkpoint
    /// passes its DDL. A record of the same event replaces the one kept (its later statement).
    pub fn keep_record(&mut self, record: DdlRecord) {
        self.records.retain(|kept| {
            (kept.position != record.position || kept.suffix != record.suffix)
                || kept.statement > record.statement
        });
        if !self.records.iter().any(|kept| {
            kept.position == record.position
                && kept.suffix == record.suffix
                && kept.statement > record.statement
        }) {
            self.records.push(record);
        }
    }

    /// Whether a replay of `table` that has not ended covers `location` (after its held DDL,
    /// before its end): a DDL there runs after later events did, so a record of a later event
    /// does not say it ran.
    pub fn replay_covers(&self, table: &TableRef, location: &Location) -> bool {
        self.holds.iter().any(|hold| {
            &hold.table == table
                && before(&hold.held_at, location)
                && matches!(&hold.stage, HoldStage::Replaying { until } if before(location, until))
        }) || self
            .live
            .as_ref()
            .is_some_and(|live| &live.table == table && before(&live.held_at, location))
    }

    /// The record among the kept ones of the DDL event at `location`.
    pub fn record_of(&self, location: &Location) -> Option<&DdlRecord> {
        self.records
            .iter()
            .find(|record| record.compare_to(location) == Some(Ordering::Equal))
    }

    /// What a global checkpoint carries when the watermark reached `watermark`: its location
    /// (clamped to the floor), the deferred structures it passed, the records it did not pass
    /// and the holds; holds replayed up to or before it are forgotten. Call it only when the
    /// checkpoint is written (it takes the deferred structures out).
    pub fn checkpoint(&mut self, watermark: Option<&Location>) -> HoldCheckpoint {
        let location = match (watermark, self.floor()) {
            (Some(watermark), Some(floor)) if before(floor, watermark) => Some(floor.clone()),
            (watermark, _) => watermark.cloned(),
        };
        let mut tables: Vec<TableCheckpoint> = Vec::new();
        if let Some(location) = &location {
            self.holds.retain(|hold| match &hold.stage {
                HoldStage::Replayed { until } => before(location, until),
                _ => true,
            });
            self.records
                .retain(|record| record.compare_to(location) != Some(Ordering::Less));
            let mut index = 0;
            while index < self.deferred.len() {
                if at_or_after(location, &self.deferred[index].0) {
                    let (_, changed) = self.deferred.remove(index);
                    for table in changed {
                        tables.retain(|saved| saved.table != table.table);
                        tables.push(table);
                    }
                } else {
                    index += 1;
                }
            }
        }
        HoldCheckpoint {
            location,
            tables,
            earlier_ddls: self.records.clone(),
            holds: self.holds.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::BinlogPosition;

    fn at(offset: u64) -> Location {
        Location::from_position(
            BinlogPosition::parse(&format!("mysql-bin.000001:{offset}")).expect("a position"),
        )
    }

    fn table(name: &str) -> TableRef {
        TableRef::new("shard", name)
    }

    #[test]
    fn marks_of_another_server_cover_only_the_transactions_before_theirs() {
        let in_transaction_after = |sequence: u64, position: &str| {
            let set = dm_core::GtidSet::parse(dm_core::Flavor::MariaDb, &format!("0-1-{sequence}"))
                .expect("a GTID set");
            Location {
                gtid_set: Some(std::sync::Arc::new(set)),
                ..Location::from_position(BinlogPosition::parse(position).expect("position"))
            }
        };
        let table = TableRef::new("shop", "items");
        // The worker's mark: row 3 of an event in transaction 21, at the old server's position.
        let mark = (in_transaction_after(20, "mysql-bin.000001:5000"), 3);
        let mut keeper = HoldKeeper::default();
        // By position (one server), the new server's later file would seem past the mark.
        let same_transaction = in_transaction_after(20, "mysql-bin.000002:300");
        assert!(matches!(
            keeper.fate(&table, &same_transaction, 0, 0, Some(&mark)),
            Fate::Dispatch { replay: None }
        ));
        let earlier_file = in_transaction_after(20, "mysql-bin.000000:300");
        assert_eq!(
            keeper.fate(&table, &earlier_file, 9, 0, Some(&mark)),
            Fate::Committed,
            "by position a row of the mark's transaction can look covered"
        );
        keeper.compare_marks_by_transaction_only();
        for location in [&same_transaction, &earlier_file] {
            assert!(
                matches!(
                    keeper.fate(&table, location, 0, 0, Some(&mark)),
                    Fate::Dispatch { replay: None }
                ),
                "the mark's own transaction is written again: {location}"
            );
        }
        assert_eq!(
            keeper.fate(
                &table,
                &in_transaction_after(19, "mysql-bin.000009:4"),
                0,
                0,
                Some(&mark)
            ),
            Fate::Committed,
            "an earlier transaction is covered, wherever it is in this server's files"
        );
        assert!(matches!(
            keeper.fate(
                &table,
                &in_transaction_after(21, "mysql-bin.000000:4"),
                0,
                0,
                Some(&mark)
            ),
            Fate::Dispatch { replay: None }
        ));
    }

    #[test]
    fn a_held_table_drops_its_rows_after_the_ddl_and_clamps_the_checkpoint() {
        let mut keeper = HoldKeeper::default();
        keeper.hold(table("a"), at(500), at(450));
        let usual = Fate::Dispatch { replay: None };
        assert_eq!(keeper.fate(&table("a"), &at(400), 0, 0, None), usual);
        assert_eq!(
            keeper.fate(&table("a"), &at(600), 0, 0, None),
            Fate::Dropped
        );
        assert_eq!(keeper.fate(&table("b"), &at(600), 0, 0, None), usual);
        assert_eq!(keeper.floor(), Some(&at(450)));
        let checkpoint = keeper.checkpoint(Some(&at(900)));
        assert_eq!(checkpoint.location, Some(at(450)));
        assert_eq!(checkpoint.holds.len(), 1);
        assert_eq!(keeper.checkpoint(Some(&at(300))).location, Some(at(300)));
    }

    #[test]
    fn a_replay_dispatches_the_held_rows_once_and_ends_at_its_end() {
        let mut keeper = HoldKeeper::default();
        keeper.hold(table("a"), at(500), at(450));
        assert_eq!(
            keeper.begin_replay(&table("a"), &at(500), at(900)),
            Some(at(450))
        );
        // The live pass: the held table's rows after the DDL are replayed, the rest applied.
        assert_eq!(
            keeper.fate(&table("a"), &at(600), 0, 0, None),
            Fate::Dispatch {
                replay: Some(at(500))
            }
        );
        assert_eq!(
            keeper.fate(&table("b"), &at(600), 0, 0, None),
            Fate::Committed
        );
        assert_eq!(
            keeper.fate(&table("a"), &at(400), 0, 0, None),
            Fate::Committed
        );
        assert!(!keeper.passed(&at(800)));
        assert!(keeper.passed(&at(900)), "the pass ends at its end");
        assert_eq!(
            keeper.fate(&table("a"), &at(600), 0, 0, None),
            Fate::Committed,
            "a restart before the checkpoint passes the end reads them again: applied"
        );
        assert_eq!(keeper.floor(), None, "a replayed table no longer clamps");
        let checkpoint = keeper.checkpoint(Some(&at(950)));
        assert!(checkpoint.holds.is_empty(), "forgotten once passed");
    }

    #[test]
    fn a_restart_during_a_replay_skips_what_each_worker_committed() {
        let hold = ShardHold {
            table: table("a"),
            held_at: at(500),
            reopen_at: at(450),
            stage: HoldStage::Replaying { until: at(900) },
        };
        let mark = ReplayMark {
            held_at: at(500),
            location: at(700),
            row: 1,
        };
        let keeper = HoldKeeper::restore(vec![hold], vec![Some(mark), None], Vec::new());
        assert_eq!(
            keeper.fate(&table("a"), &at(700), 1, 0, None),
            Fate::Committed
        );
        let replay = Fate::Dispatch {
            replay: Some(at(500)),
        };
        assert_eq!(keeper.fate(&table("a"), &at(700), 2, 0, None), replay);
        assert_eq!(keeper.fate(&table("a"), &at(600), 0, 1, None), replay);
        // Past the replay's end, the usual rule.
        let applied = (at(950), 0);
        assert_eq!(
            keeper.fate(&table("a"), &at(920), 0, 1, Some(&applied)),
            Fate::Committed
        );
    }

    #[test]
    fn deferred_structures_and_records_follow_the_checkpoint() {
        let mut keeper = HoldKeeper::default();
        keeper.hold(table("a"), at(500), at(450));
        let changed = vec![TableCheckpoint {
            table: table("b"),
            snapshot: None,
        }];
        keeper.defer_tables(at(620), changed.clone());
        let record = DdlRecord {
            position: at(600).position,
            suffix: 0,
            statement: 0,
            sql: "DROP TABLE b".into(),
            before: Vec::new(),
        };
        keeper.keep_record(record.clone());
        let clamped = keeper.checkpoint(Some(&at(700)));
        assert!(
            clamped.tables.is_empty(),
            "not before the checkpoint passes the DDL"
        );
        assert_eq!(clamped.earlier_ddls, vec![record.clone()]);
        assert_eq!(keeper.record_of(&at(600)), Some(&record));
        keeper.begin_replay(&table("a"), &at(500), at(700));
        keeper.passed(&at(700));
        let free = keeper.checkpoint(Some(&at(700)));
        assert_eq!(free.location, Some(at(700)));
        assert_eq!(free.tables, changed);
        assert!(free.earlier_ddls.is_empty());
    }

    #[test]
    fn a_second_hold_during_a_replay_cuts_the_replay_short() {
        let mut keeper = HoldKeeper::default();
        keeper.hold(table("a"), at(500), at(450));
        keeper.begin_replay(&table("a"), &at(500), at(900));
        keeper.hold(table("a"), at(700), at(650));
        assert_eq!(
            keeper.fate(&table("a"), &at(750), 0, 0, None),
            Fate::Dropped
        );
        assert!(
            !keeper.passed(&at(750)),
            "the pass reads on to where the resolution came"
        );
        assert_eq!(
            keeper.fate(&table("a"), &at(750), 0, 0, None),
            Fate::Dropped
        );
        assert_eq!(
            keeper.fate(&table("a"), &at(600), 0, 0, None),
            Fate::Committed,
            "replayed before the second hold"
        );
        assert!(keeper.passed(&at(900)));
        assert_eq!(keeper.floor(), Some(&at(650)));
    }
}
