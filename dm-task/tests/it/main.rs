//! Integration tests of dm-task: DM users' task and source files, read as DM reads them.

mod allocation;
mod dm_configs;
mod fuzz;
