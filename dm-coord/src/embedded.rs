//! `RedbCoordStore`: the persistent coordination store for a single machine, the default.
//!
//! ```text
//! CoordStore calls --> MemCoordStore engine (StoreState) --journal--> RedbJournal --> <dir>/coord.redb
//!                                                  one redb write transaction per state transition
//! ```
//!
//! It needs no other process. Every transition (a transaction, a lease granted, ended or expired)
//! is written to a redb file in one write transaction, fsynced, **before** its effect is visible
//! to any caller or watcher. On open, keys, leases and the revision are loaded back:
//! - leases get their full TTL again (as etcd does after a restart), so members have time to
//!   reconnect and keep them alive;
//! - watch history starts at the restart: a watch from an older revision is
//!   [`CoordError::Compacted`], and the watcher re-reads the state, as it would after an etcd
//!   compaction;
//! - if a write ever fails (disk full), the store refuses every later call with
//!   [`CoordError::Storage`] rather than serve a state that differs from disk; reopen it.
//!
//! Only one process may open a directory at a time (redb locks the file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::CoordError;
use crate::memory::MemCoordStore;
use crate::state::{JournalEntry, StoreState};
use crate::store::{CoordStore, KeyValue, LeaseId, Revision, Txn, TxnResult, Watcher};

/// Keys → encoded [`KeyValue`] (without the key).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// Lease id → TTL in milliseconds.
const LEASES: TableDefinition<i64, u64> = TableDefinition::new("leases");
/// `revision`, `next_lease`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Events kept for watches after a restart.
const HISTORY: usize = 100_000;
/// The file inside the store's directory.
const FILE_NAME: &str = "coord.redb";

/// Where an embedded store writes its transitions.
#[derive(Debug)]
pub(crate) struct RedbJournal {
    database: Database,
    path: PathBuf,
}

