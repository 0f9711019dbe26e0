//! The global watermark: the latest transaction end before which every change is committed
//! downstream, from the workers' acknowledgements.
//!
//! ```text
//! dispatch: assigned(w, seq) ... transaction_end(L) ... assigned(w', seq') ... transaction_end(L')
//! workers:  acknowledge(w, seq) --> every worker acked what it had at L? --> reached = L
//! ```
//!
//! Each transaction end keeps a snapshot of the last sequence assigned to each worker; it is
//! reached once every worker acknowledged at least its snapshot. Ends are reached in order.

use std::collections::VecDeque;

use dm_core::Location;

/// Tracks committed transaction ends.
#[derive(Debug, Clone)]
pub struct Watermark {
    assigned: Vec<u64>,
    acknowledged: Vec<u64>,
    ends: VecDeque<(Location, Vec<u64>)>,
    reached: Option<Location>,
}

impl Watermark {
    /// For `workers` workers.
    pub fn new(workers: usize) -> Self {
        Watermark {
            assigned: vec![0; workers],
            acknowledged: vec![0; workers],
            ends: VecDeque::new(),
            reached: None,
        }
    }

    /// A change with `sequence` went to `worker`.
    pub fn assigned(&mut self, worker: usize, sequence: u64) {
        if let Some(last) = self.assigned.get_mut(worker) {
            *last = (*last).max(sequence);
        }
    }

    /// The stream passed a transaction end.
    pub fn transaction_end(&mut self, location: Location) {
        self.ends.push_back((location, self.assigned.clone()));
        self.advance();
    }

    /// `worker` committed everything up to `sequence`.
    pub fn acknowledge(&mut self, worker: usize, sequence: u64) {
        if let Some(last) = self.acknowledged.get_mut(worker) {
            *last = (*last).max(sequence);
        }
        self.advance();
    }

    fn advance(&mut self) {
        while let Some((_, snapshot)) = self.ends.front() {
            let done = snapshot
                .iter()
                .zip(&self.acknowledged)
                .all(|(assigned, acknowledged)| acknowledged >= assigned);
            if !done {
                break;
            }
            if let Some((location, _)) = self.ends.pop_front() {
                self.reached = Some(location);
            }
        }
    }

    /// The latest committed transaction end.
    pub fn reached(&self) -> Option<&Location> {
        self.reached.as_ref()
    }

    /// Whether every assigned change is acknowledged.
    pub fn drained(&self) -> bool {
        self.assigned
            .iter()
            .zip(&self.acknowledged)
            .all(|(assigned, acknowledged)| acknowledged >= assigned)
    }

    /// The last sequence assigned to each worker.
    pub fn assigned_sequences(&self) -> &[u64] {
        &self.assigned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::BinlogPosition;

    fn at(offset: u64) -> Location {
        Location::from_position(
            BinlogPosition::parse(&format!("b.000001:{offset}")).expect("position"),
        )
    }

    #[test]
    fn ends_are_reached_in_order_once_every_worker_caught_up() {
        let mut watermark = Watermark::new(2);
        watermark.transaction_end(at(10));
        assert_eq!(watermark.reached(), Some(&at(10)), "nothing in flight");
        watermark.assigned(0, 1);
        watermark.assigned(1, 2);
        watermark.transaction_end(at(20));
        watermark.assigned(0, 3);
        watermark.transaction_end(at(30));
        watermark.acknowledge(0, 3);
        assert_eq!(watermark.reached(), Some(&at(10)), "worker 1 still holds 2");
        watermark.acknowledge(1, 2);
        assert_eq!(watermark.reached(), Some(&at(30)));
        assert!(watermark.drained());
    }
}
