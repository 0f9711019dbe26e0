//! Proves: any interleaving of the worker queues that the routing and the conflict waits allow
//! gives the table that serial application gives, and no interleaving hits a duplicate key or
//! misses a row on the way.
//!
//! The simulation routes changes in binlog order. Between routings, and while a conflict waits,
//! it executes the head of a randomly chosen non-empty queue on the strict model table; each
//! worker acknowledges what it executed either at once or later (random), as a real worker's
//! acknowledgement can lag behind its commits.

use std::collections::VecDeque;

use dm_causality::{CausalityDetector, Routing};
use dm_core::RowChange;
use proptest::prelude::*;

use crate::model::{ModelTable, generate, serial, table_keys};

struct Simulation<'a> {
    queues: Vec<VecDeque<(u64, RowChange)>>,
    /// Per worker, the last executed sequence not yet acknowledged.
    unacknowledged: Vec<Option<u64>>,
    /// Per worker, the last acknowledged sequence.
    acknowledged: Vec<u64>,
    table: ModelTable,
    choices: &'a [u8],
    next_choice: usize,
}

impl Simulation<'_> {
    fn choice(&mut self) -> u8 {
        let choice = self
            .choices
            .get(self.next_choice % self.choices.len().max(1))
            .copied();
        self.next_choice += 1;
        choice
            .unwrap_or(0)
            .wrapping_add((self.next_choice / 7) as u8)
    }

    /// Executes the head of one random non-empty queue; false when all are empty.
    fn step(&mut self, detector: &mut CausalityDetector) -> Result<bool, String> {
        let busy: Vec<usize> = (0..self.queues.len())
            .filter(|worker| !self.queues[*worker].is_empty())
            .collect();
        if busy.is_empty() {
            return Ok(false);
        }
        let choice = self.choice();
        let worker = busy[choice as usize % busy.len()];
        let (sequence, change) = self.queues[worker].pop_front().expect("non-empty queue");
        self.table
            .apply(&change)
            .map_err(|error| format!("worker {worker} sequence {sequence}: {error}"))?;
        if choice.is_multiple_of(3) {
            // The acknowledgement lags: it arrives with the worker's next one, or at the end.
            self.unacknowledged[worker] = Some(sequence);
        } else {
            detector.acknowledge(worker, sequence);
            self.acknowledged[worker] = sequence;
            self.unacknowledged[worker] = None;
        }
        Ok(true)
    }

    fn flush_acknowledgements(&mut self, detector: &mut CausalityDetector) {
        for (worker, sequence) in self.unacknowledged.iter_mut().enumerate() {
            if let Some(sequence) = sequence.take() {
                detector.acknowledge(worker, sequence);
                self.acknowledged[worker] = sequence;
            }
        }
    }
}

fn run(
    start: &ModelTable,
    changes: &[RowChange],
    workers: usize,
    choices: &[u8],
) -> Result<(ModelTable, usize), String> {
    let keys = table_keys();
    let mut detector = CausalityDetector::new(workers).expect("workers > 0");
    let mut simulation = Simulation {
        queues: vec![VecDeque::new(); workers],
        unacknowledged: vec![None; workers],
        acknowledged: vec![0; workers],
        table: start.clone(),
        choices,
        next_choice: 0,
    };
    let mut conflicts = 0;
    let mut change_keys = Vec::new();
    for change in changes {
        for _ in 0..simulation.choice() % 3 {
            simulation.step(&mut detector)?;
        }
        keys.causality_keys(change, &mut change_keys);
        loop {
            match detector.route(&change_keys) {
                Routing::Assigned { worker, sequence } => {
                    simulation.queues[worker].push_back((sequence, change.clone()));
                    break;
                }
                Routing::Conflict(conflict) => {
                    conflicts += 1;
                    assert!(conflict.waits.len() >= 2, "a conflict spans workers");
                    // Wait until each listed worker acknowledged its sequence, while random
                    // workers (listed or not) keep executing.
                    loop {
                        if conflict
                            .waits
                            .iter()
                            .all(|(worker, sequence)| simulation.acknowledged[*worker] >= *sequence)
                        {
                            break;
                        }
                        if !simulation.step(&mut detector)? || simulation.choice().is_multiple_of(2)
                        {
                            simulation.flush_acknowledgements(&mut detector);
                        }
                    }
                }
            }
        }
    }
    while simulation.step(&mut detector)? {}
    Ok((simulation.table, conflicts))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::model::cases(), ..ProptestConfig::default() })]

    #[test]
    fn parallel_apply_equals_serial_apply(
        initial in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..6),
        ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..60),
        workers in 1usize..6,
        choices in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let (start, changes) = generate(&initial, &ops);
        let expected = serial(&start, &changes);
        let (actual, _conflicts) = run(&start, &changes, workers, &choices)
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(actual, expected);
    }
}

/// The routing is a function of the sequence: running it twice gives the same assignments.
#[test]
fn routing_is_deterministic() {
    let ops: Vec<(u8, u8, u8, u8, bool)> = (0..200u16)
        .map(|index| {
            let byte = (index.wrapping_mul(37) % 251) as u8;
            (
                byte,
                byte.wrapping_mul(3),
                byte.wrapping_add(1),
                byte,
                index % 5 == 0,
            )
        })
        .collect();
    let (_, changes) = generate(&[(1, 1), (2, 2)], &ops);
    let keys = table_keys();
    let assignments = || {
        let mut detector = CausalityDetector::new(4).expect("workers");
        let mut out = Vec::new();
        let mut change_keys = Vec::new();
        for change in &changes {
            keys.causality_keys(change, &mut change_keys);
            let routing = detector.route(&change_keys);
            if let Routing::Assigned { worker, sequence } = routing {
                if sequence.is_multiple_of(3) {
                    detector.acknowledge(worker, sequence);
                }
            } else {
                detector.reset();
            }
            out.push(routing);
        }
        out
    };
    assert_eq!(assignments(), assignments());
}
