//! Integration tests of dm-syncer.

mod dm_configs;
mod replication;
mod tracker;
