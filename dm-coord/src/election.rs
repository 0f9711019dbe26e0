//! Leader election on any `CoordStore`, the way etcd's election recipe does it.
//!
//! ```text
//! candidate --grant lease, put <prefix><lease hex> = value--> store
//!           the key with the lowest create revision leads; the others each watch the key just
//!           before theirs and re-check when it is deleted (no thundering herd)
//! leader    --LeaderGuard: is_leader() / lost() / fence(txn) / resign()
//! ```
//!
//! A leader's guard is valid only while its lease is certainly alive (see [`crate::lease`]): when
//! keep-alives stop getting through, `is_leader()` turns false before the store expires the lease
//! and another candidate can win. Writes that must only happen while leading go through
//! [`LeaderGuard::fence`], which makes the transaction conditional on the leader key still being
//! ours, so even a leader that has not noticed its loss cannot write.
//!
//! A campaign future that is dropped before winning stops refreshing its lease; its key then
//! vanishes after the TTL.

use std::time::Duration;

use crate::error::CoordError;
use crate::lease::LeaseKeeper;
use crate::store::{Compare, CoordStore, EventKind, KeyValue, Revision, Txn};

/// An election under one key prefix.
#[derive(Clone, Debug)]
pub struct Election<S: CoordStore> {
    store: S,
    prefix: String,
}

/// Proof of leadership while valid.
#[derive(Debug)]
pub struct LeaderGuard<S: CoordStore> {
    store: S,
    keeper: LeaseKeeper,
    key: String,
    create_revision: Revision,
}

impl<S: CoordStore> Election<S> {
    /// The election whose candidates put keys under `prefix` (for the master:
    /// [`crate::keys::MASTER_LEADER`]).
    pub fn new(store: S, prefix: impl Into<String>) -> Self {
        Election {
            store,
            prefix: prefix.into(),
        }
    }

    /// The current leader's key and value, if any.
    pub async fn leader(&self) -> Result<Option<KeyValue>, CoordError> {
        let (candidates, _) = self.store.range(&self.prefix).await?;
        Ok(leader_of(candidates))
    }

    /// Follows the leadership: the observer yields the leader (or `None`) now and after every
    /// change of leader.
    pub async fn observe(&self) -> Result<LeaderObserver<S>, CoordError> {
        let (candidates, revision) = self.store.range(&self.prefix).await?;
        let watcher = self.store.watch(&self.prefix, revision + 1).await?;
        Ok(LeaderObserver {
            election: self.clone(),
            watcher,
            pending: Some(leader_of(candidates)),
            last: None,
        })
    }

    /// Campaigns with `value` (the candidate's name or address) and a lease of `ttl`; returns
    /// once this candidate leads. [`CoordError::LeaseNotFound`] if the candidate's lease is lost
    /// while waiting.
    ///
    /// Cancel safety: cancel-safe in the sense that dropping the future withdraws the candidate
    /// after the TTL.
    pub async fn campaign(
        &self,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<LeaderGuard<S>, CoordError> {
        let keeper = LeaseKeeper::start(&self.store, ttl).await?;
        let key = format!("{}{:016x}", self.prefix, keeper.lease().0);
        let created = self
            .store
            .txn(Txn::new().when([Compare::absent(key.clone())]).and_then([
                crate::store::Operation::put_with_lease(key.clone(), value, keeper.lease()),
            ]))
            .await?;
        if !created.succeeded {
            return Err(CoordError::InvalidRequest {
                reason: format!("election key {key} already exists"),
            });
        }
        let create_revision = created.revision;
        loop {
            let (candidates, revision) = self.store.range(&self.prefix).await?;
            if !candidates.iter().any(|candidate| candidate.key == key) {
                return Err(CoordError::LeaseNotFound {
                    lease: keeper.lease(),
                });
            }
            let predecessor = candidates
                .iter()
                .filter(|candidate| candidate.create_revision < create_revision)
                .max_by_key(|candidate| candidate.create_revision);
            let Some(predecessor) = predecessor else {
                return Ok(LeaderGuard {
                    store: self.store.clone(),
                    keeper,
                    key,
                    create_revision,
                });
            };
            // Wait for the predecessor to go (or our own candidacy to end), then look again.
            let mut watcher = self.store.watch(&predecessor.key, revision + 1).await?;
            loop {
                tokio::select! {
                    event = watcher.next() => match event {
                        Some(Ok(event)) if event.kind == EventKind::Delete && event.kv.key == predecessor.key => break,
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return Err(error),
                        None => break,
                    },
                    () = keeper.lost() => {
                        return Err(CoordError::LeaseNotFound { lease: keeper.lease() });
                    }
                }
            }
        }
    }
}

fn leader_of(candidates: Vec<KeyValue>) -> Option<KeyValue> {
    candidates
        .into_iter()
        .min_by_key(|candidate| candidate.create_revision)
}

/// Yields the leader each time it changes (see [`Election::observe`]).
#[derive(Debug)]
pub struct LeaderObserver<S: CoordStore> {
    election: Election<S>,
    watcher: crate::store::Watcher,
    /// The leader to report next.
    pending: Option<Option<KeyValue>>,
    /// The leader key last reported.
    last: Option<Option<String>>,
}

impl<S: CoordStore> LeaderObserver<S> {
    /// The leader after the next change (the current one on the first call); `None` inside means
    /// no candidate leads. Ends with the watch's error, if any.
    ///
    /// Cancel safety: cancel-safe; a change is never lost, the leader is re-read after each event.
    pub async fn next(&mut self) -> Result<Option<KeyValue>, CoordError> {
        loop {
            if let Some(leader) = self.pending.take() {
                let key = leader.as_ref().map(|leader| leader.key.clone());
                if self.last.as_ref() != Some(&key) {
                    self.last = Some(key);
                    return Ok(leader);
                }
            }
            match self.watcher.next().await {
                Some(Ok(_)) => self.pending = Some(self.election.leader().await?),
                Some(Err(error)) => return Err(error),
                None => {
                    return Err(CoordError::Unavailable {
                        endpoint: self.election.prefix.clone(),
                        reason: "the election watch ended".into(),
                    });
                }
            }
        }
    }
}

impl<S: CoordStore> LeaderGuard<S> {
    /// Whether this candidate certainly still leads.
    pub fn is_leader(&self) -> bool {
        self.keeper.is_valid()
    }

    /// Resolves when leadership is lost.
    ///
    /// Cancel safety: cancel-safe.
    pub async fn lost(&self) {
        self.keeper.lost().await;
    }

    /// The leader key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Makes `txn` conditional on this candidate still holding the leader key: a deposed leader's
    /// fenced transaction fails (`succeeded == false`) instead of writing.
    pub fn fence(&self, txn: Txn) -> Txn {
        let mut fenced = txn;
        fenced.compares.push(Compare::create_revision_equals(
            self.key.clone(),
            self.create_revision,
        ));
        fenced
    }

    /// Steps down now: the next candidate leads at once.
    pub async fn resign(self) -> Result<(), CoordError> {
        self.keeper.revoke(&self.store).await
    }
}
