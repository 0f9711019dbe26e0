//! `LocationTracker`: the pure bookkeeping of where a stream is, event by event: the start and
//! end `Location` of each event and the end of the last complete transaction, with the
//! executed GTID set of either flavour.
//!
//! ```text
//! GTID  BEGIN  TABLE_MAP  ROWS  XID | GTID  DDL | ROTATE ...
//! ^start of the transaction          ^ transaction end: the GTID joins the set, resume point
//! ```
//!
//! Transaction boundaries (both flavours): a GTID event opens one; `BEGIN` makes it explicit;
//! `XID`, a `COMMIT`/`ROLLBACK` query or a MySQL TRANSACTION_PAYLOAD closes it; any other query
//! outside an explicit `BEGIN` (a DDL) is a transaction of its own. Events between transactions
//! (ROTATE, FORMAT_DESCRIPTION, PREVIOUS_GTIDS, GTID_LIST, BINLOG_CHECKPOINT) move the
//! transaction end along, so a resume never starts before them needlessly.
//!
//! Invariant: `transaction_end` only ever names a point between two transactions, and its GTID
//! set holds exactly the transactions before it (when the set is known).

use std::sync::Arc;

use dm_core::{Gtid, GtidSet, Location};

use crate::event::EventData;
use crate::stream::StreamEvent;

/// The locations of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLocations {
    /// Where the event starts (the GTID set of the transactions before it).
    pub start: Location,
    /// Where it ends.
    pub end: Location,
    /// Whether this event ended a transaction (or was between transactions).
    pub at_transaction_end: bool,
}

/// Tracks locations along a stream.
#[derive(Clone, Debug)]
pub struct LocationTracker {
    current: Location,
    transaction_end: Location,
    pending_gtid: Option<Gtid>,
    in_transaction: bool,
    explicit_begin: bool,
}

impl LocationTracker {
    /// A tracker at `start`, which must be between two transactions.
    pub fn new(start: Location) -> Self {
        LocationTracker {
            current: start.clone(),
            transaction_end: start,
            pending_gtid: None,
            in_transaction: false,
            explicit_begin: false,
        }
    }

    /// Where the next event starts.
    pub fn current(&self) -> &Location {
        &self.current
    }

    /// The end of the last complete transaction: where a stream resumes without a gap.
    pub fn transaction_end(&self) -> &Location {
        &self.transaction_end
    }

    /// Whether the stream is inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Goes back to the last transaction end (before re-reading from there).
    pub fn rewind(&mut self) {
        *self = LocationTracker::new(self.transaction_end.clone());
    }

    /// Accounts for one event and returns its locations.
    pub fn observe(&mut self, event: &StreamEvent) -> EventLocations {
        if event.artificial {
            // Made up by the server: nothing moves, except that a first GTID list or fake
            // rotate tells where we are.
            self.current.position = event.next_position.clone();
            if !self.in_transaction {
                self.transaction_end.position = event.next_position.clone();
            }
            self.learn_gtid_set(&event.event.data);
            return EventLocations {
                start: self.current.clone(),
                end: self.current.clone(),
                at_transaction_end: !self.in_transaction,
            };
        }
        let mut start = self.current.clone();
        start.position = event.position.clone();
        let mut end = start.clone();
        end.position = event.next_position.clone();
        let mut closes = false;
        match &event.event.data {
            EventData::MySqlGtid { gtid, .. } => {
                self.open(Gtid::MySql(gtid.clone()));
            }
            EventData::MariaDbGtid { gtid, flags, .. } => {
                self.open(Gtid::MariaDb(*gtid));
                // Without FL_STANDALONE the group runs to its XID or COMMIT (MariaDB writes no
                // BEGIN before row events); statements inside it do not end it.
                self.explicit_begin = flags & 1 == 0;
            }
            EventData::AnonymousGtid => {
                self.pending_gtid = None;
                self.in_transaction = true;
                self.explicit_begin = false;
            }
            EventData::Query { sql, .. } => {
                let statement = leading_keyword(sql);
                if statement.eq_ignore_ascii_case(b"BEGIN")
                    || statement.eq_ignore_ascii_case(b"XA START")
                {
                    self.in_transaction = true;
                    self.explicit_begin = true;
                } else if statement.eq_ignore_ascii_case(b"COMMIT")
                    || statement.eq_ignore_ascii_case(b"ROLLBACK")
                    || !self.explicit_begin
                {
                    closes = true;
                }
            }
            EventData::Xid { .. } | EventData::TransactionPayload { .. } => closes = true,
            EventData::TableMap(_) | EventData::Rows(_) | EventData::AnnotateRows { .. } => {
                self.in_transaction = true;
            }
            EventData::PreviousGtids(_) | EventData::MariaDbGtidList(_) => {
                self.learn_gtid_set(&event.event.data);
            }
            _ => {}
        }
        if closes {
            self.close();
        }
        end.gtid_set = self.current.gtid_set.clone();
        self.current.position = end.position.clone();
        let at_transaction_end = !self.in_transaction;
        if at_transaction_end {
            self.transaction_end = self.current.clone();
        }
        EventLocations {
            start,
            end,
            at_transaction_end,
        }
    }

    fn open(&mut self, gtid: Gtid) {
        self.pending_gtid = Some(gtid);
        self.in_transaction = true;
        self.explicit_begin = false;
    }

