//! `ignore-checking-items`: DM's precheck item names, and which of them name a check that runs
//! here.
//!
//! ```text
//! ignore-checking-items: [binlog_format, table_schema]
//!   --CheckingItem::parse--> BinlogFormat, TableSchema      (an unknown name refuses the task)
//!   --IgnoredChecks--> skips(BinlogFormat) = true            (the connect check consults it)
//!                      TableSchema: no such check here yet   (a warning names it)
//! ```
//!
//! The names are DM's (`dm/config/checking_item.go`). The checks that exist here run when a
//! source connects: the upstream writes a binlog (`binlog_enable`), in ROW format
//! (`binlog_format`) with full row images (`binlog_row_image`), and has a server id of its own
//! (`server_id`). `all` skips every check.

use std::collections::BTreeSet;

/// One of DM's precheck items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckingItem {
    /// `all`: every item.
    All,
    /// `dump_privilege`.
    DumpPrivilege,
    /// `replication_privilege`.
    ReplicationPrivilege,
    /// `version`: the upstream's server version.
    Version,
    /// `server_id`: the upstream has a server id.
    ServerId,
    /// `binlog_enable`: the upstream writes a binlog.
    BinlogEnable,
    /// `binlog_format`: ROW.
    BinlogFormat,
    /// `binlog_row_image`: FULL.
    BinlogRowImage,
    /// `table_schema`: upstream tables fit the downstream.
    TableSchema,
    /// `schema_of_shard_tables`.
    ShardTableSchema,
    /// `auto_increment_ID`: shard tables' auto-increment ids do not collide.
    ShardAutoIncrementId,
    /// `online_ddl`.
    OnlineDdl,
    /// `binlog_db`: `binlog_do_db` / `binlog_ignore_db` fit the task's tables.
    BinlogDb,
    /// `meta_position`: the task's `meta` is on the upstream.
    MetaPosition,
    /// `conn_number`: connection limits up and down.
    ConnectionNumber,
    /// `target_privilege`.
    TargetPrivilege,
    /// `empty_region` (TiDB Lightning's physical import).
    EmptyRegion,
    /// `region_distribution` (physical import).
    RegionDistribution,
    /// `downstream_version` (physical import).
    DownstreamVersion,
    /// `free_space` (downstream disk).
    FreeSpace,
    /// `downstream_mutex_features` (physical import).
    DownstreamMutexFeatures,
    /// `downstream_table_empty` (physical import).
    DownstreamTableEmpty,
    /// `primary_key`: every upstream table has one (an optional DM check).
    PrimaryKey,
}

impl CheckingItem {
    /// Every item, in DM's order.
    pub const EVERY: [CheckingItem; 23] = [
        CheckingItem::All,
        CheckingItem::DumpPrivilege,
        CheckingItem::ReplicationPrivilege,
        CheckingItem::Version,
        CheckingItem::ServerId,
        CheckingItem::BinlogEnable,
        CheckingItem::BinlogFormat,
        CheckingItem::BinlogRowImage,
        CheckingItem::TableSchema,
        CheckingItem::ShardTableSchema,
        CheckingItem::ShardAutoIncrementId,
        CheckingItem::OnlineDdl,
        CheckingItem::BinlogDb,
        CheckingItem::MetaPosition,
        CheckingItem::ConnectionNumber,
        CheckingItem::TargetPrivilege,
        CheckingItem::EmptyRegion,
        CheckingItem::RegionDistribution,
        CheckingItem::DownstreamVersion,
        CheckingItem::FreeSpace,
        CheckingItem::DownstreamMutexFeatures,
        CheckingItem::DownstreamTableEmpty,
        CheckingItem::PrimaryKey,
    ];

    /// DM's name of the item.
    pub fn name(self) -> &'static str {
        match self {
            CheckingItem::All => "all",
            CheckingItem::DumpPrivilege => "dump_privilege",
            CheckingItem::ReplicationPrivilege => "replication_privilege",
            CheckingItem::Version => "version",
            CheckingItem::ServerId => "server_id",
            CheckingItem::BinlogEnable => "binlog_enable",
            CheckingItem::BinlogFormat => "binlog_format",
            CheckingItem::BinlogRowImage => "binlog_row_image",
            CheckingItem::TableSchema => "table_schema",
            CheckingItem::ShardTableSchema => "schema_of_shard_tables",
            CheckingItem::ShardAutoIncrementId => "auto_increment_ID",
            CheckingItem::OnlineDdl => "online_ddl",
            CheckingItem::BinlogDb => "binlog_db",
            CheckingItem::MetaPosition => "meta_position",
            CheckingItem::ConnectionNumber => "conn_number",
            CheckingItem::TargetPrivilege => "target_privilege",
            CheckingItem::EmptyRegion => "empty_region",
            CheckingItem::RegionDistribution => "region_distribution",
            CheckingItem::DownstreamVersion => "downstream_version",
            CheckingItem::FreeSpace => "free_space",
            CheckingItem::DownstreamMutexFeatures => "downstream_mutex_features",
            CheckingItem::DownstreamTableEmpty => "downstream_table_empty",
            CheckingItem::PrimaryKey => "primary_key",
        }
    }

    /// The item DM names `name` (exactly, as DM compares).
    pub fn parse(name: &str) -> Option<CheckingItem> {
        CheckingItem::EVERY
            .into_iter()
            .find(|item| item.name() == name)
    }

    /// Whether a check of this item runs here (when a source connects), so that ignoring it
    /// changes something.
    pub fn is_checked_here(self) -> bool {
        matches!(
            self,
            CheckingItem::All
                | CheckingItem::ServerId
                | CheckingItem::BinlogEnable
                | CheckingItem::BinlogFormat
                | CheckingItem::BinlogRowImage
        )
    }

    /// DM's names, comma-separated, for messages.
    pub fn every_name() -> String {
        CheckingItem::EVERY
            .iter()
            .map(|item| item.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The checks a task's `ignore-checking-items` skips.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoredChecks {
    items: BTreeSet<CheckingItem>,
}

impl IgnoredChecks {
    /// The set of `items`.
    pub fn new(items: impl IntoIterator<Item = CheckingItem>) -> Self {
        IgnoredChecks {
            items: items.into_iter().collect(),
        }
    }

    /// Whether the check of `item` is skipped (named, or `all` named).
    pub fn skips(&self, item: CheckingItem) -> bool {
        self.items.contains(&CheckingItem::All) || self.items.contains(&item)
    }

    /// The items named.
    pub fn items(&self) -> impl Iterator<Item = CheckingItem> + '_ {
        self.items.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_all_skips_everything() {
        for item in CheckingItem::EVERY {
            assert_eq!(CheckingItem::parse(item.name()), Some(item));
        }
        assert_eq!(CheckingItem::parse("auto_increment_id"), None);
        assert_eq!(CheckingItem::parse("binlog-format"), None);
        let some = IgnoredChecks::new([CheckingItem::BinlogFormat]);
        assert!(some.skips(CheckingItem::BinlogFormat));
        assert!(!some.skips(CheckingItem::ServerId));
        let all = IgnoredChecks::new([CheckingItem::All]);
        assert!(CheckingItem::EVERY.iter().all(|item| all.skips(*item)));
        assert!(!IgnoredChecks::default().skips(CheckingItem::BinlogRowImage));
    }
}
