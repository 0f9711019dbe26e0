//! GTIDs and GTID sets of both flavours.
//!
//! **MySQL** (5.6+; tagged GTIDs from 8.3): a GTID is `source_uuid[:tag]:transaction_number`; a set
//! is, per source uuid and per tag, a set of transaction-number intervals, written
//! `uuid:1-5:7:tag_a:1-3,uuid2:1-9`. Transaction numbers run from 1 to 2^63-1. Tags are
//! `[a-z_][a-z0-9_]{0,31}`, case-insensitive (kept lowercase). Here a set is an exact set of
//! transactions, so union, intersection and subtraction are the ordinary set operations.
//!
//! **MariaDB** (10.0+): a GTID is `domain-server-sequence`; a *position* such as
//! `@@gtid_binlog_pos` or `@@gtid_slave_pos` holds the last GTID per replication domain, and
//! means "every transaction of that domain up to this sequence number" (sequence numbers only
//! grow within a domain in `gtid_strict_mode`, which the syncer requires). So a MariaDB set is a
//! watermark per domain: union takes the higher watermark, intersection the lower, `a` contains
//! `b` when every domain of `b` is at or below `a`'s watermark, and `a - b` keeps the domains in
//! which `a` is ahead of `b`. A list naming several servers in one domain (as
//! `@@gtid_binlog_state` does) folds to the GTID with the highest sequence of each domain (ties,
//! possible only outside strict mode, go to the higher server id), and a sequence of 0 (nothing
//! applied yet) contributes nothing.
//!
//! Invariants, checked by the property tests at the bottom:
//! - `parse(display(set)) == set` for both flavours;
//! - union is commutative, associative and idempotent; `(a - b) ∪ b == a ∪ b`; `a - a` is empty;
//!   `a ⊇ b` iff `b - a` is empty; the order ([`PartialOrd`]) is set inclusion and is `Equal` exactly
//!   when the sets are equal;
//! - a malformed string is an error naming the bad part, never a panic.
//!
//! Combining sets of different flavours is an error ([`CoreError::GtidFlavorMismatch`]); they do
//! not compare (`partial_cmp` is `None`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::error::CoreError;

/// Which server family wrote a binlog; decides the GTID syntax and semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// MySQL and Percona Server: uuid-based GTIDs.
    MySql,
    /// MariaDB: domain-server-sequence GTIDs.
    MariaDb,
}

impl Flavor {
    /// The name users know the flavour by.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::MySql => "MySQL",
            Flavor::MariaDb => "MariaDB",
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Interval sets (MySQL transaction numbers)

/// A set of `u64` numbers kept as sorted, disjoint, non-adjacent closed intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntervalSet {
    /// Sorted by start; `start <= end`; `previous.end + 1 < next.start`.
    intervals: Vec<(u64, u64)>,
}

impl IntervalSet {
    /// The empty set.
    pub fn new() -> Self {
        IntervalSet::default()
    }

    /// Whether no number is in the set.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// The closed intervals `(first, last)`, in order.
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.intervals
    }

    /// How many numbers are in the set (saturating).
    pub fn count(&self) -> u64 {
        self.intervals.iter().fold(0u64, |total, (start, end)| {
            total.saturating_add(end - start).saturating_add(1)
        })
    }

    /// Whether `number` is in the set.
    pub fn contains(&self, number: u64) -> bool {
        let index = self.intervals.partition_point(|(_, end)| *end < number);
        self.intervals
            .get(index)
            .is_some_and(|(start, _)| *start <= number)
    }

    /// Adds the closed interval `first..=last` (nothing when `first > last`).
    pub fn insert(&mut self, first: u64, last: u64) {
        if first > last {
            return;
        }
        *self = self.union(&IntervalSet {
            intervals: vec![(first, last)],
        });
    }

    /// Every number in `self` or in `other`.
    pub fn union(&self, other: &IntervalSet) -> IntervalSet {
        let mut all: Vec<(u64, u64)> = self
            .intervals
            .iter()
            .chain(other.intervals.iter())
            .copied()
            .collect();
        all.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            match merged.last_mut() {
                Some((_, last_end)) if start <= last_end.saturating_add(1) => {
                    *last_end = (*last_end).max(end);
                }
                _ => merged.push((start, end)),
            }
        }
        IntervalSet { intervals: merged }
    }

    /// Every number in `self` and not in `other`.
    pub fn subtract(&self, other: &IntervalSet) -> IntervalSet {
        let mut result = Vec::new();
        let mut others = other.intervals.iter().peekable();
        for &(start, end) in &self.intervals {
            let mut current = start;
            let mut exhausted = false;
            // Skip the intervals of `other` that end before this one starts.
            while others
                .peek()
                .is_some_and(|(_, other_end)| *other_end < current)
            {
                others.next();
            }
            let mut lookahead = others.clone();
            while let Some(&&(other_start, other_end)) = lookahead.peek() {
                if other_start > end {
                    break;
                }
                if other_start > current {
                    result.push((current, other_start - 1));
                }
                if other_end >= end {
                    exhausted = true;
                    break;
                }
                current = other_end + 1;
                lookahead.next();
            }
            if !exhausted {
                result.push((current, end));
            }
        }
        IntervalSet { intervals: result }
    }

    /// Every number in both `self` and `other`.
    pub fn intersection(&self, other: &IntervalSet) -> IntervalSet {
        let mut result = Vec::new();
        let (mut left, mut right) = (0, 0);
        while let (Some(&(a_start, a_end)), Some(&(b_start, b_end))) =
            (self.intervals.get(left), other.intervals.get(right))
        {
            let start = a_start.max(b_start);
            let end = a_end.min(b_end);
            if start <= end {
                result.push((start, end));
            }
            if a_end < b_end {
                left += 1;
            } else {
                right += 1;
            }
        }
        IntervalSet { intervals: result }
    }

    /// Whether every number of `other` is in `self`.
    pub fn is_superset(&self, other: &IntervalSet) -> bool {
        other.subtract(self).is_empty()
    }
}

