//! The task file's dump and load options (DM's `mydumpers` and `loaders` sections, or an
//! instance's inline `mydumper:` / `loader:` and the `mydumper-thread` / `loader-thread`
//! aliases), read strictly: every key takes effect, is refused with its name and the reason,
//! or (when it has nothing to act on here) is accepted and named in [`DumpLoadConfig::warnings`].
//!
//! ```yaml
//! timezone: "+08:00"             # task level: the dump's session time zone (see below)
//! mydumpers:
//!   global:
//!     threads: 4                 # connections reading in one snapshot (0: 4)
//!     chunk-filesize: 64         # MiB of table data per chunk (64MiB, 1GiB; 0: no size limit)
//!     rows: 200000               # and at most about this many rows (0: 200000)
//!     statement-size: 1000000    # bytes per INSERT (0: 1000000)
//!     where: "id < 1000"         # rows to dump, every table
//!     skip-tz-utc: true          # false: the dump's session runs in UTC
//!     extra-args: "--consistency none -B shop"   # see crate::extra_args
//!     compression: gzip          # dump files (ours; DM has none)
//! loaders:
//!   global:
//!     pool-size: 16              # connections loading in parallel (0: 16)
//!     dir: ./dumped_data         # dump directory (suffixed .<task>)
//!     import-mode: logical       # or sql / loader; physical and import-into are refused
//!     on-duplicate-logical: replace   # or error / ignore
//!     direct: false              # true: dump straight into the loader, no files (ours)
//! ```
//!
//! Precedence, as in DM: an instance names a section (`mydumper-config-name`) or sets one inline
//! (`mydumper:`), not both; `mydumper-thread` / `loader-thread` (when not 0) replace
//! `threads` / `pool-size`; an `extra-args` option replaces its section key. A replaced key
//! that was set differently is named in a warning.
//!
//! The sections are read here, from dm-task's `TaskConfig` (which keeps them as YAML values),
//! and not in dm-task: what they become is this crate's own option types (chunk limits,
//! consistency, compression, selection, time zone, duplicate handling), which dm-task, below
//! this crate, cannot name.
//!
//! Time zone: the dump's sessions run in `'+00:00'` with `skip-tz-utc: false`, else in the
//! task's `timezone`, else in the upstream's own zone ([`DumpTimeZone`]); that zone gives
//! `where` and any zone-dependent expression their meaning. TIMESTAMP values never depend on
//! it: they are read as instants and loaded as UTC under `'+00:00'` (see [`crate::selection`]).

use dm_core::Flavor;
use dm_sink::MySqlSinkOptions;
use dm_task::config::{DatabaseConfig, InstanceConfig, TaskConfig};
use serde::Deserialize;

use crate::directory::Compression;
use crate::dumper::DumpOptions;
use crate::error::DumpError;
use crate::extra_args::ExtraArgs;
use crate::loader::LoadOptions;
use crate::loader::OnDuplicate;
use crate::plan::ChunkLimits;
use crate::selection::{DumpSelection, DumpTimeZone};
use crate::snapshot::{Consistency, SnapshotOptions};

