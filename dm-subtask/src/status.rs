//! What a subtask reports: [`SubtaskStatus`], DM's `SubTaskStatus` of `query-status` in Rust
//! (stage, unit, result with errors, progress per unit), plus the auto-resume attempts; and
//! [`SubtaskStatus::to_query_status`], the same as the JSON `dmctl query-status` prints.
//!
//! ```text
//! SubtaskStatus { name, source, mode, stage, unit, result: ProcessResult { is_canceled,
//!   errors: [ProcessError { code, class, scope, level, message, raw_cause, workaround,
//!   position }] }, unresolved_ddl_lock_id, dump: ProgressStatus, load: LoadStatus,
//!   sync: SyncerStatus, auto_resume: AutoResumeStatus, operators }
//! ```
//!
//! The mapping onto DM's field names is in the crate's documentation (`lib.rs`).

use std::time::Duration;

use dm_core::{BinlogPosition, ClassifiedError, ErrorClass, ErrorCode, Location};
use dm_dumpload::ProgressStatus;
use dm_syncer::SyncerStatus;
use dm_task::config::TaskMode;
use serde_json::{Value, json};

/// Where a subtask is in its life (DM's `Stage`, without the transient `Pausing`,
/// `Resuming` and `Stopping`: a command here takes effect before the next status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Created, not started.
    #[default]
    New,
    /// A unit runs.
    Running,
    /// Paused by a command or by an error (then `result.errors` says which); resumed by a
    /// command, or by itself after a transient error.
    Paused,
    /// Stopped by a command; the checkpoints are consistent, a new subtask continues.
    Stopped,
    /// Every unit of the task mode finished (modes `full`, `dump`, `load`; a sync that reached
    /// the end of a binlog it does not follow).
    Finished,
}

impl Stage {
    /// DM's name of the stage.
    pub fn name(self) -> &'static str {
        match self {
            Stage::New => "New",
            Stage::Running => "Running",
            Stage::Paused => "Paused",
            Stage::Stopped => "Stopped",
            Stage::Finished => "Finished",
        }
    }
}

/// A subtask's unit (DM's `UnitType`; `Check` and `Relay` are not units here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// The consistent dump.
    Dump,
    /// The parallel load.
    Load,
    /// Incremental replication.
    Sync,
}

impl Unit {
    /// DM's name of the unit.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Dump => "Dump",
            Unit::Load => "Load",
            Unit::Sync => "Sync",
        }
    }
}

/// Which side of the migration an error is about (DM's `ErrScope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorScope {
    /// The upstream (its binlog, the dump's reads, a connection to it).
    Upstream,
    /// The downstream (the sink, the load, a connection to it).
    Downstream,
    /// This program: configuration, state, the subtask itself.
    Internal,
}

impl ErrorScope {
    /// DM's name of the scope.
    pub fn name(self) -> &'static str {
        match self {
            ErrorScope::Upstream => "upstream",
            ErrorScope::Downstream => "downstream",
            ErrorScope::Internal => "internal",
        }
    }

    /// The scope of an error with `code`, by the crate ranges of `docs/error-codes.md`.
    pub fn of_code(code: ErrorCode) -> ErrorScope {
        match code.0 {
            11000..=11999 | 15001..=15003 | 15009 => ErrorScope::Upstream,
            13000..=13999 | 15006 | 15008 => ErrorScope::Downstream,
            _ => ErrorScope::Internal,
        }
    }
}

/// How serious an error is (DM's `ErrLevel`): a transient one is retried by itself (low), a
/// definite one or a bug needs the user (high).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorLevel {
    /// Transient: the subtask resumes by itself.
    Low,
    /// Definite or a bug: the subtask waits for the user.
    High,
}

impl ErrorLevel {
    /// DM's name of the level.
    pub fn name(self) -> &'static str {
        match self {
            ErrorLevel::Low => "low",
            ErrorLevel::High => "high",
        }
    }
}

/// One error of a unit (DM's `ProcessError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessError {
    /// The stable code (`ErrCode`).
    pub code: ErrorCode,
    /// Transient, definite or bug (`ErrClass`; DM names a subsystem there, which the code's
    /// range tells here).
    pub class: ErrorClass,
    /// Upstream, downstream or internal (`ErrScope`).
    pub scope: ErrorScope,
    /// Low (resumes by itself) or high (`ErrLevel`).
    pub level: ErrorLevel,
    /// The error's message, one layer (`Message`).
    pub message: String,
    /// The innermost cause when it says more than the message, else empty (`RawCause`).
    pub raw_cause: String,
    /// What to do (`Workaround`).
    pub workaround: String,
    /// The unit it happened in.
    pub unit: Unit,
    /// Where the event that caused it starts, when an event did: the position `binlog skip |
    /// replace | inject` applies at (DM puts it in the message).
    pub position: Option<BinlogPosition>,
}

