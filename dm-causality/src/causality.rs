//! Assigning row changes to parallel workers without reordering conflicting ones.
//!
//! ```text
//!   change (keys) --route--> Assigned { worker, sequence } --> worker queue --> applied
//!                  <--acknowledge(worker, sequence)----------------------------'
//!                  --route--> Conflict { waits } : wait until each (worker, sequence) is
//!                             acknowledged (or drain every worker and `reset`), then route again
//! ```
//!
//! The detector remembers, for every key of a change not yet applied, which worker holds that
//! change and its sequence number. A new change whose keys are all free (never seen, or their
//! last change already acknowledged) goes to the worker its first key hashes to; one whose pending
//! keys all sit on one worker goes to that worker, behind them; one whose pending keys sit on
//! several workers is a **conflict**: running it on any one worker could overtake a change queued
//! on another. The caller then waits for the listed acknowledgements and routes it again.
//!
//! Compared with DM, which forgets nothing until a full drain, acknowledgements free keys as soon
//! as their changes are applied, so conflicts are rarer, waits cover only the workers involved,
//! and the key map stays as small as the changes in flight (it is swept when it doubles).
//!
//! Invariants:
//! - two changes sharing a key are applied in routing order: either the second queues behind the
//!   first on the same worker, or the first was acknowledged before the second was routed;
//! - routing is deterministic: the same routes and acknowledgements from the same state give the
//!   same assignments;
//! - a conflict changes nothing: routing the change again after the waits assigns it.

use std::hash::BuildHasherDefault;

use crate::error::CausalityError;

/// A hasher for keys that already are well-mixed 64-bit hashes: passes them through.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type KeyMap<V> = hashbrown::HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// Where a pending key's last change is.
#[derive(Clone, Copy, Debug)]
struct Pending {
    worker: u32,
    sequence: u64,
}

/// The outcome of routing one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Queue the change on `worker`; acknowledge `sequence` once it (and everything queued before
    /// it on that worker) is applied.
    Assigned {
        /// The worker, `0..workers`.
        worker: usize,
        /// The change's sequence number, increasing across all workers.
        sequence: u64,
    },
    /// The change links keys pending on several workers; nothing was recorded.
    Conflict(Conflict),
}

/// What must be applied before a conflicting change can be routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// For each worker involved, the sequence it must acknowledge; sorted by worker.
    pub waits: Vec<(usize, u64)>,
}

/// Routes changes to `workers` queues by their causality keys.
#[derive(Debug)]
pub struct CausalityDetector {
    workers: usize,
    /// Every change goes to the worker its first key hashes to (its *home*), whatever is
    /// pending; keys pending elsewhere make it a conflict until those workers caught up.
    deterministic: bool,
    pending: KeyMap<Pending>,
    /// An empty map with capacity, swapped with `pending` by each sweep: sweeping by copying
    /// leaves no tombstones (which lengthen probes) and allocates nothing once warm.
    spare: KeyMap<Pending>,
    /// Per worker, the highest acknowledged sequence.
    acknowledged: Vec<u64>,
    next_sequence: u64,
    /// Sweep acknowledged keys once the map grows past this size.
    sweep_at: usize,
}

/// The smallest map size at which acknowledged keys are swept.
const MINIMUM_SWEEP_SIZE: usize = 4096;

impl CausalityDetector {
    /// A detector for `workers` parallel queues.
    pub fn new(workers: usize) -> Result<Self, CausalityError> {
        if workers == 0 || workers > u32::MAX as usize {
            return Err(CausalityError::InvalidWorkerCount { workers });
        }
        Ok(CausalityDetector {
            workers,
            deterministic: false,
            pending: KeyMap::default(),
            spare: KeyMap::default(),
            acknowledged: vec![0; workers],
            next_sequence: 1,
            sweep_at: MINIMUM_SWEEP_SIZE,
        })
    }

    /// A detector whose assignment is a pure function of each change's keys: a change always
    /// goes to the worker its first key hashes to, and waits (a conflict) while any of its keys
    /// is pending on another worker. Replaying the same changes after a restart assigns them to
    /// the same workers, which exactly-once checkpoints per worker rely on
    /// (`docs/design/checkpoint.md`). Conflicts are more frequent than in the default mode.
    pub fn deterministic(workers: usize) -> Result<Self, CausalityError> {
        let mut detector = CausalityDetector::new(workers)?;
        detector.deterministic = true;
        Ok(detector)
    }

