//! Integration tests of dm-syncer.

mod config_keys;
mod conformance;
mod ddl_corpus;
mod ddl_crash;
mod filters;
mod held_tables;
mod hold_model;
mod mysql_payload;
mod replication;
mod serverless;
mod tracker;
