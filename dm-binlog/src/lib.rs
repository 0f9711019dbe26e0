//! # dm-binlog: where every byte of incremental replication enters (not built yet)
//!
//! **Status: planned.** This crate holds no code yet; nothing here reads a binlog today. It is
//! the subject of the "dm-binlog" issue and will provide:
//!
//! ```text
//! upstream MySQL/MariaDB --(replica protocol)--> RemoteSource --+
//!                                                               +--> EventStream --> dm-syncer
//! relay directory (<server-uuid>.NNNNNN/) ------> RelaySource --+
//!            ^
//!            +-- RelayWriter (copies the upstream binlog locally, resumes from relay.meta)
//! ```
//!
//! - `BinlogSource` / `EventStream`: open a stream at a position or GTID set, yield owned,
//!   decoded events in order; never lose or repeat an event across reconnects;
//! - `RemoteSource`: the replica protocol for both flavours (MySQL `COM_BINLOG_DUMP[_GTID]`,
//!   MariaDB capability handshake and its GTID / GTID_LIST / compressed events), heartbeats and
//!   CRC32 checksums;
//! - exact decoding of every column type into `dm_core::Value`, with signedness and charsets
//!   taken from the schema when the binlog does not carry them;
//! - `RelayWriter` / `RelaySource`: DM's relay-log layout, tailing files still being written,
//!   purging only what no reader still needs.