impl fmt::Display for IntervalSet {
    /// `1-5:7:9-12`, the MySQL notation.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (start, end)) in self.intervals.iter().enumerate() {
            if index > 0 {
                formatter.write_str(":")?;
            }
            if start == end {
                write!(formatter, "{start}")?;
            } else {
                write!(formatter, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// MySQL

/// A MySQL server uuid (`server_uuid`), the source part of a MySQL GTID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUuid(pub [u8; 16]);

impl ServerUuid {
    /// Parses `3e11fa47-71ca-11e1-9e33-c80aa9429562` (any case; dashes optional).
    pub fn parse(input: &str) -> Option<ServerUuid> {
        let hex: Vec<u8> = input.bytes().filter(|byte| *byte != b'-').collect();
        let dashes_well_placed = input.len() == 32
            || (input.len() == 36
                && input
                    .bytes()
                    .enumerate()
                    .all(|(index, byte)| (byte == b'-') == matches!(index, 8 | 13 | 18 | 23)));
        if hex.len() != 32 || !dashes_well_placed {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (index, pair) in hex.chunks(2).enumerate() {
            let high = hex_digit(pair[0])?;
            let low = hex_digit(pair[1])?;
            bytes[index] = (high << 4) | low;
        }
        Some(ServerUuid(bytes))
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ServerUuid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                formatter.write_str("-")?;
            }
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The largest MySQL transaction number (`GNO`), 2^63 - 1.
pub const MYSQL_MAX_TRANSACTION_NUMBER: u64 = i64::MAX as u64;

/// Validates a MySQL GTID tag and returns it lowercased.
fn normalize_tag(tag: &str) -> Result<String, String> {
    let lower = tag.to_ascii_lowercase();
    let mut bytes = lower.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|byte| byte == b'_' || byte.is_ascii_lowercase());
    if !first_ok
        || lower.len() > 32
        || !lower
            .bytes()
            .all(|byte| byte == b'_' || byte.is_ascii_lowercase() || byte.is_ascii_digit())
    {
        return Err(
            "is not a valid tag: a tag is 1-32 letters, digits or underscores, not starting with a digit"
                .into(),
        );
    }
    Ok(lower)
}

/// Parses `7` or `1-5` into a closed interval of MySQL transaction numbers.
fn parse_mysql_interval(text: &str) -> Result<(u64, u64), String> {
    let parse_number = |number: &str| -> Result<u64, String> {
        let value = number
            .parse::<u64>()
            .map_err(|_| "is not a transaction number or range".to_owned())?;
        if value == 0 || value > MYSQL_MAX_TRANSACTION_NUMBER {
            return Err(format!(
                "is out of range: transaction numbers run from 1 to {MYSQL_MAX_TRANSACTION_NUMBER}"
            ));
        }
        Ok(value)
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (parse_number(first)?, parse_number(last)?),
        None => {
            let value = parse_number(text)?;
            (value, value)
        }
    };
    if first > last {
        return Err("is a range whose start is after its end".into());
    }
    Ok((first, last))
}

/// A set of MySQL GTIDs: per server uuid, per tag (`""` = untagged), a set of transactions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MySqlGtidSet {
    /// Invariant: no empty inner map, no empty interval set.
    sources: BTreeMap<ServerUuid, BTreeMap<String, IntervalSet>>,
}

impl MySqlGtidSet {
    /// The empty set.
    pub fn new() -> Self {
        MySqlGtidSet::default()
    }

    /// Parses the text of `@@gtid_executed` (commas, newlines and spaces between uuids allowed).
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let error = |part: &str, reason: String| CoreError::InvalidGtidSet {
            flavor: Flavor::MySql.name(),
            input: input.to_owned(),
            part: part.to_owned(),
            reason,
        };
        let mut set = MySqlGtidSet::new();
        for uuid_set in input.split(',') {
            let uuid_set = uuid_set.trim();
            if uuid_set.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(error(uuid_set, "is an empty part between commas".into()));
            }
            let mut parts = uuid_set.split(':');
            let uuid_text = parts.next().unwrap_or_default().trim();
            let uuid = ServerUuid::parse(uuid_text).ok_or_else(|| {
                error(
                    uuid_text,
                    "is not a server uuid (32 hex digits, as in 3e11fa47-71ca-11e1-9e33-c80aa9429562)"
                        .into(),
                )
            })?;
            let mut tag = String::new();
            let mut tag_has_interval = false;
            let mut any_interval = false;
            for part in parts {
                let part = part.trim();
                if part
                    .bytes()
                    .next()
                    .is_some_and(|byte| byte.is_ascii_digit())
                {
                    let (first, last) =
                        parse_mysql_interval(part).map_err(|reason| error(part, reason))?;
                    set.insert_interval(uuid, &tag, first, last);
                    tag_has_interval = true;
                    any_interval = true;
                } else {
                    if !tag.is_empty() && !tag_has_interval {
                        return Err(error(&tag, "is a tag with no transaction interval".into()));
                    }
                    tag = normalize_tag(part).map_err(|reason| error(part, reason))?;
                    tag_has_interval = false;
                }
            }
            if !tag.is_empty() && !tag_has_interval {
                return Err(error(&tag, "is a tag with no transaction interval".into()));
            }
            if !any_interval {
                return Err(error(
                    uuid_set,
                    "names no transaction interval (write `uuid:1-5`)".into(),
                ));
            }
        }
        Ok(set)
    }

    fn insert_interval(&mut self, uuid: ServerUuid, tag: &str, first: u64, last: u64) {
        self.sources
            .entry(uuid)
            .or_default()
            .entry(tag.to_owned())
            .or_default()
            .insert(first, last);
    }

    /// Adds one transaction.
    pub fn insert(&mut self, gtid: &MySqlGtid) {
        self.insert_interval(gtid.source, &gtid.tag, gtid.transaction, gtid.transaction);
    }

    /// Whether the transaction is in the set.
    pub fn contains_gtid(&self, gtid: &MySqlGtid) -> bool {
        self.sources
            .get(&gtid.source)
            .and_then(|tags| tags.get(&gtid.tag))
            .is_some_and(|intervals| intervals.contains(gtid.transaction))
    }

    /// Whether no transaction is in the set.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Per server uuid, per tag, the transactions.
    pub fn sources(&self) -> &BTreeMap<ServerUuid, BTreeMap<String, IntervalSet>> {
        &self.sources
    }

    fn combine(
        &self,
        other: &MySqlGtidSet,
        operation: impl Fn(&IntervalSet, &IntervalSet) -> IntervalSet,
    ) -> MySqlGtidSet {
        let empty = IntervalSet::new();
        let mut sources = BTreeMap::new();
        let uuids: std::collections::BTreeSet<&ServerUuid> =
            self.sources.keys().chain(other.sources.keys()).collect();
        for uuid in uuids {
            let left = self.sources.get(uuid);
            let right = other.sources.get(uuid);
            let tags: std::collections::BTreeSet<&String> = left
                .into_iter()
                .flat_map(|tags| tags.keys())
                .chain(right.into_iter().flat_map(|tags| tags.keys()))
                .collect();
            let mut combined = BTreeMap::new();
            for tag in tags {
                let result = operation(
                    left.and_then(|tags| tags.get(tag)).unwrap_or(&empty),
                    right.and_then(|tags| tags.get(tag)).unwrap_or(&empty),
                );
                if !result.is_empty() {
                    combined.insert(tag.clone(), result);
                }
            }
            if !combined.is_empty() {
                sources.insert(*uuid, combined);
            }
        }
        MySqlGtidSet { sources }
    }

    /// Every transaction in `self` or `other`.
    pub fn union(&self, other: &MySqlGtidSet) -> MySqlGtidSet {
        self.combine(other, IntervalSet::union)
    }

    /// Every transaction in `self` and not in `other`.
    pub fn subtract(&self, other: &MySqlGtidSet) -> MySqlGtidSet {
        self.combine(other, IntervalSet::subtract)
    }

    /// Every transaction in both.
    pub fn intersection(&self, other: &MySqlGtidSet) -> MySqlGtidSet {
        self.combine(other, IntervalSet::intersection)
    }

    /// Whether every transaction of `other` is in `self`.
    pub fn contains(&self, other: &MySqlGtidSet) -> bool {
        other.subtract(self).is_empty()
    }
}

impl fmt::Display for MySqlGtidSet {
    /// `uuid:1-5:7:tag:1-3,uuid2:1-9`: uuids in order, untagged intervals first, then tags in order.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (uuid, tags)) in self.sources.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            write!(formatter, "{uuid}")?;
            for (tag, intervals) in tags {
                if tag.is_empty() {
                    write!(formatter, ":{intervals}")?;
                } else {
                    write!(formatter, ":{tag}:{intervals}")?;
                }
            }
        }
        Ok(())
    }
}

