//! DM's source file (`source.yaml`): the upstream, how to follow its binlog, and filters every
//! task of the source applies.
//!
//! ```text
//! source.yaml --SourceConfig::parse--> SourceConfig (checked as DM checks it; password decrypted)
//!             --SourceConfig::from_yaml--> parse + refusals(): enable-relay: true, enable: false,
//!                                          a from.security that cannot be honoured
//! from.tls("from") --> dm_core::TlsConfig of the binlog and dump connections
//! SourceConfig::warnings(): relay keys with the relay log off, deprecated keys, checker, tracer
//! filters --TaskConfig::rules_for_source--> appended to every task's event filter rules
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::checking::{CheckingItem, IgnoredChecks};
use super::database::DatabaseConfig;
use super::duration::parse_duration;
use super::sections::FilterConfig;
use super::{
    ConfigError, ConfigRefusal, ConfigWarning, empty_as_none, null_as_default, refused, yaml_error,
};
use crate::filter::EventFilterRule;

/// DM's longest source id.
const MAX_SOURCE_ID_LENGTH: usize = 32;

/// DM's default relay directory, which `dmctl config export` writes when none was set.
const DEFAULT_RELAY_DIRECTORY: &str = "relay-dir";

/// `purge` of a source file (the relay log's purge strategy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PurgeConfig {
    /// Seconds between automatic purges (DM default 3600).
    #[serde(default)]
    pub interval: Option<u64>,
    /// Hours after which relay files are purged (0 = never, DM's default).
    #[serde(default)]
    pub expires: Option<u64>,
    /// Purge when free space falls below this many GB (DM default 15).
    #[serde(default)]
    pub remain_space: Option<u64>,
}

impl PurgeConfig {
    fn is_default(&self) -> bool {
        self.interval.is_none_or(|value| value == 3600)
            && self.expires.is_none_or(|value| value == 0)
            && self.remain_space.is_none_or(|value| value == 15)
    }
}

/// `checker` of a source file: DM's automatic resume of paused tasks (dm-worker's task checker).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckerConfig {
    /// Whether paused tasks resume by themselves (DM default true).
    #[serde(default)]
    pub check_enable: Option<bool>,
    /// How long a task must run before the backoff resets (DM default `5m`).
    #[serde(default)]
    pub backoff_rollback: Option<String>,
    /// The longest wait between resumes (DM default `5m`).
    #[serde(default)]
    pub backoff_max: Option<String>,
    /// Not settable in DM (it resets it to `5s`); accepted.
    #[serde(default)]
    pub check_interval: Option<String>,
    /// Not settable in DM (it resets it to `1s`); accepted.
    #[serde(default)]
    pub backoff_min: Option<String>,
    /// Not settable in DM (it resets it to true); accepted.
    #[serde(default)]
    pub backoff_jitter: Option<bool>,
    /// Not settable in DM (it resets it to 2); accepted.
    #[serde(default)]
    pub backoff_factor: Option<f64>,
}

/// A DM source file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceConfig {
    /// The source's id (at most 32 characters, as in DM).
    pub source_id: String,
    /// Whether the source is enabled (DM's OpenAPI can disable one); `false` is refused.
    #[serde(default)]
    pub enable: Option<bool>,
    /// Replicate by GTID.
    #[serde(default)]
    pub enable_gtid: bool,
    /// Deprecated in DM (always false there); accepted with a warning.
    #[serde(default)]
    pub auto_fix_gtid: Option<bool>,
    /// Keep a relay log: refused until the relay log is built.
    #[serde(default)]
    pub enable_relay: bool,
    /// Relay start file (no effect without the relay log).
    #[serde(default)]
    pub relay_binlog_name: Option<String>,
    /// Relay start GTID set (no effect without the relay log).
    #[serde(default)]
    pub relay_binlog_gtid: Option<String>,
    /// Relay directory (no effect without the relay log).
    #[serde(default)]
    pub relay_dir: Option<String>,
    /// Deprecated in DM; accepted with a warning.
    #[serde(default)]
    pub meta_dir: Option<String>,
    /// `mysql` or `mariadb` (detected when empty).
    #[serde(default)]
    pub flavor: Option<String>,
    /// Deprecated in DM; accepted with a warning.
    #[serde(default)]
    pub charset: Option<String>,
    /// The upstream.
    pub from: DatabaseConfig,
    /// Relay purge (no effect without the relay log).
    #[serde(default)]
    pub purge: Option<PurgeConfig>,
    /// Automatic resume of paused tasks: not read yet (a subtask resumes with DM's defaults).
    #[serde(default)]
    pub checker: Option<CheckerConfig>,
    /// The replica server id; absent or 0: one is chosen at start, as DM chooses it.
    #[serde(default)]
    pub server_id: Option<u32>,
    /// Deprecated in DM (any keys); accepted with a warning.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tracer: BTreeMap<String, serde_norway::Value>,
    /// Names compare case-sensitively (for every task of the source: task or source true).
    #[serde(default)]
    pub case_sensitive: bool,
    /// Binlog event filter rules for every task of this source, after each task's own rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub filters: Vec<FilterConfig>,
}