    /// The worker a change with these keys goes to in deterministic mode.
    pub fn home_worker(&self, keys: &[u64]) -> usize {
        keys.first()
            .map_or(0, |key| (*key % self.workers as u64) as usize)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Number of keys remembered (pending, or acknowledged but not swept yet).
    pub fn remembered_keys(&self) -> usize {
        self.pending.len()
    }

    fn is_pending(&self, state: &Pending) -> bool {
        self.acknowledged
            .get(state.worker as usize)
            .is_some_and(|acknowledged| state.sequence > *acknowledged)
    }

    /// Routes a change with these causality keys (from [`crate::TableKeys::causality_keys`];
    /// never empty for a real change).
    pub fn route(&mut self, keys: &[u64]) -> Routing {
        let home = self.home_worker(keys) as u32;
        let mut target: Option<u32> = self.deterministic.then_some(home);
        let mut conflicting = false;
        for key in keys {
            if let Some(state) = self.pending.get(key)
                && self.is_pending(state)
            {
                match target {
                    None => target = Some(state.worker),
                    Some(worker) if worker == state.worker => {}
                    Some(_) => conflicting = true,
                }
            }
        }
        if conflicting {
            return Routing::Conflict(self.conflict(keys));
        }
        let worker = match target {
            Some(worker) => worker as usize,
            None => keys
                .first()
                .map_or(0, |key| (*key % self.workers as u64) as usize),
        };
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let state = Pending {
            worker: worker as u32,
            sequence,
        };
        for key in keys {
            self.pending.insert(*key, state);
        }
        if self.pending.len() >= self.sweep_at {
            self.sweep();
        }
        Routing::Assigned { worker, sequence }
    }

    fn conflict(&self, keys: &[u64]) -> Conflict {
        let home = self.home_worker(keys);
        let mut waits: Vec<(usize, u64)> = Vec::new();
        for key in keys {
            if let Some(state) = self.pending.get(key)
                && self.is_pending(state)
            {
                let worker = state.worker as usize;
                if self.deterministic && worker == home {
                    // The home worker's queue keeps the order by itself.
                    continue;
                }
                match waits.iter_mut().find(|(waiting, _)| *waiting == worker) {
                    Some((_, sequence)) => *sequence = (*sequence).max(state.sequence),
                    None => waits.push((worker, state.sequence)),
                }
            }
        }
        waits.sort_unstable();
        Conflict { waits }
    }

    /// Records that `worker` applied every change routed to it up to `sequence`.
    pub fn acknowledge(&mut self, worker: usize, sequence: u64) {
        if let Some(acknowledged) = self.acknowledged.get_mut(worker) {
            *acknowledged = (*acknowledged).max(sequence);
        }
    }

    /// Forgets every key: call after every worker applied everything routed so far (a full
    /// drain), as DM does after a conflict or a checkpoint flush.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.spare.clear();
        let last = self.next_sequence - 1;
        self.acknowledged
            .iter_mut()
            .for_each(|sequence| *sequence = last);
    }