/// One MySQL transaction: `uuid:N` or `uuid:tag:N`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MySqlGtid {
    /// The server that originated the transaction.
    pub source: ServerUuid,
    /// The tag, lowercase, or `""` when untagged.
    pub tag: String,
    /// The transaction number, 1 to 2^63-1.
    pub transaction: u64,
}

impl fmt::Display for MySqlGtid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tag.is_empty() {
            write!(formatter, "{}:{}", self.source, self.transaction)
        } else {
            write!(
                formatter,
                "{}:{}:{}",
                self.source, self.tag, self.transaction
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB

/// One MariaDB transaction: `domain-server-sequence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MariaDbGtid {
    /// The replication domain (`gtid_domain_id`).
    pub domain: u32,
    /// The server that wrote it (`server_id`).
    pub server_id: u32,
    /// The sequence number within the domain.
    pub sequence: u64,
}

impl MariaDbGtid {
    /// Parses `0-1-100`.
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        parse_mariadb_gtid(input.trim()).map_err(|reason| CoreError::InvalidGtid {
            flavor: Flavor::MariaDb.name(),
            input: input.to_owned(),
            reason,
        })
    }
}

fn parse_mariadb_gtid(text: &str) -> Result<MariaDbGtid, String> {
    let mut parts = text.split('-');
    let (Some(domain), Some(server), Some(sequence), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("is not `domain-server-sequence` (three numbers joined by dashes)".into());
    };
    let domain = domain
        .parse::<u32>()
        .map_err(|_| format!("has domain `{domain}`, which is not a 32-bit unsigned number"))?;
    let server_id = server
        .parse::<u32>()
        .map_err(|_| format!("has server id `{server}`, which is not a 32-bit unsigned number"))?;
    let sequence = sequence
        .parse::<u64>()
        .map_err(|_| format!("has sequence `{sequence}`, which is not a 64-bit unsigned number"))?;
    Ok(MariaDbGtid {
        domain,
        server_id,
        sequence,
    })
}

