//! # dm-shardddl: shard DDL coordination (not built yet)
//!
//! **Status: planned.** No code yet. When many upstream shard tables merge into one downstream
//! table, their DDL must reach the downstream once and in a safe order:
//!
//! ```text
//! worker syncers --(ShardCoordinator: submit DDL)--> master keepers (pessimist | optimist)
//!                <--(Execute | Skip | Blocked)------
//! ```
