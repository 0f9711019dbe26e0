//! Retrying a downstream operation in place: transient failures (the downstream restarting, a
//! lost connection, a lock wait) wait with a doubling backoff (100 ms up to 5 s) and try again,
//! for at most [`SyncerSettings::retry_transient_for`](super::SyncerSettings) when it is set;
//! after that the failure is returned, so that the caller (a subtask's auto-resume) takes
//! over and the attempts show in its status. Definite failures are returned at once.

use std::time::Duration;

use dm_core::{Backoff, ErrorClass};

/// 100 ms doubling up to 5 s.
const BACKOFF: Backoff = Backoff::doubling(Duration::from_millis(100), Duration::from_secs(5));

/// The in-place retries of one operation: dm-core's [`dm_core::Retry`] with the syncer's
/// backoff and limit.
pub(crate) struct Retry(dm_core::Retry);

impl Retry {
    /// Retries for at most `limit` (`None`: as long as it takes).
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Retry(dm_core::Retry::new(BACKOFF).give_up_after(limit))
    }

    /// After a failure of `class`: waits the backoff and says `true` to try again, or says
    /// `false` at once (a definite failure, or failing for longer than the limit).
    ///
    /// Cancel-safe: the backoff grows only after the wait.
    pub(crate) async fn again(&mut self, class: ErrorClass) -> bool {
        self.0.again(class).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_limit() {
        let mut retry = Retry::new(Some(Duration::from_secs(1)));
        assert!(!retry.again(ErrorClass::Definite).await);
        let started = tokio::time::Instant::now();
        let mut attempts = 0;
        while retry.again(ErrorClass::Transient).await {
            attempts += 1;
        }
        // 100 + 200 + 400 ms, then 800 ms that end past the limit: four waits.
        assert_eq!(attempts, 4);
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let mut forever = Retry::new(None);
        for _ in 0..20 {
            assert!(forever.again(ErrorClass::Transient).await);
        }
    }
}