/// DM's defaults.
const DEFAULT_THREADS: usize = 4;
const DEFAULT_CHUNK_MEBIBYTES: u64 = 64;
const DEFAULT_ROWS: u64 = 200_000;
const DEFAULT_STATEMENT_BYTES: u64 = 1_000_000;
const DEFAULT_POOL_SIZE: usize = 16;
const DEFAULT_DIRECTORY: &str = "./dumped_data";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MydumperSection {
    threads: Option<usize>,
    chunk_filesize: Option<serde_norway::Value>,
    rows: Option<u64>,
    statement_size: Option<u64>,
    extra_args: Option<String>,
    compression: Option<Compression>,
    #[serde(rename = "where")]
    where_clause: Option<String>,
    skip_tz_utc: Option<bool>,
    /// Accepted and named in a warning: the dump is built in.
    mydumper_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LoaderSection {
    pool_size: Option<usize>,
    dir: Option<String>,
    import_mode: Option<String>,
    on_duplicate: Option<String>,
    on_duplicate_logical: Option<String>,
    direct: Option<bool>,
    // The rest only configure TiDB Lightning's physical mode, which is refused: with the
    // logical mode they are accepted and named in a warning (their values checked as DM does).
    on_duplicate_physical: Option<String>,
    sorting_dir_physical: Option<String>,
    disk_quota_physical: Option<serde_norway::Value>,
    checksum_physical: Option<String>,
    analyze: Option<String>,
    range_concurrency: Option<u64>,
    compress_kv_pairs: Option<String>,
    pd_addr: Option<String>,
}

/// The dump and load options of one `mysql-instances` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpLoadConfig {
    /// Connections reading in one snapshot (`threads`, `mydumper-thread`, `-t`; 4).
    pub threads: usize,
    /// Chunk sizes (`chunk-filesize` / `-F`, `rows` / `-r`).
    pub limits: ChunkLimits,
    /// Bytes per INSERT (`statement-size` / `-s`, 1 000 000).
    pub statement_bytes: usize,
    /// `--consistency` / `--no-locks` in `extra-args` (`auto` = flush).
    pub consistency: Consistency,
    /// Dump file compression.
    pub compression: Compression,
    /// What is dumped beyond the block-allow list (`where`, `-B`, `-T`, `-W`).
    pub selection: DumpSelection,
    /// The dump's session time zone (`skip-tz-utc`, the task's `timezone`).
    pub time_zone: DumpTimeZone,
    /// Connections loading in parallel (`pool-size`, `loader-thread`; 16).
    pub pool_size: usize,
    /// The dump directory: `dir` suffixed `.<task>` (DM's layout).
    pub directory: std::path::PathBuf,
    /// Duplicate keys (`on-duplicate-logical`, replace).
    pub on_duplicate: OnDuplicate,
    /// Dump straight into the loader, no files (`loaders.<name>.direct`, ours; false).
    pub direct: bool,
    /// Keys accepted with no effect here, each named with the reason: to show the user.
    pub warnings: Vec<String>,
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    inline: Option<&serde_norway::Value>,
    named: Option<(&str, &serde_norway::Value)>,
    what: &str,
) -> Result<T, DumpError> {
    let (at, value) = match (named, inline) {
        (Some((name, _)), Some(_)) => {
            return Err(DumpError::Config(format!(
                "the instance sets both `{what}-config-name: {name}` and an inline `{what}:`: keep one (as DM requires)"
            )));
        }
        (Some((name, value)), None) => (format!("{what}s.{name}"), value),
        (None, Some(value)) => (format!("the instance's inline {what}"), value),
        (None, None) => return Ok(T::default()),
    };
    serde_norway::from_value(value.clone())
        .map_err(|error| DumpError::Config(format!("{at}: {error}")))
}

/// Bytes in a DM file size: a plain number is MiB (`64`), else a number and a binary unit
/// (`512KiB`, `64MiB`, `1G`); `0` means no size limit. `None` when unreadable.
fn file_size_bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits: String = lower.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits.parse().ok()?;
    let factor: u64 = match lower[digits.len()..].trim() {
        "" | "m" | "mb" | "mib" => 1 << 20,
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    if number == 0 {
        return Some(u64::MAX);
    }
    number.checked_mul(factor)
}

fn chunk_bytes(
    section: Option<&serde_norway::Value>,
    extra: Option<&str>,
) -> Result<u64, DumpError> {
    let (key, text) = match (extra, section) {
        (Some(text), _) => ("extra-args -F", text.to_owned()),
        (None, None) => return Ok(DEFAULT_CHUNK_MEBIBYTES << 20),
        (None, Some(serde_norway::Value::Number(number))) => ("chunk-filesize", number.to_string()),
        (None, Some(serde_norway::Value::String(text))) => ("chunk-filesize", text.clone()),
        (None, Some(other)) => ("chunk-filesize", format!("{other:?}")),
    };
    file_size_bytes(&text).ok_or_else(|| {
        DumpError::Config(format!(
            "mydumpers {key} `{text}`: give MiB as a number (64), or a size with a unit (512KiB, 64MiB, 1GiB); 0 is no size limit"
        ))
    })
}

/// `value` replaces `replaced` (set by `key`): a warning when they differ.
fn replaced<T: PartialEq + std::fmt::Display>(
    warnings: &mut Vec<String>,
    key: &str,
    replaced: Option<T>,
    by: &str,
    value: Option<&T>,
) {
    if let (Some(replaced), Some(value)) = (replaced, value)
        && replaced != *value
    {
        warnings.push(format!(
            "{key}: {replaced} has no effect: {by} {value} replaces it (as in DM)"
        ));
    }
}

