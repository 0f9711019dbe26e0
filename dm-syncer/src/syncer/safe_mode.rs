//! Safe mode, decided in one place: whether a row change is written idempotently (an insert as
//! a replace, an update as a delete and a replace, DM's `safe-mode`), and whether a DDL replays
//! what a dump already copied.
//!
//! ```text
//! resume: SyncerSettings (safe-mode, safe-mode-duration, safe_mode_until)
//!         + the global checkpoint's safe_mode_exit  --> SafeMode
//! dispatch: SafeMode::idempotent_at(change's location) --> Work::Change { idempotent }
//!           --> worker --> Compactor / ChangeBatch (they only carry the flag)
//! ddl_apply: SafeMode::before_exit(DDL's location) --> tolerate objects that already exist
//! event loop: SafeMode::passed(event's end) after each event
//! checkpoint: SafeMode::exit() --> GlobalCheckpoint::safe_mode_exit
//! ```
//!
//! A change is idempotent when any of three holds: safe mode is configured (every change),
//! the syncer started less than `safe-mode-duration` ago, or the change is before the exit
//! point (the dump's end when it took no consistent snapshot: its rows may already hold the
//! change). The exit point is kept in every global checkpoint until the stream passes it, so a
//! restart before that point is still safe; once passed it is forgotten.
//!
//! Invariants: the type is pure (time comes from the caller in [`SafeMode::idempotent_when`]);
//! the exit point only ever goes away, never comes back; a location that cannot be ordered
//! against the exit point neither passes it nor counts as before it, as before the split.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_core::{GtidSet, Location};

/// When row changes are written idempotently.
#[derive(Clone, Debug)]
pub(super) struct SafeMode {
    /// DM's `safe-mode: true`: every change.
    configured: bool,
    /// DM's `safe-mode-duration`: every change for this long after `started`.
    duration: Option<Duration>,
    /// When this run of the syncer started.
    started: Instant,
    /// Every change before this location (the dump's exit point), until the stream passes it.
    exit: Option<Location>,
    /// Every change of the transactions up to the one that starts after this GTID set, until
    /// the stream passes it: transactions that workers applied in part while reading another
    /// server ([`SafeMode::replay_transactions_through`]).
    replayed_through: Option<Arc<GtidSet>>,
}

impl SafeMode {
    pub(super) fn new(
        configured: bool,
        duration: Option<Duration>,
        started: Instant,
        exit: Option<Location>,
    ) -> Self {
        SafeMode {
            configured,
            duration,
            started,
            exit,
            replayed_through: None,
        }
    }

    /// The changes of every transaction up to the one that starts after `gtid_set` (a location
    /// inside that transaction carries `gtid_set`) are written idempotently until the stream
    /// passes its end: they were applied in part by an earlier run that read another server.
    /// Widens what is already set, never narrows it.
    pub(super) fn replay_transactions_through(&mut self, gtid_set: Arc<GtidSet>) {
        let wider = match &self.replayed_through {
            Some(current) => {
                gtid_set.as_ref().partial_cmp(current.as_ref()) == Some(Ordering::Greater)
            }
            None => true,
        };
        if wider {
            self.replayed_through = Some(gtid_set);
        }
    }

    /// Whether transactions [`SafeMode::replay_transactions_through`] named are still ahead.
    pub(super) fn replaying_transactions(&self) -> bool {
        self.replayed_through.is_some()
    }

    /// Whether `location` is in a transaction [`SafeMode::replay_transactions_through`] named.
    fn replayed(&self, location: &Location) -> bool {
        match (&self.replayed_through, &location.gtid_set) {
            (Some(through), Some(set)) => matches!(
                set.as_ref().partial_cmp(through.as_ref()),
                Some(Ordering::Less | Ordering::Equal)
            ),
            _ => false,
        }
    }

    /// Whether the change at `location` is written idempotently now.
    pub(super) fn idempotent_at(&self, location: &Location) -> bool {
        self.idempotent_when(location, Instant::now)
    }

    /// [`SafeMode::idempotent_at`] with the clock given (`now` is read only when the duration
    /// decides).
    pub(super) fn idempotent_when(
        &self,
        location: &Location,
        now: impl FnOnce() -> Instant,
    ) -> bool {
        self.configured
            || self
                .duration
                .is_some_and(|duration| now().saturating_duration_since(self.started) < duration)
            || self.before_exit(location)
            || self.replayed(location)
    }

    /// Whether `location` is before the exit point: the dump's rows may already hold what
    /// happens there.
    pub(super) fn before_exit(&self, location: &Location) -> bool {
        self.exit
            .as_ref()
            .is_some_and(|exit| location.compare(exit) == Some(Ordering::Less))
    }

    /// The stream read up to `end`: at or past the exit point, it is forgotten (exact writes
    /// from there, unless configured or within the duration).
    pub(super) fn passed(&mut self, end: &Location) {
        if let (Some(through), Some(set)) = (&self.replayed_through, &end.gtid_set)
            && set.as_ref().partial_cmp(through.as_ref()) == Some(Ordering::Greater)
        {
            self.replayed_through = None;
        }
        if self.exit.as_ref().is_some_and(|exit| {
            end.compare(exit)
                .is_some_and(|order| order != Ordering::Less)
        }) {
            self.exit = None;
        }
    }

