//! `StreamController`: one source, the current `Location`, reconnects without gap or repeat, and
//! the `binlog skip | replace | inject | revert` operators.
//!
//! ```text
//!            open(start)                 next_event
//! BinlogSource ---------> EventStream ---------------> LocationTracker --> operators --> ControlledEvent
//!      ^                                   | transient error
//!      +--- reopen at the last transaction end (backoff), re-read up to what was delivered,
//!           deliver only what comes after it
//! ```
//!
//! Invariants:
//! - every real (non-artificial) upstream event is delivered at most once and, while the source
//!   can serve it, exactly once: after a reconnect the stream restarts at the end of the last
//!   complete transaction and the events up to the last delivered one are re-read into the
//!   tracker but not delivered again;
//! - a transient error (network, server restarting) is retried with exponential backoff
//!   (dm-core's `Retry`; each retry logged here with the position it reopens at); a
//!   definite one (purged binlog, bad credentials, a server-id the user set that is in use,
//!   malformed event, a position the upstream did not write) is returned and the controller
//!   reopens at the same point on the next call: it never moves a start past what is missing
//!   (pingcap/tiflow#3506);
//! - a start location with a GTID set opens and reopens by that set, which every server of the
//!   replication group resolves in its own binlog: after a failover to a replica (other server
//!   id, other file names, the same GTIDs) the stream goes on without gap or repeat. A start
//!   without one opens by file position, which the remote source checks against the server's
//!   identity and binlog ([`BinlogError::UpstreamChanged`] when it did not write it): the
//!   caller sets the identity stored with its checkpoint ([`BinlogSource::expect_upstream`]),
//!   and each open replaces it with the server's own, so that a reopen by position on another
//!   server (an address that moved to a replica) is refused too;
//! - an automatically chosen server-id that another replica takes is replaced, as DM does: the
//!   upstream ends our dump (transient [`BinlogError::ServerIdInUse`]), and the reopen, which
//!   may change the source ([`BinlogSource::open`] takes `&mut self`), registers with a free id;
//! - an operator applies once, to the event that starts at its position.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use dm_core::{
    Backoff, BinlogPosition, ClassifiedError, ErrorClass, Location, Retry, UpstreamIdentity,
};

use crate::error::BinlogError;
use crate::event::Event;
use crate::location::{EventLocations, LocationTracker};
use crate::remote::{RemoteOptions, RemoteSource};
use crate::stream::{EventStream, StartPoint, StreamEvent};

/// Opens event streams at a start point.
pub trait BinlogSource {
    /// The stream it opens.
    type Stream: EventStream + Send;

    /// Opens a stream at `start`. It may update the source with what the opening learned (the
    /// upstream's replacement for a taken automatic server id), so that reopens reuse it.
    fn open(
        &mut self,
        start: &StartPoint,
    ) -> impl Future<Output = Result<Self::Stream, BinlogError>> + Send;

    /// Sets the upstream server that wrote the file positions the next open starts at (the one
    /// stored with the checkpoint), when known: an open by position on a server of another
    /// identity is [`BinlogError::UpstreamChanged`]; an open by GTID set is never refused for
    /// it. A source that cannot tell servers apart (the relay log) ignores it.
    fn expect_upstream(&mut self, upstream: Option<UpstreamIdentity>);

    /// The upstream server that wrote the positions of the last stream opened (before the
    /// first open, the one [`BinlogSource::expect_upstream`] set); `None` when not known (the
    /// relay log).
    fn upstream_identity(&self) -> Option<&UpstreamIdentity>;
}

impl BinlogSource for RemoteOptions {
    type Stream = RemoteSource;

    /// Connects; an automatic server id replaced at connect time is kept for the next reopen,
    /// and so is the server's identity (a reopen starts at a position this server wrote).
    async fn open(&mut self, start: &StartPoint) -> Result<RemoteSource, BinlogError> {
        let stream = RemoteSource::connect(self, start).await?;
        self.server_id = stream.server_id();
        self.upstream_identity = Some(stream.upstream_identity().clone());
        Ok(stream)
    }

    fn expect_upstream(&mut self, upstream: Option<UpstreamIdentity>) {
        self.upstream_identity = upstream;
    }

    fn upstream_identity(&self) -> Option<&UpstreamIdentity> {
        self.upstream_identity.as_ref()
    }
}

/// What an operator does with the event at its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// Drop the event (`binlog skip`).
    Skip,
    /// Deliver these events instead (`binlog replace`).
    Replace(Vec<Event>),
    /// Deliver these events before it (`binlog inject`).
    Inject(Vec<Event>),
}

