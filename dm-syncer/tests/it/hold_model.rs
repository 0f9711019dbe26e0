//! The model property test of held tables and rewinds (`docs/design/checkpoint.md`, "Held
//! tables and rewinds", proof obligation).
//!
//! A pure model of one source: a stream of row and DDL events of three tables (two shards that
//! a coordinator may hold, one it never holds), two workers whose queues commit batches at
//! random moments, a coordinator that holds shard DDL and resolves it later, checkpoint writes,
//! and crashes at any step (the queues and everything in memory are lost; what the checkpoint
//! store and the downstream kept survives). Every decision about holds is the syncer's own
//! [`HoldKeeper`]; the model plays the event loop's protocol around it (drain before a DDL and
//! before a replay ends, a hold saved before anything passes it, a DDL's record saved before it
//! runs, the rewind to the hold's reopen point and the replay up to where the reading was).
//!
//! It checks, for random histories: every row change is applied exactly once, in stream order
//! per row; every DDL runs downstream exactly once; every checkpoint stores the table structures
//! in force at its location, so a restart decodes every row it reads with the right structure.

use std::collections::{HashMap, HashSet, VecDeque};

use dm_core::testsuite::int_table;
use dm_core::{
    BinlogPosition, DdlRecord, HoldStage, Location, ReplayMark, ShardHold, TableCheckpoint,
    TableRef, TableSnapshot,
};
use dm_syncer::holds::{Fate, HoldKeeper};
use proptest::prelude::*;

const TABLES: usize = 3;
/// Tables 0 and 1 are shards a coordinator may hold; table 2 never is.
const SHARDS: usize = 2;
const WORKERS: usize = 2;

#[derive(Clone, Copy, Debug)]
enum Event {
    Row { table: usize, id: u8 },
    Ddl { table: usize },
}

#[derive(Clone, Copy, Debug)]
enum Action {
    /// Handle the next event (or a resolution waiting at a transaction end).
    Step,
    /// Worker `worker` commits up to `count` queued changes.
    Commit { worker: usize, count: usize },
    /// The coordinator resolves the oldest unresolved hold.
    Resolve,
    /// Write the global checkpoint.
    Flush,
    /// The process dies.
    Crash,
}

fn at(index: usize) -> Location {
    Location::from_position(
        BinlogPosition::parse(&format!("mysql-bin.000001:{}", 10 * (index + 1)))
            .expect("a position"),
    )
}

/// The event index a location names (each event starts at `at(index)`).
fn index_of(location: &Location) -> usize {
    (location.position.offset / 10) as usize - 1
}

fn table_ref(table: usize) -> TableRef {
    TableRef::new("shard", format!("t{table}"))
}

fn table_index(table: &TableRef) -> usize {
    table.table[1..].parse().expect("a model table")
}

/// A table's structure version, stored in a snapshot.
fn snapshot(table: usize, version: u32) -> TableSnapshot {
    TableSnapshot {
        schema: int_table(table_ref(table), &["id", "value"], true),
        default_charset: Some(version.to_string()),
    }
}

fn version_of(snapshot: &TableSnapshot) -> u32 {
    snapshot
        .default_charset
        .as_deref()
        .and_then(|text| text.parse().ok())
        .expect("a model snapshot")
}

fn worker_of(table: usize, id: u8) -> usize {
    (table * 7 + usize::from(id)) % WORKERS
}

/// What survives a crash: the checkpoint store, the downstream, the coordinator.
#[derive(Default)]
struct Durable {
    global: Option<Location>,
    holds: Vec<ShardHold>,
    earlier_ddls: Vec<DdlRecord>,
    ddl: Option<DdlRecord>,
    tables: [u32; TABLES],
    workers: Vec<Option<(Location, u64)>>,
    marks: Vec<Option<ReplayMark>>,
    /// Row event index -> times applied.
    rows: HashMap<usize, u32>,
    /// (table, id) -> the last row event applied to that row.
    last_row: HashMap<(usize, u8), usize>,
    /// DDL event index -> times run.
    ddls: HashMap<usize, u32>,
    /// Coordinator: DDL event index -> held (true) or executed; resolved holds.
    decided: HashMap<usize, bool>,
    resolved: HashSet<usize>,
    /// Holds resolved as Skip (their DDL never runs downstream).
    skipped: HashSet<usize>,
}

struct Queued {
    index: usize,
    replay: Option<Location>,
}

/// What one run keeps in memory.
struct Run {
    next: usize,
    tracker: [u32; TABLES],
    keeper: HoldKeeper,
    applied: Vec<Option<(Location, u64)>>,
    queues: Vec<VecDeque<Queued>>,
    pending_ddl: Option<DdlRecord>,
    /// A resolution being applied: (table, held DDL index, where the reading was).
    rewinding: Option<(usize, usize, Location)>,
    /// The end of the last event read in order (not during a replay).
    read_end: Location,
    resolutions: VecDeque<usize>,
}

