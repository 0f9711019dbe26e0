//! # dm-shardddl: shard DDL coordination (not built yet)
//!
//! **Status: planned.** No code yet. When many upstream shard tables merge into one downstream
//! table, their DDL must reach the downstream once and in a safe order. The syncer's side of
//! that is built: it asks a `dm_core::ShardCoordinator` about every DDL
//! (`dm_syncer::run_coordinated`), holds the tables the coordinator holds, and rewinds and
//! replays them once a hold is resolved. This crate will hold DM's coordinators behind it:
//!
//! ```text
//! worker syncers --(ShardCoordinator::decide(ShardDdl))--> master keepers (pessimist | optimist)
//!                <--(Execute(statements) | Skip | Hold)--
//!                <--(next_resolution: ShardResolution)---  once every shard reached the DDL
//! ```
