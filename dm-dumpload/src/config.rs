//! The task file's dump and load options (DM's `mydumpers` and `loaders` sections, or an
//! instance's inline `mydumper:` / `loader:` and the `mydumper-thread` / `loader-thread`
//! aliases), read strictly: an unknown key is an error naming it.
//!
//! ```yaml
//! mydumpers:
//!   global:
//!     threads: 4                 # connections reading in one snapshot
//!     chunk-filesize: 64         # MiB of table data per chunk
//!     rows: 200000               # and at most about this many rows
//!     statement-size: 1000000    # bytes per INSERT
//!     extra-args: "--consistency none"   # or lock, flush / auto (default)
//!     compression: gzip          # dump files (ours; DM has none)
//! loaders:
//!   global:
//!     pool-size: 16              # connections loading in parallel
//!     dir: ./dumped_data         # dump directory (suffixed .<task>)
//!     import-mode: logical       # the only mode; physical is TiDB Lightning's
//!     on-duplicate-logical: replace   # or error / ignore
//!     direct: false              # true: dump straight into the loader, no files (ours)
//! ```

use dm_core::Flavor;
use dm_syncer::config::{DatabaseConfig, InstanceConfig, TaskConfig};
use serde::Deserialize;

use crate::directory::Compression;
use crate::dumper::DumpOptions;
use crate::error::DumpError;
use crate::loader::LoadOptions;
use crate::loader::OnDuplicate;
use crate::plan::ChunkLimits;
use crate::snapshot::{Consistency, SnapshotOptions};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MydumperSection {
    threads: Option<usize>,
    chunk_filesize: Option<serde_norway::Value>,
    rows: Option<u64>,
    statement_size: Option<usize>,
    extra_args: Option<String>,
    compression: Option<Compression>,
    #[serde(rename = "where")]
    where_clause: Option<String>,
    skip_tz_utc: Option<bool>,
    /// Accepted so that DM task files load; the dump is built in.
    #[allow(dead_code)]
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
    // The rest only configure TiDB Lightning's physical mode, which is refused above; they are
    // accepted so that DM task files load.
    #[allow(dead_code)]
    on_duplicate_physical: Option<String>,
    #[allow(dead_code)]
    sorting_dir_physical: Option<String>,
    #[allow(dead_code)]
    disk_quota_physical: Option<serde_norway::Value>,
    #[allow(dead_code)]
    checksum_physical: Option<String>,
    #[allow(dead_code)]
    analyze: Option<String>,
    #[allow(dead_code)]
    range_concurrency: Option<u64>,
    #[allow(dead_code)]
    compress_kv_pairs: Option<String>,
    #[allow(dead_code)]
    pd_addr: Option<String>,
}

/// The dump and load options of one `mysql-instances` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpLoadConfig {
    /// Connections reading in one snapshot (`threads`, 4).
    pub threads: usize,
    /// Chunk sizes (`chunk-filesize` MiB, `rows`).
    pub limits: ChunkLimits,
    /// Bytes per INSERT (`statement-size`, 1 000 000).
    pub statement_bytes: usize,
    /// `--consistency` in `extra-args` (`auto` = flush).
    pub consistency: Consistency,
    /// Dump file compression.
    pub compression: Compression,
    /// Connections loading in parallel (`pool-size`, 16).
    pub pool_size: usize,
    /// The dump directory: `dir` suffixed `.<task>` (DM's layout).
    pub directory: std::path::PathBuf,
    /// Duplicate keys (`on-duplicate-logical`, replace).
    pub on_duplicate: OnDuplicate,
    /// Dump straight into the loader, no files (`loaders.<name>.direct`, ours; false).
    pub direct: bool,
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    inline: Option<&serde_norway::Value>,
    named: Option<&serde_norway::Value>,
    what: &str,
) -> Result<T, DumpError> {
    match inline.or(named) {
        None => Ok(T::default()),
        Some(value) => serde_norway::from_value(value.clone())
            .map_err(|error| DumpError::Config(format!("{what}: {error}"))),
    }
}

