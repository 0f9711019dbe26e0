//! Retrying a downstream operation in place: transient failures (the downstream restarting, a
//! lost connection, a lock wait) wait with a doubling backoff (100 ms up to 5 s) and try again,
//! for at most [`SyncerSettings::retry_transient_for`](super::SyncerSettings) when it is set;
//! after that the failure is returned, so that the caller (a subtask's auto-resume) takes
//! over and the attempts show in its status. Definite failures are returned at once.

use std::time::Duration;

use dm_core::ErrorClass;
use tokio::time::Instant;

/// The in-place retries of one operation.
pub(crate) struct Retry {
    /// Give up once failing for this long (`None`: never).
    limit: Option<Duration>,
    /// When the first failure happened.
    first_failure: Option<Instant>,
    backoff: Duration,
}

impl Retry {
    /// Retries for at most `limit` (`None`: as long as it takes).
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Retry {
            limit,
            first_failure: None,
            backoff: Duration::from_millis(100),
        }
    }

    /// After a failure of `class`: waits the backoff and says `true` to try again, or says
    /// `false` at once (a definite failure, or failing for longer than the limit).
    ///
    /// Cancel-safe: the backoff grows only after the wait.
    pub(crate) async fn again(&mut self, class: ErrorClass) -> bool {
        if class != ErrorClass::Transient {
            return false;
        }
        let first_failure = *self.first_failure.get_or_insert_with(Instant::now);
        if self
            .limit
            .is_some_and(|limit| first_failure.elapsed() >= limit)
        {
            return false;
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
        true
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