/// Where a delivered event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Read from the upstream binlog.
    Upstream,
    /// Made by an operator; `suffix` numbers it among the events made at that position.
    Operator {
        /// 1, 2, ...
        suffix: u32,
    },
}

/// One delivered event with its locations.
#[derive(Clone, Debug)]
pub struct ControlledEvent {
    /// The event.
    pub event: StreamEvent,
    /// Its start, end and whether it closed a transaction.
    pub locations: EventLocations,
    /// Upstream or operator.
    pub origin: Origin,
}

/// Reconnection policy.
#[derive(Clone, Debug)]
pub struct ReconnectPolicy {
    /// First wait after a failure.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Stop retrying (return the last error) after failing for this long; `None` retries
    /// forever, as a MySQL replica does.
    pub give_up_after: Option<Duration>,
}

impl ReconnectPolicy {
    /// The retries of one reopen under this policy: doubling from `initial_backoff` up to
    /// `max_backoff`, for at most `give_up_after`.
    pub fn retry(&self) -> Retry {
        Retry::new(Backoff::doubling(self.initial_backoff, self.max_backoff))
            .give_up_after(self.give_up_after)
    }
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            give_up_after: None,
        }
    }
}

/// Owns a source and the stream position.
#[derive(Debug)]
pub struct StreamController<Source: BinlogSource> {
    source: Source,
    stream: Option<Source::Stream>,
    tracker: LocationTracker,
    resume_by_gtid: bool,
    /// The end of the last delivered real event: a replay after a reconnect stops there.
    delivered_end: BinlogPosition,
    replay_until: Option<BinlogPosition>,
    operators: BTreeMap<String, (BinlogPosition, Operator)>,
    pending: VecDeque<ControlledEvent>,
    policy: ReconnectPolicy,
    opened_once: bool,
    reconnects: u64,
    replayed: u64,
    last_error: Option<String>,
}

impl<Source: BinlogSource> StreamController<Source> {
    /// A controller that will start at `start` (connecting on the first `next_event`).
    /// `start.gtid_set` set means GTID mode: reconnects resume by GTID set.
    pub fn new(source: Source, start: Location, policy: ReconnectPolicy) -> Self {
        StreamController {
            source,
            stream: None,
            resume_by_gtid: start.gtid_set.is_some(),
            delivered_end: start.position.clone(),
            tracker: LocationTracker::new(start),
            replay_until: None,
            operators: BTreeMap::new(),
            pending: VecDeque::new(),
            policy,
            opened_once: false,
            reconnects: 0,
            replayed: 0,
            last_error: None,
        }
    }

    /// Moves to another start point: the current stream is dropped and the next call opens one
    /// there (`binlog` reset, or switching between relay and remote with [`Self::replace_source`]).
    pub fn reset(&mut self, start: Location) {
        self.stream = None;
        self.resume_by_gtid = start.gtid_set.is_some();
        self.delivered_end = start.position.clone();
        self.tracker = LocationTracker::new(start);
        self.replay_until = None;
        self.pending.clear();
    }

    /// The source (for a remote one, the server id in use).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Switches to another source at the last transaction end (relay to remote or back).
    pub fn replace_source(&mut self, source: Source) {
        let upstream = self.source.upstream_identity().cloned();
        self.source = source;
        // The positions delivered so far are still that server's.
        self.source.expect_upstream(upstream);
        self.stream = None;
    }

    /// The end of the last complete transaction delivered: the safe checkpoint.
    pub fn transaction_end(&self) -> &Location {
        self.tracker.transaction_end()
    }

    /// Where the next event starts.
    pub fn current(&self) -> &Location {
        self.tracker.current()
    }

    /// How many times the stream was reopened after an error.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// How many events were read again after reconnects (the part of a transaction delivered
    /// before the connection broke) and not delivered twice.
    pub fn replayed_events(&self) -> u64 {
        self.replayed
    }

    /// The last error that caused a reconnect, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Sets the operator for the event starting at `at`; returns the one it replaces.
    pub fn set_operator(&mut self, at: BinlogPosition, operator: Operator) -> Option<Operator> {
        self.operators
            .insert(at.to_string(), (at, operator))
            .map(|(_, old)| old)
    }

    /// Removes the operator at `at` (`binlog revert`).
    pub fn revert_operator(&mut self, at: &BinlogPosition) -> Option<Operator> {
        self.operators
            .remove(&at.to_string())
            .map(|(_, operator)| operator)
    }

    /// The operators not applied yet.
    pub fn operators(&self) -> impl Iterator<Item = (&BinlogPosition, &Operator)> {
        self.operators
            .values()
            .map(|(position, operator)| (position, operator))
    }

