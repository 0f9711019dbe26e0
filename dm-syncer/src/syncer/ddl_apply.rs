//! Query events in the event loop. Each is read once ([`crate::ddl::plan_query`]); a DDL is a
//! barrier that runs downstream exactly once, whatever the moment a crash interrupts it.
//!
//! ```text
//! Query event --plan--> Control / Ignored: nothing
//!                       Xa (XA START): an error with its position (outcome comes later)
//!                       Dml (statement format): an error with its position, unless every table
//!                           it names is filtered out
//!                       Unreadable: an error with its position
//!                       Ddl(plan):
//!   1 drain every worker                                                   [AfterDrain]
//!   2 per statement: online-DDL guard, block-allow list (every name), event filter, names
//!     qualified and routed -> run or skip
//!   3 the tracker follows the statements (on a copy until they ran)
//!   4 per statement to run, as a DdlJob: checkpoint at the DDL's start (location, the
//!     tracker's tables as they are, the statement's DdlRecord with what the sink reads of its
//!     objects now: DdlSink::ddl_before)                                [AfterStartCheckpoint]
//!   5 then DdlSink::apply_ddl (replaying after a crash: the statements before the recorded one
//!     ran; whether the recorded one ran, DdlSink::ddl_ran tells; a sink that cannot tell
//!     stops the task instead)                                          [AfterExecute]
//!   6 checkpoint past the DDL: the tracker's changed tables             [AfterEndCheckpoint]
//!     (a DDL inside a transaction: the record says "all ran" until a checkpoint passes it)
//! ```
//!
//! Invariants: a restart at any step resumes at a checkpoint whose stored tables describe the
//! rows after it (steps 4 and 6 save both atomically); a statement runs downstream at most
//! once, because step 5 asks the sink whether it ran, given what it recorded in 4 just before
//! it ran, and the record is kept in every checkpoint until one passes the DDL; nothing after
//! the DDL is dispatched before 6. What "ran" means downstream (MySQL: the objects' `SHOW
//! CREATE` changed; errors meaning "already there" tolerated where expected) is the sink's.

use std::time::Instant;

use dm_binlog::EventLocations;
use dm_core::{
    ClassifiedError, DdlCheck, DdlDecision, DdlJob, DdlKind, DdlRecord, DdlStatement, DdlTarget,
    Resolved, ShardDdl, SinkTable, TableRef, TableSchema,
};
use tokio::sync::mpsc;

use crate::ddl::{DdlPlan, DmlStatement, NameRole, PlannedStatement, QueryClass, quoted_target};
use crate::error::SyncerError;
use crate::tracker::TrackOutcome;
use dm_task::filter::{DdlEventKind, FilterAction, FilterEvent};

use super::fault::{self, DdlStep};
use super::status::warn;
use super::{Ack, ControlSink, EventLoop};

/// What the syncer does with one planned statement.
enum Decision {
    /// Run this SQL downstream (`routed`: names were replaced by a route).
    Run {
        /// The statement with its names fully qualified (and routed).
        sql: String,
        /// Whether a route renamed a name.
        routed: bool,
        /// The database to select first, when it exists downstream: the routed session
        /// database, for the names the grammar does not read (a view's body, a foreign key's
        /// parent table).
        use_schema: Option<String>,
    },
    /// Do not run it; the tracker still follows it (`track`).
    Skip { track: bool },
}

