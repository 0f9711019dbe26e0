//! DM's task file (`task.yaml`) and source file (`source.yaml`), read strictly as DM reads them:
//! an unknown key is an error naming it, its line and the file; a rule referenced by an instance
//! must exist and a rule no instance references is an error; deprecated keys DM still accepts are
//! accepted.
//!
//! ```text
//! task.yaml --TaskConfig::from_yaml--> TaskConfig --rules_for(instance)--> InstanceRules
//!                                                                           { BlockAllowList, TableRouter, EventFilter,
//!                                                                             ExpressionFilter* }
//! source.yaml --SourceConfig::from_yaml--> SourceConfig
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::expression::ExpressionFilter;
use crate::filter::{
    BlockAllowList, EventFilter, EventFilterRule, Pattern, RouteRule, RuleError, TablePattern,
    TableRouter,
};

/// A configuration error: the file, and what is wrong where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ConfigError {
    /// The file (`task.yaml`).
    pub file: String,
    /// What is wrong, naming the key (and the line when the YAML parser knows it).
    pub reason: String,
}

fn yes() -> bool {
    true
}

fn default_meta_schema() -> String {
    "dm_meta".into()
}

/// `task-mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TaskMode {
    /// Dump, load, then replicate.
    #[default]
    #[serde(rename = "all")]
    All,
    /// Dump and load.
    #[serde(rename = "full")]
    Full,
    /// Replicate from `meta` (or a checkpoint).
    #[serde(rename = "incremental")]
    Incremental,
    /// Dump only.
    #[serde(rename = "dump")]
    Dump,
    /// Load existing dump files.
    #[serde(rename = "load")]
    Load,
    /// Load existing dump files, then replicate.
    #[serde(rename = "load&sync")]
    LoadAndSync,
}

/// `target-database` (and `from` in a source file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseConfig {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password (plain; DM's encrypted form is not supported).
    #[serde(default)]
    pub password: String,
    /// Session variables for every connection.
    #[serde(default)]
    pub session: BTreeMap<String, String>,
    /// TLS settings (accepted, not used yet).
    #[serde(default)]
    pub security: Option<serde_norway::Value>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub max_allowed_packet: Option<u64>,
}

impl DatabaseConfig {
    /// The sink options of this database: its address and its `session` variables (each value
    /// sent as a quoted string, which the server converts as `SET SESSION` does).
    pub fn sink_options(&self) -> dm_sink::MySqlSinkOptions {
        let mut options =
            dm_sink::MySqlSinkOptions::new(&self.host, self.port, &self.user, &self.password);
        options.session_variables = self
            .session
            .iter()
            .map(|(name, value)| (name.clone(), format!("'{}'", value.replace('\'', "''"))))
            .collect();
        options
    }
}

/// `block-allow-list.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BlockAllowListConfig {
    /// Schemas to replicate.
    #[serde(default)]
    pub do_dbs: Vec<String>,
    /// Schemas to skip.
    #[serde(default)]
    pub ignore_dbs: Vec<String>,
    /// Tables to replicate.
    #[serde(default)]
    pub do_tables: Vec<TableNameConfig>,
    /// Tables to skip.
    #[serde(default)]
    pub ignore_tables: Vec<TableNameConfig>,
}

/// `{db-name, tbl-name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TableNameConfig {
    /// Schema pattern.
    pub db_name: String,
    /// Table pattern.
    pub tbl_name: String,
}

/// `routes.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouteConfig {
    /// Upstream schema pattern.
    pub schema_pattern: String,
    /// Upstream table pattern (absent: a schema-level rule).
    #[serde(default)]
    pub table_pattern: Option<String>,
    /// Downstream schema.
    pub target_schema: String,
    /// Downstream table.
    #[serde(default)]
    pub target_table: Option<String>,
    /// Extract a table name part into a column (accepted, not applied yet).
    #[serde(default)]
    pub extract_table: Option<serde_norway::Value>,
    /// Extract a schema name part into a column (accepted, not applied yet).
    #[serde(default)]
    pub extract_schema: Option<serde_norway::Value>,
    /// Extract the source name into a column (accepted, not applied yet).
    #[serde(default)]
    pub extract_source: Option<serde_norway::Value>,
}