impl ProcessError {
    /// The report of `error` in `unit`, caused by the event at `position` if any.
    pub fn of(error: &crate::SubtaskError, unit: Unit, position: Option<BinlogPosition>) -> Self {
        let message = error.to_string();
        let raw_cause = crate::error::innermost(error);
        let scope = match error {
            crate::SubtaskError::Connect { role, .. } if *role == "upstream" => {
                ErrorScope::Upstream
            }
            crate::SubtaskError::Connect { .. } => ErrorScope::Downstream,
            _ => ErrorScope::of_code(error.code()),
        };
        ProcessError {
            code: error.code(),
            class: error.class(),
            scope,
            level: match error.class() {
                ErrorClass::Transient => ErrorLevel::Low,
                _ => ErrorLevel::High,
            },
            raw_cause: if message.contains(&raw_cause) {
                String::new()
            } else {
                raw_cause
            },
            message,
            workaround: error.workaround().to_owned(),
            unit,
            position,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "ErrCode": self.code.0,
            "ErrClass": self.class.to_string(),
            "ErrScope": self.scope.name(),
            "ErrLevel": self.level.name(),
            "Message": match &self.position {
                Some(position) => format!("{} (event at {})", self.message, dm_position(position)),
                None => self.message.clone(),
            },
            "RawCause": self.raw_cause,
            "Workaround": self.workaround,
        })
    }
}

/// What the last run of a unit ended with (DM's `ProcessResult`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessResult {
    /// It was paused or stopped by a command (`isCanceled`).
    pub is_canceled: bool,
    /// Its errors (`errors`): the one that paused it.
    pub errors: Vec<ProcessError>,
}

/// The load's progress and where replication continues (DM's `LoadStatus`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadStatus {
    /// Chunks, rows, bytes, percent, rate, ETA.
    pub progress: ProgressStatus,
    /// The hand-off: the dump's snapshot location, once the load finished (`metaBinlog`,
    /// `metaBinlogGTID`).
    pub handoff: Option<Location>,
    /// What the hand-off says the user should know (tables whose rows safe mode may
    /// duplicate).
    pub warnings: Vec<String>,
}

/// The automatic resumes after transient errors (DM's task checker; not in `SubTaskStatus`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoResumeStatus {
    /// Resumes after transient errors since the backoff was last reset (a unit that ran
    /// without error for the rollback period resets it).
    pub attempts: u32,
    /// All resumes after transient errors since the subtask started.
    pub total_attempts: u32,
    /// The error that caused the last one.
    pub last_error: Option<ProcessError>,
    /// The wait before the pending resume, while one is pending.
    pub backoff: Option<Duration>,
}

/// One subtask's status (DM's `SubTaskStatus`, plus what this subtask adds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubtaskStatus {
    /// The task's name (`name`).
    pub name: String,
    /// The source's id (the `source` of the enclosing `QueryStatusResponse`).
    pub source: String,
    /// The task mode.
    pub mode: TaskMode,
    /// `stage`.
    pub stage: Stage,
    /// The unit running or last run (`unit`); `None` before the first.
    pub unit: Option<Unit>,
    /// How the last run of a unit ended, while it matters (`result`): paused by a command
    /// (`is_canceled`) or by an error (`errors`); cleared when a unit runs again.
    pub result: Option<ProcessResult>,
    /// The shard DDL lock this source waits for (`unresolvedDDLLockID`): always empty until
    /// shard DDL coordination is built.
    pub unresolved_ddl_lock_id: String,
    /// The dump's progress (`dump`), when the mode dumps.
    pub dump: Option<ProgressStatus>,
    /// The load's progress (`load`), when the mode loads.
    pub load: Option<LoadStatus>,
    /// The syncer's status (`sync`), once it ran.
    pub sync: Option<SyncerStatus>,
    /// Automatic resumes after transient errors.
    pub auto_resume: AutoResumeStatus,
    /// The `binlog skip | replace | inject` operators registered, as `<operation> at
    /// <position>` (DM's `binlog list`).
    pub operators: Vec<String>,
}

impl SubtaskStatus {
    /// The status of a subtask not started yet.
    pub fn new(name: &str, source: &str, mode: TaskMode) -> Self {
        SubtaskStatus {
            name: name.to_owned(),
            source: source.to_owned(),
            mode,
            ..SubtaskStatus::default()
        }
    }

    /// The error that paused it, if one did.
    pub fn error(&self) -> Option<&ProcessError> {
        self.result.as_ref()?.errors.first()
    }

    /// Caught up with the upstream (DM's `synced`).
    pub fn synced(&self) -> bool {
        self.sync.as_ref().is_some_and(|sync| sync.synced)
    }

