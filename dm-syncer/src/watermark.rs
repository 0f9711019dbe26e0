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
//!
//! Each end also keeps the upstream server whose binlog it was read from
//! ([`Watermark::reading_from`]), so that a checkpoint at the end names the server its file
//! position belongs to: after a failover by GTID set, ends read before it are the old
//! primary's and ends read after it the new one's, whichever the acknowledgements reach.

use std::collections::VecDeque;
use std::sync::Arc;

use dm_core::{Location, UpstreamIdentity};

/// Tracks committed transaction ends.
#[derive(Debug, Clone)]
pub struct Watermark {
    assigned: Vec<u64>,
    acknowledged: Vec<u64>,
    /// The ends not reached yet: each with the server it was read from and the workers'
    /// sequences at it.
    ends: VecDeque<(Location, Option<Arc<UpstreamIdentity>>, Vec<u64>)>,
    reached: Option<(Location, Option<Arc<UpstreamIdentity>>)>,
    /// The server the ends passed now are read from (shared by every end read from it).
    reading: Option<Arc<UpstreamIdentity>>,
}

impl Watermark {
    /// For `workers` workers.
    pub fn new(workers: usize) -> Self {
        Watermark {
            assigned: vec![0; workers],
            acknowledged: vec![0; workers],
            ends: VecDeque::new(),
            reached: None,
            reading: None,
        }
    }

    /// The ends passed from now on are read from the binlog of `upstream` (`None`: not known).
    /// Cheap when it did not change (called for every event).
    pub fn reading_from(&mut self, upstream: Option<&UpstreamIdentity>) {
        if self.reading.as_deref() != upstream {
            self.reading = upstream.cloned().map(Arc::new);
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
        self.ends
            .push_back((location, self.reading.clone(), self.assigned.clone()));
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
        while let Some((_, _, snapshot)) = self.ends.front() {
            let done = snapshot
                .iter()
                .zip(&self.acknowledged)
                .all(|(assigned, acknowledged)| acknowledged >= assigned);
            if !done {
                break;
            }
            if let Some((location, upstream, _)) = self.ends.pop_front() {
                self.reached = Some((location, upstream));
            }
        }
    }

    /// The latest committed transaction end.
    pub fn reached(&self) -> Option<&Location> {
        self.reached.as_ref().map(|(location, _)| location)
    }

    /// The server whose binlog the latest committed transaction end was read from, when known.
    pub fn reached_upstream(&self) -> Option<&UpstreamIdentity> {
        self.reached
            .as_ref()
            .and_then(|(_, upstream)| upstream.as_deref())
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

    #[test]
    fn an_end_keeps_the_server_it_was_read_from() {
        let old = UpstreamIdentity::from_server_id(1);
        let new = UpstreamIdentity::from_server_id(2);
        let mut watermark = Watermark::new(1);
        watermark.reading_from(Some(&old));
        watermark.transaction_end(at(10));
        assert_eq!(watermark.reached_upstream(), Some(&old));
        watermark.assigned(0, 1);
        watermark.transaction_end(at(20));
        // A failover by GTID set: the next ends are the new primary's.
        watermark.reading_from(Some(&new));
        watermark.assigned(0, 2);
        watermark.transaction_end(at(30));
        assert_eq!(
            watermark.reached_upstream(),
            Some(&old),
            "nothing acknowledged yet"
        );
        watermark.acknowledge(0, 1);
        assert_eq!(watermark.reached(), Some(&at(20)));
        assert_eq!(
            watermark.reached_upstream(),
            Some(&old),
            "an end read before the failover is the old primary's"
        );
        watermark.acknowledge(0, 2);
        assert_eq!(watermark.reached(), Some(&at(30)));
        assert_eq!(watermark.reached_upstream(), Some(&new));
        watermark.reading_from(None);
        watermark.transaction_end(at(40));
        assert_eq!(
            watermark.reached_upstream(),
            None,
            "not known (the relay log)"
        );
    }
}