/// `filters.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterConfig {
    /// Schema pattern.
    pub schema_pattern: String,
    /// Table pattern (absent: a schema-level rule).
    #[serde(default)]
    pub table_pattern: Option<String>,
    /// Event names.
    #[serde(default)]
    pub events: Vec<String>,
    /// SQL regular expressions.
    #[serde(default)]
    pub sql_pattern: Vec<String>,
    /// `Do`, `Ignore` or `Error`.
    pub action: String,
}

/// `expression-filter.<name>`: exactly one of the insert, update (old and/or new) and delete
/// expressions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpressionFilterConfig {
    /// The upstream schema (a name, not a pattern).
    pub schema: String,
    /// The upstream table (a name, not a pattern).
    pub table: String,
    /// Inserts for which this is true are left out.
    #[serde(default)]
    pub insert_value_expr: Option<String>,
    /// Updates whose old row makes this true (and whose new row makes
    /// `update-new-value-expr` true, when given) are left out.
    #[serde(default)]
    pub update_old_value_expr: Option<String>,
    /// Updates whose new row makes this true (and whose old row makes
    /// `update-old-value-expr` true, when given) are left out.
    #[serde(default)]
    pub update_new_value_expr: Option<String>,
    /// Deletes for which this is true are left out.
    #[serde(default)]
    pub delete_value_expr: Option<String>,
}

/// `syncers.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyncerConfig {
    /// Parallel DML workers (DM default 16).
    #[serde(default = "default_worker_count")]
    pub worker_count: usize,
    /// Changes per worker transaction (DM default 100).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Queue capacity (DM default 1024).
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Seconds between checkpoint flushes (DM default 30).
    #[serde(default = "default_flush_interval")]
    pub checkpoint_flush_interval: u64,
    /// Merge the changes of one row within a worker transaction and group the rest into
    /// multi-row statements. DM's default is off; ours is on (`compact: false` turns it off):
    /// the compactor keeps the order of unique values, which DM's does not.
    #[serde(default)]
    pub compact: Option<bool>,
    /// Multi-row statements.
    #[serde(default)]
    pub multiple_rows: bool,
    /// Always write idempotently.
    #[serde(default)]
    pub safe_mode: bool,
    /// Automatic safe mode after a start (DM default `60s`).
    #[serde(default)]
    pub safe_mode_duration: Option<String>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub max_retry: Option<u64>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub auto_fix_gtid: Option<bool>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub disable_detect: Option<bool>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub enable_ansi_quotes: Option<bool>,
}

fn default_worker_count() -> usize {
    16
}
fn default_batch() -> usize {
    100
}
fn default_queue_size() -> usize {
    1024
}
fn default_flush_interval() -> u64 {
    30
}

impl Default for SyncerConfig {
    fn default() -> Self {
        SyncerConfig {
            worker_count: default_worker_count(),
            batch: default_batch(),
            queue_size: default_queue_size(),
            checkpoint_flush_interval: default_flush_interval(),
            compact: None,
            multiple_rows: false,
            safe_mode: false,
            safe_mode_duration: None,
            max_retry: None,
            auto_fix_gtid: None,
            disable_detect: None,
            enable_ansi_quotes: None,
        }
    }
}

/// `mysql-instances[].meta`: where an incremental task starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetaConfig {
    /// Binlog file.
    #[serde(default)]
    pub binlog_name: Option<String>,
    /// Offset in it.
    #[serde(default)]
    pub binlog_pos: Option<u64>,
    /// GTID set.
    #[serde(default)]
    pub binlog_gtid: Option<String>,
}