impl fmt::Display for MariaDbGtid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}-{}-{}",
            self.domain, self.server_id, self.sequence
        )
    }
}

/// A MariaDB GTID position: the last GTID of each replication domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MariaDbGtidSet {
    /// Invariant: keyed by `gtid.domain`; no sequence 0.
    domains: BTreeMap<u32, MariaDbGtid>,
}

impl MariaDbGtidSet {
    /// The empty position.
    pub fn new() -> Self {
        MariaDbGtidSet::default()
    }

    /// Parses `0-1-100,1-2-7` (spaces and newlines allowed around parts).
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let mut set = MariaDbGtidSet::new();
        if input.trim().is_empty() {
            return Ok(set);
        }
        for part in input.split(',') {
            let part = part.trim();
            let gtid = parse_mariadb_gtid(part).map_err(|reason| CoreError::InvalidGtidSet {
                flavor: Flavor::MariaDb.name(),
                input: input.to_owned(),
                part: part.to_owned(),
                reason,
            })?;
            set.insert(gtid);
        }
        Ok(set)
    }

    /// Advances the domain's watermark to `gtid` if it is ahead (ties on sequence keep the
    /// higher server id, so that the result does not depend on the order of inserts).
    pub fn insert(&mut self, gtid: MariaDbGtid) {
        if gtid.sequence == 0 {
            return;
        }
        let entry = self.domains.entry(gtid.domain).or_insert(gtid);
        if (gtid.sequence, gtid.server_id) > (entry.sequence, entry.server_id) {
            *entry = gtid;
        }
    }

    /// Whether the transaction is at or below its domain's watermark. Watermarks order by
    /// sequence, then server id: two servers writing one sequence number in one domain only
    /// happens outside `gtid_strict_mode`, and the tie-break keeps the algebra consistent there.
    pub fn contains_gtid(&self, gtid: &MariaDbGtid) -> bool {
        gtid.sequence == 0
            || self.domains.get(&gtid.domain).is_some_and(|last| {
                (last.sequence, last.server_id) >= (gtid.sequence, gtid.server_id)
            })
    }

    /// Whether no domain has a transaction.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The last GTID of each domain, in domain order.
    pub fn gtids(&self) -> impl Iterator<Item = &MariaDbGtid> {
        self.domains.values()
    }

    /// Per domain, the higher watermark.
    pub fn union(&self, other: &MariaDbGtidSet) -> MariaDbGtidSet {
        let mut result = self.clone();
        for gtid in other.domains.values() {
            result.insert(*gtid);
        }
        result
    }

    /// The domains in which `self` is ahead of `other`, at `self`'s watermark.
    pub fn subtract(&self, other: &MariaDbGtidSet) -> MariaDbGtidSet {
        let domains = self
            .domains
            .iter()
            .filter(|(_, gtid)| !other.contains_gtid(gtid))
            .map(|(domain, gtid)| (*domain, *gtid))
            .collect();
        MariaDbGtidSet { domains }
    }

    /// Per domain present in both, the lower watermark.
    pub fn intersection(&self, other: &MariaDbGtidSet) -> MariaDbGtidSet {
        let domains = self
            .domains
            .iter()
            .filter_map(|(domain, left)| {
                let right = other.domains.get(domain)?;
                let lower = if (left.sequence, left.server_id) <= (right.sequence, right.server_id)
                {
                    *left
                } else {
                    *right
                };
                Some((*domain, lower))
            })
            .collect();
        MariaDbGtidSet { domains }
    }

    /// Whether every domain of `other` is at or below `self`'s watermark.
    pub fn contains(&self, other: &MariaDbGtidSet) -> bool {
        other.domains.values().all(|gtid| self.contains_gtid(gtid))
    }
}