fn chunk_mebibytes(value: Option<&serde_norway::Value>) -> Result<u64, DumpError> {
    let invalid = |text: String| {
        DumpError::Config(format!(
            "mydumpers chunk-filesize `{text}`: give MiB as a number (64) or with a unit (64MiB, 1GiB)"
        ))
    };
    match value {
        None => Ok(64),
        Some(serde_norway::Value::Number(number)) => number
            .as_u64()
            .filter(|number| *number > 0)
            .ok_or_else(|| invalid(number.to_string())),
        Some(serde_norway::Value::String(text)) => {
            let lower = text.trim().to_ascii_lowercase();
            let digits: String = lower.chars().take_while(char::is_ascii_digit).collect();
            let number: u64 = digits.parse().map_err(|_| invalid(text.clone()))?;
            let factor = match lower[digits.len()..].trim() {
                "" | "m" | "mb" | "mib" => 1,
                "g" | "gb" | "gib" => 1024,
                _ => return Err(invalid(text.clone())),
            };
            Some(number * factor)
                .filter(|number| *number > 0)
                .ok_or_else(|| invalid(text.clone()))
        }
        Some(other) => Err(invalid(format!("{other:?}"))),
    }
}

/// Reads `--consistency X` (and `--consistency=X`) from `extra-args`; other arguments are
/// refused, naming them, so that none is silently ignored.
fn consistency_from(extra_args: Option<&str>) -> Result<Consistency, DumpError> {
    let mut consistency = Consistency::Flush;
    let mut words = extra_args.unwrap_or_default().split_whitespace();
    while let Some(word) = words.next() {
        let value = match word.strip_prefix("--consistency") {
            Some("") => words.next().unwrap_or_default(),
            Some(rest) if rest.starts_with('=') => &rest[1..],
            _ => {
                return Err(DumpError::Config(format!(
                    "mydumpers extra-args `{word}` is not supported (only --consistency auto|flush|lock|none)"
                )));
            }
        };
        consistency = Consistency::parse(value)?;
    }
    Ok(consistency)
}

impl DumpLoadConfig {
    /// The options of `instance` in `task`.
    pub fn from_task(task: &TaskConfig, instance: &InstanceConfig) -> Result<Self, DumpError> {
        let dumper: MydumperSection = section(
            instance.mydumper.as_ref(),
            instance
                .mydumper_config_name
                .as_ref()
                .and_then(|name| task.mydumpers.get(name)),
            "mydumpers",
        )?;
        let loader: LoaderSection = section(
            instance.loader.as_ref(),
            instance
                .loader_config_name
                .as_ref()
                .and_then(|name| task.loaders.get(name)),
            "loaders",
        )?;
        if dumper
            .where_clause
            .as_deref()
            .is_some_and(|text| !text.trim().is_empty())
        {
            return Err(DumpError::Config(
                "mydumpers where is not supported: filter rows with expression-filter after the load, or a view".into(),
            ));
        }
        if dumper.skip_tz_utc == Some(true) {
            return Err(DumpError::Config(
                "mydumpers skip-tz-utc is not supported: TIMESTAMP values are always moved in UTC, which keeps them exact".into(),
            ));
        }
        match loader.import_mode.as_deref().unwrap_or("logical") {
            "logical" | "sql" | "loader" => {}
            other => {
                return Err(DumpError::Config(format!(
                    "loaders import-mode `{other}` is not supported: use `logical` (the loader writes SQL to any MySQL-compatible downstream)"
                )));
            }
        }
        let threads = instance.mydumper_thread.or(dumper.threads).unwrap_or(4);
        let pool_size = instance.loader_thread.or(loader.pool_size).unwrap_or(16);
        if threads == 0 || pool_size == 0 {
            return Err(DumpError::Config(
                "mydumpers threads and loaders pool-size must be at least 1".into(),
            ));
        }
        let directory = format!(
            "{}.{}",
            loader.dir.as_deref().unwrap_or("./dumped_data"),
            task.name
        );
        Ok(DumpLoadConfig {
            threads,
            limits: ChunkLimits {
                bytes: chunk_mebibytes(dumper.chunk_filesize.as_ref())? << 20,
                rows: dumper.rows.unwrap_or(200_000).max(1),
                max_chunks: ChunkLimits::default().max_chunks,
            },
            statement_bytes: dumper.statement_size.unwrap_or(1_000_000).max(1024),
            consistency: consistency_from(dumper.extra_args.as_deref())?,
            compression: dumper.compression.unwrap_or_default(),
            pool_size,
            directory: directory.into(),
            on_duplicate: OnDuplicate::parse(
                loader
                    .on_duplicate_logical
                    .as_deref()
                    .or(loader.on_duplicate.as_deref())
                    .unwrap_or("replace"),
            )?,
            direct: loader.direct.unwrap_or(false),
        })
    }
}

