//! The subtask's driver: one named task per subtask that runs the units of its task mode in
//! order, answers commands while they run, publishes the status, and resumes after transient
//! errors.
//!
//! ```text
//! Subtask::spawn --> task "subtask <task>/<source>": loop
//!   Running:  attempt of the current phase, selecting on (cancel-safe each):
//!               the unit's future (polled in place, never dropped by another branch)
//!               commands (mpsc recv)          -> pause / stop / binlog operator
//!               progress (interval tick; the syncer's watch `changed`)
//!             full phase: FullStages::run(mode)  (dump, load: cancelled by dropping it)
//!             sync phase: dm_syncer::run from the hand-off / checkpoint / start point
//!                         (stopped through its StopSignal: AtTransactionEnd or Now)
//!   outcome:  done -> next phase, or Finished      stopped -> Stopped
//!             paused -> Paused until resume         restart (operator while syncing) -> again
//!             failed -> Paused with the error; transient: resume after the backoff
//! ```
//!
//! Invariants: a unit's future is dropped only to pause or stop a dump or load (chunks in
//! flight roll back; a finished chunk is never loaded again) or when the subtask itself is
//! dropped; the sync unit always ends through its stop signal, so its checkpoints are written.
//! No lock is held: the status is the driver's own, published by `send_replace`.
//!
//! Logging: the task runs in the span `subtask{task, source}`, so every event of the units it
//! drives carries both. Start, stop, pause, resume, auto-resume, unit changes and binlog
//! operators are `info`; a unit's error is logged here, once, when it pauses the subtask
//! (`warn` when it resumes by itself, `error` otherwise): the units return errors, not log them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dm_binlog::{Event, Operator};
use dm_core::{BinlogPosition, ClassifiedError, ErrorClass, Flavor, Location};
use dm_dumpload::{FullStages, Handoff, Loader, Progress};
use dm_syncer::{StopRequest, SyncerSettings, SyncerStatus};
use dm_task::config::TaskMode;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::error::SubtaskError;
use crate::handle::{BinlogOperation, COMMAND_QUEUE, Command, Envelope, SubtaskHandle};
use crate::spec::SubtaskSpec;
use crate::status::{
    AutoResumeStatus, LoadStatus, ProcessError, ProcessResult, Stage, SubtaskStatus, Unit,
};

/// One source of one task, not started yet.
#[derive(Debug)]
pub struct Subtask {
    spec: SubtaskSpec,
}

impl Subtask {
    /// A subtask that runs `spec`.
    pub fn new(spec: SubtaskSpec) -> Subtask {
        Subtask { spec }
    }

    /// What it runs.
    pub fn spec(&self) -> &SubtaskSpec {
        &self.spec
    }

    /// Starts it on the current runtime as the task `subtask <task>/<source>` (the name the
    /// handle and its errors carry; tokio names tasks only under `tokio_unstable`), owned by
    /// the returned handle: dropping the handle aborts the task.
    pub fn spawn(self) -> SubtaskHandle {
        let name = self.spec.name();
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let status = SubtaskStatus::new(
            &self.spec.task.name,
            &self.spec.source.source_id,
            self.spec.mode,
        );
        let (sender, status) = watch::channel(status);
        let mut report = Report::new(sender, &self.spec);
        // Operators given with the spec (a command line's `--skip`) apply like registered ones.
        let operators = self.spec.syncer.operators.clone();
        report.status.operators = operators
            .iter()
            .map(|(position, operator)| format!("{} at {position}", operator_name(operator)))
            .collect();
        report.publish();
        let driver = Driver {
            report,
            spec: self.spec,
            commands: receiver,
            operators,
            resolved: Resolved::default(),
        };
        // The task's name: every event of the subtask and of the units it drives carries
        // `subtask{task, source}`.
        let span = tracing::info_span!(
            "subtask",
            task = %driver.spec.task.name,
            source = %driver.spec.source.source_id,
        );
        let task = tokio::spawn(driver.run().instrument(span));
        SubtaskHandle {
            name,
            commands,
            status,
            task: Some(task),
        }
    }
}