impl fmt::Display for MariaDbGtidSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, gtid) in self.domains.values().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            write!(formatter, "{gtid}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Either flavour

/// One GTID of either flavour.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gtid {
    /// `uuid[:tag]:N`.
    MySql(MySqlGtid),
    /// `domain-server-sequence`.
    MariaDb(MariaDbGtid),
}

impl Gtid {
    /// Parses one GTID of the given flavour.
    pub fn parse(flavor: Flavor, input: &str) -> Result<Self, CoreError> {
        match flavor {
            Flavor::MariaDb => MariaDbGtid::parse(input).map(Gtid::MariaDb),
            Flavor::MySql => {
                let invalid = |reason: &str| CoreError::InvalidGtid {
                    flavor: Flavor::MySql.name(),
                    input: input.to_owned(),
                    reason: reason.to_owned(),
                };
                let parts: Vec<&str> = input.trim().split(':').collect();
                let (uuid, tag, number) = match parts.as_slice() {
                    [uuid, number] => (*uuid, String::new(), *number),
                    [uuid, tag, number] => (
                        *uuid,
                        normalize_tag(tag)
                            .map_err(|reason| invalid(&format!("`{tag}` {reason}")))?,
                        *number,
                    ),
                    _ => return Err(invalid("is not `uuid:N` or `uuid:tag:N`")),
                };
                let source = ServerUuid::parse(uuid)
                    .ok_or_else(|| invalid(&format!("`{uuid}` is not a server uuid")))?;
                let (first, last) = parse_mysql_interval(number)
                    .map_err(|reason| invalid(&format!("`{number}` {reason}")))?;
                if first != last {
                    return Err(invalid("names a range; a GTID is one transaction"));
                }
                Ok(Gtid::MySql(MySqlGtid {
                    source,
                    tag,
                    transaction: first,
                }))
            }
        }
    }

    /// The flavour this GTID belongs to.
    pub fn flavor(&self) -> Flavor {
        match self {
            Gtid::MySql(_) => Flavor::MySql,
            Gtid::MariaDb(_) => Flavor::MariaDb,
        }
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::MySql(gtid) => gtid.fmt(formatter),
            Gtid::MariaDb(gtid) => gtid.fmt(formatter),
        }
    }
}

/// A GTID set of either flavour.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GtidSet {
    /// An exact set of MySQL transactions.
    MySql(MySqlGtidSet),
    /// A MariaDB position: a watermark per domain.
    MariaDb(MariaDbGtidSet),
}

impl GtidSet {
    /// The empty set of a flavour.
    pub fn empty(flavor: Flavor) -> Self {
        match flavor {
            Flavor::MySql => GtidSet::MySql(MySqlGtidSet::new()),
            Flavor::MariaDb => GtidSet::MariaDb(MariaDbGtidSet::new()),
        }
    }

    /// Parses a set of the given flavour; an empty string is the empty set.
    pub fn parse(flavor: Flavor, input: &str) -> Result<Self, CoreError> {
        match flavor {
            Flavor::MySql => MySqlGtidSet::parse(input).map(GtidSet::MySql),
            Flavor::MariaDb => MariaDbGtidSet::parse(input).map(GtidSet::MariaDb),
        }
    }