    /// The next event; `None` when the source ended.
    pub async fn next_event(&mut self) -> Result<Option<ControlledEvent>, BinlogError> {
        loop {
            if let Some(ready) = self.pending.pop_front() {
                return Ok(Some(ready));
            }
            let Some(stream) = self.stream.as_mut() else {
                self.open().await?;
                continue;
            };
            match stream.next_event().await {
                Ok(Some(event)) => self.accept(event),
                Ok(None) => return Ok(None),
                Err(error) if error.class() == ErrorClass::Transient => {
                    tracing::warn!(
                        position = %self.tracker.transaction_end(),
                        error = %error,
                        code = %error.code(),
                        "binlog stream broke, reconnecting"
                    );
                    self.last_error = Some(error.to_string());
                    self.stream = None;
                }
                Err(error) => {
                    self.stream = None;
                    return Err(error);
                }
            }
        }
    }

    /// Opens the stream at the last transaction end, retrying transient failures (each logged
    /// here, with the position it reopens at; the error returned is not).
    async fn open(&mut self) -> Result<(), BinlogError> {
        let mut retry = self.policy.retry();
        let reopening = self.opened_once;
        loop {
            self.tracker.rewind();
            let resume = self.tracker.transaction_end().clone();
            let start = match (&resume.gtid_set, self.resume_by_gtid) {
                (Some(set), true) => StartPoint::Gtid(set.as_ref().clone()),
                _ => StartPoint::Position(resume.position.clone()),
            };
            let before = self.source.upstream_identity().cloned();
            match self.source.open(&start).await {
                Ok(stream) => {
                    let mid_transaction = resume.position != self.delivered_end;
                    if reopening
                        && mid_transaction
                        && let (Some(previous), Some(current)) =
                            (&before, self.source.upstream_identity())
                        && !previous.same_server(current)
                    {
                        // The delivered part's positions are the other server's: nothing here
                        // matches them, so neither skip nor deliver again; start over from the
                        // checkpoint.
                        return Err(BinlogError::UpstreamChangedMidTransaction {
                            at: resume.to_string(),
                            previous: previous.to_string(),
                            current: current.to_string(),
                        });
                    }
                    self.stream = Some(stream);
                    self.opened_once = true;
                    if reopening {
                        self.reconnects += 1;
                        tracing::info!(
                            position = %resume,
                            reconnects = self.reconnects,
                            "binlog stream reopened"
                        );
                    } else {
                        tracing::debug!(position = %resume, start = %start, "binlog stream opened");
                    }
                    self.replay_until =
                        (resume.position != self.delivered_end).then(|| self.delivered_end.clone());
                    return Ok(());
                }
                Err(error) => {
                    let class = error.class();
                    if class == ErrorClass::Transient {
                        self.last_error = Some(error.to_string());
                    }
                    let Some(delay) = retry.next_delay(class) else {
                        return Err(error);
                    };
                    tracing::warn!(
                        position = %resume,
                        error = %error,
                        code = %error.code(),
                        retry = retry.retries() + 1,
                        delay = ?delay,
                        "cannot open the binlog stream, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retry.waited();
                }
            }
        }
    }

    fn accept(&mut self, event: StreamEvent) {
        let locations = self.tracker.observe(&event);
        if let Some(until) = &self.replay_until {
            let replayed = event.artificial
                || event
                    .next_position
                    .partial_cmp(until)
                    .is_some_and(|order| order.is_le());
            if replayed {
                if !event.artificial {
                    self.replayed += 1;
                }
                if event.next_position == *until && !event.artificial {
                    self.replay_until = None;
                }
                return;
            }
            self.replay_until = None;
        }
        if !event.artificial {
            self.delivered_end = event.next_position.clone();
        }
        let operator = if event.artificial || self.operators.is_empty() {
            None
        } else {
            self.operators
                .remove(&event.position.to_string())
                .map(|(_, operator)| operator)
        };
        match operator {
            None => self.pending.push_back(ControlledEvent {
                event,
                locations,
                origin: Origin::Upstream,
            }),
            Some(Operator::Skip) => {}
            Some(Operator::Replace(events)) => {
                let count = events.len();
                for (index, made) in events.into_iter().enumerate() {
                    let suffix = index as u32 + 1;
                    let mut made_locations = self.made_locations(&locations, suffix);
                    if index + 1 == count {
                        made_locations.end = locations.end.clone();
                        made_locations.at_transaction_end = locations.at_transaction_end;
                    }
                    self.pending.push_back(ControlledEvent {
                        event: made_event(&event, made),
                        locations: made_locations,
                        origin: Origin::Operator { suffix },
                    });
                }
            }
            Some(Operator::Inject(events)) => {
                let count = events.len() as u32;
                for (index, made) in events.into_iter().enumerate() {
                    let suffix = index as u32 + 1;
                    self.pending.push_back(ControlledEvent {
                        event: made_event(&event, made),
                        locations: self.made_locations(&locations, suffix),
                        origin: Origin::Operator { suffix },
                    });
                }
                // The original event comes after the injected ones: its start's suffix says
                // so, so that locations at this position keep the stream's order.
                let mut locations = locations;
                locations.start.suffix = count + 1;
                self.pending.push_back(ControlledEvent {
                    event,
                    locations,
                    origin: Origin::Upstream,
                });
            }
        }
    }

    fn made_locations(&self, original: &EventLocations, suffix: u32) -> EventLocations {
        let mut start = original.start.clone();
        start.suffix = suffix;
        EventLocations {
            end: start.clone(),
            start,
            at_transaction_end: false,
        }
    }
}

fn made_event(original: &StreamEvent, event: Event) -> StreamEvent {
    StreamEvent {
        event,
        raw: Vec::new(),
        position: original.position.clone(),
        next_position: original.position.clone(),
        artificial: false,
    }
}

/// Where to read a relay directory from.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// The relay directory.
    pub root: std::path::PathBuf,
    /// The sub-directory to start in; `None` takes the newest one that has the start file.
    pub subdirectory: Option<String>,
    /// Wait for new events at the end (a syncer does); otherwise the stream ends there.
    pub follow: bool,
}

