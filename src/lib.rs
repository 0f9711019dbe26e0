//! # dm: move a live MySQL or MariaDB database into a MySQL-compatible store
//!
//! The facade of the `dm-*` crates: it re-exports each stage under a short name so that an
//! embedding service depends on one package. Each stage is its own crate behind small traits;
//! see `ARCHITECTURE.md` for how they fit together and which ones are built today.
//!
//! | module | crate | status |
//! |---|---|---|
//! | [`core`] | `dm-core`: positions, GTID sets, schemas, values, row changes, `Sink` | built |
//! | [`binlog`] | `dm-binlog`: replica protocol, event and value decoding, relay log, stream controller | built |
//! | [`causality`] | `dm-causality`: causality keys, conflict detection, compaction, batching | built |
//! | [`mysql`] | `dm-mysql`: SQL literals and identifiers, catalog reads, shared by upstream and downstream stages | built |
//! | [`sink`] | `dm-sink`: the MySQL-compatible downstream, checkpoint tables | built |
//! | [`sink_file`] | `dm-sink-file`: a JSON-lines change feed file as a sink, exactly once | built |
//! | [`task`] | `dm-task`: DM's task and source files, block-allow lists, routes, event and expression filters | built |
//! | [`syncer`] | `dm-syncer`: incremental replication, exactly once | built (online-DDL tools and shard DDL to come) |
//! | [`dumpload`] | `dm-dumpload`: consistent dump (files or direct stream), resumable parallel load, task modes | built |
//! | [`subtask`] | `dm-subtask`: one source of one task as one unit (dump → load → sync by task mode), driven through a handle, DM's query-status, auto-resume | built |
//! | [`coord`] | `dm-coord`: coordination store (memory, redb, etcd), election, keepalive | built |
//! | [`shardddl`] | `dm-shardddl`: shard DDL coordination | planned |
//! | [`cluster`] | `dm-cluster`: master and worker roles | planned |

pub use dm_binlog as binlog;
pub use dm_causality as causality;
pub use dm_cluster as cluster;
pub use dm_coord as coord;
pub use dm_core as core;
pub use dm_dumpload as dumpload;
pub use dm_mysql as mysql;
pub use dm_shardddl as shardddl;
pub use dm_sink as sink;
pub use dm_sink_file as sink_file;
pub use dm_subtask as subtask;
pub use dm_syncer as syncer;
pub use dm_task as task;

/// The README's Rust examples, compiled and run as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