    /// The flavour of the set.
    pub fn flavor(&self) -> Flavor {
        match self {
            GtidSet::MySql(_) => Flavor::MySql,
            GtidSet::MariaDb(_) => Flavor::MariaDb,
        }
    }

    /// Whether the set holds no transaction.
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::MySql(set) => set.is_empty(),
            GtidSet::MariaDb(set) => set.is_empty(),
        }
    }

    fn mismatch(&self, other: Flavor) -> CoreError {
        CoreError::GtidFlavorMismatch {
            left: self.flavor().name(),
            right: other.name(),
        }
    }

    /// Adds one transaction (for MariaDB: advances its domain's watermark).
    pub fn insert(&mut self, gtid: &Gtid) -> Result<(), CoreError> {
        match (&mut *self, gtid) {
            (GtidSet::MySql(set), Gtid::MySql(gtid)) => set.insert(gtid),
            (GtidSet::MariaDb(set), Gtid::MariaDb(gtid)) => set.insert(*gtid),
            _ => return Err(self.mismatch(gtid.flavor())),
        }
        Ok(())
    }

    /// Whether the transaction is already in the set.
    pub fn contains_gtid(&self, gtid: &Gtid) -> Result<bool, CoreError> {
        match (self, gtid) {
            (GtidSet::MySql(set), Gtid::MySql(gtid)) => Ok(set.contains_gtid(gtid)),
            (GtidSet::MariaDb(set), Gtid::MariaDb(gtid)) => Ok(set.contains_gtid(gtid)),
            _ => Err(self.mismatch(gtid.flavor())),
        }
    }

    /// Whether every transaction of `other` is in `self`.
    pub fn contains(&self, other: &GtidSet) -> Result<bool, CoreError> {
        match (self, other) {
            (GtidSet::MySql(left), GtidSet::MySql(right)) => Ok(left.contains(right)),
            (GtidSet::MariaDb(left), GtidSet::MariaDb(right)) => Ok(left.contains(right)),
            _ => Err(self.mismatch(other.flavor())),
        }
    }

    /// Applies the flavour's operation to two sets of the same flavour.
    fn combine(
        &self,
        other: &GtidSet,
        mysql: fn(&MySqlGtidSet, &MySqlGtidSet) -> MySqlGtidSet,
        mariadb: fn(&MariaDbGtidSet, &MariaDbGtidSet) -> MariaDbGtidSet,
    ) -> Result<GtidSet, CoreError> {
        match (self, other) {
            (GtidSet::MySql(left), GtidSet::MySql(right)) => Ok(GtidSet::MySql(mysql(left, right))),
            (GtidSet::MariaDb(left), GtidSet::MariaDb(right)) => {
                Ok(GtidSet::MariaDb(mariadb(left, right)))
            }
            _ => Err(self.mismatch(other.flavor())),
        }
    }

    /// Every transaction in either set.
    pub fn union(&self, other: &GtidSet) -> Result<GtidSet, CoreError> {
        self.combine(other, MySqlGtidSet::union, MariaDbGtidSet::union)
    }

    /// The transactions of `self` that `other` lacks (MariaDB: the domains where `self` is ahead).
    pub fn subtract(&self, other: &GtidSet) -> Result<GtidSet, CoreError> {
        self.combine(other, MySqlGtidSet::subtract, MariaDbGtidSet::subtract)
    }

    /// The transactions in both sets.
    pub fn intersection(&self, other: &GtidSet) -> Result<GtidSet, CoreError> {
        self.combine(
            other,
            MySqlGtidSet::intersection,
            MariaDbGtidSet::intersection,
        )
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::MySql(set) => set.fmt(formatter),
            GtidSet::MariaDb(set) => set.fmt(formatter),
        }
    }
}

