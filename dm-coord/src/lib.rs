//! # dm-coord: the coordination store (not built yet)
//!
//! **Status: planned.** No code yet. Masters and workers will agree through a `CoordStore`
//! (revisioned key-value store with compare-and-swap transactions, leases and watches):
//!
//! ```text
//! dm-cluster (master, worker) --> CoordStore --+--> MemCoordStore (in process)
//!                                              +--> embedded persistent store (single machine)
//!                                              +--> EtcdCoordStore (several machines)
//! ```
//!
//! with leader election, worker keepalive and DM's key layout on top.
