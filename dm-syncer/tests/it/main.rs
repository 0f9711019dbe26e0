//! Integration tests of dm-syncer.

mod conformance;
mod dm_configs;
mod filters;
mod replication;
mod tracker;
