//! Integration tests of the facade package `dm`: the crates used together, on real data.

mod binlog_dump;
mod dm_syncer;
mod gtid_fixtures;
mod quickstart;
mod sysbench;