/// One `mysql-instances` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstanceConfig {
    /// The source's id (its source file's `source-id`).
    pub source_id: String,
    /// Start point for incremental mode.
    #[serde(default)]
    pub meta: Option<MetaConfig>,
    /// Route rule names.
    #[serde(default)]
    pub route_rules: Vec<String>,
    /// Event filter rule names.
    #[serde(default)]
    pub filter_rules: Vec<String>,
    /// Expression filter names.
    #[serde(default)]
    pub expression_filters: Vec<String>,
    /// Block-allow list name.
    #[serde(default)]
    pub block_allow_list: Option<String>,
    /// Deprecated alias of `block-allow-list`.
    #[serde(default)]
    pub black_white_list: Option<String>,
    /// `mydumpers` entry name.
    #[serde(default)]
    pub mydumper_config_name: Option<String>,
    /// `loaders` entry name.
    #[serde(default)]
    pub loader_config_name: Option<String>,
    /// `syncers` entry name.
    #[serde(default)]
    pub syncer_config_name: Option<String>,
    /// `validators` entry name.
    #[serde(default)]
    pub validator_config_name: Option<String>,
    /// Dump threads.
    #[serde(default)]
    pub mydumper_thread: Option<usize>,
    /// Load threads.
    #[serde(default)]
    pub loader_thread: Option<usize>,
    /// Syncer worker count (overrides the syncer entry's).
    #[serde(default)]
    pub syncer_thread: Option<usize>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub column_mapping_rules: Vec<String>,
    /// Dump options (accepted here; used by the dump stage).
    #[serde(default)]
    pub mydumper: Option<serde_norway::Value>,
    /// Load options (accepted here; used by the load stage).
    #[serde(default)]
    pub loader: Option<serde_norway::Value>,
    /// Syncer options inline.
    #[serde(default)]
    pub syncer: Option<SyncerConfig>,
    /// Continuous validation options (accepted, not used yet).
    #[serde(default)]
    pub continuous_validator: Option<serde_norway::Value>,
}

/// A DM task file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TaskConfig {
    /// Task name.
    pub name: String,
    /// What the task does.
    #[serde(default)]
    pub task_mode: TaskMode,
    /// `pessimistic`, `optimistic`, or empty for no shard merge.
    #[serde(default)]
    pub shard_mode: Option<String>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub is_sharding: Option<bool>,
    /// Optimistic mode that stops at conflicts.
    #[serde(default)]
    pub strict_optimistic_shard_mode: bool,
    /// Prechecks to skip.
    #[serde(default)]
    pub ignore_checking_items: Vec<String>,
    /// The downstream schema holding checkpoints.
    #[serde(default = "default_meta_schema")]
    pub meta_schema: String,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub enable_heartbeat: Option<bool>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub heartbeat_update_interval: Option<u64>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub heartbeat_report_interval: Option<u64>,
    /// Session time zone for dump, load and sync.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Whether names and patterns compare case-sensitively.
    #[serde(default)]
    pub case_sensitive: bool,
    /// `loose` (default) or `strict`.
    #[serde(default, rename = "collation_compatible")]
    pub collation_compatible: Option<String>,
    /// The downstream.
    pub target_database: DatabaseConfig,
    /// gh-ost / pt-osc support.
    #[serde(default = "yes")]
    pub online_ddl: bool,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub online_ddl_scheme: Option<String>,
    /// Shadow table name rules.
    #[serde(default)]
    pub shadow_table_rules: Vec<String>,
    /// Trash table name rules.
    #[serde(default)]
    pub trash_table_rules: Vec<String>,
    /// Route rules.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Binlog event filter rules.
    #[serde(default)]
    pub filters: BTreeMap<String, FilterConfig>,
    /// Column mappings: rejected, as DM does.
    #[serde(default)]
    pub column_mappings: Option<serde_norway::Value>,
    /// Expression filters on row values.
    #[serde(default)]
    pub expression_filter: BTreeMap<String, ExpressionFilterConfig>,
    /// Deprecated alias of `block-allow-list`.
    #[serde(default)]
    pub black_white_list: BTreeMap<String, BlockAllowListConfig>,
    /// Block-allow lists.
    #[serde(default)]
    pub block_allow_list: BTreeMap<String, BlockAllowListConfig>,
    /// Dump options by name.
    #[serde(default)]
    pub mydumpers: BTreeMap<String, serde_norway::Value>,
    /// Load options by name.
    #[serde(default)]
    pub loaders: BTreeMap<String, serde_norway::Value>,
    /// Syncer options by name.
    #[serde(default)]
    pub syncers: BTreeMap<String, SyncerConfig>,
    /// Validator options by name.
    #[serde(default)]
    pub validators: BTreeMap<String, serde_norway::Value>,
    /// Remove dump files after loading.
    #[serde(default = "yes")]
    pub clean_dump_file: bool,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub ansi_quotes: Option<bool>,
    /// Clear the task's downstream meta first.
    #[serde(default)]
    pub remove_meta: Option<bool>,
    /// Experimental options.
    #[serde(default)]
    pub experimental: Option<serde_norway::Value>,
    /// The sources.
    pub mysql_instances: Vec<InstanceConfig>,
}