/// How a task replicates from a source, as plain data: dm-syncer builds its binlog client's
/// options from it and from the source's `from` section (`dm_syncer::remote_options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// The source's `server-id`; `None` when it sets none (or 0): one that no replica of the
    /// upstream uses is chosen at the first connect, and chosen again if another replica takes
    /// it later, as DM does.
    pub server_id: Option<u32>,
    /// Refuse an upstream whose `binlog_format` is not ROW: the task's
    /// `ignore-checking-items` does not skip `binlog_format`.
    pub require_row_format: bool,
    /// Refuse an upstream whose `binlog_row_image` is not FULL: the task's
    /// `ignore-checking-items` does not skip `binlog_row_image`.
    pub require_full_row_image: bool,
    /// The name the replica registers with, the same across restarts: the upstream may list a
    /// crashed run's connection for a while, and under the same name it is known as this
    /// replica's, not another replica holding the server id.
    pub replica_name: String,
}

impl SourceConfig {
    /// How `task` replicates from this source: its server id, the binlog checks at connect
    /// that the task does not skip, and the replica's name (`dm-syncer-<task>-<source>`).
    pub fn replica_settings(&self, task: &super::TaskConfig) -> ReplicaSettings {
        let ignored: IgnoredChecks = task.ignored_checks();
        ReplicaSettings {
            server_id: self.server_id,
            require_row_format: !ignored.skips(CheckingItem::BinlogFormat),
            require_full_row_image: !ignored.skips(CheckingItem::BinlogRowImage),
            replica_name: format!("dm-syncer-{}-{}", task.name, self.source_id),
        }
    }

    /// Reads a source file's text as DM reads it (`file` names it in errors); keys whose
    /// feature is not built here are not refused: see [`SourceConfig::refusals`].
    pub fn parse(text: &str, file: &str) -> Result<SourceConfig, ConfigError> {
        let mut config: SourceConfig =
            serde_norway::from_str(text).map_err(|error| yaml_error(file, &error))?;
        config.check(file)?;
        Ok(config)
    }

    /// Reads a source file to run it: [`SourceConfig::parse`], and every key this
    /// implementation cannot honour refused ([`SourceConfig::refusals`]).
    pub fn from_yaml(text: &str, file: &str) -> Result<SourceConfig, ConfigError> {
        let config = SourceConfig::parse(text, file)?;
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
        if self.source_id.trim().is_empty() {
            return Err(error("`source-id` is empty: name the source".into()));
        }
        if self.source_id.chars().count() > MAX_SOURCE_ID_LENGTH {
            return Err(error(format!(
                "`source-id: {}` is longer than {MAX_SOURCE_ID_LENGTH} characters (DM's limit): shorten it",
                self.source_id
            )));
        }
        empty_as_none(&mut self.flavor);
        if let Some(flavor) = self.flavor.as_deref()
            && !matches!(flavor.to_ascii_lowercase().as_str(), "mysql" | "mariadb")
        {
            return Err(error(format!(
                "`flavor: {flavor}` is not mysql or mariadb: give one, or leave it out to detect it"
            )));
        }
        // DM: 0 means "choose one".
        if self.server_id == Some(0) {
            self.server_id = None;
        }
        for key in [
            &mut self.relay_binlog_name,
            &mut self.relay_binlog_gtid,
            &mut self.relay_dir,
        ] {
            empty_as_none(key);
        }
        for (index, filter) in self.filters.iter().enumerate() {
            EventFilterRule::new(
                &format!("source-filters[{index}]"),
                &filter.schema_pattern,
                filter.table_pattern.as_deref(),
                &filter.events,
                &filter.sql_pattern,
                &filter.action,
                self.case_sensitive,
            )
            .map_err(|failure| error(format!("`filters[{index}]`: {}", failure.reason)))?;
        }
        if let Some(checker) = &self.checker {
            let mut durations = Vec::new();
            for (key, value) in [
                ("backoff-rollback", &checker.backoff_rollback),
                ("backoff-max", &checker.backoff_max),
                ("check-interval", &checker.check_interval),
                ("backoff-min", &checker.backoff_min),
            ] {
                if let Some(text) = value {
                    let duration = parse_duration(text)
                        .map_err(|reason| error(format!("`checker.{key}`: {reason}")))?;
                    durations.push((key, duration));
                }
            }
            let find = |wanted: &str| {
                durations
                    .iter()
                    .find(|(key, _)| *key == wanted)
                    .map(|(_, duration)| *duration)
            };
            // DM resets backoff-min to 1s before comparing.
            let minimum = std::time::Duration::from_secs(1);
            if let Some(maximum) = find("backoff-max")
                && maximum < minimum
            {
                return Err(error(format!(
                    "`checker.backoff-max: {maximum:?}` is below the smallest backoff (1s): raise it"
                )));
            }
        }
        self.from.decrypt_password();
        Ok(())
    }

