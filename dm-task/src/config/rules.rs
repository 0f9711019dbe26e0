//! The rules of one instance, built from the task file (and the source file): what is
//! replicated, where it goes, which events and rows are left out, and which online-DDL tables
//! stop the task.
//!
//! ```text
//! TaskConfig::rules_for(instance)                      task rules, task's case-sensitivity
//! TaskConfig::rules_for_source(instance, source)       + source filters after the task's (a
//!                                                        source rule with a task rule's
//!                                                        patterns is dropped), case-sensitive
//!                                                        when task or source says so (DM's worker)
//!   --> InstanceRules { block_allow_list, router, event_filter, expression_filters, online_ddl }
//! ```

use std::collections::BTreeSet;

use dm_core::TableRef;

use super::online_ddl::{OnlineDdlGuard, stop_reason};
use super::sections::{FilterConfig, InstanceConfig, TableNameConfig};
use super::source::SourceConfig;
use super::task::TaskConfig;
use crate::expression::ExpressionFilter;
use crate::filter::{
    BlockAllowList, EventFilter, EventFilterRule, Pattern, RouteRule, RuleError, TablePattern,
    TableRouter,
};

/// The filters and routes of one instance (the default replicates everything, unrouted, with
/// no online-DDL guard).
#[derive(Debug, Clone, Default)]
pub struct InstanceRules {
    /// What is replicated.
    pub block_allow_list: BlockAllowList,
    /// Where it goes.
    pub router: TableRouter,
    /// Which events of it: the task's rules, then the source's.
    pub event_filter: EventFilter,
    /// Which rows of it, by value.
    pub expression_filters: Vec<ExpressionFilter>,
    /// Online-DDL tool tables that stop the task (`online-ddl: true`).
    pub online_ddl: OnlineDdlGuard,
}

impl InstanceRules {
    /// Why the task must stop when `table` appears in the binlog (in a DDL, or a table map of
    /// rows): it is a shadow or trash table of an online schema change tool, and the real table
    /// it stands for is replicated (DM applies the block-allow list to the real table's name).
    pub fn online_ddl_stop(&self, table: &TableRef) -> Option<String> {
        let found = self.online_ddl.classify(&table.table)?;
        if !self
            .block_allow_list
            .allows_table(&table.schema, &found.real_table)
        {
            return None;
        }
        Some(stop_reason(table, &found))
    }
}

impl TaskConfig {
    /// Builds the filters, routes and online-DDL guard of an instance from the task alone.
    pub fn rules_for(&self, instance: &InstanceConfig) -> Result<InstanceRules, RuleError> {
        self.build_rules(instance, self.case_sensitive, &[])
    }

    /// Builds the rules of an instance as DM's worker does for the source it runs on: the
    /// task's rules, then the source file's `filters` appended to the event filter (a source
    /// rule with the same schema and table patterns as a task rule is dropped: the task's
    /// wins), and names case-sensitive when the task or the source says so.
    pub fn rules_for_source(
        &self,
        instance: &InstanceConfig,
        source: &SourceConfig,
    ) -> Result<InstanceRules, RuleError> {
        self.build_rules(
            instance,
            self.case_sensitive || source.case_sensitive,
            &source.filters,
        )
    }

    fn build_rules(
        &self,
        instance: &InstanceConfig,
        case: bool,
        source_filters: &[FilterConfig],
    ) -> Result<InstanceRules, RuleError> {
        let list_name = instance
            .block_allow_list
            .as_ref()
            .or(instance.black_white_list.as_ref());
        let block_allow_list = match list_name.and_then(|name| self.block_allow_lists().get(name)) {
            None => BlockAllowList::default(),
            Some(list) => {
                let rule = format!("block-allow-list.{}", list_name.map_or("", String::as_str));
                let schemas = |patterns: &[String]| {
                    patterns
                        .iter()
                        .map(|pattern| Pattern::parse(pattern, case, &rule))
                        .collect::<Result<Vec<_>, _>>()
                };
                let tables = |patterns: &[TableNameConfig]| {
                    patterns
                        .iter()
                        .map(|pattern| {
                            TablePattern::parse(&pattern.db_name, &pattern.tbl_name, case, &rule)
                        })
                        .collect::<Result<Vec<_>, _>>()
                };
                BlockAllowList::new(
                    case,
                    schemas(&list.do_dbs)?,
                    schemas(&list.ignore_dbs)?,
                    tables(&list.do_tables)?,
                    tables(&list.ignore_tables)?,
                )
            }
        };
        let mut routes = Vec::new();
        for name in &instance.route_rules {
            if let Some(route) = self.routes.get(name) {
                routes.push(RouteRule::new(
                    name,
                    &route.schema_pattern,
                    route.table_pattern.as_deref(),
                    &route.target_schema,
                    route.target_table.as_deref(),
                    case,
                )?);
            }
        }
        let fold = |pattern: Option<&str>| {
            let pattern = pattern.unwrap_or_default();
            if case {
                pattern.to_owned()
            } else {
                pattern.to_lowercase()
            }
        };
        let mut filters = Vec::new();
        let mut patterns = BTreeSet::new();
        for name in &instance.filter_rules {
            if let Some(filter) = self.filters.get(name) {
                filters.push(EventFilterRule::new(
                    name,
                    &filter.schema_pattern,
                    filter.table_pattern.as_deref(),
                    &filter.events,
                    &filter.sql_pattern,
                    &filter.action,
                    case,
                )?);
                patterns.insert((
                    fold(Some(&filter.schema_pattern)),
                    fold(filter.table_pattern.as_deref()),
                ));
            }
        }
        for (index, filter) in source_filters.iter().enumerate() {
            let key = (
                fold(Some(&filter.schema_pattern)),
                fold(filter.table_pattern.as_deref()),
            );
            if !patterns.insert(key) {
                continue;
            }
            filters.push(EventFilterRule::new(
                &format!("source-filters[{index}]"),
                &filter.schema_pattern,
                filter.table_pattern.as_deref(),
                &filter.events,
                &filter.sql_pattern,
                &filter.action,
                case,
            )?);
        }
        let mut expression_filters = Vec::new();
        for name in &instance.expression_filters {
            if let Some(filter) = self.expression_filter.get(name) {
                expression_filters.push(ExpressionFilter::new(
                    &format!("expression-filter.{name}"),
                    &filter.schema,
                    &filter.table,
                    [
                        filter.insert_value_expr.as_deref(),
                        filter.update_old_value_expr.as_deref(),
                        filter.update_new_value_expr.as_deref(),
                        filter.delete_value_expr.as_deref(),
                    ],
                    case,
                )?);
            }
        }
        let online_ddl = if self.online_ddl {
            OnlineDdlGuard::new(&self.shadow_table_rules, &self.trash_table_rules)?
        } else {
            OnlineDdlGuard::disabled()
        };
        Ok(InstanceRules {
            block_allow_list,
            router: TableRouter::new(case, routes),
            event_filter: EventFilter::new(case, filters),
            expression_filters,
            online_ddl,
        })
    }
}