    /// The status as DM's `QueryStatusResponse` JSON for this source: `{result, msg,
    /// sourceStatus, subTaskStatus: [...]}`, with DM's field names; the fields DM has and
    /// this program does not fill (relay, validation, shard groups) are empty, and what DM
    /// lacks is under `autoResume` and `binlogOperators`.
    pub fn to_query_status(&self) -> Value {
        let mut subtask = json!({
            "name": self.name,
            "stage": self.stage.name(),
            "unit": self.unit.map_or("InvalidUnit", Unit::name),
            "result": self.result.as_ref().map(|result| json!({
                "isCanceled": result.is_canceled,
                "errors": result.errors.iter().map(ProcessError::to_json).collect::<Vec<_>>(),
                "detail": Value::Null,
            })),
            "unresolvedDDLLockID": self.unresolved_ddl_lock_id,
            "autoResume": {
                "attempts": self.auto_resume.attempts,
                "totalAttempts": self.auto_resume.total_attempts,
                "lastError": self.auto_resume.last_error.as_ref().map(ProcessError::to_json),
                "backoffSeconds": self.auto_resume.backoff.map(|backoff| backoff.as_secs_f64()),
            },
            "binlogOperators": self.operators,
        });
        // DM shows the running unit's status (`oneof` dump | load | sync).
        let unit = match self.unit {
            Some(Unit::Dump) => self.dump.as_ref().map(|dump| ("dump", dump_json(dump))),
            Some(Unit::Load) => self.load.as_ref().map(|load| ("load", load_json(load))),
            Some(Unit::Sync) => self.sync.as_ref().map(|sync| ("sync", sync_json(sync))),
            None => None,
        };
        if let (Some((key, value)), Some(object)) = (unit, subtask.as_object_mut()) {
            object.insert(key.to_owned(), value);
        }
        json!({
            "result": true,
            "msg": "",
            "sourceStatus": {"source": self.source, "worker": "", "result": Value::Null, "relayStatus": Value::Null},
            "subTaskStatus": [subtask],
        })
    }
}

/// A position as DM prints it: `(mysql-bin.000001, 2388)`.
fn dm_position(position: &BinlogPosition) -> String {
    format!("({}, {})", position.file, position.offset)
}

fn dump_json(dump: &ProgressStatus) -> Value {
    json!({
        "totalTables": dump.chunks_total,
        "completedTables": dump.chunks_done,
        "finishedBytes": dump.bytes,
        "finishedRows": dump.rows,
        "estimateTotalRows": Value::Null,
        "bps": dump.bytes_per_second,
        "progress": format!("{:.2} %", dump.percent),
    })
}

fn load_json(load: &LoadStatus) -> Value {
    json!({
        "finishedBytes": load.progress.bytes,
        "totalBytes": load.progress.bytes_total,
        "progress": format!("{:.2} %", load.progress.percent),
        "metaBinlog": load.handoff.as_ref().map(|location| dm_position(&location.position)),
        "metaBinlogGTID": load.handoff.as_ref().and_then(|location| location.gtid_set.as_ref()).map(ToString::to_string),
        "bps": load.progress.bytes_per_second,
    })
}

fn sync_json(sync: &SyncerStatus) -> Value {
    json!({
        "totalEvents": sync.events,
        "totalTps": sync.transactions,
        "masterBinlog": sync.master_position.as_ref().map(dm_position),
        "masterBinlogGtid": "",
        "syncerBinlog": sync.checkpoint.as_ref().map(|location| dm_position(&location.position)),
        "syncerBinlogGtid": sync.checkpoint.as_ref().and_then(|location| location.gtid_set.as_ref()).map(ToString::to_string),
        "blockingDDLs": [],
        "unresolvedGroups": [],
        "synced": sync.synced,
        "binlogType": "remote",
        "secondsBehindMaster": sync.lag_seconds,
        "blockDDLOwner": "",
        "conflictMsg": "",
        "totalRows": sync.rows_dispatched,
        "totalRps": sync.rows_per_second,
        "recentRps": sync.rows_per_second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_prints_as_dm_query_status() {
        let error = crate::SubtaskError::StartPoint {
            file: "task.yaml".into(),
            reason: "no meta".into(),
        };
        let position = BinlogPosition::parse("mysql-bin.000002:1234").expect("position");
        let status = SubtaskStatus {
            stage: Stage::Paused,
            unit: Some(Unit::Sync),
            result: Some(ProcessResult {
                is_canceled: false,
                errors: vec![ProcessError::of(&error, Unit::Sync, Some(position))],
            }),
            sync: Some(SyncerStatus {
                synced: true,
                ..SyncerStatus::default()
            }),
            ..SubtaskStatus::new("shop", "mysql-01", TaskMode::Incremental)
        };
        let json = status.to_query_status();
        let subtask = &json["subTaskStatus"][0];
        assert_eq!(subtask["stage"], "Paused");
        assert_eq!(subtask["unit"], "Sync");
        assert_eq!(subtask["sync"]["synced"], true);
        let error = &subtask["result"]["errors"][0];
        assert_eq!(error["ErrCode"], 21003);
        assert_eq!(error["ErrClass"], "definite");
        assert_eq!(error["ErrScope"], "internal");
        assert_eq!(error["ErrLevel"], "high");
        assert_eq!(
            error["Message"],
            "task.yaml: no meta (event at (mysql-bin.000002, 1234))"
        );
        assert!(
            error["Workaround"]
                .as_str()
                .is_some_and(|text| text.contains("meta"))
        );
        assert_eq!(json["sourceStatus"]["source"], "mysql-01");
        assert_eq!(
            ErrorScope::of_code(ErrorCode(13001)),
            ErrorScope::Downstream
        );
        assert_eq!(ErrorScope::of_code(ErrorCode(11006)), ErrorScope::Upstream);
    }
}
