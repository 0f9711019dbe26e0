//! Integration tests of dm-syncer.

mod config_keys;
mod conformance;
mod ddl_corpus;
mod ddl_crash;
mod failover;
mod filters;
mod held_tables;
mod hold_model;
mod mysql_payload;
mod network_faults;
mod replication;
mod serverless;
mod tracker;
