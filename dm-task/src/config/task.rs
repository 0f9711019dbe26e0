//! DM's task file (`task.yaml`): what to replicate from which sources, where to, and how.
//!
//! ```text
//! task.yaml --TaskConfig::parse--> TaskConfig         strict, and checked as DM checks a task
//!           --TaskConfig::from_yaml--> + refusals()   shard-mode, extract-*, a security section
//!                                                     that cannot be honoured, strict
//!                                                     collations, validators, remove-meta
//! TaskConfig --rules_for(instance) / rules_for_source(instance, source)--> InstanceRules
//!              (super::rules)
//!            --syncer_for(instance)--> SyncerConfig (DM's zero-means-default applied)
//!            --ignored_checks()--> IgnoredChecks      --warnings()--> keys without effect
//! ```
//!
//! What DM checks and so is checked here: a name; a known `task-mode`, `shard-mode`,
//! `collation_compatible`, `online-ddl-scheme` and precheck item names; no `column-mappings`
//! rule (DM dropped column mapping); at least one instance, each with a distinct source id of
//! at most 32 characters; a `meta` with a start; not both a `*-config-name` and the inline
//! section; every referenced rule defined; no rule named twice in one instance's list; no
//! route, filter, expression filter, mydumpers, loaders, syncers or validators entry unused
//! (unused block-allow-list entries are fine); `safe-mode-duration` a Go duration, and not `0s`
//! with `safe-mode: true`; a time zone DM accepts; online-DDL rules with one capture group;
//! every rule compiles. Beyond DM: `worker-count: 0` (which would start no worker in DM) is
//! refused.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::checking::{CheckingItem, IgnoredChecks};
use super::database::DatabaseConfig;
use super::duration::parse_duration;
use super::online_ddl::OnlineDdlGuard;
use super::sections::{
    BlockAllowListConfig, ExperimentalConfig, ExpressionFilterConfig, FilterConfig, InstanceConfig,
    RouteConfig, SyncerConfig, TaskMode, ValidatorConfig, default_flush_interval,
    default_queue_size,
};
use super::{
    ConfigError, ConfigRefusal, ConfigWarning, empty_as_none, null_as_default, refused, yaml_error,
};

/// DM's longest source id.
const MAX_SOURCE_ID_LENGTH: usize = 32;

fn yes() -> bool {
    true
}

fn default_meta_schema() -> String {
    "dm_meta".into()
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
    /// `pessimistic`, `optimistic`, or empty for no shard merge (`is-sharding: true` with no
    /// mode means `pessimistic`, as in DM: [`TaskConfig::shard_mode_in_effect`]). A mode is
    /// refused until shard DDL coordination is built.
    #[serde(default)]
    pub shard_mode: Option<String>,
    /// Deprecated in DM: `true` means `shard-mode: pessimistic`.
    #[serde(default)]
    pub is_sharding: Option<bool>,
    /// Optimistic mode that stops at conflicts (needs `shard-mode: optimistic`).
    #[serde(default)]
    pub strict_optimistic_shard_mode: bool,
    /// Prechecks to skip, by DM's names ([`TaskConfig::ignored_checks`]).
    #[serde(default, deserialize_with = "null_as_default")]
    pub ignore_checking_items: Vec<String>,
    /// The downstream schema holding checkpoints (empty: `dm_meta`).
    #[serde(default = "default_meta_schema")]
    pub meta_schema: String,
    /// Deprecated in DM; accepted (warned when true).
    #[serde(default)]
    pub enable_heartbeat: Option<bool>,
    /// Deprecated in DM; accepted (warned when not DM's default).
    #[serde(default)]
    pub heartbeat_update_interval: Option<u64>,
    /// Deprecated in DM; accepted (warned when not DM's default).
    #[serde(default)]
    pub heartbeat_report_interval: Option<u64>,
    /// DM's session time zone for dump, load and sync; no effect on what the syncer writes
    /// (warned).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Whether names and patterns compare case-sensitively.
    #[serde(default)]
    pub case_sensitive: bool,
    /// `loose` (default: CREATE statements run as written) or `strict` (refused).
    #[serde(default, rename = "collation_compatible")]
    pub collation_compatible: Option<String>,
    /// The downstream.
    pub target_database: DatabaseConfig,
    /// gh-ost / pt-osc support (DM default true): here a guard that stops the task at the
    /// first table of such a tool ([`OnlineDdlGuard`]).
    #[serde(default = "yes")]
    pub online_ddl: bool,
    /// Deprecated in DM: `pt` or `gh-ost` read as `online-ddl: true`.
    #[serde(default)]
    pub online_ddl_scheme: Option<String>,
    /// Shadow table name rules (empty: DM's default).
    #[serde(default, deserialize_with = "null_as_default")]
    pub shadow_table_rules: Vec<String>,
    /// Trash table name rules (empty: DM's default).
    #[serde(default, deserialize_with = "null_as_default")]
    pub trash_table_rules: Vec<String>,
    /// Route rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Binlog event filter rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub filters: BTreeMap<String, FilterConfig>,
    /// Column mappings: an empty map is accepted, any rule refused, as DM does.
    #[serde(default, deserialize_with = "null_as_default")]
    pub column_mappings: BTreeMap<String, serde_norway::Value>,
    /// Expression filters on row values.
    #[serde(default, deserialize_with = "null_as_default")]
    pub expression_filter: BTreeMap<String, ExpressionFilterConfig>,
    /// Deprecated alias of `block-allow-list` (ignored when that is set, as in DM).
    #[serde(default, deserialize_with = "null_as_default")]
    pub black_white_list: BTreeMap<String, BlockAllowListConfig>,
    /// Block-allow lists.
    #[serde(default, deserialize_with = "null_as_default")]
    pub block_allow_list: BTreeMap<String, BlockAllowListConfig>,
    /// Dump options by name (read by the dump stage).
    #[serde(default, deserialize_with = "null_as_default")]
    pub mydumpers: BTreeMap<String, serde_norway::Value>,
    /// Load options by name (read by the load stage).
    #[serde(default, deserialize_with = "null_as_default")]
    pub loaders: BTreeMap<String, serde_norway::Value>,
    /// Syncer options by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub syncers: BTreeMap<String, SyncerConfig>,
    /// Validator options by name (a mode other than `none` is refused).
    #[serde(default, deserialize_with = "null_as_default")]
    pub validators: BTreeMap<String, ValidatorConfig>,
    /// Remove dump files after loading.
    #[serde(default = "yes")]
    pub clean_dump_file: bool,
    /// Deprecated in DM; accepted (warned when true).
    #[serde(default)]
    pub ansi_quotes: Option<bool>,
    /// Deprecated in DM (`start-task --remove-meta`); `true` is refused.
    #[serde(default)]
    pub remove_meta: Option<bool>,
    /// Experimental options.
    #[serde(default)]
    pub experimental: Option<ExperimentalConfig>,
    /// The sources.
    pub mysql_instances: Vec<InstanceConfig>,
}