/// The filters and routes of one instance (the default replicates everything, unrouted).
#[derive(Debug, Clone, Default)]
pub struct InstanceRules {
    /// What is replicated.
    pub block_allow_list: BlockAllowList,
    /// Where it goes.
    pub router: TableRouter,
    /// Which events of it.
    pub event_filter: EventFilter,
    /// Which rows of it, by value.
    pub expression_filters: Vec<ExpressionFilter>,
}

fn yaml_error(file: &str, error: &serde_norway::Error) -> ConfigError {
    let reason = match error.location() {
        Some(location) => format!(
            "line {} column {}: {error}",
            location.line(),
            location.column()
        ),
        None => error.to_string(),
    };
    ConfigError {
        file: file.to_owned(),
        reason,
    }
}

impl TaskConfig {
    /// Reads a task file's text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<TaskConfig, ConfigError> {
        let config: TaskConfig =
            serde_norway::from_str(text).map_err(|error| yaml_error(file, &error))?;
        config.check(file)?;
        Ok(config)
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        let error = |reason: String| ConfigError {
            file: file.to_owned(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(error("`name` is empty: give the task a name".into()));
        }
        if self.column_mappings.is_some() {
            return Err(error(
                "`column-mappings` is no longer supported (as in DM): use routes with extract-table/extract-schema/extract-source".into(),
            ));
        }
        if let Some(mode) = self.shard_mode.as_deref()
            && !matches!(mode, "" | "pessimistic" | "optimistic")
        {
            return Err(error(format!(
                "`shard-mode: {mode}` is not pessimistic, optimistic or empty"
            )));
        }
        if self.mysql_instances.is_empty() {
            return Err(error(
                "`mysql-instances` is empty: list at least one source".into(),
            ));
        }
        if !self.black_white_list.is_empty() && !self.block_allow_list.is_empty() {
            return Err(error(
                "`black-white-list` and `block-allow-list` are both set: keep `block-allow-list`"
                    .into(),
            ));
        }
        let lists = self.block_allow_lists();
        let mut referenced: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut seen_sources = BTreeSet::new();
        for (index, instance) in self.mysql_instances.iter().enumerate() {
            let at = format!("mysql-instances[{index}] ({})", instance.source_id);
            if instance.source_id.is_empty() {
                return Err(error(format!(
                    "mysql-instances[{index}]: `source-id` is empty"
                )));
            }
            if !seen_sources.insert(instance.source_id.clone()) {
                return Err(error(format!(
                    "{at}: source `{}` is listed twice",
                    instance.source_id
                )));
            }
            let mut check = |section: &'static str, name: &str, exists: bool| {
                if !exists {
                    return Err(error(format!(
                        "{at}: `{name}` is not defined in `{section}`"
                    )));
                }
                referenced
                    .entry(section)
                    .or_default()
                    .insert(name.to_owned());
                Ok(())
            };
            for name in &instance.route_rules {
                check("routes", name, self.routes.contains_key(name))?;
            }
            for name in &instance.filter_rules {
                check("filters", name, self.filters.contains_key(name))?;
            }
            for name in &instance.expression_filters {
                check(
                    "expression-filter",
                    name,
                    self.expression_filter.contains_key(name),
                )?;
            }
            if let Some(name) = instance
                .block_allow_list
                .as_ref()
                .or(instance.black_white_list.as_ref())
            {
                check("block-allow-list", name, lists.contains_key(name))?;
            }
            if let Some(name) = &instance.mydumper_config_name {
                check("mydumpers", name, self.mydumpers.contains_key(name))?;
            }
            if let Some(name) = &instance.loader_config_name {
                check("loaders", name, self.loaders.contains_key(name))?;
            }
            if let Some(name) = &instance.syncer_config_name {
                check("syncers", name, self.syncers.contains_key(name))?;
            }
            if let Some(name) = &instance.validator_config_name {
                check("validators", name, self.validators.contains_key(name))?;
            }
        }
        let defined: [(&str, Vec<&String>); 7] = [
            ("routes", self.routes.keys().collect()),
            ("filters", self.filters.keys().collect()),
            ("expression-filter", self.expression_filter.keys().collect()),
            ("block-allow-list", lists.keys().collect()),
            ("mydumpers", self.mydumpers.keys().collect()),
            ("loaders", self.loaders.keys().collect()),
            ("syncers", self.syncers.keys().collect()),
        ];
        for (section, names) in defined {
            for name in names {
                if !referenced
                    .get(section)
                    .is_some_and(|used| used.contains(name))
                {
                    return Err(error(format!(
                        "`{section}.{name}` is not used by any mysql-instances entry: reference it or remove it"
                    )));
                }
            }
        }
        // Every rule must also compile.
        for instance in &self.mysql_instances {
            self.rules_for(instance)
                .map_err(|failure| error(failure.to_string()))?;
        }
        Ok(())
    }

    fn block_allow_lists(&self) -> &BTreeMap<String, BlockAllowListConfig> {
        if self.block_allow_list.is_empty() {
            &self.black_white_list
        } else {
            &self.block_allow_list
        }
    }

    /// The syncer options of an instance: its inline or named entry, `syncer-thread` applied.
    pub fn syncer_for(&self, instance: &InstanceConfig) -> SyncerConfig {
        let mut config = instance
            .syncer
            .clone()
            .or_else(|| {
                instance
                    .syncer_config_name
                    .as_ref()
                    .and_then(|name| self.syncers.get(name).cloned())
            })
            .unwrap_or_default();
        if let Some(threads) = instance.syncer_thread {
            config.worker_count = threads;
        }
        config
    }

    /// Builds the filters and routes of an instance.
    pub fn rules_for(&self, instance: &InstanceConfig) -> Result<InstanceRules, RuleError> {
        let case = self.case_sensitive;
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
        let mut filters = Vec::new();
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
            }
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
        Ok(InstanceRules {
            block_allow_list,
            router: TableRouter::new(case, routes),
            event_filter: EventFilter::new(case, filters),
            expression_filters,
        })
    }
}