impl<Control: ControlSink> EventLoop<Control> {
    /// Handles a Query event: `schema` is its current database, `sql` its text.
    pub(super) async fn query(
        &mut self,
        locations: &EventLocations,
        schema: &str,
        sql: &str,
        sql_mode: Option<u64>,
        in_payload: bool,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let position = || locations.start.position.to_string();
        match crate::ddl::plan_query(schema, sql, self.server_version, sql_mode) {
            QueryClass::Control | QueryClass::Ignored => Ok(()),
            QueryClass::Xa => Err(SyncerError::Unsupported {
                position: position(),
                what: format!(
                    "`{}` starts an XA transaction: its rows arrive before its XA COMMIT or XA ROLLBACK (a later event group), and replicating XA transactions is not supported yet; copy the tables it changes again once it ended upstream, then skip this event and the group's row events with the binlog operator",
                    shorten(sql)
                ),
            }),
            QueryClass::Dml(dml) => self.statement_dml(&dml, sql, position()),
            QueryClass::Unreadable { reason } => Err(SyncerError::Unsupported {
                position: position(),
                what: format!(
                    "`{}` cannot be read (expected {reason}): skip it or replace it with the binlog operator",
                    shorten(sql)
                ),
            }),
            QueryClass::Ddl(_) if in_payload => Err(SyncerError::Unsupported {
                position: position(),
                what: format!(
                    "DDL `{}` inside a compressed transaction payload",
                    shorten(sql)
                ),
            }),
            QueryClass::Ddl(plan) => self.ddl(locations, plan, sql_mode, acks).await,
        }
    }

    /// A row change logged as a statement: it cannot be applied exactly (its rows are not in
    /// the binlog), so it stops the task, unless every table it writes is filtered out.
    fn statement_dml(
        &mut self,
        dml: &DmlStatement,
        sql: &str,
        position: String,
    ) -> Result<(), SyncerError> {
        let filtered = dml.complete
            && dml.tables.iter().all(|table| {
                !self
                    .rules
                    .block_allow_list
                    .allows_table(&table.schema, &table.table)
            });
        if filtered {
            return Ok(());
        }
        let tables = dml
            .tables
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(SyncerError::Unsupported {
            position,
            what: format!(
                "`{}` changes rows{} as a statement (the upstream session's binlog_format was STATEMENT or MIXED), so its rows are not in the binlog and cannot be applied exactly: set binlog_format=ROW upstream (SET GLOBAL binlog_format = ROW and in my.cnf; sessions keep their format until they reconnect), copy the affected tables again, then skip this event with the binlog operator",
                shorten(sql),
                if tables.is_empty() {
                    String::new()
                } else {
                    format!(" of {tables}")
                }
            ),
        })
    }

    /// What to do with `planned`, given the filters and routes.
    fn decide(
        &mut self,
        plan: &DdlPlan,
        planned: &PlannedStatement,
        position: &str,
    ) -> Result<Decision, SyncerError> {
        let list = &self.rules.block_allow_list;
        let allowed: Vec<bool> = planned
            .names
            .iter()
            .map(|name| match &name.object {
                DdlTarget::Schema(schema) => list.allows_schema(schema),
                DdlTarget::Table(table) => list.allows_table(&table.schema, &table.table),
            })
            .collect();
        if !allowed.iter().all(|allowed| *allowed) {
            // As DM: a statement naming a filtered object is not replicated. When it also names
            // a replicated one, the downstream may no longer mirror the upstream: say so.
            if allowed.iter().any(|allowed| *allowed) {
                let names = planned
                    .names
                    .iter()
                    .map(|name| quoted_target(&name.object))
                    .collect::<Vec<_>>()
                    .join(", ");
                warn(
                    &mut self.status,
                    format!(
                        "at {position}: `{}` names both replicated and filtered objects ({names}) and was not replicated; check the downstream",
                        shorten(&planned.statement.sql)
                    ),
                );
            }
            return Ok(Decision::Skip { track: false });
        }
        let (schema, table) = match &planned.statement.target {
            DdlTarget::Schema(schema) => (schema.as_str(), ""),
            DdlTarget::Table(table) => (table.schema.as_str(), table.table.as_str()),
        };
        let (action, rule) = self.rules.event_filter.decide(
            schema,
            table,
            Some(FilterEvent::Ddl(DdlEventKind::from(
                &planned.statement.kind,
            ))),
            Some(&plan.original_sql),
        );
        match action {
            FilterAction::Error => {
                return Err(SyncerError::Filtered {
                    rule: rule.unwrap_or_default().to_owned(),
                    position: position.to_owned(),
                    what: planned.statement.sql.clone(),
                });
            }
            FilterAction::Ignore => return Ok(Decision::Skip { track: true }),
            FilterAction::Do => {}
        }
        let router = &self.rules.router;
        let (sql, routed) = planned.qualified_sql(&mut |target: &DdlTarget| match target {
            DdlTarget::Schema(schema) => router.route_schema(schema).map(DdlTarget::Schema),
            DdlTarget::Table(table) => router.route(table).map(DdlTarget::Table),
        })?;
        // A database statement names its database (the server logs it as the event's current
        // database, which may not exist downstream yet or any more).
        let use_schema = match &planned.statement.target {
            DdlTarget::Table(_) if !plan.current_schema.is_empty() => {
                Some(router.route_schema(&plan.current_schema)?)
            }
            _ => None,
        };
        Ok(Decision::Run {
            sql,
            routed,
            use_schema,
        })
    }