    fn close(&mut self) {
        if let (Some(gtid), Some(set)) = (self.pending_gtid.take(), self.current.gtid_set.as_mut())
        {
            // A GTID of the other flavour cannot be in this set; it is left out rather than
            // mixing flavours.
            let _ = Arc::make_mut(set).insert(&gtid);
        }
        self.in_transaction = false;
        self.explicit_begin = false;
    }

    /// A GTID set stated by the server (PREVIOUS_GTIDS, GTID_LIST) is adopted when the stream
    /// did not know its set yet.
    fn learn_gtid_set(&mut self, data: &EventData) {
        if self.current.gtid_set.is_some() || self.in_transaction {
            return;
        }
        let learned = match data {
            EventData::PreviousGtids(set) => GtidSet::MySql(set.clone()),
            EventData::MariaDbGtidList(list) => {
                let mut set = dm_core::MariaDbGtidSet::new();
                for gtid in list {
                    set.insert(*gtid);
                }
                GtidSet::MariaDb(set)
            }
            _ => return,
        };
        let learned = Some(Arc::new(learned));
        self.current.gtid_set = learned.clone();
        self.transaction_end.gtid_set = learned;
    }
}

/// The first word (or `XA START`) of a statement, skipping leading spaces and comments.
fn leading_keyword(sql: &[u8]) -> &[u8] {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_ascii_start();
        if let Some(after) = trimmed.strip_prefix(b"/*") {
            match after.windows(2).position(|pair| pair == b"*/") {
                Some(end) => rest = &after[end + 2..],
                None => return b"",
            }
        } else {
            rest = trimmed;
            break;
        }
    }
    let word_end = rest
        .iter()
        .position(|byte| !byte.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let word = &rest[..word_end];
    if word.eq_ignore_ascii_case(b"XA") {
        let after = rest[word_end..].trim_ascii_start();
        if after.len() >= 5 && after[..5].eq_ignore_ascii_case(b"START") {
            return b"XA START";
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: EventData, offset: u64, size: u64) -> StreamEvent {
        let file = dm_core::BinlogFileName::parse("mysql-bin.000001").expect("name");
        StreamEvent {
            event: crate::event::Event {
                header: crate::event::EventHeader {
                    timestamp: 0,
                    event_type: 0,
                    server_id: 1,
                    event_size: size as u32,
                    log_position: (offset + size) as u32,
                    flags: 0,
                },
                data,
            },
            raw: Vec::new(),
            position: dm_core::BinlogPosition::new(file.clone(), offset),
            next_position: dm_core::BinlogPosition::new(file, offset + size),
            artificial: false,
        }
    }

    fn query(sql: &str) -> EventData {
        EventData::Query {
            thread_id: 1,
            execution_time: 0,
            error_code: 0,
            schema: String::new(),
            sql: sql.as_bytes().to_vec(),
            status_variables: Vec::new(),
        }
    }

    fn mariadb_gtid(sequence: u64, flags: u8) -> EventData {
        EventData::MariaDbGtid {
            gtid: dm_core::MariaDbGtid {
                domain: 0,
                server_id: 1,
                sequence,
            },
            flags,
            commit_id: None,
        }
    }

    #[test]
    fn transactions_end_where_each_flavour_ends_them() {
        let start = Location {
            position: dm_core::BinlogPosition::parse("mysql-bin.000001:4").expect("position"),
            gtid_set: Some(Arc::new(
                GtidSet::parse(dm_core::Flavor::MariaDb, "0-1-1").expect("set"),
            )),
            suffix: 0,
        };
        let mut tracker = LocationTracker::new(start);
        // A statement-format group (no FL_STANDALONE): its statements do not end it, XID does.
        let group = [
            event(mariadb_gtid(2, 0x08), 100, 40),
            event(query("INSERT INTO t VALUES (1)"), 140, 60),
            event(query("INSERT INTO t VALUES (2)"), 200, 60),
            event(EventData::Xid { xid: 9 }, 260, 31),
        ];
        for (index, item) in group.iter().enumerate() {
            let locations = tracker.observe(item);
            assert_eq!(locations.at_transaction_end, index == 3, "event {index}");
        }
        assert_eq!(tracker.transaction_end().position.offset, 291);
        assert_eq!(
            tracker
                .transaction_end()
                .gtid_set
                .as_ref()
                .expect("set")
                .to_string(),
            "0-1-2"
        );
        // A standalone DDL ends with its statement.
        tracker.observe(&event(mariadb_gtid(3, 0x01), 291, 40));
        let ddl = tracker.observe(&event(query("CREATE TABLE u (id INT)"), 331, 70));
        assert!(ddl.at_transaction_end);
        assert_eq!(ddl.end.gtid_set.as_ref().expect("set").to_string(), "0-1-3");
        // Without GTIDs: BEGIN ... COMMIT.
        tracker.observe(&event(query("BEGIN"), 401, 50));
        assert!(tracker.in_transaction());
        tracker.observe(&event(query("UPDATE t SET a = 1"), 451, 50));
        assert!(tracker.in_transaction());
        assert!(
            tracker
                .observe(&event(query("COMMIT"), 501, 50))
                .at_transaction_end
        );
    }

    #[test]
    fn leading_keywords_skip_comments_and_spaces() {
        assert_eq!(leading_keyword(b"  BEGIN"), b"BEGIN");
        assert_eq!(leading_keyword(b"/* x */ commit"), b"commit");
        assert_eq!(leading_keyword(b"XA  start 'a'"), b"XA START");
        assert_eq!(leading_keyword(b"ALTER TABLE t"), b"ALTER");
        assert_eq!(leading_keyword(b"/* unterminated"), b"");
    }
}