impl PartialOrd for GtidSet {
    /// Set inclusion: `a < b` when `b` holds every transaction of `a` and more. Sets that each
    /// hold something the other lacks, and sets of different flavours, do not compare.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let self_contains = self.contains(other).ok()?;
        let other_contains = other.contains(self).ok()?;
        match (self_contains, other_contains) {
            (true, true) if self == other => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UUID_A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const UUID_B: &str = "8a94f357-aab4-11df-86ab-c80aa9429563";

    #[test]
    fn parses_mysql_sets_with_tags_and_normalises() {
        let text = format!(
            "{}:7:1-5:Domain_1:3-4:1-2 ,\n {UUID_B}:9",
            UUID_A.to_uppercase()
        );
        let set = GtidSet::parse(Flavor::MySql, &text).unwrap();
        assert_eq!(
            set.to_string(),
            format!("{UUID_A}:1-5:7:domain_1:1-4,{UUID_B}:9")
        );
        let gtid = Gtid::parse(Flavor::MySql, &format!("{UUID_A}:domain_1:4")).unwrap();
        assert!(set.contains_gtid(&gtid).unwrap());
        let missing = Gtid::parse(Flavor::MySql, &format!("{UUID_A}:6")).unwrap();
        assert!(!set.contains_gtid(&missing).unwrap());
    }

    #[test]
    fn mysql_errors_name_the_bad_part() {
        let cases = [
            (format!("{UUID_A}:1-5,zzz:3"), "`zzz`", "server uuid"),
            (format!("{UUID_A}:5-1"), "`5-1`", "start is after its end"),
            (format!("{UUID_A}:0"), "`0`", "out of range"),
            (format!("{UUID_A}:1-x"), "`1-x`", "not a transaction number"),
            (
                format!("{UUID_A}:9tag"),
                "`9tag`",
                "not a transaction number",
            ),
            (format!("{UUID_A}:-tag:1"), "`-tag`", "not a valid tag"),
            (format!("{UUID_A}:tag"), "`tag`", "no transaction interval"),
            (format!("{UUID_A}:a:b:1"), "`a`", "no transaction interval"),
            (UUID_A.to_owned(), UUID_A, "names no transaction interval"),
            (format!("{UUID_A}:1,,{UUID_B}:1"), "``", "empty part"),
        ];
        for (input, part, reason) in cases {
            let error = GtidSet::parse(Flavor::MySql, &input).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(part) && message.contains(reason),
                "{input}: {message}"
            );
        }
    }

    #[test]
    fn mariadb_sets_fold_to_one_gtid_per_domain() {
        let set = GtidSet::parse(Flavor::MariaDb, " 0-1-100, 0-2-50,\n1-3-7,2-1-0").unwrap();
        assert_eq!(set.to_string(), "0-1-100,1-3-7");
        assert!(
            set.contains_gtid(&Gtid::parse(Flavor::MariaDb, "0-2-99").unwrap())
                .unwrap()
        );
        assert!(
            !set.contains_gtid(&Gtid::parse(Flavor::MariaDb, "1-3-8").unwrap())
                .unwrap()
        );
        assert!(GtidSet::parse(Flavor::MariaDb, "").unwrap().is_empty());
    }

