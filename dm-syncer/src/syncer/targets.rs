//! What the event loop knows of each upstream table: the current table map of each table id
//! with the filters' decisions about its table, and the routed target of each table (tracked
//! schema, layout, causality keys, the sink's definition, the expression filters that apply).
//!
//! ```text
//! TableMap --map_table--> maps: table id -> MappedTable (online-DDL guard, block-allow list
//!                                 once per map; the event filter per rows kind, on first use)
//! Rows --target(upstream)--> targets: TableRef -> Target
//!        tracked schema (SchemaTracker; else seeded from the routed downstream table)
//!        layout: the tracked columns and keys under the routed name
//!        downstream: Sink::describe_table of the routed table (Mirrored: the layout)
//!        keys: TableKeys for causality and compaction
//! ```
//!
//! Invariants: a target is rebuilt whenever the tracker's schema of its table changed (the
//! `Arc` differs), and a DDL clears them all (`ddl_apply`), so a change is never decoded or
//! keyed with a structure older than the tracker's; a table map repeated unchanged keeps its
//! entry and its decisions. Reading the sink's definition retries transient failures in place.

use std::sync::Arc;
use std::time::Instant;

use dm_binlog::{EventLocations, TableMap};
use dm_causality::TableKeys;
use dm_core::{ClassifiedError, SinkTable, TableRef, TableSchema};
use dm_task::filter::FilterAction;

use crate::error::SyncerError;

use super::status::warn;
use super::{ControlSink, EventLoop};

/// A table id's current table map, with the filters' decisions about its table.
pub(super) struct MappedTable {
    pub(super) map: Arc<TableMap>,
    pub(super) upstream: Arc<TableRef>,
    /// The block-allow list lets the table through.
    pub(super) allowed: bool,
    /// The binlog event filter's decision (and rule) per rows kind (insert, update, delete),
    /// decided on first use.
    pub(super) decisions: [Option<(FilterAction, Option<String>)>; 3],
}

/// One target table as the event loop uses it.
pub(super) struct Target {
    pub(super) tracked: Arc<TableSchema>,
    pub(super) layout: Arc<TableSchema>,
    pub(super) keys: Arc<TableKeys>,
    /// The sink's definition of the routed table (the layout when the sink mirrors the
    /// upstream), handed to the workers with each change.
    pub(super) downstream: Arc<TableSchema>,
    /// Indexes of the expression filters about this table, their columns checked.
    pub(super) expression_filters: Vec<usize>,
}

impl<Control: ControlSink> EventLoop<Control> {
    /// Keeps `map` as its table id's current map, with the filters' decisions about its table:
    /// a new map, or one that differs from the known one (MariaDB and MySQL repeat the map
    /// before every rows event).
    pub(super) fn map_table(
        &mut self,
        map: &TableMap,
        locations: &EventLocations,
    ) -> Result<(), SyncerError> {
        if self
            .maps
            .get(&map.table_id)
            .is_some_and(|known| *known.map == *map)
        {
            return Ok(());
        }
        let upstream = Arc::new(TableRef::new(map.schema.clone(), map.table.clone()));
        // An online schema change tool's table: not replicated as one (yet).
        if let Some(reason) = self.rules.online_ddl_stop(&upstream) {
            return Err(SyncerError::OnlineDdlTable {
                position: locations.start.position.to_string(),
                reason,
            });
        }
        let allowed = self
            .rules
            .block_allow_list
            .allows_table(&upstream.schema, &upstream.table);
        self.maps.insert(
            map.table_id,
            MappedTable {
                map: Arc::new(map.clone()),
                upstream,
                allowed,
                decisions: [None, None, None],
            },
        );
        Ok(())
    }

    /// What the sink knows of `table` now.
    pub(super) async fn downstream_schema(
        &mut self,
        table: &TableRef,
    ) -> Result<SinkTable, SyncerError> {
        with_retry!(self.settings.retry_transient_for, self.control, sink => {
            let started = self.metrics.as_ref().map(|_| Instant::now());
            let schema = sink.describe_table(table).await;
            if let (Some(metrics), Some(started), Ok(_)) = (&self.metrics, started, &schema) {
                metrics.queried(started);
            }
            schema
        })
    }

    /// Seeds the tracker with `upstream`'s structure from its routed downstream table (DM
    /// does the same for tables created before the start, as after a full load); `Ok(false)`
    /// when the downstream table does not exist.
    pub(super) async fn seed_from_downstream(
        &mut self,
        upstream: &TableRef,
    ) -> Result<bool, SyncerError> {
        let routed = self.rules.router.route(upstream)?;
        let SinkTable::Defined(schema) = self.downstream_schema(&routed).await? else {
            return Ok(false);
        };
        let renamed = TableSchema::new(
            upstream.clone(),
            schema.columns().to_vec(),
            schema.keys().to_vec(),
        )
        .map_err(|error| SyncerError::State(error.to_string()))?;
        self.tracker.set(renamed);
        Ok(true)
    }

    /// The routed target of `upstream`, with its tracked schema (seeded from the downstream).
    pub(super) async fn target(&mut self, upstream: &TableRef) -> Result<&Target, SyncerError> {
        let tracked = match self.tracker.get(upstream) {
            Some(schema) => schema,
            None => {
                if !self.seed_from_downstream(upstream).await? {
                    let routed = self.rules.router.route(upstream)?;
                    return Err(SyncerError::MissingTable {
                        table: upstream.to_string(),
                        downstream: routed.to_string(),
                        detail: " (or the sink keeps no structure of it), and no CREATE TABLE for it was replayed".into(),
                    });
                }
                self.tracker.get(upstream).ok_or_else(|| {
                    SyncerError::State(format!("table {upstream} could not be tracked"))
                })?
            }
        };
        let stale = self
            .targets
            .get(upstream)
            .is_none_or(|target| !Arc::ptr_eq(&target.tracked, &tracked));
        if stale {
            let routed = self.rules.router.route(upstream)?;
            let layout = Arc::new(
                TableSchema::new(
                    routed.clone(),
                    tracked.columns().to_vec(),
                    tracked.keys().to_vec(),
                )
                .map_err(|error| SyncerError::State(error.to_string()))?,
            );
            let downstream = match self.downstream_schema(&routed).await? {
                SinkTable::Defined(schema) => Arc::new(schema),
                SinkTable::Mirrored => layout.clone(),
                SinkTable::Missing => {
                    return Err(SyncerError::MissingTable {
                        table: upstream.to_string(),
                        downstream: routed.to_string(),
                        detail: String::new(),
                    });
                }
            };
            let keys = Arc::new(TableKeys::new(&routed, &tracked, &downstream));
            let mut expression_filters = Vec::new();
            for (index, filter) in self.rules.expression_filters.iter().enumerate() {
                if filter.applies_to(upstream) {
                    match filter.unusable_with(&tracked) {
                        None => expression_filters.push(index),
                        Some(reason) => warn(&mut self.status, reason),
                    }
                }
            }
            self.targets.insert(
                upstream.clone(),
                Target {
                    tracked,
                    layout,
                    keys,
                    downstream,
                    expression_filters,
                },
            );
        }
        self.targets
            .get(upstream)
            .ok_or_else(|| SyncerError::State(format!("table {upstream} has no target")))
    }
}
