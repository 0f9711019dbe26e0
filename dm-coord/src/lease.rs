//! Keeping a lease alive, and knowing locally how long it is certainly still alive.
//!
//! ```text
//! LeaseKeeper --keep_alive every ttl/3--> store
//!      valid_until = (send time of the last acknowledged keep-alive) + ttl - margin
//! ```
//!
//! The store refreshes the lease when it *receives* a keep-alive, which is after we sent it, so
//! the lease certainly lives until `send time + ttl` in the store's view. The keeper counts
//! from the send time and subtracts a margin for clock-rate differences: once the local
//! `valid_until` passes without a newer acknowledgement, [`LeaseKeeper::is_valid`] is false
//! **before** the store can have expired the lease and let someone else take over. Keep-alive
//! errors are retried until then; "lease not found" ends it at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::CoordError;
use crate::store::{CoordStore, LeaseId};

/// Local view of a lease's validity, shared with the keep-alive task.
#[derive(Debug)]
struct Validity {
    valid_until: Mutex<Instant>,
    /// Becomes true once the lease is known lost (never back to false).
    lost: watch::Sender<bool>,
}

impl Validity {
    fn valid_until(&self) -> Instant {
        *self
            .valid_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn extend(&self, until: Instant) {
        let mut valid_until = self
            .valid_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *valid_until = (*valid_until).max(until);
    }
}

/// A lease kept alive in the background until dropped or revoked.
#[derive(Debug)]
pub struct LeaseKeeper {
    lease: LeaseId,
    ttl: Duration,
    validity: Arc<Validity>,
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The safety margin subtracted from the TTL: a tenth of it.
fn margin(ttl: Duration) -> Duration {
    ttl / 10
}

impl LeaseKeeper {
    /// Grants a lease of `ttl` and starts keeping it alive.
    pub async fn start<S: CoordStore>(store: &S, ttl: Duration) -> Result<LeaseKeeper, CoordError> {
        let sent = Instant::now();
        let lease = store.grant_lease(ttl).await?;
        let (lost_sender, lost) = watch::channel(false);
        let validity = Arc::new(Validity {
            valid_until: Mutex::new(sent + ttl - margin(ttl)),
            lost: lost_sender,
        });
        let task = tokio::spawn(tracing::Instrument::instrument(
            keep_alive_loop(store.clone(), lease, ttl, validity.clone()),
            tracing::info_span!("lease_keepalive", lease = lease.0, ttl = ?ttl),
        ));
        Ok(LeaseKeeper {
            lease,
            ttl,
            validity,
            lost,
            task,
        })
    }

    /// The lease.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether the lease is certainly alive in the store right now.
    pub fn is_valid(&self) -> bool {
        !*self.lost.borrow() && Instant::now() < self.validity.valid_until()
    }

    /// Resolves once the lease is lost (expired, revoked, or not confirmed in time).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        loop {
            if *lost.borrow_and_update() {
                return;
            }
            let valid_until = self.validity.valid_until();
            tokio::select! {
                changed = lost.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(valid_until) => {
                    if Instant::now() >= self.validity.valid_until() {
                        return;
                    }
                }
            }
        }
    }

    /// Stops keeping the lease alive and revokes it (its keys vanish now).
    pub async fn revoke<S: CoordStore>(self, store: &S) -> Result<(), CoordError> {
        self.task.abort();
        self.validity.lost.send_replace(true);
        match store.revoke_lease(self.lease).await {
            Ok(()) | Err(CoordError::LeaseNotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        // Stops refreshing: the lease expires after its TTL, as when the process dies.
        self.task.abort();
    }
}

async fn keep_alive_loop<S: CoordStore>(
    store: S,
    lease: LeaseId,
    ttl: Duration,
    validity: Arc<Validity>,
) {
    let period = (ttl / 3).max(Duration::from_millis(10));
    let retry = (ttl / 20).max(Duration::from_millis(10));
    let mut next = Instant::now() + period;
    loop {
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        match store.keep_alive(lease).await {
            Ok(granted) => {
                validity.extend(sent + granted - margin(granted));
                next = sent + period;
            }
            Err(CoordError::LeaseNotFound { .. }) => {
                tracing::warn!("lease lost: the store no longer knows it");
                validity.lost.send_replace(true);
                return;
            }
            Err(error) => {
                // Retry quickly; validity runs out on its own if the store stays unreachable.
                if Instant::now() >= validity.valid_until() {
                    tracing::warn!(error = %error, "lease lost: not kept alive before it expired");
                    validity.lost.send_replace(true);
                    return;
                }
                tracing::warn!(error = %error, delay = ?retry, "lease keep-alive failed, retrying");
                next = Instant::now() + retry;
            }
        }
    }
}
