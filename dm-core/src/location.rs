//! Where in the upstream's history an event sits: position, GTID set and suffix.
//!
//! A [`Location`] is what checkpoints store and what every event carries:
//! - `position`: the binlog file and offset (always known; the relay log keeps upstream offsets);
//! - `gtid_set`: the transactions executed up to here, when the source replicates by GTID;
//! - `suffix`: numbers the events at one upstream position in the order the stream delivers
//!   them when an operator made some (`binlog replace`: the made events 1..n in place of the
//!   upstream's; `binlog inject`: the made events 1..n, then the upstream's as n+1); 0 otherwise.
//!
//! Ordering rule ([`Location::compare`]): when both locations carry GTID sets of one flavour
//! and the sets compare, a smaller set is earlier; with equal sets (two events of one
//! transaction) the positions decide, then the suffix. When the sets do not compare (or one side
//! has none), the positions decide, then the suffix, as DM does. `None` means the two
//! locations cannot be ordered at all (different files bases and incomparable GTID sets).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::gtid::GtidSet;
use crate::position::BinlogPosition;

/// A point in the upstream binlog history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// File and byte offset.
    pub position: BinlogPosition,
    /// Executed GTIDs up to and including this point; `None` when replicating by position only.
    /// Shared: every event of a transaction carries the same set, and copying a location must
    /// not copy the set (change it with `Arc::make_mut`).
    pub gtid_set: Option<Arc<GtidSet>>,
    /// 0 for upstream events; 1, 2, ... for events an operator injected at this position.
    pub suffix: u32,
}

impl Location {
    /// A location without GTIDs or injected suffix.
    pub fn from_position(position: BinlogPosition) -> Self {
        Location {
            position,
            gtid_set: None,
            suffix: 0,
        }
    }

    /// Orders two locations; see the module documentation for the rule.
    pub fn compare(&self, other: &Location) -> Option<Ordering> {
        let by_gtid = match (&self.gtid_set, &other.gtid_set) {
            (Some(left), Some(right)) => left.as_ref().partial_cmp(right.as_ref()),
            _ => None,
        };
        match by_gtid {
            Some(Ordering::Equal) | None => {
                let by_position = self.position.partial_cmp(&other.position);
                match (by_gtid, by_position) {
                    (_, Some(Ordering::Equal)) => Some(self.suffix.cmp(&other.suffix)),
                    (_, Some(ordering)) => Some(ordering),
                    // Same transaction, positions from different servers: only the suffix is left.
                    (Some(Ordering::Equal), None) => Some(self.suffix.cmp(&other.suffix)),
                    (_, None) => None,
                }
            }
            ordering => ordering,
        }
    }
}

impl fmt::Display for Location {
    /// `mysql-bin.000003:1234`, then ` gtid=<set>` and `#<suffix>` when present.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.position)?;
        if let Some(gtid_set) = &self.gtid_set {
            write!(formatter, " gtid={gtid_set}")?;
        }
        if self.suffix > 0 {
            write!(formatter, "#{}", self.suffix)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtid::Flavor;

    fn location(position: &str, gtid: Option<&str>, suffix: u32) -> Location {
        Location {
            position: BinlogPosition::parse(position).unwrap(),
            gtid_set: gtid.map(|text| Arc::new(GtidSet::parse(Flavor::MariaDb, text).unwrap())),
            suffix,
        }
    }

    #[test]
    fn gtid_sets_decide_before_positions() {
        // After a failover the new server's files restart at 000001: the GTIDs still order them.
        let before = location("mysql-bin.000090:400", Some("0-1-10"), 0);
        let after = location("mysql-bin.000001:4", Some("0-2-11"), 0);
        assert_eq!(before.compare(&after), Some(Ordering::Less));
    }

    #[test]
    fn equal_gtid_sets_fall_back_to_position_then_suffix() {
        let first_rows = location("mysql-bin.000001:300", Some("0-1-10"), 0);
        let second_rows = location("mysql-bin.000001:500", Some("0-1-10"), 0);
        assert_eq!(first_rows.compare(&second_rows), Some(Ordering::Less));
        let injected = location("mysql-bin.000001:500", Some("0-1-10"), 1);
        assert_eq!(second_rows.compare(&injected), Some(Ordering::Less));
        assert_eq!(injected.compare(&injected), Some(Ordering::Equal));
    }

    #[test]
    fn without_gtids_positions_decide_and_bases_may_not_compare() {
        let a = location("mysql-bin.000001:300", None, 0);
        let b = location("mysql-bin.000002:4", None, 0);
        assert_eq!(a.compare(&b), Some(Ordering::Less));
        let other_base = location("binlog.000001:4", None, 0);
        assert_eq!(a.compare(&other_base), None);
        assert_eq!(
            a.to_string(),
            "mysql-bin.000001:300",
            "display without gtid"
        );
        assert_eq!(
            location("mysql-bin.000001:300", Some("0-1-2"), 3).to_string(),
            "mysql-bin.000001:300 gtid=0-1-2#3"
        );
    }
}