    /// The downstream object `target` routes to.
    fn routed(&self, target: &DdlTarget) -> Result<DdlTarget, SyncerError> {
        Ok(match target {
            DdlTarget::Schema(schema) => DdlTarget::Schema(self.rules.router.route_schema(schema)?),
            DdlTarget::Table(table) => DdlTarget::Table(self.rules.router.route(table)?),
        })
    }

    /// `planned` as the sink runs it: names routed, the objects it changes, how to run it.
    #[allow(clippy::too_many_arguments)]
    fn job(
        &self,
        locations: &EventLocations,
        index: usize,
        planned: &PlannedStatement,
        sql: &str,
        use_schema: &Option<String>,
        sql_mode: Option<u64>,
        routed: bool,
    ) -> Result<DdlJob, SyncerError> {
        let kind = match &planned.statement.kind {
            DdlKind::RenameTable { to } => DdlKind::RenameTable {
                to: self.rules.router.route(to)?,
            },
            other => other.clone(),
        };
        let objects = planned
            .changed_objects()
            .map(|object| self.routed(object))
            .collect::<Result<Vec<_>, _>>()?;
        // A route may send the table to a database that only exists downstream by name: the
        // sink creates it first, as the loader does for routed tables.
        let create_schema = match (&planned.statement.kind, &planned.statement.target) {
            (DdlKind::CreateTable, DdlTarget::Table(table)) if routed => {
                Some(self.rules.router.route(table)?.schema)
            }
            _ => None,
        };
        let replaying_dump = self.safe_mode.before_exit(&locations.start);
        // Several sources (or shards) may create or drop the same downstream database.
        let shared_database = matches!(
            planned.statement.kind,
            DdlKind::CreateSchema | DdlKind::DropSchema
        );
        Ok(DdlJob {
            location: locations.start.clone(),
            index,
            statement: DdlStatement {
                kind,
                target: self.routed(&planned.statement.target)?,
                sql: sql.to_owned(),
            },
            objects,
            effect_visible: planned.checkable,
            session_schema: use_schema.clone(),
            sql_mode: sql_mode.map(dm_binlog::sql_mode_text),
            create_schema,
            tolerate_existing: routed || replaying_dump || shared_database,
        })
    }

    /// What the sink reads of `job`'s objects now (its record before it runs).
    async fn before(&mut self, job: &DdlJob) -> Result<Vec<(String, Option<String>)>, SyncerError> {
        with_retry!(self.settings.retry_transient_for, self.control, sink => {
            let started = self.metrics.as_ref().map(|_| Instant::now());
            let before = sink.ddl_before(job).await;
            if let (Some(metrics), Some(started), Ok(_)) = (&self.metrics, started, &before) {
                metrics.queried(started);
            }
            before
        })
    }

    /// Whether `job`, recorded with `before`, ran.
    async fn ran(
        &mut self,
        job: &DdlJob,
        before: &[(String, Option<String>)],
    ) -> Result<DdlCheck, SyncerError> {
        with_retry!(self.settings.retry_transient_for, self.control, sink => sink.ddl_ran(job, before).await)
    }