/// The phases of a task mode: dump and load (`FullStages`), then sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Full,
    Sync,
}

/// How an attempt of a phase ended.
enum Outcome {
    /// The phase is done: the next phase, or the subtask finished.
    Done,
    Stopped,
    Paused,
    /// An operator was registered while syncing: run the sync unit again at once.
    Restart,
    /// It failed; the position of the event that caused it, when an event did.
    Failed(SubtaskError, Option<BinlogPosition>),
}

/// What a command asks of a running unit, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Request {
    Restart,
    Pause,
    Stop(StopRequest),
}

impl Request {
    /// What the sync unit is told: at a transaction end only for a stop that asks so.
    fn stop_request(self) -> StopRequest {
        match self {
            Request::Stop(request) => request,
            Request::Restart | Request::Pause => StopRequest::Now,
        }
    }
}

/// What is learnt once and kept across attempts.
#[derive(Default)]
struct Resolved {
    flavor: Option<Flavor>,
    /// The incremental start (meta, a location, a time), once resolved.
    start: Option<Location>,
    /// Where the sync unit starts after dump and load.
    handoff: Option<Handoff>,
}

impl Resolved {
    async fn flavor(&mut self, spec: &SubtaskSpec) -> Result<Flavor, SubtaskError> {
        if let Some(flavor) = self.flavor {
            return Ok(flavor);
        }
        let flavor = spec.upstream_flavor().await?;
        self.flavor = Some(flavor);
        Ok(flavor)
    }

    async fn sync_start(
        &mut self,
        spec: &SubtaskSpec,
        flavor: Flavor,
    ) -> Result<Location, SubtaskError> {
        if let Some(handoff) = &self.handoff {
            return Ok(handoff.location.clone());
        }
        if let Some(start) = &self.start {
            return Ok(start.clone());
        }
        let start = match spec.start_location(flavor).await {
            Ok(start) => start,
            // No start point, but a checkpoint: the syncer resumes there (DM too needs no meta
            // once the task has a checkpoint).
            Err(error @ SubtaskError::StartPoint { .. }) => {
                match spec.stored_checkpoint(flavor).await? {
                    Some(checkpoint) => checkpoint,
                    None => return Err(error),
                }
            }
            Err(error) => return Err(error),
        };
        self.start = Some(start.clone());
        Ok(start)
    }
}

/// The status and the counters it is made from.
struct Report {
    status: SubtaskStatus,
    sender: watch::Sender<SubtaskStatus>,
    dump: Arc<Progress>,
    load: Arc<Progress>,
}

impl Report {
    fn new(sender: watch::Sender<SubtaskStatus>, spec: &SubtaskSpec) -> Self {
        let status = sender.borrow().clone();
        let mut report = Report {
            status,
            sender,
            dump: Arc::new(Progress::new()),
            load: Arc::new(Progress::new()),
        };
        if matches!(spec.mode, TaskMode::All | TaskMode::Full | TaskMode::Dump) {
            report.status.dump = Some(Default::default());
        }
        if matches!(
            spec.mode,
            TaskMode::All | TaskMode::Full | TaskMode::Load | TaskMode::LoadAndSync
        ) {
            report.status.load = Some(LoadStatus::default());
        }
        report
    }

    fn publish(&self) {
        self.sender.send_replace(self.status.clone());
    }

    /// `unit` runs now (logged when it changes).
    fn enter(&mut self, unit: Unit) {
        if self.status.unit != Some(unit) {
            tracing::info!(
                unit = unit.name(),
                from = self.status.unit.map_or("none", Unit::name),
                "unit started"
            );
            self.status.unit = Some(unit);
        }
    }

    /// The dump's and load's counters into the status, and which of the two runs.
    fn refresh_full(&mut self) {
        let dumped = self.dump.status();
        let loaded = self.load.status();
        let loading = match self.status.mode {
            TaskMode::Load | TaskMode::LoadAndSync => true,
            TaskMode::Dump => false,
            _ => loaded.chunks_total > 0 || dumped.percent >= 100.0,
        };
        self.enter(if loading { Unit::Load } else { Unit::Dump });
        if let Some(dump) = &mut self.status.dump {
            *dump = dumped;
        }
        if let Some(load) = &mut self.status.load {
            load.progress = loaded;
        }
        self.publish();
    }

