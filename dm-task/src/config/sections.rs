//! The sections of DM's task file, as serde reads them: a rule set or option set per name, and
//! the `mysql-instances` entries that reference them by name.
//!
//! ```text
//! routes.<name>: RouteConfig      filters.<name>: FilterConfig     block-allow-list.<name>
//! expression-filter.<name>        syncers.<name>: SyncerConfig     validators.<name>
//! mysql-instances[]: InstanceConfig { source-id, meta, *-rules, *-config-name, inline syncer }
//! ```
//!
//! Strict: `deny_unknown_fields`, kebab-case keys, `null` read as empty where `dmctl config
//! export` writes it. The dump and load sections stay YAML values for the dump stage.

use std::time::Duration;

use serde::Deserialize;

use super::duration::parse_duration;
use super::{ConfigWarning, null_as_default};

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

impl TaskMode {
    /// DM's name of the mode (`all`, `load&sync`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TaskMode::All => "all",
            TaskMode::Full => "full",
            TaskMode::Incremental => "incremental",
            TaskMode::Dump => "dump",
            TaskMode::Load => "load",
            TaskMode::LoadAndSync => "load&sync",
        }
    }
}

/// `block-allow-list.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BlockAllowListConfig {
    /// Schemas to replicate.
    #[serde(default, deserialize_with = "null_as_default")]
    pub do_dbs: Vec<String>,
    /// Schemas to skip.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ignore_dbs: Vec<String>,
    /// Tables to replicate.
    #[serde(default, deserialize_with = "null_as_default")]
    pub do_tables: Vec<TableNameConfig>,
    /// Tables to skip.
    #[serde(default, deserialize_with = "null_as_default")]
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

/// `routes.<name>.extract-table`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtractTableConfig {
    /// The table name's part to keep (its first capture group).
    #[serde(default)]
    pub table_regexp: String,
    /// The downstream column that receives it.
    #[serde(default)]
    pub target_column: String,
}

/// `routes.<name>.extract-schema`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtractSchemaConfig {
    /// The schema name's part to keep.
    #[serde(default)]
    pub schema_regexp: String,
    /// The downstream column that receives it.
    #[serde(default)]
    pub target_column: String,
}

/// `routes.<name>.extract-source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtractSourceConfig {
    /// The source id's part to keep.
    #[serde(default)]
    pub source_regexp: String,
    /// The downstream column that receives it.
    #[serde(default)]
    pub target_column: String,
}

/// `routes.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouteConfig {
    /// Upstream schema pattern.
    pub schema_pattern: String,
    /// Upstream table pattern (absent or empty: a schema-level rule).
    #[serde(default)]
    pub table_pattern: Option<String>,
    /// Downstream schema.
    pub target_schema: String,
    /// Downstream table.
    #[serde(default)]
    pub target_table: Option<String>,
    /// Write a part of the table name into a column: refused until shard merge builds it.
    #[serde(default)]
    pub extract_table: Option<ExtractTableConfig>,
    /// Write a part of the schema name into a column: refused until shard merge builds it.
    #[serde(default)]
    pub extract_schema: Option<ExtractSchemaConfig>,
    /// Write a part of the source id into a column: refused until shard merge builds it.
    #[serde(default)]
    pub extract_source: Option<ExtractSourceConfig>,
}

/// `filters.<name>` (and each entry of a source file's `filters`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterConfig {
    /// Schema pattern.
    pub schema_pattern: String,
    /// Table pattern (absent or empty: a schema-level rule).
    #[serde(default)]
    pub table_pattern: Option<String>,
    /// Event names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<String>,
    /// SQL regular expressions.
    #[serde(default, deserialize_with = "null_as_default")]
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

