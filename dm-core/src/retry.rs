//! Retrying with exponential backoff: the one helper every stage uses for transient errors.
//!
//! ```text
//! operation --Err(error)--> Retry::again(error.class())
//!     transient, within the limit --> sleep Backoff::delay(n) --> true  (try again)
//!     definite, bug, or past the limit -----------------------> false (return the error)
//! retry(policy, || operation) = that loop, with each retried error logged once (warn)
//! ```
//!
//! [`Backoff`] is the pure part: the delay before retry `n` (`initial × factorⁿ⁻¹`, at most
//! `max`). [`Retry`] is the state of one operation's retries: how many so far, since when, and
//! the limit (a duration since the first failure, a number of retries, or none: as long as it
//! takes). Waits use tokio's clock, so tests run on paused time.
//!
//! Error model: none of its own; the operation's error is returned as it came. Logging: the
//! [`retry`] function handles the errors it retries, so it logs them (`warn`, with `error`,
//! `code`, `retry` and `delay`); [`Retry::again`] does not log: its caller, which knows the
//! context (a position, an endpoint), does.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ClassifiedError, ErrorClass};

/// Exponential backoff: `initial`, then `factor` times the previous delay, never more than
/// `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Each delay is this many times the previous one (1: a constant delay; 0 counts as 1).
    pub factor: u32,
}

impl Backoff {
    /// A backoff that doubles from `initial` up to `max`.
    pub const fn doubling(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            factor: 2,
        }
    }

    /// The delay before retry `retry` (1 for the first; 0 counts as 1).
    pub fn delay(&self, retry: u32) -> Duration {
        let mut delay = self.initial;
        for _ in 1..retry.max(1) {
            if delay >= self.max {
                break;
            }
            delay = delay.saturating_mul(self.factor.max(1));
        }
        delay.min(self.max)
    }
}

/// The retries of one operation: after each failure, [`Retry::again`] waits the backoff and
/// says whether to try again.
#[derive(Clone, Debug)]
pub struct Retry {
    backoff: Backoff,
    /// Give up once failing for this long since the first failure (`None`: no time limit).
    give_up_after: Option<Duration>,
    /// Give up after this many retries (`None`: no count limit).
    at_most: Option<u32>,
    /// Retries done (waits completed).
    retries: u32,
    /// When the first failure happened: the time limit counts from it.
    first_failure: Option<Instant>,
}

impl Retry {
    /// Retries with `backoff`, as long as it takes (see [`Retry::give_up_after`] and
    /// [`Retry::at_most`] for limits).
    pub fn new(backoff: Backoff) -> Retry {
        Retry {
            backoff,
            give_up_after: None,
            at_most: None,
            retries: 0,
            first_failure: None,
        }
    }

    /// Gives up once the operation has been failing for `limit` (from its first failure;
    /// `None`: no time limit).
    pub fn give_up_after(mut self, limit: Option<Duration>) -> Retry {
        self.give_up_after = limit;
        self
    }

    /// Gives up after `retries` retries (the operation runs at most `retries + 1` times).
    pub fn at_most(mut self, retries: u32) -> Retry {
        self.at_most = Some(retries);
        self
    }

    /// The retries done so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Forgets the failures so far (the operation succeeded; the next failure starts over).
    pub fn reset(&mut self) {
        self.retries = 0;
        self.first_failure = None;
    }

    /// After a failure of `class`: the delay to wait before the next try, or `None` when not
    /// to try again (not transient, or past a limit). Records the first failure's time;
    /// the retry is only counted by [`Retry::waited`] (or [`Retry::again`]).
    pub fn next_delay(&mut self, class: ErrorClass) -> Option<Duration> {
        if class != ErrorClass::Transient {
            return None;
        }
        let first_failure = *self.first_failure.get_or_insert_with(Instant::now);
        if self
            .give_up_after
            .is_some_and(|limit| first_failure.elapsed() >= limit)
            || self.at_most.is_some_and(|most| self.retries >= most)
        {
            return None;
        }
        Some(self.backoff.delay(self.retries + 1))
    }

    /// Counts a retry whose delay (from [`Retry::next_delay`]) has been waited.
    pub fn waited(&mut self) {
        self.retries = self.retries.saturating_add(1);
    }

    /// After a failure of `class`: waits the backoff and says `true` to try again, or says
    /// `false` at once (not transient, or past a limit).
    ///
    /// Cancel-safe: the retry is counted only after the wait, so a cancelled wait is waited
    /// again in full by the next call.
    pub async fn again(&mut self, class: ErrorClass) -> bool {
        let Some(delay) = self.next_delay(class) else {
            return false;
        };
        tokio::time::sleep(delay).await;
        self.waited();
        true
    }
}