    fn sync(&mut self, sync: SyncerStatus) {
        self.enter(Unit::Sync);
        self.status.sync = Some(sync);
        self.publish();
    }
}

/// The driver: the spec, the command queue, the status, the registered operators.
struct Driver {
    spec: SubtaskSpec,
    commands: mpsc::Receiver<Envelope>,
    report: Report,
    /// `binlog skip | replace | inject`, kept for every later start of the sync unit (an
    /// operator behind the checkpoint never matches again).
    operators: Vec<(BinlogPosition, Operator)>,
    resolved: Resolved,
}

/// Answers a command that arrives while a unit runs; returns what it asks of the unit. No
/// command (every handle gone) is a stop now.
fn accept(
    envelope: Option<Envelope>,
    report: &mut Report,
    operators: &mut Vec<(BinlogPosition, Operator)>,
) -> Option<Request> {
    let Some(Envelope { command, reply }) = envelope else {
        return Some(Request::Stop(StopRequest::Now));
    };
    let (answer, request) = match command {
        Command::Pause => (Ok(()), Some(Request::Pause)),
        Command::Resume => (Ok(()), None),
        Command::Stop(kind) => (Ok(()), Some(Request::Stop(kind))),
        Command::Binlog { operation, at } => match register(operation, at, report, operators) {
            Ok(()) => (Ok(()), Some(Request::Restart)),
            Err(error) => (Err(error), None),
        },
    };
    let _ = reply.send(answer);
    request
}

/// Registers `operation` at `at`, or at the position of the event whose error paused the
/// subtask.
fn register(
    operation: BinlogOperation,
    at: Option<BinlogPosition>,
    report: &mut Report,
    operators: &mut Vec<(BinlogPosition, Operator)>,
) -> Result<(), SubtaskError> {
    let position = at
        .or_else(|| report.status.error()?.position.clone())
        .ok_or(SubtaskError::NoErrorPosition {
            operation: operation.name(),
        })?;
    report
        .status
        .operators
        .push(format!("{} at {position}", operation.name()));
    let statements = |statements: Vec<String>| -> Vec<Event> {
        statements
            .iter()
            .map(|sql| Event::statement("", sql))
            .collect()
    };
    let operator = match operation {
        BinlogOperation::Skip => Operator::Skip,
        BinlogOperation::Replace(sql) => Operator::Replace(statements(sql)),
        BinlogOperation::Inject(sql) => Operator::Inject(statements(sql)),
    };
    tracing::info!(
        operation = operator_name(&operator),
        at = %position,
        "binlog operator registered"
    );
    operators.retain(|(known, _)| *known != position);
    operators.push((position, operator));
    report.publish();
    Ok(())
}

/// `skip`, `replace` or `inject`.
fn operator_name(operator: &Operator) -> &'static str {
    match operator {
        Operator::Skip => "skip",
        Operator::Replace(_) => "replace",
        Operator::Inject(_) => "inject",
    }
}

/// What a paused subtask does next.
enum AfterPause {
    Resume,
    Stop,
}

/// The driver's fields, borrowed apart: a unit's future borrows the spec and what is resolved
/// while the select loop answers commands and publishes the status.
type Parts<'a> = (
    &'a SubtaskSpec,
    &'a mut mpsc::Receiver<Envelope>,
    &'a mut Report,
    &'a mut Vec<(BinlogPosition, Operator)>,
    &'a mut Resolved,
);

