//! Member liveness: a key under a kept-alive lease, and the view of who is alive.
//!
//! ```text
//! worker --MemberKeepalive::start--> /dm-worker/a/<hex name> = info   (leased, refreshed every ttl/3)
//! master --alive_members / watch---> who is alive; a delete event = a member went away
//! ```
//!
//! A member that dies stops refreshing; its key vanishes at most its TTL (plus the store's expiry
//! granularity) later, with a delete event every watcher sees.

use std::time::Duration;

use crate::error::CoordError;
use crate::keys;
use crate::lease::LeaseKeeper;
use crate::store::{CoordStore, Revision};

/// A member's liveness key, kept alive until stopped or dropped.
#[derive(Debug)]
pub struct MemberKeepalive<S: CoordStore> {
    store: S,
    key: String,
    keeper: LeaseKeeper,
}

impl<S: CoordStore> MemberKeepalive<S> {
    /// Puts `<prefix><hex member>` = `info` under a lease of `ttl` and keeps it alive.
    pub async fn start(
        store: S,
        prefix: &str,
        member: &str,
        info: Vec<u8>,
        ttl: Duration,
    ) -> Result<Self, CoordError> {
        let keeper = LeaseKeeper::start(&store, ttl).await?;
        let key = keys::key(prefix, &[member]);
        store.put(&key, info, Some(keeper.lease())).await?;
        Ok(MemberKeepalive { store, key, keeper })
    }

    /// The liveness key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the key is certainly still in the store.
    pub fn is_alive(&self) -> bool {
        self.keeper.is_valid()
    }

    /// Resolves when liveness is lost (the member must re-register).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn lost(&self) {
        self.keeper.lost().await;
    }

    /// Leaves now: revokes the lease, so watchers see the delete at once.
    pub async fn stop(self) -> Result<(), CoordError> {
        self.keeper.revoke(&self.store).await
    }
}

/// The members alive under `prefix` (decoded names and their info), and the revision read at, to
/// watch from `revision + 1`.
pub async fn alive_members<S: CoordStore>(
    store: &S,
    prefix: &str,
) -> Result<(Vec<(String, Vec<u8>)>, Revision), CoordError> {
    let (entries, revision) = store.range(prefix).await?;
    let members = entries
        .into_iter()
        .filter_map(|entry| {
            let name = keys::components(prefix, &entry.key)?.into_iter().next()?;
            Some((name, entry.value))
        })
        .collect();
    Ok((members, revision))
}