    /// The keys of this file whose feature is not built here, each with the reason.
    pub fn refusals(&self) -> Vec<ConfigRefusal> {
        let mut refusals = Vec::new();
        if self.enable_relay {
            refusals.push(ConfigRefusal::new(
                "enable-relay: true",
                "the relay log (dm-worker's local copy of the binlog) is not built yet: set \
                 `enable-relay: false`; the syncer then reads the upstream's binlog directly, \
                 so keep binlogs on the upstream until they are replicated",
            ));
        }
        if self.enable == Some(false) {
            refusals.push(ConfigRefusal::new(
                "enable: false",
                "the source is disabled (DM runs no task on it): remove the key or set it to true \
                 to replicate it",
            ));
        }
        self.from.refusals("from", false, &mut refusals);
        refusals
    }

    /// The keys of this file that are accepted and have no effect here, each with the reason.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        if self.auto_fix_gtid == Some(true) {
            warnings.push(ConfigWarning::new(
                "auto-fix-gtid",
                "deprecated in DM, which forces it off; no effect here either",
            ));
        }
        for (key, value) in [("meta-dir", &self.meta_dir), ("charset", &self.charset)] {
            if value.as_deref().is_some_and(|text| !text.is_empty()) {
                warnings.push(ConfigWarning::new(
                    key,
                    "deprecated in DM and without effect there; none here either",
                ));
            }
        }
        if !self.enable_relay {
            let relay_off = "no effect while `enable-relay` is false (as in DM): the syncer reads \
                             the upstream's binlog directly";
            for (key, value) in [
                ("relay-binlog-name", &self.relay_binlog_name),
                ("relay-binlog-gtid", &self.relay_binlog_gtid),
            ] {
                if value.is_some() {
                    warnings.push(ConfigWarning::new(key, relay_off));
                }
            }
            if self
                .relay_dir
                .as_deref()
                .is_some_and(|directory| directory != DEFAULT_RELAY_DIRECTORY)
            {
                warnings.push(ConfigWarning::new("relay-dir", relay_off));
            }
            if self.purge.as_ref().is_some_and(|purge| !purge.is_default()) {
                warnings.push(ConfigWarning::new("purge", relay_off));
            }
        }
        if let Some(checker) = &self.checker {
            let fixed: Vec<&str> = [
                ("check-interval", checker.check_interval.is_some()),
                ("backoff-min", checker.backoff_min.is_some()),
                ("backoff-jitter", checker.backoff_jitter.is_some()),
                ("backoff-factor", checker.backoff_factor.is_some()),
            ]
            .into_iter()
            .filter_map(|(key, set)| set.then_some(key))
            .collect();
            if !fixed.is_empty() {
                warnings.push(ConfigWarning::new(
                    "checker",
                    format!(
                        "{} cannot be set (DM resets them to 5s, 1s, true and 2); check-enable, \
                         backoff-max and backoff-rollback are read",
                        fixed.join(", ")
                    ),
                ));
            }
        }
        if !self.tracer.is_empty() {
            warnings.push(ConfigWarning::new(
                "tracer",
                "deprecated in DM and without effect there; none here either",
            ));
        }
        self.from.warnings("from", false, &mut warnings);
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "source-id: mysql-01\nenable-gtid: true\nflavor: mariadb\nserver-id: 9001\nfrom:\n  host: 127.0.0.1\n  port: 3306\n  user: repl\n  password: secret\npurge:\n  expires: 24\n";

    #[test]
    fn a_dm_source_file_reads() {
        let source = SourceConfig::from_yaml(SOURCE, "source.yaml").expect("valid source");
        assert!(source.enable_gtid);
        assert_eq!(source.from.user, "repl");
        assert_eq!(source.server_id, Some(9001));
        let automatic = SourceConfig::from_yaml(
            "source-id: x\nfrom: {host: h, port: 1, user: u}\nserver-id: 0\n",
            "source.yaml",
        )
        .expect("server id 0 means choose one, as in DM");
        assert_eq!(automatic.server_id, None);
        let error = SourceConfig::from_yaml(
            "source-id: x\nfrom: {host: h, port: 1, user: u, pasword: p}\n",
            "source.yaml",
        )
        .expect_err("typo");
        assert!(error.reason.contains("pasword"), "{error}");
        let error = SourceConfig::from_yaml(
            "source-id: a-source-id-that-is-longer-than-32-characters\nfrom: {host: h, port: 1, user: u}\n",
            "source.yaml",
        )
        .expect_err("too long");
        assert!(error.reason.contains("source-id"), "{error}");
    }

    #[test]
    fn the_replica_settings_follow_the_source_and_the_task() {
        let task = super::super::TaskConfig::from_yaml(
            "name: shop\ntarget-database: {host: h, port: 1, user: u}\nignore-checking-items: [binlog_row_image]\nmysql-instances:\n  - source-id: mysql-01\n    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}\n",
            "task.yaml",
        )
        .expect("task");
        let source = SourceConfig::from_yaml(SOURCE, "source.yaml").expect("source");
        assert_eq!(
            source.replica_settings(&task),
            ReplicaSettings {
                server_id: Some(9001),
                require_row_format: true,
                require_full_row_image: false,
                replica_name: "dm-syncer-shop-mysql-01".into(),
            }
        );
        let automatic = SourceConfig::from_yaml(
            "source-id: x\nfrom: {host: h, port: 1, user: u}\n",
            "source.yaml",
        )
        .expect("source");
        assert_eq!(automatic.replica_settings(&task).server_id, None);
    }

    #[test]
    fn an_encrypted_password_is_decrypted_when_read() {
        let source = SourceConfig::from_yaml(
            "source-id: x\nfrom:\n  host: h\n  port: 1\n  user: u\n  password: 8OHSw7Sllod4aVpLPC0eD0CgX/F6x+A=\n",
            "source.yaml",
        )
        .expect("source");
        assert_eq!(source.from.password, "123456");
        assert!(source.warnings().is_empty(), "{:?}", source.warnings());
    }

    #[test]
    fn the_relay_log_is_refused_and_its_keys_without_it_warn() {
        let relay = format!("{SOURCE}enable-relay: true\n");
        let error = SourceConfig::from_yaml(&relay, "source.yaml").expect_err("relay");
        assert!(error.reason.contains("enable-relay: true"), "{error}");
        assert!(SourceConfig::parse(&relay, "source.yaml").is_ok());
        let keys = format!(
            "{SOURCE}enable-relay: false\nrelay-binlog-name: mysql-bin.000002\nrelay-dir: ./relay_log\nchecker:\n  check-enable: true\n  backoff-max: 5m\ntracer:\n  enable: true\n"
        );
        let source = SourceConfig::from_yaml(&keys, "source.yaml").expect("accepted");
        let warned: Vec<String> = source
            .warnings()
            .into_iter()
            .map(|warning| warning.key)
            .collect();
        assert_eq!(
            warned,
            ["relay-binlog-name", "relay-dir", "purge", "tracer"],
            "the checker's check-enable and backoff-max are read (no warning)"
        );
        let fixed = SourceConfig::from_yaml(
            &format!("{SOURCE}checker:\n  check-interval: 10s\n  backoff-factor: 3\n"),
            "source.yaml",
        )
        .expect("accepted");
        let warnings: Vec<_> = fixed
            .warnings()
            .into_iter()
            .filter(|warning| warning.key == "checker")
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .reason
                .contains("check-interval, backoff-factor cannot be set"),
            "{warnings:?}"
        );
        let error = SourceConfig::parse(
            &format!("{SOURCE}checker:\n  backoff-max: 5 minutes\n"),
            "source.yaml",
        )
        .expect_err("bad duration");
        assert!(error.reason.contains("checker.backoff-max"), "{error}");
    }
}