impl DumpLoadConfig {
    /// How to dump `from` (a source's `from` section) with these options.
    pub fn dump_options(&self, from: &DatabaseConfig, flavor: Flavor) -> DumpOptions {
        DumpOptions {
            snapshot: SnapshotOptions {
                host: from.host.clone(),
                port: from.port,
                user: from.user.clone(),
                password: from.password.clone(),
                connections: self.threads,
                consistency: self.consistency,
                flavor,
            },
            limits: self.limits,
            statement_bytes: self.statement_bytes,
        }
    }

    /// How to load `task`'s target for `instance` with these options.
    pub fn load_options(&self, task: &TaskConfig, instance: &InstanceConfig) -> LoadOptions {
        LoadOptions {
            sink: task.target_database.sink_options(),
            task: task.name.clone(),
            source_id: instance.source_id.clone(),
            meta_schema: task.meta_schema.clone(),
            pool_size: self.pool_size,
            on_duplicate: self.on_duplicate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(extra: &str) -> TaskConfig {
        let text = format!(
            "name: shop\ntask-mode: all\ntarget-database:\n  host: 127.0.0.1\n  port: 4000\n  user: root\n  password: ''\n\
             mysql-instances:\n  - source-id: s1\n    mydumper-config-name: d\n    loader-config-name: l\n{extra}"
        );
        TaskConfig::from_yaml(&text, "task.yaml").expect("task")
    }

    #[test]
    fn dm_sections_are_read_with_defaults_and_aliases() {
        let config = task(
            "mydumpers:\n  d:\n    threads: 8\n    chunk-filesize: 16\n    extra-args: \"--consistency none\"\n    compression: gzip\n\
             loaders:\n  l:\n    pool-size: 4\n    dir: /tmp/dump\n    on-duplicate-logical: error\n",
        );
        let read = DumpLoadConfig::from_task(&config, &config.mysql_instances[0]).expect("options");
        assert_eq!(read.threads, 8);
        assert_eq!(read.limits.bytes, 16 << 20);
        assert_eq!(read.consistency, Consistency::None);
        assert_eq!(read.compression, Compression::Gzip);
        assert_eq!(read.pool_size, 4);
        assert_eq!(read.directory, std::path::PathBuf::from("/tmp/dump.shop"));
        assert_eq!(read.on_duplicate, OnDuplicate::Error);
    }

    #[test]
    fn unknown_or_unsupported_options_are_named() {
        for (extra, expected) in [
            (
                "mydumpers:\n  d:\n    thread: 8\nloaders:\n  l: {}\n",
                "thread",
            ),
            (
                "mydumpers:\n  d:\n    extra-args: \"--no-locks\"\nloaders:\n  l: {}\n",
                "--no-locks",
            ),
            (
                "mydumpers:\n  d: {}\nloaders:\n  l:\n    import-mode: physical\n",
                "physical",
            ),
            (
                "mydumpers:\n  d:\n    chunk-filesize: lots\nloaders:\n  l: {}\n",
                "lots",
            ),
        ] {
            let config = task(extra);
            let error = DumpLoadConfig::from_task(&config, &config.mysql_instances[0])
                .expect_err(extra)
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
