//! DM's auto-resume policy ([`AutoResume`]): a subtask paused by a transient error resumes by
//! itself after a backoff that starts at 1 s and doubles up to 5 min, with jitter; a unit that
//! ran for 5 min without an error resets it. Errors that are not transient (definite, bugs)
//! and pauses by command are never resumed by themselves.
//!
//! DM's task checker looks every 5 s, so its waits round up to that; here the resume comes
//! when the backoff ends. These are DM's defaults; the source file's `checker` section sets
//! `enabled` (`check-enable`), `backoff_max` and `rollback` (`SubtaskSpec::new`).

use std::hash::BuildHasher;
use std::time::Duration;

use dm_core::Backoff;

/// When a subtask paused by a transient error resumes by itself.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoResume {
    /// Resume by itself at all (DM's `checker.check-enable`, true).
    pub enabled: bool,
    /// The first backoff (DM's `backoff-min`, 1 s).
    pub backoff_min: Duration,
    /// The longest backoff (DM's `backoff-max`, 5 min).
    pub backoff_max: Duration,
    /// Each backoff is this many times the previous one (DM's `backoff-factor`, 2).
    pub factor: u32,
    /// Add up to a quarter of the backoff at random, so that subtasks that failed together do
    /// not all resume together (DM's `backoff-jitter`, true).
    pub jitter: bool,
    /// A unit that ran this long without an error resets the backoff (DM's
    /// `backoff-rollback`, 5 min).
    pub rollback: Duration,
}

impl Default for AutoResume {
    fn default() -> Self {
        AutoResume {
            enabled: true,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            factor: 2,
            jitter: true,
            rollback: Duration::from_secs(300),
        }
    }
}

impl AutoResume {
    /// The exponential part of the policy, without the jitter (dm-core's [`Backoff`]).
    pub fn exponential(&self) -> Backoff {
        Backoff {
            initial: self.backoff_min,
            max: self.backoff_max,
            factor: self.factor,
        }
    }

    /// The wait before resume `attempt` (1 for the first since the backoff was reset).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let backoff = self.exponential().delay(attempt);
        if !self.jitter {
            return backoff;
        }
        // A random quarter at most: the hasher's keys are random per process and per call.
        let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
        let extra = backoff.mul_f64((random % 1000) as f64 / 4000.0);
        (backoff + extra).min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_maximum() {
        let policy = AutoResume {
            jitter: false,
            ..AutoResume::default()
        };
        let waits: Vec<u64> = (1..=11)
            .map(|attempt| policy.backoff(attempt).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        let jittered = AutoResume::default();
        for attempt in 1..20 {
            let wait = jittered.backoff(attempt);
            let plain = policy.backoff(attempt);
            assert!(wait >= plain && wait <= (plain + plain / 4).min(policy.backoff_max));
        }
    }
}