/// A value DM checks even where it has no effect.
fn check_choice(key: &str, value: Option<&str>, choices: &[&str]) -> Result<(), DumpError> {
    match value.map(str::to_ascii_lowercase) {
        Some(value) if !value.is_empty() && !choices.contains(&value.as_str()) => {
            Err(DumpError::Config(format!(
                "loaders {key} `{value}`: use {}",
                choices.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// The consistency `extra-args` asks for (`--no-locks` is DM's alias of `none`).
fn consistency_of(extra: &ExtraArgs) -> Result<Consistency, DumpError> {
    let written = extra.consistency.as_deref().unwrap_or("auto");
    let lower = written.to_ascii_lowercase();
    if extra.no_locks && !matches!(lower.as_str(), "auto" | "none") {
        return Err(DumpError::Config(format!(
            "mydumpers extra-args: `--no-locks` means `--consistency none` and cannot go with \
             `--consistency {written}` (as in DM): keep one"
        )));
    }
    match lower.as_str() {
        "auto" | "flush" if !extra.no_locks => Ok(Consistency::Flush),
        "auto" | "none" => Ok(Consistency::None),
        "lock" => Ok(Consistency::Lock),
        "snapshot" => Err(DumpError::Config(
            "mydumpers extra-args `--consistency snapshot` is not supported: it reads a TiDB \
             snapshot at a TSO, which dumpling refuses for MySQL and MariaDB too; use flush (or \
             auto), lock, or none (no lock; the syncer runs in safe mode until the recorded exit \
             point)"
                .into(),
        )),
        _ => Err(DumpError::Config(format!(
            "mydumpers extra-args `--consistency {written}`: use auto, flush, lock or none"
        ))),
    }
}

impl DumpLoadConfig {
    /// The options of `instance` in `task`.
    pub fn from_task(task: &TaskConfig, instance: &InstanceConfig) -> Result<Self, DumpError> {
        let mut warnings = Vec::new();
        let dumper: MydumperSection = section(
            instance.mydumper.as_ref(),
            instance
                .mydumper_config_name
                .as_deref()
                .and_then(|name| Some((name, task.mydumpers.get(name)?))),
            "mydumper",
        )?;
        let loader: LoaderSection = section(
            instance.loader.as_ref(),
            instance
                .loader_config_name
                .as_deref()
                .and_then(|name| Some((name, task.loaders.get(name)?))),
            "loader",
        )?;
        let extra = ExtraArgs::parse(dumper.extra_args.as_deref().unwrap_or_default())
            .map_err(|reason| DumpError::Config(format!("mydumpers extra-args {reason}")))?;
        let mut dump = Self::dump_part(task, instance, &dumper, &extra, &mut warnings)?;
        Self::load_part(task, instance, &loader, &mut dump, &mut warnings)?;
        dump.warnings = warnings;
        Ok(dump)
    }

    /// The dump's options; the load's are left at their defaults.
    fn dump_part(
        task: &TaskConfig,
        instance: &InstanceConfig,
        dumper: &MydumperSection,
        extra: &ExtraArgs,
        warnings: &mut Vec<String>,
    ) -> Result<Self, DumpError> {
        let positive_threads = |value: Option<usize>| value.filter(|threads| *threads > 0);
        let (instance_threads, section_threads) = (
            positive_threads(instance.mydumper_thread),
            positive_threads(dumper.threads),
        );
        replaced(
            warnings,
            "mydumpers threads",
            section_threads,
            "the instance's mydumper-thread",
            instance_threads.as_ref(),
        );
        let configured = instance_threads
            .map(|threads| ("the instance's mydumper-thread", threads))
            .or(section_threads.map(|threads| ("mydumpers threads", threads)));
        if let Some((key, threads)) = configured {
            replaced(
                warnings,
                key,
                Some(threads),
                "extra-args -t",
                extra.threads.as_ref(),
            );
        }
        let threads = extra
            .threads
            .or(configured.map(|(_, threads)| threads))
            .unwrap_or(DEFAULT_THREADS);

        let positive = |value: Option<u64>| value.filter(|value| *value > 0);
        replaced(
            warnings,
            "mydumpers rows",
            positive(dumper.rows),
            "extra-args -r",
            extra.rows.as_ref(),
        );
        let rows = positive(extra.rows.or(dumper.rows)).unwrap_or(DEFAULT_ROWS);
        replaced(
            warnings,
            "mydumpers statement-size",
            positive(dumper.statement_size),
            "extra-args -s",
            extra.statement_size.as_ref(),
        );
        let statement_bytes = positive(extra.statement_size.or(dumper.statement_size))
            .unwrap_or(DEFAULT_STATEMENT_BYTES);
        let statement_bytes = usize::try_from(statement_bytes).map_err(|_| {
            DumpError::Config(format!(
                "mydumpers statement-size {statement_bytes} is larger than this machine's memory"
            ))
        })?;
        if extra.file_size.is_some() && dumper.chunk_filesize.is_some() {
            warnings.push(
                "mydumpers chunk-filesize has no effect: extra-args -F replaces it (as in DM)"
                    .into(),
            );
        }
        let bytes = chunk_bytes(dumper.chunk_filesize.as_ref(), extra.file_size.as_deref())?;

        let non_empty = |text: Option<&String>| {
            text.map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
        };
        replaced(
            warnings,
            "mydumpers where",
            non_empty(dumper.where_clause.as_ref()).map(|text| format!("`{text}`")),
            "extra-args --where",
            extra
                .where_condition
                .as_ref()
                .map(|text| format!("`{}`", text.trim()))
                .as_ref(),
        );
        let where_condition = match &extra.where_condition {
            Some(condition) => non_empty(Some(condition)),
            None => non_empty(dumper.where_clause.as_ref()),
        };
        if extra.tables.is_some() {
            warnings.push(
                "mydumpers extra-args -T replaces the block-allow list for the dump (as in DM); \
                 the syncer still replicates what the block-allow list allows"
                    .into(),
            );
        }
        for option in &extra.without_effect {
            warnings.push(format!(
                "mydumpers extra-args {option} has no effect: it is what the dump always does"
            ));
        }
        if dumper.mydumper_path.is_some() {
            warnings.push(
                "mydumpers mydumper-path has no effect: the dump is built in, no mydumper runs"
                    .into(),
            );
        }
        let task_zone = task
            .timezone
            .as_deref()
            .map(str::trim)
            .filter(|zone| !zone.is_empty())
            .map(DumpTimeZone::parse)
            .transpose()
            .map_err(DumpError::Config)?;
        let time_zone = match (dumper.skip_tz_utc, task_zone) {
            (Some(false), _) => DumpTimeZone::Zone("+00:00".into()),
            (_, Some(zone)) => zone,
            (_, None) => DumpTimeZone::Upstream,
        };
        Ok(DumpLoadConfig {
            threads,
            limits: ChunkLimits {
                bytes,
                rows,
                max_chunks: ChunkLimits::default().max_chunks,
            },
            statement_bytes,
            consistency: consistency_of(extra)?,
            compression: dumper.compression.unwrap_or_default(),
            selection: DumpSelection {
                databases: extra.databases.clone(),
                tables: extra.tables.clone(),
                case_sensitive: task.case_sensitive,
                where_condition,
                views: !extra.no_views.unwrap_or(false),
            },
            time_zone,
            pool_size: DEFAULT_POOL_SIZE,
            directory: format!("{DEFAULT_DIRECTORY}.{}", task.name).into(),
            on_duplicate: OnDuplicate::Replace,
            direct: false,
            warnings: Vec::new(),
        })
    }

    /// Fills the load's options into `config`.
    fn load_part(
        task: &TaskConfig,
        instance: &InstanceConfig,
        loader: &LoaderSection,
        config: &mut DumpLoadConfig,
        warnings: &mut Vec<String>,
    ) -> Result<(), DumpError> {
        match loader
            .import_mode
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("" | "logical" | "sql" | "loader") => {}
            Some(mode @ ("physical" | "import-into")) => {
                return Err(DumpError::Config(format!(
                    "loaders import-mode `{mode}` is not supported: it is TiDB Lightning's import into TiDB; use `logical` (the loader writes SQL to any MySQL-compatible downstream)"
                )));
            }
            Some(other) => {
                return Err(DumpError::Config(format!(
                    "loaders import-mode `{other}`: use `logical` (or its aliases `sql`, `loader`)"
                )));
            }
        }
        check_choice(
            "on-duplicate-physical",
            loader.on_duplicate_physical.as_deref(),
            &["none", "manual"],
        )?;
        check_choice(
            "checksum-physical",
            loader.checksum_physical.as_deref(),
            &["required", "optional", "off"],
        )?;
        check_choice(
            "analyze",
            loader.analyze.as_deref(),
            &["required", "optional", "off"],
        )?;
        let physical: Vec<&str> = [
            (
                "on-duplicate-physical",
                loader.on_duplicate_physical.is_some(),
            ),
            (
                "sorting-dir-physical",
                loader.sorting_dir_physical.is_some(),
            ),
            ("disk-quota-physical", loader.disk_quota_physical.is_some()),
            ("checksum-physical", loader.checksum_physical.is_some()),
            ("analyze", loader.analyze.is_some()),
            ("range-concurrency", loader.range_concurrency.is_some()),
            ("compress-kv-pairs", loader.compress_kv_pairs.is_some()),
            ("pd-addr", loader.pd_addr.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| key)
        .collect();
        if !physical.is_empty() {
            warnings.push(format!(
                "loaders {} {} no effect: {} TiDB Lightning's physical import, and the load is logical",
                physical.join(", "),
                if physical.len() == 1 { "has" } else { "have" },
                if physical.len() == 1 { "it configures" } else { "they configure" },
            ));
        }
        let positive = |value: Option<usize>| value.filter(|size| *size > 0);
        replaced(
            warnings,
            "loaders pool-size",
            positive(loader.pool_size),
            "the instance's loader-thread",
            positive(instance.loader_thread).as_ref(),
        );
        config.pool_size = positive(instance.loader_thread)
            .or(positive(loader.pool_size))
            .unwrap_or(DEFAULT_POOL_SIZE);
        config.directory = format!(
            "{}.{}",
            loader.dir.as_deref().unwrap_or(DEFAULT_DIRECTORY),
            task.name
        )
        .into();
        let non_empty = |text: Option<&String>| {
            text.map(|text| text.trim().to_ascii_lowercase())
                .filter(|text| !text.is_empty())
        };
        replaced(
            warnings,
            "loaders on-duplicate",
            non_empty(loader.on_duplicate.as_ref()),
            "on-duplicate-logical",
            non_empty(loader.on_duplicate_logical.as_ref()).as_ref(),
        );
        config.on_duplicate = OnDuplicate::parse(
            non_empty(loader.on_duplicate_logical.as_ref())
                .or(non_empty(loader.on_duplicate.as_ref()))
                .as_deref()
                .unwrap_or("replace"),
        )?;
        config.direct = loader.direct.unwrap_or(false);
        Ok(())
    }

    /// Keys accepted with no effect here, each with the reason.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl DumpLoadConfig {
    /// How to dump `from` (a source's `from` section) with these options; its `security`
    /// section gives the connections' TLS (failing closed: `DatabaseConfig::tls_settings`).
    pub fn dump_options(&self, from: &DatabaseConfig, flavor: Flavor) -> DumpOptions {
        DumpOptions {
            snapshot: SnapshotOptions {
                host: from.host.clone(),
                port: from.port,
                user: from.user.clone(),
                password: from.password.clone(),
                tls: from.tls_settings("from"),
                connections: self.threads,
                consistency: self.consistency,
                flavor,
            },
            limits: self.limits,
            statement_bytes: self.statement_bytes,
            selection: self.selection.clone(),
            time_zone: self.time_zone.clone(),
        }
    }

    /// How to load `task`'s target for `instance` with these options (TLS from
    /// `target-database.security`).
    pub fn load_options(&self, task: &TaskConfig, instance: &InstanceConfig) -> LoadOptions {
        let target = &task.target_database;
        LoadOptions {
            sink: MySqlSinkOptions {
                session_variables: target.session_variables(),
                tls: target.tls_settings("target-database"),
                ..MySqlSinkOptions::new(&target.host, target.port, &target.user, &target.password)
            },
            task: task.name.clone(),
            source_id: instance.source_id.clone(),
            meta_schema: task.meta_schema.clone(),
            pool_size: self.pool_size,
            on_duplicate: self.on_duplicate,
        }
    }
}

#[cfg(test)]
mod tests;