/// `purge` of a source file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PurgeConfig {
    /// Seconds between automatic purges.
    #[serde(default)]
    pub interval: Option<u64>,
    /// Hours after which relay files are purged (0 = never).
    #[serde(default)]
    pub expires: Option<u64>,
    /// Purge when free space falls below this many GB.
    #[serde(default)]
    pub remain_space: Option<u64>,
}

/// A DM source file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceConfig {
    /// The source's id.
    pub source_id: String,
    /// Accepted (DM's `enable`).
    #[serde(default)]
    pub enable: Option<bool>,
    /// Replicate by GTID.
    #[serde(default)]
    pub enable_gtid: bool,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub auto_fix_gtid: Option<bool>,
    /// Keep a relay log.
    #[serde(default)]
    pub enable_relay: bool,
    /// Relay start file.
    #[serde(default)]
    pub relay_binlog_name: Option<String>,
    /// Relay start GTID set.
    #[serde(default)]
    pub relay_binlog_gtid: Option<String>,
    /// Relay directory.
    #[serde(default)]
    pub relay_dir: Option<String>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub meta_dir: Option<String>,
    /// `mysql` or `mariadb` (detected when empty).
    #[serde(default)]
    pub flavor: Option<String>,
    /// Deprecated in DM; accepted.
    #[serde(default)]
    pub charset: Option<String>,
    /// The upstream.
    pub from: DatabaseConfig,
    /// Relay purge.
    #[serde(default)]
    pub purge: Option<PurgeConfig>,
    /// Task checker (accepted).
    #[serde(default)]
    pub checker: Option<serde_norway::Value>,
    /// The replica server id (random when absent).
    #[serde(default)]
    pub server_id: Option<u32>,
    /// Tracing (accepted).
    #[serde(default)]
    pub tracer: Option<serde_norway::Value>,
    /// Case sensitivity of names.
    #[serde(default)]
    pub case_sensitive: bool,
    /// Source-level event filters.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
}