fn storage_error(path: &Path, error: impl std::fmt::Display) -> CoordError {
    CoordError::Storage {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn encode(kv: &KeyValue) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(32 + kv.value.len());
    bytes.extend_from_slice(&kv.create_revision.to_le_bytes());
    bytes.extend_from_slice(&kv.mod_revision.to_le_bytes());
    bytes.extend_from_slice(&kv.version.to_le_bytes());
    bytes.extend_from_slice(&kv.lease.map_or(0, |lease| lease.0).to_le_bytes());
    bytes.extend_from_slice(&kv.value);
    bytes
}

fn decode(key: &str, bytes: &[u8]) -> Option<KeyValue> {
    let word =
        |index: usize| -> Option<[u8; 8]> { bytes.get(index * 8..index * 8 + 8)?.try_into().ok() };
    let lease = i64::from_le_bytes(word(3)?);
    Some(KeyValue {
        key: key.to_owned(),
        create_revision: u64::from_le_bytes(word(0)?),
        mod_revision: u64::from_le_bytes(word(1)?),
        version: u64::from_le_bytes(word(2)?),
        lease: (lease != 0).then_some(LeaseId(lease)),
        value: bytes.get(32..)?.to_vec(),
    })
}

impl RedbJournal {
    /// Opens (or creates) the file and loads the state it holds.
    fn open(directory: &Path) -> Result<(RedbJournal, StoreState), CoordError> {
        std::fs::create_dir_all(directory).map_err(|error| storage_error(directory, error))?;
        let path = directory.join(FILE_NAME);
        let database = Database::create(&path).map_err(|error| storage_error(&path, error))?;
        let journal = RedbJournal { database, path };
        let state = journal.load()?;
        Ok((journal, state))
    }

    fn load(&self) -> Result<StoreState, CoordError> {
        let error = |error: &dyn std::fmt::Display| storage_error(&self.path, error);
        // Create the tables on first use, so that reading finds them.
        let write = self.database.begin_write().map_err(|e| error(&e))?;
        write.open_table(KEYS).map_err(|e| error(&e))?;
        write.open_table(LEASES).map_err(|e| error(&e))?;
        write.open_table(META).map_err(|e| error(&e))?;
        write.commit().map_err(|e| error(&e))?;

        let read = self.database.begin_read().map_err(|e| error(&e))?;
        let mut keys = Vec::new();
        for entry in read
            .open_table(KEYS)
            .map_err(|e| error(&e))?
            .iter()
            .map_err(|e| error(&e))?
        {
            let (key, value) = entry.map_err(|e| error(&e))?;
            let kv = decode(key.value(), value.value())
                .ok_or_else(|| error(&format!("the record of key {} is damaged", key.value())))?;
            keys.push(kv);
        }
        let mut leases = Vec::new();
        for entry in read
            .open_table(LEASES)
            .map_err(|e| error(&e))?
            .iter()
            .map_err(|e| error(&e))?
        {
            let (lease, ttl) = entry.map_err(|e| error(&e))?;
            leases.push((LeaseId(lease.value()), Duration::from_millis(ttl.value())));
        }
        let meta = read.open_table(META).map_err(|e| error(&e))?;
        let number = |name: &str| -> Result<u64, CoordError> {
            Ok(meta
                .get(name)
                .map_err(|e| error(&e))?
                .map_or(0, |value| value.value()))
        };
        let revision = number("revision")?;
        let next_lease = i64::try_from(number("next_lease")?).unwrap_or(i64::MAX);
        let mut state = StoreState::restore(
            keys,
            leases,
            revision,
            next_lease,
            HISTORY,
            tokio::time::Instant::now(),
        );
        // Keys whose lease was gone are deleted by `restore`; make that durable now.
        let entries = state.take_journal();
        if !entries.is_empty() {
            self.persist(&entries, state.revision(), state.next_lease())?;
        }
        Ok(state)
    }

    /// Writes one transition's changes and the counters in one fsynced write transaction.
    pub(crate) fn persist(
        &self,
        entries: &[JournalEntry],
        revision: Revision,
        next_lease: i64,
    ) -> Result<(), CoordError> {
        let error = |error: &dyn std::fmt::Display| storage_error(&self.path, error);
        let write = self.database.begin_write().map_err(|e| error(&e))?;
        {
            let mut keys = write.open_table(KEYS).map_err(|e| error(&e))?;
            let mut leases = write.open_table(LEASES).map_err(|e| error(&e))?;
            let mut meta = write.open_table(META).map_err(|e| error(&e))?;
            for entry in entries {
                match entry {
                    JournalEntry::Put(kv) => {
                        keys.insert(kv.key.as_str(), encode(kv).as_slice())
                            .map_err(|e| error(&e))?;
                    }
                    JournalEntry::Delete(key) => {
                        keys.remove(key.as_str()).map_err(|e| error(&e))?;
                    }
                    JournalEntry::LeaseGranted { lease, ttl } => {
                        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                        leases.insert(lease.0, millis).map_err(|e| error(&e))?;
                    }
                    JournalEntry::LeaseEnded(lease) => {
                        leases.remove(lease.0).map_err(|e| error(&e))?;
                    }
                }
            }
            meta.insert("revision", revision).map_err(|e| error(&e))?;
            meta.insert("next_lease", u64::try_from(next_lease).unwrap_or(0))
                .map_err(|e| error(&e))?;
        }
        write.commit().map_err(|e| error(&e))
    }

    /// The error every call gets once a write failed.
    pub(crate) fn broken_error(&self) -> CoordError {
        storage_error(
            &self.path,
            "an earlier write failed; reopen the store to continue from what is on disk",
        )
    }
}

/// The embedded, persistent coordination store.
#[derive(Clone, Debug)]
pub struct RedbCoordStore {
    engine: MemCoordStore,
}

impl RedbCoordStore {
    /// Opens the store kept in `directory` (created if missing). Must be called within a tokio
    /// runtime.
    pub fn open(directory: impl AsRef<Path>) -> Result<Self, CoordError> {
        let (journal, state) = RedbJournal::open(directory.as_ref())?;
        Ok(RedbCoordStore {
            engine: MemCoordStore::from_parts(state, Some(journal)),
        })
    }
}

impl CoordStore for RedbCoordStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, CoordError> {
        self.engine.get(key).await
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), CoordError> {
        self.engine.range(prefix).await
    }

    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, CoordError> {
        self.engine.put(key, value, lease).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CoordError> {
        self.engine.delete(key).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, CoordError> {
        self.engine.txn(txn).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, CoordError> {
        self.engine.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, CoordError> {
        self.engine.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), CoordError> {
        self.engine.revoke_lease(lease).await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, CoordError> {
        self.engine.watch(prefix, from).await
    }

    async fn current_revision(&self) -> Result<Revision, CoordError> {
        self.engine.current_revision().await
    }
}

impl RedbCoordStore {
    /// Drops watch history up to `revision` (watches from before then fail with `Compacted`).
    pub fn compact(&self, revision: Revision) {
        self.engine.compact(revision);
    }
}