/// `syncers.<name>` (or an instance's inline `syncer`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyncerConfig {
    /// Parallel DML workers (DM default 16; 0 is refused).
    #[serde(default = "default_worker_count")]
    pub worker_count: usize,
    /// Changes per worker transaction (DM default 100; 0 means 1, as DM behaves).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Queue capacity (DM default 1024; 0 means the default).
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Seconds between checkpoint flushes (DM default 30; 0 means the default).
    #[serde(default = "default_flush_interval")]
    pub checkpoint_flush_interval: u64,
    /// Merge the changes of one row within a worker transaction and group the rest into
    /// multi-row statements. DM's default is off; ours is on (`compact: false` turns it off):
    /// the compactor keeps the order of unique values, which DM's does not.
    #[serde(default)]
    pub compact: Option<bool>,
    /// Multi-row statements (`dmctl config export` writes it as `multipleRows`). DM's default
    /// is off; ours is on (`multiple-rows: false` writes one row per statement).
    #[serde(default, alias = "multipleRows")]
    pub multiple_rows: Option<bool>,
    /// Always write idempotently.
    #[serde(default)]
    pub safe_mode: bool,
    /// Write idempotently for this long after each start (a Go duration such as `60s`). DM's
    /// default when absent is twice `checkpoint-flush-interval`; here absent means none, since
    /// checkpoints are exact (see `SyncerSettings::safe_mode_duration`).
    #[serde(default)]
    pub safe_mode_duration: Option<String>,
    /// Only read by DM from a subtask file; no effect in a task file (warned when set).
    #[serde(default)]
    pub meta_file: Option<String>,
    /// The source file's `enable-gtid` decides; no effect here (warned when true).
    #[serde(default)]
    pub enable_gtid: Option<bool>,
    /// Deprecated in DM; accepted (warned when set).
    #[serde(default)]
    pub max_retry: Option<u64>,
    /// Deprecated in DM; accepted (warned when true).
    #[serde(default)]
    pub auto_fix_gtid: Option<bool>,
    /// Deprecated in DM (causality cannot be turned off); accepted (warned when true).
    #[serde(default)]
    pub disable_detect: Option<bool>,
    /// Deprecated in DM; accepted (warned when true).
    #[serde(default)]
    pub enable_ansi_quotes: Option<bool>,
}

fn default_worker_count() -> usize {
    16
}
fn default_batch() -> usize {
    100
}
pub(super) fn default_queue_size() -> usize {
    1024
}
pub(super) fn default_flush_interval() -> u64 {
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
            multiple_rows: None,
            safe_mode: false,
            safe_mode_duration: None,
            meta_file: None,
            enable_gtid: None,
            max_retry: None,
            auto_fix_gtid: None,
            disable_detect: None,
            enable_ansi_quotes: None,
        }
    }
}

impl SyncerConfig {
    /// `safe-mode-duration` as given (zero included); `None` when absent or empty.
    pub fn safe_mode_duration(&self) -> Result<Option<Duration>, String> {
        match self.safe_mode_duration.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => parse_duration(text).map(Some),
        }
    }

    pub(super) fn warnings(&self, key: &str, out: &mut Vec<ConfigWarning>) {
        if self
            .meta_file
            .as_deref()
            .is_some_and(|file| !file.is_empty())
        {
            out.push(ConfigWarning::new(
                format!("{key}.meta-file"),
                "DM reads it only from a subtask file; no effect in a task file, here as in DM",
            ));
        }
        if self.enable_gtid == Some(true) {
            out.push(ConfigWarning::new(
                format!("{key}.enable-gtid"),
                "no effect in a task file (as in DM): the source file's `enable-gtid` decides",
            ));
        }
        if self.max_retry.is_some_and(|retries| retries > 0) {
            out.push(ConfigWarning::new(
                format!("{key}.max-retry"),
                "deprecated in DM; no effect here: transient errors are retried with backoff",
            ));
        }
        for (name, value) in [
            ("auto-fix-gtid", self.auto_fix_gtid),
            ("disable-detect", self.disable_detect),
            ("enable-ansi-quotes", self.enable_ansi_quotes),
        ] {
            if value == Some(true) {
                out.push(ConfigWarning::new(
                    format!("{key}.{name}"),
                    "deprecated in DM and without effect there; none here either",
                ));
            }
        }
    }
}