/// Runs `operation` until it succeeds, fails with an error that is not transient, or `policy`
/// gives up; returns its last result. Each retried error is logged once here (`warn`), in the
/// caller's span; the error returned is not (its handler logs it).
///
/// Cancel-safe in the sense that dropping the future drops the attempt in flight (the
/// operation must tolerate that) and nothing else.
pub async fn retry<T, E, Operation, Attempt>(
    mut policy: Retry,
    mut operation: Operation,
) -> Result<T, E>
where
    Operation: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, E>>,
    E: ClassifiedError,
{
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(delay) = policy.next_delay(error.class()) else {
            return Err(error);
        };
        tracing::warn!(
            error = %error,
            code = %error.code(),
            retry = policy.retries() + 1,
            delay = ?delay,
            "transient error, retrying"
        );
        tokio::time::sleep(delay).await;
        policy.waited();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::ErrorCode;

    #[derive(Debug, thiserror::Error)]
    #[error("scripted {0}")]
    struct Scripted(ErrorClass);

    impl ClassifiedError for Scripted {
        fn class(&self) -> ErrorClass {
            self.0
        }
        fn code(&self) -> ErrorCode {
            ErrorCode(10900)
        }
        fn workaround(&self) -> &'static str {
            "none"
        }
    }

    const MILLISECOND: Duration = Duration::from_millis(1);

    #[test]
    fn delays_grow_by_the_factor_up_to_the_maximum() {
        let backoff = Backoff::doubling(100 * MILLISECOND, Duration::from_secs(1));
        let delays: Vec<u128> = (0..=7).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 100, 200, 400, 800, 1000, 1000, 1000]);
        let tripling = Backoff {
            factor: 3,
            ..backoff
        };
        assert_eq!(tripling.delay(3), 900 * MILLISECOND);
        let constant = Backoff {
            factor: 0,
            ..backoff
        };
        assert_eq!(constant.delay(5), 100 * MILLISECOND);
        // No overflow, however many retries.
        let huge = Backoff::doubling(Duration::from_secs(u64::MAX / 2), Duration::MAX);
        assert_eq!(huge.delay(u32::MAX), Duration::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn only_transient_failures_are_retried_until_the_time_limit() {
        let mut retry = Retry::new(Backoff::doubling(100 * MILLISECOND, Duration::from_secs(5)))
            .give_up_after(Some(Duration::from_secs(1)));
        assert!(!retry.again(ErrorClass::Definite).await);
        assert!(!retry.again(ErrorClass::Bug).await);
        let started = Instant::now();
        let mut retries = 0;
        while retry.again(ErrorClass::Transient).await {
            retries += 1;
        }
        // 100 + 200 + 400 ms, then 800 ms that end past the limit.
        assert_eq!((retries, retry.retries()), (4, 4));
        assert_eq!(started.elapsed(), 1500 * MILLISECOND);
        retry.reset();
        assert!(retry.again(ErrorClass::Transient).await);
        assert_eq!(started.elapsed(), 1600 * MILLISECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_limit_stops_after_that_many_retries() {
        let mut retry =
            Retry::new(Backoff::doubling(Duration::from_secs(1), Duration::MAX)).at_most(3);
        let started = Instant::now();
        let mut retries = 0;
        while retry.again(ErrorClass::Transient).await {
            retries += 1;
        }
        assert_eq!(retries, 3);
        assert_eq!(started.elapsed(), Duration::from_secs(1 + 2 + 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_is_not_counted() {
        let mut retry = Retry::new(Backoff::doubling(
            Duration::from_secs(1),
            Duration::from_secs(60),
        ));
        let cancelled =
            tokio::time::timeout(500 * MILLISECOND, retry.again(ErrorClass::Transient)).await;
        assert!(cancelled.is_err());
        assert_eq!(retry.retries(), 0);
        let started = Instant::now();
        assert!(retry.again(ErrorClass::Transient).await);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "the first delay again, in full"
        );
        assert_eq!(retry.retries(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_runs_the_operation_until_it_succeeds_or_fails_definitely() {
        let policy = Retry::new(Backoff::doubling(10 * MILLISECOND, Duration::from_secs(1)));
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let value = retry(policy.clone(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(Scripted(ErrorClass::Transient)),
                n => Ok(n),
            }
        })
        .await
        .expect("succeeds on the fourth call");
        assert_eq!(value, 3);
        assert_eq!(started.elapsed(), 70 * MILLISECOND);

        calls.store(0, Ordering::SeqCst);
        let error = retry(policy.clone(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Scripted(ErrorClass::Definite))
        })
        .await
        .expect_err("definite");
        assert_eq!(error.0, ErrorClass::Definite);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "never retried");

        calls.store(0, Ordering::SeqCst);
        let error = retry(policy.at_most(2), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Scripted(ErrorClass::Transient))
        })
        .await
        .expect_err("gives up");
        assert_eq!(error.0, ErrorClass::Transient);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