struct Model {
    events: Vec<Event>,
    /// versions[i][t]: table t's structure version when event i starts.
    versions: Vec<[u32; TABLES]>,
    hold_choices: Vec<bool>,
    /// Per DDL event: resolved as Skip when held.
    skip_choices: Vec<bool>,
    durable: Durable,
    run: Run,
}

impl Model {
    fn new(events: Vec<Event>, hold_choices: Vec<bool>, skip_choices: Vec<bool>) -> Self {
        let mut versions = Vec::with_capacity(events.len() + 1);
        let mut current = [0; TABLES];
        for event in &events {
            versions.push(current);
            if let Event::Ddl { table } = event {
                current[*table] += 1;
            }
        }
        versions.push(current);
        let durable = Durable {
            workers: vec![None; WORKERS],
            marks: vec![None; WORKERS],
            ..Durable::default()
        };
        let run = Self::start(&durable);
        Model {
            events,
            versions,
            hold_choices,
            skip_choices,
            durable,
            run,
        }
    }

    /// A run starting from what the store keeps (the coordinator gives back resolutions of
    /// holds it resolved later, at a `Resolve`).
    fn start(durable: &Durable) -> Run {
        let start = durable.global.clone().unwrap_or_else(|| at(0));
        let keeper = HoldKeeper::restore(
            durable.holds.clone(),
            durable.marks.clone(),
            durable.earlier_ddls.clone(),
        );
        let resolutions = VecDeque::new();
        Run {
            next: index_of(&start),
            tracker: durable.tables,
            keeper,
            applied: durable.workers.clone(),
            queues: (0..WORKERS).map(|_| VecDeque::new()).collect(),
            pending_ddl: durable.ddl.clone(),
            rewinding: None,
            read_end: start,
            resolutions,
        }
    }

    fn crash(&mut self) {
        self.run = Self::start(&self.durable);
    }

    fn commit(&mut self, worker: usize, count: usize) {
        let mut normal = None;
        let mut mark = None;
        let mut any = false;
        for _ in 0..count {
            let Some(queued) = self.run.queues[worker].pop_front() else {
                break;
            };
            any = true;
            let index = queued.index;
            *self.durable.rows.entry(index).or_default() += 1;
            let Event::Row { table, id } = self.events[index] else {
                unreachable!("only rows are queued")
            };
            if let Some(last) = self.durable.last_row.insert((table, id), index) {
                assert!(
                    last < index,
                    "row ({table}, {id}): event {index} applied after event {last}"
                );
            }
            match queued.replay {
                None => normal = Some((at(index), 0)),
                Some(held_at) => {
                    mark = Some(ReplayMark {
                        held_at,
                        location: at(index),
                        row: 0,
                    })
                }
            }
        }
        if !any {
            return;
        }
        if let Some(normal) = normal {
            self.durable.workers[worker] = Some(normal);
        } else if self.durable.workers[worker].is_none()
            && let Some(mark) = &mark
        {
            // Everything before the hold was drained when it was held.
            self.durable.workers[worker] = Some((mark.held_at.clone(), 0));
        }
        if mark.is_some() {
            self.durable.marks[worker] = mark;
        }
    }

    fn drain(&mut self) {
        for worker in 0..WORKERS {
            self.commit(worker, usize::MAX);
        }
    }

    /// The watermark: the reading's end, or the first change not committed.
    fn watermark(&self) -> Location {
        self.run
            .queues
            .iter()
            .flatten()
            .filter(|queued| queued.replay.is_none())
            .map(|queued| queued.index)
            .min()
            .map_or_else(|| self.run.read_end.clone(), at)
    }

    fn flush(&mut self) {
        let watermark = self.watermark();
        let checkpoint = self.run.keeper.checkpoint(Some(&watermark));
        let location = checkpoint.location.expect("a location");
        if let Some(recorded) = &self.run.pending_ddl
            && recorded.compare_to(&location) == Some(std::cmp::Ordering::Less)
        {
            self.run.pending_ddl = None;
        }
        for saved in &checkpoint.tables {
            let snapshot = saved.snapshot.as_ref().expect("a model table");
            self.durable.tables[table_index(&saved.table)] = version_of(snapshot);
        }
        let index = index_of(&location);
        assert_eq!(
            self.durable.tables, self.versions[index],
            "the tables stored with the checkpoint at event {index} describe the rows after it"
        );
        self.durable.global = Some(location);
        self.durable.holds = checkpoint.holds;
        self.durable.earlier_ddls = checkpoint.earlier_ddls;
        self.durable.ddl = self.run.pending_ddl.clone();
    }