/// Whether a time zone is one DM accepts (`+08:00`, `-6:00`, `UTC`, `Asia/Shanghai`).
fn check_time_zone(zone: &str) -> Result<(), String> {
    if zone == "SYSTEM" || zone == "Local" {
        return Err(format!(
            "`timezone: {zone}` is not accepted (as in DM): give an offset such as +08:00 or a zone name such as Asia/Shanghai, or leave it out"
        ));
    }
    if let Some(offset) = zone.strip_prefix('+').or_else(|| zone.strip_prefix('-')) {
        let invalid = || {
            format!(
                "`timezone: {zone}` is not an offset DM accepts: write [+-]HH:MM between -12:59 and +14:00"
            )
        };
        let (hours, minutes) = offset.split_once(':').unwrap_or((offset, "00"));
        let all_digits = |text: &str| !text.is_empty() && text.chars().all(|c| c.is_ascii_digit());
        if !all_digits(hours) || !all_digits(minutes) || hours.len() > 2 || minutes.len() != 2 {
            return Err(invalid());
        }
        let hours: u32 = hours.parse().map_err(|_| invalid())?;
        let minutes: u32 = minutes.parse().map_err(|_| invalid())?;
        let total = hours * 60 + minutes;
        let limit = if zone.starts_with('-') {
            12 * 60 + 59
        } else {
            14 * 60
        };
        if minutes > 59 || total > limit {
            return Err(invalid());
        }
        return Ok(());
    }
    let name_like = !zone.is_empty()
        && zone.chars().all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '/' | '_' | '-' | '+')
        });
    if !name_like {
        return Err(format!(
            "`timezone: {zone}` is not a zone name or an offset: write e.g. Asia/Shanghai, UTC or +08:00"
        ));
    }
    Ok(())
}

fn duplicates(names: &[String]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    let mut twice = BTreeSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            twice.insert(name.as_str());
        }
    }
    twice.into_iter().collect()
}

impl TaskConfig {
    /// Reads a task file's text as DM reads it (`file` names it in errors): strictly, with
    /// DM's checks, empty values DM treats as absent normalised and encrypted passwords
    /// decrypted. Keys whose feature is not built here are not refused: see
    /// [`TaskConfig::refusals`] (and [`TaskConfig::from_yaml`], which refuses them).
    pub fn parse(text: &str, file: &str) -> Result<TaskConfig, ConfigError> {
        let mut config: TaskConfig =
            serde_norway::from_str(text).map_err(|error| yaml_error(file, &error))?;
        config.check(file)?;
        Ok(config)
    }

    /// Reads a task file to run it: [`TaskConfig::parse`], and every key this implementation
    /// cannot honour refused ([`TaskConfig::refusals`]), each named with its reason.
    pub fn from_yaml(text: &str, file: &str) -> Result<TaskConfig, ConfigError> {
        let config = TaskConfig::parse(text, file)?;
        let refusals = config.refusals();
        if !refusals.is_empty() {
            return Err(refused(file, &refusals));
        }
        Ok(config)
    }

