//! # dm-task: DM's task and source files, read once into the rules every stage applies
//!
//! A DM task file (`task.yaml`) and source file (`source.yaml`) are read strictly, as DM reads
//! them, into [`TaskConfig`] and [`SourceConfig`] ([`config`]): every key takes effect, is
//! refused naming it, or is accepted with a warning naming it. From them the rules of one
//! instance are built once ([`InstanceRules`]): the block-allow list, the table router and the
//! binlog event filter ([`filter`]), the expression filters on row values ([`expression`]) and
//! the online-DDL guard. The stages read the validated task, each taking its own slice; none of
//! them parses YAML.
//!
//! ```text
//!  task.yaml, source.yaml  (text: read by the caller)
//!        |  TaskConfig::from_yaml / SourceConfig::from_yaml   (parse, check as DM does, refuse)
//!        v
//!  TaskConfig, SourceConfig  --warnings()-->  keys without effect here, shown to the user
//!        |-- rules_for_source(instance, source) --> InstanceRules { BlockAllowList, TableRouter,
//!        |                                           EventFilter, ExpressionFilter*, OnlineDdlGuard }
//!        |-- syncer_for(instance), meta-schema      --> dm-syncer: SyncerSettings::from_task
//!        |-- from + replica_settings(task)          --> dm-syncer: remote_options(source, task)
//!        |-- target_database.session_variables()    --> dm-syncer: sink_options(target);
//!        |                                              dm-dumpload: DumpLoadConfig::load_options
//!        '-- mydumpers / loaders (YAML values)      --> dm-dumpload: DumpLoadConfig::from_task
//! ```
//!
//! This crate sits right above `dm-core` and below every stage that reads a task: dm-syncer,
//! dm-dumpload, and the shard DDL and cluster crates to come. It builds no stage's options
//! (no binlog client or sink types here): it returns the task's meaning as plain data
//! ([`config::DatabaseConfig::session_variables`], [`SourceConfig::replica_settings`]) and the
//! stage crates turn it into their own options.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | DM's task and source files, read strictly; every key honoured, refused or warned; passwords, durations, ignore-checking-items, the online-DDL guard; [`InstanceRules`] |
//! | [`filter`] | table patterns, block-allow list, table router, binlog event filter |
//! | [`expression`] | expression filters on row values (MySQL semantics) |
//! | [`error`] | the crate's error, classed, with codes |
//!
//! Invariants:
//! - reading is pure and deterministic: no file, network or clock access (a file's text comes
//!   from the caller, which names it for errors);
//! - a task that [`TaskConfig::from_yaml`] returns can be run as written: every rule it names
//!   exists and builds, and each key it sets either takes effect or is in
//!   [`TaskConfig::warnings`]; nothing is silently ignored (`docs/dm-config-keys.md`);
//! - rules are applied synchronously and give the same answer for the same input: names compare
//!   case-insensitively unless the task or the source is `case-sensitive`; system schemas are
//!   never replicated.
//!
//! Errors: [`TaskError`], one enum over the two kinds of mistake a user can make in a file: a
//! file that cannot be run ([`config::ConfigError`], DM-14006: the file, the key, the reason) and a
//! rule that does not make sense ([`filter::RuleError`], DM-14002: the rule and what is wrong).
//! Both are definite: the user fixes the file. The codes keep the numbers they had when this
//! was part of dm-syncer (`docs/error-codes.md`); dm-syncer's error wraps [`TaskError`] and
//! reports them unchanged.

pub mod config;
pub mod error;
pub mod expression;
pub mod filter;

pub use config::{InstanceRules, ReplicaSettings, SourceConfig, TaskConfig};
pub use error::TaskError;