    /// The tracker followed a DDL of `table` ending at `end`: the new structure is saved with
    /// the first checkpoint at or past `end`.
    fn tracked(&mut self, table: usize, end: Location) {
        self.run.tracker[table] += 1;
        self.run.keeper.defer_tables(
            end,
            vec![TableCheckpoint {
                table: table_ref(table),
                snapshot: Some(snapshot(table, self.run.tracker[table])),
            }],
        );
    }

    /// Runs the DDL at `index` downstream with its record (`trust_later`: a record of a later
    /// event says it ran, as outside a replay).
    fn execute(&mut self, index: usize, table: usize, trust_later: bool) {
        let location = at(index);
        let equal = self
            .run
            .pending_ddl
            .as_ref()
            .filter(|record| record.compare_to(&location) == Some(std::cmp::Ordering::Equal))
            .or_else(|| self.run.keeper.record_of(&location))
            .is_some();
        let later = self.run.pending_ddl.as_ref().is_some_and(|record| {
            record.compare_to(&location) == Some(std::cmp::Ordering::Greater)
        });
        let ran = if equal {
            // The sink tells.
            self.durable.ddls.get(&index).copied().unwrap_or(0) > 0
        } else {
            trust_later && later
        };
        if !ran {
            let record = DdlRecord {
                position: location.position.clone(),
                suffix: 0,
                statement: 0,
                sql: format!("ALTER TABLE t{table}"),
                before: Vec::new(),
            };
            if let Some(old) = self.run.pending_ddl.replace(record)
                && self.run.keeper.clamped()
            {
                self.run.keeper.keep_record(old);
            }
            self.flush();
            *self.durable.ddls.entry(index).or_default() += 1;
        }
        self.tracked(table, at(index + 1));
    }

    fn step(&mut self) {
        // A resolution waits at a transaction end, outside a replay, and until the reading
        // passed every worker's stored checkpoint (rows of the held table a run before a
        // crash dropped there are replayed, not taken for applied).
        let reading = at(self.run.next);
        if self.run.rewinding.is_none()
            && self.run.keeper.live().is_none()
            && let Some(index) = self.run.resolutions.front().copied()
            && self.run.keeper.may_rewind(
                &at(index),
                &reading,
                &self.run.applied,
                self.run.pending_ddl.as_ref(),
            )
            && let Some(index) = self.run.resolutions.pop_front()
        {
            let Event::Ddl { table } = self.events[index] else {
                unreachable!("holds are of DDL")
            };
            let held = self
                .run
                .keeper
                .hold_at(&table_ref(table), &at(index))
                .is_some_and(|hold| hold.stage == HoldStage::Held);
            if held {
                self.drain();
                self.run.rewinding = Some((table, index, at(self.run.next)));
                // Reopen at the hold's reopen point (its DDL's start here).
                self.run.next = index;
            }
            return;
        }
        let Some(event) = self.events.get(self.run.next).copied() else {
            return;
        };
        let index = self.run.next;
        let location = at(index);
        let live = self.run.keeper.live().cloned();
        match event {
            Event::Ddl { table } => {
                if let Some((held_table, held_index, until)) = self.run.rewinding.clone() {
                    assert_eq!((table, index), (held_table, held_index));
                    // The resolved DDL, then its table's rows up to where the reading was.
                    if self.durable.skipped.contains(&index) {
                        self.tracked(table, at(index + 1));
                    } else {
                        self.execute(index, table, false);
                    }
                    self.run
                        .keeper
                        .begin_replay(&table_ref(table), &location, until)
                        .expect("a held table");
                    self.run.rewinding = None;
                    self.flush();
                } else if live
                    .as_ref()
                    .is_some_and(|live| live.table != table_ref(table))
                {
                    // Read before the rewind: it ran then.
                } else if self.run.keeper.held(&table_ref(table)).is_some_and(|hold| {
                    hold.held_at
                        .compare(&location)
                        .is_some_and(|order| order.is_le())
                }) {
                    // Held: its later DDL waits for the replay, untracked.
                } else if self
                    .run
                    .keeper
                    .hold_at(&table_ref(table), &location)
                    .is_some()
                {
                    // A hold's DDL that ran (replaying or replayed): the tracker follows.
                    self.tracked(table, at(index + 1));
                } else {
                    self.drain();
                    let decided = *self
                        .durable
                        .decided
                        .entry(index)
                        .or_insert_with(|| table < SHARDS && self.hold_choices[index]);
                    let hold = decided && !self.durable.resolved.contains(&index);
                    if decided && self.durable.skipped.contains(&index) {
                        // Held before a crash lost the hold, resolved as Skip since.
                        self.tracked(table, at(index + 1));
                    } else if hold {
                        self.run
                            .keeper
                            .hold(table_ref(table), location.clone(), location.clone());
                        self.flush();
                    } else {
                        // A record of a later event says this one ran only when events ran
                        // in order: not in a replay.
                        let trust_later = live.is_none()
                            && !self.run.keeper.replay_covers(&table_ref(table), &location);
                        self.execute(index, table, trust_later);
                        if live.is_none() {
                            self.run.read_end = at(index + 1);
                            self.flush();
                        }
                    }
                }
            }
            Event::Row { table, id } => {
                let fate = match self
                    .run
                    .keeper
                    .fate_before_decoding(&table_ref(table), &location)
                {
                    Some(fate) => fate,
                    None => {
                        assert_eq!(
                            self.run.tracker[table], self.versions[index][table],
                            "event {index}: the rows of t{table} are decoded with the structure in force"
                        );
                        let worker = worker_of(table, id);
                        self.run.keeper.fate(
                            &table_ref(table),
                            &location,
                            0,
                            worker,
                            self.run.applied[worker].as_ref(),
                        )
                    }
                };
                if let Fate::Dispatch { replay } = fate {
                    let worker = worker_of(table, id);
                    if replay.is_none() {
                        self.run.applied[worker] = None;
                    }
                    self.run.queues[worker].push_back(Queued { index, replay });
                }
            }
        }
        if live.is_none() && self.run.rewinding.is_none() {
            self.run.read_end = at(index + 1);
        }
        self.run.next += 1;
        // A replay ends at the end of the event that reaches its end.
        let end = at(index + 1);
        if self.run.keeper.replay_ends(&end) {
            self.drain();
            self.run.keeper.passed(&end);
        }
    }