    pub(super) async fn ddl(
        &mut self,
        locations: &EventLocations,
        plan: DdlPlan,
        sql_mode: Option<u64>,
        acks: &mut mpsc::Receiver<Ack>,
    ) -> Result<(), SyncerError> {
        let position = locations.start.position.to_string();
        let (task, source) = (self.settings.task.clone(), self.settings.source_id.clone());
        if let Some(metrics) = &self.metrics {
            metrics.planned_query();
        }
        // 0. Shard DDL holds (`crate::holds`): the resolved DDL a rewind reopened the stream
        // for runs as resolved; during a rewind or a replay's pass, another table's DDL ran
        // when it was first read; a held table's later DDL waits for its replay, untracked; a
        // hold's own DDL that ran (replaying, replayed) is only tracked again.
        // Named as the holds name tables (the tracker's way: folded unless case-sensitive).
        let upstream_tables: Vec<TableRef> = if self.holds.is_empty() {
            Vec::new()
        } else {
            let mut tables: Vec<TableRef> = Vec::new();
            for name in plan
                .statements
                .iter()
                .flat_map(|planned| planned.names.iter())
            {
                if let DdlTarget::Table(table) = &name.object {
                    let key = self.tracker.key(table);
                    if !tables.contains(&key) {
                        tables.push(key);
                    }
                }
            }
            tables
        };
        let resolved = match &self.rewind {
            Some((resolution, until))
                if resolution.held_at.compare(&locations.start)
                    == Some(std::cmp::Ordering::Equal) =>
            {
                Some((resolution.clone(), until.clone()))
            }
            // Before the held DDL, in the rewound stream: read before.
            Some(_) => return Ok(()),
            None => None,
        };
        let replay_pass = self.holds.live().map(|live| live.table.clone());
        if resolved.is_none() {
            if let Some(replayed) = &replay_pass
                && !upstream_tables.contains(replayed)
            {
                return Ok(());
            }
            let held: Vec<&TableRef> = upstream_tables
                .iter()
                .filter(|table| {
                    self.holds.held(table).is_some_and(|hold| {
                        hold.held_at
                            .compare(&locations.start)
                            .is_some_and(|order| order.is_le())
                    })
                })
                .collect();
            if held.len() == upstream_tables.len() && !held.is_empty() {
                return Ok(());
            }
            if !held.is_empty() {
                return Err(SyncerError::Unsupported {
                    position: position.clone(),
                    what: format!(
                        "a DDL names the table {} whose shard DDL is held, and other tables: it cannot run before the hold is resolved, nor wait for it without holding the others; run it downstream by hand once the hold is resolved, then skip this event with the binlog operator",
                        held[0]
                    ),
                });
            }
        }
        let hold_ran = resolved.is_none()
            && upstream_tables
                .iter()
                .any(|table| self.holds.hold_at(table, &locations.start).is_some());
        // 1. Everything before the DDL is applied first.
        self.drain(acks).await?;
        let barrier_started = self.metrics.as_ref().map(|_| Instant::now());
        fault::step(&task, &source, DdlStep::AfterDrain).await;

        // An online schema change tool's table: not replicated as one (yet).
        for planned in &plan.statements {
            for name in &planned.names {
                if let DdlTarget::Table(table) = &name.object
                    && let Some(reason) = self.rules.online_ddl_stop(table)
                {
                    return Err(SyncerError::OnlineDdlTable {
                        position: position.clone(),
                        reason,
                    });
                }
            }
        }

        // 2. What runs, what is skipped.
        let mut decisions = Vec::with_capacity(plan.statements.len());
        for planned in &plan.statements {
            decisions.push(self.decide(&plan, planned, &position)?);
        }
        if let Some(metrics) = &self.metrics {
            for _ in decisions
                .iter()
                .filter(|decision| matches!(decision, Decision::Skip { .. }))
            {
                metrics.skipped_query();
            }
        }

        // 3. The tracker follows every statement of a replicated object, on a copy until the
        // statements ran. Tables created before the start (loaded by a full migration) are
        // learnt from the downstream first.
        for (planned, decision) in plan.statements.iter().zip(&decisions) {
            if matches!(decision, Decision::Skip { track: false }) {
                continue;
            }
            for name in &planned.names {
                // A CREATE TABLE's table too: with IF NOT EXISTS on a table created before the
                // start, the statement changes nothing upstream and the tracker must keep the
                // table as it is.
                let existing = match (name.role, &planned.statement.kind) {
                    (NameRole::Source | NameRole::Exchanged, _) => true,
                    (NameRole::Target, DdlKind::CreateView) => false,
                    (NameRole::Target, _) => true,
                    (NameRole::RenamedTo, _) => false,
                };
                if let (true, DdlTarget::Table(table)) = (existing, &name.object)
                    && self.tracker.get(table).is_none()
                {
                    self.seed_from_downstream(table).await?;
                }
            }
        }
        let mut tracker = self.tracker.clone();
        let mut reload = Vec::new();
        for (planned, decision) in plan.statements.iter().zip(&decisions) {
            if matches!(decision, Decision::Skip { track: false }) {
                continue;
            }
            match tracker.apply(&plan.current_schema, planned)? {
                TrackOutcome::Reload(tables) => reload.extend(tables),
                TrackOutcome::Changed(_) | TrackOutcome::Unchanged => {}
            }
        }

        // 4-5. Each statement to run: the checkpoint at the DDL's start, with what the sink
        // reads of the objects it changes now, then the statement. Replaying a DDL a crash
        // interrupted, the statements before the recorded one ran, and whether the recorded one
        // ran the sink tells from the record (nothing else writes its objects while the DDL
        // holds the barrier). A record of a later DDL event (the checkpoint could not pass this
        // one: it was inside a transaction, or made by a binlog operator at a shared position)
        // says this one ran whole; a record of an earlier one stays until a checkpoint passes it.
        let order = self
            .pending_ddl
            .as_ref()
            .and_then(|recorded| recorded.compare_to(&locations.start));
        // The record stays where it is (a checkpoint past the DDL drops it): while the
        // checkpoint is held back a later restart meets this DDL again and needs it.
        let replayed = match order {
            Some(std::cmp::Ordering::Equal) => self.pending_ddl.clone(),
            // A record kept while the checkpoint was held back (shard DDL).
            _ => self.holds.record_of(&locations.start).cloned(),
        };
        // A record of a later event says this one ran, when events ran in stream order: not
        // for a resolved DDL, nor for a DDL of a table being replayed (they run after later
        // events did).
        let replaying = upstream_tables
            .iter()
            .any(|table| self.holds.replay_covers(table, &locations.start));
        let ran_before_the_crash = hold_ran
            || (order == Some(std::cmp::Ordering::Greater)
                && resolved.is_none()
                && replay_pass.is_none()
                && !replaying);
        // The coordinator decides a DDL no record covers: a resolution decides a rewound one.
        if resolved.is_some() || (replayed.is_none() && !ran_before_the_crash) {
            let decision = match &resolved {
                Some((resolution, _)) => match &resolution.resolved {
                    Resolved::Execute(indexes) => DdlDecision::Execute(indexes.clone()),
                    Resolved::Skip => DdlDecision::Skip,
                },
                None => {
                    let shard_ddl = self.shard_ddl(locations, &plan, &decisions, sql_mode)?;
                    if shard_ddl.statements.is_empty() {
                        DdlDecision::Execute(Vec::new())
                    } else {
                        let decision = self.coordinator.decide(&shard_ddl).await?;
                        if decision == DdlDecision::Hold {
                            return self.hold(locations, &shard_ddl).await;
                        }
                        decision
                    }
                }
            };
            let chosen: Option<Vec<usize>> = match decision {
                DdlDecision::Execute(indexes) => Some(indexes),
                DdlDecision::Skip | DdlDecision::Hold => None,
            };
            // Statements the coordinator does not run are tracked, not run (indexes count the
            // statements that would run, in order).
            let mut running = 0;
            for decision in &mut decisions {
                if let Decision::Run { .. } = decision {
                    let kept = chosen
                        .as_ref()
                        .is_some_and(|indexes| indexes.contains(&running));
                    running += 1;
                    if !kept {
                        *decision = Decision::Skip { track: true };
                    }
                }
            }
        }
        let mut first = true;
        for (index, planned, sql, routed, use_schema) in to_run(&plan, &decisions) {
            if ran_before_the_crash
                || matches!(&replayed, Some(recorded) if recorded.statement > index)
            {
                // It ran before the crash.
                self.status.ddls_executed += 1;
                continue;
            }
            let job = self.job(locations, index, planned, sql, use_schema, sql_mode, routed)?;
            let before = match &replayed {
                Some(recorded) if recorded.statement == index => {
                    match self.ran(&job, &recorded.before).await? {
                        DdlCheck::Ran => {
                            self.status.ddls_executed += 1;
                            continue;
                        }
                        DdlCheck::NotRun => recorded.before.clone(),
                        DdlCheck::Unknowable => {
                            return Err(SyncerError::Unsupported {
                                position,
                                what: format!(
                                    "a crash interrupted `{}`, and whether it ran downstream cannot be told from the definitions of its tables (it moves rows between them): check the downstream; if it ran, skip this event with the binlog operator, otherwise run it there by hand and skip this event",
                                    shorten(sql)
                                ),
                            });
                        }
                    }
                }
                _ => {
                    let pending = DdlRecord {
                        position: locations.start.position.clone(),
                        suffix: locations.start.suffix,
                        statement: index,
                        sql: sql.clone(),
                        before: self.before(&job).await?,
                    };
                    self.write_checkpoint(Some(&pending)).await?;
                    if first {
                        fault::step(&task, &source, DdlStep::AfterStartCheckpoint).await;
                    }
                    pending.before
                }
            };
            // The statement's downstream target, for the job counters.
            let job_target = match &self.metrics {
                Some(_) => Some(job.statement.target.clone()),
                None => None,
            };
            if let (Some(metrics), Some(target)) = (&self.metrics, &job_target) {
                metrics.ddl_added(target);
            }
            self.execute_ddl(&position, &job, &before).await?;
            self.status.ddls_executed += 1;
            if let (Some(metrics), Some(target)) = (&self.metrics, &job_target) {
                metrics.ddl_finished(target);
            }
            if first {
                first = false;
                fault::step(&task, &source, DdlStep::AfterExecute).await;
            }
        }
        if let (Some(metrics), Some(started), false) = (&self.metrics, barrier_started, first) {
            // At least one statement ran.
            metrics.ddl_barrier_done(started);
        }
        self.status.ddls_skipped += decisions
            .iter()
            .filter(|decision| matches!(decision, Decision::Skip { .. }))
            .count() as u64;

        // 6. The tracker as the statements left it (tables it could not follow read from the
        // downstream now that they ran), and the checkpoint past the DDL.
        self.tracker = tracker;
        for table in reload {
            let routed = self.rules.router.route(&table)?;
            match self.downstream_schema(&routed).await? {
                SinkTable::Defined(schema) => {
                    let renamed = TableSchema::new(
                        table.clone(),
                        schema.columns().to_vec(),
                        schema.keys().to_vec(),
                    )
                    .map_err(|error| SyncerError::State(error.to_string()))?;
                    self.tracker.set(renamed);
                }
                SinkTable::Missing => self.tracker.remove(&table),
                SinkTable::Mirrored => {
                    return Err(SyncerError::Unsupported {
                        position,
                        what: format!(
                            "the schema tracker cannot follow what the DDL did to {table}, and the sink keeps no structure of its own to read it from: skip or replace the DDL with the binlog operator"
                        ),
                    });
                }
            }
        }
        // The tables' definitions are read again, once, when their rows come next.
        self.targets.clear();
        if self.holds.clamped() || resolved.is_some() {
            // The checkpoint is held back below this DDL: its tables are saved once a
            // checkpoint passes it (`HoldKeeper::defer_tables`).
            let unsaved = self.tracker.unsaved_tables();
            let saved: Vec<TableRef> = unsaved.iter().map(|(table, _)| table.clone()).collect();
            self.holds.defer_tables(
                locations.end.clone(),
                unsaved
                    .into_iter()
                    .map(|(table, snapshot)| dm_core::TableCheckpoint { table, snapshot })
                    .collect(),
            );
            self.tracker.mark_saved(&saved, true);
        }
        if let Some((resolution, until)) = resolved {
            // The resolved DDL ran: its table's rows are replayed up to where the reading was.
            tracing::info!(
                table = %resolution.table,
                held_at = %resolution.held_at,
                until = %until,
                "the held DDL was resolved; replaying its table"
            );
            self.rewind = None;
            let table = self.tracker.key(&resolution.table);
            if self
                .holds
                .begin_replay(&table, &resolution.held_at, until)
                .is_none()
            {
                return Err(SyncerError::State(format!(
                    "the resolution of {} at {} names no held table: restart the task (the coordinator resolves the hold again)",
                    resolution.table, resolution.held_at
                )));
            }
            self.flush().await?;
            return Ok(());
        }
        if replay_pass.is_some() {
            // A DDL of the replayed table, run in its pass: the checkpoint stays.
            self.flush().await?;
            return Ok(());
        }
        if locations.at_transaction_end {
            // The DDL is its own transaction: the checkpoint moves past it now.
            self.watermark.transaction_end(locations.end.clone());
            self.flush().await?;
            fault::step(&task, &source, DdlStep::AfterEndCheckpoint).await;
        } else {
            // A DDL inside a transaction (a `CREATE TABLE ... SELECT`: the statement, then its
            // rows, then the commit): no checkpoint can fall inside the transaction, so until
            // one passes its end, the checkpoints keep saying that every statement ran.
            let record = DdlRecord {
                position: locations.start.position.clone(),
                suffix: locations.start.suffix,
                statement: plan.statements.len(),
                sql: String::new(),
                before: Vec::new(),
            };
            // While the checkpoint is held back, the record it replaces is kept (its DDL may
            // come again after a restart at the floor).
            if let Some(older) = self.pending_ddl.replace(record)
                && self.holds.clamped()
            {
                self.holds.keep_record(older);
            }
        }
        Ok(())
    }