    fn check(&mut self, file: &str) -> Result<(), ConfigError> {
        let error = |reason: String| ConfigError {
            file: file.to_owned(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(error("`name` is empty: give the task a name".into()));
        }
        if self.meta_schema.trim().is_empty() {
            self.meta_schema = default_meta_schema();
        }
        for value in [
            &mut self.shard_mode,
            &mut self.timezone,
            &mut self.collation_compatible,
            &mut self.online_ddl_scheme,
        ] {
            empty_as_none(value);
        }
        match self.shard_mode.as_deref() {
            None | Some("pessimistic" | "optimistic") => {}
            Some(mode) => {
                return Err(error(format!(
                    "`shard-mode: {mode}` is not pessimistic, optimistic or empty"
                )));
            }
        }
        if self.strict_optimistic_shard_mode && self.shard_mode_in_effect() != Some("optimistic") {
            return Err(error(
                "`strict-optimistic-shard-mode: true` needs `shard-mode: optimistic` (as in DM): set both or remove it".into(),
            ));
        }
        if !self.column_mappings.is_empty() {
            return Err(error(
                "`column-mappings` holds rules: column mapping was removed from DM and is refused as DM refuses it; use routes (extract-table/extract-schema/extract-source) or leave the map empty".into(),
            ));
        }
        if let Some(mode) = self.collation_compatible.as_deref()
            && !matches!(mode, "loose" | "strict")
        {
            return Err(error(format!(
                "`collation_compatible: {mode}` is not loose or strict"
            )));
        }
        for item in &self.ignore_checking_items {
            if CheckingItem::parse(item).is_none() {
                return Err(error(format!(
                    "`ignore-checking-items` names `{item}`, which is not a DM check; DM's are: {}",
                    CheckingItem::every_name()
                )));
            }
        }
        match self.online_ddl_scheme.as_deref() {
            None => {}
            Some("pt" | "gh-ost") => self.online_ddl = true,
            Some(scheme) => {
                return Err(error(format!(
                    "`online-ddl-scheme: {scheme}` is not pt or gh-ost (the key is deprecated: use `online-ddl: true`)"
                )));
            }
        }
        OnlineDdlGuard::new(&self.shadow_table_rules, &self.trash_table_rules)
            .map_err(|failure| error(format!("`{}`: {}", failure.rule, failure.reason)))?;
        if let Some(zone) = self.timezone.as_deref() {
            check_time_zone(zone).map_err(error)?;
        }
        if self.mysql_instances.is_empty() {
            return Err(error(
                "`mysql-instances` is empty: list at least one source".into(),
            ));
        }
        for (name, validator) in &self.validators {
            let mode = validator.mode();
            if !matches!(mode, "none" | "fast" | "full") {
                return Err(error(format!(
                    "`validators.{name}.mode: {mode}` is not none, fast or full"
                )));
            }
            for (key, value) in [
                ("validate-interval", &validator.validate_interval),
                ("check-interval", &validator.check_interval),
                ("row-error-delay", &validator.row_error_delay),
                ("meta-flush-interval", &validator.meta_flush_interval),
            ] {
                if let Some(text) = value.as_deref().filter(|text| !text.trim().is_empty()) {
                    parse_duration(text)
                        .map_err(|reason| error(format!("`validators.{name}.{key}`: {reason}")))?;
                }
            }
        }
        self.target_database.decrypt_password();

        let lists = self.block_allow_lists().clone();
        let mut referenced: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut seen_sources = BTreeSet::new();
        for index in 0..self.mysql_instances.len() {
            let instance = &mut self.mysql_instances[index];
            for value in [
                &mut instance.block_allow_list,
                &mut instance.black_white_list,
                &mut instance.mydumper_config_name,
                &mut instance.loader_config_name,
                &mut instance.syncer_config_name,
                &mut instance.validator_config_name,
            ] {
                empty_as_none(value);
            }
            if let Some(meta) = &mut instance.meta {
                empty_as_none(&mut meta.binlog_name);
                empty_as_none(&mut meta.binlog_gtid);
            }
            let instance = &self.mysql_instances[index];
            let at = format!("mysql-instances[{index}] ({})", instance.source_id);
            if instance.source_id.trim().is_empty() {
                return Err(error(format!(
                    "mysql-instances[{index}]: `source-id` is empty"
                )));
            }
            if instance.source_id.chars().count() > MAX_SOURCE_ID_LENGTH {
                return Err(error(format!(
                    "{at}: `source-id` is longer than {MAX_SOURCE_ID_LENGTH} characters (DM's limit)"
                )));
            }
            if !seen_sources.insert(instance.source_id.clone()) {
                return Err(error(format!(
                    "{at}: source `{}` is listed twice",
                    instance.source_id
                )));
            }
            if let Some(meta) = &instance.meta
                && meta.binlog_name.is_none()
                && meta.binlog_gtid.is_none()
            {
                return Err(error(format!(
                    "{at}: `meta` has neither binlog-name nor binlog-gtid: give the start (binlog-name and binlog-pos, or binlog-gtid) or remove `meta`"
                )));
            }
            for (name_key, named, inline_key, inline) in [
                (
                    "mydumper-config-name",
                    instance.mydumper_config_name.is_some(),
                    "mydumper",
                    instance.mydumper.is_some(),
                ),
                (
                    "loader-config-name",
                    instance.loader_config_name.is_some(),
                    "loader",
                    instance.loader.is_some(),
                ),
                (
                    "syncer-config-name",
                    instance.syncer_config_name.is_some(),
                    "syncer",
                    instance.syncer.is_some(),
                ),
            ] {
                if named && inline {
                    return Err(error(format!(
                        "{at}: both `{name_key}` and `{inline_key}` are set: keep one (as DM requires)"
                    )));
                }
            }
            for (key, names) in [
                ("route-rules", &instance.route_rules),
                ("filter-rules", &instance.filter_rules),
                ("column-mapping-rules", &instance.column_mapping_rules),
                ("expression-filters", &instance.expression_filters),
            ] {
                let twice = duplicates(names);
                if !twice.is_empty() {
                    return Err(error(format!(
                        "{at}: `{key}` names {} more than once",
                        twice.join(", ")
                    )));
                }
            }
            if !instance.column_mapping_rules.is_empty() {
                return Err(error(format!(
                    "{at}: `column-mapping-rules` names rules: column mapping was removed from DM and is refused as DM refuses it; remove the list"
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
            let syncer = self.syncer_for(instance);
            let syncer_key = self.syncer_key(instance);
            if syncer.worker_count == 0 {
                return Err(error(format!(
                    "{at}: `{syncer_key}.worker-count: 0` would start no worker: give at least 1 (DM's default is 16), or set `syncer-thread`"
                )));
            }
            let duration = syncer.safe_mode_duration().map_err(|reason| {
                error(format!("{at}: `{syncer_key}.safe-mode-duration`: {reason}"))
            })?;
            if syncer.safe_mode && duration.is_some_and(|duration| duration.is_zero()) {
                return Err(error(format!(
                    "{at}: `{syncer_key}` sets `safe-mode: true` with `safe-mode-duration: 0s`, which contradict each other (DM refuses them too): remove one"
                )));
            }
        }
        // As DM: every named rule or option set is used; block-allow lists need not be.
        let defined: [(&str, Vec<&String>); 7] = [
            ("routes", self.routes.keys().collect()),
            ("filters", self.filters.keys().collect()),
            ("expression-filter", self.expression_filter.keys().collect()),
            ("mydumpers", self.mydumpers.keys().collect()),
            ("loaders", self.loaders.keys().collect()),
            ("syncers", self.syncers.keys().collect()),
            ("validators", self.validators.keys().collect()),
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

    /// How an instance's syncer options are named in messages.
    fn syncer_key(&self, instance: &InstanceConfig) -> String {
        match (&instance.syncer, &instance.syncer_config_name) {
            (Some(_), _) => "syncer".into(),
            (None, Some(name)) => format!("syncers.{name}"),
            (None, None) => "syncers".into(),
        }
    }

    /// The shard mode in force (`is-sharding: true` alone reads as pessimistic).
    pub fn shard_mode_in_effect(&self) -> Option<&str> {
        match self.shard_mode.as_deref() {
            Some(mode) if !mode.is_empty() => Some(mode),
            _ if self.is_sharding == Some(true) => Some("pessimistic"),
            _ => None,
        }
    }

    /// The keys of this task whose feature is not built here, each with the reason and what to
    /// do; [`TaskConfig::from_yaml`] refuses a task with any.
    pub fn refusals(&self) -> Vec<ConfigRefusal> {
        let mut refusals = Vec::new();
        if let Some(mode) = self.shard_mode_in_effect() {
            let key = match self.shard_mode.as_deref() {
                Some(given) if !given.is_empty() => format!("shard-mode: {given}"),
                _ => "is-sharding: true".into(),
            };
            refusals.push(ConfigRefusal::new(
                key,
                format!(
                    "shard DDL coordination ({mode} shard merge) is not built yet (dm-shardddl, \
                     after issue #17). Without it every shard's DDL would run as it comes: \
                     remove the key (and `is-sharding`) only if the shards change their schemas \
                     identically and repeats are harmless downstream"
                ),
            ));
        }
        for (name, route) in &self.routes {
            for (key, set) in [
                ("extract-table", route.extract_table.is_some()),
                ("extract-schema", route.extract_schema.is_some()),
                ("extract-source", route.extract_source.is_some()),
            ] {
                if set {
                    refusals.push(ConfigRefusal::new(
                        format!("routes.{name}.{key}"),
                        "extract columns (the shard's table, schema or source name written into \
                         a downstream column) come with shard merge, not built yet: remove it",
                    ));
                }
            }
        }
        if self.collation_compatible.as_deref() == Some("strict") {
            refusals.push(ConfigRefusal::new(
                "collation_compatible: strict",
                "adding the upstream's default charset and collation to CREATE statements is \
                 not built: use `loose` (the default), which runs CREATE statements as the \
                 upstream wrote them; create the downstream tables yourself where collations \
                 must match",
            ));
        }
        for (index, instance) in self.mysql_instances.iter().enumerate() {
            if let Some(name) = &instance.validator_config_name
                && let Some(validator) = self.validators.get(name)
                && validator.mode() != "none"
            {
                refusals.push(ConfigRefusal::new(
                    format!("validators.{name}.mode: {}", validator.mode()),
                    format!(
                        "continuous data validation (DM's validator, used by mysql-instances[{index}]) \
                         is not built yet: set `mode: none` or remove `validator-config-name`"
                    ),
                ));
            }
        }
        if self.remove_meta == Some(true) {
            refusals.push(ConfigRefusal::new(
                "remove-meta: true",
                format!(
                    "deprecated in DM (replaced by `start-task --remove-meta`) and not done from \
                     the task file here: drop the task's tables in `{}` yourself (or use another \
                     meta-schema) and remove the key",
                    self.meta_schema
                ),
            ));
        }
        self.target_database
            .refusals("target-database", true, &mut refusals);
        refusals
    }

    /// The keys of this task that are accepted and have no effect here, each with the reason.
    /// Keys set to DM's default values (as `dmctl config export` writes them) are not named.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        let deprecated = "deprecated in DM and without effect there; none here either";
        if self.enable_heartbeat == Some(true) {
            warnings.push(ConfigWarning::new("enable-heartbeat", deprecated));
        }
        for (key, value, default) in [
            (
                "heartbeat-update-interval",
                self.heartbeat_update_interval,
                1,
            ),
            (
                "heartbeat-report-interval",
                self.heartbeat_report_interval,
                10,
            ),
        ] {
            if value.is_some_and(|value| value != default && value != 0) {
                warnings.push(ConfigWarning::new(key, deprecated));
            }
        }
        if self.ansi_quotes == Some(true) {
            warnings.push(ConfigWarning::new("ansi-quotes", deprecated));
        }
        if let Some(scheme) = &self.online_ddl_scheme {
            warnings.push(ConfigWarning::new(
                format!("online-ddl-scheme: {scheme}"),
                "deprecated in DM: read as `online-ddl: true`",
            ));
        }
        if !self.online_ddl
            && (!self.shadow_table_rules.is_empty() || !self.trash_table_rules.is_empty())
        {
            warnings.push(ConfigWarning::new(
                "shadow-table-rules / trash-table-rules",
                "no effect with `online-ddl: false`: the tools' tables replicate as plain tables",
            ));
        }
        if let Some(zone) = &self.timezone {
            let dump = if matches!(self.task_mode, TaskMode::Incremental) {
                ""
            } else {
                " (the dump stage sets its sessions' zone from it: see its options)"
            };
            warnings.push(ConfigWarning::new(
                format!("timezone: {zone}"),
                format!(
                    "no effect on what the syncer writes: TIMESTAMP values are copied as \
                     instants (written in UTC), which is what DM's session zone achieves too; \
                     expression filters read TIMESTAMP literals without an offset as UTC, so \
                     give the offset (`'2024-01-01 00:00:00+08:00'`){dump}"
                ),
            ));
        }
        if !self.black_white_list.is_empty() && !self.block_allow_list.is_empty() {
            warnings.push(ConfigWarning::new(
                "black-white-list",
                "ignored because `block-allow-list` is set (as in DM): merge it there",
            ));
        }
        for item in &self.ignore_checking_items {
            if let Some(item) = CheckingItem::parse(item)
                && !item.is_checked_here()
            {
                warnings.push(ConfigWarning::new(
                    format!("ignore-checking-items: {}", item.name()),
                    "no such check here yet, so there is nothing to skip",
                ));
            }
        }
        if self
            .experimental
            .as_ref()
            .is_some_and(|experimental| experimental.async_checkpoint_flush)
        {
            warnings.push(ConfigWarning::new(
                "experimental.async-checkpoint-flush",
                "no effect here: each worker commits its checkpoint with its own batch, so no \
                 flush holds up the stream",
            ));
        }
        for (name, syncer) in &self.syncers {
            syncer.warnings(&format!("syncers.{name}"), &mut warnings);
        }
        for (name, validator) in &self.validators {
            if validator.mode() == "none" {
                validator.warnings(&format!("validators.{name}"), &mut warnings);
            }
        }
        for (index, instance) in self.mysql_instances.iter().enumerate() {
            if let Some(syncer) = &instance.syncer {
                syncer.warnings(&format!("mysql-instances[{index}].syncer"), &mut warnings);
            }
            if instance.meta.is_some()
                && matches!(
                    self.task_mode,
                    TaskMode::All | TaskMode::Full | TaskMode::Dump | TaskMode::Load
                )
            {
                warnings.push(ConfigWarning::new(
                    format!("mysql-instances[{index}].meta"),
                    format!(
                        "not used in task-mode {} (as in DM): replication starts where the dump \
                         was taken, or never",
                        self.task_mode.name()
                    ),
                ));
            }
        }
        self.target_database
            .warnings("target-database", true, &mut warnings);
        warnings
    }

    /// The prechecks `ignore-checking-items` skips (names were checked when the file was read).
    pub fn ignored_checks(&self) -> IgnoredChecks {
        IgnoredChecks::new(
            self.ignore_checking_items
                .iter()
                .filter_map(|item| CheckingItem::parse(item)),
        )
    }

    pub(super) fn block_allow_lists(&self) -> &BTreeMap<String, BlockAllowListConfig> {
        if self.block_allow_list.is_empty() {
            &self.black_white_list
        } else {
            &self.block_allow_list
        }
    }

    /// The syncer options of an instance: its inline or named entry, `syncer-thread` applied
    /// (0 means not set), and DM's zero values replaced as DM replaces them (`queue-size` and
    /// `checkpoint-flush-interval` 0: the defaults; `batch` 0: one change per transaction).
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
        if let Some(threads) = instance.syncer_thread.filter(|threads| *threads > 0) {
            config.worker_count = threads;
        }
        if config.queue_size == 0 {
            config.queue_size = default_queue_size();
        }
        if config.checkpoint_flush_interval == 0 {
            config.checkpoint_flush_interval = default_flush_interval();
        }
        if config.batch == 0 {
            config.batch = 1;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dm_core::TableRef;

    use super::*;
    use crate::config::SourceConfig;
    use crate::filter::{FilterAction, FilterEvent};

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

    fn task(text: &str) -> TaskConfig {
        TaskConfig::from_yaml(text, "task.yaml").unwrap_or_else(|error| panic!("{error}"))
    }

    fn refused(text: &str) -> String {
        TaskConfig::from_yaml(text, "task.yaml")
            .expect_err("refused")
            .reason
    }

    #[test]
    fn a_dm_task_file_reads_and_its_rules_apply() {
        let task = task(TASK);
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
        assert!(
            rules.online_ddl.is_enabled(),
            "DM's default online-ddl: true"
        );
        assert_eq!(
            task.warnings()
                .into_iter()
                .map(|warning| warning.key)
                .collect::<Vec<_>>(),
            ["target-database.session.tidb_txn_mode"]
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
        assert!(refused(&missing).contains("`order` is not defined in `routes`"));

        let unused = TASK.replace("filter-rules: [\"no-truncate\"]", "filter-rules: []");
        assert!(refused(&unused).contains("filters.no-truncate"));

        let bad_event = TASK.replace("truncate table", "truncate tables");
        assert!(refused(&bad_event).contains("filters.no-truncate"));

        let bad_mode = TASK.replace("task-mode: incremental", "task-mode: sometimes");
        assert!(TaskConfig::from_yaml(&bad_mode, "task.yaml").is_err());

        let twice = TASK.replace("route-rules: [\"orders\"]", "route-rules: [orders, orders]");
        assert!(refused(&twice).contains("`route-rules` names orders more than once"));

        let no_start = TASK.replace(
            "      binlog-name: mysql-bin.000003\n      binlog-pos: 194\n",
            "      binlog-name: ''\n      binlog-pos: 194\n",
        );
        assert!(refused(&no_start).contains("`meta` has neither"));

        let both = TASK.replace(
            "    syncer-config-name: global\n",
            "    syncer-config-name: global\n    syncer: {batch: 1}\n",
        );
        assert!(refused(&both).contains("both `syncer-config-name` and `syncer`"));
    }

    #[test]
    fn what_dm_accepts_is_accepted() {
        // An unused block-allow list, empty config names, an empty column-mappings map, the
        // deprecated syncer keys, zero threads and DM's `multipleRows` spelling.
        let accepted = TASK
            .replace(
                "block-allow-list:\n  bw:",
                "column-mappings: {}\nblock-allow-list:\n  spare:\n    do-dbs: [other]\n  bw:",
            )
            .replace(
                "    worker-count: 8\n",
                "    worker-count: 8\n    meta-file: ''\n    enable-gtid: false\n    multipleRows: true\n",
            )
            .replace(
                "    syncer-config-name: global\n",
                "    syncer-config-name: global\n    mydumper-config-name: ''\n    loader-config-name: ''\n    validator-config-name: ''\n    syncer-thread: 0\n    mydumper-thread: 0\n    loader-thread: 0\n",
            );
        let task = task(&accepted);
        let instance = &task.mysql_instances[0];
        assert_eq!(instance.mydumper_config_name, None);
        let syncer = task.syncer_for(instance);
        assert_eq!(
            syncer.worker_count, 8,
            "syncer-thread 0 keeps the entry's count"
        );
        assert_eq!(syncer.multiple_rows, Some(true));

        let mapping = TASK.replace(
            "block-allow-list:\n  bw:",
            "column-mappings:\n  m:\n    schema-pattern: a\nblock-allow-list:\n  bw:",
        );
        assert!(refused(&mapping).contains("column-mappings"));
    }

    #[test]
    fn syncer_zeros_mean_dm_defaults_and_worker_count_zero_is_refused() {
        let zeros = TASK.replace(
            "    worker-count: 8\n    batch: 200\n",
            "    worker-count: 8\n    batch: 0\n    queue-size: 0\n    checkpoint-flush-interval: 0\n",
        );
        let task = task(&zeros);
        let syncer = task.syncer_for(&task.mysql_instances[0]);
        assert_eq!(
            (
                syncer.batch,
                syncer.queue_size,
                syncer.checkpoint_flush_interval
            ),
            (1, 1024, 30)
        );
        let no_workers = TASK.replace("worker-count: 8", "worker-count: 0");
        let reason = refused(&no_workers);
        assert!(
            reason.contains("syncers.global.worker-count: 0"),
            "{reason}"
        );
        let rescued = no_workers.replace(
            "    syncer-config-name: global\n",
            "    syncer-config-name: global\n    syncer-thread: 4\n",
        );
        assert_eq!(
            self::task(&rescued)
                .syncer_for(&self::task(&rescued).mysql_instances[0])
                .worker_count,
            4
        );
    }

    #[test]
    fn safe_mode_duration_reads_go_durations() {
        let with =
            |value: &str| TASK.replace("    batch: 200\n", &format!("    batch: 200\n{value}"));
        let task = task(&with("    safe-mode-duration: 1m30s\n"));
        assert_eq!(
            task.syncer_for(&task.mysql_instances[0])
                .safe_mode_duration(),
            Ok(Some(Duration::from_secs(90)))
        );
        let reason = refused(&with("    safe-mode-duration: 90\n"));
        assert!(
            reason.contains("syncers.global.safe-mode-duration"),
            "{reason}"
        );
        assert!(reason.contains("without a unit"), "{reason}");
        let reason = refused(&with("    safe-mode: true\n    safe-mode-duration: 0s\n"));
        assert!(reason.contains("safe-mode-duration: 0s"), "{reason}");
    }

    #[test]
    fn features_not_built_are_refused_by_name() {
        for (text, key) in [
            (TASK.replace("case-sensitive: false", "shard-mode: optimistic"), "shard-mode: optimistic"),
            (TASK.replace("case-sensitive: false", "is-sharding: true"), "is-sharding: true"),
            (
                TASK.replace("    target-table: \"orders\"\n", "    target-table: \"orders\"\n    extract-table:\n      table-regexp: \"(.*)\"\n      target-column: c_table\n"),
                "routes.orders.extract-table",
            ),
            (TASK.replace("case-sensitive: false", "collation_compatible: strict"), "collation_compatible: strict"),
            (TASK.replace("case-sensitive: false", "remove-meta: true"), "remove-meta: true"),
            (
                TASK.replace("  session:\n", "  security:\n    ssl-cert: /client.pem\n    ssl-key: /client-key.pem\n  session:\n"),
                "target-database.security",
            ),
            (
                TASK.replace("    tidb_txn_mode: optimistic\n", "    foreign_key_checks: 1\n"),
                "target-database.session.foreign_key_checks",
            ),
            (
                TASK.replace("syncers:\n", "validators:\n  v:\n    mode: full\nsyncers:\n")
                    .replace("    syncer-config-name: global\n", "    syncer-config-name: global\n    validator-config-name: v\n"),
                "validators.v.mode: full",
            ),
        ] {
            let reason = refused(&text);
            assert!(reason.contains(&format!("`{key}`")), "{key}: {reason}");
            // Yet DM reads it: the file parses.
            TaskConfig::parse(&text, "task.yaml").unwrap_or_else(|error| panic!("{key}: {error}"));
        }
        // Empty values of those keys are fine.
        for text in [
            TASK.replace("case-sensitive: false", "shard-mode: ''\nis-sharding: false\ncollation_compatible: loose\nremove-meta: false"),
            TASK.replace("  session:\n", "  security: null\n  session:\n"),
            TASK.replace("syncers:\n", "validators:\n  v:\n    mode: none\nsyncers:\n")
                .replace("    syncer-config-name: global\n", "    syncer-config-name: global\n    validator-config-name: v\n"),
        ] {
            task(&text);
        }
    }

    #[test]
    fn ignore_checking_items_are_dm_names() {
        let text = TASK.replace(
            "case-sensitive: false",
            "ignore-checking-items: [binlog_format, auto_increment_ID]",
        );
        let task = task(&text);
        let checks = task.ignored_checks();
        assert!(checks.skips(CheckingItem::BinlogFormat));
        assert!(!checks.skips(CheckingItem::BinlogRowImage));
        let warned: Vec<String> = task
            .warnings()
            .into_iter()
            .map(|warning| warning.key)
            .collect();
        assert!(
            warned.contains(&"ignore-checking-items: auto_increment_ID".to_owned()),
            "{warned:?}"
        );
        assert!(!warned.iter().any(|key| key.contains("binlog_format")));
        let reason =
            refused(&TASK.replace("case-sensitive: false", "ignore-checking-items: [binlog]"));
        assert!(reason.contains("`binlog`"), "{reason}");
        assert!(
            reason.contains("binlog_format"),
            "lists DM's names: {reason}"
        );
    }

    #[test]
    fn timezones_are_checked_as_dm_does_and_warned() {
        for zone in ["+04:00", "-6:00", "UTC", "Asia/Shanghai", "+14:00"] {
            let task =
                task(&TASK.replace("case-sensitive: false", &format!("timezone: \"{zone}\"")));
            assert!(
                task.warnings()
                    .iter()
                    .any(|warning| warning.key.starts_with("timezone"))
            );
        }
        for zone in ["SYSTEM", "+15:00", "-13:00", "+8:0x", "not a zone"] {
            let reason =
                refused(&TASK.replace("case-sensitive: false", &format!("timezone: \"{zone}\"")));
            assert!(reason.contains("timezone"), "{zone}: {reason}");
        }
    }

    #[test]
    fn online_ddl_rules_build_the_guard() {
        let rules = |text: &str| {
            let task = task(text);
            task.rules_for(&task.mysql_instances[0]).expect("rules")
        };
        let guarded = rules(TASK);
        let stop = guarded
            .online_ddl_stop(&TableRef::new("shop_01", "_orders_gho"))
            .expect("a ghost table of a replicated table");
        assert!(stop.contains("online-ddl: false"), "{stop}");
        // The real table `goods` is not replicated: nothing to stop for (DM filters the same way).
        assert_eq!(
            guarded.online_ddl_stop(&TableRef::new("shop_01", "_goods_gho")),
            None
        );
        let off = rules(&TASK.replace("case-sensitive: false", "online-ddl: false"));
        assert!(!off.online_ddl.is_enabled());
        assert_eq!(
            off.online_ddl_stop(&TableRef::new("shop_01", "_orders_gho")),
            None
        );
        let custom = rules(&TASK.replace(
            "case-sensitive: false",
            "shadow-table-rules: [\"^_(.+)_shadow$\"]\ntrash-table-rules: [\"^_(.+)_trash$\"]",
        ));
        assert!(custom.online_ddl.classify("_orders_shadow").is_some());
        assert!(custom.online_ddl.classify("_orders_gho").is_none());
        let reason = refused(&TASK.replace(
            "case-sensitive: false",
            "shadow-table-rules: [\"^_(.+)_(.+)$\"]",
        ));
        assert!(reason.contains("shadow-table-rules"), "{reason}");
        let scheme = task(&TASK.replace(
            "case-sensitive: false",
            "online-ddl: false\nonline-ddl-scheme: gh-ost",
        ));
        assert!(
            scheme.online_ddl,
            "the deprecated scheme turns online-ddl on, as in DM"
        );
    }

    #[test]
    fn source_filters_follow_the_task_filters() {
        let task = task(TASK);
        let source = SourceConfig::from_yaml(
            "source-id: mysql-01\ncase-sensitive: true\nfrom: {host: h, port: 1, user: u}\nfilters:\n  - schema-pattern: \"shop_*\"\n    events: [\"drop table\"]\n    action: Ignore\n  - schema-pattern: \"user\"\n    table-pattern: \"audit\"\n    events: [\"all dml\"]\n    action: Ignore\n",
            "source.yaml",
        )
        .expect("source");
        let instance = &task.mysql_instances[0];
        let plain = task.rules_for(instance).expect("task rules");
        let merged = task
            .rules_for_source(instance, &source)
            .expect("merged rules");
        // The task's own rule holds either way.
        for rules in [&plain, &merged] {
            assert_eq!(
                rules
                    .event_filter
                    .decide(
                        "shop_01",
                        "",
                        Some(FilterEvent::Ddl(crate::filter::DdlEventKind::TruncateTable)),
                        None
                    )
                    .0,
                FilterAction::Ignore
            );
        }
        // The source's first rule has the task rule's patterns: the task's wins, so DROP TABLE
        // of shop_* still replicates.
        assert_eq!(
            merged
                .event_filter
                .decide(
                    "shop_01",
                    "orders",
                    Some(FilterEvent::Ddl(crate::filter::DdlEventKind::DropTable)),
                    None
                )
                .0,
            FilterAction::Do
        );
        // The source's second rule applies to every task of the source.
        assert_eq!(
            merged
                .event_filter
                .decide("user", "audit", Some(FilterEvent::Insert), None),
            (FilterAction::Ignore, Some("source-filters[1]"))
        );
        assert_eq!(
            plain
                .event_filter
                .decide("user", "audit", Some(FilterEvent::Insert), None)
                .0,
            FilterAction::Do
        );
        // The source is case-sensitive, so the merged rules are.
        assert!(!merged.block_allow_list.allows_table("USER", "x"));
        assert!(plain.block_allow_list.allows_table("USER", "x"));
    }
}