    /// Drops keys whose last change was acknowledged; keeps the map proportional to what is in
    /// flight.
    fn sweep(&mut self) {
        self.spare.clear();
        for (key, state) in &self.pending {
            if self.is_pending(state) {
                self.spare.insert(*key, *state);
            }
        }
        std::mem::swap(&mut self.pending, &mut self.spare);
        self.sweep_at = (self.pending.len() * 2).max(MINIMUM_SWEEP_SIZE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(routing: Routing) -> (usize, u64) {
        match routing {
            Routing::Assigned { worker, sequence } => (worker, sequence),
            Routing::Conflict(conflict) => panic!("unexpected conflict {conflict:?}"),
        }
    }

    #[test]
    fn shared_keys_follow_their_worker_until_acknowledged() {
        let mut detector = CausalityDetector::new(4).unwrap();
        let (first, sequence) = assigned(detector.route(&[10]));
        assert_eq!(first, 10 % 4);
        let (second, _) = assigned(detector.route(&[11, 10]));
        assert_eq!(second, first, "shares key 10 with a pending change");
        detector.acknowledge(first, sequence + 1);
        let (third, _) = assigned(detector.route(&[11]));
        assert_eq!(
            third,
            11 % 4,
            "key 11 is free again after the acknowledgement"
        );
    }

    #[test]
    fn deterministic_mode_assigns_by_the_first_key_alone() {
        let mut detector = CausalityDetector::deterministic(4).unwrap();
        let (first, sequence) = assigned(detector.route(&[10]));
        assert_eq!(first, 2);
        // Key 11's home is worker 3, but key 10 is pending on worker 2: wait for worker 2 only.
        assert_eq!(
            detector.route(&[11, 10]),
            Routing::Conflict(Conflict {
                waits: vec![(2, sequence)]
            })
        );
        detector.acknowledge(first, sequence);
        assert_eq!(assigned(detector.route(&[11, 10])).0, 3);
        // Pending keys on the home worker itself queue behind it.
        let (worker, _) = assigned(detector.route(&[15, 11]));
        assert_eq!(worker, 3);
    }

    proptest::proptest! {
        /// Whatever the acknowledgements, a change is assigned to its home worker, and never while
        /// one of its keys is pending on another worker.
        #[test]
        fn deterministic_assignment_ignores_timing(
            steps in proptest::collection::vec(
                (proptest::collection::vec(0u64..12, 1..4), proptest::bool::ANY),
                1..200,
            )
        ) {
            let mut detector = CausalityDetector::deterministic(3).unwrap();
            let mut last_on = [0u64; 3];
            let mut key_worker: std::collections::HashMap<u64, (usize, u64)> = Default::default();
            let mut acknowledged = [0u64; 3];
            for (keys, acknowledge_all) in steps {
                match detector.route(&keys) {
                    Routing::Assigned { worker, sequence } => {
                        proptest::prop_assert_eq!(worker, (keys[0] % 3) as usize);
                        for key in &keys {
                            if let Some((other, pending)) = key_worker.get(key) {
                                proptest::prop_assert!(
                                    *other == worker || *pending <= acknowledged[*other],
                                    "key {} pending on worker {}", key, other
                                );
                            }
                            key_worker.insert(*key, (worker, sequence));
                        }
                        last_on[worker] = sequence;
                    }
                    Routing::Conflict(conflict) => {
                        for (worker, sequence) in conflict.waits {
                            detector.acknowledge(worker, sequence);
                            acknowledged[worker] = acknowledged[worker].max(sequence);
                        }
                    }
                }
                if acknowledge_all {
                    for worker in 0..3 {
                        detector.acknowledge(worker, last_on[worker]);
                        acknowledged[worker] = acknowledged[worker].max(last_on[worker]);
                    }
                }
            }
        }
    }

    #[test]
    fn linking_two_workers_is_a_conflict_that_waits_for_both() {
        let mut detector = CausalityDetector::new(2).unwrap();
        let (worker_a, sequence_a) = assigned(detector.route(&[2]));
        let (worker_b, sequence_b) = assigned(detector.route(&[3]));
        assert_ne!(worker_a, worker_b);
        let routing = detector.route(&[2, 3]);
        let mut expected = vec![(worker_a, sequence_a), (worker_b, sequence_b)];
        expected.sort_unstable();
        assert_eq!(routing, Routing::Conflict(Conflict { waits: expected }));
        // Unchanged by the conflict; free once one side is acknowledged.
        detector.acknowledge(worker_a, sequence_a);
        let (worker, _) = assigned(detector.route(&[2, 3]));
        assert_eq!(worker, worker_b);
    }

    #[test]
    fn reset_forgets_everything_and_zero_workers_is_an_error() {
        let mut detector = CausalityDetector::new(3).unwrap();
        for key in 0..10u64 {
            assigned(detector.route(&[key]));
        }
        detector.reset();
        assert_eq!(detector.remembered_keys(), 0);
        assert!(matches!(
            CausalityDetector::new(0),
            Err(CausalityError::InvalidWorkerCount { workers: 0 })
        ));
    }

    #[test]
    fn sweeping_keeps_memory_proportional_to_what_is_in_flight() {
        let mut detector = CausalityDetector::new(2).unwrap();
        for key in 0..1_000_000u64 {
            let (worker, sequence) =
                assigned(detector.route(&[key.wrapping_mul(0x9e37_79b9_7f4a_7c15)]));
            detector.acknowledge(worker, sequence);
        }
        assert!(detector.remembered_keys() <= 2 * MINIMUM_SWEEP_SIZE);
    }
}