impl Driver {
    fn parts(&mut self) -> Parts<'_> {
        (
            &self.spec,
            &mut self.commands,
            &mut self.report,
            &mut self.operators,
            &mut self.resolved,
        )
    }

    async fn run(mut self) -> SubtaskStatus {
        let mut phase = if self.spec.mode == TaskMode::Incremental {
            Phase::Sync
        } else {
            Phase::Full
        };
        tracing::info!(mode = self.spec.mode.name(), "subtask started");
        loop {
            self.report.status.stage = Stage::Running;
            self.report.status.result = None;
            self.report.status.auto_resume.backoff = None;
            self.report.publish();
            let started = Instant::now();
            let outcome = match phase {
                Phase::Full => self.attempt_full().await,
                Phase::Sync => self.attempt_sync().await,
            };
            let after = match outcome {
                Outcome::Done if phase == Phase::Full && self.spec.syncs() => {
                    phase = Phase::Sync;
                    continue;
                }
                Outcome::Done => return self.end(Stage::Finished),
                Outcome::Stopped => return self.end(Stage::Stopped),
                Outcome::Restart => continue,
                Outcome::Paused => {
                    tracing::info!("subtask paused");
                    self.report.status.result = Some(ProcessResult {
                        is_canceled: true,
                        errors: Vec::new(),
                    });
                    self.paused().await
                }
                Outcome::Failed(error, position) => {
                    // The error's own unit where it tells (dump and load run side by side
                    // when streaming, so the current unit may be the other one).
                    let unit = match phase {
                        Phase::Full => unit_of_full_error(&error),
                        Phase::Sync => None,
                    }
                    .or(self.report.status.unit)
                    .unwrap_or(match phase {
                        Phase::Full => Unit::Dump,
                        Phase::Sync => Unit::Sync,
                    });
                    if phase == Phase::Full {
                        self.report.enter(unit);
                    }
                    let report = ProcessError::of(&error, unit, position);
                    // The one place a unit's error is logged: the units return it, the subtask
                    // handles it by pausing.
                    let at = report.position.as_ref().map(ToString::to_string);
                    if error.class() == ErrorClass::Transient && self.spec.auto_resume.enabled {
                        tracing::warn!(
                            unit = unit.name(),
                            error = %error,
                            code = %error.code(),
                            at,
                            "subtask paused by a transient error; it resumes by itself"
                        );
                    } else {
                        tracing::error!(
                            unit = unit.name(),
                            error = %error,
                            code = %error.code(),
                            class = %error.class(),
                            at,
                            workaround = error.workaround(),
                            "subtask paused by an error"
                        );
                    }
                    self.report.status.result = Some(ProcessResult {
                        is_canceled: false,
                        errors: vec![report.clone()],
                    });
                    if error.class() == ErrorClass::Transient && self.spec.auto_resume.enabled {
                        self.backoff(report, started.elapsed()).await
                    } else {
                        self.paused().await
                    }
                }
            };
            if let AfterPause::Stop = after {
                return self.end(Stage::Stopped);
            }
        }
    }

    fn end(&mut self, stage: Stage) -> SubtaskStatus {
        tracing::info!(stage = stage.name(), "subtask ended");
        self.report.status.stage = stage;
        self.report.status.auto_resume.backoff = None;
        self.report.publish();
        self.report.status.clone()
    }

    /// Paused (by a command, or by an error that does not resume by itself): waits for resume,
    /// a binlog operator (then resumes) or stop.
    async fn paused(&mut self) -> AfterPause {
        self.report.status.stage = Stage::Paused;
        self.report.publish();
        loop {
            let Some(Envelope { command, reply }) = self.commands.recv().await else {
                return AfterPause::Stop;
            };
            let (answer, after) = match command {
                Command::Pause => (Ok(()), None),
                Command::Resume => {
                    tracing::info!("subtask resumed");
                    (Ok(()), Some(AfterPause::Resume))
                }
                Command::Stop(_) => (Ok(()), Some(AfterPause::Stop)),
                Command::Binlog { operation, at } => {
                    match register(operation, at, &mut self.report, &mut self.operators) {
                        Ok(()) => (Ok(()), Some(AfterPause::Resume)),
                        Err(error) => (Err(error), None),
                    }
                }
            };
            let _ = reply.send(answer);
            if let Some(after) = after {
                return after;
            }
        }
    }

    /// Paused by a transient error: resumes after the backoff, unless a command comes first
    /// (resume: now; pause: a manual pause; stop).
    async fn backoff(&mut self, error: ProcessError, ran: Duration) -> AfterPause {
        let policy = &self.spec.auto_resume;
        let auto = &mut self.report.status.auto_resume;
        if ran >= policy.rollback {
            auto.attempts = 0;
        }
        auto.attempts += 1;
        auto.total_attempts += 1;
        let wait = policy.backoff(auto.attempts);
        *auto = AutoResumeStatus {
            last_error: Some(error),
            backoff: Some(wait),
            ..auto.clone()
        };
        self.report.status.stage = Stage::Paused;
        self.report.publish();
        let attempt = self.report.status.auto_resume.attempts;
        tracing::info!(attempt, backoff = ?wait, "auto-resume scheduled");
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            // Cancel safety: `Sleep` and `mpsc::Receiver::recv` are cancel-safe.
            let envelope = tokio::select! {
                _ = &mut deadline => {
                    tracing::info!(attempt, "subtask auto-resumed");
                    return AfterPause::Resume;
                }
                envelope = self.commands.recv() => envelope,
            };
            let Some(Envelope { command, reply }) = envelope else {
                return AfterPause::Stop;
            };
            match command {
                Command::Resume => {
                    tracing::info!("subtask resumed before its auto-resume");
                    let _ = reply.send(Ok(()));
                    return AfterPause::Resume;
                }
                Command::Stop(_) => {
                    let _ = reply.send(Ok(()));
                    return AfterPause::Stop;
                }
                Command::Pause => {
                    tracing::info!("subtask paused; auto-resume cancelled");
                    let _ = reply.send(Ok(()));
                    self.report.status.auto_resume.backoff = None;
                    return self.paused().await;
                }
                Command::Binlog { operation, at } => {
                    let answer = register(operation, at, &mut self.report, &mut self.operators);
                    let accepted = answer.is_ok();
                    let _ = reply.send(answer);
                    if accepted {
                        return AfterPause::Resume;
                    }
                }
            }
        }
    }

    /// Dump and load as the mode asks ([`FullStages`]); pausing or stopping cancels them.
    async fn attempt_full(&mut self) -> Outcome {
        let (spec, commands, report, operators, resolved) = self.parts();
        let (dump_progress, load_progress) = (report.dump.clone(), report.load.clone());
        let handoff = {
            let full = async {
                let flavor = resolved.flavor(spec).await?;
                let config = spec
                    .dump_load
                    .as_ref()
                    .ok_or_else(|| SubtaskError::StartPoint {
                        file: spec.task_file.clone(),
                        reason: "the task mode runs no dump or load".into(),
                    })?;
                let loader = Loader::new(
                    config.load_options(&spec.task, &spec.instance),
                    spec.rules.router.clone(),
                )?;
                let stages = FullStages {
                    config,
                    dump: config.dump_options(&spec.source.from, flavor),
                    filter: &spec.rules.block_allow_list,
                    loader: &loader,
                    dump_progress,
                    load_progress,
                    clean_dump_file: spec.task.clean_dump_file,
                };
                Ok::<_, SubtaskError>(stages.run(spec.mode).await?)
            };
            tokio::pin!(full);
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                // Cancel safety: `full` is polled in place and only dropped on purpose (pause,
                // stop); `Interval::tick` and `mpsc::Receiver::recv` are cancel-safe.
                tokio::select! {
                    biased;
                    result = &mut full => break result,
                    _ = tick.tick() => report.refresh_full(),
                    envelope = commands.recv() => {
                        match accept(envelope, report, operators) {
                            // The operator waits for the sync unit.
                            None | Some(Request::Restart) => {}
                            Some(Request::Pause) => return Outcome::Paused,
                            Some(Request::Stop(_)) => return Outcome::Stopped,
                        }
                    }
                }
            }
        };
        report.refresh_full();
        match handoff {
            Ok(handoff) => {
                if let (Some(load), Some(handoff)) = (&mut report.status.load, &handoff) {
                    load.handoff = Some(handoff.location.clone());
                    load.warnings = handoff.warnings.clone();
                }
                report.publish();
                resolved.handoff = handoff;
                Outcome::Done
            }
            Err(error) => Outcome::Failed(error, None),
        }
    }

    /// The syncer from the hand-off, the checkpoint or the start point, until the source ends
    /// or a command stops it (through its stop signal, so its checkpoints are written).
    async fn attempt_sync(&mut self) -> Outcome {
        let (spec, commands, report, operators, resolved) = self.parts();
        let (stop_sender, stop) = watch::channel(StopRequest::Continue);
        let (progress, mut updates) =
            watch::channel(report.status.sync.clone().unwrap_or_default());
        let registered = operators.clone();
        report.enter(Unit::Sync);
        report.status.sync.get_or_insert_with(SyncerStatus::default);
        report.publish();
        let mut requested: Option<Request> = None;
        let result = {
            let sync = async {
                let flavor = resolved.flavor(spec).await?;
                let start = resolved.sync_start(spec, flavor).await?;
                let settings = SyncerSettings {
                    flavor,
                    upstream: Some(spec.remote.clone()),
                    operators: registered,
                    safe_mode_until: resolved
                        .handoff
                        .as_ref()
                        .and_then(|handoff| handoff.safe_mode_until.clone())
                        .or_else(|| spec.syncer.safe_mode_until.clone()),
                    ..spec.syncer.clone()
                };
                Ok::<_, SubtaskError>(
                    dm_syncer::run(
                        settings,
                        spec.remote.clone(),
                        start,
                        spec.sink.clone(),
                        spec.rules.clone(),
                        stop,
                        progress,
                    )
                    .await?,
                )
            };
            tokio::pin!(sync);
            loop {
                // Cancel safety: `sync` is polled in place and never dropped here (it ends
                // through its stop signal); `watch::Receiver::changed` and
                // `mpsc::Receiver::recv` are cancel-safe. `sync` comes first: once it is done
                // its progress sender is gone and `changed` would fail at once.
                tokio::select! {
                    biased;
                    result = &mut sync => break result,
                    changed = updates.changed() => {
                        if changed.is_ok() {
                            report.sync(updates.borrow_and_update().clone());
                        }
                    }
                    envelope = commands.recv() => {
                        if let Some(request) = accept(envelope, report, operators) {
                            let strongest = requested.map_or(request, |known| known.max(request));
                            requested = Some(strongest);
                            stop_sender.send_if_modified(|current| {
                                let wanted = strongest.stop_request().max(*current);
                                std::mem::replace(current, wanted) != wanted
                            });
                        }
                    }
                }
            }
        };
        let last = updates.borrow().clone();
        match result {
            Ok(status) => {
                report.sync(status);
                match requested {
                    None => Outcome::Done,
                    Some(Request::Restart) => Outcome::Restart,
                    Some(Request::Pause) => Outcome::Paused,
                    Some(Request::Stop(_)) => Outcome::Stopped,
                }
            }
            Err(error) => {
                let position = last.stopped_at.clone();
                report.sync(last);
                match requested {
                    // Asked to stop: stopped, whatever the last words were.
                    Some(Request::Stop(_)) => Outcome::Stopped,
                    _ => Outcome::Failed(error, position),
                }
            }
        }
    }
}

/// The unit a dump-and-load error comes from, when the error says: the upstream and the dump
/// directory are the dump's, the downstream and reading the dump back are the load's.
fn unit_of_full_error(error: &SubtaskError) -> Option<Unit> {
    use dm_dumpload::DumpError;
    match error {
        SubtaskError::Dump(
            DumpError::Privilege { .. } | DumpError::Server { .. } | DumpError::DiskFull { .. },
        ) => Some(Unit::Dump),
        SubtaskError::Dump(DumpError::Downstream { .. } | DumpError::Corrupted { .. }) => {
            Some(Unit::Load)
        }
        _ => None,
    }
}
