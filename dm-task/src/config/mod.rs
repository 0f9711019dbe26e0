//! DM's task file (`task.yaml`) and source file (`source.yaml`), and what each of their keys
//! does here. The rule: every key DM reads either takes effect, or is refused with its name,
//! the reason and what to do; a key that has no effect here (as it has none in DM, or means
//! something only to TiDB) is named in a warning. Nothing is silently ignored.
//! `docs/dm-config-keys.md` lists every key and what becomes of it.
//!
//! ```text
//! task.yaml --TaskConfig::parse----> TaskConfig   read strictly and checked as DM checks it:
//!             (DM-valid files load)                 unknown keys, missing rules, unused rules...
//!             --TaskConfig::from_yaml--> parse + refusals(): a key of a feature not built here
//!                                        (shard DDL, TLS, the validator...) is an error naming it
//!           TaskConfig::warnings() -> keys accepted without effect, each with its reason
//!           TaskConfig::rules_for(instance)                 -> InstanceRules
//!           TaskConfig::rules_for_source(instance, source)  -> InstanceRules + the source's filters
//!             InstanceRules { BlockAllowList, TableRouter, EventFilter, ExpressionFilter*,
//!                             OnlineDdlGuard }
//!           TaskConfig::syncer_for(instance) -> SyncerConfig (dm_syncer::SyncerSettings::from_task)
//! source.yaml --SourceConfig::parse / from_yaml--> SourceConfig (+ refusals(), warnings())
//!           SourceConfig::replica_settings(task) -> ReplicaSettings (dm_syncer::remote_options)
//!           DatabaseConfig::session_variables()   -> what the sink sends (dm_syncer::sink_options)
//! ```
//!
//! Reading follows DM: `deny_unknown_fields` and kebab-case keys; a rule an instance references
//! must exist, and a route, filter, expression filter, mydumpers/loaders/syncers or validators
//! entry that no instance references is an error (a block-allow list entry is not, as in DM);
//! empty `*-config-name` values mean "none"; `syncer-thread: 0` and the other zero values DM
//! defaults are DM's defaults; deprecated keys DM still reads are read. Passwords that DM
//! encrypted are decrypted with DM's built-in key ([`password`]). Reading is pure: no file or
//! network access.
//!
//! Errors: [`ConfigError`] names the file, the key and what to do; [`crate::TaskError`] wraps it
//! (DM-14006), and dm-syncer's error wraps that.
//!
//! The `mydumpers`/`loaders` sections, an instance's inline `mydumper`/`loader` and the
//! `mydumper-thread`/`loader-thread` aliases are read by the dump and load stage
//! (`dm_dumpload::config`); here they are kept as YAML values.

mod checking;
mod database;
mod duration;
mod online_ddl;
pub mod password;
mod rules;
mod sections;
mod source;
mod task;

use std::fmt;

use serde::{Deserialize, Deserializer};

pub use checking::{CheckingItem, IgnoredChecks};
pub use database::{DatabaseConfig, SecurityConfig};
pub use duration::parse_duration;
pub use online_ddl::{
    DEFAULT_SHADOW_TABLE_RULE, DEFAULT_TRASH_TABLE_RULE, OnlineDdlGuard, OnlineDdlTable,
    OnlineDdlTableKind,
};
pub use rules::InstanceRules;
pub use sections::{
    BlockAllowListConfig, ExperimentalConfig, ExpressionFilterConfig, ExtractSchemaConfig,
    ExtractSourceConfig, ExtractTableConfig, FilterConfig, InstanceConfig, MetaConfig, RouteConfig,
    SyncerConfig, TableNameConfig, TaskMode, ValidatorConfig,
};
pub use source::{CheckerConfig, PurgeConfig, ReplicaSettings, SourceConfig};
pub use task::TaskConfig;

/// A configuration error: the file, and what is wrong where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ConfigError {
    /// The file (`task.yaml`).
    pub file: String,
    /// What is wrong, naming the key (and the line when the YAML parser knows it).
    pub reason: String,
}

/// A key that is accepted and has no effect here, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The key, with its path (`syncers.global.max-retry`, `target-database.session.tidb_x`).
    pub key: String,
    /// Why it has no effect, and what to do if the user relied on it.
    pub reason: String,
}

impl ConfigWarning {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigWarning {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "`{}`: {}", self.key, self.reason)
    }
}

/// A key DM reads whose feature is not built here: the task or source is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRefusal {
    /// The key, with its path and the value that asks for the feature (`shard-mode: optimistic`).
    pub key: String,
    /// Which feature is missing, what builds it, and what to do meanwhile.
    pub reason: String,
}

impl ConfigRefusal {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigRefusal {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigRefusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "`{}`: {}", self.key, self.reason)
    }
}

/// The error of a file whose `refusals` are not empty.
fn refused(file: &str, refusals: &[ConfigRefusal]) -> ConfigError {
    let listed: Vec<String> = refusals.iter().map(ToString::to_string).collect();
    ConfigError {
        file: file.to_owned(),
        reason: format!(
            "{} not supported here (docs/dm-config-keys.md): {}",
            if refusals.len() == 1 {
                "a key is"
            } else {
                "keys are"
            },
            listed.join("; ")
        ),
    }
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

/// Reads YAML `null` (which `dmctl config export` writes for empty sections) as the default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `Some("")` (an empty value DM treats as absent) becomes `None`.
fn empty_as_none(value: &mut Option<String>) {
    if value.as_deref().is_some_and(|text| text.trim().is_empty()) {
        *value = None;
    }
}