    /// The coordinator sends again a resolution of a hold this run keeps held (after a
    /// restart it comes late), or resolves the oldest unresolved hold (Skip or Execute).
    fn resolve(&mut self) {
        let again = self
            .run
            .keeper
            .holds()
            .iter()
            .filter(|hold| hold.stage == HoldStage::Held)
            .map(|hold| index_of(&hold.held_at))
            .filter(|index| {
                self.durable.resolved.contains(index) && !self.run.resolutions.contains(index)
            })
            .min();
        if let Some(index) = again {
            self.run.resolutions.push_back(index);
            return;
        }
        let oldest = self
            .durable
            .decided
            .iter()
            .filter(|(index, held)| **held && !self.durable.resolved.contains(*index))
            .map(|(index, _)| *index)
            .min();
        if let Some(index) = oldest {
            self.durable.resolved.insert(index);
            if self.skip_choices[index] {
                self.durable.skipped.insert(index);
            }
            self.run.resolutions.push_back(index);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Step => self.step(),
            Action::Commit { worker, count } => self.commit(worker, count),
            Action::Resolve => self.resolve(),
            Action::Flush => self.flush(),
            Action::Crash => self.crash(),
        }
    }

    /// Runs to the end without crashes, resolving every hold, then checks the downstream.
    fn finish(&mut self) {
        for _ in 0..100_000 {
            let done = self.run.next >= self.events.len()
                && self.run.rewinding.is_none()
                && self.run.resolutions.is_empty()
                && self.run.keeper.floor().is_none()
                && self.run.keeper.live().is_none();
            if done {
                break;
            }
            self.resolve();
            self.step();
        }
        self.drain();
        self.flush();
        assert!(self.run.keeper.floor().is_none(), "every hold resolved");
        for (index, event) in self.events.iter().enumerate() {
            match event {
                Event::Row { .. } => assert_eq!(
                    self.durable.rows.get(&index).copied().unwrap_or(0),
                    1,
                    "row event {index} applied exactly once"
                ),
                Event::Ddl { .. } => assert_eq!(
                    self.durable.ddls.get(&index).copied().unwrap_or(0),
                    u32::from(!self.durable.skipped.contains(&index)),
                    "DDL event {index} ran exactly once (never when resolved as Skip)"
                ),
            }
        }
    }
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (0..TABLES, 0u8..3).prop_map(|(table, id)| Event::Row { table, id }),
        1 => (0..TABLES).prop_map(|table| Event::Ddl { table }),
    ]
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => Just(Action::Step),
        4 => (0..WORKERS, 1usize..4).prop_map(|(worker, count)| Action::Commit { worker, count }),
        1 => Just(Action::Resolve),
        1 => Just(Action::Flush),
        1 => Just(Action::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn held_tables_and_rewinds_apply_every_change_exactly_once(
        events in prop::collection::vec(event_strategy(), 1..40),
        hold_choices in prop::collection::vec(any::<bool>(), 40),
        skip_choices in prop::collection::vec(any::<bool>(), 40),
        actions in prop::collection::vec(action_strategy(), 0..200),
    ) {
        let mut model = Model::new(events, hold_choices, skip_choices);
        for action in actions {
            model.act(action);
        }
        model.finish();
    }
}
