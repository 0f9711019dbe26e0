//! Integration tests of dm-syncer.

mod conformance;
mod ddl_corpus;
mod ddl_crash;
mod dm_configs;
mod filters;
mod mysql_payload;
mod replication;
mod tracker;