    /// The exit point the global checkpoint stores (`None` once passed, or when there is none).
    pub(super) fn exit(&self) -> Option<&Location> {
        self.exit.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::BinlogPosition;

    fn at(position: &str) -> Location {
        Location::from_position(BinlogPosition::parse(position).expect("a position"))
    }

    #[test]
    fn configured_makes_every_change_idempotent() {
        let started = Instant::now();
        let mode = SafeMode::new(true, None, started, None);
        let late = || started + Duration::from_secs(3600);
        assert!(mode.idempotent_when(&at("mysql-bin.000001:4"), late));
        assert!(mode.idempotent_when(&at("mysql-bin.000009:400"), late));
        assert!(!mode.before_exit(&at("mysql-bin.000001:4")));
    }

    #[test]
    fn off_without_configuration_duration_or_exit() {
        let mode = SafeMode::new(false, None, Instant::now(), None);
        assert!(!mode.idempotent_at(&at("mysql-bin.000001:4")));
        assert_eq!(mode.exit(), None);
    }

    #[test]
    fn duration_counts_from_the_start() {
        let started = Instant::now();
        let mode = SafeMode::new(false, Some(Duration::from_secs(60)), started, None);
        let location = at("mysql-bin.000001:4");
        assert!(mode.idempotent_when(&location, || started + Duration::from_secs(59)));
        assert!(!mode.idempotent_when(&location, || started + Duration::from_secs(60)));
        assert!(!mode.idempotent_when(&location, || started + Duration::from_secs(61)));
    }

    #[test]
    fn exit_point_covers_changes_before_it_until_passed() {
        let started = Instant::now();
        let now = || started;
        let mut mode = SafeMode::new(false, None, started, Some(at("mysql-bin.000002:100")));
        assert!(mode.idempotent_when(&at("mysql-bin.000001:900"), now));
        assert!(mode.idempotent_when(&at("mysql-bin.000002:99"), now));
        assert!(!mode.idempotent_when(&at("mysql-bin.000002:100"), now));
        assert!(mode.before_exit(&at("mysql-bin.000002:4")));

        mode.passed(&at("mysql-bin.000002:50"));
        assert_eq!(mode.exit(), Some(&at("mysql-bin.000002:100")), "not yet");
        mode.passed(&at("mysql-bin.000002:100"));
        assert_eq!(mode.exit(), None, "at the exit point it is passed");
        assert!(!mode.idempotent_when(&at("mysql-bin.000001:900"), now));
        assert!(!mode.before_exit(&at("mysql-bin.000001:900")));
    }

    #[test]
    fn an_unordered_location_neither_passes_nor_precedes_the_exit() {
        let started = Instant::now();
        let mut mode = SafeMode::new(false, None, started, Some(at("mysql-bin.000002:100")));
        let other_base = at("binlog.000001:4");
        assert!(!mode.idempotent_when(&other_base, || started));
        mode.passed(&other_base);
        assert_eq!(mode.exit(), Some(&at("mysql-bin.000002:100")));
    }

    /// A location of MariaDB GTID sequence `sequence` (the set of the transactions before it).
    fn in_transaction_after(sequence: u64, position: &str) -> Location {
        let set = dm_core::GtidSet::parse(dm_core::Flavor::MariaDb, &format!("0-1-{sequence}"))
            .expect("a GTID set");
        Location {
            gtid_set: Some(Arc::new(set)),
            ..at(position)
        }
    }

    #[test]
    fn transactions_applied_in_part_elsewhere_are_idempotent_until_passed_by_gtid_alone() {
        let started = Instant::now();
        let mut mode = SafeMode::new(false, None, started, None);
        let through = in_transaction_after(20, "mysql-bin.000009:900");
        mode.replay_transactions_through(through.gtid_set.clone().expect("set"));
        // A narrower set does not narrow it.
        mode.replay_transactions_through(
            in_transaction_after(10, "mysql-bin.000001:4")
                .gtid_set
                .expect("set"),
        );
        assert!(mode.replaying_transactions());
        // Positions of this server, whatever they are, do not matter: the GTID sets decide.
        assert!(mode.idempotent_when(&in_transaction_after(15, "mysql-bin.000002:4"), || started));
        assert!(mode.idempotent_when(&in_transaction_after(20, "mysql-bin.000002:99"), || started));
        assert!(!mode.idempotent_when(&in_transaction_after(21, "mysql-bin.000001:4"), || started));
        assert!(
            !mode.idempotent_when(&at("mysql-bin.000002:99"), || started),
            "no set"
        );
        // The end of the last such transaction passes it.
        mode.passed(&in_transaction_after(20, "mysql-bin.000002:120"));
        assert!(mode.replaying_transactions(), "inside the transaction");
        mode.passed(&in_transaction_after(21, "mysql-bin.000002:200"));
        assert!(!mode.replaying_transactions());
        assert!(!mode.idempotent_when(&in_transaction_after(15, "mysql-bin.000002:4"), || started));
    }

    #[test]
    fn clock_is_not_read_unless_the_duration_decides() {
        let started = Instant::now();
        let configured = SafeMode::new(true, Some(Duration::from_secs(1)), started, None);
        assert!(configured.idempotent_when(&at("mysql-bin.000001:4"), || {
            panic!("configured safe mode needs no clock")
        }));
        let without_duration = SafeMode::new(false, None, started, None);
        assert!(
            !without_duration.idempotent_when(&at("mysql-bin.000001:4"), || {
                panic!("no duration needs no clock")
            })
        );
    }
}
