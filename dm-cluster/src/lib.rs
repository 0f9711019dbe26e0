//! # dm-cluster: the master and worker roles (not built yet)
//!
//! **Status: planned.** No code yet. Will hold the control plane: the master (leader election,
//! scheduler binding sources to workers, task and source configuration in DM's `task.yaml` /
//! `source.yaml` format, the OpenAPI), the worker (keepalive, subtask runner), and prechecks.
//!
//! ```text
//! dmctl / OpenAPI --> master (leader) --CoordStore--> workers --> subtasks (dump -> load -> sync)
//! ```