/// `validators.<name>`: DM's continuous data validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValidatorConfig {
    /// `none` (the default), `fast` or `full`; the last two are refused until the validator
    /// is built.
    #[serde(default)]
    pub mode: Option<String>,
    /// Validation workers.
    #[serde(default)]
    pub worker_count: Option<u64>,
    /// A Go duration.
    #[serde(default)]
    pub validate_interval: Option<String>,
    /// A Go duration.
    #[serde(default)]
    pub check_interval: Option<String>,
    /// A Go duration.
    #[serde(default)]
    pub row_error_delay: Option<String>,
    /// A Go duration.
    #[serde(default)]
    pub meta_flush_interval: Option<String>,
    /// Rows per validation query.
    #[serde(default)]
    pub batch_query_size: Option<u64>,
    /// Memory of pending rows (`500m`).
    #[serde(default)]
    pub max_pending_row_size: Option<String>,
    /// Pending rows.
    #[serde(default)]
    pub max_pending_row_count: Option<u64>,
}

impl ValidatorConfig {
    pub(super) fn mode(&self) -> &str {
        match self.mode.as_deref().map(str::trim) {
            None | Some("") => "none",
            Some(mode) => mode,
        }
    }

    /// The options set on a validator that is off (`mode: none`), which have no effect.
    pub(super) fn warnings(&self, key: &str, out: &mut Vec<ConfigWarning>) {
        let set = |value: Option<&str>| value.is_some_and(|text| !text.trim().is_empty());
        for (option, is_set) in [
            (
                "worker-count",
                self.worker_count.is_some_and(|count| count > 0),
            ),
            ("validate-interval", set(self.validate_interval.as_deref())),
            ("check-interval", set(self.check_interval.as_deref())),
            ("row-error-delay", set(self.row_error_delay.as_deref())),
            (
                "meta-flush-interval",
                set(self.meta_flush_interval.as_deref()),
            ),
            (
                "batch-query-size",
                self.batch_query_size.is_some_and(|size| size > 0),
            ),
            (
                "max-pending-row-size",
                set(self.max_pending_row_size.as_deref()),
            ),
            (
                "max-pending-row-count",
                self.max_pending_row_count.is_some_and(|count| count > 0),
            ),
        ] {
            if is_set {
                out.push(ConfigWarning::new(
                    format!("{key}.{option}"),
                    "no effect: the validator is off (`mode: none`), as it would be in DM",
                ));
            }
        }
    }
}

/// `experimental`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExperimentalConfig {
    /// DM's asynchronous checkpoint flush; no effect here (warned when true).
    #[serde(default)]
    pub async_checkpoint_flush: bool,
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

/// One `mysql-instances` entry. Empty `*-config-name` values read as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstanceConfig {
    /// The source's id (its source file's `source-id`).
    pub source_id: String,
    /// Start point for incremental mode.
    #[serde(default)]
    pub meta: Option<MetaConfig>,
    /// Route rule names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub route_rules: Vec<String>,
    /// Event filter rule names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub filter_rules: Vec<String>,
    /// Expression filter names.
    #[serde(default, deserialize_with = "null_as_default")]
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
    /// Dump threads (read by the dump stage).
    #[serde(default)]
    pub mydumper_thread: Option<usize>,
    /// Load threads (read by the load stage).
    #[serde(default)]
    pub loader_thread: Option<usize>,
    /// Syncer worker count (overrides the syncer entry's; 0 means "not set", as in DM).
    #[serde(default)]
    pub syncer_thread: Option<usize>,
    /// Column mapping rule names: DM refuses any (column mapping was removed).
    #[serde(default, deserialize_with = "null_as_default")]
    pub column_mapping_rules: Vec<String>,
    /// Dump options inline (read by the dump stage, `dm_dumpload::config`).
    #[serde(default)]
    pub mydumper: Option<serde_norway::Value>,
    /// Load options inline (read by the load stage).
    #[serde(default)]
    pub loader: Option<serde_norway::Value>,
    /// Syncer options inline.
    #[serde(default)]
    pub syncer: Option<SyncerConfig>,
}