    #[test]
    fn mariadb_errors_name_the_bad_part() {
        let cases = [
            ("0-1-100,0-1", "`0-1`", "domain-server-sequence"),
            ("0-1-x", "`0-1-x`", "sequence `x`"),
            ("4294967296-1-1", "`4294967296-1-1`", "domain `4294967296`"),
            ("0-1-1-1", "`0-1-1-1`", "three numbers"),
            ("0-1-5,", "``", "domain-server-sequence"),
        ];
        for (input, part, reason) in cases {
            let message = GtidSet::parse(Flavor::MariaDb, input)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(part) && message.contains(reason),
                "{input}: {message}"
            );
        }
    }

    #[test]
    fn flavours_do_not_mix() {
        let mysql = GtidSet::parse(Flavor::MySql, &format!("{UUID_A}:1")).unwrap();
        let mariadb = GtidSet::parse(Flavor::MariaDb, "0-1-1").unwrap();
        assert!(matches!(
            mysql.union(&mariadb),
            Err(CoreError::GtidFlavorMismatch { .. })
        ));
        assert_eq!(mysql.partial_cmp(&mariadb), None);
    }

    #[test]
    fn interval_subtract_handles_every_overlap() {
        let mut set = IntervalSet::new();
        set.insert(1, 10);
        set.insert(20, 30);
        let mut holes = IntervalSet::new();
        holes.insert(0, 2);
        holes.insert(5, 6);
        holes.insert(10, 21);
        holes.insert(30, 40);
        assert_eq!(set.subtract(&holes).to_string(), "3-4:7-9:22-29");
        assert_eq!(set.intersection(&holes).to_string(), "1-2:5-6:10:20-21:30");
    }

    // -- property tests ------------------------------------------------------------------------

    fn mysql_set() -> impl Strategy<Value = MySqlGtidSet> {
        let uuid = prop_oneof![Just(UUID_A), Just(UUID_B)];
        let tag = prop_oneof![Just(""), Just("alpha"), Just("beta_2")];
        let interval = (1u64..60, 0u64..8).prop_map(|(start, length)| (start, start + length));
        proptest::collection::vec((uuid, tag, interval), 0..8).prop_map(|parts| {
            let mut set = MySqlGtidSet::new();
            for (uuid, tag, (first, last)) in parts {
                set.insert_interval(ServerUuid::parse(uuid).unwrap(), tag, first, last);
            }
            set
        })
    }

    fn mariadb_set() -> impl Strategy<Value = MariaDbGtidSet> {
        proptest::collection::vec((0u32..4, 1u32..4, 0u64..40), 0..6).prop_map(|gtids| {
            let mut set = MariaDbGtidSet::new();
            for (domain, server_id, sequence) in gtids {
                set.insert(MariaDbGtid {
                    domain,
                    server_id,
                    sequence,
                });
            }
            set
        })
    }

    fn any_flavour_triple() -> impl Strategy<Value = (GtidSet, GtidSet, GtidSet)> {
        prop_oneof![
            (mysql_set(), mysql_set(), mysql_set()).prop_map(|(a, b, c)| (
                GtidSet::MySql(a),
                GtidSet::MySql(b),
                GtidSet::MySql(c)
            )),
            (mariadb_set(), mariadb_set(), mariadb_set()).prop_map(|(a, b, c)| (
                GtidSet::MariaDb(a),
                GtidSet::MariaDb(b),
                GtidSet::MariaDb(c)
            )),
        ]
    }

    proptest! {
        /// parse ∘ display is the identity, for both flavours.
        #[test]
        fn display_then_parse_is_identity((a, _, _) in any_flavour_triple()) {
            let text = a.to_string();
            prop_assert_eq!(GtidSet::parse(a.flavor(), &text).unwrap(), a);
        }

        /// Union is commutative, associative, idempotent, has the empty set as identity, and
        /// contains both operands.
        #[test]
        fn union_laws((a, b, c) in any_flavour_triple()) {
            let union = |x: &GtidSet, y: &GtidSet| x.union(y).unwrap();
            prop_assert_eq!(union(&a, &b), union(&b, &a));
            prop_assert_eq!(union(&union(&a, &b), &c), union(&a, &union(&b, &c)));
            prop_assert_eq!(union(&a, &a), a.clone());
            prop_assert_eq!(union(&a, &GtidSet::empty(a.flavor())), a.clone());
            let ab = union(&a, &b);
            prop_assert!(ab.contains(&a).unwrap() && ab.contains(&b).unwrap());
        }

        /// Subtraction removes exactly what the other set holds.
        #[test]
        fn subtract_laws((a, b, _) in any_flavour_triple()) {
            let difference = a.subtract(&b).unwrap();
            prop_assert!(a.subtract(&a).unwrap().is_empty());
            prop_assert_eq!(difference.union(&b).unwrap(), a.union(&b).unwrap());
            prop_assert!(a.contains(&difference).unwrap());
            prop_assert_eq!(b.contains(&a).unwrap(), difference.is_empty());
            if let (GtidSet::MySql(_), GtidSet::MySql(_)) = (&a, &b) {
                // Exact sets: what is left shares nothing with what was removed.
                prop_assert!(difference.intersection(&b).unwrap().is_empty());
            }
        }

        /// Intersection is the largest set both contain; containment agrees with the order.
        #[test]
        fn containment_and_order((a, b, _) in any_flavour_triple()) {
            let both = a.intersection(&b).unwrap();
            prop_assert!(a.contains(&both).unwrap() && b.contains(&both).unwrap());
            let a_contains_b = a.contains(&b).unwrap();
            let b_contains_a = b.contains(&a).unwrap();
            if matches!(a.partial_cmp(&b), Some(Ordering::Greater | Ordering::Equal)) {
                prop_assert!(a_contains_b);
            }
            if a_contains_b && !b_contains_a {
                prop_assert!(a > b);
            }
            prop_assert_eq!(a.partial_cmp(&b) == Some(Ordering::Equal), a == b);
            prop_assert_eq!(a.partial_cmp(&b).map(Ordering::reverse), b.partial_cmp(&a));
            prop_assert!(a.union(&b).unwrap() >= a);
        }

        /// A transaction inserted is contained; nothing else changes for MySQL.
        #[test]
        fn insert_then_contains(a in mysql_set(), transaction in 1u64..100) {
            let gtid = MySqlGtid { source: ServerUuid::parse(UUID_A).unwrap(), tag: String::new(), transaction };
            let mut with = a.clone();
            with.insert(&gtid);
            prop_assert!(with.contains_gtid(&gtid));
            prop_assert!(with.contains(&a));
            prop_assert_eq!(with.subtract(&a).sources().values().map(|tags| tags.values().map(IntervalSet::count).sum::<u64>()).sum::<u64>(), u64::from(!a.contains_gtid(&gtid)));
        }

        /// Parsing arbitrary text never panics.
        #[test]
        fn parse_never_panics(text in "[0-9a-fA-F:,\\- a-z_]{0,60}") {
            let _ = GtidSet::parse(Flavor::MySql, &text);
            let _ = GtidSet::parse(Flavor::MariaDb, &text);
            let _ = Gtid::parse(Flavor::MySql, &text);
        }
    }
}