impl BinlogSource for RelayOptions {
    type Stream = crate::relay::RelaySource;

    async fn open(&mut self, start: &StartPoint) -> Result<Self::Stream, BinlogError> {
        let StartPoint::Position(position) = start else {
            return Err(BinlogError::Unsupported {
                address: self.root.display().to_string(),
                reason: format!(
                    "the relay log is read from a file position, not from {start}; start from the relay's position or read the upstream directly"
                ),
            });
        };
        match &self.subdirectory {
            Some(subdirectory) => {
                crate::relay::RelaySource::open_in(&self.root, subdirectory, position, self.follow)
            }
            None => crate::relay::RelaySource::open(&self.root, position, self.follow),
        }
    }

    /// Ignored: a start from the relay log is not checked by identity. The relay keeps a
    /// sub-directory per upstream server (named by its server_uuid), but which server a
    /// position read from it belongs to is not wired through to here yet.
    fn expect_upstream(&mut self, _upstream: Option<UpstreamIdentity>) {}

    /// Not known (see [`BinlogSource::expect_upstream`] of [`RelayOptions`]): a checkpoint of a
    /// position read from the relay log is stored without an identity, so the next start by
    /// position is checked against the binlog index only.
    fn upstream_identity(&self) -> Option<&UpstreamIdentity> {
        None
    }
}

/// The upstream or the relay log, chosen at run time (DM's "remote" and "local" binlog types);
/// [`StreamController::replace_source`] switches between them at the last transaction end.
#[derive(Clone, Debug)]
pub enum AnyBinlogSource {
    /// The upstream server, as a replica.
    Remote(RemoteOptions),
    /// A relay directory.
    Relay(RelayOptions),
}

/// The stream of an [`AnyBinlogSource`].
#[derive(Debug)]
pub enum AnyEventStream {
    /// From the upstream.
    Remote(Box<RemoteSource>),
    /// From the relay log.
    Relay(Box<crate::relay::RelaySource>),
}

impl EventStream for AnyEventStream {
    async fn next_event(&mut self) -> Result<Option<StreamEvent>, BinlogError> {
        match self {
            AnyEventStream::Remote(stream) => stream.next_event().await,
            AnyEventStream::Relay(stream) => stream.next_event().await,
        }
    }
}

impl BinlogSource for AnyBinlogSource {
    type Stream = AnyEventStream;

    async fn open(&mut self, start: &StartPoint) -> Result<AnyEventStream, BinlogError> {
        Ok(match self {
            AnyBinlogSource::Remote(options) => {
                AnyEventStream::Remote(Box::new(options.open(start).await?))
            }
            AnyBinlogSource::Relay(options) => {
                AnyEventStream::Relay(Box::new(options.open(start).await?))
            }
        })
    }

    fn expect_upstream(&mut self, upstream: Option<UpstreamIdentity>) {
        match self {
            AnyBinlogSource::Remote(options) => options.expect_upstream(upstream),
            AnyBinlogSource::Relay(options) => options.expect_upstream(upstream),
        }
    }

    fn upstream_identity(&self) -> Option<&UpstreamIdentity> {
        match self {
            AnyBinlogSource::Remote(options) => options.upstream_identity(),
            AnyBinlogSource::Relay(options) => options.upstream_identity(),
        }
    }
}