impl SourceConfig {
    /// Reads a source file's text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<SourceConfig, ConfigError> {
        let config: SourceConfig =
            serde_norway::from_str(text).map_err(|error| yaml_error(file, &error))?;
        let error = |reason: &str| ConfigError {
            file: file.to_owned(),
            reason: reason.to_owned(),
        };
        if config.source_id.trim().is_empty() {
            return Err(error("`source-id` is empty"));
        }
        if let Some(flavor) = config.flavor.as_deref()
            && !matches!(
                flavor.to_ascii_lowercase().as_str(),
                "" | "mysql" | "mariadb"
            )
        {
            return Err(error("`flavor` must be mysql or mariadb"));
        }
        if config.server_id == Some(0) {
            return Err(error(
                "`server-id` 0 cannot replicate: choose a server id above 0",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::TableRef;

    const TASK: &str = r#"
name: shop-migration
task-mode: incremental
meta-schema: dm_meta
case-sensitive: false
target-database:
  host: 127.0.0.1
  port: 4000
  user: root
  password: ""
  session:
    tidb_txn_mode: optimistic
block-allow-list:
  bw:
    do-dbs: ["shop_*", "user"]
    do-tables:
      - db-name: "shop_*"
        tbl-name: "orders"
      - db-name: "user"
        tbl-name: "*"
routes:
  orders:
    schema-pattern: "shop_*"
    table-pattern: "orders"
    target-schema: "shop"
    target-table: "orders"
filters:
  no-truncate:
    schema-pattern: "shop_*"
    events: ["truncate table"]
    action: Ignore
syncers:
  global:
    worker-count: 8
    batch: 200
mysql-instances:
  - source-id: mysql-01
    meta:
      binlog-name: mysql-bin.000003
      binlog-pos: 194
    block-allow-list: bw
    route-rules: ["orders"]
    filter-rules: ["no-truncate"]
    syncer-config-name: global
"#;

    #[test]
    fn a_dm_task_file_reads_and_its_rules_apply() {
        let task = TaskConfig::from_yaml(TASK, "task.yaml").expect("valid task");
        assert_eq!(task.task_mode, TaskMode::Incremental);
        assert_eq!(task.target_database.port, 4000);
        let instance = &task.mysql_instances[0];
        assert_eq!(task.syncer_for(instance).worker_count, 8);
        assert_eq!(task.syncer_for(instance).queue_size, 1024);
        let rules = task.rules_for(instance).expect("rules");
        assert!(rules.block_allow_list.allows_table("shop_01", "orders"));
        assert!(!rules.block_allow_list.allows_table("shop_01", "goods"));
        assert_eq!(
            rules
                .router
                .route(&TableRef::new("shop_01", "orders"))
                .expect("route"),
            TableRef::new("shop", "orders")
        );
    }

    #[test]
    fn config_errors_name_the_key_and_the_file() {
        let typo = TASK.replace("worker-count", "wroker-count");
        let error = TaskConfig::from_yaml(&typo, "task.yaml").expect_err("unknown key");
        assert_eq!(error.file, "task.yaml");
        assert!(error.reason.contains("wroker-count"), "{error}");
        assert!(error.reason.contains("line"), "{error}");

        let missing = TASK.replace("route-rules: [\"orders\"]", "route-rules: [\"order\"]");
        let error = TaskConfig::from_yaml(&missing, "task.yaml").expect_err("missing rule");
        assert!(
            error.reason.contains("`order` is not defined in `routes`"),
            "{error}"
        );

        let unused = TASK.replace("filter-rules: [\"no-truncate\"]", "filter-rules: []");
        let error = TaskConfig::from_yaml(&unused, "task.yaml").expect_err("unused rule");
        assert!(error.reason.contains("filters.no-truncate"), "{error}");

        let bad_event = TASK.replace("truncate table", "truncate tables");
        let error = TaskConfig::from_yaml(&bad_event, "task.yaml").expect_err("bad event");
        assert!(error.reason.contains("filters.no-truncate"), "{error}");

        let bad_mode = TASK.replace("task-mode: incremental", "task-mode: sometimes");
        assert!(TaskConfig::from_yaml(&bad_mode, "task.yaml").is_err());
    }

    #[test]
    fn a_dm_source_file_reads() {
        let source = SourceConfig::from_yaml(
            "source-id: mysql-01\nenable-gtid: true\nflavor: mariadb\nserver-id: 9001\nfrom:\n  host: 127.0.0.1\n  port: 3306\n  user: repl\n  password: secret\npurge:\n  expires: 24\n",
            "source.yaml",
        )
        .expect("valid source");
        assert!(source.enable_gtid);
        assert_eq!(source.from.user, "repl");
        let error = SourceConfig::from_yaml(
            "source-id: x\nfrom: {host: h, port: 1, user: u}\nserver-id: 0\n",
            "source.yaml",
        )
        .expect_err("server id 0");
        assert!(error.reason.contains("server-id"), "{error}");
        let error = SourceConfig::from_yaml(
            "source-id: x\nfrom: {host: h, port: 1, user: u, pasword: p}\n",
            "source.yaml",
        )
        .expect_err("typo");
        assert!(error.reason.contains("pasword"), "{error}");
    }
}