    /// The DDL event as the coordinator sees it: the statements that would run, routed.
    fn shard_ddl(
        &self,
        locations: &EventLocations,
        plan: &DdlPlan,
        decisions: &[Decision],
        sql_mode: Option<u64>,
    ) -> Result<ShardDdl, SyncerError> {
        let mut tables = Vec::new();
        let mut targets = Vec::new();
        let mut statements = Vec::new();
        for (index, planned, sql, routed, use_schema) in to_run(plan, decisions) {
            for name in &planned.names {
                if let DdlTarget::Table(table) = &name.object
                    && !tables.contains(table)
                {
                    targets.push(self.rules.router.route(table)?);
                    tables.push(table.clone());
                }
            }
            let job = self.job(locations, index, planned, sql, use_schema, sql_mode, routed)?;
            statements.push(job.statement);
        }
        Ok(ShardDdl {
            source: self.settings.source_id.clone(),
            location: locations.start.clone(),
            tables,
            targets,
            statements,
        })
    }

    /// The coordinator holds `ddl`: its tables' rows after it wait for the resolution, the
    /// tracker does not follow it yet, and the hold is saved before anything passes it (the
    /// workers are drained: the checkpoint is at the DDL's start).
    async fn hold(
        &mut self,
        locations: &EventLocations,
        ddl: &ShardDdl,
    ) -> Result<(), SyncerError> {
        if ddl.tables.is_empty() {
            return Err(SyncerError::Coordinator(dm_core::ErrorReport {
                class: dm_core::ErrorClass::Bug,
                code: dm_core::ErrorCode(14009),
                message: format!(
                    "the shard coordinator held a DDL without tables at {}",
                    locations.start
                ),
                workaround: "report a bug of the coordinator",
            }));
        }
        if ddl.tables.len() > 1 {
            // One table per hold: a resolution replays one table.
            return Err(SyncerError::Unsupported {
                position: locations.start.position.to_string(),
                what: format!(
                    "the shard coordinator held a DDL that names several tables ({}): shard DDL holds one table at a time (DM refuses such DDL in shard mode too); run it downstream by hand, then skip this event with the binlog operator",
                    ddl.tables
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        tracing::info!(
            position = %locations.start,
            tables = ?ddl.tables.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "the shard coordinator holds a DDL; its tables wait"
        );
        for table in &ddl.tables {
            self.holds.hold(
                self.tracker.key(table),
                locations.start.clone(),
                self.transaction_start.clone(),
            );
        }
        self.flush().await
    }

    /// Runs one DDL statement downstream. A transient failure (a lost connection) may come
    /// after the statement ran: before running it again, the sink tells whether it ran, given
    /// `before` (what it read just before the first attempt), and it is not run again when it
    /// did.
    async fn execute_ddl(
        &mut self,
        position: &str,
        job: &DdlJob,
        before: &[(String, Option<String>)],
    ) -> Result<(), SyncerError> {
        let mut retry = super::retry::Retry::new(self.settings.retry_transient_for);
        loop {
            let started = self.metrics.as_ref().map(|_| Instant::now());
            match self.control.apply_ddl(job).await {
                Ok(()) => {
                    if let (Some(metrics), Some(started)) = (&self.metrics, started) {
                        metrics.ddl_statement_ran(started);
                    }
                    tracing::info!(
                        position,
                        statement = %shorten(&job.statement.sql),
                        "DDL ran downstream"
                    );
                    return Ok(());
                }
                Err(error) if retry.again(error.class()).await => {
                    match self.ran(job, before).await? {
                        // It ran before the connection failed.
                        DdlCheck::Ran => return Ok(()),
                        DdlCheck::NotRun => {}
                        DdlCheck::Unknowable => {
                            return Err(SyncerError::Unsupported {
                                position: position.to_owned(),
                                what: format!(
                                    "the connection failed while `{}` ran ({error}), and whether it ran cannot be told from the definitions of its tables: check the downstream; if it ran, skip this event with the binlog operator",
                                    shorten(&job.statement.sql)
                                ),
                            });
                        }
                    }
                }
                Err(error) => return Err(SyncerError::sink(&error)),
            }
        }
    }
}

/// The statements to run: their index in the plan, the planned statement, its SQL (names
/// qualified and routed), whether a route renamed a name, and the database to select first.
fn to_run<'a>(
    plan: &'a DdlPlan,
    decisions: &'a [Decision],
) -> impl Iterator<
    Item = (
        usize,
        &'a PlannedStatement,
        &'a String,
        bool,
        &'a Option<String>,
    ),
> + 'a {
    plan.statements
        .iter()
        .zip(decisions)
        .enumerate()
        .filter_map(|(index, (planned, decision))| match decision {
            Decision::Run {
                sql,
                routed,
                use_schema,
            } => Some((index, planned, sql, *routed, use_schema)),
            Decision::Skip { .. } => None,
        })
}

/// A statement shortened for messages.
fn shorten(sql: &str) -> String {
    let mut end = sql.len().min(300);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    if end < sql.len() {
        format!("{}...", &sql[..end])
    } else {
        sql.to_owned()
    }
}
