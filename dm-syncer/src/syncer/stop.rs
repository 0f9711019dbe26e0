//! How a running syncer is asked to stop: [`StopRequest`] (at the next transaction end, or now)
//! read through a [`StopSignal`], which the event loop and every worker watch.
//!
//! ```text
//! caller --watch<bool> (true: at a transaction end)----+
//!        --watch<StopRequest>---------------------------+--> StopSignal
//!   event loop: between events, and while it waits for the next one (select on requested())
//!   workers:    before each batch, and while they wait to retry a failed one (Now only)
//! ```
//!
//! - **At a transaction end**: the loop stops reading at the next transaction end (right away
//!   when it waits at one: an idle upstream does not hold it for a heartbeat period), the
//!   workers apply everything dispatched, and the checkpoint is written there.
//! - **Now**: the loop stops reading at once, even inside an upstream transaction. Each worker
//!   finishes the batch in flight (commits it, or it fails and rolls back) and applies nothing
//!   more; what was queued and not applied is read again by the next run. The global checkpoint
//!   is written at the watermark, the last transaction end before which every change was
//!   acknowledged, and every worker's checkpoint committed with its last batch, so the next run
//!   neither loses nor repeats a change (`docs/design/checkpoint.md`, *prefix property*).
//!
//! A request only ever strengthens: `Continue` < `AtTransactionEnd` < `Now`.

use tokio::sync::watch;

/// What the syncer is asked to do about stopping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StopRequest {
    /// Keep replicating.
    #[default]
    Continue,
    /// Stop at the next transaction end, after applying everything read before it.
    AtTransactionEnd,
    /// Stop now: the batches in flight finish, nothing more is applied.
    Now,
}

/// The stop requests a syncer watches: a `watch::Receiver<bool>` (true: stop at a transaction
/// end, as `run` always took) or a `watch::Receiver<StopRequest>`. A dropped sender means no
/// further request.
#[derive(Clone, Debug)]
pub struct StopSignal {
    receiver: Receiver,
}

#[derive(Clone, Debug)]
enum Receiver {
    Flag(watch::Receiver<bool>),
    Request(watch::Receiver<StopRequest>),
}

impl From<watch::Receiver<bool>> for StopSignal {
    fn from(receiver: watch::Receiver<bool>) -> Self {
        StopSignal {
            receiver: Receiver::Flag(receiver),
        }
    }
}

impl From<watch::Receiver<StopRequest>> for StopSignal {
    fn from(receiver: watch::Receiver<StopRequest>) -> Self {
        StopSignal {
            receiver: Receiver::Request(receiver),
        }
    }
}

impl StopSignal {
    /// A signal that never asks to stop.
    pub fn never() -> Self {
        let (_, receiver) = watch::channel(StopRequest::Continue);
        receiver.into()
    }

    /// The request in force now.
    pub fn current(&self) -> StopRequest {
        match &self.receiver {
            Receiver::Flag(flag) if *flag.borrow() => StopRequest::AtTransactionEnd,
            Receiver::Flag(_) => StopRequest::Continue,
            Receiver::Request(request) => *request.borrow(),
        }
    }

    /// Resolves with the request in force once it asks to stop here: `Now` anywhere,
    /// `AtTransactionEnd` only when `at_transaction_end`. Pending forever once the sender is
    /// gone without such a request.
    ///
    /// Cancel-safe: it only waits for the watch channel to change (`changed`, cancel-safe) and
    /// reads the value again on every call, so a request that arrives while a cancelled call
    /// waited is seen by the next one.
    pub async fn requested(&mut self, at_transaction_end: bool) -> StopRequest {
        loop {
            let current = self.current();
            if current == StopRequest::Now
                || (current == StopRequest::AtTransactionEnd && at_transaction_end)
            {
                return current;
            }
            let changed = match &mut self.receiver {
                Receiver::Flag(flag) => flag.changed().await,
                Receiver::Request(request) => request.changed().await,
            };
            if changed.is_err() {
                // No sender: no request can come any more.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves once `Now` is requested (cancel-safe, as [`StopSignal::requested`]).
    pub async fn now(&mut self) {
        self.requested(false).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_seen_where_it_applies() {
        let (sender, receiver) = watch::channel(StopRequest::Continue);
        let mut signal = StopSignal::from(receiver);
        sender.send_replace(StopRequest::AtTransactionEnd);
        assert_eq!(signal.current(), StopRequest::AtTransactionEnd);
        // Inside a transaction, only `Now` ends the wait.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            signal.requested(false),
        )
        .await;
        assert!(waiting.is_err());
        assert_eq!(signal.requested(true).await, StopRequest::AtTransactionEnd);
        sender.send_replace(StopRequest::Now);
        signal.now().await;

        let (flag, receiver) = watch::channel(false);
        let signal = StopSignal::from(receiver);
        assert_eq!(signal.current(), StopRequest::Continue);
        flag.send_replace(true);
        assert_eq!(signal.current(), StopRequest::AtTransactionEnd);
        assert_eq!(StopSignal::never().current(), StopRequest::Continue);
    }
}
